"""A tensor learning rate (PyTorch's ``lr=torch.tensor(...)``) for torchsem's nine optimizers.

Each case runs 20 steps (some gradients None) with the learning rate a 1-element array on the
torchsem side and the same tensor on PyTorch's (``foreach=False``, the CPU default path) and
compares every parameter after every step: live when torch is importable, else against
``tests/data/optim_tensor_lr.json`` (PyTorch's parameters as float32 bits in base64; re-record
with ``.venv/bin/python tests/test_optim_tensor_lr.py --record``).

Twice: against PyTorch as it is, within float32 tolerance where a square root is involved
(PyTorch's CPU sqrt goes through MKL VML and is one ulp off for about 0.7% of float32 inputs;
XLA's is correctly rounded), bit for bit for SGD; and bit for bit against PyTorch with its
``Tensor.sqrt``/``sqrt_`` made correctly rounded (as tests/test_optim_more.py does), which
isolates the learning-rate arithmetic. The second recording is stored as the elements where it
differs from the first. Error cases compare PyTorch's messages the same way.
"""

from __future__ import annotations

import base64
import contextlib
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from conftest import LIVE_TORCH, maybe_jit
from torchsem import optim
from torchsem.optim import _schedule

DATA = pathlib.Path(__file__).parent / "data" / "optim_tensor_lr.json"
SHAPES = ((3, 4), (5,), ())
STEPS = 20
LR = 0.0123  # not a float32 number: float32 and float64 arithmetic round it differently

_TORCH_CLASS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
}

# (optimizer, options shared by both sides)
_OPTIONS = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9, "weight_decay": 0.1, "nesterov": True}),
    ("sgd", {"momentum": 0.9, "dampening": 0.1, "maximize": True}),
    ("adam", {}),
    ("adam", {"weight_decay": 0.1, "amsgrad": True}),
    ("adam", {"maximize": True}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.41, "amsgrad": True, "maximize": True}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    ("rmsprop", {"centered": True, "maximize": True}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.05, "weight_decay": 0.1}),
    ("adagrad", {"lr_decay": 0.01, "initial_accumulator_value": 0.1, "maximize": True}),
    ("adadelta", {}),
    ("adadelta", {"weight_decay": 0.1, "maximize": True}),
    ("adamax", {}),
    ("adamax", {"weight_decay": 0.1, "maximize": True}),
    ("nadam", {}),
    ("nadam", {"weight_decay": 0.1}),
    ("nadam", {"weight_decay": 0.41, "decoupled_weight_decay": True, "maximize": True}),
    ("radam", {}),
    ("radam", {"weight_decay": 0.1}),
    ("radam", {"weight_decay": 0.41, "decoupled_weight_decay": True, "maximize": True}),
]

# (name, numpy dtype, shape, value): how the learning rate is given
_LR_KINDS = {
    "f32": ("float32", (), LR),
    "f32[1,1]": ("float32", (1, 1), LR),
    "f64[1]": ("float64", (1,), LR),
    "i64": ("int64", (), 1),
}


def _case_id(kind: str, options: dict, lr_kind: str) -> str:
    text = ",".join(f"{k}={v}" for k, v in sorted(options.items()))
    return f"{kind}({text})/{lr_kind}"


def _cases() -> list[tuple[str, dict, str]]:
    cases = [(kind, options, "f32") for kind, options in _OPTIONS]
    # The other array forms on one configuration each of the optimizers whose arithmetic they change.
    for kind, options in [_OPTIONS[1], _OPTIONS[4], _OPTIONS[7], _OPTIONS[12], _OPTIONS[20], _OPTIONS[23]]:
        cases.append((kind, options, "f32[1,1]"))
        cases.append((kind, options, "f64[1]"))
    for kind, options in [_OPTIONS[0], _OPTIONS[7], _OPTIONS[12], _OPTIONS[17], _OPTIONS[20]]:
        cases.append((kind, options, "i64"))
    return cases


CASES = _cases()


def _inputs(seed: int, lr_kind: str) -> tuple[list[np.ndarray], list[list[np.ndarray | None]]]:
    """Initial parameters and per-step gradients (None where the parameter has no gradient that step).

    A float64 lr goes without the 0-d parameter, which torchsem refuses with it (see
    test_float64_tensor_lr_with_a_scalar_parameter_is_refused).
    """
    shapes = SHAPES[:2] if lr_kind.startswith("f64") else SHAPES
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    grads = []
    for _ in range(STEPS):
        present = rng.random(len(shapes)) > 0.2
        grads.append(
            [rng.standard_normal(shape).astype(np.float32) if keep else None for shape, keep in zip(shapes, present)]
        )
    return params, grads


def _lr_array(lr_kind: str) -> np.ndarray:
    dtype, shape, value = _LR_KINDS[lr_kind]
    return np.full(shape, value, dtype=dtype)


@contextlib.contextmanager
def _correctly_rounded_sqrt():
    """PyTorch with ``Tensor.sqrt``/``sqrt_`` correctly rounded (float64 sqrt rounded once), nothing else changed."""
    import torch

    original = torch.Tensor.sqrt, torch.Tensor.sqrt_

    def sqrt(self):
        values = self.detach().numpy()
        return torch.from_numpy(np.asarray(np.sqrt(values.astype(np.float64)), values.dtype))

    def sqrt_(self):
        with torch.no_grad():
            self.copy_(sqrt(self))
        return self

    torch.Tensor.sqrt, torch.Tensor.sqrt_ = sqrt, sqrt_  # type: ignore[method-assign]
    try:
        values = torch.linspace(0.1, 10.0, 4096)
        assert np.array_equal(values.sqrt().numpy(), np.sqrt(values.numpy())), "the patch is not in effect"
        yield
    finally:
        torch.Tensor.sqrt, torch.Tensor.sqrt_ = original  # type: ignore[method-assign]


def _torch_params(kind: str, options: dict, lr_kind: str, seed: int, exact_sqrt: bool = False) -> np.ndarray:
    """PyTorch's parameters after every step, flattened: float32 of shape (STEPS, total size)."""
    if exact_sqrt:
        with _correctly_rounded_sqrt():
            return _torch_params(kind, options, lr_kind, seed)
    import torch

    params0, grads = _inputs(seed, lr_kind)
    params = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params0]
    lr = torch.from_numpy(_lr_array(lr_kind))
    optimizer = getattr(torch.optim, _TORCH_CLASS[kind])(params, lr=lr, foreach=False, **options)
    history = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else torch.from_numpy(g.copy())
        optimizer.step()
        history.append(np.concatenate([p.detach().numpy().reshape(-1) for p in params]))
    return np.stack(history)


def _torchsem_params(
    kind: str, options: dict, lr: object, seed: int, use_jit: bool, lr_kind: str = "f32"
) -> np.ndarray:
    params0, grads = _inputs(seed, lr_kind)
    tx = getattr(optim, kind)(lr=lr, **options)
    params = [jnp.asarray(p) for p in params0]
    state = tx.init(params)
    one = maybe_jit(lambda params, state, g: optim.step(tx, g, state, params), use_jit)
    history = []
    for step_grads in grads:
        params, state = one(params, state, [None if g is None else jnp.asarray(g) for g in step_grads])
        history.append(np.concatenate([np.asarray(p).reshape(-1) for p in params]))
    return np.stack(history)


def _encode(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode()


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.float32).reshape(STEPS, -1)


def _error(build) -> list[str]:
    try:
        build()
    except Exception as error:
        return [type(error).__name__, str(error)]
    return ["no error", ""]


# (name, numpy array lr): PyTorch's checks on the tensor itself
_ERRORS = {
    "two elements": np.array([0.1, 0.2], np.float32),
    "no element": np.zeros((0,), np.float32),
    "negative": np.array(-0.1, np.float32),
    "negative [1]": np.array([-0.1], np.float32),
    "negative tiny [1,1]": np.array([[-1e-5]], np.float32),
    "negative float64": np.array(-2.0, np.float64),
    "negative int32": np.array([-3], np.int32),
    "nan": np.array(np.nan, np.float32),
    "-inf float64": np.array(-np.inf, np.float64),
}


def _torch_error(kind: str, lr: np.ndarray) -> list[str]:
    import torch

    params = [torch.nn.Parameter(torch.zeros(2))]
    return _error(lambda: getattr(torch.optim, _TORCH_CLASS[kind])(params, lr=torch.from_numpy(lr.copy())))


def _record() -> dict:
    recording: dict = {"params": {}, "exact_sqrt": {}, "errors": {}}
    for seed, (kind, options, lr_kind) in enumerate(CASES):
        name = _case_id(kind, options, lr_kind)
        plain = _torch_params(kind, options, lr_kind, seed)
        exact = _torch_params(kind, options, lr_kind, seed, exact_sqrt=True)
        recording["params"][name] = _encode(plain)
        where = np.flatnonzero(plain != exact)
        recording["exact_sqrt"][name] = [where.tolist(), _encode(exact.reshape(-1)[where])]
    for kind in _TORCH_CLASS:
        for name, lr in _ERRORS.items():
            recording["errors"][f"{kind}/{name}"] = _torch_error(kind, lr)
    return recording


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(DATA.read_text())


def _recorded_params(recorded: dict, name: str, exact_sqrt: bool) -> np.ndarray:
    params = _decode(recorded["params"][name]).copy()
    if exact_sqrt:
        where, values = recorded["exact_sqrt"][name]
        params.reshape(-1)[np.asarray(where, np.int64)] = np.frombuffer(base64.b64decode(values), np.float32)
    return params


def _expected_params(
    recorded: dict, kind: str, options: dict, lr_kind: str, seed: int, exact_sqrt: bool = False
) -> np.ndarray:
    if LIVE_TORCH:
        return _torch_params(kind, options, lr_kind, seed, exact_sqrt)
    return _recorded_params(recorded, _case_id(kind, options, lr_kind), exact_sqrt)


def _torchsem_case(kind: str, options: dict, lr_kind: str, seed: int, use_jit: bool) -> np.ndarray:
    lr = _lr_array(lr_kind)
    # The float32 0-d lr as a JAX array, the other forms as numpy arrays (JAX has no float64 without x64).
    return _torchsem_params(kind, options, jnp.asarray(lr) if lr_kind == "f32" else lr, seed, use_jit, lr_kind)


_CASE_PARAMS = pytest.mark.parametrize(
    "seed,kind,options,lr_kind",
    [(seed, *case) for seed, case in enumerate(CASES)],
    ids=[_case_id(*case) for case in CASES],
)


@_CASE_PARAMS
def test_tensor_lr_steps_match_pytorch(recorded, seed, kind, options, lr_kind, jit):
    """Against PyTorch as it is: bit for bit for SGD, within float32 tolerance where PyTorch's sqrt rounds."""
    expected = _expected_params(recorded, kind, options, lr_kind, seed)
    actual = _torchsem_case(kind, options, lr_kind, seed, jit)
    for step in range(STEPS):
        message = f"step {step + 1} differs from PyTorch"
        if kind == "sgd":
            np.testing.assert_array_equal(actual[step], expected[step], err_msg=message)
        else:
            # PyTorch's CPU sqrt (MKL VML) is one ulp off for ~0.7% of float32 inputs; XLA's is correctly rounded.
            np.testing.assert_allclose(actual[step], expected[step], rtol=1e-5, atol=1e-6, err_msg=message)


@_CASE_PARAMS
def test_tensor_lr_steps_are_pytorchs_bit_for_bit_with_a_correctly_rounded_sqrt(
    recorded, seed, kind, options, lr_kind, jit
):
    expected = _expected_params(recorded, kind, options, lr_kind, seed, exact_sqrt=True)
    actual = _torchsem_case(kind, options, lr_kind, seed, jit)
    for step in range(STEPS):
        np.testing.assert_array_equal(actual[step], expected[step], err_msg=f"step {step + 1} differs from PyTorch")


@pytest.mark.live_torch
def test_recording_matches_live_pytorch(recorded):
    """The shipped recording is what PyTorch gives now (within PyTorch's own CPU last-bit spread)."""
    for seed, (kind, options, lr_kind) in enumerate(CASES):
        name = _case_id(kind, options, lr_kind)
        for exact_sqrt in (False, True):
            live = _torch_params(kind, options, lr_kind, seed, exact_sqrt)
            stored = _recorded_params(recorded, name, exact_sqrt)
            np.testing.assert_allclose(stored, live, rtol=1e-5, atol=1e-6, err_msg=name)
    for kind in _TORCH_CLASS:
        for name, lr in _ERRORS.items():
            assert recorded["errors"][f"{kind}/{name}"] == _torch_error(kind, lr)


@pytest.mark.parametrize("kind", list(_TORCH_CLASS))
@pytest.mark.parametrize("name", list(_ERRORS))
def test_tensor_lr_errors_are_pytorchs(recorded, kind, name):
    lr = _ERRORS[name]
    expected = _torch_error(kind, lr) if LIVE_TORCH else recorded["errors"][f"{kind}/{name}"]
    assert _error(lambda: getattr(optim, kind)(lr=lr)) == expected
    if jnp.asarray(lr).dtype == lr.dtype:  # JAX keeps float32 and int32 (not float64 without x64)
        assert _error(lambda: getattr(optim, kind)(lr=jnp.asarray(lr))) == expected


@pytest.mark.parametrize("kind", ["adamw", "adagrad", "nadam", "radam"])
def test_float32_tensor_lr_is_not_the_float_path(kind):
    """A float32 tensor lr rounds differently from the same float lr, as in PyTorch (the cases are not vacuous)."""
    # 0.41: one of the few weight decays where float32 and float64 ``1 - lr * weight_decay`` differ for this lr.
    options = {"lr_decay": 0.05} if kind == "adagrad" else {"weight_decay": 0.41}
    if kind in ("nadam", "radam"):
        options["decoupled_weight_decay"] = True
    tensor = _torchsem_params(kind, options, np.full((), LR, np.float32), 0, False)
    number = _torchsem_params(kind, options, float(np.float32(LR)), 0, False)
    assert np.any(tensor != number)


def test_float32_tensor_lr_step_size_is_a_float32_division():
    """Adam's/Adamax's ``lr / (1 - beta1**t)``: float32 for a float32 tensor lr (29 of steps 1..199 differ)."""
    steps = jnp.arange(1, 200, dtype=jnp.float32)
    lr = float(np.float32(LR))
    tensor_lr, float_lr = _schedule.BiasCorrections(lr, 0.9, 0.999, True), _schedule.BiasCorrections(lr, 0.9, 0.999)
    tensor = np.asarray(jax.vmap(lambda t: tensor_lr.neg_step_size(t, jnp.float32(lr)))(steps))
    number = np.asarray(jax.vmap(lambda t: float_lr.neg_step_size(t, jnp.float32(lr)))(steps))
    t = np.arange(1, 200, dtype=np.float64)
    np.testing.assert_array_equal(tensor, -(np.float32(lr) / (1 - 0.9**t).astype(np.float32)))
    assert np.count_nonzero(tensor != number) == 29


def test_float64_tensor_lr_is_the_float_path():
    """A float64 tensor lr computes its scalars in float64, as a Python float does."""
    tensor = _torchsem_params("adamw", {"weight_decay": 0.2}, np.array(LR), 0, False, "f64")
    np.testing.assert_array_equal(tensor, _torchsem_params("adamw", {"weight_decay": 0.2}, LR, 0, False, "f64"))


@pytest.mark.parametrize(
    "lr",
    [np.array(0.1, np.float16), np.array(True), np.array(1, np.uint8), np.array(0.1, np.complex64)],
    ids=["float16", "bool", "uint8", "complex64"],
)
def test_unsupported_array_dtypes_are_refused(lr):
    with pytest.raises(TypeError, match="float32, float64 or signed integer"):
        optim.adam(lr=lr)


def test_traced_array_lr_is_refused():
    """PyTorch checks the value when the optimizer is made; a traced array has none."""

    @jax.jit
    def build(lr):
        optim.sgd(lr=lr)
        return lr

    with pytest.raises(TypeError, match="traced array"):
        build(jnp.float32(0.1))


def test_float64_tensor_lr_with_a_scalar_parameter_is_refused():
    """PyTorch promotes a 0-d float32 parameter times a float64 0-d lr to float64."""
    tx = optim.radam(lr=np.array(1e-3))
    with pytest.raises(NotImplementedError, match="0-d parameter"):
        tx.init([jnp.zeros(())])
    optim.radam(lr=np.array(1e-3, np.float32)).init([jnp.zeros(())])


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python tests/test_optim_tensor_lr.py --record")
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(_record(), indent=0, sort_keys=True) + "\n")
    print(f"wrote {DATA} ({DATA.stat().st_size} bytes)")
