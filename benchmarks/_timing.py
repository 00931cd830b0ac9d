"""Timing shared by the benchmarks: medians of interleaved runs, so machine noise hits every side alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_medians(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 2,
    *,
    block: int = 1,
    settle_s: float = 0.0,
    alternate: bool = False,
    reference: str | None = None,
) -> dict[str, float]:
    """Median seconds per call of each function, the functions taking turns round by round.

    Args:
      fns: name -> a function that runs one measured call (and blocks until its result is ready).
      repeats: rounds; each gives every function one sample.
      warmup: untimed calls of each function first (compilation, caches).
      block: calls per sample; the sample is their mean.
      settle_s: a pause before each sample, so the previous library's worker threads (PyTorch's
        OpenMP pool spins for a while after each call) go idle first.
      alternate: reverse the order of the functions every other round.
      reference: also return ``"<name>/ratio"``, the median over rounds of each sample divided by
        the reference's sample in the same round, which cancels load that changes between rounds.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for round_ in range(repeats):
        for name in names[::-1] if alternate and round_ % 2 else names:
            time.sleep(settle_s)
            start = time.perf_counter()
            for _ in range(block):
                fns[name]()
            samples[name].append((time.perf_counter() - start) / block)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    if reference is not None:
        for name in names:
            medians[f"{name}/ratio"] = statistics.median(t / r for t, r in zip(samples[name], samples[reference]))
    return medians
