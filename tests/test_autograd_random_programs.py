"""Random small programs, run op for op in PyTorch and through torchsem.autograd.grad.

Each program draws a few inputs (some requiring grad, one integer), then a random sequence of
operations from a small vocabulary (arithmetic, transcendental functions, ``detach``,
``.long().float()``, comparisons, ``* 0.0``, ``floor``, ``no_grad``, ``where``) whose operands are
earlier values, and a loss that sums a random subset of the values. PyTorch's ``.grad is None``
pattern must equal torchsem's None pattern, the values must agree, and PyTorch's RuntimeError
must be raised exactly when PyTorch raises it -- eagerly and under jax.jit, and with the whole
JAX program inside a nested jit, jax.checkpoint, a one-step lax.scan or a lax.cond (the static
analysis has to see through each; the PyTorch program is the plain eager one).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torchsem.compare.scenarios.autograd import NO_ERROR, JaxOps, TorchOps

RTOL, ATOL = 1e-5, 1e-6

# name: (number of operands, function of (ops, *operands)); every result stays within [-4, 4]-ish
# (tanh-bounded before exp) so that float32 rounding differences stay at the ulp level.
_UNARY_AND_BINARY = {
    "add": (2, lambda ops, a, b: a + b),
    "mul": (2, lambda ops, a, b: ops.tanh(a) * b),
    "sub": (2, lambda ops, a, b: a - b),
    "sin": (1, lambda ops, a: ops.sin(a)),
    "tanh": (1, lambda ops, a: ops.tanh(a)),
    "exp_tanh": (1, lambda ops, a: ops.exp(ops.tanh(a))),
    "relu": (1, lambda ops, a: ops.relu(a)),
    "detach": (1, lambda ops, a: ops.detach(a)),
    "long_float": (1, lambda ops, a: ops.long_float(a * 3.0)),
    "gt_float": (1, lambda ops, a: ops.gt_float(a)),
    "times_zero": (1, lambda ops, a: a * 0.0),
    "floor": (1, lambda ops, a: ops.floor(a * 2.0)),
    "no_grad_scale": (1, lambda ops, a: ops.no_grad(lambda t: t * 2.0)(a)),
    "where": (3, lambda ops, c, a, b: ops.where_positive(c, a, b)),
}
_OP_NAMES = sorted(_UNARY_AND_BINARY)
_SHAPE = (3,)


@st.composite
def programs(draw):
    n_float = draw(st.integers(1, 4))
    requires_grad = draw(st.lists(st.booleans(), min_size=n_float, max_size=n_float))
    n_values = n_float + 1  # plus the integer input, used through to_float
    steps = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(_OP_NAMES))
        arity = _UNARY_AND_BINARY[name][0]
        operands = [draw(st.integers(0, n_values - 1)) for _ in range(arity)]
        steps.append((name, operands))
        n_values += 1
    summed = draw(st.lists(st.integers(0, n_values - 1), min_size=1, max_size=4, unique=True))
    seed = draw(st.integers(0, 2**16))
    return n_float, requires_grad, steps, summed, seed


def _inputs(n_float: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    made = {f"x{i}": rng.uniform(-2, 2, _SHAPE).astype(np.float32) for i in range(n_float)}
    made["n"] = rng.integers(-3, 4, _SHAPE).astype(np.int64)
    return made


def _run(ops, tensors: dict, n_float: int, steps, summed):
    values = [tensors[f"x{i}"] for i in range(n_float)] + [ops.to_float(tensors["n"])]
    for name, operands in steps:
        values.append(_UNARY_AND_BINARY[name][1](ops, *(values[i] for i in operands)))
    total = values[summed[0]].sum()
    for i in summed[1:]:
        total = total + values[i].sum()
    return total


def _torch_side(inputs, n_float, requires_grad, steps, summed):
    import torch

    tensors = {name: torch.tensor(value) for name, value in inputs.items()}
    for i, flag in enumerate(requires_grad):
        tensors[f"x{i}"].requires_grad_(flag)
    loss = _run(TorchOps(), tensors, n_float, steps, summed)
    try:
        loss.backward()
        error = NO_ERROR
    except RuntimeError as err:
        error = str(err)
    return (
        float(loss.detach()),
        error,
        {name: (None if t.grad is None else t.grad.numpy()) for name, t in tensors.items()},
    )


WRAPPERS = ("none", "jit", "checkpoint", "scan", "cond")
"""How the JAX side wraps the whole program: the static analysis must see through each."""


def _wrapped(program, wrapper: str):
    import jax

    if wrapper == "none":
        return program
    if wrapper == "jit":
        return jax.jit(program)
    if wrapper == "checkpoint":
        return jax.checkpoint(program)
    if wrapper == "scan":
        # One step whose output (not carry) is the loss: the loss reads the inputs through the body.
        return lambda tensors: jax.lax.scan(lambda carry, _: (carry, program(carry)), tensors, None, length=1)[1][0]
    if wrapper == "cond":
        # The same program in both branches, chosen by a runtime value: the union is the program itself.
        return lambda tensors: jax.lax.cond(tensors["n"][0] > 0, program, program, tensors)
    raise ValueError(wrapper)


def _jax_side(inputs, n_float, requires_grad, steps, summed, use_jit, wrapper="none"):
    import jax
    import jax.numpy as jnp

    from torchsem import autograd

    ops = JaxOps()
    args = {name: jnp.asarray(value) for name, value in inputs.items()}
    mask = {f"x{i}": flag for i, flag in enumerate(requires_grad)}
    mask["n"] = False
    loss_fn = _wrapped(lambda tensors: _run(ops, tensors, n_float, steps, summed), wrapper)

    fun = autograd.value_and_grad(loss_fn, requires_grad=mask)
    try:
        loss, grads = (jax.jit(fun) if use_jit else fun)(args)
        return float(loss), NO_ERROR, grads
    except RuntimeError as err:
        return float(loss_fn(args)), str(err), {name: None for name in inputs}


@pytest.mark.live_torch
@settings(max_examples=40)
@given(program=programs(), use_jit=st.booleans(), wrapper=st.sampled_from(WRAPPERS))
def test_none_pattern_and_values_match_pytorch(program, use_jit, wrapper):
    n_float, requires_grad, steps, summed, seed = program
    inputs = _inputs(n_float, seed)
    t_loss, t_error, t_grads = _torch_side(inputs, n_float, requires_grad, steps, summed)
    j_loss, j_error, j_grads = _jax_side(inputs, n_float, requires_grad, steps, summed, use_jit, wrapper)
    context = f"wrapper={wrapper} steps={steps} summed={summed} requires_grad={requires_grad}"
    assert j_error == t_error, context
    np.testing.assert_allclose(j_loss, t_loss, rtol=RTOL, atol=ATOL, err_msg=context)
    assert {k: v is None for k, v in j_grads.items()} == {k: v is None for k, v in t_grads.items()}, context
    for name, expected in t_grads.items():
        if expected is not None:
            np.testing.assert_allclose(
                np.asarray(j_grads[name]), expected, rtol=RTOL, atol=ATOL, err_msg=f"{name}: {context}"
            )


@pytest.mark.live_torch
@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize(
    "case",
    [
        # (steps, summed, requires_grad). Value indices: x0..x{k-1}, then the int input, then each step's result.
        ([("detach", [0])], [2], [True]),  # only a detached value: RuntimeError
        ([("times_zero", [0])], [2], [True]),  # zeros, not None
        ([("no_grad_scale", [0])], [2, 1], [True]),  # int input + a no_grad value: RuntimeError
        ([("long_float", [0]), ("mul", [3, 1])], [4], [True, True]),  # x0 cut by the cast; x1 through mul
        ([("where", [0, 1, 1])], [3], [True, True]),  # condition None, branch values get gradients
        ([], [1], [True, True, False]),  # x0 unused, x2 frozen
    ],
    ids=["detach-only", "times-zero", "no-grad", "cast", "where", "unused"],
)
def test_handpicked_programs_match_pytorch(case, use_jit):
    steps, summed, requires_grad = case
    n_float = len(requires_grad)
    inputs = _inputs(n_float, 7)
    _t_loss, t_error, t_grads = _torch_side(inputs, n_float, requires_grad, steps, summed)
    _j_loss, j_error, j_grads = _jax_side(inputs, n_float, requires_grad, steps, summed, use_jit)
    assert j_error == t_error
    assert {k: v is None for k, v in j_grads.items()} == {k: v is None for k, v in t_grads.items()}
    for name, expected in t_grads.items():
        if expected is not None:
            np.testing.assert_allclose(np.asarray(j_grads[name]), expected, rtol=RTOL, atol=ATOL)
