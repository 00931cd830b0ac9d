"""``torchsem compare`` wall time, as a fresh user runs it, against issue 7's 30-second budget.

Each run is a new ``python -m torchsem compare`` process (imports, PyTorch, every JAX
compilation included), so the numbers are what a user waits for:

- ``live, cold``: live PyTorch oracle, no compilation cache (a first run on a fresh install);
- ``recorded, cold``: the recorded oracle (a user without PyTorch), no compilation cache;
- ``live, warm cache``: live oracle with JAX's persistent compilation cache filled by a warm-up run
  (every later run of the installed command).

The ratio is against the 30 s budget (below 1 is within it). Each run takes 5-30 s; the
machine's load changes the numbers a lot on 2 shared cores, so the load average is recorded.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

BUDGET_S = 30.0


def _run(oracle: str, cache_dir: str) -> float:
    env = {**os.environ, "TORCHSEM_CACHE_DIR": cache_dir}
    env.pop("TORCHSEM_ORACLE", None)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "torchsem", "compare", "--oracle", oracle], capture_output=True, text=True, env=env
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"torchsem compare --oracle {oracle} exited {done.returncode}:\n{done.stdout[-2000:]}"
            f"\n{done.stderr[-2000:]}"
        )
    return elapsed


def _measure(name: str, oracle: str, repeats: int, warm: bool) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        cache_dir = cache if warm else "off"
        _run(oracle, cache_dir)  # warm-up: page cache, and the compilation cache when warm
        times = [_run(oracle, cache_dir) for _ in range(repeats)]
    median = statistics.median(times)
    return {
        "name": name,
        "ratio": median / BUDGET_S,
        "reference": "issue 7's 30 s budget",
        "median_s": median,
        "reference_median_s": BUDGET_S,
        "runs_s": times,
        "load_average_1min": os.getloadavg()[0],
    }


def run(repeats: int = 7) -> list[dict]:
    from torchsem.compare import torch_available

    rows = []
    if torch_available():
        rows.append(_measure("torchsem compare, live PyTorch, cold", "live", repeats, warm=False))
    rows.append(_measure("torchsem compare, recorded, cold", "recorded", repeats, warm=False))
    if torch_available():
        rows.append(_measure("torchsem compare, live PyTorch, warm compilation cache", "live", repeats, warm=True))
    return rows


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(
            f"{row['name']}: median {row['median_s']:.1f} s = {row['ratio']:.2f} x the 30 s budget "
            f"(runs {', '.join(f'{t:.1f}' for t in row['runs_s'])}; load {row['load_average_1min']:.1f})"
        )
