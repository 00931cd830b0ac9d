"""torchsem.optim's SGD/Adam/AdamW against torch.optim (live PyTorch), and their API contracts.

The 20-step option grids with None gradients are catalogue scenarios (family ``optim``,
run by test_parity_catalogue.py); here: property tests over random hyperparameters and
None patterns, bit-exactness on tensors large enough for PyTorch's vectorised kernels, the
state_dict round trip, the bias-correction tables, and argument checking.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import maybe_jit
from torchsem import optim
from torchsem.optim import _schedule

F32 = np.float32


# ------------------------------------------------------------------------ helpers (live torch)


def _torch_run(kind, options, params0, grads, lr_scheduler_gamma=None):
    """PyTorch's parameters and state_dict()['state'] after every step (grads[t][i] None = no grad)."""
    import torch

    params = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params0]
    optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind](params, **options)
    history = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else torch.from_numpy(g.copy())
        optimizer.step()
        state = {
            i: {k: v.detach().numpy().copy() for k, v in entry.items()}
            for i, entry in optimizer.state_dict()["state"].items()
        }
        history.append(([p.detach().numpy().copy() for p in params], state))
    return history


def _torchsem_run(tx, params0, grads, use_jit, via="step"):
    params = [jnp.asarray(p) for p in params0]
    state = tx.init(params)

    def one(params, state, step_grads):
        if via == "step":
            return optim.step(tx, step_grads, state, params)
        updates, state = tx.update(step_grads, state, params)
        return optax.apply_updates(params, updates), state

    one = maybe_jit(one, use_jit)
    history = []
    for step_grads in grads:
        params, state = one(params, state, [None if g is None else jnp.asarray(g) for g in step_grads])
        history.append(([np.asarray(p) for p in params], optim.state_dict(state)))
    return history


def _assert_same_history(expected, actual, *, exact: bool, rtol=1e-5, atol=1e-6):
    for step, ((p_e, s_e), (p_a, s_a)) in enumerate(zip(expected, actual), start=1):
        assert s_e.keys() == s_a.keys(), f"step {step}: PyTorch has state for {sorted(s_e)}, torchsem for {sorted(s_a)}"
        pairs = [(f"param {i}", e, a) for i, (e, a) in enumerate(zip(p_e, p_a))]
        for index in s_e:
            assert s_e[index].keys() == s_a[index].keys()
            pairs += [(f"{key} {index}", s_e[index][key], s_a[index][key]) for key in s_e[index]]
        for what, e, a in pairs:
            assert e.dtype == a.dtype, f"step {step}, {what}: dtype {a.dtype}, PyTorch {e.dtype}"
            if exact:
                np.testing.assert_array_equal(a, e, err_msg=f"step {step}, {what} differs from PyTorch's bits")
            else:
                np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"step {step}, {what}")


def _random_problem(rng, shapes, steps, none_probability):
    params0 = [rng.standard_normal(s).astype(F32) for s in shapes]
    grads = []
    for _ in range(steps):
        step_grads = []
        for s in shapes:
            roll = rng.random()
            if roll < none_probability:
                step_grads.append(None)
            elif roll < none_probability + 0.1:
                step_grads.append(np.zeros(s, F32))  # zeros are not None
            else:
                step_grads.append(rng.standard_normal(s).astype(F32))
        grads.append(step_grads)
    return params0, grads


# ------------------------------------------------------------------------ properties vs PyTorch

_SGD_OPTIONS = st.fixed_dictionaries(
    {
        "lr": st.sampled_from([1e-3, 0.01, 0.1, 0.3]),
        "momentum": st.sampled_from([0.0, 0.5, 0.9, 0.99]),
        "dampening": st.sampled_from([0.0, 0.1, 0.5]),
        "weight_decay": st.sampled_from([0.0, 1e-4, 0.1]),
        "nesterov": st.booleans(),
        "maximize": st.booleans(),
    }
).filter(lambda o: not o["nesterov"] or (o["momentum"] > 0 and o["dampening"] == 0))

_ADAM_OPTIONS = st.fixed_dictionaries(
    {
        "lr": st.sampled_from([1e-3, 0.01, 0.1]),
        "betas": st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99), (0.8, 0.0)]),
        "eps": st.sampled_from([1e-8, 1e-3]),
        "weight_decay": st.sampled_from([0.0, 0.01, 0.1]),
        "amsgrad": st.booleans(),
        "maximize": st.booleans(),
    }
)


@pytest.mark.live_torch
@settings(max_examples=10)
@given(options=_SGD_OPTIONS, seed=st.integers(0, 2**31 - 1), use_jit=st.booleans())
def test_sgd_is_pytorch_bit_for_bit(options, seed, use_jit):
    rng = np.random.default_rng(seed)
    params0, grads = _random_problem(rng, [(3,), (5, 7), (40,)], steps=8, none_probability=0.25)
    expected = _torch_run("sgd", options, params0, grads)
    _assert_same_history(expected, _torchsem_run(optim.sgd(**options), params0, grads, use_jit), exact=True)


@pytest.mark.live_torch
@settings(max_examples=10)
@given(
    kind=st.sampled_from(["adam", "adamw"]),
    options=_ADAM_OPTIONS,
    seed=st.integers(0, 2**31 - 1),
    use_jit=st.booleans(),
)
def test_adam_matches_pytorch(kind, options, seed, use_jit):
    rng = np.random.default_rng(seed)
    params0, grads = _random_problem(rng, [(3,), (5, 7), (40,)], steps=8, none_probability=0.25)
    expected = _torch_run(kind, options, params0, grads)
    actual = _torchsem_run(getattr(optim, kind)(**options), params0, grads, use_jit)
    # Not bit for bit only because PyTorch's CPU sqrt (MKL VML_HA) is off by one ulp for about
    # 1% of inputs. The steps are exact, and so are the moments whenever they do not depend on
    # the parameters (no L2 decay added to the gradient).
    _assert_same_history(expected, actual, exact=False)
    moments_exact = kind == "adamw" or not options["weight_decay"]
    for (_, s_e), (_, s_a) in zip(expected, actual):
        for index in s_e:
            for key in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                if key in s_e[index] and (key == "step" or moments_exact):
                    np.testing.assert_array_equal(s_a[index][key], s_e[index][key], err_msg=key)


@pytest.mark.live_torch
@pytest.mark.parametrize("via", ["step", "update"])
@pytest.mark.parametrize(
    "options",
    [
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
        dict(lr=0.05, momentum=0.99, nesterov=True, weight_decay=0.01, maximize=True),
    ],
    ids=["momentum", "dampening-decay", "nesterov-maximize"],
)
def test_sgd_on_vectorised_sizes(options, via, jit):
    """Tensors long enough for PyTorch's vectorised (FMA) kernels, and odd tails."""
    rng = np.random.default_rng(7)
    params0, grads = _random_problem(rng, [(1000,), (33, 17)], steps=10, none_probability=0.2)
    expected = _torch_run("sgd", options, params0, grads)
    actual = _torchsem_run(optim.sgd(**options), params0, grads, jit, via=via)
    # optax's protocol adds new - old back onto old: exact unless a value crosses zero or more
    # than halves in one step; torchsem.optim.step is exact always.
    _assert_same_history(expected, actual, exact=(via == "step"))


@pytest.mark.live_torch
@pytest.mark.parametrize("dampening,maximize", [(0.0, False), (0.5, False), (0.0, True)])
def test_sgd_first_step_keeps_signed_zeros(dampening, maximize, jit):
    """PyTorch starts the buffer as clone(grad): -0.0 stays -0.0, +0.0 stays +0.0, bit for bit."""
    params0 = [np.array([1.0, -2.0, 0.0, -0.0, 3.0, 0.5], F32)]
    grads = [
        [np.array([-0.0, 0.0, -0.0, 0.0, 1.5, -0.0], F32)],
        [None],
        [np.array([0.0, -0.0, 1.0, -1.0, 0.0, 2.0], F32)],
    ]
    for nesterov in [False, True] if dampening == 0 else [False]:
        options = dict(lr=0.5, momentum=0.9, dampening=dampening, nesterov=nesterov, maximize=maximize)
        expected = _torch_run("sgd", options, params0, grads)
        actual = _torchsem_run(optim.sgd(**options), params0, grads, jit)
        _assert_same_history(expected, actual, exact=True)
        for (p_e, s_e), (p_a, s_a) in zip(expected, actual):
            np.testing.assert_array_equal(np.signbit(p_a[0]), np.signbit(p_e[0]))
            np.testing.assert_array_equal(np.signbit(s_a[0]["momentum_buffer"]), np.signbit(s_e[0]["momentum_buffer"]))


@pytest.mark.live_torch
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_learning_rate_schedule_counts_like_a_scheduler_stepped_after_the_optimizer(kind, jit):
    import torch

    rng = np.random.default_rng(3)
    params0, grads = _random_problem(rng, [(4,), (2, 3)], steps=12, none_probability=0.2)
    options = dict(lr=0.1, momentum=0.9) if kind == "sgd" else dict(lr=0.05)
    params = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params0]
    optimizer = (torch.optim.SGD if kind == "sgd" else torch.optim.Adam)(params, **options)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 / (1 + epoch))
    expected = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else torch.from_numpy(g.copy())
        optimizer.step()
        scheduler.step()
        expected.append([p.detach().numpy().copy() for p in params])
    schedule = lambda count: options["lr"] / (1 + count)  # noqa: E731
    tx = getattr(optim, kind)(**{**options, "lr": schedule})
    actual = _torchsem_run(tx, params0, grads, jit)
    for step, (e, (a, _)) in enumerate(zip(expected, actual), start=1):
        for ep, ap in zip(e, a):
            # The schedule's value is float32 (PyTorch's scheduler computes in float64).
            np.testing.assert_allclose(ap, ep, rtol=1e-5, atol=1e-6, err_msg=f"step {step}")


@pytest.mark.live_torch
@pytest.mark.parametrize(
    "kind,options",
    [
        ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
        ("adam", dict(lr=0.01, amsgrad=True)),
        ("adamw", dict(lr=0.01)),
    ],
)
def test_state_dict_round_trip_with_pytorch(kind, options):
    """Load PyTorch's state mid-run (names in PyTorch's order), continue both: the same run."""
    import torch

    rng = np.random.default_rng(11)
    shapes = {"fc.weight": (3, 4), "fc.bias": (3,), "bn.weight": (2,)}
    torch_order = ["fc.weight", "fc.bias", "bn.weight"]  # model.parameters() order
    values = {name: rng.standard_normal(shape).astype(F32) for name, shape in shapes.items()}
    grads = [
        {
            name: None if (t == 0 and name == "bn.weight") else rng.standard_normal(shape).astype(F32)
            for name, shape in shapes.items()
        }
        for t in range(6)
    ]
    params = {name: torch.nn.Parameter(torch.from_numpy(values[name].copy())) for name in torch_order}
    optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind](
        [params[n] for n in torch_order], **options
    )

    def torch_step(t):
        for name in torch_order:
            g = grads[t][name]
            params[name].grad = None if g is None else torch.from_numpy(g.copy())
        optimizer.step()

    for t in range(3):
        torch_step(t)
    torch_state = optimizer.state_dict()["state"]
    tx = getattr(optim, kind)(**options)
    jax_params = {
        "fc": {
            "weight": jnp.asarray(params["fc.weight"].detach().numpy()),
            "bias": jnp.asarray(params["fc.bias"].detach().numpy()),
        },
        "bn": {"weight": jnp.asarray(params["bn.weight"].detach().numpy())},
    }
    state = optim.load_state_dict(tx.init(jax_params), torch_state, order=torch_order)
    exported = optim.state_dict(state, order=torch_order)
    assert exported.keys() == torch_state.keys()
    for index in torch_state:
        for key, value in torch_state[index].items():
            np.testing.assert_array_equal(exported[index][key], value.numpy())
    for t in range(3, 6):
        torch_step(t)
        g = grads[t]
        jax_grads = {"fc": {"weight": g["fc.weight"], "bias": g["fc.bias"]}, "bn": {"weight": g["bn.weight"]}}
        jax_params, state = optim.step(tx, jax_grads, state, jax_params)
    for name in torch_order:
        module, leaf = name.split(".")
        np.testing.assert_allclose(
            np.asarray(jax_params[module][leaf]), params[name].detach().numpy(), rtol=1e-6, atol=1e-7
        )


# ------------------------------------------------------------------------ without PyTorch


@pytest.mark.parametrize(
    "beta1,beta2,lr", [(0.9, 0.999, 1e-3), (0.5, 0.9, 0.05), (0.0, 0.99, 0.1), (0.99, 0.9999, 3e-4)]
)
def test_bias_corrections_are_pytorchs_float64_values_rounded_once(beta1, beta2, lr):
    """PyTorch computes ``lr / (1 - beta1 ** step)`` and ``(1 - beta2 ** step) ** 0.5`` on Python floats."""
    corrections = _schedule.BiasCorrections(lr, beta1, beta2)
    steps = np.array([1, 2, 3, 10, 100, 1000, 5000, 20000, 65536, 65537, 200000, 2**24], np.float32)
    step_sizes = jax.jit(lambda s: jax.vmap(lambda t: corrections.neg_step_size(t, jnp.float32(lr)))(s))(steps)
    bc2 = jax.jit(lambda s: jax.vmap(lambda t: corrections.bias_correction2_sqrt(t, ()))(s))(steps)
    for step, got_size, got_bc2 in zip(steps, np.asarray(step_sizes), np.asarray(bc2)):
        step = float(step)
        want_size = np.float32(-(lr / (1 - beta1**step)))
        want_bc2 = np.float32((1 - beta2**step) ** 0.5)
        if step <= _schedule.TABLE_CAP:
            assert got_size == want_size and got_bc2 == want_bc2, step
        else:  # past the table (only when a beta is extremely close to 1): a few ulp
            np.testing.assert_allclose(got_size, want_size, rtol=3e-7)
            np.testing.assert_allclose(got_bc2, want_bc2, rtol=3e-7)


def test_zero_gradient_is_not_none_and_none_keeps_state(jit):
    """A None gradient leaves everything as it was; zeros still run momentum and weight decay."""
    tx = optim.sgd(lr=0.1, momentum=0.9, weight_decay=0.1)
    params = [jnp.ones(2), jnp.ones(2)]
    state = tx.init(params)
    one = maybe_jit(lambda p, s, g: optim.step(tx, g, s, p), jit)
    params, state = one(params, state, [jnp.ones(2), jnp.ones(2)])
    before = (params, state)
    params, state = one(params, state, [None, jnp.zeros(2)])
    np.testing.assert_array_equal(params[0], before[0][0])
    np.testing.assert_array_equal(state.momentum_buffer[0], before[1].momentum_buffer[0])
    assert not np.array_equal(params[1], before[0][1])  # zeros: momentum and decay still move it
    tx = optim.adam(lr=0.1)
    state = tx.init(params)
    _, state = optim.step(tx, [None, jnp.zeros(2)], state, params)
    assert [float(s) for s in state.step] == [0.0, 1.0]  # per-parameter step, PyTorch's


def test_update_is_the_difference_of_the_exact_step(jit):
    tx = optim.adamw(lr=0.01)
    params = {"a": jnp.linspace(-1.0, 1.0, 5), "b": jnp.full((2, 2), 3.0)}
    grads = {"a": jnp.arange(5.0), "b": None}
    state = tx.init(params)
    updates, state_u = maybe_jit(tx.update, jit)(grads, state, params)
    new, state_s = maybe_jit(tx.step, jit)(grads, state, params)
    np.testing.assert_array_equal(updates["b"], np.zeros((2, 2)))  # None: zero update, not None
    np.testing.assert_array_equal(np.asarray(optax.apply_updates(params, updates)["a"]), np.asarray(new["a"]))
    jax.tree.map(np.testing.assert_array_equal, state_u, state_s)


def test_torchsem_optimizers_are_optax_transformations():
    tx = optim.sgd(0.1, momentum=0.9)
    assert isinstance(tx, optax.GradientTransformation) and isinstance(tx, optim.TorchOptimizer)
    chained = optax.chain(optax.clip_by_global_norm(1.0), tx)
    params = {"w": jnp.ones(3)}
    updates, _ = chained.update({"w": jnp.full(3, 10.0)}, chained.init(params), params)
    # Clipped to norm 1, then PyTorch's first SGD step (buffer = gradient): -0.1 * g.
    np.testing.assert_allclose(updates["w"], -0.1 * np.full(3, 1 / math.sqrt(3)), rtol=1e-6)


def test_step_falls_back_to_optax_for_other_transformations():
    tx = optax.sgd(0.5)
    params = {"w": jnp.ones(2)}
    new, _ = optim.step(tx, {"w": jnp.ones(2)}, tx.init(params), params)
    np.testing.assert_array_equal(new["w"], np.full(2, 0.5))


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: optim.sgd(lr="0.1"), "lr must be a float or an optax schedule"),
        (lambda: optim.sgd(0.1, momentum=None), "momentum must be a real number"),
        (lambda: optim.adam(betas=0.9), "betas must be a pair"),
        (lambda: optim.adam(eps="tiny"), "eps must be a real number"),
    ],
)
def test_bad_argument_types_name_the_argument(build, message):
    with pytest.raises(TypeError, match=message):
        build()


def test_update_needs_params_and_matching_grads():
    tx = optim.sgd(0.1)
    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    state = tx.init(params)
    with pytest.raises(ValueError, match="params is required"):
        tx.update({"a": jnp.ones(2), "b": jnp.ones(3)}, state)
    with pytest.raises(ValueError, match="grads must have the structure of params"):
        tx.update({"a": jnp.ones(2)}, state, params)
    with pytest.raises(ValueError, match=r"gradient 1 \(tree leaf order\) has shape \(2,\)"):
        tx.update({"a": jnp.ones(2), "b": jnp.ones(2)}, state, params)
    with pytest.raises(TypeError, match="floating-point parameters"):
        tx.init({"a": jnp.ones(2, jnp.int32)})


def test_state_dict_order_and_load_errors():
    tx = optim.adam(0.1)
    params = {"fc": {"weight": jnp.ones((2, 2)), "bias": jnp.ones(2)}}
    state = tx.init(params)
    _, state = optim.step(tx, {"fc": {"weight": jnp.ones((2, 2)), "bias": None}}, state, params)
    assert list(optim.state_dict(state)) == [1]  # leaf order: fc.bias, fc.weight
    assert list(optim.state_dict(state, order=["fc.weight", "fc.bias"])) == [0]
    with pytest.raises(ValueError, match="order must name every parameter once"):
        optim.state_dict(state, order=["fc.weight"])
    with pytest.raises(ValueError, match="expected"):
        optim.load_state_dict(state, {0: {"exp_avg": np.ones(2)}})
    with pytest.raises(ValueError, match="shape"):
        optim.load_state_dict(state, {0: {"step": np.float32(1), "exp_avg": np.ones(3), "exp_avg_sq": np.ones(3)}})
    with pytest.raises(ValueError, match="no optimizer state here"):
        optim.load_state_dict(state, {5: {"step": np.float32(1), "exp_avg": np.ones(2), "exp_avg_sq": np.ones(2)}})
    assert optim.state_dict(optim.sgd(0.1).init(params)) == {}  # no momentum: PyTorch keeps no state
