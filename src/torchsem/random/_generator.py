"""``Generator``: PyTorch's default CPU generator, reproduced bit for bit in numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from . import _box_muller, _platform
from ._raw_stream import RawStream
from ._seeding import canonical_seed
from ._uniform import affine_float32, affine_float64, unit_float32, unit_float64
from ._validation import (
    FLOAT_DTYPES,
    INT64,
    Shape,
    as_dtype,
    as_shape,
    check_finite_real,
    check_int_range,
    check_probability,
    check_std,
    check_uniform_bounds,
    element_count,
)

_FILL_PATH_MIN_ELEMENTS = 16
# Public PyTorch wheels draw 64-bit words from this range width on (any dtype), to keep the
# modulo skew small; only Meta-internal builds use 2**32 and int64/float types.
_RANDOM64_RANGE = 1 << 28
# PyTorch switches randperm to a different (random64-based) shuffle from this size on.
_RANDPERM_MAX_N = (2**32 - 1) // 20


class Generator:
    """PyTorch's CPU random number generator after ``torch.manual_seed(seed)``, in numpy.

    Every sampling method returns a numpy array bit-identical to the PyTorch call named in
    its docstring on a freshly created contiguous CPU tensor, and consumes the mt19937 stream
    exactly as that call does, so any interleaving of calls stays in sync with PyTorch
    (including the Box-Muller sample PyTorch caches between small normal draws).

    Bit-exact (torch 2.13 CPU, verified against live PyTorch):

    - ``rand``, ``uniform``: float32, float64.
    - ``randn``, ``normal``: float64 everywhere; float32 below 16 elements everywhere, and at
      16+ elements on x86-64 CPUs with AVX2+FMA (PyTorch's AVX2/AVX512 builds). Elsewhere
      the float32 fill path raises ``NotImplementedError``.
    - ``randint``, ``randperm``: int64 (``randperm`` for ``n < (2**32 - 1) // 20``).
    - ``bernoulli``: float32, float64, int64, bool outputs; scalar ``p`` or an array ``p``.

    Other dtypes raise ``NotImplementedError`` rather than returning close-but-different
    numbers. The float64 normal paths call the platform libm (as PyTorch does) through
    CPython's ``math`` module, about 100 ns per element.

    Args:
        seed: any int in ``[-2**63, 2**64)``, as ``torch.manual_seed`` takes. Only
            ``seed mod 2**32`` reaches mt19937; negatives wrap modulo ``2**64``.

    PyTorch counterpart: ``torch.manual_seed(seed)`` then the default CPU generator
    (``at::CPUGeneratorImpl``).
    """

    def __init__(self, seed: int) -> None:
        self._initial_seed = canonical_seed(seed)
        self._stream = RawStream(self._initial_seed)
        self._cached_normal: float | None = None

    def __repr__(self) -> str:
        return f"Generator(seed={self._initial_seed})"

    # ------------------------------------------------------------------ state

    def manual_seed(self, seed: int) -> Generator:
        """Reseed in place, dropping any cached normal sample (``torch.manual_seed``)."""
        self._initial_seed = canonical_seed(seed)
        self._stream.reseed(self._initial_seed)
        self._cached_normal = None
        return self

    def initial_seed(self) -> int:
        """The seed as PyTorch reports it: ``seed mod 2**64`` (``torch.initial_seed()``)."""
        return self._initial_seed

    def get_state(self) -> dict[str, Any]:
        """A copy of the full state: mt19937 words and position, seed, cached normal sample."""
        return {
            "mt19937": self._stream.get_state(),
            "seed": self._initial_seed,
            "next_double_normal_sample": self._cached_normal,
        }

    def set_state(self, state: dict[str, Any]) -> Generator:
        """Restore a state returned by :meth:`get_state`."""
        self._stream.set_state(state["mt19937"])
        self._initial_seed = canonical_seed(state["seed"])
        cached = state["next_double_normal_sample"]
        self._cached_normal = None if cached is None else float(cached)
        return self

    def clone(self) -> Generator:
        """An independent generator in the same state (``torch.Generator.clone_state``)."""
        twin = Generator(self._initial_seed)
        return twin.set_state(self.get_state())

    # -------------------------------------------------------------- uniforms

    def _units(self, count: int, dtype: np.dtype) -> np.ndarray:
        if dtype == np.float32:
            return unit_float32(self._stream.uint32(count))
        return unit_float64(self._stream.uint64(count))

    def rand(self, shape: Shape, dtype: DTypeLike = np.float32) -> np.ndarray:
        """Uniform samples on ``[0, 1)``.

            float32: ``(w & (2**24 - 1)) * 2**-24`` from one 32-bit word each;
            float64: ``(w & (2**53 - 1)) * 2**-53`` from one 64-bit word (two 32-bit draws) each.

        Args:
            shape: output shape (int or sequence of ints).
            dtype: float32 (default) or float64.

        Returns:
            numpy array of ``shape`` and ``dtype``.

        PyTorch counterpart: ``torch.rand(shape, dtype=dtype)``.
        """
        dims = as_shape(shape)
        resolved = as_dtype(dtype, FLOAT_DTYPES, "rand")
        return self._units(element_count(dims), resolved).reshape(dims)

    def uniform(self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype: DTypeLike = np.float32) -> np.ndarray:
        """Uniform samples on ``[low, high)``: ``fma(u, high - low, low)`` in ``dtype``.

        ``low`` and ``high`` are rounded to ``dtype`` first and ``high - low`` is computed in
        ``dtype``; ``u`` is drawn as in :meth:`rand`. A sample that rounds up to ``high`` is
        replaced by ``low`` (torch 2.13's CPU kernel does so to keep the interval half-open).

        Args:
            shape: output shape.
            low, high: bounds, ``low <= high``, finite in ``dtype``.
            dtype: float32 (default) or float64.

        Returns:
            numpy array of ``shape`` and ``dtype``.

        PyTorch counterpart: ``torch.empty(shape, dtype=dtype).uniform_(low, high)``
        (also ``torch.nn.init.uniform_``).
        """
        dims = as_shape(shape)
        resolved = as_dtype(dtype, FLOAT_DTYPES, "uniform")
        low = check_finite_real("low", low)
        high = check_finite_real("high", high)
        check_uniform_bounds(low, high, resolved)
        units = self._units(element_count(dims), resolved)
        affine = affine_float32 if resolved == np.float32 else affine_float64
        return affine(units, low, high, fused=_platform.fma_contracted()).reshape(dims)

    # --------------------------------------------------------------- normals

    def randn(self, shape: Shape, dtype: DTypeLike = np.float32) -> np.ndarray:
        """Standard normal samples; see :meth:`normal` for the two Box-Muller paths.

        PyTorch counterpart: ``torch.randn(shape, dtype=dtype)``.
        """
        return self._normal(shape, 0.0, 1.0, dtype, "randn")

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype: DTypeLike = np.float32) -> np.ndarray:
        """Normal samples ``mean + std * z`` by PyTorch's Box-Muller transforms.

        With 16+ elements PyTorch fills the tensor with uniforms and transforms blocks of 16
        (``j`` paired with ``j + 8``, ``z = sqrt(-2 log(1 - u_j)) * (cos, sin)(2 pi u_{j+8})``);
        a ragged tail is redone from 16 fresh uniforms. Below 16 elements it draws float64
        pairs, returns ``sqrt(-2 log1p(-u2)) cos(2 pi u1)`` and caches the sine partner in the
        generator for the next small normal call. The scale-shift ``z * std + mean`` is one
        fused multiply-add (in float32 with float32 ``mean``/``std`` on the float32 fill path,
        in float64 otherwise, then rounded to ``dtype``).

        Args:
            shape: output shape.
            mean: mean (finite).
            std: standard deviation, ``>= 0``.
            dtype: float32 (default) or float64.

        Returns:
            numpy array of ``shape`` and ``dtype``.

        Raises:
            NotImplementedError: float32 with 16+ elements on a CPU where PyTorch would use
                its portable (non-AVX2) kernel, whose libm ``logf``/``sinf``/``cosf`` are not
                reproduced.

        PyTorch counterpart: ``torch.normal(mean, std, shape, dtype=dtype)`` /
        ``torch.empty(shape, dtype=dtype).normal_(mean, std)``.
        """
        return self._normal(shape, mean, std, dtype, "normal")

    def _normal(self, shape: Shape, mean: float, std: float, dtype: DTypeLike, method: str) -> np.ndarray:
        dims = as_shape(shape)
        resolved = as_dtype(dtype, FLOAT_DTYPES, method)
        mean = check_finite_real("mean", mean)
        if not np.isfinite(mean):
            raise ValueError(f"mean must be finite, got mean={mean!r}")
        std = check_finite_real("std", std)
        check_std(std)
        count = element_count(dims)
        if count >= _FILL_PATH_MIN_ELEMENTS:
            values = self._normal_fill(count, mean, std, resolved, method)
        else:
            values = self._normal_scalar(count, mean, std).astype(resolved)
        return values.reshape(dims)

    def _normal_fill(self, count: int, mean: float, std: float, dtype: np.dtype, method: str) -> np.ndarray:
        if dtype == np.float32:
            build = _platform.normal_kernel_build()
            if build != _platform.AVX2:
                raise _platform.UnsupportedKernel(
                    f"dtype=float32 with 16+ elements: Generator.{method} reproduces PyTorch's AVX2 normal kernel "
                    f"only, but this machine would run PyTorch's {build!r} kernel (libm logf/sinf/cosf)"
                )
            fill = _box_muller.fill_blocks_float32
        else:
            fill = _box_muller.fill_blocks_float64
        units = self._units(count, dtype)
        fused = _platform.fma_contracted()
        block = _FILL_PATH_MIN_ELEMENTS
        whole = count - count % block
        out = np.empty(count, dtype=dtype)
        out[:whole] = fill(units[:whole], mean, std, fused)
        if whole != count:
            # PyTorch redraws the last 16 slots from fresh uniforms; the ragged leftovers are discarded.
            out[count - block :] = fill(self._units(block, dtype), mean, std, fused)
        return out

    def _normal_scalar(self, count: int, mean: float, std: float) -> np.ndarray:
        standard = np.empty(count, dtype=np.float64)
        filled = 0
        if count and self._cached_normal is not None:
            standard[0] = self._cached_normal
            self._cached_normal = None
            filled = 1
        remaining = count - filled
        pairs = (remaining + 1) // 2
        if pairs:
            units = self._units(2 * pairs, np.dtype(np.float64))
            returned, cached = _box_muller.scalar_pairs(units[0::2], units[1::2])
            interleaved = np.stack([returned, cached], axis=1).reshape(-1)
            standard[filled:] = interleaved[:remaining]
            if remaining % 2:
                self._cached_normal = float(cached[-1])
        return _box_muller.scale_shift_float64(standard, mean, std, _platform.fma_contracted())

    # -------------------------------------------------------------- integers

    def randint(self, low: int, high: int, shape: Shape, dtype: DTypeLike = np.int64) -> np.ndarray:
        """Uniform integers on ``[low, high)``: ``low + w mod (high - low)``.

        ``w`` is one 32-bit word per element when ``high - low < 2**28`` and one 64-bit word
        (two draws) otherwise. (The modulo skews wide ranges slightly, as in PyTorch.)

        Args:
            low, high: int64 bounds, ``low < high``.
            shape: output shape.
            dtype: int64 only.

        Returns:
            int64 numpy array of ``shape``.

        PyTorch counterpart: ``torch.randint(low, high, shape)``.
        """
        check_int_range(low, high)
        dims = as_shape(shape)
        as_dtype(dtype, (INT64,), "randint")
        span = int(high) - int(low)
        count = element_count(dims)
        words = self._stream.uint32(count) if span < _RANDOM64_RANGE else self._stream.uint64(count)
        offsets = words % np.uint64(span)
        # low + offset fits int64 by construction; wrap through uint64 to avoid overflow in the sum.
        values = (offsets + np.uint64(int(low) % (1 << 64))).view(np.int64)
        return values.reshape(dims)

    def randperm(self, n: int, dtype: DTypeLike = np.int64) -> np.ndarray:
        """A random permutation of ``0..n-1`` by PyTorch's forward Fisher-Yates shuffle.

        For ``i = 0..n-2``: ``z = w_i mod (n - i)`` from one 32-bit word, swap ``a[i]`` and
        ``a[i + z]``. The words are drawn in one vectorised block; the swaps are inherently
        sequential and run as a Python loop over a list (about 0.1 us per element).

        Args:
            n: length, ``0 <= n < (2**32 - 1) // 20``.
            dtype: int64 only.

        Returns:
            int64 numpy array of length ``n``.

        Raises:
            NotImplementedError: ``n >= (2**32 - 1) // 20`` (PyTorch's random64 shuffle).

        PyTorch counterpart: ``torch.randperm(n)``.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        n = int(n)
        as_shape(n)
        as_dtype(dtype, (INT64,), "randperm")
        if n >= _RANDPERM_MAX_N:
            raise NotImplementedError(
                f"n={n}: PyTorch shuffles n >= {_RANDPERM_MAX_N} with random64(); only smaller n is reproduced"
            )
        if n < 2:
            return np.arange(n, dtype=np.int64)
        words = self._stream.uint32(n - 1)
        offsets = (words % np.arange(n, 1, -1, dtype=np.uint64)).tolist()
        permutation = list(range(n))
        for i, offset in enumerate(offsets):
            j = i + offset
            permutation[i], permutation[j] = permutation[j], permutation[i]
        return np.array(permutation, dtype=np.int64)

    # ------------------------------------------------------------- bernoulli

    def bernoulli(self, shape: Shape, p: float | np.ndarray = 0.5, dtype: DTypeLike = np.float32) -> np.ndarray:
        """Bernoulli samples: ``1`` where a uniform draw ``u < p``, else ``0``.

        Scalar ``p`` (the dropout-mask path): ``u`` is a float64 uniform (one 64-bit word per
        element). Array ``p`` of shape ``shape``: float64 ``p`` draws float64 uniforms, float32
        ``p`` draws float32 uniforms (one 32-bit word each) and compares in float32.

        ``torch.nn.functional.dropout(x, q, training=True)`` on CPU equals
        ``x * (bernoulli(x.shape, 1 - q) / (1 - q))``.

        Args:
            shape: output shape.
            p: probability of a one, in ``[0, 1]``; a float or a float32/float64 array.
            dtype: output dtype: float32 (default), float64, int64 or bool.

        Returns:
            numpy array of ``shape`` and ``dtype``.

        PyTorch counterpart: ``torch.empty(shape, dtype=dtype).bernoulli_(p)`` (scalar or
        tensor ``p``); ``torch.bernoulli(p_tensor)`` when ``dtype`` is ``p``'s dtype.
        """
        dims = as_shape(shape)
        resolved = as_dtype(dtype, (*FLOAT_DTYPES, INT64, np.dtype(np.bool_)), "bernoulli")
        count = element_count(dims)
        if isinstance(p, np.ndarray):
            if p.dtype not in FLOAT_DTYPES:
                raise NotImplementedError(f"p.dtype={p.dtype.name} is not supported (float32 or float64 p only)")
            if p.shape != dims:
                raise ValueError(f"p.shape={p.shape} must equal shape={dims}")
            if count and not bool(np.all((p >= 0) & (p <= 1))):
                raise ValueError(
                    "p must lie in [0, 1] elementwise: Expected p_in >= 0 && p_in <= 1 to be true, but got false."
                )
            units = self._units(count, p.dtype).reshape(dims)
            hits = units < p
        else:
            probability = check_finite_real("p", p)
            check_probability(probability)
            hits = self._units(count, np.dtype(np.float64)).reshape(dims) < probability
        return hits.astype(resolved)
