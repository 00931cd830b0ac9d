"""torchsem.optim's RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam against torch.optim, and their contracts.

The 20-step option grids are catalogue scenarios (family ``optim_more``, run by
test_parity_catalogue.py) compared within float32 tolerances, because PyTorch's CPU sqrt is
not correctly rounded. Here PyTorch runs with its ``Tensor.sqrt``/``Tensor.sqrt_`` replaced by
a correctly rounded one (the only change), and every parameter and state tensor must then be
PyTorch's bit for bit (with its AVX2/AVX-512 kernels; its portable build rounds ``a * b + c``
twice and is compared within tolerances): that pins down every other rounding (FMAs, the
order of products, the float64 step scalars). Also: PyTorch's state loaded mid-run at large step counts (the step
tables, their ends and past their cap), the state_dict round trip, argument types, jit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import maybe_jit
from torchsem import optim
from torchsem.compare.scenarios.optim_more import TORCH_NAMES
from torchsem.optim import _nadam, _radam, _schedule
from torchsem.random import normal_kernel_build

F32 = np.float32

FMA_KERNELS = normal_kernel_build() == "avx2"
"""PyTorch's AVX2/AVX-512 CPU kernels (what torchsem reproduces) fuse ``a * b + c``; its portable
DEFAULT build (x86-64 without AVX2+FMA, or ``ATEN_CPU_CAPABILITY=default``) rounds twice, and
is then compared within float32 tolerances instead of bit for bit."""


def _assert_pytorchs(actual, expected, message):
    if FMA_KERNELS:
        np.testing.assert_array_equal(actual, expected, err_msg=message + " differs from PyTorch's bits")
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=message)


@pytest.fixture
def exact_sqrt(monkeypatch):
    """PyTorch with a correctly rounded float32 sqrt (float64 sqrt rounded once), nothing else changed."""
    import torch

    def sqrt(self):
        return torch.from_numpy(np.sqrt(self.detach().numpy().astype(np.float64)).astype(self.detach().numpy().dtype))

    def sqrt_(self):
        with torch.no_grad():
            self.copy_(sqrt(self))
        return self

    monkeypatch.setattr(torch.Tensor, "sqrt", sqrt)
    monkeypatch.setattr(torch.Tensor, "sqrt_", sqrt_)
    values = torch.tensor([2.0, 3.0, 5.0, 0.7, 1e-3])
    assert np.array_equal(values.sqrt().numpy(), np.sqrt(values.numpy())), "the patch is not in effect"


def _torch_state(optimizer):
    return {
        i: {k: v.detach().numpy().copy() for k, v in entry.items()}
        for i, entry in optimizer.state_dict()["state"].items()
    }


def _problem(seed, shapes=((40,), (3,)), steps=12):
    """Random parameters and gradients; parameter 0: None at steps 1 and 6; parameter 1: zeros at step 4."""
    rng = np.random.default_rng(seed)
    params0 = [rng.standard_normal(s).astype(F32) for s in shapes]
    grads = []
    for t in range(1, steps + 1):
        step = [rng.standard_normal(s).astype(F32) for s in shapes]
        if t in (1, 6):
            step[0] = None
        if t == 4:
            step[1] = np.zeros(shapes[1], F32)
        grads.append(step)
    return params0, grads


def _torch_run(kind, options, params0, grads):
    import torch

    params = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params0]
    optimizer = getattr(torch.optim, TORCH_NAMES[kind])(params, **options)
    history = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else torch.from_numpy(g.copy())
        optimizer.step()
        history.append(([p.detach().numpy().copy() for p in params], _torch_state(optimizer)))
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


def _assert_same(expected, actual):
    """Bit for bit: the parameters, which parameters have state, its keys in PyTorch's order, every tensor."""
    for step, ((p_e, s_e), (p_a, s_a)) in enumerate(zip(expected, actual), start=1):
        assert s_e.keys() == s_a.keys(), f"step {step}: PyTorch has state for {sorted(s_e)}, torchsem for {sorted(s_a)}"
        pairs = [(f"param {i}", e, a) for i, (e, a) in enumerate(zip(p_e, p_a))]
        for index in s_e:
            assert list(s_e[index]) == list(s_a[index]), (
                f"step {step}: keys {list(s_a[index])}, PyTorch's {list(s_e[index])}"
            )
            pairs += [(f"{key} {index}", s_e[index][key], s_a[index][key]) for key in s_e[index]]
        for what, e, a in pairs:
            assert e.dtype == a.dtype and e.shape == a.shape, (
                f"step {step}, {what}: {a.dtype}{a.shape}, PyTorch {e.dtype}{e.shape}"
            )
            _assert_pytorchs(a, e, f"step {step}, {what}")


# ------------------------------------------------------------------------ bit for bit (correctly rounded sqrt)

_EXACT_CASES = [
    ("rmsprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("rmsprop", dict(lr=1.0, alpha=0.5, maximize=True)),
    ("adagrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("adadelta", dict(lr=1.0, rho=0.5, weight_decay=0.1, maximize=True)),  # lr = 1: -lr * delta folds to -delta
    ("adamax", dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.1)),
    ("nadam", dict(lr=0.05, weight_decay=0.1, momentum_decay=0.1, maximize=True)),
    ("nadam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, betas=(0.0, 0.5))),
    ("radam", dict(lr=0.05, weight_decay=0.1, betas=(0.5, 0.9))),
    ("radam", dict(lr=1.0, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
]


@pytest.mark.live_torch
@pytest.mark.parametrize("number,kind,options", [(n, k, o) for n, (k, o) in enumerate(_EXACT_CASES)])
def test_bit_for_bit_with_pytorch_once_its_sqrt_is_correctly_rounded(number, kind, options, exact_sqrt):
    """40 elements take PyTorch's vectorised kernels (and a tail), 3 its scalar loop; None and zero gradients."""
    params0, grads = _problem(seed=20 + number)
    expected = _torch_run(kind, options, params0, grads)
    actual = _torchsem_run(getattr(optim, kind)(**options), params0, grads, use_jit=number % 2 == 1)
    _assert_same(expected, actual)


@pytest.mark.live_torch
def test_adamax_needs_no_patch(jit):
    """Adamax takes no square root: PyTorch's own kernels, bit for bit, also through optax's protocol."""
    options = dict(lr=0.05, weight_decay=0.1, maximize=True)
    params0, grads = _problem(seed=9)
    expected = _torch_run("adamax", options, params0, grads)
    _assert_same(expected, _torchsem_run(optim.adamax(**options), params0, grads, jit))
    # new - old added back by optax.apply_updates: exact here (no value crosses zero or halves).
    _assert_same(expected, _torchsem_run(optim.adamax(**options), params0, grads, jit, via="update"))


# ------------------------------------------------------------------------ PyTorch's state at large step counts


def _jump_state(kind, options, shape, step, rng):
    """A plausible state before ``step``: positive second moments, NAdam's mu_product as PyTorch's after step - 1."""
    entry = {"step": np.array(step - 1, F32)}
    moment = rng.standard_normal(shape).astype(F32) * F32(0.1)
    positive = (rng.random(shape).astype(F32) + F32(0.5)) * F32(0.01)
    if kind == "adagrad":
        entry["sum"] = positive * F32(step)
    elif kind == "adamax":
        entry.update(exp_avg=moment, exp_inf=np.sqrt(positive))
    elif kind == "nadam":
        products = _nadam._tables(options["lr"], 0.9, 0.999, options.get("momentum_decay", 4e-3)).mu_product.values
        entry["mu_product"] = np.array(products[min(step - 2, len(products) - 1)] if step > 1 else 1.0, F32)
        entry.update(exp_avg=moment, exp_avg_sq=positive)
    else:
        entry.update(exp_avg=moment, exp_avg_sq=positive)
    return entry


_JUMP_STEPS = [2, 6, 7, 167, 1000, 17000, 19607, _schedule.TABLE_CAP, _schedule.TABLE_CAP + 10]


@pytest.mark.live_torch
@pytest.mark.parametrize(
    "kind,options",
    [
        ("adagrad", dict(lr=0.1, lr_decay=0.01)),
        ("adamax", dict(lr=0.01)),
        ("nadam", dict(lr=0.01)),
        ("nadam", dict(lr=0.01, momentum_decay=0.1)),
        ("radam", dict(lr=0.01)),
    ],
)
def test_step_scalars_at_large_steps_are_pytorchs(kind, options, exact_sqrt):
    """Load PyTorch's state with ``step = N - 1`` into both and take step N: the tables are PyTorch's float64 values.

    The steps cross RAdam's rectification threshold (6), the ends of the tables (bias
    corrections near 167 and 17,000, the rectification near 19,600) and their cap (65,536:
    past it the scalars are float32, a few ulp).
    """
    import torch

    rng = np.random.default_rng(5)
    shape = (19,)
    tx = getattr(optim, kind)(**options)  # one transformation: one compilation for every step below
    for step in _JUMP_STEPS:
        param = rng.standard_normal(shape).astype(F32)
        grad = rng.standard_normal(shape).astype(F32)
        entry = _jump_state(kind, options, shape, step, rng)
        torch_param = torch.nn.Parameter(torch.from_numpy(param.copy()))
        optimizer = getattr(torch.optim, TORCH_NAMES[kind])([torch_param], **options)
        state_dict = optimizer.state_dict()
        state_dict["state"] = {0: {k: torch.from_numpy(np.array(v, copy=True)) for k, v in entry.items()}}
        optimizer.load_state_dict(state_dict)
        torch_param.grad = torch.from_numpy(grad.copy())
        optimizer.step()
        state = optim.load_state_dict(tx.init([jnp.asarray(param)]), {0: entry})
        new, state = optim.step(tx, [jnp.asarray(grad)], state, [jnp.asarray(param)])
        expected = [torch_param.detach().numpy(), *_torch_state(optimizer)[0].values()]
        actual = [np.asarray(new[0]), *optim.state_dict(state)[0].values()]
        for e, a in zip(expected, actual):
            if step <= _schedule.TABLE_CAP:
                _assert_pytorchs(a, e, f"step {step}")
            else:  # past the tables' cap the scalars are computed in float32
                np.testing.assert_allclose(a, e, rtol=2e-6, atol=1e-7, err_msg=f"step {step}")


def test_tables_are_pytorchs_python_float_formulas():
    """The vectorised tables against PyTorch's per-step formulas written out on Python floats."""
    lr, beta1, beta2, decay = 0.002, 0.9, 0.999, 0.004
    tables = _nadam._tables(lr, beta1, beta2, decay)
    product = F32(1.0)
    for step in range(1, 400):
        t = float(step)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * decay)))
        product = F32(product * F32(mu))
        assert tables.mu_product.values[min(step, len(tables.mu_product)) - 1] == product, step
        assert tables.grad_coefficient.values[step - 1] == F32(-lr * (1.0 - mu) / (1.0 - float(product))), step
        assert tables.avg_coefficient.values[step - 1] == F32((-lr * mu_next) / (1.0 - float(product) * mu_next))
        assert tables.bias_correction2.values[step - 1] == F32(1 - beta2**t), step
    radam = _radam._tables(beta1, beta2)
    for step in (1, 5, 6, 7, 100, 19606):
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / (1 - beta2**step)
        assert bool(radam.rectified.values[step - 1]) == (rho_t > 5.0), step
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            assert radam.rectification.values[step - 1] == F32(rect), step
    assert radam.rectification.complete and radam.rectification.values[-1] == 1.0


# ------------------------------------------------------------------------ state_dict round trip


@pytest.mark.live_torch
@pytest.mark.parametrize(
    "kind,options",
    [
        ("rmsprop", dict(lr=0.01, momentum=0.9, centered=True)),
        ("adagrad", dict(lr=0.1, initial_accumulator_value=0.1)),
        ("adadelta", dict()),
        ("adamax", dict()),
        ("nadam", dict(lr=0.01)),
        ("radam", dict(lr=0.01)),
    ],
)
def test_state_dict_round_trip_with_pytorch(kind, options, exact_sqrt):
    """PyTorch's state after 3 steps (one parameter never stepped) loaded by name, exported back, and both continued."""
    import torch

    rng = np.random.default_rng(11)
    shapes = {"fc.weight": (3, 4), "fc.bias": (3,), "bn.weight": (2,)}
    torch_order = ["fc.weight", "fc.bias", "bn.weight"]  # model.parameters() order
    values = {name: rng.standard_normal(shape).astype(F32) for name, shape in shapes.items()}
    grads = [
        {
            name: None if (t < 3 and name == "bn.weight") else rng.standard_normal(s).astype(F32)
            for name, s in shapes.items()
        }
        for t in range(6)
    ]
    params = {name: torch.nn.Parameter(torch.from_numpy(values[name].copy())) for name in torch_order}
    optimizer = getattr(torch.optim, TORCH_NAMES[kind])([params[n] for n in torch_order], **options)

    def torch_step(t):
        for name in torch_order:
            g = grads[t][name]
            params[name].grad = None if g is None else torch.from_numpy(g.copy())
        optimizer.step()

    for t in range(3):
        torch_step(t)
    torch_state = optimizer.state_dict()["state"]
    # Adagrad makes every parameter's state in its constructor; the others at its first step.
    assert (2 in torch_state) == (kind == "adagrad")

    def nest(flat):
        return {"fc": {"weight": flat["fc.weight"], "bias": flat["fc.bias"]}, "bn": {"weight": flat["bn.weight"]}}

    jax_params = nest({n: jnp.asarray(p.detach().numpy().copy()) for n, p in params.items()})
    tx = getattr(optim, kind)(**options)
    state = optim.load_state_dict(tx.init(jax_params), torch_state, order=torch_order)
    exported = optim.state_dict(state, order=torch_order)
    assert exported.keys() == torch_state.keys()
    for index, entry in torch_state.items():
        assert list(exported[index]) == list(entry)  # PyTorch's names, in its order
        for key, value in entry.items():
            np.testing.assert_array_equal(exported[index][key], value.numpy())
            assert exported[index][key].dtype == value.numpy().dtype
    for t in range(3, 6):
        torch_step(t)
        jax_params, state = optim.step(tx, nest(grads[t]), state, jax_params)
    final = optim.state_dict(state, order=torch_order)
    for index, entry in optimizer.state_dict()["state"].items():
        for key, value in entry.items():
            _assert_pytorchs(final[index][key], value.numpy(), f"{index} {key}")
    for name in torch_order:
        module, leaf = name.split(".")
        _assert_pytorchs(np.asarray(jax_params[module][leaf]), params[name].detach().numpy(), name)


def test_adagrad_state_exists_from_the_start_and_loading_needs_every_parameter():
    tx = optim.adagrad(initial_accumulator_value=0.25)
    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    state = tx.init(params)
    exported = optim.state_dict(state)
    assert list(exported) == [0, 1] and list(exported[0]) == ["step", "sum"]
    assert exported[0]["step"] == 0 and exported[0]["step"].dtype == np.float32
    np.testing.assert_array_equal(exported[1]["sum"], np.full(3, 0.25, F32))
    with pytest.raises(ValueError, match=r"Adagrad holds state for every parameter.*lacks parameters \[1\]"):
        optim.load_state_dict(state, {0: exported[0]})
    frozen = optim.freeze(tx, "b")
    assert list(optim.state_dict(frozen.init(params))) == [0]  # a frozen leaf holds no state here


def test_nadam_state_starts_with_mu_product_one_and_loads_missing_parameters_as_new():
    tx = optim.nadam()
    params = [jnp.ones(2), jnp.ones(3)]
    state = tx.init(params)
    assert optim.state_dict(state) == {}  # no state before a parameter's first step, as PyTorch
    _, stepped = optim.step(tx, [jnp.ones(2), None], state, params)
    entry = optim.state_dict(stepped)[0]
    assert list(entry) == ["step", "mu_product", "exp_avg", "exp_avg_sq"]
    assert entry["mu_product"].dtype == np.float32 and entry["mu_product"] == F32(
        F32(1.0) * F32(0.9 * (1 - 0.5 * 0.96**0.004))
    )
    loaded = optim.load_state_dict(state, {0: entry})
    assert float(loaded.mu_product[1]) == 1.0 and float(loaded.step[1]) == 0.0


# ------------------------------------------------------------------------ contracts


@pytest.mark.parametrize("kind", ["rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam"])
def test_update_is_the_difference_of_the_exact_step_and_none_skips(kind, jit):
    tx = getattr(optim, kind)(**({"lr": 0.1, "weight_decay": 0.1}))
    params = {"a": jnp.linspace(-1.0, 1.0, 5), "b": jnp.full((2, 2), 3.0)}
    grads = {"a": jnp.arange(5.0), "b": None}
    state = tx.init(params)
    updates, state_u = maybe_jit(tx.update, jit)(grads, state, params)
    new, state_s = maybe_jit(tx.step, jit)(grads, state, params)
    np.testing.assert_array_equal(updates["b"], np.zeros((2, 2)))  # None: zero update, not None
    np.testing.assert_array_equal(new["b"], params["b"])
    np.testing.assert_array_equal(np.asarray(optax.apply_updates(params, updates)["a"]), np.asarray(new["a"]))
    jax.tree.map(np.testing.assert_array_equal, state_u, state_s)
    assert [float(s) for s in jax.tree.leaves(state_s.step)] == [1.0, 0.0]  # per-parameter step counts
    assert isinstance(tx, optax.GradientTransformation) and isinstance(tx, optim.TorchOptimizer)


def test_inside_optax_chain_and_freeze(jit):
    params = {"w": jnp.ones(3), "b": jnp.zeros(2)}
    grads = {"w": jnp.full(3, 10.0), "b": jnp.ones(2)}
    chained = optax.chain(optax.clip_by_global_norm(1.0), optim.rmsprop(lr=0.01))
    _, state = maybe_jit(chained.update, jit)(grads, chained.init(params), params)
    assert optim.state_dict(state)[1]["step"] == 1.0  # found inside the chain (leaf order: b, w)
    frozen = optim.freeze(optim.radam(lr=0.01), "b")
    new, state = maybe_jit(lambda g, s, p: optim.step(frozen, g, s, p), jit)(grads, frozen.init(params), params)
    np.testing.assert_array_equal(new["b"], params["b"])
    assert sorted(optim.state_dict(state)) == [1]


@pytest.mark.parametrize(
    "build,error,message",
    [
        (lambda: optim.rmsprop(lr="0.1"), TypeError, "lr must be a float or an optax schedule"),
        (lambda: optim.rmsprop(alpha=None), TypeError, "alpha must be a real number"),
        (lambda: optim.adagrad(lr_decay="0"), TypeError, "lr_decay must be a real number"),
        (lambda: optim.adadelta(rho=[0.9]), TypeError, "rho must be a real number"),
        (lambda: optim.adamax(betas=0.9), TypeError, "betas must be a pair"),
        (lambda: optim.nadam(betas=(0.9, "0.999")), TypeError, r"betas\[1\] must be a real number"),
        (lambda: optim.nadam(momentum_decay=True), TypeError, "momentum_decay must be a real number"),
        (lambda: optim.radam(betas=(0.9, 0.999, 0.5)), TypeError, "betas must be a pair"),
        (lambda: optim.radam(eps=float("nan")), ValueError, "Invalid epsilon value: nan"),
    ],
)
def test_bad_argument_types_name_the_argument(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_parameters_must_be_floating_point_and_grads_shaped_like_them():
    for kind in ("rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam"):
        tx = getattr(optim, kind)()
        with pytest.raises(TypeError, match="floating-point parameters"):
            tx.init({"a": jnp.ones(2, jnp.int32)})
        params = {"a": jnp.ones(2)}
        with pytest.raises(ValueError, match=r"gradient 0 \(tree leaf order\) has shape \(3,\)"):
            tx.update({"a": jnp.ones(3)}, tx.init(params), params)
