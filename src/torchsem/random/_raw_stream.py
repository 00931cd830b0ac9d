"""The raw 32-bit and 64-bit words of PyTorch's CPU generator, drawn in stream order."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._seeding import mt19937_key

_MT_STATE_WORDS = 624


class RawStream:
    """An mt19937 stream that hands out words exactly as ``at::CPUGeneratorImpl`` does.

    ``random()`` is one 32-bit mt19937 output; ``random64()`` is two consecutive outputs
    ``hi, lo`` combined as ``hi * 2**32 + lo`` (first draw in the high half). numpy's
    ``MT19937`` bit generator produces the same 32-bit sequence once it holds the same state,
    so blocks of words come out vectorised while the position in the stream stays exact
    (``Generator.integers`` over the full uint32 range returns the raw outputs unchanged and
    unbuffered).

    PyTorch counterpart: ``CPUGeneratorImpl::random`` / ``random64`` (``ATen/CPUGeneratorImpl.cpp``).
    """

    def __init__(self, seed: int) -> None:
        self._bit_generator = np.random.MT19937()
        self._words = np.random.Generator(self._bit_generator)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Put the stream at its start for ``seed`` (a canonical seed)."""
        self._bit_generator.state = {
            "bit_generator": "MT19937",
            "state": {"key": mt19937_key(seed), "pos": _MT_STATE_WORDS},
        }

    def uint32(self, count: int) -> np.ndarray:
        """The next ``count`` 32-bit words (``random()`` calls) as ``uint32``."""
        return self._words.integers(0, 1 << 32, size=count, dtype=np.uint32)

    def uint64(self, count: int) -> np.ndarray:
        """The next ``count`` 64-bit words (``random64()`` calls), ``hi << 32 | lo``."""
        words = self.uint32(2 * count).astype(np.uint64)
        return (words[0::2] << np.uint64(32)) | words[1::2]

    def get_state(self) -> dict[str, Any]:
        """A deep copy of the mt19937 state (key words and position)."""
        state = self._bit_generator.state
        return {"key": state["state"]["key"].copy(), "pos": int(state["state"]["pos"])}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state returned by :meth:`get_state`."""
        key = np.asarray(state["key"], dtype=np.uint32)
        if key.shape != (_MT_STATE_WORDS,):
            raise ValueError(f"state['key'] must hold {_MT_STATE_WORDS} words, got shape {key.shape}")
        self._bit_generator.state = {
            "bit_generator": "MT19937",
            "state": {"key": key.copy(), "pos": int(state["pos"])},
        }
