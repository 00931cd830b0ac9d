"""How ``torch.manual_seed`` turns a Python int into the 624-word mt19937 state."""

from __future__ import annotations

import numpy as np

_UINT64_SPAN = 1 << 64
_INT64_MIN = -(1 << 63)
_MT_STATE_WORDS = 624
_MT_INIT_MULTIPLIER = 1812433253


def canonical_seed(seed: int) -> int:
    """Reduce a seed to the unsigned 64-bit value PyTorch stores as ``initial_seed()``.

    PyTorch unpacks the Python int as a C ``uint64_t`` and accepts negative ints down to
    ``-2**63`` by wrapping them modulo ``2**64``; anything outside ``[-2**63, 2**64)`` is an
    overflow.

    Args:
        seed: the Python int given to ``manual_seed``.

    Returns:
        ``seed mod 2**64`` as a non-negative int.

    Raises:
        TypeError: ``seed`` is not an int (bools are refused too).
        ValueError: ``seed`` lies outside ``[-2**63, 2**64)``.

    PyTorch counterpart: ``torch.manual_seed(seed)`` followed by ``torch.initial_seed()``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not _INT64_MIN <= seed < _UINT64_SPAN:
        raise ValueError(f"seed must lie in [-2**63, 2**64) like torch.manual_seed; got seed={seed}")
    return seed % _UINT64_SPAN


def mt19937_key(seed: int) -> np.ndarray:
    """The mt19937 state words PyTorch's CPU generator holds right after seeding.

    PyTorch keeps only the low 32 bits of the 64-bit seed, ``s_0 = seed mod 2**32``, and fills
    the rest with Matsumoto and Nishimura's initialisation recurrence

        s_i = (1812433253 * (s_{i-1} xor (s_{i-1} >> 30)) + i) mod 2**32,  i = 1..623.

    Args:
        seed: a canonical seed (see :func:`canonical_seed`).

    Returns:
        A ``uint32`` array of 624 words; the first draw twists the whole state first.

    PyTorch counterpart: ``at::mt19937(seed)`` (``init_with_uint32``) in ``ATen/core/MT19937RNGEngine.h``.
    """
    words = np.empty(_MT_STATE_WORDS, dtype=np.uint32)
    word = seed & 0xFFFFFFFF
    words[0] = word
    for index in range(1, _MT_STATE_WORDS):
        word = (_MT_INIT_MULTIPLIER * (word ^ (word >> 30)) + index) & 0xFFFFFFFF
        words[index] = word
    return words
