"""The other losses (family ``losses_more``): nll, mse, l1, smooth L1, Huber, BCE, BCE with logits, KL.

Each value scenario is a table of calls of ``torch.nn.functional``'s losses against
:mod:`torchsem.losses` on the same arrays: every reduction, with and without ``weight`` /
``pos_weight``, ``ignore_index``, batched, unbatched and K-d inputs, broadcast targets (and
PyTorch's size warning), ``beta``/``delta`` at and around the data's differences
(``beta=0`` is L1), probabilities of exactly 0 and 1 (BCE's -100 clamp), logits of ±100, zero
probabilities in KL targets, NaN, 0-d and empty inputs. For every call it compares the loss
and the gradients of ``sum(loss * g)`` (a fixed cotangent ``g`` for ``'none'``) with respect
to every float argument PyTorch differentiates: the input and target, and the per-element
``weight`` of ``mse_loss`` / ``l1_loss`` / ``huber_loss``. One scenario is one jitted
function, so a whole table costs one compilation. The error scenarios compare PyTorch's
error type and message for bad shapes, weights, values and reductions (shape and dtype errors
also under ``jax.jit``, where they are raised while tracing). ``losses_more/modules`` builds
each ``torch.nn`` loss module with constructor arguments against ``torchsem.nn``'s, applied
with its ``batch_stats`` buffers, and compares the buffers as ``state_dict`` entries.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._scenario import Scenario, Tolerance, register

_SECTION = "torchsem.losses: torch.nn.functional's losses, and their torch.nn modules"
_NO_WARNING = "no warning"
_SIZE_WARNING = "Using a target size"
_REDUCTIONS = ("none", "mean", "sum")
_ARGS = {"input": "input", "target": "target"}


@dataclasses.dataclass(frozen=True)
class _Call:
    """One loss call: ``loss(input, target, **other arguments, **options)``.

    ``args`` maps the loss's argument names to the names of the scenario's arrays; ``grads``
    names the arguments differentiated (those PyTorch differentiates).
    """

    label: str
    loss: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    args: dict[str, str] = dataclasses.field(default_factory=lambda: dict(_ARGS))
    grads: tuple[str, ...] = ("input", "target")


def _cotangent(shape: tuple[int, ...]) -> np.ndarray:
    """The fixed cotangent of a ``'none'`` loss of ``shape``: no zeros, both signs, the same on both sides."""
    size = int(np.prod(shape, dtype=np.int64))
    return ((np.arange(size) % 7 - 3.5) / 2.5).astype(np.float32).reshape(shape)


def _reduced(call: _Call) -> bool:
    return call.options.get("reduction", "mean") != "none"


def _size_warning(caught: list[warnings.WarningMessage]) -> str:
    """The first broadcasting warning of a call (PyTorch's kl_div 'mean' warning is not reproduced)."""
    sizes = [str(w.message) for w in caught if str(w.message).startswith(_SIZE_WARNING)]
    return sizes[0] if sizes else _NO_WARNING


def _torch_program(calls: tuple[_Call, ...]):
    def program(inputs):
        import torch
        import torch.nn.functional as F

        outputs: dict[str, Any] = {}
        for call in calls:
            tensors = {name: torch.from_numpy(inputs[array]) for name, array in call.args.items()}
            for name in call.grads:
                tensors[name].requires_grad_(True)
            others = {name: t for name, t in tensors.items() if name not in _ARGS}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                loss = getattr(F, call.loss)(tensors["input"], tensors["target"], **others, **call.options)
            cotangent = torch.ones(()) if _reduced(call) else torch.from_numpy(_cotangent(tuple(loss.shape)))
            grads = torch.autograd.grad(loss, [tensors[name] for name in call.grads], cotangent)
            outputs[f"{call.label} loss"] = loss.detach()
            outputs.update({f"{call.label} d{name}": grad for name, grad in zip(call.grads, grads)})
            outputs[f"{call.label} warning"] = _size_warning(caught)
        return outputs

    return program


def _jax_arrays(inputs) -> dict[str, np.ndarray]:
    # JAX's default integers are 32-bit; torchsem takes any integer class index.
    return {name: value.astype(np.int32) if value.dtype == np.int64 else value for name, value in inputs.items()}


def _jax_program(calls: tuple[_Call, ...]):
    def program(inputs, jit: bool):
        import jax
        import jax.numpy as jnp

        from torchsem import losses

        arrays = _jax_arrays(inputs)
        caught_by_call: dict[str, str] = {}

        def run(arrays):
            outputs = {}
            for call in calls:
                given = {name: arrays[array] for name, array in call.args.items()}
                fixed = {name: value for name, value in given.items() if name not in call.grads}

                def loss_fn(differentiated, call=call, fixed=fixed):
                    named = {**fixed, **differentiated}
                    others = {name: v for name, v in named.items() if name not in _ARGS}
                    return getattr(losses, call.loss)(named["input"], named["target"], **others, **call.options)

                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    loss, pullback = jax.vjp(loss_fn, {name: given[name] for name in call.grads})
                caught_by_call[call.label] = _size_warning(caught)
                cotangent = jnp.ones((), loss.dtype) if _reduced(call) else jnp.asarray(_cotangent(loss.shape))
                (grads,) = pullback(cotangent)
                outputs[f"{call.label} loss"] = loss
                outputs.update({f"{call.label} d{name}": grads[name] for name in call.grads})
            return outputs

        outputs = dict(jitted(run, jit)(arrays))
        for call in calls:
            outputs[f"{call.label} warning"] = caught_by_call[call.label]
        return outputs

    return program


def _register_table(
    name: str,
    calls: list[_Call],
    make_inputs: Callable[[], dict[str, np.ndarray]],
    notes: str = "",
    plain: tuple[Callable[[Any], dict[str, Any]], str] | None = None,
):
    """Register one table; ``plain`` is optax's closest counterpart and its pitfall (never judged)."""
    labels = [call.label for call in calls]
    if len(set(labels)) != len(labels):
        raise ValueError(f"losses_more/{name}: call labels must be unique")
    losses_used = sorted({call.loss for call in calls})
    register(
        Scenario(
            name=f"losses_more/{name}",
            section=_SECTION,
            mapping=f"F.{{{', '.join(losses_used)}}}(...) -> torchsem.losses.{{same}}(...): loss and gradients",
            make_inputs=make_inputs,
            torch_program=_torch_program(tuple(calls)),
            jax_program=_jax_program(tuple(calls)),
            notes=notes,
            plain_jax_program=plain[0] if plain else None,
            pitfall=plain[1] if plain else "",
        )
    )


def _options_label(options: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in options.items())


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(np.float32)


# ------------------------------------------------- plain optax / JAX counterparts (never judged)


def _plain_nll(inputs) -> dict[str, Any]:
    import jax.numpy as jnp

    picked = jnp.take_along_axis(inputs["input"], inputs["target"][:, None].astype(np.int32), axis=1)[:, 0]
    keep = inputs["target"] != -100
    weight = inputs["weight"][np.where(keep, inputs["target"], 0)]
    return {
        "n-c plain mean loss": -jnp.mean(picked),
        "n-c weighted mean loss": -jnp.mean(jnp.where(keep, picked * weight, 0.0)),
    }


def _plain_regression(inputs) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import optax

    x, y = inputs["input"], inputs["target"]
    return {
        "mse_loss reduction=mean loss": jnp.mean(optax.l2_loss(x, y)),
        "smooth_l1_loss beta=0.5 reduction=mean loss": jnp.mean(optax.huber_loss(x, y, delta=0.5)),
        "huber_loss delta=1.0 reduction=mean loss": jnp.mean(optax.huber_loss(x, y, delta=1.0)),
        "l1_loss reduction=mean dinput": jax.grad(lambda a: jnp.mean(jnp.abs(a - y)))(x),
    }


def _plain_bce(inputs) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    y = inputs["target"]

    def by_hand(p):
        return -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))

    def clamped(p):
        return -(y * jnp.maximum(jnp.log(p), -100.0) + (1 - y) * jnp.maximum(jnp.log(1 - p), -100.0))

    return {
        "binary_cross_entropy reduction=none loss": by_hand(inputs["input"]),
        "binary_cross_entropy reduction=sum dinput": jax.grad(lambda p: jnp.sum(clamped(p)))(inputs["input"]),
    }


def _plain_bce_logits(inputs) -> dict[str, Any]:
    import jax.numpy as jnp
    import optax

    loss = optax.sigmoid_binary_cross_entropy(inputs["input"], inputs["target"])
    return {
        "binary_cross_entropy_with_logits reduction=mean loss": jnp.mean(loss),
        "pos_weight binary_cross_entropy_with_logits reduction=none loss": loss,  # optax has no pos_weight
    }


def _plain_kl(inputs) -> dict[str, Any]:
    import jax.numpy as jnp
    import optax

    return {
        "kl_div reduction=mean loss": jnp.mean(optax.kl_divergence(inputs["input"], inputs["target"])),
        "kl_div log_target=True reduction=mean loss": jnp.mean(
            optax.losses.kl_divergence_with_log_targets(inputs["input"], inputs["log_target"])
        ),
    }


_PITFALLS = {
    "nll": (
        _plain_nll,
        "optax has no nll_loss; -take_along_axis(log_p, t).mean() reads PyTorch's ignore_index -100 out of range "
        "(NaN), and masking it by hand divides by the batch, not by the summed weights of the kept targets.",
    ),
    "regression": (
        _plain_regression,
        "optax.l2_loss is 0.5 * d**2 (half of mse_loss); optax.huber_loss(delta) is huber_loss, smooth_l1_loss(beta) "
        "is it divided by beta; jax.grad of jnp.abs is 1 at a tie, PyTorch's l1 gradient 0.",
    ),
    "bce": (
        _plain_bce,
        "By hand, BCE at probabilities of exactly 0 or 1 is inf (PyTorch clamps the log at -100: 100), and clamping "
        "by hand gives a NaN gradient where PyTorch's is (x - y) / max(x (1 - x), 1e-12).",
    ),
    "bce-logits": (
        _plain_bce_logits,
        "optax.sigmoid_binary_cross_entropy agrees without weights but has no pos_weight (nor weight).",
    ),
    "kl": (
        _plain_kl,
        "optax.kl_divergence sums over the last axis: its mean is PyTorch's 'batchmean', not kl_div's default 'mean' "
        "(divided by every element).",
    ),
}


# --------------------------------------------------------------------------------------- nll_loss


def _nll_arrays(rng: np.random.Generator, prefix: str, shape: tuple[int, ...], ignore: int, n_ignored: int):
    """Log-probabilities of ``shape``, class indices (``n_ignored`` of them ``ignore``), class weights."""
    class_axis = 0 if len(shape) == 1 else 1
    n_classes = shape[class_axis]
    target = rng.integers(0, n_classes, () if len(shape) == 1 else (shape[0], *shape[2:])).astype(np.int64)
    if target.size > 1:
        target.flat[1 : 1 + n_ignored] = ignore
    return {
        f"{prefix}input": _log_softmax(2 * rng.standard_normal(shape), class_axis),
        f"{prefix}target": target,
        f"{prefix}weight": (rng.random(n_classes) + 0.25).astype(np.float32),
    }


def _nll_call(label: str, prefix: str, reduction: str, weighted: bool, **options: Any) -> _Call:
    args = {"input": f"{prefix}input", "target": f"{prefix}target"}
    if weighted:
        args["weight"] = f"{prefix}weight"
    return _Call(label, "nll_loss", {**options, "reduction": reduction}, args, ("input",))


def _register_nll() -> None:
    def make_inputs() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(1601)
        arrays = _nll_arrays(rng, "", (4, 5), -100, 1)
        arrays.update(_nll_arrays(rng, "unbatched ", (5,), -100, 0))
        arrays.update(_nll_arrays(rng, "ignore 1 ", (4, 5), 1, 2))
        arrays.update(_nll_arrays(rng, "3-d ", (4, 5, 2), -100, 1))
        arrays.update(_nll_arrays(rng, "4-d ", (2, 5, 2, 3), -100, 2))
        arrays.update(_nll_arrays(rng, "ignored ", (4, 5), -100, 0))
        arrays["ignored target"][:] = -100
        arrays.update(_nll_arrays(rng, "empty ", (0, 5, 2), -100, 0))
        zero_weight = arrays["weight"].copy()
        zero_weight[np.unique(arrays["target"][arrays["target"] >= 0])] = 0.0
        arrays["zero_weight"] = zero_weight
        arrays["target_u8"] = np.where(arrays["target"] >= 0, arrays["target"], 0).astype(np.uint8)
        return arrays

    calls = [_nll_call(f"n-c weighted {r}", "", r, True) for r in _REDUCTIONS]
    calls.append(_nll_call("n-c plain mean", "", "mean", False))
    calls += [_nll_call(f"unbatched weighted {r}", "unbatched ", r, True) for r in ("none", "mean")]
    calls.append(_nll_call("unbatched plain sum", "unbatched ", "sum", False))
    calls += [_nll_call(f"ignore_index=1 weighted {r}", "ignore 1 ", r, True, ignore_index=1) for r in ("none", "mean")]
    calls += [_nll_call(f"3-d weighted {r}", "3-d ", r, True) for r in ("none", "mean")]
    calls += [_nll_call("4-d weighted none", "4-d ", "none", True), _nll_call("4-d plain mean", "4-d ", "mean", False)]
    calls += [_nll_call(f"all ignored {r}", "ignored ", r, False) for r in ("mean", "sum")]
    calls.append(_nll_call("all ignored weighted mean", "ignored ", "mean", True))
    calls += [_nll_call(f"empty batch {r}", "empty ", r, True) for r in ("mean", "sum")]
    calls.append(
        _Call("present classes weigh 0: mean 0/0", "nll_loss", {}, {**_ARGS, "weight": "zero_weight"}, ("input",))
    )
    calls.append(_Call("uint8 targets", "nll_loss", {}, {"input": "input", "target": "target_u8"}, ("input",)))
    _register_table(
        "nll",
        calls,
        make_inputs,
        plain=_PITFALLS["nll"],
        notes="(N, C), unbatched (C,) and K-d inputs (N, C, d1, ..., dk) for k = 1 (which PyTorch reshapes for "
        "nll_loss2d) and 2; ignore_index=1 is a real class (its elements add neither loss nor weight); every target "
        "ignored: 'mean' is 0/0 = NaN, 'sum' 0, the gradient 0; an empty batch: 'mean' NaN; weights of 0 for every "
        "present class make 'mean' 0/0 = NaN, and its gradient NaN.",
    )


# ----------------------------------------------------------------- mse, l1, smooth L1, Huber

_EXACT_DIFFERENCES = (0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 2.5, -2.5)


def _regression_inputs() -> dict[str, np.ndarray]:
    """Targets on a 1/64 grid and inputs ``target + d``, ``d`` exactly 0, ±beta and ±delta for some elements."""
    rng = np.random.default_rng(1620)
    target = (np.round(rng.standard_normal((4, 5)) * 64) / 64).astype(np.float32)
    difference = (1.5 * rng.standard_normal((4, 5))).astype(np.float32)
    difference.flat[: len(_EXACT_DIFFERENCES)] = _EXACT_DIFFERENCES
    weight = (rng.random((4, 5)) + 0.1).astype(np.float32)
    weight.flat[-1] = 0.0
    return {"input": (target + difference).astype(np.float32), "target": target, "weight": weight}


def _calls(loss: str, table: list[tuple[dict[str, Any], tuple[str, ...]]], prefix: str = "", **kwargs) -> list[_Call]:
    """One call per (options, reductions) row, labelled ``prefix loss option=value ... reduction=...``."""
    calls = []
    for options, reductions in table:
        for reduction in reductions:
            chosen = {**options, "reduction": reduction}
            label = " ".join(part for part in (prefix, loss, _options_label(chosen)) if part)
            calls.append(_Call(label, loss, chosen, **kwargs))
    return calls


def _register_regression() -> None:
    every = _REDUCTIONS
    calls = _calls("mse_loss", [({}, every)]) + _calls("l1_loss", [({}, ("none", "mean"))])
    calls += _calls(
        "smooth_l1_loss",
        [
            ({"beta": 1.0}, ("none",)),
            ({"beta": 0.5}, ("mean",)),
            ({"beta": 2.0}, ("none",)),
            ({"beta": 0.0}, ("none",)),
        ],
    )
    calls += _calls(
        "huber_loss", [({"delta": 1.0}, ("mean",)), ({"delta": 0.5}, ("none",)), ({"delta": 2.5}, ("sum",))]
    )
    weighted = {"args": {**_ARGS, "weight": "weight"}, "grads": ("input", "target", "weight")}
    calls += _calls("mse_loss", [({}, ("none", "mean"))], "weighted", **weighted)
    calls += _calls("l1_loss", [({}, ("mean",))], "weighted", **weighted)
    calls += _calls("huber_loss", [({"delta": 0.5}, ("mean", "sum"))], "weighted", **weighted)
    _register_table(
        "regression",
        calls,
        _regression_inputs,
        plain=_PITFALLS["regression"],
        notes="Differences of exactly 0 (l1's slope sgn(0) = 0), ±beta and ±delta (the linear branch's slope); "
        "per-element weights (one of them 0): mse/l1 'mean' divide by sum(weight), huber's is the plain mean.",
    )

    def edge_inputs() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(1622)
        return {
            "input": rng.standard_normal((4, 5)).astype(np.float32),
            "row": rng.standard_normal(5).astype(np.float32),
            "row_weight": (rng.random(5) + 0.2).astype(np.float32),
            "column": rng.standard_normal((4, 1)).astype(np.float32),
            "first_row": rng.standard_normal((1, 5)).astype(np.float32),
            "with_nan": np.array([0.5, np.nan, -1.25, 2.0, 0.25], np.float32),
            "nan_target": np.array([0.5, 0.0, 1.0, -1.0, 0.75], np.float32),
            "scalar": np.array(0.75, np.float32),
            "scalar_target": np.array(-0.5, np.float32),
            "empty": np.zeros((0, 5), np.float32),
        }

    row_target = {"args": {"input": "input", "target": "row"}}
    calls = _calls("mse_loss", [({}, ("none",))], "row target", **row_target)
    calls += _calls("l1_loss", [({}, ("mean",))], "row target", **row_target)
    calls += _calls("smooth_l1_loss", [({"beta": 0.5}, ("none",))], "row target", **row_target)
    calls += _calls("huber_loss", [({}, ("mean",))], "row target", **row_target)
    row_input = {
        "args": {"input": "row", "target": "input", "weight": "row_weight"},
        "grads": ("input", "target", "weight"),
    }
    calls += _calls("mse_loss", [({}, ("mean",))], "row input weighted", **row_input)
    calls += _calls("l1_loss", [({}, ("none",))], "row input weighted", **row_input)
    calls += _calls("huber_loss", [({}, ("mean",))], "row input weighted", **row_input)
    calls += _calls(
        "mse_loss", [({}, ("none",))], "column against row", args={"input": "column", "target": "first_row"}
    )
    nan = {"args": {"input": "with_nan", "target": "nan_target"}}
    calls += _calls("mse_loss", [({}, ("none",))], "nan", **nan)
    calls += _calls("l1_loss", [({}, ("none",))], "nan", **nan)
    calls += _calls("smooth_l1_loss", [({"beta": 0.5}, ("none",)), ({"beta": 0.0}, ("none",))], "nan", **nan)
    calls += _calls("huber_loss", [({"delta": 0.5}, ("none",))], "nan", **nan)
    scalar = {"args": {"input": "scalar", "target": "scalar_target"}}
    calls += _calls("mse_loss", [({}, ("mean",))], "0-d", **scalar)
    calls += _calls("huber_loss", [({}, ("mean",))], "0-d", **scalar)
    empty = {"args": {"input": "empty", "target": "empty"}}
    calls += _calls("mse_loss", [({}, ("mean",))], "empty", **empty)
    calls += _calls("huber_loss", [({}, ("sum",))], "empty", **empty)
    _register_table(
        "regression-shapes",
        calls,
        edge_inputs,
        notes="Targets and inputs that broadcast (PyTorch's UserWarning text is compared; gradients sum over "
        "broadcast axes); a NaN input (l1's gradient there is 0, PyTorch's sgn(NaN)); 0-d and empty inputs "
        "('mean' is NaN).",
    )


# ------------------------------------------------------------------------- BCE, BCE with logits


def _register_binary() -> None:
    def bce_inputs() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(1630)
        probability = (1 / (1 + np.exp(-2 * rng.standard_normal((4, 5))))).astype(np.float32)
        target = rng.random((4, 5)).astype(np.float32)
        # Exactly 0 and 1 against opposite targets: log clamped at -100, a loss of 100.
        probability.flat[:8] = [0.0, 1.0, 0.0, 1.0, 1e-7, 1 - 2**-24, 0.5, 0.0]
        target.flat[:8] = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.5, 0.25]
        return {
            "input": probability,
            "target": target,
            "row_weight": (rng.random(5) + 0.2).astype(np.float32),
            "weight": (rng.random((4, 5)) + 0.2).astype(np.float32),
            "scalar": np.array(0.3, np.float32),
            "scalar_target": np.array(0.8, np.float32),
            "cube": rng.random((4, 5, 2)).astype(np.float32),
            "cube_target": rng.random((4, 5, 2)).astype(np.float32),
            "channel_weight": (rng.random((5, 1)) + 0.5).astype(np.float32),
            "empty": np.zeros(0, np.float32),
        }

    name = "binary_cross_entropy"
    calls = _calls(name, [({}, _REDUCTIONS)])
    calls += _calls(name, [({}, ("none",))], "row weight", args={**_ARGS, "weight": "row_weight"})
    calls += _calls(name, [({}, ("sum",))], "weight", args={**_ARGS, "weight": "weight"})
    calls += _calls(name, [({}, ("mean",))], "0-d", args={"input": "scalar", "target": "scalar_target"})
    cube = {"input": "cube", "target": "cube_target", "weight": "channel_weight"}
    calls += _calls(name, [({}, ("none",))], "3-d channel weight", args=cube)
    calls += _calls(name, [({}, ("mean",))], "empty", args={"input": "empty", "target": "empty"})
    _register_table(
        "bce",
        calls,
        bce_inputs,
        plain=_PITFALLS["bce"],
        notes="Probabilities of exactly 0 and 1: PyTorch clamps the logarithms at -100 (loss 100), its gradient "
        "(x - y) / max(x (1 - x), 1e-12) is finite there and the target's, -logit(x), infinite.",
    )

    def logits_inputs() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(1632)
        logits = (3 * rng.standard_normal((4, 5))).astype(np.float32)
        target = rng.random((4, 5)).astype(np.float32)
        logits.flat[:8] = [100.0, -100.0, 100.0, -100.0, 30.0, -30.0, 0.0, 1e-3]
        # PyTorch does not range-check the targets of the logits form: 1.5 and -0.5 are taken as they are.
        target.flat[:9] = [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.3, 1.5, -0.5]
        pos_weight = (3 * rng.random(5)).astype(np.float32)
        pos_weight[:2] = [0.0, 1.0]
        return {
            "input": logits,
            "target": target,
            "weight": (rng.random(5) + 0.2).astype(np.float32),
            "pos_weight": pos_weight,
            "image": (2 * rng.standard_normal((2, 5, 2, 3))).astype(np.float32),
            "image_target": (rng.random((2, 5, 2, 3)) > 0.5).astype(np.float32),
            "channel_pos_weight": (rng.random((5, 1, 1)) * 4).astype(np.float32),
            "scalar": np.array(-1.5, np.float32),
            "scalar_target": np.array(1.0, np.float32),
        }

    name = "binary_cross_entropy_with_logits"
    calls = _calls(name, [({}, _REDUCTIONS)])
    calls += _calls(name, [({}, ("mean",))], "weight", args={**_ARGS, "weight": "weight"})
    calls += _calls(name, [({}, ("none",))], "pos_weight", args={**_ARGS, "pos_weight": "pos_weight"})
    both = {**_ARGS, "weight": "weight", "pos_weight": "pos_weight"}
    calls += _calls(name, [({}, ("sum",))], "weight and pos_weight", args=both)
    image = {"input": "image", "target": "image_target", "pos_weight": "channel_pos_weight"}
    calls += _calls(name, [({}, ("none", "mean"))], "n-c-h-w channel pos_weight", args=image)
    calls += _calls(name, [({}, ("mean",))], "0-d", args={"input": "scalar", "target": "scalar_target"})
    _register_table(
        "bce-logits",
        calls,
        logits_inputs,
        plain=_PITFALLS["bce-logits"],
        notes="Logits of ±100 and ±30 (the stable log_sigmoid), pos_weight of 0 and 1 among others, a (C, 1, 1) "
        "pos_weight of an (N, C, H, W) input.",
    )


# ---------------------------------------------------------------------------------------- kl_div


def _register_kl() -> None:
    def kl_inputs() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(1640)
        target = rng.dirichlet(np.ones(5), 4).astype(np.float32)
        target[0, 1] = 0.0  # xlogy(0, 0) = 0; the target's gradient there is NaN, as in PyTorch
        positive = rng.dirichlet(np.ones(5), 4).astype(np.float32)
        return {
            "input": _log_softmax(rng.standard_normal((4, 5)), 1),
            "target": target,
            "log_target": np.log(positive).astype(np.float32),
            "row": rng.dirichlet(np.ones(5)).astype(np.float32),
            "row_input": _log_softmax(rng.standard_normal(5), 0),
            "scalar": np.array(-0.7, np.float32),
            "scalar_target": np.array(0.4, np.float32),
            "empty": np.zeros((0, 5), np.float32),
        }

    reductions = ("none", "batchmean", "sum", "mean")
    calls = _calls("kl_div", [({}, reductions)])
    calls += _calls("kl_div", [({"log_target": True}, reductions)], args={"input": "input", "target": "log_target"})
    calls += _calls("kl_div", [({}, ("batchmean",))], "row target", args={"input": "input", "target": "row"})
    calls += _calls("kl_div", [({}, ("batchmean",))], "row input", args={"input": "row_input", "target": "target"})
    calls += _calls("kl_div", [({}, ("batchmean",))], "0-d", args={"input": "scalar", "target": "scalar_target"})
    calls += _calls("kl_div", [({}, ("batchmean",))], "empty", args={"input": "empty", "target": "empty"})
    _register_table(
        "kl",
        calls,
        kl_inputs,
        plain=_PITFALLS["kl"],
        notes="'mean' divides by every element (PyTorch warns that it is not the KL divergence; torchsem does not "
        "warn), 'batchmean' by input.shape[0] (not the broadcast batch; a 0-d input's is the sum).",
    )


# --------------------------------------------------------------------------------- the modules

# (torch.nn class, constructor arrays {argument: array name}, constructor options, input array, target array)
_MODULES: tuple[tuple[str, dict[str, str], dict[str, Any], str, str], ...] = (
    (
        "CrossEntropyLoss",
        {"weight": "class_weight"},
        {"ignore_index": 1, "label_smoothing": 0.1},
        "logits",
        "ce_classes",
    ),
    ("NLLLoss", {"weight": "class_weight"}, {"reduction": "sum"}, "log_probabilities", "classes"),
    ("MSELoss", {}, {"reduction": "none"}, "prediction", "value"),
    ("L1Loss", {}, {}, "prediction", "value"),
    ("SmoothL1Loss", {}, {"beta": 0.5}, "prediction", "value"),
    ("HuberLoss", {}, {"delta": 2.0}, "prediction", "value"),
    ("BCELoss", {"weight": "row_weight"}, {}, "probability", "label"),
    ("BCEWithLogitsLoss", {"weight": "row_weight", "pos_weight": "pos_weight"}, {}, "prediction", "label"),
    ("KLDivLoss", {}, {"reduction": "batchmean", "log_target": True}, "log_probabilities", "log_target"),
)


def _module_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1650)
    classes = rng.integers(0, 5, 4).astype(np.int64)
    classes[:2] = [1, -100]
    ce_classes = classes.copy()
    ce_classes[1] = 3  # CrossEntropyLoss(ignore_index=1) ignores the 1; -100 would be out of range there
    return {
        "ce_classes": ce_classes,
        "logits": (2 * rng.standard_normal((4, 5))).astype(np.float32),
        "log_probabilities": _log_softmax(rng.standard_normal((4, 5)), 1),
        "classes": classes,
        "class_weight": (rng.random(5) + 0.25).astype(np.float32),
        "prediction": (2 * rng.standard_normal((4, 5))).astype(np.float32),
        "value": rng.standard_normal((4, 5)).astype(np.float32),
        "probability": rng.random((4, 5)).astype(np.float32),
        "label": (rng.random((4, 5)) > 0.4).astype(np.float32),
        "row_weight": (rng.random(5) + 0.25).astype(np.float32),
        "pos_weight": (3 * rng.random(5)).astype(np.float32),
        "log_target": _log_softmax(rng.standard_normal((4, 5)), 1),
    }


def _modules_torch(inputs):
    import torch

    outputs: dict[str, Any] = {}
    for label, arrays, options, input_name, target_name in _MODULES:
        module = getattr(torch.nn, label)(**{k: torch.from_numpy(inputs[v]) for k, v in arrays.items()}, **options)
        x = torch.from_numpy(inputs[input_name]).requires_grad_(True)
        loss = module(x, torch.from_numpy(inputs[target_name]))
        reduced = options.get("reduction", "mean") != "none"
        cotangent = torch.ones(()) if reduced else torch.from_numpy(_cotangent(tuple(loss.shape)))
        (grad,) = torch.autograd.grad(loss, [x], cotangent)
        state = module.state_dict()
        outputs[f"{label} loss"] = loss.detach()
        outputs[f"{label} dinput"] = grad
        outputs[f"{label} state_dict keys"] = ",".join(state)
        outputs.update({f"{label} state_dict {key}": value for key, value in state.items()})
    return outputs


def _modules_jax(inputs, jit: bool):
    import jax
    import jax.numpy as jnp

    from torchsem import nn as _loss
    from torchsem.convert import to_torch_state_dict

    arrays = _jax_arrays(inputs)
    outputs: dict[str, Any] = {}
    for label, given, options, input_name, target_name in _MODULES:
        module = getattr(_loss, label)(**{k: arrays[v] for k, v in given.items()}, **options)
        x, target = arrays[input_name], arrays[target_name]
        variables = module.init(jax.random.key(0), x, target)
        reduced = options.get("reduction", "mean") != "none"

        def loss_and_grad(variables, x, target, module=module, reduced=reduced):
            loss, pullback = jax.vjp(lambda point: module.apply(variables, point, target), x)
            cotangent = jnp.ones((), loss.dtype) if reduced else jnp.asarray(_cotangent(loss.shape))
            return loss, pullback(cotangent)[0]

        loss, grad = jitted(loss_and_grad, jit)(variables, x, target)
        state = to_torch_state_dict(variables)
        outputs[f"{label} loss"] = loss
        outputs[f"{label} dinput"] = grad
        outputs[f"{label} state_dict keys"] = ",".join(state)
        outputs.update({f"{label} state_dict {key}": value for key, value in state.items()})
    return outputs


def _register_modules() -> None:
    register(
        Scenario(
            name="losses_more/modules",
            section=_SECTION,
            mapping="torch.nn.CrossEntropyLoss(weight, ...)(x, t) and the 8 others -> torchsem.nn's, "
            "module.apply(module.init(...), x, t); state_dict() -> to_torch_state_dict(variables)",
            make_inputs=_module_inputs,
            torch_program=_modules_torch,
            jax_program=_modules_jax,
            notes="weight/pos_weight are buffers: PyTorch's state_dict keys and values, from batch_stats.",
        )
    )


# ------------------------------------------------------------------------------------- errors


@dataclasses.dataclass(frozen=True)
class _Bad:
    """A call PyTorch refuses (or, for ``no error``, accepts). ``traceable``: checked on shapes and
    dtypes only, so it raises under ``jax.jit`` too; value checks (class indices, BCE's [0, 1]) are
    made on concrete arrays, and run eagerly."""

    case: str
    loss: str
    arrays: dict[str, np.ndarray]
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    traceable: bool = True


def _f(*shape: int) -> np.ndarray:
    return np.full(shape, 0.5, np.float32)


def _i(values: Any) -> np.ndarray:
    return np.asarray(values, np.int64)


def _nll(case: str, input_shape: tuple[int, ...], target: Any, traceable: bool = True, weight=None, **options):
    arrays = {"input": _f(*input_shape), "target": target if isinstance(target, np.ndarray) else _i(target)}
    if weight is not None:
        arrays["weight"] = _f(*weight)
    return _Bad(f"nll_loss {case}", "nll_loss", arrays, options, traceable)


_NLL_ERRORS = (
    _nll("0-d input", (), 0),
    _nll("batch mismatch", (3, 5), [0, 1]),
    _nll("0-d target of a batch", (3, 5), 1),
    _nll("multi-target", (3, 5), np.zeros((3, 1), np.int64)),
    _nll("unbatched, 2 targets", (5,), [1, 2]),
    _nll("unbatched, 2-d target", (5,), np.zeros((1, 1), np.int64)),
    _nll("3-d target size", (3, 5, 2), np.zeros((3, 3), np.int64)),
    _nll("4-d target size", (3, 5, 2, 2), np.zeros((3, 2, 3), np.int64)),
    _nll("4-d input, 1-d target", (3, 5, 2, 2), np.zeros(3, np.int64)),
    _nll("5-d target size", (2, 5, 2, 2, 2), np.zeros((2, 2, 2, 3), np.int64)),
    _nll("weight size", (3, 5), [0, 1, 1], weight=(4,)),
    _nll("2-d weight", (3, 5), [0, 1, 1], weight=(5, 1)),
    _nll("weight size 3-d", (3, 5, 2), np.zeros((3, 2), np.int64), weight=(4,)),
    _nll("weight size 4-d", (3, 5, 2, 2), np.zeros((3, 2, 2), np.int64), weight=(4,)),
    _nll("weight size unbatched", (5,), 1, weight=(4,)),
    _nll("reduction", (3, 5), [0, 1, 1], reduction="avg"),
    _nll("float targets", (3, 5), np.zeros(3, np.float32)),
    _nll("ignored index out of range is fine", (3, 5), [0, 7, 1], ignore_index=7),
    _nll("index too large", (3, 5), [0, 5, 1], traceable=False),
    _nll("index negative", (3, 5), [0, -1, 1], traceable=False),
    _nll("index too large, 4-d, none", (3, 5, 2, 2), np.full((3, 2, 2), 7), traceable=False, reduction="none"),
    _nll("index too large, 5-d", (2, 5, 2, 2, 2), np.full((2, 2, 2, 2), 9), traceable=False),
    _nll("index too large, unbatched", (5,), 7, traceable=False),
)


def _pair(loss: str, case: str, input: np.ndarray, target: np.ndarray, traceable: bool = True, **options):
    arrays = {"input": input, "target": target}
    arrays.update({k: options.pop(k) for k in ("weight", "pos_weight") if k in options})
    return _Bad(f"{loss} {case}", loss, arrays, options, traceable)


_REGRESSION_ERRORS = (
    *(
        bad
        for loss in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")
        for bad in (
            _pair(loss, "no broadcast", _f(3, 4), _f(3)),
            _pair(loss, "reduction", _f(3, 4), _f(3, 4), reduction="avg"),
        )
    ),
    _pair("mse_loss", "weight size", _f(3, 4), _f(3, 4), weight=_f(4)),
    _pair("mse_loss", "weighted reduction", _f(3, 4), _f(3, 4), weight=_f(3, 4), reduction="avg"),
    _pair("l1_loss", "weight size", _f(3, 4), _f(3, 4), weight=_f(3, 1)),
    _pair("l1_loss", "weighted reduction", _f(3, 4), _f(3, 4), weight=_f(3, 4), reduction="avg"),
    _pair("huber_loss", "weight size", _f(3), _f(3), weight=_f(1)),
    _pair("huber_loss", "weighted reduction", _f(3), _f(3), weight=_f(3), reduction="avg"),
    _pair("huber_loss", "delta 0", _f(3), _f(3), delta=0.0),
    _pair("huber_loss", "negative delta", _f(3), _f(3), delta=-1.0),
    _pair("smooth_l1_loss", "negative beta", _f(3), _f(3), beta=-1.0),
    _pair("smooth_l1_loss", "beta 0, reduction", _f(3), _f(3), beta=0.0, reduction="avg"),
)

_BINARY_ERRORS = (
    _pair("binary_cross_entropy", "target size", _f(3), _f(3, 1)),
    _pair("binary_cross_entropy", "reduction", _f(3), _f(3), reduction="avg"),
    _pair("binary_cross_entropy", "weight does not broadcast", _f(3, 4), _f(3, 4), weight=_f(3)),
    _pair("binary_cross_entropy", "weight grows the input", _f(4), _f(4), weight=_f(3, 4)),
    _pair("binary_cross_entropy", "input above 1", np.array([0.5, 1.5], np.float32), _f(2), traceable=False),
    _pair("binary_cross_entropy", "input negative", np.array([0.5, -0.5], np.float32), _f(2), traceable=False),
    _pair("binary_cross_entropy", "input NaN", np.array([0.5, np.nan], np.float32), _f(2), traceable=False),
    _pair("binary_cross_entropy", "target above 1", _f(2), np.array([0.5, 2.0], np.float32), traceable=False),
    _pair(
        "binary_cross_entropy",
        "first bad element is the target's",
        np.array([0.5, 1.5], np.float32),
        np.array([2.0, 0.0], np.float32),
        traceable=False,
    ),
    _pair("binary_cross_entropy_with_logits", "target size", _f(3), _f(3, 1)),
    _pair("binary_cross_entropy_with_logits", "reduction", _f(3), _f(3), reduction="avg"),
    _pair("binary_cross_entropy_with_logits", "pos_weight does not broadcast", _f(3, 4), _f(3, 4), pos_weight=_f(3)),
    _pair("binary_cross_entropy_with_logits", "pos_weight grows the input", _f(4), _f(4), pos_weight=_f(3, 4)),
    _pair("binary_cross_entropy_with_logits", "pos_weight of a 0-d input", _f(), _f(), pos_weight=_f(1)),
    _pair("binary_cross_entropy_with_logits", "weight does not broadcast", _f(3, 4), _f(3, 4), weight=_f(3)),
    _pair("binary_cross_entropy_with_logits", "weight grows the input", _f(4), _f(4), weight=_f(3, 4)),
    _pair(
        "binary_cross_entropy_with_logits",
        "target outside [0, 1] is fine",
        _f(3),
        np.array([2.0, -1.0, 0.5], np.float32),
    ),
)

_KL_ERRORS = (
    _pair("kl_div", "no broadcast", _f(3, 4), _f(3), reduction="none"),
    _pair("kl_div", "log_target, no broadcast", _f(3, 4), _f(3), reduction="sum", log_target=True),
    _pair("kl_div", "reduction", _f(3, 4), _f(3, 4), reduction="avg"),
    _pair("kl_div", "integer target", _f(3, 4), np.zeros((3, 4), np.int64), reduction="sum"),
    _pair("kl_div", "integer input", np.zeros((3, 4), np.int64), _f(3, 4), reduction="sum"),
)


def _errors_torch(cases: tuple[_Bad, ...]):
    def program(inputs):
        import torch
        import torch.nn.functional as F

        outputs: dict[str, Any] = {}
        for bad in cases:
            tensors = {name: torch.from_numpy(value) for name, value in bad.arrays.items()}
            others = {name: t for name, t in tensors.items() if name not in _ARGS}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the size warning comes before some errors; it is not compared here
                result = error_outputs(
                    lambda bad=bad, t=tensors, o=others: getattr(F, bad.loss)(
                        t["input"], t["target"], **o, **bad.options
                    )
                )
            outputs.update({f"{bad.case} {key}": value for key, value in result.items()})
        return outputs

    return program


def _errors_jax(cases: tuple[_Bad, ...]):
    def program(inputs, jit: bool):
        import jax

        from torchsem import losses

        outputs: dict[str, Any] = {}
        for bad in cases:
            arrays = _jax_arrays(bad.arrays)

            def call(arrays, bad=bad):
                others = {name: v for name, v in arrays.items() if name not in _ARGS}
                return getattr(losses, bad.loss)(arrays["input"], arrays["target"], **others, **bad.options)

            # Shape and dtype errors are raised while tracing under jit; value checks need concrete arrays.
            attempt: Callable[[dict[str, np.ndarray]], Any] = jax.jit(call) if jit and bad.traceable else call
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = error_outputs(functools.partial(attempt, arrays))
            outputs.update({f"{bad.case} {key}": value for key, value in result.items()})
        return outputs

    return program


_CONTAINED = Tolerance(
    0.0,
    0.0,
    reason="torchsem takes any integer dtype of class indices and says so around PyTorch's own message",
    text="contained",
)


def _register_errors() -> None:
    for name, cases in (
        ("nll", _NLL_ERRORS),
        ("regression", _REGRESSION_ERRORS),
        ("binary", _BINARY_ERRORS),
        ("kl", _KL_ERRORS),
    ):
        register(
            Scenario(
                name=f"losses_more/errors-{name}",
                section=_SECTION,
                mapping="F.<loss>(bad arguments) raises -> torchsem.losses.<loss> raises PyTorch's error type and "
                "message (shape and dtype errors also under jax.jit)",
                torch_program=_errors_torch(cases),
                jax_program=_errors_jax(cases),
                tolerances={"nll_loss float targets error message": _CONTAINED} if name == "nll" else {},
            )
        )


_register_nll()
_register_regression()
_register_binary()
_register_kl()
_register_modules()
_register_errors()
