"""MultiheadAttention parity (family ``attention``), through the generic module runner.

``torch.nn.MultiheadAttention`` and ``torchsem.nn.MultiheadAttention`` (embed_dim 8, 2 heads,
4 queries, 5 keys, batch 2): PyTorch's seeded initial parameters bit for bit (``out_proj``'s
``Linear`` draws, then ``xavier_uniform_`` of the in-projection, ``xavier_normal_`` of
``bias_k``/``bias_v``; names and order of the ``state_dict``), the output and the attention
weights, the gradients of the query, key, value and every parameter, in train and eval,
eagerly and under ``jax.jit``. The grid covers both of PyTorch's computations
(``need_weights=True``: the explicit math path; ``need_weights=False``:
``scaled_dot_product_attention``, whose CPU flash kernel PyTorch picks whenever no dropout is
active), bool and float ``key_padding_mask`` and ``attn_mask`` (2-D and 3-D, merged),
``is_causal`` (with and without a padding mask, and with a mask that is not causal, which
PyTorch's SDPA call replaces by the causal one), ``batch_first``, unbatched inputs, ``kdim`` /
``vdim`` (separate projection weights), ``bias=False``, ``add_bias_kv``, ``add_zero_attn``,
``average_attn_weights=False``, and query rows whose keys are all masked (NaN on the math path,
0 on the flash path, as in PyTorch).

Dropout masks come from JAX's generator, so ``dropout > 0`` is compared in eval (where it must
vanish); training runs with ``dropout=0``. PyTorch's inference fast path
(``_native_multi_head_attention``) needs autograd off, so the runner, which differentiates,
never takes it. Error cases compare PyTorch's error types and messages.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases
from .._scenario import Tolerance

_SECTION = "torchsem.nn.MultiheadAttention (attention with PyTorch's masks and parameters)"
_TORCH, _JAX = "torch.nn.MultiheadAttention", "torchsem.nn.MultiheadAttention"
E, H, L, S, N = 8, 2, 4, 5, 2


@dataclasses.dataclass(frozen=True)
class _BoolMask(Input):
    """A fair-coin bool mask whose first key is never masked: every query row keeps a key.

    ``dead_row``: the row at this index of the leading axis is masked whole instead (a batch
    entry of a ``key_padding_mask`` with every key padded).
    """

    dead_row: int | None = None

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        mask = rng.integers(0, 2, self.shape).astype(bool)
        mask[..., 0] = False
        if self.dead_row is not None:
            mask[self.dead_row] = True
        return mask


@dataclasses.dataclass(frozen=True)
class _FloatMask(Input):
    """An additive float mask: ``N(0, 1)`` values, a quarter of them ``-inf``, never the first key."""

    requires_grad: bool = False

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        values = rng.standard_normal(self.shape).astype(np.float32)
        blocked = rng.random(self.shape) < 0.25
        blocked[..., 0] = False
        return np.where(blocked, np.float32(-np.inf), values).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _Causal(Input):
    """The float causal mask (``-inf`` above the diagonal), as ``generate_square_subsequent_mask`` makes it."""

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        rows, cols = self.shape
        return np.where(np.triu(np.ones((rows, cols), bool), 1), np.float32(-np.inf), np.float32(0)).astype(np.float32)


def _kpm(kind: str = "bool", batch: int = N, keys: int = S) -> Input:
    shape = (batch, keys) if batch else (keys,)
    return (
        _BoolMask(shape, "bool", keyword="key_padding_mask")
        if kind == "bool"
        else _FloatMask(shape, keyword="key_padding_mask")
    )


def _mask(kind: str = "bool", shape: tuple[int, ...] = (L, S)) -> Input:
    if kind == "causal":
        return _Causal(shape, keyword="attn_mask", requires_grad=False)
    return _BoolMask(shape, "bool", keyword="attn_mask") if kind == "bool" else _FloatMask(shape, keyword="attn_mask")


def _qkv(
    batch_first: bool = False, batched: bool = True, kdim: int = E, vdim: int = E, tgt: int = L, src: int = S
) -> tuple[Input, ...]:
    def shape(length: int, features: int) -> tuple[int, ...]:
        if not batched:
            return (length, features)
        return (N, length, features) if batch_first else (length, N, features)

    return Input(shape(tgt, E)), Input(shape(src, kdim)), Input(shape(src, vdim))


# Products of 8 (4 per head) N(0, 1)-sized factors and softmaxes over 4-7 keys: oneDNN's gemm,
# PyTorch's flash kernel (blocked, q k^T scaled after the product, 1/sum multiplied in last) and
# XLA order the float32 sums differently. Measured (torch 2.13, AVX2): up to 1.2e-7 on outputs and
# weights, 9.5e-7 on gradients that sum 2 x 4 x 5 such terms; 3e-6 leaves room for other kernels.
_ROUNDING = Tolerance(1e-5, 3e-6, reason="float32 sums of attention products and softmax, ordered differently")
_TOLERANCES = {
    q: _ROUNDING
    for q in (
        "grad in_proj_weight",
        "grad q_proj_weight",
        "grad k_proj_weight",
        "grad v_proj_weight",
        "grad in_proj_bias",
        "grad bias_k",
        "grad bias_v",
        "grad out_proj.weight",
        "grad input0",
        "grad input1",
        "grad input2",
    )
}


def _case(
    name: str, seed: int, inputs: tuple[Input, ...], modes: tuple[str, ...] = ("train",), **kw: Any
) -> ModuleCase:
    call: dict[str, Any] = {k: kw.pop(k) for k in ("need_weights", "average_attn_weights", "is_causal") if k in kw}
    return ModuleCase(
        _TORCH,
        _JAX,
        (E, H),
        kw,
        inputs=inputs,
        call_kwargs=call,
        modes=modes,
        seed=seed,
        name=name,
        tolerances=_TOLERANCES,
    )


def _cases() -> list[ModuleCase]:
    dead = _BoolMask((N, S), "bool", keyword="key_padding_mask", dead_row=1)  # batch entry 1: every key padded
    return [
        _case("default", 301, _qkv()),
        # With a padding mask, is_causal is only a hint: the merged masks are used.
        _case(
            "sdpa-batch-first-masks-causal-hint",
            302,
            (*_qkv(batch_first=True), _kpm(), _mask()),
            batch_first=True,
            need_weights=False,
            is_causal=True,
        ),
        _case(
            "unbatched-mask3d-kpm-dropout-eval",
            303,
            (*_qkv(batched=False), _kpm(batch=0), _mask(shape=(H, L, S))),
            dropout=0.3,
            modes=("eval",),
        ),
        # is_causal with need_weights=True is only a hint too: the attn_mask given is used.
        _case(
            "no-bias-bias-kv-zero-attn-per-head-float-masks",
            304,
            (*_qkv(), _kpm("float"), _mask("float", (N * H, L, S))),
            bias=False,
            add_bias_kv=True,
            add_zero_attn=True,
            average_attn_weights=False,
            is_causal=True,
        ),
        _case(
            "kdim-vdim-bias-kv-zero-attn-float-masks-sdpa",
            305,
            (*_qkv(kdim=6, vdim=5), _kpm("float"), _mask("float")),
            kdim=6,
            vdim=5,
            add_bias_kv=True,
            add_zero_attn=True,
            need_weights=False,
        ),
        # No padding mask and no weights: PyTorch hands is_causal to SDPA and drops attn_mask.
        _case(
            "causal-hint-replaces-mask", 306, (*_qkv(src=L), _mask("float", (L, L))), need_weights=False, is_causal=True
        ),
        # A query row with no key left: 0 on SDPA's path (PyTorch's flash kernel), NaN on the math path.
        _case(
            "dropout-eval-sdpa-dead-row",
            308,
            (*_qkv(), dead, _mask()),
            dropout=0.3,
            need_weights=False,
            modes=("eval",),
        ),
        _case(
            "dead-row-need-weights",
            309,
            (*(Input(spec.shape, requires_grad=False) for spec in _qkv()), dead),
            modes=("eval",),
        ),
    ]


def _error(name: str, inputs: tuple[Input, ...] = (), args: tuple = (E, H), **kw: Any) -> ErrorCase:
    call: dict[str, Any] = {k: kw.pop(k) for k in ("need_weights", "is_causal") if k in kw}
    return ErrorCase(_TORCH, _JAX, name, args, kw, inputs=inputs, call_kwargs=call)


def _errors() -> list[ErrorCase]:
    q, k, v = _qkv()
    return [
        _error("embed-dim-not-divisible", args=(8, 3)),
        _error("embed-dim-zero", args=(0, 2)),
        _error("mask2d-shape", (q, k, v, _mask(shape=(L, L)))),
        _error("mask3d-shape", (q, k, v, _mask(shape=(N, L, S)))),
        _error("mask4d", (q, k, v, _mask(shape=(1, 1, L, S)))),
        _error("mask-int", (q, k, v, Input((L, S), "int64", keyword="attn_mask"))),
        _error("mask-float16-need-weights", (q, k, v, Input((L, S), "float16", keyword="attn_mask"))),
        _error("mask-float16-sdpa", (q, k, v, Input((L, S), "float16", keyword="attn_mask")), need_weights=False),
        _error("kpm-keys", (q, k, v, _kpm(keys=L))),
        _error("kpm-batch", (q, k, v, _kpm(batch=3))),
        _error("kpm-3d", (q, k, v, Input((N, S, 2), "bool", keyword="key_padding_mask"))),
        _error("kpm-unbatched-2d", (*_qkv(batched=False), _kpm())),
        _error("unbatched-mask3d-shape", (*_qkv(batched=False), _mask(shape=(3, L, S)))),
        _error("is-causal-without-mask", (q, k, v), is_causal=True),
        _error("key-value-shapes", (q, k, Input((L, N, E)))),
        _error("query-features", (Input((L, N, 6)), k, v)),
        _error("query-4d", (Input((L, N, 2, E)), k, v)),
        _error("key-2d", (q, Input((S, E)), v)),
        _error("key-features", (q, Input((S, N, 6)), Input((S, N, 6)))),
        _error("separate-key-value-lengths", (*_qkv(kdim=6, vdim=5)[:2], Input((L, N, 5))), kdim=6, vdim=5),
        _error("separate-key-features", (q, Input((S, N, 7)), Input((S, N, 5))), kdim=6, vdim=5),
    ]


register_module_cases("attention", _SECTION, [*_cases(), *_errors()])
