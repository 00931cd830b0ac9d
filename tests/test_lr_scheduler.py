"""torchsem.optim.lr_scheduler: PyTorch's values bit for bit, the float32 schedule under jit, and the API.

The 60-step parity cases per scheduler are catalogue scenarios (family ``lr_scheduler``);
here: longer and random configurations against live PyTorch (bit for bit on one machine),
the table / host-callback machinery (jit, vmap, scan, past the horizon, schedules that
settle), ReduceLROnPlateau's edge cases, per_epoch, composites, and argument errors.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torchsem import optim
from torchsem.optim import lr_scheduler as L

F32 = np.float32


def _bits(values) -> np.ndarray:
    return np.asarray(values, np.float64).view(np.int64)


def _torch_run(build, steps: int, kind: str = "sgd", metrics=None):
    """PyTorch's param_groups[0] lr (and cycled momentum) after construction and each of ``steps`` steps."""
    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9) if kind == "sgd" else torch.optim.Adam([param], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = build(torch.optim.lr_scheduler, optimizer)
        group = optimizer.param_groups[0]

        def momentum():
            return group["momentum"] if kind == "sgd" else group["betas"][0]

        lrs, momentums = [group["lr"]], [momentum()]
        for step in range(steps):
            optimizer.step()
            if metrics is None:
                scheduler.step()
            else:
                scheduler.step(metrics[step])
            lrs.append(group["lr"])
            momentums.append(momentum())
    return np.array(lrs, np.float64), np.array(momentums, np.float64)


# ------------------------------------------------------------------------ vs PyTorch, bit for bit

_LONG = [
    (
        "cosine-t_max=7-eta_min",
        lambda T, o: T.CosineAnnealingLR(o, 7, 0.003),
        lambda: L.CosineAnnealingLR(0.1, 7, 0.003),
    ),
    ("cosine-t_max=1", lambda T, o: T.CosineAnnealingLR(o, 1), lambda: L.CosineAnnealingLR(0.1, 1)),
    (
        "warm-restarts-t_mult=3",
        lambda T, o: T.CosineAnnealingWarmRestarts(o, 3, 3, 0.01),
        lambda: L.CosineAnnealingWarmRestarts(0.1, 3, 3, 0.01),
    ),
    ("exponential-gamma=0.999", lambda T, o: T.ExponentialLR(o, 0.999), lambda: L.ExponentialLR(0.1, 0.999)),
    ("linear-total=0", lambda T, o: T.LinearLR(o, 0.5, total_iters=0), lambda: L.LinearLR(0.1, 0.5, total_iters=0)),
    ("polynomial-power=0.5", lambda T, o: T.PolynomialLR(o, 250, 0.5), lambda: L.PolynomialLR(0.1, 250, 0.5)),
    (
        "cyclic-exp_range-long",
        lambda T, o: T.CyclicLR(o, 1e-3, 0.05, 17, 40, mode="exp_range", gamma=0.999),
        lambda: L.CyclicLR(1e-3, 0.05, 17, 40, mode="exp_range", gamma=0.999),
    ),
    (
        "one-cycle-three-phase-cos",
        lambda T, o: T.OneCycleLR(o, 0.3, total_steps=300, pct_start=0.25, three_phase=True, div_factor=10.0),
        lambda: L.OneCycleLR(0.3, total_steps=300, pct_start=0.25, three_phase=True, div_factor=10.0),
    ),
    (
        "sequential-restart-without-closed-form",
        lambda T, o: T.SequentialLR(
            o,
            [T.ExponentialLR(o, 0.9), T.MultiplicativeLR(o, lambda e: 0.99), T.CosineAnnealingWarmRestarts(o, 6)],
            [8, 20],
        ),
        lambda: L.SequentialLR(
            [L.ExponentialLR(0.1, 0.9), L.MultiplicativeLR(0.1, lambda e: 0.99), L.CosineAnnealingWarmRestarts(0.1, 6)],
            [8, 20],
        ),
    ),
    (
        "chained-with-a-sequential-member",
        lambda T, o: T.ChainedScheduler(
            [T.SequentialLR(o, [T.LinearLR(o, 0.2, total_iters=5), T.ExponentialLR(o, 0.97)], [5]), T.StepLR(o, 9, 0.5)]
        ),
        lambda: L.ChainedScheduler(
            [
                L.SequentialLR([L.LinearLR(0.1, 0.2, total_iters=5), L.ExponentialLR(0.1, 0.97)], [5]),
                L.StepLR(0.1, 9, 0.5),
            ]
        ),
    ),
    (
        "sequential-with-a-chained-first-member",
        lambda T, o: T.SequentialLR(
            o, [T.ChainedScheduler([T.ConstantLR(o, 0.5, 4), T.ExponentialLR(o, 0.9)]), T.StepLR(o, 3)], [10]
        ),
        lambda: L.SequentialLR(
            [L.ChainedScheduler([L.ConstantLR(0.1, 0.5, 4), L.ExponentialLR(0.1, 0.9)]), L.StepLR(0.1, 3)], [10]
        ),
    ),
    (
        "sequential-cyclic-second",
        lambda T, o: T.SequentialLR(o, [T.StepLR(o, 4), T.CyclicLR(o, 0.01, 0.1, 5)], [12]),
        lambda: L.SequentialLR([L.StepLR(0.1, 4), L.CyclicLR(0.01, 0.1, 5)], [12]),
    ),
]


@pytest.mark.live_torch
@pytest.mark.parametrize("case", _LONG, ids=[c[0] for c in _LONG])
def test_300_steps_bit_for_bit(case):
    _, torch_build, build = case
    lrs, momentums = _torch_run(torch_build, 300)
    scheduler = build()
    np.testing.assert_array_equal(_bits(scheduler.lrs(301)), _bits(lrs))
    if scheduler.momentum is not None:
        np.testing.assert_array_equal(_bits(scheduler.momentums(301)), _bits(momentums))


@pytest.mark.live_torch
@settings(max_examples=15)
@given(
    t_max=st.integers(1, 40),
    eta_min=st.sampled_from([0.0, 1e-4, 0.05]),
    up=st.integers(1, 20),
    down=st.integers(0, 20),
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
    pct=st.floats(0.05, 0.95),
    strategy=st.sampled_from(["cos", "linear"]),
)
def test_random_configurations_bit_for_bit(t_max, eta_min, up, down, mode, pct, strategy):
    steps = 120
    lrs, _ = _torch_run(lambda T, o: T.CosineAnnealingLR(o, t_max, eta_min), steps)
    np.testing.assert_array_equal(_bits(L.CosineAnnealingLR(0.1, t_max, eta_min).lrs(steps + 1)), _bits(lrs))
    lrs, moms = _torch_run(lambda T, o: T.CyclicLR(o, 0.01, 0.2, up, down, mode=mode, gamma=0.99), steps, "adam")
    cyclic = L.CyclicLR(0.01, 0.2, up, down, mode=mode, gamma=0.99)
    np.testing.assert_array_equal(_bits(cyclic.lrs(steps + 1)), _bits(lrs))
    np.testing.assert_array_equal(_bits(cyclic.momentums(steps + 1)), _bits(moms))
    lrs, moms = _torch_run(
        lambda T, o: T.OneCycleLR(o, 0.2, total_steps=steps, pct_start=pct, anneal_strategy=strategy), steps
    )
    one = L.OneCycleLR(0.2, total_steps=steps, pct_start=pct, anneal_strategy=strategy)
    np.testing.assert_array_equal(_bits(one.lrs(steps + 1)), _bits(lrs))
    np.testing.assert_array_equal(_bits(one.momentums(steps + 1)), _bits(moms))


def test_the_recursion_is_not_the_closed_form():
    """What the exactness is about: PyTorch's chainable values differ from the closed forms in the last bits."""
    t_max, steps = 50, 51
    closed = [0.1 * (1 + math.cos(math.pi * t / t_max)) / 2 for t in range(steps)]
    recursive = L.CosineAnnealingLR(0.1, t_max).lrs(steps)
    assert np.count_nonzero(_bits(recursive) != _bits(closed)) > steps // 4
    np.testing.assert_allclose(recursive, closed, rtol=1e-14, atol=1e-18)
    exponential = L.ExponentialLR(0.1, 0.93).lrs(60)
    assert np.any(_bits(exponential) != _bits([0.1 * 0.93**t for t in range(60)]))


# ------------------------------------------------------------------------ the float32 schedule


def test_jit_vmap_and_scan_read_the_float32_table():
    scheduler = L.CosineAnnealingLR(0.1, 20, 0.001, horizon=64)
    expected = scheduler.lrs(80).astype(F32)  # counts 64..79 come from the host callback
    counts = jnp.arange(80, dtype=jnp.int32)
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(scheduler))(counts)), expected)
    _, scanned = jax.lax.scan(lambda c, _: (c + 1, scheduler(c)), jnp.int32(0), None, length=80)
    np.testing.assert_array_equal(np.asarray(scanned), expected)
    eager = np.array([np.asarray(scheduler(c)) for c in (0, 5, 63, 64, 79)])
    np.testing.assert_array_equal(eager, expected[[0, 5, 63, 64, 79]])
    assert scheduler(jnp.int32(3)).dtype == jnp.float32


def test_a_settled_schedule_has_a_complete_table_and_no_callback():
    scheduler = L.StepLR(0.1, 3, gamma=0.5)  # the float64 lr reaches 0 (a fixed point) after ~1080 decays
    table, complete = scheduler._history.table("lr", scheduler.horizon)
    assert complete and table.shape[0] < scheduler.horizon and table[-1] == 0.0
    assert "callback" not in str(jax.make_jaxpr(scheduler)(jnp.int32(0)))
    far = jnp.int32(10**6)
    assert float(jax.jit(scheduler)(far)) == 0.0 == float(scheduler.lrs(10**4)[-1])
    linear = L.LinearLR(0.1, 0.25, total_iters=4)
    assert linear._history.table("lr", linear.horizon)[1] and linear._history.table("lr", 64)[0].shape == (5,)
    cosine = L.CosineAnnealingLR(0.1, 10, horizon=16)
    assert "callback" in str(jax.make_jaxpr(cosine)(jnp.int32(0)))
    assert np.isnan(float(jax.jit(linear)(jnp.int32(-1))))  # no optimizer makes a negative count


def test_errors_past_the_end_are_pytorchs_also_under_jit():
    one = L.OneCycleLR(0.1, total_steps=10, horizon=8)
    assert float(jax.jit(one)(jnp.int32(10))) == F32(one.lrs(11)[10])  # count 10 is the last valid one
    message = "Tried to step 11 times. The specified number of total steps is 10"
    with pytest.raises(ValueError, match=message):
        one.lrs(12)
    with pytest.raises(ValueError, match=message):
        one(11)
    # From the host callback: JAX reports it as its JaxRuntimeError (a RuntimeError), or with the
    # original type when the call reuses a cached executable; PyTorch's message is inside either way.
    for _ in range(2):
        with pytest.raises((RuntimeError, ValueError), match=message):
            jax.block_until_ready(jax.jit(one)(jnp.int32(11)))
    deferred = L.StepLR(0.1, step_size=0)  # PyTorch builds it and divides by zero at the first step
    assert deferred.lrs(1)[0] == 0.1
    with pytest.raises(ZeroDivisionError):
        deferred.lrs(2)


@pytest.mark.live_torch
def test_deferred_errors_match_pytorch():
    import torch

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=0)
    optimizer.step()
    with pytest.raises(ZeroDivisionError):
        scheduler.step()
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    nested = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.StepLR(optimizer, 2),
            torch.optim.lr_scheduler.ChainedScheduler([torch.optim.lr_scheduler.StepLR(optimizer, 2)]),
        ],
        [3],
    )
    for _ in range(2):
        optimizer.step()
        nested.step()
    optimizer.step()
    with pytest.raises(NotImplementedError):
        nested.step()
    mine = L.SequentialLR([L.StepLR(0.1, 2), L.ChainedScheduler([L.StepLR(0.1, 2)])], [3])
    assert mine.lrs(3).shape == (3,)
    with pytest.raises(NotImplementedError, match="composite member"):
        mine.lrs(4)


def test_momentum_schedules():
    one = L.OneCycleLR(0.1, total_steps=50)
    assert isinstance(one.momentum, L.MomentumSchedule)
    momentums = one.momentums(51)
    assert momentums[0] == 0.95 and np.isclose(momentums.min(), 0.85)
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(one.momentum))(jnp.arange(51))), momentums.astype(F32))
    np.testing.assert_array_equal(one.momentum.values(51), momentums)
    assert L.OneCycleLR(0.1, total_steps=50, cycle_momentum=False).momentum is None
    assert L.StepLR(0.1, 3).momentum is None
    with pytest.raises(ValueError, match="does not cycle momentum"):
        L.StepLR(0.1, 3).momentums(3)
    chained = L.ChainedScheduler([L.ExponentialLR(0.1, 0.9), L.CyclicLR(0.01, 0.1, 4)])
    assert chained.momentum is not None and chained.momentums(3)[0] == 0.9


def test_optimizers_take_a_scheduler_as_lr():
    scheduler = L.ExponentialLR(0.1, 0.5)
    params = jnp.zeros((), jnp.float32)
    for tx in (optim.sgd(lr=scheduler), optax.sgd(learning_rate=scheduler)):
        state = tx.init(params)
        used = []
        for _ in range(4):
            updates, state = tx.update(jnp.float32(-1.0), state, params)
            used.append(float(updates))
        np.testing.assert_array_equal(np.array(used, F32), scheduler.lrs(4).astype(F32))


# ------------------------------------------------------------------------ per_epoch


def test_per_epoch():
    scheduler = L.OneCycleLR(0.1, total_steps=5)
    stepped = L.per_epoch(scheduler, steps_per_epoch=3)
    expected = scheduler.lrs(6)[np.arange(18) // 3]
    np.testing.assert_array_equal(stepped.lrs(18), expected)
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(stepped))(jnp.arange(18))), expected.astype(F32))
    assert stepped.momentum is not None
    np.testing.assert_array_equal(stepped.momentums(18), scheduler.momentums(6)[np.arange(18) // 3])
    np.testing.assert_array_equal(np.asarray(stepped.momentum(np.arange(18))), stepped.momentums(18).astype(F32))
    plain = L.per_epoch(optax.exponential_decay(0.1, 1, 0.5), 2)  # any optax schedule
    assert plain.momentum is None and float(plain(jnp.int32(5))) == pytest.approx(0.025)
    with pytest.raises(TypeError, match="no host values"):
        plain.lrs(3)
    for bad in (0, -2, 2.0, True):
        with pytest.raises(ValueError, match="Expected positive integer steps_per_epoch"):
            L.per_epoch(scheduler, bad)
    with pytest.raises(TypeError, match="callable"):
        L.per_epoch(0.1, 3)


# ------------------------------------------------------------------------ ReduceLROnPlateau


def _plateau_lrs(scheduler, metrics):
    state = scheduler.init()
    lrs = []
    for metric in metrics:
        state = scheduler.step(state, metric)
        lrs.append(state.lr)
    return lrs, state


def test_plateau_counts_more_than_patience_bad_epochs():
    # patience=1: the first epoch sets the best; a cut needs 2 bad epochs; ties are bad epochs.
    lrs, state = _plateau_lrs(L.ReduceLROnPlateau(1.0, factor=0.5, patience=1), [5.0, 5.0, 5.0, 4.0, 4.0, 4.0])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    assert state == L.PlateauState(0.25, 4.0, 0, 0, 6)


def test_plateau_nan_is_a_bad_epoch_and_never_the_best():
    lrs, state = _plateau_lrs(L.ReduceLROnPlateau(1.0, factor=0.5, patience=0), [1.0, math.nan, math.nan, 0.5])
    assert lrs == [1.0, 0.5, 0.25, 0.25] and state.best == 0.5


def test_plateau_cooldown_holds_the_count_at_zero():
    lrs, _ = _plateau_lrs(L.ReduceLROnPlateau(1.0, factor=0.5, patience=0, cooldown=2), [1.0] * 7)
    assert lrs == [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]


def test_plateau_min_lr_and_eps():
    lrs, _ = _plateau_lrs(L.ReduceLROnPlateau(1.0, factor=0.5, patience=0, min_lr=0.3), [1.0] * 4)
    assert lrs == [1.0, 0.5, 0.3, 0.3]
    # 0.01 -> 0.005 is a cut of 5e-3 > eps; 0.005 -> 0.004 (min_lr) only 1e-3, skipped with eps=1e-3.
    lrs, _ = _plateau_lrs(L.ReduceLROnPlateau(0.01, factor=0.5, patience=0, min_lr=[0.004], eps=1e-3), [1.0] * 4)
    assert lrs == [0.01, 0.005, 0.005, 0.005]


def test_plateau_modes_and_thresholds():
    rel = L.ReduceLROnPlateau(1.0, mode="min", patience=0, threshold=0.1)
    assert _plateau_lrs(rel, [1.0, 0.91])[0][-1] == 0.1  # not 10% better: a bad epoch
    assert _plateau_lrs(rel, [1.0, 0.89])[0][-1] == 1.0
    absolute = L.ReduceLROnPlateau(1.0, mode="max", patience=0, threshold=0.1, threshold_mode="abs")
    assert _plateau_lrs(absolute, [1.0, 1.05])[0][-1] == 0.1
    assert _plateau_lrs(absolute, [1.0, 1.2])[0][-1] == 1.0
    assert L.ReduceLROnPlateau(1.0, mode="max").init().best == -math.inf


def test_plateau_metric_types():
    scheduler = L.ReduceLROnPlateau(1.0, patience=0)
    state = scheduler.step(scheduler.init(), jnp.float32(2.0))  # a concrete JAX scalar is read with float()
    state = scheduler.step(state, np.float64(3.0))
    assert state.lr == pytest.approx(0.1) and state.best == 2.0
    with pytest.raises(TypeError, match="concrete metric"):
        jax.jit(lambda m: scheduler.step(scheduler.init(), m).lr)(1.0)
    with pytest.raises(TypeError, match="PlateauState"):
        scheduler.step((1.0, 2.0), 1.0)


@pytest.mark.live_torch
@settings(max_examples=10)
@given(
    metrics=st.lists(st.sampled_from([1.0, 0.9, 0.8, 0.99, 0.5, math.nan, math.inf, 0.49999]), min_size=5, max_size=40),
    mode=st.sampled_from(["min", "max"]),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    patience=st.integers(0, 3),
    cooldown=st.integers(0, 2),
    min_lr=st.sampled_from([0, 1e-3]),
)
def test_plateau_matches_pytorch(metrics, mode, threshold_mode, patience, cooldown, min_lr):
    options = dict(
        mode=mode, factor=0.3, patience=patience, threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr
    )
    lrs, _ = _torch_run(lambda T, o: T.ReduceLROnPlateau(o, **options), len(metrics), metrics=metrics)
    mine, _ = _plateau_lrs(L.ReduceLROnPlateau(0.1, **options), metrics)
    np.testing.assert_array_equal(_bits([0.1, *mine]), _bits(lrs))


# ------------------------------------------------------------------------ argument errors


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: L.StepLR("0.1", 3), TypeError, "lr must be a real number"),
        (lambda: L.StepLR(0.1, 2.5), TypeError, "step_size must be an int"),
        (lambda: L.StepLR(0.1, 3, gamma=None), TypeError, "gamma must be a real number"),
        (lambda: L.MultiStepLR(0.1, 5), TypeError, "not iterable"),
        (lambda: L.MultiStepLR(0.1, [2.5]), TypeError, "milestones"),
        (lambda: L.CosineAnnealingLR(0.1, 10, horizon=0), ValueError, "horizon must be a positive int"),
        (lambda: L.CyclicLR([0.01, 0.02], 0.1), ValueError, "base_lr must have the same length"),
        (lambda: L.OneCycleLR(0.1, total_steps=10, base_momentum=[0.8, 0.9]), ValueError, "base_momentum must have"),
        (lambda: L.SequentialLR([L.StepLR(0.1, 2), L.StepLR(0.2, 3)], [4]), ValueError, "same lr"),
        (lambda: L.ChainedScheduler([L.StepLR(0.1, 2), optax.constant_schedule(0.1)]), TypeError, "at index 1"),
        (lambda: L.SequentialLR([L.StepLR(0.1, 2), L.StepLR(0.1, 3)], [2.0]), TypeError, "milestones"),
        (lambda: L.ReduceLROnPlateau(0.1, patience=1.5), TypeError, "patience must be an int"),
        (lambda: L.LambdaLR(0.1, 3).lrs(1), TypeError, "not callable"),  # called at construction, as in PyTorch
    ],
)
def test_argument_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_count_and_steps_errors():
    scheduler = L.StepLR(0.1, 3)
    with pytest.raises(TypeError, match="count must be an integer"):
        scheduler(1.5)
    with pytest.raises(TypeError, match="count must be an integer"):
        jax.jit(scheduler)(jnp.float32(1.0))
    with pytest.raises(ValueError, match=">= 0"):
        scheduler(-1)
    with pytest.raises(ValueError, match="steps must be a non-negative int"):
        scheduler.lrs(-1)
    # CyclicLR and OneCycleLR set their own lr: they join a composite built with any lr.
    mixed = L.SequentialLR([L.StepLR(0.2, 2), L.CyclicLR(0.01, 0.1, 3)], [4])
    assert mixed.lrs(1)[0] == 0.2
