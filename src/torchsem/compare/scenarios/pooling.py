"""AvgPool1d parity grid: every kernel/stride/padding/ceil_mode/count_include_pad, forward and gradient.

Family ``avgpool1d``. Each case pools a channels-first input and backpropagates a random
cotangent, so both the window sums and the divisors (the part PyTorch's ceil mode and
``count_include_pad`` change) are checked. Error cases compare PyTorch's message text.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .._scenario import Scenario, register

_SECTION = "torchsem.nn.AvgPool1d (the document's pool1)"


def _inputs(shape: tuple[int, ...], seed: int, integer: bool = False):
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        if integer:
            return {"x": rng.integers(-20, 20, size=shape).astype(np.int64)}
        x = rng.standard_normal(shape).astype(np.float32)
        return {"x": x, "seed": np.array(seed)}
    return make


def _torch_program(kwargs: dict[str, Any], with_grad: bool = True):
    def program(inputs):
        import torch

        x = torch.from_numpy(inputs["x"])
        pool = torch.nn.AvgPool1d(**kwargs)
        if not with_grad:
            return {"y": pool(x)}
        x.requires_grad_(True)
        y = pool(x)
        cotangent = np.random.default_rng(int(inputs["seed"]) + 1).standard_normal(tuple(y.shape)).astype(np.float32)
        (dx,) = torch.autograd.grad(y, x, torch.from_numpy(cotangent))
        return {"y": y, "dx": dx}
    return program


def _jax_program(kwargs: dict[str, Any], with_grad: bool = True):
    def program(inputs, jit: bool):
        import jax

        from torchsem.nn import AvgPool1d

        pool = AvgPool1d(**kwargs)

        def forward(v):
            return pool.apply({}, v)

        def pullback(v, cotangent):
            return jax.vjp(forward, v)[1](cotangent)[0]

        if jit:
            forward, pullback = jax.jit(forward), jax.jit(pullback)
        if not with_grad:
            # JAX's default integer is int32; the arithmetic is PyTorch's int64 path.
            return {"y": forward(inputs["x"].astype(np.int32))}
        y = forward(inputs["x"])
        cotangent = np.random.default_rng(int(inputs["seed"]) + 1).standard_normal(y.shape).astype(np.float32)
        return {"y": y, "dx": pullback(inputs["x"], cotangent)}
    return program


def _plain(value: Any) -> str:
    return str(value[0]) if isinstance(value, tuple) else str(value).lower()


def _name(kwargs: dict[str, Any], shape: tuple[int, ...]) -> str:
    return (f"avgpool1d/k={_plain(kwargs['kernel_size'])}-s={_plain(kwargs['stride'])}-p={_plain(kwargs['padding'])}"
            f"-ceil={int(kwargs['ceil_mode'])}-incl={int(kwargs['count_include_pad'])}"
            f"-shape={'x'.join(map(str, shape))}")


def _register_grid() -> None:
    seed = 100
    for kernel, stride, padding, ceil_mode, include in itertools.product(
            (1, 2, 3, 4), (None, 1, 2, 3), (0, 1, 2), (False, True), (True, False)):
        if padding > kernel // 2:
            continue
        if padding == 0 and not include:
            continue  # without padding the divisor cannot depend on count_include_pad
        kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                      count_include_pad=include)
        shape = (2, 3, 7)
        seed += 1
        register(Scenario(
            name=_name(kwargs, shape),
            section=_SECTION,
            mapping=f"torch.nn.AvgPool1d(**{kwargs}) -> torchsem.nn.AvgPool1d(**{kwargs})",
            make_inputs=_inputs(shape, seed),
            torch_program=_torch_program(kwargs),
            jax_program=_jax_program(kwargs),
        ))

    extra = [
        (dict(kernel_size=2, stride=None, padding=0, ceil_mode=False, count_include_pad=True), (3, 3, 8)),  # the document's pool1
        (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=True), (3, 8)),  # unbatched (C, L)
        (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (3, 6)),
        (dict(kernel_size=5, stride=3, padding=2, ceil_mode=True, count_include_pad=True), (2, 2, 10)),
        (dict(kernel_size=(2,), stride=(1,), padding=(1,), ceil_mode=False, count_include_pad=False), (1, 2, 5)),
        (dict(kernel_size=4, stride=None, padding=2, ceil_mode=True, count_include_pad=True), (2, 1, 4)),
        (dict(kernel_size=2, stride=None, padding=0, ceil_mode=False, count_include_pad=True), (0, 3, 8)),  # empty batch
    ]
    for kwargs, shape in extra:
        seed += 1
        register(Scenario(
            name=_name(kwargs, shape),
            section=_SECTION,
            mapping=f"torch.nn.AvgPool1d(**{kwargs}) -> torchsem.nn.AvgPool1d(**{kwargs})",
            make_inputs=_inputs(shape, seed),
            torch_program=_torch_program(kwargs),
            jax_program=_jax_program(kwargs),
        ))

    for kwargs in (dict(kernel_size=3, stride=None, padding=0, ceil_mode=False, count_include_pad=True),
                   dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)):
        seed += 1
        register(Scenario(
            name=_name(kwargs, (1, 2, 7)) + "-int",
            section=_SECTION,
            mapping="AvgPool1d on int64 (PyTorch) / int32 (JAX): sums divided with truncation toward zero",
            make_inputs=_inputs((1, 2, 7), seed, integer=True),
            torch_program=_torch_program(kwargs, with_grad=False),
            jax_program=_jax_program(kwargs, with_grad=False),
        ))


def _error_torch(kwargs: dict[str, Any], shape: tuple[int, ...]):
    def program(inputs):
        import torch

        try:
            torch.nn.AvgPool1d(**kwargs)(torch.zeros(shape))
        except (RuntimeError, ValueError, TypeError) as error:
            return {"message": str(error)}
        return {"message": "no error"}
    return program


def _error_jax(kwargs: dict[str, Any], shape: tuple[int, ...]):
    def program(inputs, jit: bool):
        from torchsem.nn import AvgPool1d

        # Errors come from the module's static configuration, raised at construction or trace
        # time, so jit does not change them.
        try:
            AvgPool1d(**kwargs).apply({}, np.zeros(shape, np.float32))
        except (ValueError, TypeError) as error:
            return {"message": str(error)}
        return {"message": "no error"}
    return program


def _register_errors() -> None:
    cases = {
        "pad-more-than-half": (dict(kernel_size=2, padding=2), (2, 3, 8)),
        "pad-more-than-half-odd": (dict(kernel_size=3, padding=2), (2, 3, 8)),
        "pad-negative": (dict(kernel_size=3, padding=-1), (2, 3, 8)),
        "kernel-zero": (dict(kernel_size=0, stride=1), (2, 3, 8)),
        "kernel-zero-default-stride": (dict(kernel_size=0), (2, 3, 8)),
        "stride-negative": (dict(kernel_size=2, stride=-1), (2, 3, 8)),
        "output-too-small": (dict(kernel_size=9), (2, 3, 8)),
        "output-too-small-unbatched": (dict(kernel_size=2), (3, 1)),
        "kernel-two-ints": (dict(kernel_size=(2, 3)), (2, 3, 8)),
    }
    for case, (kwargs, shape) in cases.items():
        register(Scenario(
            name=f"avgpool1d/error-{case}",
            section=_SECTION,
            mapping=f"torch.nn.AvgPool1d(**{kwargs}) raises -> torchsem.nn.AvgPool1d raises the same message",
            torch_program=_error_torch(kwargs, shape),
            jax_program=_error_jax(kwargs, shape),
        ))


_register_grid()
_register_errors()
