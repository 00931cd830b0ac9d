"""The ``torchsem`` command: ``compare`` (the report), ``record`` (the oracle's files), ``--version``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._version import __version__


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchsem",
        description="PyTorch semantics reproduced exactly in JAX: compare PyTorch and torchsem side by side.",
    )
    parser.add_argument("--version", action="version", version=f"torchsem {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    compare = commands.add_parser("compare", help="run the catalogue of document behaviours against PyTorch and report")
    compare.add_argument("--oracle", choices=("auto", "live", "recorded"), default=None,
                         help="where PyTorch's outputs come from (default: $TORCHSEM_ORACLE or auto: live when torch is importable)")
    compare.add_argument("--only", metavar="NAME", action="append", default=None,
                         help="run only this scenario or family (repeatable)")
    compare.add_argument("--all", action="store_true", help="also run the parity-grid scenarios, not only the document's")
    compare.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    compare.add_argument("--list", action="store_true", help="list the scenarios and exit")
    compare.add_argument("--jit", action="store_true", help="run the JAX programs under jax.jit")

    record = commands.add_parser("record", help="run every PyTorch program and write the recorded outputs (needs torch)")
    record.add_argument("--only", metavar="FAMILY", action="append", default=None,
                        help="record only this family (repeatable)")
    record.add_argument("--dir", type=Path, default=None, help="where to write (default: the package's recorded/ folder)")
    return parser


def _record(args: argparse.Namespace) -> int:
    from .compare import catalogue, record, torch_available

    if not torch_available():
        print("torchsem record: PyTorch is not importable; install it with `pip install torch==2.13.0`", file=sys.stderr)
        return 2
    scenarios = catalogue()
    if args.only:
        families = set(args.only)
        unknown = families - {s.family for s in scenarios}
        if unknown:
            print(f"torchsem record: no family named {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        scenarios = [s for s in scenarios if s.family in families]
    for path in record(scenarios, args.dir):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 agree, 1 disagree, 2 bad arguments)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command == "record":
        return _record(args)
    if args.command == "compare":
        from .compare._report import run_report

        return run_report(args)
    parser.print_help()
    return 0
