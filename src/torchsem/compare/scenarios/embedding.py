"""Embedding parity (family ``embedding``): ``torchsem.nn.Embedding`` against ``torch.nn.Embedding``.

- Through the generic module runner: PyTorch's seeded ``N(0, 1)`` weight with the padding row
  zeroed, bit for bit (both of PyTorch's normal paths: the 16-at-a-time fill and, below 16
  elements, the scalar one), the lookup and the weight's gradient for ``padding_idx``
  (negative ones normalised), ``scale_grad_by_freq``, int32 and int64 indices of every rank
  (0-d and empty included).
- ``max_norm`` renormalises the looked-up rows of the weight in place in PyTorch. Hand-written
  scenarios run two forwards with an SGD step between them: the output, the gradient and the
  weight after each forward (PyTorch's in-place change, which torchsem returns in the mutable
  ``params`` collection), so the second forward and the update are seen to start from the
  renormalised rows as PyTorch's do; for the 2-, 1- and inf-norms.
- Errors: PyTorch's types and messages for bad constructor arguments, index dtypes and, eagerly,
  out-of-range indices.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases
from .._scenario import Scenario, register

_SECTION = "torchsem.nn.Embedding (lookup tables, padding_idx, max_norm)"
_CLASSES = ("torch.nn.Embedding", "torchsem.nn.Embedding")
_SGD_LR = 0.5


def _indices(shape: tuple[int, ...], high: int, dtype: str = "int64") -> Input:
    return Input(shape, dtype=dtype, low=0, high=high)


def _module_cases() -> list[ModuleCase]:
    # (args, kwargs, indices); no mode-dependent behaviour, so one training forward each.
    grid: list[tuple[tuple, dict[str, Any], Input]] = [
        ((10, 4), {}, _indices((2, 3), 10)),
        ((10, 4), dict(padding_idx=0), _indices((3, 4), 4)),  # the padding row is looked up often
        ((7, 3), dict(padding_idx=-2), _indices((6,), 7)),  # normalised to 5
        ((6, 5), dict(scale_grad_by_freq=True), _indices((4, 3), 3)),  # repeated indices
        ((6, 5), dict(scale_grad_by_freq=True, padding_idx=2), _indices((2, 2, 3), 4)),
        ((3, 2), {}, _indices((), 3)),  # 6 weights: PyTorch's scalar normal path; a 0-d index
        ((9, 4), {}, _indices((3, 2), 9, "int32")),  # PyTorch's Int indices
        ((5, 4), {}, _indices((0, 2), 5)),  # no indices: an empty output, a zero gradient
    ]
    return [
        ModuleCase(*_CLASSES, args, kwargs, inputs=(indices,), modes=("train",), seed=seed)
        for seed, (args, kwargs, indices) in enumerate(grid, start=1801)
    ]


def _error_cases() -> list[ErrorCase]:
    cases: dict[str, tuple[tuple, dict[str, Any], tuple[Input, ...]]] = {
        "padding-idx-too-large": ((10, 3), dict(padding_idx=10), ()),
        "padding-idx-too-small": ((10, 3), dict(padding_idx=-11), ()),
        "negative-num-embeddings": ((-1, 3), {}, ()),
        "negative-embedding-dim": ((3, -2), {}, ()),
        "float-num-embeddings": ((3.0, 2), {}, ()),
        "indices-float": ((10, 3), {}, (Input((2,)),)),
        "indices-int16": ((10, 3), {}, (_indices((2,), 10, "int16"),)),
        "indices-uint8": ((10, 3), {}, (_indices((2,), 10, "uint8"),)),
        "indices-bool": ((10, 3), {}, (Input((2,), "bool"),)),
        "indices-float-max-norm": ((10, 3), dict(max_norm=1.0), (Input((2,)),)),
    }
    return [ErrorCase(*_CLASSES, name, args, kwargs, inputs=inputs) for name, (args, kwargs, inputs) in cases.items()]


# ------------------------------------------------------------------ max_norm: the in-place change


def _max_norm_inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 3])
    # The second forward revisits rows 1 and 4 (renormalised, then moved by SGD) and reads new ones.
    return {
        "indices1": np.array([[1, 4, 4], [7, 1, 3]], np.int64),
        "indices2": np.array([4, 0, 1, 9, 3], np.int64),
        "cotangent1": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "cotangent2": rng.standard_normal((5, 4)).astype(np.float32),
    }


def _max_norm_torch(inputs: dict[str, np.ndarray], *, seed: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.manual_seed(seed)
    table = torch.nn.Embedding(10, 4, **kwargs)
    outputs: dict[str, Any] = {}
    for step in (1, 2):
        y = table(torch.from_numpy(inputs[f"indices{step}"]))
        outputs[f"weight after forward {step}"] = table.weight.detach().clone()
        (y * torch.from_numpy(inputs[f"cotangent{step}"])).sum().backward()
        grad = table.weight.grad
        assert grad is not None
        outputs[f"output{step}"] = y
        outputs[f"grad weight {step}"] = grad.clone()
        with torch.no_grad():
            table.weight -= _SGD_LR * grad
        table.weight.grad = None
    outputs["weight after step 2"] = table.weight
    return outputs


def _max_norm_jax(inputs: dict[str, np.ndarray], jit: bool, *, seed: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    from ... import convert
    from ...nn import Embedding
    from ...random import Generator, torch_init

    table = Embedding(10, 4, **kwargs)
    indices = {step: convert.to_jax(inputs[f"indices{step}"], jnp.int32) for step in (1, 2)}
    params = torch_init(table, Generator(seed), indices[1])["params"]

    def step(params: Any, idx: jax.Array, cotangent: jax.Array) -> Any:
        def loss(p: Any) -> Any:
            y, updated = table.apply({"params": p}, idx, mutable=["params"])
            return jnp.sum(y * cotangent), (y, updated["params"])

        (_, (y, renormalised)), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return y, renormalised, grads

    run = jitted(step, jit)
    outputs: dict[str, Any] = {}
    for n in (1, 2):
        y, params, grads = run(params, indices[n], convert.to_jax(inputs[f"cotangent{n}"]))
        outputs[f"weight after forward {n}"] = params["weight"]
        outputs[f"output{n}"] = y
        outputs[f"grad weight {n}"] = grads["weight"]
        # SGD on the renormalised weight, as PyTorch's step updates the weight forward changed.
        params = jax.tree_util.tree_map(lambda w, g: w - _SGD_LR * g, params, grads)
    outputs["weight after step 2"] = params["weight"]
    return outputs


def _register_max_norm() -> None:
    configs: dict[str, dict[str, Any]] = {
        "max-norm-2": dict(max_norm=1.0),
        "max-norm-1-padding-freq": dict(max_norm=1.5, norm_type=1.0, padding_idx=3, scale_grad_by_freq=True),
        "max-norm-inf": dict(max_norm=0.8, norm_type=math.inf),
    }
    for seed, (name, kwargs) in enumerate(configs.items(), start=1811):
        shown = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        register(
            Scenario(
                name=f"embedding/{name}",
                section=_SECTION,
                mapping=f"torch.nn.Embedding(10, 4, {shown}) forward renormalises weight in place -> "
                f"torchsem.nn.Embedding(10, 4, {shown}).apply(..., mutable=['params']) returns the renormalised "
                "weight",
                torch_program=functools.partial(_max_norm_torch, seed=seed, kwargs=kwargs),
                jax_program=functools.partial(_max_norm_jax, seed=seed, kwargs=kwargs),
                make_inputs=functools.partial(_max_norm_inputs, seed),
                notes="Two forwards with an SGD step (lr 0.5) between them; the weight is read after each forward.",
            )
        )


# ------------------------------------------------------------------ index errors (eager)


def _index_error_torch(inputs: dict[str, np.ndarray], *, kwargs: dict[str, Any]) -> dict[str, str]:
    import torch

    table = torch.nn.Embedding(10, 3, **kwargs)
    return error_outputs(lambda: table(torch.from_numpy(inputs["indices"])))


def _index_error_jax(inputs: dict[str, np.ndarray], jit: bool, *, kwargs: dict[str, Any]) -> dict[str, str]:
    import jax

    from ...nn import Embedding

    table = Embedding(10, 3, **kwargs)
    variables = table.init(jax.random.key(0), np.zeros((1,), np.int32))
    # The range check reads the indices' values, so it is eager even in the jit run: under
    # jax.jit they are abstract (an out-of-range index then reads a row of NaN, tests/test_embedding.py).
    indices = inputs["indices"].astype(np.int32)
    return error_outputs(lambda: table.apply(variables, indices, mutable=["params"]))


def _index_inputs(indices: list[int]) -> dict[str, np.ndarray]:
    return {"indices": np.array(indices, np.int64)}


def _register_index_errors() -> None:
    cases: dict[str, tuple[list[int], dict[str, Any]]] = {
        "index-too-large": ([0, 10, 2], {}),
        "index-negative": ([3, -1], {}),
        "index-too-large-max-norm": ([2, 11, 12], dict(max_norm=1.0)),  # embedding_renorm_'s select()
        "index-too-small-max-norm": ([-11, 2], dict(max_norm=1.0)),
        "index-negative-max-norm": ([-1, 2], dict(max_norm=1.0)),  # select() wraps it; embedding refuses
    }
    for name, (indices, kwargs) in cases.items():
        register(
            Scenario(
                name=f"embedding/error-{name}",
                section=_SECTION,
                mapping=f"torch.nn.Embedding(10, 3, {kwargs})({indices}) raises -> torchsem.nn.Embedding raises the "
                "same error (eagerly)",
                torch_program=functools.partial(_index_error_torch, kwargs=kwargs),
                jax_program=functools.partial(_index_error_jax, kwargs=kwargs),
                make_inputs=functools.partial(_index_inputs, indices),
            )
        )


register_module_cases("embedding", _SECTION, [*_module_cases(), *_error_cases()])
_register_max_norm()
_register_index_errors()
