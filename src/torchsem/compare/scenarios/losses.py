"""cross_entropy parity grid: every input layout, target kind, weight, reduction, smoothing, ignore_index.

Family ``cross_entropy``. Each case returns the loss and the gradient of ``sum(loss * g)``
(a random cotangent ``g``) with respect to the logits, and, for probability targets, with
respect to the targets too. Error cases compare the error's type and PyTorch's message text.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._scenario import Scenario, Tolerance, register

_SECTION = "torchsem.losses.cross_entropy (the document's nn.CrossEntropyLoss())"
_SHAPES = {"unbatched": (5,), "n-c": (4, 5), "n-c-d": (3, 5, 2), "n-c-d-d": (2, 5, 2, 3)}


def _target_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return () if len(shape) == 1 else (shape[0], *shape[2:])


def _inputs(
    shape: tuple[int, ...], kind: str, weighted: bool, ignore_index: int, seed: int, target_dtype: Any = np.int64
):
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        n_classes = shape[0] if len(shape) == 1 else shape[1]
        inputs = {"x": (2 * rng.standard_normal(shape)).astype(np.float32)}
        if kind == "index":
            target = rng.integers(0, n_classes, _target_shape(shape)).astype(target_dtype)
            if target.size > 1:
                target.flat[1] = ignore_index  # one ignored element where there is a batch
            inputs["target"] = target
        else:
            probs = rng.random(shape).astype(np.float32)
            inputs["target"] = probs / probs.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
        if weighted:
            inputs["weight"] = (rng.random(n_classes) + 0.25).astype(np.float32)
        loss_shape = () if len(shape) == 1 else _target_shape(shape)
        inputs["cotangent"] = rng.standard_normal(loss_shape).astype(np.float32)
        return inputs

    return make


def _torch_program(options: dict[str, Any], with_grad: bool = True):
    def program(inputs):
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(inputs["x"]).requires_grad_(True)
        probabilities = inputs["target"].dtype.kind == "f"
        target = torch.from_numpy(inputs["target"])
        if probabilities:
            target.requires_grad_(True)
        weight = torch.from_numpy(inputs["weight"]) if "weight" in inputs else None
        loss = F.cross_entropy(x, target, weight=weight, **options)
        if not with_grad:
            return {"loss": loss}
        cotangent = torch.from_numpy(inputs["cotangent"]) if options.get("reduction") == "none" else torch.tensor(1.0)
        grads = torch.autograd.grad(loss, [x, target] if probabilities else [x], cotangent)
        outputs = {"loss": loss, "dx": grads[0]}
        if probabilities:
            outputs["dtarget"] = grads[1]
        return outputs

    return program


def _jax_program(options: dict[str, Any], with_grad: bool = True):
    def program(inputs, jit: bool):
        import jax
        import jax.numpy as jnp

        from torchsem.losses import cross_entropy

        probabilities = inputs["target"].dtype.kind == "f"
        target = inputs["target"] if probabilities else inputs["target"].astype(np.int32)
        weight = inputs.get("weight")
        cotangent = inputs["cotangent"] if options.get("reduction") == "none" else np.float32(1.0)

        def loss_fn(x, t):
            return cross_entropy(x, t, weight=weight, **options)

        def pullback(x, t, ct):
            return jax.vjp(loss_fn, x, t)[1](ct) if probabilities else jax.vjp(lambda v: loss_fn(v, t), x)[1](ct)

        loss_fn, pullback = jitted(loss_fn, jit), jitted(pullback, jit)
        loss = loss_fn(inputs["x"], target)
        if not with_grad:
            return {"loss": loss}
        grads = pullback(inputs["x"], target, jnp.asarray(cotangent))
        outputs = {"loss": loss, "dx": grads[0]}
        if probabilities:
            outputs["dtarget"] = grads[1]
        return outputs

    return program


def _options_name(options: dict[str, Any]) -> str:
    return "-".join(f"{key}={value}" for key, value in options.items())


def _register_grid() -> None:
    seed = 400
    for (shape_name, shape), kind, weighted, reduction, smoothing in itertools.product(
        _SHAPES.items(), ("index", "probs"), (False, True), ("none", "mean", "sum"), (0.0, 0.2)
    ):
        options = {"reduction": reduction, "label_smoothing": smoothing}
        seed += 1
        register(
            Scenario(
                name=f"cross_entropy/{shape_name}-{kind}-weight={int(weighted)}-{_options_name(options)}",
                section=_SECTION,
                mapping=f"F.cross_entropy(x, t, weight, **{options}) -> "
                f"torchsem.losses.cross_entropy(x, t, weight, **{options})",
                make_inputs=_inputs(shape, kind, weighted, -100, seed),
                torch_program=_torch_program(options),
                jax_program=_jax_program(options),
            )
        )
    # A non-default ignore_index that is also a real class.
    for (shape_name, shape), weighted, reduction, smoothing in itertools.product(
        (("n-c", (4, 5)), ("n-c-d", (3, 5, 2))), (False, True), ("none", "mean", "sum"), (0.0, 0.3)
    ):
        options = {"ignore_index": 1, "reduction": reduction, "label_smoothing": smoothing}
        seed += 1
        register(
            Scenario(
                name=f"cross_entropy/{shape_name}-index-weight={int(weighted)}-{_options_name(options)}",
                section=_SECTION,
                mapping=f"F.cross_entropy(x, t, weight, **{options}) -> "
                f"torchsem.losses.cross_entropy(x, t, weight, **{options})",
                make_inputs=_inputs(shape, "index", weighted, 1, seed),
                torch_program=_torch_program(options),
                jax_program=_jax_program(options),
            )
        )


def _fixed(
    name: str,
    x: np.ndarray,
    target: np.ndarray,
    options: dict[str, Any],
    weight: np.ndarray | None = None,
    note: str = "",
    with_grad: bool = True,
) -> None:
    def make() -> dict[str, np.ndarray]:
        inputs = {"x": x, "target": target}
        if weight is not None:
            inputs["weight"] = weight
        reduced_shape = () if x.ndim == 1 else (x.shape[0], *x.shape[2:])
        inputs["cotangent"] = np.ones(reduced_shape, np.float32)
        return inputs

    register(
        Scenario(
            name=f"cross_entropy/{name}",
            section=_SECTION,
            mapping=f"F.cross_entropy(**{options}) -> torchsem.losses.cross_entropy(**{options})",
            make_inputs=make,
            torch_program=_torch_program(options, with_grad),
            jax_program=_jax_program(options, with_grad),
            notes=note,
        )
    )


def _register_edges() -> None:
    rng = np.random.default_rng(450)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    _fixed(
        "all-ignored-mean",
        x,
        np.full(3, -100, np.int64),
        {"reduction": "mean"},
        note="Every target ignored: the mean is 0/0 = NaN, as in PyTorch.",
    )
    _fixed(
        "all-ignored-smoothing-weight-mean",
        x,
        np.full(3, -100, np.int64),
        {"label_smoothing": 0.1},
        weight=np.linspace(0.5, 1.5, 5).astype(np.float32),
    )
    _fixed("all-ignored-sum", x, np.full(3, -100, np.int64), {"reduction": "sum"})
    _fixed(
        "empty-batch-mean",
        np.zeros((0, 5), np.float32),
        np.zeros(0, np.int64),
        {"reduction": "mean"},
        note="An empty batch: mean is NaN, sum 0, as in PyTorch.",
    )
    _fixed("empty-batch-sum", np.zeros((0, 5), np.float32), np.zeros(0, np.int64), {"reduction": "sum"})
    _fixed("empty-batch-none", np.zeros((0, 5), np.float32), np.zeros(0, np.int64), {"reduction": "none"})
    _fixed("empty-batch-probs-mean", np.zeros((0, 5), np.float32), np.zeros((0, 5), np.float32), {"reduction": "mean"})
    _fixed("uint8-targets", x, np.array([0, 4, 2], np.uint8), {})
    _fixed(
        "unbatched-one-element-target",
        x[0],
        np.array([3], np.int64),
        {"reduction": "none"},
        note="PyTorch treats a (1,) target of a (C,) input as a scalar target in the forward pass; its "
        "backward raises 'size mismatch (got input: [5], target: [1])', so only the loss is compared.",
        with_grad=False,
    )
    _fixed("full-smoothing", x, np.array([0, 4, 2], np.int64), {"label_smoothing": 1.0})
    _fixed("full-smoothing-probs", x, np.full((3, 5), 0.2, np.float32), {"label_smoothing": 1.0})
    _fixed(
        "the-document",
        rng.standard_normal((3, 4)).astype(np.float32),
        np.array([1, 1, 1], np.int64),
        {},
        note="nn.CrossEntropyLoss()(output, target) with the document's (3, 4) logits and targets [1, 1, 1].",
    )
    big = rng.standard_normal((4, 6)).astype(np.float32)
    big[0] *= 60.0  # large logits: log_softmax must subtract the max
    _fixed("large-logits", big, np.array([0, 5, 2, 3], np.int64), {"label_smoothing": 0.05})


def _error_torch(x_shape, target: np.ndarray, options: dict[str, Any], weight_shape=None):
    def program(inputs):
        import torch
        import torch.nn.functional as F

        weight = torch.ones(weight_shape) if weight_shape is not None else None
        return error_outputs(
            lambda: F.cross_entropy(torch.zeros(x_shape), torch.from_numpy(target), weight=weight, **options)
        )

    return program


def _error_jax(x_shape, target: np.ndarray, options: dict[str, Any], weight_shape=None):
    def program(inputs, jit: bool):
        from torchsem.losses import cross_entropy

        # These are shape, dtype and value checks made before tracing, so they run eagerly even
        # in the jit run; under jax.jit an out-of-range class index cannot raise (it gives NaN).
        # numpy arrays on purpose: the checks are eager (cross_entropy's annotations say jax.Array)
        weight: Any = np.ones(weight_shape, np.float32) if weight_shape is not None else None
        t: Any = target.astype(np.int32) if target.dtype == np.int64 else target
        logits: Any = np.zeros(x_shape, np.float32)
        return error_outputs(lambda: cross_entropy(logits, t, weight=weight, **options))

    return program


_CONTAINED = Tolerance(
    0.0,
    0.0,
    reason="torchsem takes any integer dtype of class indices and says so around PyTorch's own message",
    text="contained",
)


def _register_errors() -> None:
    cases: dict[str, tuple[Any, ...]] = {
        "index-too-large": ((3, 5), np.array([0, 5, 1]), {}, None),
        "index-negative": ((3, 5), np.array([0, -1, 1]), {}, None),
        "index-too-large-nd": ((3, 5, 2, 2), np.full((3, 2, 2), 9), {"reduction": "none"}, None),
        "index-too-large-unbatched": ((5,), np.array(7), {}, None),
        "index-too-large-with-smoothing": ((3, 5), np.array([0, 6, 1]), {"label_smoothing": 0.1}, None),
        "batch-mismatch": ((3, 5), np.array([0, 1]), {}, None),
        "nd-target-size": ((3, 5, 2), np.zeros((3, 3), np.int64), {}, None),
        "multi-target": ((3, 5), np.zeros((3, 1), np.int64), {}, None),
        "unbatched-long-target": ((5,), np.array([1, 2]), {}, None),
        "weight-shape": ((3, 5), np.array([0, 1, 1]), {}, (4,)),
        "weight-2d": ((3, 5), np.array([0, 1, 1]), {}, (5, 1)),
        "probs-weight-shape": ((3, 5), np.full((3, 5), 0.2, np.float32), {}, (4,)),
        "probs-ignore-index": ((3, 5), np.full((3, 5), 0.2, np.float32), {"ignore_index": 1}, None),
        "reduction": ((3, 5), np.array([0, 1, 1]), {"reduction": "avg"}, None),
        "label-smoothing-above-1": ((3, 5), np.array([0, 1, 1]), {"label_smoothing": 1.5}, None),
        # A 4-d input takes PyTorch's nll_loss2d, whose messages differ from nll_loss_nd's.
        "4d-target-size": ((2, 5, 3, 4), np.zeros((2, 3, 5), np.int64), {}, None),
        "4d-target-ndim": ((2, 5, 3, 4), np.zeros((2, 3), np.int64), {}, None),
        "4d-target-ndim-smoothing": ((2, 5, 3, 4), np.zeros((2, 1, 3, 4), np.int64), {"label_smoothing": 0.1}, None),
        "4d-weight-size": ((2, 5, 3, 4), np.zeros((2, 3, 4), np.int64), {}, (4,)),
        "4d-probs-weight-shape": ((2, 5, 3, 4), np.full((2, 5, 3, 4), 0.2, np.float32), {}, (2,)),
        "5d-target-size": ((2, 5, 3, 4, 2), np.zeros((2, 3, 4, 3), np.int64), {}, None),
        "weight-0d": ((3, 5), np.array([0, 1, 1]), {}, ()),
        "batched-0d-target": ((3, 5), np.array(1), {}, None),
        "float-index-target": ((3, 5), np.zeros((3,), np.float32), {}, None),
        "probs-shape-mismatch": ((3, 5), np.full((3, 4), 0.25, np.float32), {}, None),
    }
    for case, (x_shape, target, options, weight_shape) in cases.items():
        register(
            Scenario(
                name=f"cross_entropy/error-{case}",
                section=_SECTION,
                mapping="F.cross_entropy raises -> torchsem.losses.cross_entropy raises the same error type "
                "and message",
                torch_program=_error_torch(x_shape, target, options, weight_shape),
                jax_program=_error_jax(x_shape, target, options, weight_shape),
                tolerances={"error message": _CONTAINED} if case == "float-index-target" else {},
            )
        )


_register_grid()
_register_edges()
_register_errors()
