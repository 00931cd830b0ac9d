"""Run every benchmark in this folder and print a table of ratios (each against its reference
run in the same process), with a JSON copy of the results.

    python benchmarks/run.py [--repeats N] [--only NAME] [--json PATH]

Each ``bench_<topic>.py`` module defines ``run(repeats: int) -> list[dict]``; a dict holds
``name``, ``ratio``, ``reference`` (what the ratio is against), ``median_s``,
``reference_median_s`` and optional extra fields. Ratios, not seconds, are the claims:
both sides run in the same process on the same machine, medians after warm-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _environment() -> dict:
    import jax
    import numpy

    env = {
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "numpy": numpy.__version__,
    }
    for name in ("flax", "optax", "torch"):
        try:
            env[name] = importlib.import_module(name).__version__
        except ImportError:
            env[name] = "absent"
    return env


def _modules(only: list[str] | None) -> list[Path]:
    paths = sorted(HERE.glob("bench_*.py"))
    if only:
        paths = [p for p in paths if p.stem.removeprefix("bench_") in only or p.stem in only]
    return paths


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(HERE))
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (median reported)")
    parser.add_argument("--only", action="append", help="run only this benchmark (e.g. batchnorm); repeatable")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="where to write the JSON copy")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")

    env = _environment()
    print("torchsem benchmarks: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    results: list[dict] = []
    for path in _modules(args.only):
        start = time.perf_counter()
        rows = _load(path).run(args.repeats)
        for row in rows:
            row.setdefault("benchmark", path.stem.removeprefix("bench_"))
        results.extend(rows)
        print(f"  {path.stem}: {len(rows)} measurements in {time.perf_counter() - start:.1f} s", file=sys.stderr)

    header = ("benchmark", "measurement", "ratio", "reference", "median", "ref median")
    table = [header] + [
        (
            r["benchmark"],
            r["name"],
            f"{r['ratio']:.3f}" if isinstance(r.get("ratio"), (int, float)) else str(r.get("ratio")),
            str(r.get("reference", "")),
            f"{r['median_s'] * 1e3:.3f} ms" if "median_s" in r else "",
            f"{r['reference_median_s'] * 1e3:.3f} ms" if "reference_median_s" in r else "",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    args.json.write_text(json.dumps({"environment": env, "results": results}, indent=2, default=str))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
