"""torchsem.parallel and the SyncBatchNorm switch (torchsem.nn._sync), on the 8 host CPU devices.

PyTorch parity of the data-parallel step (single-process PyTorch on the global batch, the
documented result of DDP + SyncBatchNorm) is the ``parallel`` family of the catalogue, run by
tests/test_parity_catalogue.py; the property test below checks uneven SyncBatchNorm against live
PyTorch. This file checks what the issue asks on top: that the data-parallel run equals the
single-device torchsem run on the same global batches, the uneven-count SyncBatchNorm equals
BatchNorm on the concatenated real examples, the switch, the helpers, the errors, and that the
compiled step communicates one fused reduction per BatchNorm layer per direction.

The data-parallel step is one SPMD program: "eager" (jit=False) runs the unjitted step inside
``torchsem.train.train_loop`` (one ``lax.scan``), as shard_map dispatched op by op takes seconds
per step on these 2 cores.
"""

from __future__ import annotations

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.sharding import Mesh, PartitionSpec

from conftest import maybe_jit
from torchsem import optim, parallel, train
from torchsem.losses import cross_entropy
from torchsem.models import Net
from torchsem.nn import BatchNorm1d
from torchsem.nn._sync import SyncBatchNormWrapper, convert_sync_batchnorm, sync_batchnorm, sync_batchnorm_axis_name

pytestmark = pytest.mark.multidevice

DEVICES = 8
RTOL, ATOL = 1e-5, 1e-6  # float32 defaults; no looser tolerance was needed below
DATA, REPLICATED = PartitionSpec("data"), PartitionSpec()


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    assert len(jax.devices()) == DEVICES, "conftest sets 8 host CPU devices"
    return parallel.data_mesh()


def _net_state(model: nn.Module, tx, seed: int = 0) -> train.TrainState:
    variables = model.init(jax.random.PRNGKey(seed), jnp.zeros((2, 3, 8), jnp.float32))
    return train.TrainState.create(variables, tx)


def _batches(steps: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0.0, 1.0, (1, 1, 3, 1))
    xs = (rng.standard_normal((steps, size, 3, 8)) * 1.5 + offsets).astype(np.float32)
    return xs, rng.integers(0, 4, (steps, size)).astype(np.int32)


def _assert_trees_close(actual, expected, what: str) -> None:
    actual_leaves = jax.tree_util.tree_flatten_with_path(actual, is_leaf=lambda x: x is None)[0]
    expected_leaves, expected_def = jax.tree.flatten(expected, is_leaf=lambda x: x is None)
    assert jax.tree.structure(actual, is_leaf=lambda x: x is None) == expected_def, what
    for (path, a), e in zip(actual_leaves, expected_leaves):
        where = f"{what}{jax.tree_util.keystr(path)}"
        if e is None:
            assert a is None, where
            continue
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape and a.dtype == e.dtype, where
        if np.issubdtype(e.dtype, np.floating):
            np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL, err_msg=where)
        else:
            np.testing.assert_array_equal(a, e, err_msg=where)


def _run_data_parallel(step_for, state, batches: list[tuple], jit: bool):
    """Every step's (state, loss): the jitted step in a loop, or the unjitted one in train_loop."""
    step = step_for(jit)
    if jit:
        trajectory = []
        for batch in batches:
            state, metrics = step(state, batch)
            trajectory.append((state, metrics["loss"]))
        return trajectory
    stacked = tuple(np.stack(column) for column in zip(*batches))
    _, (metrics, states) = train.train_loop(step, state, stacked, collect=_identity)
    return [(jax.tree.map(lambda leaf, i=i: leaf[i], states), metrics["loss"][i]) for i in range(len(batches))]


def _identity(state):
    return state


def _run_single_device(model, tx, state, batches: list[tuple], **kwargs):
    step = train.make_train_step(model, cross_entropy, tx, **kwargs)
    trajectory = []
    for x, y in batches:
        state, metrics = step(state, (x, y))
        trajectory.append((state, metrics["loss"]))
    return trajectory


# --- the test: 20 data-parallel steps == 20 single-device steps -----------------------------------


def test_twenty_data_parallel_steps_equal_single_device(mesh, jit):
    """Net, global batch 32 (4 per device), SGD with momentum: params, stats, optimizer state, losses, every step."""
    model, tx = Net(), optim.sgd(lr=0.05, momentum=0.9)
    state = _net_state(model, tx)
    xs, ys = _batches(20, 32, seed=1)
    batches = [(xs[i], ys[i]) for i in range(20)]
    single = _run_single_device(model, tx, state, batches)
    data_parallel = _run_data_parallel(
        lambda use_jit: parallel.make_train_step(model, cross_entropy, tx, mesh, jit=use_jit),
        parallel.replicate(state, mesh),
        batches,
        jit,
    )
    for step, ((dp_state, dp_loss), (one_state, one_loss)) in enumerate(zip(data_parallel, single)):
        _assert_trees_close(dp_state, one_state, f"step {step}: state")
        np.testing.assert_allclose(dp_loss, one_loss, rtol=RTOL, atol=ATOL, err_msg=f"step {step}: loss")
    assert int(data_parallel[-1][0].batch_stats["bn1"]["num_batches_tracked"]) == 20


@pytest.mark.parametrize("case", ["padded-nan", "uneven-shards"])
def test_masked_steps_equal_single_device_on_real_examples(mesh, jit, case):
    """Padding (even NaN/inf padding) and uneven shards: one device on the concatenated real examples."""
    model, tx = Net(), optim.sgd(lr=0.05, momentum=0.9, weight_decay=1e-3)
    state = _net_state(model, tx, seed=2)
    rng = np.random.default_rng(3)
    real, padded = [], []
    for step in range(4):
        if case == "padded-nan":
            x, y = _batches(1, 27, seed=10 + step)
            x, y = x[0], y[0]
            px, py, mask = parallel.pad_batch((x, y), mesh)
            px[~mask] = np.where(rng.random(px[~mask].shape) < 0.5, np.nan, np.inf)
            py[~mask] = 99  # an out-of-range class in the padding must not matter either
            padded.append((px, py, mask))
        else:
            sizes = rng.integers(0, 5, DEVICES)
            sizes[step] = 5  # fixed padded size, one compilation
            shards = [
                (_batches(1, n, seed=100 * step + k)[0][0], _batches(1, n, seed=100 * step + k)[1][0])
                for k, n in enumerate(sizes)
            ]
            x, y = np.concatenate([s[0] for s in shards]), np.concatenate([s[1] for s in shards])
            padded.append(parallel.pad_shards(shards))
        real.append((x, y))
    single = _run_single_device(model, tx, state, real)
    data_parallel = _run_data_parallel(
        lambda use_jit: parallel.make_train_step(model, cross_entropy, tx, mesh, jit=use_jit),
        parallel.replicate(state, mesh),
        padded,
        jit,
    )
    for step, ((dp_state, dp_loss), (one_state, one_loss)) in enumerate(zip(data_parallel, single)):
        _assert_trees_close(dp_state, one_state, f"step {step}: state")
        np.testing.assert_allclose(dp_loss, one_loss, rtol=RTOL, atol=ATOL, err_msg=f"step {step}: loss")


@pytest.mark.parametrize("case", ["frozen-adam", "detach", "requires-grad-mask"])
def test_requires_grad_and_none_gradients_as_single_device(mesh, case):
    """Frozen (names or a bool mask) and detached parameters: None gradients, skipped by the optimizer."""
    model = Net(detach=case == "detach")
    tx = optim.adam(lr=1e-2) if case == "frozen-adam" else optim.sgd(lr=0.05, momentum=0.9, weight_decay=1e-3)
    kwargs = {"frozen": "fc1.weight"} if case == "frozen-adam" else {}
    if case == "requires-grad-mask":
        kwargs = {"requires_grad": {"bn1": False, "fc1": True}}
    state = _net_state(model, tx, seed=4)
    xs, ys = _batches(3, 16, seed=5)
    batches = [(xs[i], ys[i]) for i in range(3)]
    single = _run_single_device(model, tx, state, batches, **kwargs)
    step = parallel.make_train_step(model, cross_entropy, tx, mesh, **kwargs)
    dp_state = state
    for i, batch in enumerate(batches):
        dp_state, metrics = step(dp_state, batch)
        _assert_trees_close(dp_state, single[i][0], f"step {i}: state")
        np.testing.assert_allclose(metrics["loss"], single[i][1], rtol=RTOL, atol=ATOL)
    unchanged = {"frozen-adam": ("fc1", "weight"), "detach": ("bn1", "weight"), "requires-grad-mask": ("bn1", "bias")}[
        case
    ]
    np.testing.assert_array_equal(dp_state.params[unchanged[0]][unchanged[1]], state.params[unchanged[0]][unchanged[1]])


def test_plain_optax_optimizer_gets_zeros_for_none(mesh):
    """A non-torchsem optax optimizer: None gradients become zeros, as in torchsem.train.make_train_step."""
    import optax

    model, tx = Net(detach=True), optax.sgd(0.05)
    state = _net_state(model, tx, seed=6)
    xs, ys = _batches(1, 16, seed=7)
    one, _ = train.make_train_step(model, cross_entropy, tx)(state, (xs[0], ys[0]))
    dp, _ = parallel.make_train_step(model, cross_entropy, tx, mesh)(state, (xs[0], ys[0]))
    _assert_trees_close(dp, one, "state")


# --- SyncBatchNorm with uneven per-device counts -------------------------------------------------


class _Block(nn.Module):
    """A BatchNorm made in setup(), which convert_sync_batchnorm cannot rewrite field by field."""

    momentum: float = 0.3

    def setup(self) -> None:
        self.bn = BatchNorm1d(3, momentum=self.momentum)

    def __call__(self, x, mask=None, train: bool = True):
        return self.bn(x, use_running_average=not train, mask=mask)


def _sync_call(model, mesh, variables, x, mask, cotangent, train_mode: bool, use_jit: bool):
    """``sum(y * cotangent)`` over the real rows under shard_map: (y, dx, dparams, new batch_stats)."""

    def per_device(params, stats, x, mask, cotangent):
        def local(params, x):
            y, updated = model.apply(
                {"params": params, "batch_stats": stats}, x, mask, train_mode, mutable=["batch_stats"]
            )
            return jnp.sum(jnp.where(mask[:, None, None], y * cotangent, 0)), (y, updated["batch_stats"])

        (_, (y, new_stats)), (dparams, dx) = jax.value_and_grad(local, argnums=(0, 1), has_aux=True)(params, x)
        return y, dx, dparams, new_stats

    mapped = jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(REPLICATED, REPLICATED, DATA, DATA, DATA),
        out_specs=(DATA, DATA, REPLICATED, REPLICATED),
    )
    return maybe_jit(mapped, use_jit)(variables["params"], variables["batch_stats"], x, mask, cotangent)


def _single_call(variables, x, cotangent, train_mode: bool):
    model = _Block()

    def loss(params, x):
        y, updated = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]}, x, None, train_mode, mutable=["batch_stats"]
        )
        return jnp.sum(y * cotangent), (y, updated["batch_stats"])

    (_, (y, stats)), (dparams, dx) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(variables["params"], x)
    return y, dx, dparams, stats


def _sync_inputs(mask: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    n = mask.shape[0]
    x = (rng.standard_normal((n, 3, 5)) + rng.normal(0.0, 2.0, (1, 3, 1))).astype(np.float32)
    cotangent = rng.standard_normal((n, 3, 5)).astype(np.float32)
    params = {
        "bn": {
            "weight": rng.uniform(0.5, 1.5, 3).astype(np.float32),
            "bias": rng.normal(0.0, 0.5, 3).astype(np.float32),
        }
    }
    return x, cotangent, params


_UNEVEN_MASKS = {
    # 4 rows per device; real rows per device: 3, 1, 4, 0, 2, 3, 1, 4 (one device has none)
    "uneven": np.array(
        [1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1], bool
    ),
    "even": np.ones(32, bool),
}


# Eager shard_map runs op by op (seconds per call on these 2 cores): the eager variant runs for the
# wrapper only; the context is the same code path.
@pytest.mark.parametrize(
    "jit, through",
    [(False, "convert_sync_batchnorm"), (True, "convert_sync_batchnorm"), (True, "sync_batchnorm-context")],
    ids=["eager-convert", "jit-convert", "jit-context"],
)
@pytest.mark.parametrize("mask_name", list(_UNEVEN_MASKS))
def test_sync_batchnorm_uneven_counts_equal_batchnorm_on_concatenation(mesh, jit, through, mask_name):
    """Outputs, input and parameter gradients, running statistics: train, eval, train."""
    mask = _UNEVEN_MASKS[mask_name]
    if through == "convert_sync_batchnorm":
        model = convert_sync_batchnorm(_Block(), "data")
    else:

        class Switched(nn.Module):
            @nn.compact
            def __call__(self, x, mask=None, train: bool = True):
                with sync_batchnorm("data"):
                    return _Block(name="inner")(x, mask, train)

        model = Switched()
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((4, 3, 5)))
    x0, _, params = _sync_inputs(mask, 0)
    if through == "convert_sync_batchnorm":
        variables = {"params": params, "batch_stats": variables["batch_stats"]}
    else:
        variables = {"params": {"inner": params}, "batch_stats": variables["batch_stats"]}
    single = {"params": params, "batch_stats": _Block().init(jax.random.PRNGKey(0), x0)["batch_stats"]}
    for call, train_mode in enumerate((True, False, True)):
        x, cotangent, _ = _sync_inputs(mask, 10 + call)
        y, dx, dparams, stats = _sync_call(model, mesh, variables, x, mask, cotangent, train_mode, jit)
        y1, dx1, dparams1, stats1 = _single_call(single, x[mask], cotangent[mask], train_mode)
        variables = {"params": variables["params"], "batch_stats": stats}
        single = {"params": params, "batch_stats": stats1}
        if through != "convert_sync_batchnorm":
            dparams, stats = dparams["inner"], stats["inner"]
        np.testing.assert_allclose(np.asarray(y)[mask], y1, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(np.asarray(dx)[mask], dx1, rtol=RTOL, atol=ATOL)
        # dweight/dbias: float32 sums of ~100 terms with cancellation, per device then across devices
        # versus in one reduction: a few ulps of the terms (~1), hence atol 4e-6.
        for name in ("weight", "bias"):
            np.testing.assert_allclose(dparams["bn"][name], dparams1["bn"][name], rtol=RTOL, atol=4e-6)
        _assert_trees_close(stats["bn"], stats1["bn"], f"call {call}: batch_stats")


@pytest.mark.live_torch
@settings(max_examples=12)
@given(
    st.lists(st.integers(0, 4), min_size=DEVICES, max_size=DEVICES).filter(lambda counts: sum(counts) >= 2),
    st.integers(0, 2**31 - 1),
)
def test_sync_batchnorm_any_per_device_counts_match_pytorch(counts, seed):
    """Any per-device counts (0 to 4 real rows of 4): PyTorch's BatchNorm1d on the concatenated real rows.

    Jitted only (one compilation for every example: the shapes are fixed, the mask varies).
    """
    torch = pytest.importorskip("torch")
    mesh = parallel.data_mesh()
    mask = np.zeros((DEVICES, 4), bool)
    for k, n in enumerate(counts):
        mask[k, :n] = True
    mask = mask.reshape(-1)
    x, cotangent, params = _sync_inputs(mask, seed)
    model = convert_sync_batchnorm(_Block(), "data")
    stats = _Block().init(jax.random.PRNGKey(0), x)["batch_stats"]
    y, dx, dparams, new_stats = _sync_call(
        model, mesh, {"params": params, "batch_stats": stats}, x, mask, cotangent, True, True
    )

    layer = torch.nn.BatchNorm1d(3, momentum=0.3)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(params["bn"]["weight"]))
        layer.bias.copy_(torch.from_numpy(params["bn"]["bias"]))
    tx = torch.from_numpy(x[mask]).requires_grad_(True)
    ty = layer(tx)
    (ty * torch.from_numpy(cotangent[mask])).sum().backward()
    np.testing.assert_allclose(np.asarray(y)[mask], ty.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(dx)[mask], tx.grad.numpy(), rtol=RTOL, atol=ATOL)
    # see the tolerance note in the test above (sums of up to 80 terms with cancellation)
    np.testing.assert_allclose(dparams["bn"]["weight"], layer.weight.grad.numpy(), rtol=RTOL, atol=4e-6)
    np.testing.assert_allclose(dparams["bn"]["bias"], layer.bias.grad.numpy(), rtol=RTOL, atol=4e-6)
    np.testing.assert_allclose(new_stats["bn"]["running_mean"], layer.running_mean.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(new_stats["bn"]["running_var"], layer.running_var.numpy(), rtol=RTOL, atol=ATOL)
    assert int(new_stats["bn"]["num_batches_tracked"]) == int(layer.num_batches_tracked)


# --- the switch ------------------------------------------------------------------------------------


def _bn_outputs(layer: nn.Module, mesh: Mesh, x: np.ndarray, spec: PartitionSpec, context=None):
    variables = BatchNorm1d(3).init(jax.random.PRNGKey(0), x[:2], use_running_average=True)

    def per_device(variables, x):
        if context is None:
            return layer.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
        with context:
            return layer.apply(variables, x, use_running_average=False, mutable=["batch_stats"])

    y, updated = jax.jit(
        jax.shard_map(per_device, mesh=mesh, in_specs=(REPLICATED, spec), out_specs=(spec, REPLICATED), check_vma=False)
    )(variables, x)
    return np.asarray(y), np.asarray(updated["batch_stats"]["running_var"])


def test_context_equals_explicit_axis_name_and_keeps_a_layers_own_axis():
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("a", "b"))
    spec = PartitionSpec(("a", "b"))
    x = np.random.default_rng(8).standard_normal((16, 3, 4)).astype(np.float32) * np.arange(1, 17)[:, None, None]
    both = _bn_outputs(BatchNorm1d(3, axis_name=("a", "b")), mesh, x, spec)
    only_a = _bn_outputs(BatchNorm1d(3, axis_name="a"), mesh, x, spec)
    local = _bn_outputs(BatchNorm1d(3), mesh, x, spec)
    switched = _bn_outputs(BatchNorm1d(3), mesh, x, spec, sync_batchnorm(("a", "b")))
    own_axis_kept = _bn_outputs(BatchNorm1d(3, axis_name="a"), mesh, x, spec, sync_batchnorm(("a", "b")))
    disabled = _bn_outputs(BatchNorm1d(3), mesh, x, spec, _nested_off(("a", "b")))
    for got, want in ((switched, both), (own_axis_kept, only_a), (disabled, local)):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert not np.allclose(both[1], local[1]) and not np.allclose(both[1], only_a[1])  # the cases differ


class _nested_off:
    """sync_batchnorm(axes) with sync_batchnorm(None) inside: synchronisation off again."""

    def __init__(self, axes) -> None:
        self.outer, self.inner = sync_batchnorm(axes), sync_batchnorm(None)

    def __enter__(self):
        self.outer.__enter__()
        self.inner.__enter__()

    def __exit__(self, *exc):
        self.inner.__exit__(*exc)
        self.outer.__exit__(*exc)


def test_context_value_nesting_reset_and_unbound_fallback(mesh):
    assert sync_batchnorm_axis_name() is None
    seen = {}

    def probe(x):
        with sync_batchnorm("data"):
            seen["bound"] = sync_batchnorm_axis_name()
            with sync_batchnorm(("data", "nowhere")):
                seen["partly bound"] = sync_batchnorm_axis_name()
            with sync_batchnorm(None):
                seen["off"] = sync_batchnorm_axis_name()
            seen["restored"] = sync_batchnorm_axis_name()
        return x

    jax.shard_map(probe, mesh=mesh, in_specs=DATA, out_specs=DATA)(jnp.zeros(8))
    assert seen == {"bound": "data", "partly bound": ("data",), "off": None, "restored": "data"}
    with sync_batchnorm("data"):
        assert sync_batchnorm_axis_name() is None  # not mapped over 'data' here: the batch is whole
    with pytest.raises(RuntimeError, match="boom"), sync_batchnorm("data"):
        raise RuntimeError("boom")
    assert sync_batchnorm_axis_name() is None


def test_unbound_context_is_plain_batchnorm(jit):
    """Outside shard_map the batch is the whole batch: exactly BatchNorm (PyTorch's SyncBatchNorm falls back too)."""
    x = np.random.default_rng(9).standard_normal((6, 3, 4)).astype(np.float32)
    model = _Block()
    variables = model.init(jax.random.PRNGKey(0), x)
    plain = maybe_jit(lambda v, x: model.apply(v, x, mutable=["batch_stats"]), jit)(variables, x)
    converted = convert_sync_batchnorm(model)
    synced = maybe_jit(lambda v, x: converted.apply(v, x, mutable=["batch_stats"]), jit)(variables, x)
    _assert_trees_close(synced, plain, "outputs")


def test_wrapper_has_the_wrapped_models_variables():
    x = jnp.zeros((2, 3, 8))
    plain = Net().init(jax.random.PRNGKey(3), x)
    wrapped = convert_sync_batchnorm(Net(), "data").init(jax.random.PRNGKey(3), x)
    _assert_trees_close(wrapped, plain, "variables")
    assert isinstance(convert_sync_batchnorm(Net()), SyncBatchNormWrapper)
    assert convert_sync_batchnorm(Net()).axis_name == "data"


def test_wrapped_model_in_the_data_parallel_step(mesh):
    """convert_sync_batchnorm(Net()) trains exactly as Net() (the step switches sync on anyway)."""
    tx = optim.sgd(lr=0.05, momentum=0.9)
    state = _net_state(Net(), tx, seed=11)
    xs, ys = _batches(1, 16, seed=12)
    plain, _ = parallel.make_train_step(Net(), cross_entropy, tx, mesh)(state, (xs[0], ys[0]))
    wrapped, _ = parallel.make_train_step(convert_sync_batchnorm(Net()), cross_entropy, tx, mesh)(state, (xs[0], ys[0]))
    _assert_trees_close(wrapped, plain, "state")


@pytest.mark.parametrize(
    "axis_name, error, message",
    [
        (None, ValueError, "axis_name is required"),
        ((), ValueError, "at least one mapped axis"),
        ((("a",),), TypeError, "mapped axis name"),
        ([None], TypeError, "mapped axis name"),
    ],
)
def test_convert_rejects_bad_axis_names(axis_name, error, message):
    with pytest.raises(error, match=message):
        convert_sync_batchnorm(Net(), axis_name)


def test_convert_rejects_non_modules_and_context_rejects_bad_names():
    with pytest.raises(TypeError, match="flax.linen.Module"):
        convert_sync_batchnorm(lambda x: x)
    with pytest.raises(TypeError, match="sync_batchnorm: axis_name must be"), sync_batchnorm([["data"]]):
        pass


# --- helpers ---------------------------------------------------------------------------------------


def test_pad_batch():
    x = np.arange(30 * 2, dtype=np.float32).reshape(30, 2)
    y = np.arange(30)
    px, py, mask = parallel.pad_batch((x, y), 8)
    assert px.shape == (32, 2) and py.shape == (32,) and mask.shape == (32,)
    assert isinstance(px, np.ndarray) and mask.dtype == bool
    np.testing.assert_array_equal(px[:30], x)
    np.testing.assert_array_equal(px[30:], 0)
    np.testing.assert_array_equal(mask, np.arange(32) < 30)
    again = parallel.pad_batch((px[:31], py[:31], mask[:31]), 4)  # an existing mask is padded with False
    np.testing.assert_array_equal(again[2], np.arange(32) < 30)
    same = parallel.pad_batch((x[:16], y[:16]), 8)
    assert same[0].shape == (16, 2) and same[2].all()
    as_jax = parallel.pad_batch(({"a": jnp.asarray(x)}, y), 7)  # pytrees of inputs; jax stays jax
    assert isinstance(as_jax[0]["a"], jax.Array) and as_jax[0]["a"].shape == (35, 2)


def test_pad_shards_places_each_shard_on_its_device(mesh):
    shards = [(np.full((n, 2), k, np.float32), np.full((n,), k)) for k, n in enumerate([2, 0, 3, 1, 3, 3, 0, 1])]
    x, y, mask = parallel.pad_shards(shards)
    assert x.shape == (24, 2) and mask.sum() == 13
    sharded = parallel.shard_batch((x, y, mask), mesh)
    for shard in sharded[2].addressable_shards:
        k = shard.index[0].start // 3
        n = len(shards[k][1])
        np.testing.assert_array_equal(np.asarray(shard.data), np.arange(3) < n)
        np.testing.assert_array_equal(np.asarray(sharded[1])[3 * k : 3 * k + n], k)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        ((np.zeros((5, 2)),), TypeError, "batch must be"),
        ((np.zeros((5, 2)), np.zeros(4)), ValueError, "same leading"),
        ((np.zeros((5, 2)), np.zeros(5), np.ones(5)), TypeError, "mask must be a bool array"),
        ((np.zeros((5, 2)), np.zeros(5), np.ones(4, bool)), ValueError, r"mask must have shape \(N,\) = \(5,\)"),
    ],
)
def test_pad_batch_errors(bad, error, message):
    with pytest.raises(error, match=message):
        parallel.pad_batch(bad, 8)


def test_helper_errors(mesh):
    with pytest.raises(ValueError, match="multiple must be a positive int"):
        parallel.pad_batch((np.zeros(3), np.zeros(3)), 0)
    with pytest.raises(ValueError, match="non-empty sequence"):
        parallel.pad_shards([])
    with pytest.raises(ValueError, match="every shard is empty"):
        parallel.pad_shards([(np.zeros((0, 2)), np.zeros(0))] * 2)
    with pytest.raises(TypeError, match="jax.sharding.Mesh"):
        parallel.replicate({}, "mesh")
    with pytest.raises(ValueError, match="not an axis of the mesh"):
        parallel.shard_batch((np.zeros(8),), mesh, axis_name="batch")


# --- the step's errors ----------------------------------------------------------------------------


def test_step_errors(mesh):
    tx = optim.sgd(0.1)
    state = _net_state(Net(), tx)
    step = parallel.make_train_step(Net(), cross_entropy, tx, mesh)
    x, y = np.zeros((30, 3, 8), np.float32), np.zeros(30, np.int32)
    with pytest.raises(
        ValueError,
        match=r"global batch of 30 examples does not split evenly over the 8 devices "
        r"of mesh axis 'data'; pad it with torchsem.parallel.pad_batch",
    ):
        step(state, (x, y))
    with pytest.raises(TypeError, match="mask must be a bool array"):
        step(state, (x[:16], y[:16], np.ones(16, np.int32)))
    with pytest.raises(ValueError, match=r"mask must have shape \(N,\) = \(16,\)"):
        step(state, (x[:16], y[:16], np.ones(8, bool)))
    with pytest.raises(TypeError, match="batch must be"):
        step(state, x[:16])
    per_example = parallel.make_train_step(Net(), lambda out, y: cross_entropy(out, y, reduction="none"), tx, mesh)
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar \(the batch mean"):
        per_example(state, (x[:16], y[:16]))
    with pytest.raises(ValueError, match="not an axis of the mesh"):
        parallel.make_train_step(Net(), cross_entropy, tx, mesh, axis_name="batch")
    with pytest.raises(TypeError, match="jax.sharding.Mesh"):
        parallel.make_train_step(Net(), cross_entropy, tx, jax.devices())


def test_other_axis_name_and_two_axis_mesh():
    """The batch split over 'batch' of a (4, 2) mesh: the second axis holds replicas; same result."""
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("batch", "model"))
    tx = optim.sgd(lr=0.05, momentum=0.9)
    state = _net_state(Net(), tx, seed=13)
    xs, ys = _batches(2, 12, seed=14)
    single = _run_single_device(Net(), tx, state, [(xs[i], ys[i]) for i in range(2)])
    step = parallel.make_train_step(Net(), cross_entropy, tx, mesh, axis_name="batch")
    for i in range(2):
        state, _metrics = step(state, (xs[i], ys[i]))
        _assert_trees_close(state, single[i][0], f"step {i}")


# --- communication: one fused reduction per BatchNorm layer per direction --------------------------


class _DeepNet(nn.Module):
    """Linear -> BatchNorm1d -> relu, three times, then a head: every BatchNorm needs its input gradient."""

    @nn.compact
    def __call__(self, x, train: bool = True):
        from torchsem.nn import Linear

        for i in range(3):
            x = Linear(x.shape[-1], 6, name=f"fc{i}")(x)
            x = BatchNorm1d(6, name=f"bn{i}")(x, use_running_average=not train)
            x = nn.relu(x)
        return Linear(6, 4, name="head")(x)


# "%x = f32[8,4,6]{2,1,0} all-gather(...)", or a tuple "(f32[64]{0}, /*index=5*/f32[2]{0}) all-reduce(...)"
# when XLA's combiner merged several reductions into one op.
_COLLECTIVE = re.compile(
    r"= (\(.*?\)|\S+) (all-reduce|all-gather|reduce-scatter|collective-permute|all-to-all)"
    r"(?:-start)?\("
)


def _collectives(hlo: str) -> list[tuple[str, tuple[str, ...], str]]:
    """(kind, result shapes, op_name) of every cross-device collective op in compiled HLO text."""
    found = []
    for line in hlo.splitlines():
        match = _COLLECTIVE.search(line)
        if match:
            op_name = re.search(r'op_name="([^"]*)"', line)
            shapes = tuple(re.findall(r"\w+\[[\d,]*\]", match.group(1)))
            found.append((match.group(2), shapes, op_name.group(1) if op_name else ""))
    return found


@pytest.mark.parametrize("padded", [False, True])
def test_compiled_step_has_one_fused_collective_per_batchnorm_layer_per_direction(mesh, padded):
    model, tx = _DeepNet(), optim.sgd(lr=0.1, momentum=0.9)
    x = np.random.default_rng(15).standard_normal((32, 5)).astype(np.float32)
    y = np.zeros(32, np.int32)
    state = train.TrainState.create(model.init(jax.random.PRNGKey(0), x), tx)
    batch = parallel.pad_batch((x[:29], y[:29]), mesh) if padded else (x, y)
    step = parallel.make_train_step(model, cross_entropy, tx, mesh)
    found = _collectives(step.lower(state, batch).compile().as_text())
    for layer in ("bn0", "bn1", "bn2"):
        forward = [c for c in found if f"/{layer}/" in c[2] and "transpose(" not in c[2]]
        backward = [c for c in found if f"/{layer}/" in c[2] and "transpose(" in c[2]]
        assert [c[:2] for c in forward] == [("all-gather", ("f32[8,4,6]",))], (layer, found)
        assert [c[:2] for c in backward] == [("all-reduce", ("f32[2,6]",))], (layer, found)
    n_params = sum(np.size(p) for p in jax.tree.leaves(state.params))
    rest = [c for c in found if not re.search(r"/bn\d/", c[2])]
    assert [c[:2] for c in rest] == [("all-reduce", (f"f32[{n_params + 2}]",))], found  # gradients + loss + count
    assert len(found) == 3 + 3 + 1, found
