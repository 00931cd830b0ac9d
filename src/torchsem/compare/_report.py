"""``torchsem compare``: run the catalogue against the oracle and print the verdicts."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ._oracle import get_oracle
from ._result import ScenarioResult, run_scenario
from ._scenario import Scenario, catalogue


def _select(args: argparse.Namespace) -> list[Scenario]:
    if args.only:
        chosen: list[Scenario] = []
        for name in args.only:
            found = catalogue(name)
            if not found:
                raise KeyError(name)
            chosen.extend(s for s in found if s not in chosen)
        return chosen
    return catalogue(report_only=not args.all)


def _table(results: list[ScenarioResult]) -> str:
    rows = [("verdict", "scenario", "max abs", "max rel", "mapping")]
    for r in results:
        rows.append(("agree" if r.ok else "DIFFER", r.scenario.name, f"{r.max_abs:.2e}", f"{r.max_rel:.2e}", r.scenario.mapping))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


def run_report(args: argparse.Namespace) -> int:
    """Run the selected scenarios and print the report; 0 when all agree, 1 otherwise, 2 on bad arguments."""
    try:
        scenarios = _select(args)
    except KeyError as err:
        print(f"torchsem compare: no scenario or family named {err.args[0]!r} (see --list)", file=sys.stderr)
        return 2
    if args.list:
        for s in scenarios:
            print(f"{s.name:50s} {s.section}")
        return 0
    try:
        oracle = get_oracle(args.oracle)
    except (RuntimeError, ValueError) as err:
        print(f"torchsem compare: {err}", file=sys.stderr)
        return 2
    print(f"oracle: {oracle.describe(scenarios)}", file=sys.stderr)
    start = time.perf_counter()
    results = []
    for s in scenarios:
        results.append(run_scenario(s, oracle, jit=args.jit))
    elapsed = time.perf_counter() - start
    if args.format == "json":
        print(json.dumps([{"name": r.scenario.name, "ok": r.ok, "max_abs": r.max_abs, "max_rel": r.max_rel} for r in results], indent=2))
    else:
        print(_table(results))
    for r in results:
        if not r.ok:
            print(r.explain(), file=sys.stderr)
    print(f"{sum(r.ok for r in results)} of {len(results)} agree ({elapsed:.1f} s)", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1
