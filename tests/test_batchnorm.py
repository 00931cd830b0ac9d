"""torchsem.nn.BatchNorm: PyTorch's BatchNorm in every mode, as a Flax linen module.

The fixed parity grid (rank x momentum x affine x track_running_stats, train/eval sequences),
the document's running-mean trace, NaN/Inf propagation, channels-last, the error messages and
SyncBatchNorm under shard_map are scenarios of the ``batchnorm`` family, judged by
test_parity_catalogue.py against live or recorded PyTorch, eager and under jit. Here:

- the module's Flax contract (variable names and initial values, init, mutability, the mode
  argument, input checking);
- a hypothesis test over random shapes, eps, momentum, modes and input offsets/scales (mean 1e4
  with std 1e-2 among them) against live PyTorch, with tolerances scaled to each quantity's
  conditioning;
- float16/bfloat16 and float64 inputs, reverse-over-reverse gradients, the padding mask;
- SyncBatchNorm on the 8 host devices: one collective per direction in the compiled HLO,
  device groups, pmap;
- flax.linen.BatchNorm's pitfalls, shown against PyTorch's recorded or live outputs;
- Flax's initialisation convention for synchronised layers (init outside ``shard_map``, apply
  inside; an unbound axis named in the error), the zero-size batch and ``bias=False`` (PyTorch's
  own test inputs; their parity scenarios are in the ``batchnorm`` family).
"""

from __future__ import annotations

import inspect
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.sharding import Mesh, PartitionSpec

from conftest import maybe_jit
from torchsem.compare import get, run_scenario
from torchsem.nn import (
    BatchNorm,
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    convert_sync_batchnorm,
    sync_batchnorm,
)
from torchsem.nn._batchnorm import SyncBatchNorm

EPS32 = float(np.finfo(np.float32).eps)
_KEY = jax.random.PRNGKey(0)


def _flat(tree, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, name + "."))
        else:
            flat[name] = np.asarray(value)
    return flat


# ============================================================================ the Flax contract


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_variables_are_pytorchs_state_dict(affine, track):
    variables = BatchNorm1d(3, affine=affine, track_running_stats=track).init(
        _KEY, jnp.zeros((4, 3)), use_running_average=False
    )
    flat = {name.split(".", 1)[1]: value for name, value in _flat(variables).items()}
    expected = {}
    if affine:
        expected.update(weight=np.ones(3, np.float32), bias=np.zeros(3, np.float32))
    if track:
        expected.update(
            running_mean=np.zeros(3, np.float32),
            running_var=np.ones(3, np.float32),
            num_batches_tracked=np.zeros((), np.int32),
        )
    assert sorted(flat) == sorted(expected)
    for name, value in expected.items():
        assert flat[name].dtype == value.dtype and flat[name].shape == value.shape, name
        np.testing.assert_array_equal(flat[name], value)
    assert set(variables) == ({"params"} if affine else set()) | ({"batch_stats"} if track else set())


@pytest.mark.live_torch
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_flattened_names_equal_live_pytorch_state_dict_keys(affine, track, bias):
    import torch

    torch_keys = set(torch.nn.BatchNorm2d(3, affine=affine, track_running_stats=track, bias=bias).state_dict())
    variables = BatchNorm2d(3, affine=affine, track_running_stats=track, bias=bias).init(
        _KEY, jnp.zeros((2, 3, 2, 2)), use_running_average=False
    )
    assert {name.split(".", 1)[1] for name in _flat(variables)} == torch_keys


def test_num_batches_tracked_is_int64_under_x64():
    with jax.enable_x64(True):
        variables = BatchNorm1d(3).init(_KEY, jnp.zeros((4, 3)), use_running_average=False)
        assert variables["batch_stats"]["num_batches_tracked"].dtype == jnp.int64


def test_init_never_updates_running_statistics(jit):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((5, 3, 4)), jnp.float32) + 3
    init = maybe_jit(lambda x: BatchNorm1d(3).init(_KEY, x, use_running_average=False), jit)
    stats = init(x)["batch_stats"]
    np.testing.assert_array_equal(stats["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(stats["running_var"], np.ones(3))
    assert int(stats["num_batches_tracked"]) == 0


def test_training_with_immutable_batch_stats_says_how_to_fix_it():
    layer = BatchNorm1d(3)
    x = jnp.ones((4, 3)) * jnp.arange(4.0)[:, None]
    variables = layer.init(_KEY, x, use_running_average=False)
    with pytest.raises(ValueError, match=r"mutable=\['batch_stats'\]"):
        layer.apply(variables, x, use_running_average=False)
    # eval, and training without running statistics, need nothing mutable
    layer.apply(variables, x, use_running_average=True)
    untracked = BatchNorm1d(3, track_running_stats=False)
    untracked.apply(untracked.init(_KEY, x, use_running_average=False), x, use_running_average=False)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_use_running_average_is_given_once_field_or_call_as_flax_merge_param(jit):
    x = jnp.ones((4, 3)) * jnp.arange(4.0)[:, None]
    with pytest.raises(
        ValueError,
        match=r'BatchNorm1d: Parameter "use_running_average" must be passed to the '
        r"constructor or at call time.*False: PyTorch's train\(\), True: eval\(\)",
    ):
        BatchNorm1d(3).init(_KEY, x)
    field = BatchNorm1d(3, use_running_average=True)
    variables = field.init(_KEY, x)
    _, eval_updates = maybe_jit(lambda v: field.apply(v, x, mutable=["batch_stats"]), jit)(variables)
    assert int(eval_updates["batch_stats"]["num_batches_tracked"]) == 0
    with pytest.raises(ValueError, match=r'"use_running_average" was passed to the constructor and at call time'):
        field.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    call = BatchNorm1d(3)
    _, train_updates = maybe_jit(lambda v: call.apply(v, x, use_running_average=False, mutable=["batch_stats"]), jit)(
        variables
    )
    assert int(train_updates["batch_stats"]["num_batches_tracked"]) == 1
    np.testing.assert_allclose(train_updates["batch_stats"]["running_mean"], [0.15] * 3, rtol=1e-6)


def test_bad_inputs_raise_clear_errors():
    layer = BatchNorm1d(3)
    with pytest.raises(TypeError, match="floating-point input, got dtype int32"):
        layer.init(_KEY, jnp.ones((4, 3), jnp.int32), use_running_average=False)
    x = jnp.ones((4, 3)) * jnp.arange(4.0)[:, None]
    variables = layer.init(_KEY, x, use_running_average=False)
    with pytest.raises(TypeError, match="mask must be a bool array"):
        layer.apply(variables, x, use_running_average=False, mask=jnp.ones(4), mutable=["batch_stats"])
    with pytest.raises(ValueError, match=r"mask must have shape \(N,\) = \(4,\), got \(3,\)"):
        layer.apply(variables, x, use_running_average=False, mask=jnp.ones(3, bool), mutable=["batch_stats"])
    with pytest.raises(ValueError, match="axis=0 is the batch axis"):
        BatchNorm(axis=0).init(_KEY, x, use_running_average=False)
    with pytest.raises(ValueError, match="axis=2 is out of range for a 2D input"):
        BatchNorm(axis=2).init(_KEY, x, use_running_average=False)
    with pytest.raises(ValueError, match="expected at least 2D input"):
        BatchNorm().init(_KEY, jnp.ones(4), use_running_average=False)
    with pytest.raises(ValueError, match="momentum|num_features"):
        BatchNorm1d(0)
    with pytest.raises(TypeError, match="momentum must be a float or None"):
        BatchNorm1d(3, momentum="0.1")
    with pytest.raises(ValueError, match="SyncBatchNorm: axis_name is required"):
        SyncBatchNorm(3)


@pytest.mark.parametrize(
    "affine,track,message",
    [
        (True, True, "running_mean should contain 4 elements not 3"),
        (True, False, "weight should contain 4 elements not 3"),
        (False, False, "num_features=3 but the input has 4 channels"),
    ],
)
def test_channel_count_is_checked_against_num_features(affine, track, message):
    layer = BatchNorm1d(3, affine=affine, track_running_stats=track)
    with pytest.raises(ValueError, match=message):
        layer.init(_KEY, jnp.ones((4, 4)), use_running_average=False)


@pytest.mark.parametrize(
    "affine,track,message",
    [
        (True, True, "running_mean should contain 4 elements not 3"),
        (True, False, "weight should contain 4 elements not 3"),
    ],
)
def test_channel_count_is_checked_against_existing_variables(affine, track, message):
    layer = BatchNorm(affine=affine, track_running_stats=track)  # num_features taken from the input
    variables = layer.init(_KEY, jnp.ones((4, 3)), use_running_average=False)
    with pytest.raises(ValueError, match=message):
        layer.apply(variables, jnp.ones((4, 4)), use_running_average=False, mutable=["batch_stats"])


@pytest.mark.live_torch
def test_negative_eps_is_rejected_with_pytorchs_message():
    import torch

    with pytest.raises(ValueError) as torch_error:
        torch.nn.BatchNorm1d(3, eps=-1.0).eval()(torch.ones(2, 3))
    with pytest.raises(ValueError) as ours:
        BatchNorm1d(3, eps=-1.0)
    assert str(ours.value) == str(torch_error.value)


def test_output_dtype_follows_the_input_unless_dtype_is_given():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 3, 5)), jnp.bfloat16)
    layer = BatchNorm1d(3)
    variables = layer.init(_KEY, x, use_running_average=False)
    assert variables["params"]["weight"].dtype == jnp.float32
    y, updates = layer.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    assert y.dtype == jnp.bfloat16 and updates["batch_stats"]["running_mean"].dtype == jnp.float32
    y32 = BatchNorm1d(3, dtype=jnp.float32).apply(variables, x, use_running_average=True)
    assert y32.dtype == jnp.float32


# ============================================================ randomised parity with live PyTorch


def _torch_layer(torch, rank: int, channels: int, **kwargs):
    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}[rank]
    return cls(channels, **kwargs)


def _reference(x, dy, weight, bias, mean, var, eps, batch_statistics: bool) -> dict[str, np.ndarray]:
    """PyTorch's batch_norm forward and backward in float64, for given statistics.

    With ``batch_statistics`` the gradient includes the path through the batch mean and
    variance; ``var`` is then ``mean((x - mean)^2)`` (about the ``mean`` passed, as the kernels do).
    """
    axes = (0, *range(2, x.ndim))
    shape = [1] * x.ndim
    shape[1] = -1
    count = x.size // x.shape[1]
    invstd = 1 / np.sqrt(var + eps)
    alpha = (invstd * weight).reshape(shape)
    centred = x - mean.reshape(shape)
    dot = (centred * dy).sum(axes)
    if batch_statistics:
        k = (dot * invstd**2 / count).reshape(shape)
        dx = (dy - dy.sum(axes, keepdims=True) / count - centred * k) * alpha
    else:
        dx = dy * alpha
    return {"y": centred * alpha + bias.reshape(shape), "dx": dx, "dweight": dot * invstd, "dbias": dy.sum(axes)}


def _tolerance_scales(
    x, dy, weight, bias, mean, var, eps, batch_statistics: bool, mean_error: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-output ``(scale, shift)``: the size of the float32 terms, and the effect of the mean's rounding.

    ``scale`` is the magnitude of the terms an output is formed from: PyTorch and XLA round them
    (and order the sums) differently, so they may disagree by a few ulps of it (|x * alpha| for
    y, which a large mean makes large). ``shift`` is how far the output moves, in float64, when
    the batch mean moves by ``mean_error``, the most by which the two float32 means can differ
    (both round it; PyTorch's (N, C) kernel sums it in float32); the variance moves with it.
    """
    axes = (0, *range(2, x.ndim))
    shape = [1] * x.ndim
    shape[1] = -1
    count = x.size // x.shape[1]
    invstd = 1 / np.sqrt(var + eps)
    alpha = (invstd * weight).reshape(shape)
    beta = (bias - mean * invstd * weight).reshape(shape)
    xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
    sums = 1 + math.log2(count)
    scale = {
        "y": np.abs(x * alpha) + np.abs(beta),
        "dx": np.abs(alpha)
        * (
            np.abs(dy)
            + np.abs(dy).mean(axes, keepdims=True)
            + np.abs(xhat) * np.abs(dy * xhat).mean(axes, keepdims=True)
        )
        * sums,
        "dweight": np.abs((x - mean.reshape(shape)) * dy).sum(axes) * invstd * sums,
        "dbias": np.abs(dy).sum(axes) * sums,
    }
    shift = dict.fromkeys(scale, 0.0)
    if batch_statistics:
        exact = _reference(x, dy, weight, bias, mean, var, eps, True)
        for sign in (-1.0, 1.0):
            moved = mean + sign * mean_error
            moved_var = ((x - moved.reshape(shape)) ** 2).mean(axes)
            other = _reference(x, dy, weight, bias, moved, moved_var, eps, True)
            shift = {name: np.maximum(shift[name], 2 * np.abs(other[name] - exact[name])) for name in shift}
    return scale, shift


def _check(name: str, ours, theirs, scale, shift=0.0) -> None:
    """``|ours - theirs| <= 1e-5 |theirs| + 1e-6 + 8 eps scale + shift`` elementwise (see _tolerance_scales)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    tol = 1e-6 + 8 * EPS32 * np.asarray(scale, np.float64) + shift + 1e-5 * np.abs(theirs)
    bad = ~(np.abs(ours - theirs) <= tol)
    assert not bad.any(), (
        f"{name}: {int(bad.sum())} of {bad.size} differ; ours {ours[bad][:4]}, "
        f"torch {theirs[bad][:4]}, tolerance {np.broadcast_to(tol, bad.shape)[bad][:4]}"
    )


_LOCATIONS = [(0.0, 1.0), (3.0, 0.5), (-50.0, 10.0), (1e4, 1e-2), (1e-3, 1e-4), (0.0, 1e3)]


@pytest.mark.live_torch
@settings(max_examples=40)
@given(data=st.data())
def test_random_configurations_match_pytorch(data):
    import torch

    rank = data.draw(st.integers(2, 5), label="rank")
    channels = data.draw(st.integers(1, 4), label="channels")
    batch = data.draw(st.integers(1, 6), label="batch")
    spatial = tuple(data.draw(st.lists(st.integers(1, 4), min_size=rank - 2, max_size=rank - 2), label="spatial"))
    if batch * math.prod(spatial) < 2:
        batch = 2
    shape = (batch, channels, *spatial)
    eps = data.draw(st.sampled_from([1e-5, 1e-3, 0.1, 1.0]), label="eps")
    momentum = data.draw(st.sampled_from([0.1, 0.5, None, 0.0, 1.0, 0.01]), label="momentum")
    affine = data.draw(st.booleans(), label="affine")
    track = data.draw(st.booleans(), label="track")
    loc, scale = data.draw(st.sampled_from(_LOCATIONS), label="loc, scale")
    modes = data.draw(st.lists(st.sampled_from(["train", "eval"]), min_size=3, max_size=3), label="modes")
    use_jit = data.draw(st.booleans(), label="jit")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))

    weight = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    xs = [(loc + scale * rng.standard_normal(shape)).astype(np.float32) for _ in modes]
    dys = [rng.standard_normal(shape).astype(np.float32) for _ in modes]

    torch_layer = _torch_layer(
        torch, rank, channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=track
    )
    if affine:
        with torch.no_grad():
            torch_layer.weight.copy_(torch.from_numpy(weight))
            torch_layer.bias.copy_(torch.from_numpy(bias))

    module = BatchNorm(channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    variables = dict(module.init(_KEY, xs[0], use_running_average=False))
    if affine:
        variables["params"] = {"weight": jnp.asarray(weight), "bias": jnp.asarray(bias)}

    def step(variables, x, dy, train):
        params = variables.get("params", {})
        rest = {k: v for k, v in variables.items() if k != "params"}

        def loss(params, x):
            y, updates = module.apply(
                {"params": params, **rest}, x, use_running_average=not train, mutable=["batch_stats"]
            )
            return jnp.sum(y * dy), (y, updates)

        (_, (y, updates)), (dparams, dx) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)
        return y, dx, dparams, {**variables, **updates}

    if use_jit:
        step = jax.jit(step, static_argnums=3)
    axes = (0, *range(2, len(shape)))
    w64 = weight.astype(np.float64) if affine else np.ones(channels)
    b64 = bias.astype(np.float64) if affine else np.zeros(channels)
    for call, (mode, x, dy) in enumerate(zip(modes, xs, dys)):
        train = mode == "train"
        batch_statistics = train or not track
        torch_layer.train(train)
        before = (
            None
            if not track
            else (torch_layer.running_mean.double().numpy().copy(), torch_layer.running_var.double().numpy().copy())
        )
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = torch_layer(xt)
        yt.backward(torch.from_numpy(dy))
        theirs = {
            "y": yt.detach().numpy(),
            "dx": xt.grad.numpy(),
            "dweight": None if not affine else torch_layer.weight.grad.numpy().copy(),
            "dbias": None if not affine else torch_layer.bias.grad.numpy().copy(),
        }
        torch_layer.zero_grad(set_to_none=True)
        y, dx, dparams, variables = step(variables, x, dy, train)
        ours = {"y": y, "dx": dx, "dweight": dparams.get("weight"), "dbias": dparams.get("bias")}

        x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
        if batch_statistics:
            mean, var = x64.mean(axes), x64.var(axes)
            # The mean PyTorch's float32 kernel used, against the correctly rounded one (torchsem's).
            torch_mean = (
                torch.ops.aten.native_batch_norm(torch.from_numpy(x), None, None, None, None, True, 0.1, eps)[1]
                .double()
                .numpy()
            )
            ulp = np.spacing(np.abs(mean).astype(np.float32)).astype(np.float64)
            mean_error = np.abs(torch_mean - mean.astype(np.float32)) + ulp
        else:
            (mean, var), mean_error = before, np.zeros(channels)
        scale, shift = _tolerance_scales(x64, dy64, w64, b64, mean, var, eps, batch_statistics, mean_error)
        where = f"call {call} ({mode})"
        for name in ("y", "dx", "dweight", "dbias"):
            if theirs[name] is None:
                assert ours[name] is None, (where, name)
                continue
            assert ours[name].dtype == jnp.float32, (where, name)
            _check(f"{where} {name}", ours[name], theirs[name], scale[name], shift[name])
        if track:
            stats = variables["batch_stats"]
            assert int(stats["num_batches_tracked"]) == int(torch_layer.num_batches_tracked), where
            factor = 1 / max(int(torch_layer.num_batches_tracked), 1) if momentum is None else momentum
            rm, rv = torch_layer.running_mean.numpy(), torch_layer.running_var.numpy()
            count = x.size // channels
            # The batch mean may differ by mean_error, and sum((x - mean)^2) = sum((x - exact)^2) +
            # n (mean - exact)^2 with it: the running statistics move by factor times that (twice, for
            # the earlier calls' share).
            mean_shift = 2 * factor * mean_error if train else 0.0
            var_shift = 2 * factor * mean_error**2 * count / (count - 1) if train else 0.0
            _check(f"{where} running_mean", stats["running_mean"], rm, 4 * (np.abs(rm) + np.abs(mean)), mean_shift)
            _check(f"{where} running_var", stats["running_var"], rv, 4 * (np.abs(rv) + 2 * var), var_shift)


@pytest.mark.live_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("train", [True, False])
def test_half_precision_inputs_keep_float32_statistics(dtype, train, jit):
    import torch

    rng = np.random.default_rng(3)
    x = (2 + rng.standard_normal((6, 3, 10))).astype(np.float32)
    dy = rng.standard_normal((6, 3, 10)).astype(np.float32)
    torch_dtype = getattr(torch, dtype)
    layer = torch.nn.BatchNorm1d(3).train(train)
    with torch.no_grad():
        layer.running_mean.copy_(torch.tensor([2.0, 1.5, 2.5]))
    xt = torch.from_numpy(x).to(torch_dtype).requires_grad_(True)
    yt = layer(xt)
    yt.backward(torch.from_numpy(dy).to(torch_dtype))

    module = BatchNorm1d(3)
    variables = module.init(_KEY, x, use_running_average=True)
    variables = {
        **variables,
        "batch_stats": {**variables["batch_stats"], "running_mean": jnp.array([2.0, 1.5, 2.5], jnp.float32)},
    }
    xj = jnp.asarray(x).astype(dtype)

    def run(variables, x, dy):
        def loss(params, x):
            y, updates = module.apply(
                {**variables, "params": params}, x, use_running_average=not train, mutable=["batch_stats"]
            )
            return jnp.sum(y.astype(jnp.float32) * dy), (y, updates)

        (_, (y, updates)), (dparams, dx) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
            variables["params"], x
        )
        return y, dx, dparams, updates

    y, dx, dparams, updates = maybe_jit(run, jit)(variables, xj, jnp.asarray(dy).astype(dtype).astype(jnp.float32))
    assert y.dtype == jnp.dtype(dtype) and dx.dtype == jnp.dtype(dtype)
    assert updates["batch_stats"]["running_var"].dtype == jnp.float32
    # One unit in the last place of the half-precision output: float32 intermediates that differ in
    # their last bits may round to neighbouring float16/bfloat16 values.
    half_ulp = {"float16": 2.0**-10, "bfloat16": 2.0**-7}[dtype]
    np.testing.assert_allclose(np.asarray(y, np.float32), yt.detach().float().numpy(), rtol=half_ulp, atol=half_ulp)
    np.testing.assert_allclose(np.asarray(dx, np.float32), xt.grad.float().numpy(), rtol=half_ulp, atol=half_ulp)
    # Parameter gradients and statistics are float32 sums over half-precision values.
    np.testing.assert_allclose(dparams["weight"], layer.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dparams["bias"], layer.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(updates["batch_stats"]["running_mean"], layer.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(updates["batch_stats"]["running_var"], layer.running_var.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.live_torch
@pytest.mark.parametrize("train", [True, False])
def test_float64_inputs_under_x64_match_pytorch_double(train, jit):
    import torch

    rng = np.random.default_rng(4)
    x = 5 + rng.standard_normal((4, 3, 6, 2))
    dy = rng.standard_normal((4, 3, 6, 2))
    weight, bias = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    layer = torch.nn.BatchNorm2d(3, momentum=0.3).double().train(train)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
        layer.running_mean.fill_(4.0)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = layer(xt)
    yt.backward(torch.from_numpy(dy))

    with jax.enable_x64(True):
        module = BatchNorm2d(3, momentum=0.3, param_dtype=jnp.float64)
        variables = module.init(_KEY, x, use_running_average=True)
        variables = {
            "params": {"weight": jnp.asarray(weight), "bias": jnp.asarray(bias)},
            "batch_stats": {**variables["batch_stats"], "running_mean": jnp.full(3, 4.0)},
        }

        def run(variables, x):
            def loss(params, x):
                y, updates = module.apply(
                    {**variables, "params": params}, x, use_running_average=not train, mutable=["batch_stats"]
                )
                return jnp.sum(y * dy), (y, updates)

            return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(variables["params"], x)

        (_, (y, updates)), (dparams, dx) = maybe_jit(run, jit)(variables, jnp.asarray(x))
        assert y.dtype == jnp.float64 and updates["batch_stats"]["num_batches_tracked"].dtype == jnp.int64
        # float64 throughout on both sides: only the summation order differs
        for ours, theirs in [
            (y, yt.detach()),
            (dx, xt.grad),
            (dparams["weight"], layer.weight.grad),
            (dparams["bias"], layer.bias.grad),
            (updates["batch_stats"]["running_mean"], layer.running_mean),
            (updates["batch_stats"]["running_var"], layer.running_var),
        ]:
            np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.live_torch
@pytest.mark.parametrize("train", [True, False])
def test_reverse_over_reverse_matches_pytorch_double_backward(train, jit):
    import torch

    rng = np.random.default_rng(5)
    x = (1 + rng.standard_normal((5, 3, 4))).astype(np.float32)
    dy = rng.standard_normal((5, 3, 4)).astype(np.float32)
    weight, bias = rng.uniform(0.5, 1.5, 3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    layer = torch.nn.BatchNorm1d(3).train(train)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
        layer.running_mean.fill_(0.5)
        layer.running_var.fill_(2.0)
    xt = torch.from_numpy(x).requires_grad_(True)
    (gx,) = torch.autograd.grad((layer(xt) * torch.from_numpy(dy)).sum(), xt, create_graph=True)
    (gx**2).sum().backward()

    module = BatchNorm1d(3)
    stats = {
        "running_mean": jnp.full(3, 0.5),
        "running_var": jnp.full(3, 2.0),
        "num_batches_tracked": jnp.zeros((), jnp.int32),
    }

    def input_gradient(params, x):
        def loss(x):
            y, _ = module.apply(
                {"params": params, "batch_stats": stats}, x, use_running_average=not train, mutable=["batch_stats"]
            )
            return jnp.sum(y * dy)

        return jax.grad(loss)(x)

    def outer(params, x):
        return jnp.sum(input_gradient(params, x) ** 2)

    dparams, dx = maybe_jit(jax.grad(outer, argnums=(0, 1)), jit)({"weight": weight, "bias": bias}, x)
    # Second derivatives combine several float32 sums of size ~n: rounding scaled by those sums.
    expected_dx = np.zeros_like(x) if xt.grad is None else xt.grad.numpy()  # eval: dx does not depend on x
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dparams["weight"], layer.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    assert layer.bias.grad is None or np.allclose(layer.bias.grad.numpy(), 0)
    np.testing.assert_allclose(dparams["bias"], 0, atol=1e-6)


@pytest.mark.live_torch
def test_masked_rows_do_not_count_but_are_normalised(jit):
    import torch

    rng = np.random.default_rng(6)
    x = (2 + rng.standard_normal((7, 3, 5))).astype(np.float32)
    x[[1, 4]] = rng.standard_normal((2, 3, 5)).astype(np.float32) * 100  # padding, wildly off
    x[4, 0, 0] = np.nan  # a NaN in a padded row reaches neither the statistics nor the real rows
    mask = np.array([True, False, True, True, False, True, True])
    dy = rng.standard_normal((7, 3, 5)).astype(np.float32)
    dy[~mask] = 0  # a masked loss

    layer = torch.nn.BatchNorm1d(3)
    xt = torch.from_numpy(x[mask]).requires_grad_(True)
    yt = layer(xt)
    yt.backward(torch.from_numpy(dy[mask]))
    real_mean, real_var = x[mask].astype(np.float64).mean((0, 2)), x[mask].astype(np.float64).var((0, 2))

    module = BatchNorm1d(3)
    variables = module.init(_KEY, x, use_running_average=True)

    def run(variables, x, mask):
        def loss(params, x):
            y, updates = module.apply(
                {**variables, "params": params}, x, use_running_average=False, mask=mask, mutable=["batch_stats"]
            )
            return jnp.sum(y * dy), (y, updates)

        return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(variables["params"], x)

    (_, (y, updates)), (dparams, dx) = maybe_jit(run, jit)(variables, x, mask)
    y, dx = np.asarray(y), np.asarray(dx)
    np.testing.assert_allclose(y[mask], yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx[mask], xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dparams["weight"], layer.weight.grad.numpy(), rtol=1e-5, atol=4e-6)
    np.testing.assert_allclose(dparams["bias"], layer.bias.grad.numpy(), rtol=1e-5, atol=4e-6)
    np.testing.assert_allclose(updates["batch_stats"]["running_mean"], layer.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(updates["batch_stats"]["running_var"], layer.running_var.numpy(), rtol=1e-5, atol=1e-6)
    # padded rows: normalised with the real rows' statistics; their gradient is dy * invstd * w = 0 here
    expected = (x[~mask] - real_mean[None, :, None]) / np.sqrt(real_var[None, :, None] + 1e-5)
    np.testing.assert_allclose(y[~mask], expected, rtol=1e-5, atol=1e-4)  # |x| ~ 100: rounding of x * alpha
    finite = np.isfinite(y)
    assert not finite[4, 0, 0] and finite.sum() == y.size - 1
    np.testing.assert_array_equal(dx[~mask], 0)


# ===================================================================== SyncBatchNorm on 8 devices


def _mesh() -> Mesh:
    devices = jax.devices()
    assert len(devices) == 8, "conftest sets up 8 host CPU devices"
    return Mesh(np.array(devices), ("batch",))


def _count_collectives(hlo: str) -> dict[str, int]:
    ops = ("all-gather", "all-reduce", "reduce-scatter", "collective-permute", "all-to-all")
    counts = dict.fromkeys(ops, 0)
    for line in hlo.splitlines():
        for op in ops:
            if f" {op}(" in line or f" {op}-start(" in line:
                counts[op] += 1
    return {op: n for op, n in counts.items() if n}


@pytest.mark.multidevice
def test_sync_batchnorm_is_one_collective_per_direction():
    mesh = _mesh()
    layer = BatchNorm1d(4, axis_name="batch")
    x = jnp.asarray(np.random.default_rng(0).standard_normal((16, 4, 6)), jnp.float32)
    mask = jnp.asarray(np.arange(16) % 3 != 0)
    variables = layer.init(_KEY, x[:2], use_running_average=True)

    def local(params, stats, x, mask):
        y, updates = layer.apply(
            {"params": params, "batch_stats": stats}, x, use_running_average=False, mask=mask, mutable=["batch_stats"]
        )
        return y, updates["batch_stats"]

    forward = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec(), PartitionSpec("batch"), PartitionSpec("batch")),
        out_specs=(PartitionSpec("batch"), PartitionSpec()),
    )

    def loss(params, x):
        y, _ = forward(params, variables["batch_stats"], x, mask)
        return jnp.sum(y * y)

    args = (variables["params"], variables["batch_stats"], x, mask)
    forward_hlo = jax.jit(forward).lower(*args).compile().as_text()
    both_hlo = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(variables["params"], x).compile().as_text()
    assert _count_collectives(forward_hlo) == {"all-gather": 1}
    assert _count_collectives(both_hlo) == {"all-gather": 1, "all-reduce": 1}


@pytest.mark.live_torch
@pytest.mark.multidevice
def test_device_groups_normalise_each_group_like_pytorch(jit):
    import torch

    mesh = _mesh()
    groups = [[0, 1, 2, 3], [4, 5, 6, 7]]
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((16, 3, 5)) * np.arange(1, 17)[:, None, None] / 8).astype(np.float32)
    dy = rng.standard_normal((16, 3, 5)).astype(np.float32)
    layer = BatchNorm1d(3, momentum=0.25, axis_name="batch", axis_index_groups=groups)
    variables = layer.init(_KEY, x[:2], use_running_average=True)

    def local(params, stats, x, dy):
        def loss(params, x):
            y, updates = layer.apply(
                {"params": params, "batch_stats": stats}, x, use_running_average=False, mutable=["batch_stats"]
            )
            return jnp.sum(y * dy), (y, updates["batch_stats"])

        (_, (y, new_stats)), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)
        stacked = jax.tree.map(lambda v: v[None], new_stats)  # per device: its group's statistics
        return y, stacked, grads

    sharded, replicated = PartitionSpec("batch"), PartitionSpec()
    run = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(replicated, replicated, sharded, sharded),
        out_specs=(sharded, sharded, (replicated, sharded)),
    )
    y, stats, (dparams, dx) = maybe_jit(run, jit)(variables["params"], variables["batch_stats"], x, dy)

    total_weight_grad = np.zeros(3)
    total_bias_grad = np.zeros(3)
    for group, rows in enumerate((slice(0, 8), slice(8, 16))):
        torch_layer = torch.nn.BatchNorm1d(3, momentum=0.25)
        xt = torch.from_numpy(x[rows]).requires_grad_(True)
        yt = torch_layer(xt)
        yt.backward(torch.from_numpy(dy[rows]))
        np.testing.assert_allclose(y[rows], yt.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dx[rows], xt.grad.numpy(), rtol=1e-5, atol=1e-6)
        device = 4 * group
        np.testing.assert_allclose(
            stats["running_mean"][device], torch_layer.running_mean.numpy(), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(stats["running_var"][device], torch_layer.running_var.numpy(), rtol=1e-5, atol=1e-6)
        total_weight_grad += torch_layer.weight.grad.numpy()
        total_bias_grad += torch_layer.bias.grad.numpy()
    # a replicated parameter's gradient under shard_map is the sum over all devices
    np.testing.assert_allclose(dparams["weight"], total_weight_grad, rtol=1e-5, atol=4e-6)
    np.testing.assert_allclose(dparams["bias"], total_bias_grad, rtol=1e-5, atol=4e-6)


@pytest.mark.live_torch
@pytest.mark.multidevice
def test_pmap_gives_each_device_its_own_parameter_gradient_like_any_layer():
    import torch

    rng = np.random.default_rng(9)
    x = (1 + rng.standard_normal((8, 2, 3, 4))).astype(np.float32)  # 8 devices x 2 examples
    dy = rng.standard_normal((8, 2, 3, 4)).astype(np.float32)
    layer = BatchNorm1d(3, axis_name="batch")
    variables = layer.init(_KEY, x[0], use_running_average=True)

    def local(params, x, dy):
        def loss(params, x):
            y, _ = layer.apply(
                {"params": params, "batch_stats": variables["batch_stats"]},
                x,
                use_running_average=False,
                mutable=["batch_stats"],
            )
            return jnp.sum(y * dy)

        return jax.grad(loss, argnums=(0, 1))(params, x)

    dparams, dx = jax.pmap(local, axis_name="batch", in_axes=(None, 0, 0))(variables["params"], x, dy)

    torch_layer = torch.nn.BatchNorm1d(3)
    xt = torch.from_numpy(x.reshape(16, 3, 4)).requires_grad_(True)
    torch_y = torch_layer(xt)
    torch_y.backward(torch.from_numpy(dy.reshape(16, 3, 4)))
    np.testing.assert_allclose(np.asarray(dx).reshape(16, 3, 4), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    # per device, the gradient of its own loss (as a Dense layer's under pmap); they sum to PyTorch's
    for name, torch_grad in (("weight", torch_layer.weight.grad), ("bias", torch_layer.bias.grad)):
        per_device = np.asarray(dparams[name])
        assert not np.allclose(per_device[0], per_device[1])
        np.testing.assert_allclose(per_device.sum(0), torch_grad.numpy(), rtol=1e-5, atol=4e-6)


def test_sync_scenarios_ran_on_eight_devices(oracle, jit):
    assert len(jax.devices()) == 8
    for name in ("batchnorm/sync/uneven-mask/check_vma=true", "batchnorm/sync/uneven-mask/check_vma=false"):
        result = run_scenario(get(name), oracle, jit=jit)
        assert result.ok, result.explain()


# =============================================================== flax.linen.BatchNorm's pitfalls


def _max_relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def test_flax_batchnorm_differs_from_pytorch_where_torchsem_agrees(oracle):
    trace = get("batchnorm/running-mean-trace")
    assert run_scenario(trace, oracle).ok
    expected = oracle.outputs(trace)
    flax_outputs = trace.run_plain_jax()
    final = "step5.train(x2)"
    # momentum=0.9 in flax is torch's 0.1: the running means agree ...
    np.testing.assert_allclose(flax_outputs[f"{final}.running_mean"], expected[f"{final}.running_mean"], rtol=1e-5)
    # ... but flax updates the running variance with the biased batch variance (n, not n - 1)
    assert _max_relative(flax_outputs[f"{final}.running_var"], expected[f"{final}.running_var"]) > 1e-2
    # so eval outputs, which use the running variance, differ too
    assert _max_relative(flax_outputs["step2.eval(x3).y"], expected["step2.eval(x3).y"]) > 1e-3

    large = get("batchnorm/large-mean")
    assert run_scenario(large, oracle).ok
    flax_large = large.run_plain_jax()
    # use_fast_variance=True (E[x^2] - E[x]^2) on mean 1e4, std 1e-2: outputs off by order 1
    assert np.max(np.abs(np.asarray(flax_large["y"]) - oracle.outputs(large)["y"])) > 0.5


def test_flax_momentum_taken_as_pytorchs_is_a_different_average():
    """A port that passes torch's momentum=0.1 to flax keeps 90 % of each batch: measured, not assumed."""
    import flax.linen as flax_nn

    x = jnp.asarray(np.random.default_rng(10).standard_normal((8, 3)) + 5, jnp.float32)
    flax_layer = flax_nn.BatchNorm(axis=1, momentum=0.1)
    flax_vars = flax_layer.init(_KEY, x, use_running_average=True)
    _, flax_updates = flax_layer.apply(flax_vars, x, use_running_average=False, mutable=["batch_stats"])
    ours = BatchNorm1d(3, momentum=0.1)
    _, updates = ours.apply(
        ours.init(_KEY, x, use_running_average=True), x, use_running_average=False, mutable=["batch_stats"]
    )
    batch_mean = np.asarray(x).mean(0)
    np.testing.assert_allclose(updates["batch_stats"]["running_mean"], 0.1 * batch_mean, rtol=1e-6)
    np.testing.assert_allclose(flax_updates["batch_stats"]["mean"], 0.9 * batch_mean, rtol=1e-6)


# ================================================ synchronised layers and Flax's init convention

# Three ways to ask for synchronised statistics over the mapped axis 'batch'.
_SYNC_LAYERS = {
    "axis_name": lambda: BatchNorm(num_features=3, axis_name="batch"),
    "SyncBatchNorm": lambda: SyncBatchNorm(3, axis_name="batch"),
    "convert_sync_batchnorm": lambda: convert_sync_batchnorm(BatchNorm1d(3), "batch"),
}


def _sync_input(n: int = 16) -> jax.Array:
    rng = np.random.default_rng(21)
    return jnp.asarray(3 + rng.standard_normal((n, 3, 5)) * np.arange(1, n + 1)[:, None, None] / 4, jnp.float32)


@pytest.mark.parametrize("make", list(_SYNC_LAYERS.values()), ids=list(_SYNC_LAYERS))
def test_synchronised_layers_initialise_outside_shard_map_like_flax(make, jit):
    """flax.linen.BatchNorm drops its axis_name while initialising; so does torchsem's."""
    x = _sync_input()
    init = maybe_jit(lambda x: make().init_with_output(_KEY, x, use_running_average=False), jit)
    y, variables = init(x)
    # init updates nothing: PyTorch's initial state, as for an unsynchronised layer
    np.testing.assert_array_equal(variables["params"]["weight"], np.ones(3, np.float32))
    np.testing.assert_array_equal(variables["params"]["bias"], np.zeros(3, np.float32))
    stats = variables["batch_stats"]
    np.testing.assert_array_equal(stats["running_mean"], np.zeros(3, np.float32))
    np.testing.assert_array_equal(stats["running_var"], np.ones(3, np.float32))
    assert int(stats["num_batches_tracked"]) == 0
    # init's output normalises with the statistics of the batch it was given (nothing to gather)
    expected, _ = BatchNorm1d(3).init_with_output(_KEY, x, use_running_average=False)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.multidevice
@pytest.mark.parametrize("make", list(_SYNC_LAYERS.values()), ids=list(_SYNC_LAYERS))
def test_variables_initialised_outside_shard_map_apply_inside_it(make):
    mesh = _mesh()
    layer = make()
    x = _sync_input()
    variables = layer.init(_KEY, x[:2], use_running_average=False)

    def local(variables, x):
        y, updates = layer.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
        return y, updates["batch_stats"]

    sharded, replicated = PartitionSpec("batch"), PartitionSpec()
    y, stats = jax.jit(
        jax.shard_map(local, mesh=mesh, in_specs=(replicated, sharded), out_specs=(sharded, replicated))
    )(variables, x)
    # synchronised: the statistics of the global batch, as one unsynchronised layer on all of it
    single = BatchNorm1d(3)
    expected_y, expected = single.apply(
        single.init(_KEY, x, use_running_average=True), x, use_running_average=False, mutable=["batch_stats"]
    )
    np.testing.assert_allclose(y, expected_y, rtol=1e-5, atol=1e-6)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(stats[name], expected["batch_stats"][name], rtol=1e-5, atol=1e-6)
    assert int(stats["num_batches_tracked"]) == 1


@pytest.mark.multidevice
@pytest.mark.parametrize("make", list(_SYNC_LAYERS.values()), ids=list(_SYNC_LAYERS))
def test_init_inside_shard_map_skips_the_collective(make):
    mesh = _mesh()
    layer = make()
    x = _sync_input()

    def local(x):
        y, variables = layer.init_with_output(_KEY, x, use_running_average=False)
        return y, variables

    init = jax.shard_map(
        local, mesh=mesh, in_specs=PartitionSpec("batch"), out_specs=(PartitionSpec("batch"), PartitionSpec())
    )
    assert _count_collectives(jax.jit(init).lower(x).compile().as_text()) == {}
    y, variables = jax.jit(init)(x)
    assert int(variables["batch_stats"]["num_batches_tracked"]) == 0
    # each device normalised its own two examples (Flax's init: axis_name=None)
    per_device = [
        BatchNorm1d(3).init_with_output(_KEY, x[i : i + 2], use_running_average=False)[0] for i in range(0, 16, 2)
    ]
    np.testing.assert_allclose(y, np.concatenate(per_device), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis_name,unbound", [("data", "'data'"), (("data", "model"), "'data', 'model'")])
def test_applying_with_an_unbound_axis_name_says_how_to_bind_it(axis_name, unbound, jit):
    layer = BatchNorm1d(3, axis_name=axis_name)
    x = _sync_input(4)
    variables = layer.init(_KEY, x, use_running_average=False)
    train = maybe_jit(lambda v, x: layer.apply(v, x, use_running_average=False, mutable=["batch_stats"]), jit)
    with pytest.raises(
        NameError,
        match=rf"BatchNorm1d: axis_name {re.escape(unbound)} is not bound here.*"
        r"jax\.shard_map.*axis_name=None",
    ):
        train(variables, x)
    # batch statistics without running statistics would be synchronised too
    untracked = BatchNorm1d(3, axis_name=axis_name, track_running_stats=False)
    with pytest.raises(NameError, match="is not bound here"):
        untracked.apply(untracked.init(_KEY, x, use_running_average=False), x, use_running_average=True)
    # eval with running statistics gathers nothing: it runs anywhere
    y = maybe_jit(lambda v, x: layer.apply(v, x, use_running_average=True), jit)(variables, x)
    np.testing.assert_array_equal(y, BatchNorm1d(3).apply(variables, x, use_running_average=True))


@pytest.mark.multidevice
def test_an_axis_the_mapping_does_not_bind_is_named():
    mesh = _mesh()
    layer = BatchNorm1d(3, axis_name=("batch", "model"))
    x = _sync_input()
    variables = layer.init(_KEY, x[:2], use_running_average=False)
    run = jax.shard_map(
        lambda v, x: layer.apply(v, x, use_running_average=False, mutable=["batch_stats"])[0],
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec("batch")),
        out_specs=PartitionSpec("batch"),
    )
    with pytest.raises(NameError, match=r"axis_name 'model' is not bound here"):
        run(variables, x)


def test_the_sync_context_outside_shard_map_uses_the_whole_batch(jit):
    """The context's documented fallback: where its axis is unbound, the batch the layer sees is whole."""
    x = _sync_input(6)
    layer = convert_sync_batchnorm(BatchNorm1d(3), "batch")
    variables = layer.init(_KEY, x, use_running_average=False)

    def train(variables, x):
        with sync_batchnorm("batch"):
            return BatchNorm1d(3).apply(variables, x, use_running_average=False, mutable=["batch_stats"])

    expected = BatchNorm1d(3).apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    for run in (lambda v, x: layer.apply(v, x, use_running_average=False, mutable=["batch_stats"]), train):
        got = maybe_jit(run, jit)(variables, x)
        jax.tree.map(np.testing.assert_array_equal, got, expected)


# ============================================================ PyTorch's own test inputs: zero-size

# PyTorch's test suite runs BatchNorm1d/2d/3d on batches with no examples (and a zero spatial extent).
_ZERO_SIZE = {
    "1d-(0,5)": (BatchNorm1d, (0, 5)),
    "1d-(0,5,9)": (BatchNorm1d, (0, 5, 9)),
    "2d-(0,5,2,3)": (BatchNorm2d, (0, 5, 2, 3)),
    "3d-(0,5,2,2,2)": (BatchNorm3d, (0, 5, 2, 2, 2)),
    "1d-(2,5,0)": (BatchNorm1d, (2, 5, 0)),
}


def _zero_size_step(layer, jit):
    def step(variables, x, train):
        def loss(params, x):
            y, updates = layer.apply(
                {**variables, "params": params}, x, use_running_average=not train, mutable=["batch_stats"]
            )
            return jnp.sum(y), (y, updates)

        (_, (y, updates)), (dparams, dx) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
            variables["params"], x
        )
        return y, dx, dparams, {**variables, **updates}

    return jax.jit(step, static_argnums=2) if jit else step


@pytest.mark.parametrize("case", list(_ZERO_SIZE.values()), ids=list(_ZERO_SIZE))
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_zero_size_batch_counts_the_batch_and_keeps_the_statistics(case, momentum, train, jit):
    """PyTorch (measured, 2.13): empty output, running stats untouched (not NaN), the batch counted
    in train mode, zero parameter gradients and an empty input gradient."""
    cls, shape = case
    layer = cls(5, momentum=momentum)
    x = jnp.zeros(shape, jnp.float32)
    variables = dict(layer.init(_KEY, x, use_running_average=False))  # init on the empty batch works too
    assert int(variables["batch_stats"]["num_batches_tracked"]) == 0
    stats = {
        "running_mean": jnp.full(5, 0.3),
        "running_var": jnp.full(5, 2.0),
        "num_batches_tracked": jnp.asarray(3, variables["batch_stats"]["num_batches_tracked"].dtype),
    }
    variables["batch_stats"] = stats
    y, dx, dparams, after = _zero_size_step(layer, jit)(variables, x, train)
    assert y.shape == shape and y.dtype == jnp.float32 and dx.shape == shape
    np.testing.assert_array_equal(dparams["weight"], np.zeros(5, np.float32))
    np.testing.assert_array_equal(dparams["bias"], np.zeros(5, np.float32))
    np.testing.assert_array_equal(after["batch_stats"]["running_mean"], stats["running_mean"])
    np.testing.assert_array_equal(after["batch_stats"]["running_var"], stats["running_var"])
    assert int(after["batch_stats"]["num_batches_tracked"]) == (4 if train else 3)


@pytest.mark.parametrize(
    "track,train,eps",
    [(False, True, 1e-5), (False, False, 1e-5), (True, False, 0.0)],
    ids=["untracked-train", "untracked-eval", "eval-eps0-zero-running-var"],
)
def test_zero_size_batch_gradients_are_zero_where_statistics_would_be_nan(track, train, eps, jit):
    """No statistics of an empty batch (0 / 0), nor 1 / sqrt(0 + 0), reach PyTorch's zero gradients."""
    layer = BatchNorm1d(5, eps=eps, track_running_stats=track)
    x = jnp.zeros((0, 5, 3), jnp.float32)
    variables = dict(layer.init(_KEY, x, use_running_average=not train))
    if track:
        variables["batch_stats"] = {**variables["batch_stats"], "running_var": jnp.zeros(5)}
    y, dx, dparams, _ = _zero_size_step(layer, jit)(variables, x, train)
    assert y.shape == (0, 5, 3) and dx.shape == (0, 5, 3)
    for name in ("weight", "bias"):
        np.testing.assert_array_equal(dparams[name], np.zeros(5, np.float32))


def test_zero_size_batch_gradients_are_zeros_not_none():
    """PyTorch gives .grad zeros (weight and bias are on the graph); torchsem.autograd.grad agrees."""
    from torchsem.autograd import grad

    layer = BatchNorm2d(5)
    x = jnp.zeros((0, 5, 2, 3), jnp.float32)
    variables = layer.init(_KEY, x, use_running_average=False)

    def loss(params):
        y, _ = layer.apply({**variables, "params": params}, x, use_running_average=False, mutable=["batch_stats"])
        return jnp.sum(y)

    grads = grad(loss)(variables["params"])
    assert grads["weight"] is not None and grads["bias"] is not None
    np.testing.assert_array_equal(grads["weight"], np.zeros(5, np.float32))


def test_zero_size_batch_counts_in_the_cumulative_average(jit):
    """momentum=None: the empty batch is batch 1, so the next one is averaged with factor 1/2 (PyTorch)."""
    layer = BatchNorm1d(3, momentum=None)
    rng = np.random.default_rng(22)
    x = jnp.asarray(1 + 2 * rng.standard_normal((4, 3)), jnp.float32)
    variables = layer.init(_KEY, x, use_running_average=False)
    step = _zero_size_step(layer, jit)
    _, _, _, variables = step(variables, jnp.zeros((0, 3), jnp.float32), True)
    _, _, _, variables = step(variables, x, True)
    stats = variables["batch_stats"]
    assert int(stats["num_batches_tracked"]) == 2
    np.testing.assert_allclose(stats["running_mean"], np.asarray(x).mean(0) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["running_var"], (1 + np.asarray(x).var(0, ddof=1)) / 2, rtol=1e-5, atol=1e-6)


def test_zero_size_batch_keeps_the_other_checks():
    x = jnp.zeros((0, 3), jnp.float32)
    layer = BatchNorm1d(3)
    variables = layer.init(_KEY, x, use_running_average=False)
    with pytest.raises(ValueError, match=r"mutable=\['batch_stats'\]"):  # it still counts the batch
        layer.apply(variables, x, use_running_average=False)
    with pytest.raises(ValueError, match="batch_norm eps must be positive during training, but got 0.0"):
        BatchNorm1d(3, eps=0.0).init(_KEY, x, use_running_average=False)
    # still one value per channel: (1, 3) raises, (1, 3, 0) has none and does not (as PyTorch)
    with pytest.raises(
        ValueError,
        match=r"Expected more than 1 value per channel when training, "
        r"got input size torch.Size\(\[1, 3\]\)",
    ):
        layer.init(_KEY, jnp.zeros((1, 3)), use_running_average=False)
    assert layer.init_with_output(_KEY, jnp.zeros((1, 3, 0)), use_running_average=False)[0].shape == (1, 3, 0)
    # Deliberately stricter than PyTorch, whose empty-input shortcut skips the channel check.
    with pytest.raises(ValueError, match="running_mean should contain 4 elements not 3"):
        layer.apply(variables, jnp.zeros((0, 4)), use_running_average=False, mutable=["batch_stats"])


@pytest.mark.multidevice
def test_zero_size_batch_under_shard_map_gathers_nothing():
    mesh = _mesh()
    layer = BatchNorm1d(3, axis_name="batch")
    x = jnp.zeros((0, 3, 4), jnp.float32)
    variables = layer.init(_KEY, x, use_running_average=False)
    run = jax.shard_map(
        lambda v, x: layer.apply(v, x, use_running_average=False, mutable=["batch_stats"]),
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec("batch")),
        out_specs=(PartitionSpec("batch"), PartitionSpec()),
    )
    assert _count_collectives(jax.jit(run).lower(variables, x).compile().as_text()) == {}
    y, updates = jax.jit(run)(variables, x)
    assert y.shape == (0, 3, 4) and int(updates["batch_stats"]["num_batches_tracked"]) == 1


# ======================================================================= bias=False (PyTorch 2.x)


def test_bias_is_keyword_only_after_pytorchs_positional_arguments():
    parameters = inspect.signature(BatchNorm1d).parameters
    assert list(parameters)[:5] == ["num_features", "eps", "momentum", "affine", "track_running_stats"]
    assert parameters["bias"].kind is inspect.Parameter.KEYWORD_ONLY and parameters["bias"].default is True
    with pytest.raises(TypeError, match="BatchNorm1d: bias must be a bool"):
        BatchNorm1d(3, bias=None)


@pytest.mark.parametrize(
    "affine,bias,names",
    [
        (True, True, ["bias", "weight"]),
        (True, False, ["weight"]),
        (False, True, []),  # PyTorch: bias only matters with affine=True
        (False, False, []),
    ],
)
def test_bias_false_learns_a_weight_without_a_bias(affine, bias, names):
    variables = BatchNorm1d(3, affine=affine, bias=bias).init(_KEY, jnp.zeros((4, 3)), use_running_average=False)
    assert sorted(variables.get("params", {})) == names


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_bias_false_is_bias_true_with_a_zero_bias(train, jit):
    rng = np.random.default_rng(23)
    x = jnp.asarray(1 + 2 * rng.standard_normal((4, 3, 5)), jnp.float32)
    dy = jnp.asarray(rng.standard_normal((4, 3, 5)), jnp.float32)
    weight = jnp.asarray(rng.uniform(0.5, 1.5, 3), jnp.float32)
    results = []
    for bias in (True, False):
        layer = BatchNorm1d(3, bias=bias)
        variables = dict(layer.init(_KEY, x, use_running_average=False))
        variables["params"] = {**variables["params"], "weight": weight}

        def loss(params, x, layer=layer, variables=variables):
            y, updates = layer.apply(
                {**variables, "params": params}, x, use_running_average=not train, mutable=["batch_stats"]
            )
            return jnp.sum(y * dy), (y, updates)

        (_, (y, updates)), (dparams, dx) = maybe_jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True), jit)(
            variables["params"], x
        )
        results.append((y, dx, dparams["weight"], updates))
    with_bias, without = results
    for a, b in zip(with_bias, without):  # the kernel's beta = 0 - mean * alpha either way: bit for bit
        jax.tree.map(np.testing.assert_array_equal, a, b)


def _linear_then_norm():
    import flax.linen as flax_nn

    from torchsem.nn import Linear

    class LinearThenNorm(flax_nn.Module):
        """``torch.nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, bias=False))``."""

        @flax_nn.compact
        def __call__(self, x, train: bool):
            x = Linear(4, 3, name="0")(x)
            return BatchNorm1d(3, bias=False, name="1")(x, use_running_average=not train)

    return LinearThenNorm()


_NO_BIAS_KEYS = ["0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var", "1.num_batches_tracked"]


def test_torch_init_and_convert_handle_a_batchnorm_without_bias():
    from torchsem.convert import load_torch_state_dict, to_torch_state_dict
    from torchsem.random import Generator, torch_init

    model = _linear_then_norm()
    variables = torch_init(model, Generator(0), jnp.zeros((2, 4)), train=False)
    state = to_torch_state_dict(variables)
    assert list(state) == _NO_BIAS_KEYS  # PyTorch's keys for this model (measured)
    np.testing.assert_array_equal(state["1.weight"], np.ones(3, np.float32))
    back = to_torch_state_dict(load_torch_state_dict(variables, state))
    for key in _NO_BIAS_KEYS:
        np.testing.assert_array_equal(back[key], state[key])
    with pytest.raises(Exception, match="1.bias"):  # a state_dict with a BatchNorm bias does not fit
        load_torch_state_dict(variables, {**state, "1.bias": np.zeros(3, np.float32)})


@pytest.mark.live_torch
def test_torch_init_and_convert_match_live_pytorch_without_bias():
    import torch

    from torchsem.convert import load_torch_state_dict, to_torch_state_dict
    from torchsem.random import Generator, torch_init

    torch.manual_seed(5)
    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3, bias=False))
    variables = torch_init(_linear_then_norm(), Generator(5), jnp.zeros((2, 4)), train=False)
    state = to_torch_state_dict(variables)
    torch_state = torch_model.state_dict()
    assert list(state) == list(torch_state) == _NO_BIAS_KEYS
    for key, value in torch_state.items():
        np.testing.assert_array_equal(state[key], value.numpy(), err_msg=key)
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})  # strict: same keys
    load_torch_state_dict(variables, torch_state)
