"""Generator speed: torchsem.random.Generator against PyTorch's CPU generator and numpy.

The work timed (seeding included on both sides, medians after warm-up, runs interleaved so
machine noise hits all alike):

- ``Generator(seed).randn(10**7)`` float32 vs ``torch.manual_seed(seed); torch.randn(10**7)``
  (target: ratio <= 20; bit-exactness costs an emulated FMA per polynomial step);
- the same vs ``numpy.random.default_rng(seed).standard_normal(10**7, dtype=float32)``
  (numpy's ziggurat, different numbers: the cost of a plain vectorised sampler);
- for context: ``rand(10**7)`` float32 and ``randn(10**6)`` float64 (libm per element) vs torch.

Rows needing torch are left out when torch is not importable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from _timing import interleaved_medians
from torchsem.random import Generator

SEED = 1029
LARGE = 10**7
MEDIUM = 10**6


def _row(name: str, reference: str, ours: float, theirs: float, **extra: object) -> dict:
    return {
        "name": name,
        "ratio": ours / theirs,
        "reference": reference,
        "median_s": ours,
        "reference_median_s": theirs,
        **extra,
    }


def run(repeats: int) -> list[dict]:
    """Time the generator against its references; one dict per measurement."""
    fns: dict[str, Callable[[], object]] = {
        "ours_randn32": lambda: Generator(SEED).randn(LARGE),
        "numpy_normal32": lambda: np.random.default_rng(SEED).standard_normal(LARGE, dtype=np.float32),
        "ours_rand32": lambda: Generator(SEED).rand(LARGE),
        "ours_randn64": lambda: Generator(SEED).randn(MEDIUM, dtype=np.float64),
    }
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:

        def torch_randn(size: int, dtype: object) -> object:
            torch.manual_seed(SEED)
            return torch.randn(size, dtype=dtype)

        def torch_rand(size: int) -> object:
            torch.manual_seed(SEED)
            return torch.rand(size)

        fns["torch_randn32"] = lambda: torch_randn(LARGE, torch.float32)
        fns["torch_rand32"] = lambda: torch_rand(LARGE)
        fns["torch_randn64"] = lambda: torch_randn(MEDIUM, torch.float64)

    medians = interleaved_medians(fns, repeats)
    rows = []
    if torch is not None:
        rows.append(
            _row(
                "randn float32 1e7 vs torch.randn",
                "torch.randn",
                medians["ours_randn32"],
                medians["torch_randn32"],
                target="<= 20",
            )
        )
    rows.append(
        _row(
            "randn float32 1e7 vs numpy standard_normal",
            "numpy.random.Generator.standard_normal",
            medians["ours_randn32"],
            medians["numpy_normal32"],
        )
    )
    if torch is not None:
        rows.append(
            _row("rand float32 1e7 vs torch.rand", "torch.rand", medians["ours_rand32"], medians["torch_rand32"])
        )
        rows.append(
            _row("randn float64 1e6 vs torch.randn", "torch.randn", medians["ours_randn64"], medians["torch_randn64"])
        )
    return rows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for row in run(args.repeats):
        print(
            f"{row['name']:<45} ratio {row['ratio']:7.2f}  "
            f"ours {row['median_s'] * 1e3:8.1f} ms  {row['reference']} {row['reference_median_s'] * 1e3:8.1f} ms"
        )
