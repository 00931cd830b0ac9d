"""``torchsem.port.torch_ops`` and ``torchsem.nn.functional`` against live PyTorch.

The functions the port's generated code calls for ``torch.<name>(x, ...)`` and ``x.<name>(...)``:
a table of calls run on both sides (values, shapes, dtypes), hypothesis properties over random
shapes and dimensions for the shape functions and reductions, and PyTorch's errors. Float32
values at rtol 1e-5 / atol 1e-6; shape functions bit for bit.
"""

from __future__ import annotations

import pathlib
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from conftest import LIVE_TORCH, LIVE_TORCH_REASON
from torchsem.nn import functional as F
from torchsem.port import torch_ops as T

pytestmark = [pytest.mark.live_torch, pytest.mark.skipif(not LIVE_TORCH, reason=LIVE_TORCH_REASON)]

RTOL, ATOL = 1e-5, 1e-6


def _x(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _compare(ours, theirs) -> None:
    import torch

    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _compare(a, b)
        return
    if isinstance(theirs, torch.Tensor):
        expected = theirs.detach().numpy()
        got = np.asarray(ours)
        assert got.shape == expected.shape
        if expected.dtype == np.int64:
            assert got.dtype.kind == "i"
            np.testing.assert_array_equal(got, expected)
        else:
            assert got.dtype == expected.dtype
            np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
        return
    assert ours == theirs


# (name, shape, method or torch function name, args, kwargs): T.name(x, *args, **kwargs) is torch's.
CALLS = [
    ("flatten", (2, 3, 4), (1,), {}),
    ("flatten", (2, 3, 4, 5), (1, 2), {}),
    ("flatten", (), (), {}),
    ("reshape", (2, 3, 4), (6, -1), {}),
    ("reshape", (2, 3, 4), ((4, 6),), {}),
    ("view", (2, 3, 4), (2, 12), {}),
    ("size", (2, 3, 4), (), {}),
    ("size", (2, 3, 4), (-1,), {}),
    ("dim", (2, 3, 4), (), {}),
    ("numel", (2, 3, 4), (), {}),
    ("transpose", (2, 3, 4), (0, -1), {}),
    ("t", (3, 4), (), {}),
    ("permute", (2, 3, 4), (2, 0, 1), {}),
    ("permute", (2, 3, 4), ((1, 2, 0),), {}),
    ("unsqueeze", (2, 3), (-1,), {}),
    ("unsqueeze", (2, 3), (0,), {}),
    ("squeeze", (1, 3, 1), (), {}),
    ("squeeze", (1, 3, 1), (0,), {}),
    ("squeeze", (1, 3, 1), (1,), {}),
    ("expand", (3, 1), (2, 3, -1, 4), {}),
    ("repeat", (2, 3), (2, 1, 2), {}),
    ("chunk", (7, 2), (3,), {}),
    ("chunk", (2, 5), (2,), {"dim": 1}),
    ("chunk", (3, 2), (5,), {}),
    ("mean", (2, 3, 4), (), {}),
    ("mean", (2, 3, 4), (1,), {"keepdim": True}),
    ("mean", (2, 3, 4), ((0, 2),), {}),
    ("sum", (2, 3, 4), (-1,), {}),
    ("var", (2, 3, 4), (1,), {}),
    ("var", (2, 3, 4), (1,), {"unbiased": False}),
    ("std", (2, 3, 4), (), {"correction": 0}),
    ("amax", (2, 3, 4), (-1,), {}),
    ("amin", (2, 3, 4), ((0, 1),), {"keepdim": True}),
    ("argmax", (2, 3, 4), (), {}),
    ("argmax", (2, 3, 4), (1,), {"keepdim": True}),
    ("max", (2, 3, 4), (), {}),
    ("max", (2, 3, 4), (1,), {}),
    ("min", (2, 3, 4), (-1,), {"keepdim": True}),
    ("clamp", (3, 4), (), {"min": -0.5, "max": 0.5}),
    ("clamp", (3, 4), (), {"min": 0.1}),
    ("softmax", (3, 4), (-1,), {}),
    ("log_softmax", (3, 4), (0,), {}),
    ("add", (3, 4), (2.0,), {"alpha": 3}),
    ("sub", (3, 4), (2.0,), {}),
    ("div", (3, 4), (0.3,), {"rounding_mode": "floor"}),
    ("div", (3, 4), (0.3,), {"rounding_mode": "trunc"}),
    ("pow", (3, 4), (2,), {}),
    ("exp", (3, 4), (), {}),
    ("abs", (3, 4), (), {}),
    ("neg", (3, 4), (), {}),
    ("relu", (3, 4), (), {}),
    ("sigmoid", (3, 4), (), {}),
    ("tanh", (3, 4), (), {}),
    ("contiguous", (3, 4), (), {}),
    ("detach", (3, 4), (), {}),
    ("clone", (3, 4), (), {}),
    ("float", (3, 4), (), {}),
]


@pytest.mark.parametrize(("name", "shape", "args", "kwargs"), CALLS, ids=lambda v: str(v).replace(" ", ""))
def test_method_matches_pytorch(name: str, shape, args, kwargs) -> None:
    """``T.name(x, ...)`` is ``x.name(...)``: values, shape, dtype."""
    import torch

    x = _x(shape)
    theirs = getattr(torch.from_numpy(x.copy()), name)(*args, **kwargs)
    ours = getattr(T, name)(jnp.asarray(x), *args, **kwargs)
    if name in ("max", "min") and args:
        theirs = tuple(theirs)
    _compare(ours, theirs)


def test_functions_of_several_tensors() -> None:
    import torch

    a, b, m = _x((2, 3, 4), 1), _x((2, 3, 4), 2), _x((2, 4, 5), 3)
    ta, tb, tm = (torch.from_numpy(v.copy()) for v in (a, b, m))
    ja, jb, jm = (jnp.asarray(v) for v in (a, b, m))
    _compare(T.cat([ja, jb], dim=-1), torch.cat([ta, tb], dim=-1))
    _compare(T.cat((ja, jb)), torch.cat((ta, tb)))
    _compare(T.stack([ja, jb], dim=1), torch.stack([ta, tb], dim=1))
    _compare(T.matmul(ja, jm), torch.matmul(ta, tm))
    _compare(T.bmm(ja, jm), torch.bmm(ta, tm))
    _compare(T.einsum("bij,bjk->bik", ja, jm), torch.einsum("bij,bjk->bik", ta, tm))
    _compare(T.masked_fill(ja, ja > 0, -1.0), ta.masked_fill(ta > 0, -1.0))
    _compare(T.expand_as(ja[:, :1], jb), ta[:, :1].expand_as(tb))
    _compare(T.view_as(ja, jm[:, :3, :4]), ta.view_as(tm[:, :3, :4]))
    _compare(T.type_as(ja > 0, jb), (ta > 0).type_as(tb))
    _compare(T.zeros_like(ja), torch.zeros_like(ta))
    _compare(T.ones_like(ja), torch.ones_like(ta))


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("relu", {}),
        ("relu6", {}),
        ("gelu", {}),
        ("gelu", {"approximate": "tanh"}),
        ("silu", {}),
        ("mish", {}),
        ("hardswish", {}),
        ("hardsigmoid", {}),
        ("hardtanh", {"min_val": -0.5, "max_val": 0.25}),
        ("leaky_relu", {"negative_slope": 0.2}),
        ("elu", {"alpha": 0.7}),
        ("softplus", {"beta": 2.0, "threshold": 1.0}),
        ("logsigmoid", {}),
        ("sigmoid", {}),
        ("tanh", {}),
        ("softmax", {"dim": 1}),
        ("log_softmax", {"dim": -1}),
        ("glu", {"dim": -1}),
    ],
)
def test_functional_matches_pytorch(name: str, kwargs) -> None:
    """``torchsem.nn.functional.name`` is ``torch.nn.functional.name``, values and gradients."""
    import jax
    import torch
    import torch.nn.functional as TF

    x = 3 * _x((4, 6), 4)
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    out = getattr(TF, name)(t, **kwargs)
    out.square().sum().backward()
    ours = getattr(F, name)(jnp.asarray(x), **kwargs)
    _compare(ours, out)
    grad = jax.grad(lambda v: jnp.sum(getattr(F, name)(v, **kwargs) ** 2))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(grad), t.grad.numpy(), rtol=RTOL, atol=ATOL)


def test_softmax_implicit_dim_warns_as_pytorch() -> None:
    import torch
    import torch.nn.functional as TF

    x = _x((2, 3, 4), 5)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        expected = TF.softmax(torch.from_numpy(x.copy()))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        got = F.softmax(jnp.asarray(x))
    _compare(got, expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda T, x: T.reshape(x, 5, -1), "shape '[5, -1]' is invalid for input of size 24"),
        (lambda T, x: T.reshape(x, -1, -1), "only one dimension can be inferred"),
        (lambda T, x: T.transpose(x, 0, 3), "Dimension out of range (expected to be in range of [-3, 2], but got 3)"),
        (lambda T, x: T.flatten(x, 2, 1), "flatten() has invalid args: start_dim cannot come after end_dim"),
        (lambda T, x: T.chunk(x, 0), "chunk expects `chunks` to be greater than 0, got: 0"),
        (lambda T, x: T.t(x), "t() expects a tensor with <= 2 dimensions, but self is 3D"),
    ],
)
def test_errors_are_pytorchs(call, message: str) -> None:
    """The same exception type and PyTorch's message, word for word."""
    import torch

    x = _x((2, 3, 4))
    torch_ops_like = type("torch_ops_like", (), {})
    for name in ("reshape", "transpose", "flatten", "chunk", "t"):
        setattr(torch_ops_like, name, staticmethod(getattr(torch.Tensor, name)))
    with pytest.raises((RuntimeError, IndexError)) as theirs:
        call(torch_ops_like, torch.from_numpy(x.copy()))
    with pytest.raises(type(theirs.value)) as ours:
        call(T, jnp.asarray(x))
    assert message in str(theirs.value)
    assert message in str(ours.value)


@st.composite
def _shape_and_dims(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    ndim = len(shape)
    dim = draw(st.integers(-ndim, ndim - 1))
    start = draw(st.integers(-ndim, ndim - 1))
    end = draw(st.integers(start % ndim, ndim - 1))
    order = draw(st.permutations(range(ndim)))
    chunks = draw(st.integers(1, 5))
    keepdim = draw(st.booleans())
    return shape, dim, start, end, tuple(order), chunks, keepdim


@given(_shape_and_dims())
def test_shape_functions_and_reductions_property(case) -> None:
    """Random shapes and dims: flatten, permute, transpose, unsqueeze, chunk, cat, mean, sum, amax, argmax."""
    import torch

    shape, dim, start, end, order, chunks, keepdim = case
    x = _x(shape, 7)
    t, j = torch.from_numpy(x.copy()), jnp.asarray(x)
    _compare(T.flatten(j, start, end), torch.flatten(t, start, end))
    _compare(T.permute(j, *order), t.permute(*order))
    _compare(T.transpose(j, dim, 0), t.transpose(dim, 0))
    _compare(T.unsqueeze(j, dim), t.unsqueeze(dim))
    _compare(T.chunk(j, chunks, dim), t.chunk(chunks, dim))
    _compare(T.cat([j, j], dim), torch.cat([t, t], dim))
    _compare(T.mean(j, dim, keepdim), t.mean(dim, keepdim))
    _compare(T.sum(j, dim, keepdim), t.sum(dim, keepdim))
    _compare(T.amax(j, dim, keepdim), t.amax(dim, keepdim))
    _compare(T.argmax(j, dim, keepdim), t.argmax(dim, keepdim))
