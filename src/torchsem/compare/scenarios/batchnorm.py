"""BatchNorm parity (family ``batchnorm``): torchsem.nn.BatchNorm against torch.nn.BatchNorm1d/2d/3d.

- The grid, through the generic module runner (:class:`~torchsem.compare.ModuleCase`): every
  rank (2, 3, 4, 5) x momentum (0.1, 0.5, None) x affine x track_running_stats, each a sequence
  of seven calls that switches between train() and eval() on fresh batches: PyTorch's seeded
  initial state bit for bit, then the same randomly moved state loaded into both; outputs,
  running statistics and num_batches_tracked after every call, and the gradients of
  ``sum(y * cotangent)`` with respect to the input, weight and bias (None where PyTorch has no
  parameter). ``bias=False`` and PyTorch's error types and messages go through it too.
- The running-mean trace of the document's section 5 on numpy inputs (train, train, eval, eval,
  train, train), with flax.linen.BatchNorm as the plain-JAX pitfall (biased running variance,
  momentum as decay).
- Large-mean inputs (mean 1e4, std 1e-2), where flax's default fast variance is far off.
- Edge cases: NaN/Inf propagation, eps=0 in eval with a zero running variance, channels-last
  (axis=-1), PyTorch's error messages (eps=0 in training among them).
- SyncBatchNorm: ``axis_name`` under ``jax.shard_map`` over every local device, with a per-example
  mask for uneven per-device batches, against PyTorch on the concatenated real examples.
- PyTorch's own test inputs: zero-size batches (``(0, C, ...)`` and a zero spatial extent) in
  train and eval, between non-empty ones (outputs, gradients, running statistics and
  num_batches_tracked after each call), and ``bias=False`` (a weight without a bias: the grid's
  sequence, plus the state_dict keys).

Inputs are small numpy arrays, so the recording stays small.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases
from .._scenario import Scenario, Tolerance, register

_SECTION = "torchsem.nn.BatchNorm (the document's bn1; docs/semantics.md section 6)"
_CHANNELS = 3
_SHAPES = {2: (6, 3), 3: (4, 3, 5), 4: (3, 3, 2, 4), 5: (2, 3, 2, 3, 2)}
_TORCH_CLASS = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}
_SEQUENCE = ("train", "train", "eval", "train", "eval", "eval", "train")
# The grid's inputs are 1 + 2 * N(0, 1): |mean| / std = 0.5 keeps y = x * alpha + beta formed from
# products below ~16, whose last bits (where PyTorch's double accumulation and XLA's float32 one
# may round apart) lie under atol=1e-6. Ill-conditioned inputs (mean 1e4, std 1e-2) are covered by
# batchnorm/large-mean and tests/test_batchnorm.py with tolerances scaled to |mean| / std.
_GRID_INPUT = {rank: Input(shape, offset=1.0, scale=2.0) for rank, shape in _SHAPES.items()}

# y = x * alpha + beta is formed from products of size |mean| / std (1e6 here); PyTorch's CPU kernel
# accumulates the variance in double where XLA accumulates in float32, so alpha may differ in its
# last bit, which moves y by a few ulps of those products (2^-24 * 1e6 = 0.06).
_LARGE_MEAN_OUTPUT = Tolerance(
    1e-5,
    0.25,
    reason="y = x*alpha + beta with |x*alpha| ~ 1e6: one ulp of alpha "
    "(variance summed in double by PyTorch, float32 here) moves y by ~0.06",
)


# dweight = sum((x - mean) * dy) * invstd and dbias = sum(dy) add 6-72 terms of size ~1 that largely
# cancel: PyTorch sums each row in float32 and the rows in double, XLA all in float32, and each ends
# up ~n * 2^-24 * max|term| (about 1e-6 here) from the exact sum, in either direction.
_PARAMETER_GRADIENT = Tolerance(
    1e-5,
    4e-6,
    reason="float32 sums of up to 72 terms of size ~1 with "
    "cancellation: PyTorch and XLA are each ~1e-6 from the exact sum",
)


def _stat_outputs(prefix: str, running_mean: Any, running_var: Any, num_batches_tracked: Any) -> dict[str, Any]:
    return {
        f"{prefix}.running_mean": running_mean,
        f"{prefix}.running_var": running_var,
        f"{prefix}.num_batches_tracked": num_batches_tracked,
    }


# =============================================================================== the parity grid


_PER_CALL = ("y", "dx", "dweight", "dbias", "running_mean", "running_var", "num_batches_tracked")


def _stack_calls(
    per_call: list[dict[str, Any]], stack: Callable[[list[Any]], Any], names: tuple[str, ...] = _PER_CALL
) -> dict[str, Any]:
    """One output per name, stacked over the calls (None when it is None in every call)."""
    stacked = {}
    for name in names:
        values = [outputs[name] for outputs in per_call]
        stacked[name] = None if all(v is None for v in values) else stack(values)
    return stacked


def _load_parameters(torch: Any, layer: Any, inputs: Mapping[str, np.ndarray]) -> None:
    """Copy ``inputs['weight']``/``['bias']`` into whichever of the two ``layer`` has."""
    with torch.no_grad():
        for name in ("weight", "bias"):
            if getattr(layer, name) is not None:
                getattr(layer, name).copy_(torch.from_numpy(inputs[name]))


def _torch_call_outputs(layer: Any, y: Any, x: Any) -> dict[str, Any]:
    """One call's outputs after ``backward()``: y, the gradients (None without the parameter), the buffers."""
    outputs = {"y": y.detach(), "dx": x.grad}
    for name in ("weight", "bias"):
        parameter = getattr(layer, name)
        outputs[f"d{name}"] = None if parameter is None else parameter.grad.clone()
    layer.zero_grad(set_to_none=True)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        buffer = getattr(layer, name)
        outputs[name] = None if buffer is None else buffer.clone()
    return outputs


def _jax_sequence(
    layer, variables: dict, calls: list[tuple[str, Any, Any]], jit: bool, mask: Any = None
) -> list[tuple[Any, Any, dict, dict]]:
    """Run ``layer`` over ``(mode, x, cotangent)`` calls; per call ``(y, dx, dparams, variables)``."""
    import jax
    import jax.numpy as jnp

    def step(variables, x, cotangent, train):
        params = variables.get("params", {})
        rest = {k: v for k, v in variables.items() if k != "params"}

        def loss(params, x):
            y, updates = layer.apply(
                {"params": params, **rest}, x, use_running_average=not train, mask=mask, mutable=["batch_stats"]
            )
            return jnp.sum(y * cotangent), (y, updates)

        (_, (y, updates)), (dparams, dx) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)
        return y, dx, dparams, {**variables, **updates}

    if jit:
        step = jax.jit(step, static_argnums=3)
    results = []
    for mode, x, cotangent in calls:
        y, dx, dparams, variables = step(variables, x, cotangent, mode == "train")
        results.append((y, dx, dparams, variables))
    return results


def _jax_outputs(y, dx, dparams: Mapping, variables: Mapping) -> dict[str, Any]:
    stats = variables.get("batch_stats", {})
    return {
        "y": y,
        "dx": dx,
        "dweight": dparams.get("weight"),
        "dbias": dparams.get("bias"),
        **{name: stats.get(name) for name in ("running_mean", "running_var", "num_batches_tracked")},
    }


def _with_parameters(variables: dict, inputs: Mapping[str, np.ndarray]) -> dict:
    """``variables`` with its ``params`` (those the layer has) taken from ``inputs``."""
    if "params" in variables:
        variables = {**variables, "params": {name: inputs[name] for name in variables["params"]}}
    return variables


def _module_cases() -> list[ModuleCase | ErrorCase]:
    """The parity grid, bias=False and PyTorch's error messages, through the generic module runner."""
    cases: list[ModuleCase | ErrorCase] = []
    for seed, (rank, momentum, affine, track) in enumerate(
        itertools.product((2, 3, 4, 5), (0.1, 0.5, None), (True, False), (True, False)), start=100
    ):
        cls = _TORCH_CLASS[rank]
        cases.append(
            ModuleCase(
                f"torch.nn.{cls}",
                f"torchsem.nn.{cls}",
                (_CHANNELS,),
                {"momentum": momentum, "affine": affine, "track_running_stats": track},
                inputs=(_GRID_INPUT[rank],),
                modes=_SEQUENCE,
                seed=seed,
                perturb=True,
                tolerances={"grad weight": _PARAMETER_GRADIENT, "grad bias": _PARAMETER_GRADIENT},
            )
        )
    for seed, (rank, track) in enumerate([(2, True), (3, True), (4, True), (5, False)], start=200):
        cls = _TORCH_CLASS[rank]
        cases.append(
            ModuleCase(
                f"torch.nn.{cls}",
                f"torchsem.nn.{cls}",
                (_CHANNELS,),
                {"track_running_stats": track, "bias": False},
                inputs=(_GRID_INPUT[rank],),
                modes=_NO_BIAS_SEQUENCE,
                seed=seed,
                perturb=True,
                tolerances={"grad weight": _PARAMETER_GRADIENT},
            )
        )
    for name, (cls, shape, kwargs, train) in _ERRORS.items():
        cases.append(
            ErrorCase(
                f"torch.nn.{cls}",
                f"torchsem.nn.{cls}",
                name,
                kwargs=kwargs,
                inputs=(shape,),
                mode="train" if train else "eval",
            )
        )
    return cases


# ======================================================= the document's running-mean trace (section 5)

_TRACE = (("train", "x1"), ("train", "x2"), ("eval", "x3"), ("eval", "x4"), ("train", "x1"), ("train", "x2"))


def _trace_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1029)
    return {name: rng.standard_normal((1, 3, 8)).astype(np.float32) for name in ("x1", "x2", "x3", "x4")}


def _trace_torch(inputs):
    import torch

    layer = torch.nn.BatchNorm1d(3)
    outputs: dict[str, Any] = _stat_outputs(
        "init", layer.running_mean.clone(), layer.running_var.clone(), layer.num_batches_tracked.clone()
    )
    for step, (mode, name) in enumerate(_TRACE):
        layer.train(mode == "train")
        with torch.no_grad():
            y = layer(torch.from_numpy(inputs[name]))
        prefix = f"step{step}.{mode}({name})"
        outputs[f"{prefix}.y"] = y
        outputs.update(
            _stat_outputs(
                prefix, layer.running_mean.clone(), layer.running_var.clone(), layer.num_batches_tracked.clone()
            )
        )
    return outputs


def _trace_jax(inputs, jit: bool):
    import jax

    from torchsem.nn import BatchNorm1d

    layer = BatchNorm1d(3)
    variables = layer.init(jax.random.PRNGKey(0), inputs["x1"], use_running_average=True)

    def step(variables, x, train):
        y, updates = layer.apply(variables, x, use_running_average=not train, mutable=["batch_stats"])
        return y, {**variables, **updates}

    if jit:
        step = jax.jit(step, static_argnums=2)
    stats = variables["batch_stats"]
    outputs: dict[str, Any] = _stat_outputs(
        "init", stats["running_mean"], stats["running_var"], stats["num_batches_tracked"]
    )
    for index, (mode, name) in enumerate(_TRACE):
        y, variables = step(variables, inputs[name], mode == "train")
        stats = variables["batch_stats"]
        prefix = f"step{index}.{mode}({name})"
        outputs[f"{prefix}.y"] = y
        outputs.update(_stat_outputs(prefix, stats["running_mean"], stats["running_var"], stats["num_batches_tracked"]))
    return outputs


def _trace_flax(inputs):
    """The same trace with flax.linen.BatchNorm, ported the obvious way (momentum=0.9 is torch's 0.1)."""
    import flax.linen as flax_nn
    import jax

    layer = flax_nn.BatchNorm(axis=1, momentum=0.9, epsilon=1e-5)
    variables = layer.init(jax.random.PRNGKey(0), inputs["x1"], use_running_average=True)
    stats = variables["batch_stats"]
    outputs: dict[str, Any] = {"init.running_mean": stats["mean"], "init.running_var": stats["var"]}
    for index, (mode, name) in enumerate(_TRACE):
        y, updates = layer.apply(variables, inputs[name], use_running_average=mode == "eval", mutable=["batch_stats"])
        variables = {**variables, **updates}
        stats = variables["batch_stats"]
        prefix = f"step{index}.{mode}({name})"
        outputs[f"{prefix}.y"] = y
        outputs[f"{prefix}.running_mean"] = stats["mean"]
        outputs[f"{prefix}.running_var"] = stats["var"]
    return outputs


register(
    Scenario(
        name="batchnorm/running-mean-trace",
        section="5. model.eval() and model.train(): the running-mean trace (numpy inputs)",
        mapping="bn.train(); bn(x) / bn.eval(); bn(x) -> bn.apply(v, x, use_running_average=not train, "
        "mutable=['batch_stats'])",
        make_inputs=_trace_inputs,
        torch_program=_trace_torch,
        jax_program=_trace_jax,
        plain_jax_program=_trace_flax,
        pitfall="flax.linen.BatchNorm updates its running variance with the biased batch variance (divide by n, "
        "PyTorch: n - 1), takes momentum as the decay (torch 0.1 == flax 0.9), has no momentum=None "
        "and no num_batches_tracked.",
    )
)


# ============================================================= large mean: fast variance pitfall


def _large_mean_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {"x": (1e4 + 1e-2 * rng.standard_normal((4, 3, 8))).astype(np.float32)}


def _large_mean_torch(inputs):
    import torch

    layer = torch.nn.BatchNorm1d(3)
    y = layer(torch.from_numpy(inputs["x"]))
    return {"y": y, "running_mean": layer.running_mean, "running_var": layer.running_var}


def _large_mean_jax(inputs, jit: bool):
    import jax

    from torchsem.nn import BatchNorm1d

    layer = BatchNorm1d(3)
    variables = layer.init(jax.random.PRNGKey(0), inputs["x"], use_running_average=True)

    def forward(variables, x):
        return layer.apply(variables, x, use_running_average=False, mutable=["batch_stats"])

    y, updates = (jax.jit(forward) if jit else forward)(variables, inputs["x"])
    stats = updates["batch_stats"]
    return {"y": y, "running_mean": stats["running_mean"], "running_var": stats["running_var"]}


def _large_mean_flax(inputs):
    import flax.linen as flax_nn
    import jax

    layer = flax_nn.BatchNorm(axis=1, momentum=0.9, epsilon=1e-5)  # use_fast_variance=True by default
    variables = layer.init(jax.random.PRNGKey(0), inputs["x"], use_running_average=True)
    y, updates = layer.apply(variables, inputs["x"], use_running_average=False, mutable=["batch_stats"])
    return {"y": y, "running_mean": updates["batch_stats"]["mean"], "running_var": updates["batch_stats"]["var"]}


register(
    Scenario(
        name="batchnorm/large-mean",
        section=_SECTION,
        mapping="torch.nn.BatchNorm1d(3) on mean 1e4, std 1e-2 inputs -> torchsem.nn.BatchNorm1d(3): two-pass variance",
        make_inputs=_large_mean_inputs,
        torch_program=_large_mean_torch,
        jax_program=_large_mean_jax,
        plain_jax_program=_large_mean_flax,
        tolerances={"y": _LARGE_MEAN_OUTPUT},
        pitfall="flax.linen.BatchNorm's default use_fast_variance=True computes E[x^2] - E[x]^2, which cancels "
        "catastrophically for a large mean: its normalised outputs are off by order 1-10.",
    )
)


# ======================================================================= edge cases


def _nonfinite_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 4, 3)).astype(np.float32)
    x[1, 0, 2] = np.nan  # channel 0: a NaN
    x[2, 1, 0] = np.inf  # channel 1: +inf
    x[0, 2, 1] = np.inf  # channel 2: +inf and -inf
    x[3, 2, 2] = -np.inf  # channel 3 stays finite
    return {
        "x": x,
        "cotangent": rng.standard_normal((4, 4, 3)).astype(np.float32),
        "running_mean": rng.standard_normal(4).astype(np.float32),
        "running_var": rng.uniform(0.5, 2.0, 4).astype(np.float32),
    }


def _single_call_torch(
    make_layer: Callable[[Any], Any], train: bool, load_stats: bool = False, channels_last: bool = False
):
    def program(inputs):
        import torch

        layer = make_layer(torch)
        if load_stats:
            with torch.no_grad():
                layer.running_mean.copy_(torch.from_numpy(inputs["running_mean"]))
                layer.running_var.copy_(torch.from_numpy(inputs["running_var"]))
        layer.train(train)
        x = torch.from_numpy(inputs["x"]).requires_grad_(True)
        cotangent = torch.from_numpy(inputs["cotangent"])
        if channels_last:  # PyTorch's channels are dim 1: move them there and back
            y = layer(x.movedim(-1, 1)).movedim(1, -1)
        else:
            y = layer(x)
        (y * cotangent).sum().backward()
        outputs = {"y": y, "dx": x.grad}
        if layer.weight is not None:
            outputs.update({"dweight": layer.weight.grad, "dbias": layer.bias.grad})
        if layer.running_mean is not None:
            outputs.update(
                {
                    "running_mean": layer.running_mean,
                    "running_var": layer.running_var,
                    "num_batches_tracked": layer.num_batches_tracked,
                }
            )
        return outputs

    return program


def _single_call_jax(make_layer: Callable[[Any], Any], train: bool, load_stats: bool = False):
    def program(inputs, jit: bool):
        import jax

        from torchsem import nn

        layer = make_layer(nn)
        variables = dict(layer.init(jax.random.PRNGKey(0), inputs["x"], use_running_average=True))
        if load_stats:
            variables["batch_stats"] = {
                **variables["batch_stats"],
                "running_mean": inputs["running_mean"],
                "running_var": inputs["running_var"],
            }
        mode = "train" if train else "eval"
        ((y, dx, dparams, state),) = _jax_sequence(layer, variables, [(mode, inputs["x"], inputs["cotangent"])], jit)
        outputs = {"y": y, "dx": dx}
        if "weight" in dparams:
            outputs.update({"dweight": dparams["weight"], "dbias": dparams["bias"]})
        if "batch_stats" in state:
            outputs.update(
                {name: state["batch_stats"][name] for name in ("running_mean", "running_var", "num_batches_tracked")}
            )
        return outputs

    return program


for _train in (True, False):
    _mode = "train" if _train else "eval"
    register(
        Scenario(
            name=f"batchnorm/nonfinite-{_mode}",
            section=_SECTION,
            mapping="NaN/Inf inputs propagate through BatchNorm1d exactly as in PyTorch (outputs, stats, grads)",
            make_inputs=_nonfinite_inputs,
            torch_program=_single_call_torch(lambda t: t.nn.BatchNorm1d(4), _train, load_stats=True),
            jax_program=_single_call_jax(lambda m: m.BatchNorm1d(4), _train, load_stats=True),
        )
    )


def _zero_variance_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(12)
    return {
        "x": rng.standard_normal((5, 3, 4)).astype(np.float32),
        "cotangent": rng.standard_normal((5, 3, 4)).astype(np.float32),
        "running_mean": np.array([0.5, -1.0, 0.0], np.float32),
        "running_var": np.array([0.0, 1.0, 2.0], np.float32),
    }  # channel 0: 1 / sqrt(0 + 0) = inf


register(
    Scenario(
        name="batchnorm/eps0-eval-zero-running-var",
        section=_SECTION,
        mapping="torch.nn.BatchNorm1d(3, eps=0).eval() with running_var 0 -> torchsem.nn.BatchNorm1d(3, eps=0), "
        "use_running_average=True (inf/NaN where PyTorch has them)",
        make_inputs=_zero_variance_inputs,
        torch_program=_single_call_torch(lambda t: t.nn.BatchNorm1d(3, eps=0.0), False, load_stats=True),
        jax_program=_single_call_jax(lambda m: m.BatchNorm1d(3, eps=0.0), False, load_stats=True),
    )
)


def _channels_last_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(13)
    return {
        "x": (1.0 + 2.0 * rng.standard_normal((3, 4, 2, 5))).astype(np.float32),
        "cotangent": rng.standard_normal((3, 4, 2, 5)).astype(np.float32),
    }


for _train in (True, False):
    _mode = "train" if _train else "eval"
    register(
        Scenario(
            name=f"batchnorm/channels-last-{_mode}",
            section=_SECTION,
            mapping="torch.nn.BatchNorm2d(5) on x.movedim(-1, 1) -> torchsem.nn.BatchNorm2d(5, axis=-1) on NHWC x",
            make_inputs=_channels_last_inputs,
            torch_program=_single_call_torch(lambda t: t.nn.BatchNorm2d(5, momentum=0.3), _train, channels_last=True),
            jax_program=_single_call_jax(lambda m: m.BatchNorm2d(5, momentum=0.3, axis=-1), _train),
        )
    )


# ===================================================================== PyTorch's error messages

_ERRORS: dict[str, tuple[str, tuple[int, ...], dict[str, Any], bool]] = {
    # name: (class, input shape, kwargs, train)
    "one-value-per-channel": ("BatchNorm1d", (1, 3), {"num_features": 3}, True),
    "one-value-per-channel-3d": ("BatchNorm1d", (1, 3, 1), {"num_features": 3}, True),
    "one-value-and-wrong-channels": ("BatchNorm1d", (1, 4), {"num_features": 3}, True),
    "wrong-channels": ("BatchNorm1d", (4, 4), {"num_features": 3}, True),
    "wrong-channels-eval": ("BatchNorm1d", (4, 4), {"num_features": 3}, False),
    "wrong-channels-untracked": ("BatchNorm1d", (4, 4), {"num_features": 3, "track_running_stats": False}, True),
    "eps-zero-train": ("BatchNorm1d", (4, 3), {"num_features": 3, "eps": 0.0}, True),
    "eps-zero-untracked-eval": (
        "BatchNorm1d",
        (4, 3),
        {"num_features": 3, "eps": 0.0, "track_running_stats": False},
        False,
    ),
    "rank-1d": ("BatchNorm1d", (2, 3, 4, 5), {"num_features": 3}, True),
    "rank-2d": ("BatchNorm2d", (2, 3, 4), {"num_features": 3}, True),
    "rank-3d": ("BatchNorm3d", (2, 3, 4, 4), {"num_features": 3}, True),
}

# ================================================= PyTorch's own test inputs: bias=False, zero-size

_NO_BIAS_SEQUENCE = ("train", "eval", "train")  # shorter than the grid's: the recording stays small
register_module_cases("batchnorm", _SECTION, _module_cases())


# (mode, kind) per call: an empty batch first (init and train), then one that moves the running
# statistics, an empty one that must keep them (and count), then empty and non-empty eval.
_ZERO_SIZE_CALLS = (("train", "empty"), ("train", "full"), ("train", "empty"), ("eval", "empty"), ("eval", "full"))
_ZERO_SIZE_CASES: dict[str, tuple[str, tuple[int, ...], tuple[int, ...], dict[str, Any]]] = {
    # name: (class, empty shape, non-empty shape, constructor kwargs)
    "1d-0x5/momentum=none": ("BatchNorm1d", (0, 5), (4, 5), {"momentum": None}),
    "1d-0x5x9/momentum=0.1": ("BatchNorm1d", (0, 5, 9), (2, 5, 3), {"momentum": 0.1}),
    "2d-0x5x2x3/momentum=none": ("BatchNorm2d", (0, 5, 2, 3), (2, 5, 2, 3), {"momentum": None}),
    "3d-0x5x2x2x2/momentum=0.1": ("BatchNorm3d", (0, 5, 2, 2, 2), (2, 5, 2, 1, 2), {"momentum": 0.1}),
    "1d-2x5x0/momentum=none": ("BatchNorm1d", (2, 5, 0), (2, 5, 3), {"momentum": None}),
    "2d-0x5x2x3/bias=false": ("BatchNorm2d", (0, 5, 2, 3), (2, 5, 2, 3), {"bias": False}),
    "1d-0x5x9/track=false": ("BatchNorm1d", (0, 5, 9), (2, 5, 3), {"track_running_stats": False}),
}


def _zero_size_inputs(empty: tuple[int, ...], full: tuple[int, ...], seed: int) -> Callable[[], dict[str, np.ndarray]]:
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        inputs = {
            "weight": rng.uniform(0.5, 1.5, 5).astype(np.float32),
            "bias": rng.standard_normal(5).astype(np.float32),
        }
        for i, (_, kind) in enumerate(_ZERO_SIZE_CALLS):
            shape = empty if kind == "empty" else full
            inputs[f"x{i}"] = (0.5 + 1.5 * rng.standard_normal(shape)).astype(np.float32)
            inputs[f"cotangent{i}"] = rng.standard_normal(shape).astype(np.float32)
        return inputs

    return make


def _stack_zero_size_calls(per_call: list[dict[str, Any]], stack: Callable[[list[Any]], Any]) -> dict[str, Any]:
    """y and dx stacked over the empty calls and over the full ones (their shapes differ); the rest over all."""
    outputs = _stack_calls(per_call, stack, tuple(name for name in _PER_CALL if name not in ("y", "dx")))
    for name in ("y", "dx"):
        for kind in ("empty", "full"):
            outputs[f"{name}.{kind}"] = stack(
                [values[name] for values, (_, k) in zip(per_call, _ZERO_SIZE_CALLS) if k == kind]
            )
    return outputs


def _zero_size_torch(cls: str, kwargs: dict[str, Any]):
    def program(inputs):
        import torch

        layer = getattr(torch.nn, cls)(5, **kwargs)
        _load_parameters(torch, layer, inputs)
        per_call = []
        for i, (mode, _) in enumerate(_ZERO_SIZE_CALLS):
            layer.train(mode == "train")
            x = torch.from_numpy(inputs[f"x{i}"]).requires_grad_(True)
            y = layer(x)
            (y * torch.from_numpy(inputs[f"cotangent{i}"])).sum().backward()
            per_call.append(_torch_call_outputs(layer, y, x))
        return _stack_zero_size_calls(per_call, torch.stack)

    return program


def _zero_size_jax(cls: str, kwargs: dict[str, Any]):
    def program(inputs, jit: bool):
        import jax
        import jax.numpy as jnp

        from torchsem import nn

        layer = getattr(nn, cls)(5, **kwargs)
        # init on the empty batch itself
        variables = _with_parameters(
            dict(layer.init(jax.random.PRNGKey(0), inputs["x0"], use_running_average=False)), inputs
        )
        calls = [(mode, inputs[f"x{i}"], inputs[f"cotangent{i}"]) for i, (mode, _) in enumerate(_ZERO_SIZE_CALLS)]
        per_call = [_jax_outputs(*result) for result in _jax_sequence(layer, variables, calls, jit)]
        return _stack_zero_size_calls(per_call, jnp.stack)

    return program


_ZERO_SIZE_NOTES = (
    f"Five calls, {', '.join(f'{mode} ({kind})' for mode, kind in _ZERO_SIZE_CALLS)}: y and dx "
    "stacked over the empty calls (y.empty, dx.empty) and over the non-empty ones (y.full, dx.full); "
    "dweight, dbias and the buffers after each call stacked over all five (None where the layer "
    "has none)."
)

for _seed, (_case, (_cls, _empty, _full, _kwargs)) in enumerate(_ZERO_SIZE_CASES.items()):
    _source = ", ".join(f"{k}={v}" for k, v in _kwargs.items())
    register(
        Scenario(
            name=f"batchnorm/zero-size/{_case}",
            section=_SECTION,
            mapping=f"torch.nn.{_cls}(5, {_source}) on a {_empty} batch -> torchsem.nn.{_cls}(5, {_source}): "
            "an empty output, zero parameter gradients, running statistics kept, the batch counted in train",
            make_inputs=_zero_size_inputs(_empty, _full, 300 + _seed),
            torch_program=_zero_size_torch(_cls, _kwargs),
            jax_program=_zero_size_jax(_cls, _kwargs),
            tolerances={"dweight": _PARAMETER_GRADIENT, "dbias": _PARAMETER_GRADIENT},
            notes=_ZERO_SIZE_NOTES,
        )
    )


# ======================================================================= SyncBatchNorm


def _sync_inputs(mask: list[bool], shape: tuple[int, ...], seed: int) -> Callable[[], dict[str, np.ndarray]]:
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        inputs = {
            "mask": np.array(mask, bool),
            "weight": rng.uniform(0.5, 1.5, shape[1]).astype(np.float32),
            "bias": rng.standard_normal(shape[1]).astype(np.float32),
        }
        for i in range(3):
            inputs[f"x{i}"] = (1.0 - i + (1.0 + i) * rng.standard_normal(shape)).astype(np.float32)
            cotangent = rng.standard_normal(shape).astype(np.float32)
            cotangent[~inputs["mask"]] = 0  # the loss ignores padded rows, as a masked loss does
            inputs[f"cotangent{i}"] = cotangent
        return inputs

    return make


_SYNC_SEQUENCE = ("train", "eval", "train")


def _sync_torch(channels: int):
    def program(inputs):
        import torch

        mask = inputs["mask"]
        layer = torch.nn.BatchNorm1d(channels, momentum=0.2)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(inputs["weight"]))
            layer.bias.copy_(torch.from_numpy(inputs["bias"]))
        per_call = []
        for i, mode in enumerate(_SYNC_SEQUENCE):
            layer.train(mode == "train")
            x = torch.from_numpy(inputs[f"x{i}"][mask]).requires_grad_(True)  # the real examples only
            y = layer(x)
            (y * torch.from_numpy(inputs[f"cotangent{i}"][mask])).sum().backward()
            outputs = {
                "y": y.detach(),
                "dx": x.grad,
                "dweight": layer.weight.grad.clone(),
                "dbias": layer.bias.grad.clone(),
            }
            layer.zero_grad(set_to_none=True)
            outputs.update(
                {name: getattr(layer, name).clone() for name in ("running_mean", "running_var", "num_batches_tracked")}
            )
            per_call.append(outputs)
        return _stack_calls(per_call, torch.stack)

    return program


def _sync_jax(channels: int, check_vma: bool):
    def program(inputs, jit: bool):
        import jax
        import jax.numpy as jnp
        from jax.sharding import Mesh, PartitionSpec

        from torchsem.nn import BatchNorm1d

        devices = jax.devices()
        mesh = Mesh(np.array(devices), ("batch",))
        layer = BatchNorm1d(channels, momentum=0.2, axis_name="batch")
        mask = jnp.asarray(inputs["mask"])
        variables = {
            "params": {"weight": jnp.asarray(inputs["weight"]), "bias": jnp.asarray(inputs["bias"])},
            "batch_stats": BatchNorm1d(channels).init(jax.random.PRNGKey(0), inputs["x0"], use_running_average=True)[
                "batch_stats"
            ],
        }

        def local_loss(params, stats, x, mask, cotangent, train):
            y, updates = layer.apply(
                {"params": params, "batch_stats": stats},
                x,
                use_running_average=not train,
                mask=mask,
                mutable=["batch_stats"],
            )
            return jnp.sum(y * cotangent).reshape(1), (y, updates["batch_stats"])

        sharded = PartitionSpec("batch")
        replicated = PartitionSpec()

        def step(variables, x, cotangent, train):
            def global_loss(params, x):
                per_device = jax.shard_map(
                    lambda p, s, x, m, c: local_loss(p, s, x, m, c, train),
                    mesh=mesh,
                    in_specs=(replicated, replicated, sharded, sharded, sharded),
                    out_specs=(sharded, (sharded, replicated)),
                    check_vma=check_vma,
                )(params, variables["batch_stats"], x, mask, cotangent)
                losses, aux = per_device
                return jnp.sum(losses), aux

            (_, (y, stats)), (dparams, dx) = jax.value_and_grad(global_loss, argnums=(0, 1), has_aux=True)(
                variables["params"], x
            )
            return y, dx, dparams, {"params": variables["params"], "batch_stats": stats}

        if jit:
            step = jax.jit(step, static_argnums=3)
        per_call = []
        real = inputs["mask"]
        for i, mode in enumerate(_SYNC_SEQUENCE):
            y, dx, dparams, variables = step(variables, inputs[f"x{i}"], inputs[f"cotangent{i}"], mode == "train")
            per_call.append(_jax_outputs(np.asarray(y)[real], np.asarray(dx)[real], dparams, variables))
        return _stack_calls(per_call, jnp.stack)

    return program


_SYNC_CASES = {
    # 16 examples over the devices; with 8 devices each holds 2 (the mask makes the real counts uneven)
    "even": [True] * 16,
    "uneven-mask": [
        True,
        True,
        True,
        False,
        False,
        False,
        True,
        False,
        True,
        True,
        True,
        True,
        False,
        True,
        True,
        False,
    ],
}
for (_case, _mask), _check in itertools.product(_SYNC_CASES.items(), (True, False)):
    register(
        Scenario(
            name=f"batchnorm/sync/{_case}/check_vma={str(_check).lower()}",
            section="torchsem.nn.BatchNorm(axis_name=...): SyncBatchNorm under jax.shard_map",
            mapping="torch.nn.SyncBatchNorm over ranks (== BatchNorm1d on the concatenated real examples) -> "
            "torchsem.nn.BatchNorm1d(C, axis_name='batch') inside jax.shard_map, mask=real examples",
            make_inputs=_sync_inputs(_mask, (16, 3, 4), 7 + len(_case)),
            torch_program=_sync_torch(3),
            jax_program=_sync_jax(3, _check),
            tolerances={"dweight": _PARAMETER_GRADIENT, "dbias": _PARAMETER_GRADIENT},
            notes=f"Three calls, {', '.join(_SYNC_SEQUENCE)}; outputs stacked over the calls, real examples only.",
        )
    )
