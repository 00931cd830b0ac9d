"""The ``torchsem`` command: ``compare`` (the report), ``record``, ``check-port``, ``port``, ``--version``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from .compare import Scenario


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchsem",
        description="PyTorch semantics reproduced exactly in JAX: compare PyTorch and torchsem side by side.",
    )
    parser.add_argument("--version", action="version", version=f"torchsem {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    compare = commands.add_parser(
        "compare",
        help="run the document's behaviours in PyTorch and in JAX and show them side by side",
        description="Run each behaviour of the source document in PyTorch and in JAX (torchsem) on the same inputs "
        "and starting weights, and show both with their differences; where plain JAX/Flax/Optax behaves "
        "differently by design, show that too. Exit status: 0 when every entry agrees with PyTorch, "
        "1 when one disagrees, 2 on bad arguments. Compiled programs are cached between runs in "
        "$TORCHSEM_CACHE_DIR (default ~/.cache/torchsem/jax; TORCHSEM_CACHE_DIR=off disables).",
    )
    compare.add_argument(
        "--oracle",
        choices=("auto", "live", "recorded"),
        default=None,
        help="where PyTorch's outputs come from: live (run PyTorch here), recorded (the outputs "
        "shipped in the package), auto (live when torch is importable; the default, "
        "or $TORCHSEM_ORACLE)",
    )
    compare.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        default=None,
        help="run only this entry or family, e.g. document/no-grad-error or document (repeatable)",
    )
    compare.add_argument(
        "--all", action="store_true", help="also run the parity-grid scenarios, not only the document's"
    )
    compare.add_argument(
        "--format",
        choices=("table", "markdown", "json"),
        default="table",
        help="table (aligned text, the default), markdown, or json",
    )
    compare.add_argument("--list", action="store_true", help="list the entries (name, section, mapping) and exit")
    compare.add_argument("--jit", action="store_true", help="run the JAX programs under jax.jit")
    compare.add_argument(
        "--full",
        action="store_true",
        help="table format: also print whole arrays, as PyTorch prints them, where columns cut them",
    )

    record = commands.add_parser(
        "record", help="run every PyTorch program and write the recorded outputs (needs torch)"
    )
    record.add_argument(
        "--only", metavar="FAMILY", action="append", default=None, help="record only this family (repeatable)"
    )
    record.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: the package's recorded/ folder)"
    )

    check = commands.add_parser(
        "check-port",
        help="check your own Flax port against its PyTorch module and name where it diverges (needs torch)",
        description="Import FACTORY from MODULE (a module name or a path to a .py file), call it, and run "
        "torchsem.compare.check_port with what it returns: a dict of check_port's arguments, at least "
        "torch_module, flax_module and inputs. Prints the first divergence, the table of the first divergent "
        "quantity per kind and, with --plot, writes the error per step as a PNG (torchsem[report]). "
        "Exit status: 0 when the port agrees, 1 when it differs, 2 on bad arguments.",
    )
    check.add_argument("target", metavar="MODULE:FACTORY", help="e.g. comparisons/plain_flax_port.py:make")
    check.add_argument("--steps", type=int, default=None, help="run this many train steps instead of the factory's")
    check.add_argument(
        "--stop-at-first", action="store_true", help="stop after the step of the first mismatch (default: run all)"
    )
    check.add_argument("--plot", type=Path, default=None, help="write the relative error per step to this PNG")
    check.add_argument("--jit", action="store_true", help="run the port's steps under jax.jit")
    check.add_argument(
        "--drift",
        type=float,
        default=None,
        metavar="K",
        help="judge float quantities against a float64 PyTorch run: at most K times float32 PyTorch's drift",
    )
    ported = commands.add_parser(
        "port",
        help="port a PyTorch module to Flax: print the generated source (and, with --check, check_port's summary)",
        description="Import FACTORY from MODULE (a module name or a path to a .py file) and call it; it returns "
        "(torch_module, example_inputs) or a dict with torch_module, inputs and any other check_port arguments. "
        "Runs torchsem.port.port on it and prints the generated Flax source (or writes it to --output). With "
        "--check, also runs check_port on the result and prints its summary and table. Exit status: 0 when the "
        "port is made (and agrees, with --check), 1 when the check finds a difference, 2 when the module cannot "
        "be ported or on bad arguments.",
    )
    ported.add_argument("target", metavar="MODULE:FACTORY", help="e.g. comparisons/port_resnet18.py:make")
    ported.add_argument("--check", action="store_true", help="run check_port on the result and print its summary")
    ported.add_argument("--steps", type=int, default=None, help="check_port's train steps (with --check)")
    ported.add_argument("--output", "-o", type=Path, default=None, help="write the source here instead of stdout")
    return parser


def load_factory(target: str):
    """The callable ``MODULE:FACTORY`` names: MODULE is an importable module or a path to a ``.py`` file.

    Raises:
      ValueError: ``target`` is not ``MODULE:FACTORY``, or the module has no such attribute.
    """
    import importlib
    import importlib.util

    module_name, sep, attribute = target.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected MODULE:FACTORY (e.g. comparisons/plain_flax_port.py:make), got {target!r}")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ValueError(f"no file {module_name!r}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"{module_name} has no callable {attribute!r}")
    return factory


def _check_port(args: argparse.Namespace) -> int:
    from .compare import check_port

    try:
        factory = load_factory(args.target)
        spec = dict(factory())
        missing = [k for k in ("torch_module", "flax_module", "inputs") if k not in spec]
        if missing:
            raise ValueError(
                f"the factory must return a dict with torch_module, flax_module and inputs; missing {missing}"
            )
    except (ImportError, ValueError, TypeError) as problem:
        print(f"torchsem check-port: {problem}", file=sys.stderr)
        return 2
    if args.steps is not None:
        if args.steps < 1:
            print(f"torchsem check-port: --steps must be >= 1, got {args.steps}", file=sys.stderr)
            return 2
        spec["steps"] = args.steps
        for key in ("inputs", "targets"):  # per-step lists: the first --steps entries
            if isinstance(spec.get(key), (list, tuple)) and len(spec[key]) >= args.steps:
                spec[key] = list(spec[key])[: args.steps]
    spec.setdefault("stop_at_first", args.stop_at_first)
    if args.jit:
        spec["jit"] = True
    if args.drift is not None:
        spec["drift"] = args.drift
    try:
        result = check_port(spec.pop("torch_module"), spec.pop("flax_module"), spec.pop("inputs"), **spec)
    except (ValueError, TypeError) as problem:
        print(f"torchsem check-port: {problem}", file=sys.stderr)
        return 2
    print(result.summary())
    print()
    print(result.table())
    if result.uncompared:
        print(f"\nnot compared (no counterpart in the port): {', '.join(result.uncompared)}")
    if args.plot is not None:
        print(f"\nwrote {result.plot(str(args.plot))}")
    return 0 if result.ok else 1


def _port(args: argparse.Namespace) -> int:
    from .port import PortError, port

    try:
        made = load_factory(args.target)()
        if isinstance(made, dict):
            spec = dict(made)
            torch_module, inputs = spec.pop("torch_module"), spec.pop("inputs")
        else:
            torch_module, inputs = made
            spec = {}
        if args.steps is not None:
            if args.steps < 1:
                raise ValueError(f"--steps must be >= 1, got {args.steps}")
            spec["steps"] = args.steps
        result = port(torch_module, inputs, check=args.check, check_kwargs=spec)
    except (ImportError, ValueError, TypeError, KeyError, PortError) as problem:
        print(f"torchsem port: {problem}", file=sys.stderr)
        return 2
    if args.output is not None:
        args.output.write_text(result.source)
        print(f"wrote {args.output} (class {result.class_name})")
    else:
        print(result.source, end="")
    if result.frozen:
        print(f"\n# frozen (requires_grad=False): {', '.join(result.frozen)}")
    if result.check is None:
        return 0
    print()
    print(result.check.summary())
    print()
    print(result.check.table())
    return 0 if result.check.ok else 1


def select(only: Sequence[str] | None, include_all: bool = False) -> list[Scenario]:
    """The scenarios ``--only`` names (a scenario or a family, in the order given), else the catalogue.

    Raises:
      KeyError: with the first name that matches nothing.
    """
    from .compare import catalogue

    if only:
        chosen: list[Scenario] = []
        for name in only:
            found = catalogue(name)
            if not found:
                raise KeyError(name)
            chosen.extend(s for s in found if s not in chosen)
        return chosen
    return catalogue(report_only=not include_all)


def _compare(args: argparse.Namespace) -> int:
    """``torchsem compare``: 0 when every entry agrees, 1 when one disagrees, 2 on bad arguments."""
    from .compare import get_oracle, run_catalogue
    from .compare._render import Progress, footer, render_json, render_list, render_markdown, render_table
    from .compare._report import EXIT_AGREE, EXIT_USAGE

    out, err = sys.stdout, sys.stderr
    try:
        scenarios = select(args.only, args.all)
    except KeyError as missing:
        print(
            f"torchsem compare: no scenario or family named {missing.args[0]!r} (see `torchsem compare --list`)",
            file=err,
        )
        return EXIT_USAGE
    if args.list:
        print(render_list(scenarios, args.format), file=out)
        return EXIT_AGREE
    if not scenarios:
        print("torchsem compare: no scenarios are registered", file=err)
        return EXIT_USAGE
    try:
        oracle = get_oracle(args.oracle)
    except (RuntimeError, ValueError) as problem:
        print(f"torchsem compare: {problem}", file=err)
        return EXIT_USAGE
    report = run_catalogue(scenarios, oracle, jit=args.jit, progress=Progress(len(scenarios), err))
    if args.format == "json":
        print(render_json(report), file=out)
    elif args.format == "markdown":
        print(render_markdown(report), file=out, end="")
    else:
        print(render_table(report, full=args.full), file=out)
    for e in report.entries:
        if not e.ok and e.result.error is not None and e.oracle_error is None:
            print(e.result.explain(), file=err)
    if args.format != "table":
        print(footer(report), file=err)
    return report.exit_status


def _record(args: argparse.Namespace) -> int:
    from .compare import catalogue, record, torch_available

    if not torch_available():
        print(
            "torchsem record: PyTorch is not importable; install it with `pip install torch==2.13.0`", file=sys.stderr
        )
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


_CACHE_OFF = ("off", "0", "no", "false", "none")


def compilation_cache_dir() -> Path | None:
    """Where ``torchsem compare`` keeps XLA's compiled programs between runs; None when switched off.

    ``$TORCHSEM_CACHE_DIR`` (``off`` disables), else ``$XDG_CACHE_HOME/torchsem/jax`` or
    ``~/.cache/torchsem/jax``.
    """
    setting = os.environ.get("TORCHSEM_CACHE_DIR", "").strip()
    if setting.lower() in _CACHE_OFF:
        return None
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "torchsem" / "jax"


def _enable_compilation_cache() -> None:
    """Use JAX's persistent compilation cache: compiling dominates a run, and the programs never change.

    A cache directory the user configured for JAX already wins; an unwritable one is skipped.
    """
    import jax

    # ignore: jax's Config exposes its options as dynamic attributes its type does not declare.
    if jax.config.jax_compilation_cache_dir:  # type: ignore[attr-defined]
        return
    directory = compilation_cache_dir()
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def main(argv: Sequence[str] | None = None, *, compilation_cache: bool | None = None) -> int:
    """Run the command line; returns the exit status (0 agree, 1 disagree, 2 bad arguments).

    Args:
      argv: the arguments (default ``sys.argv[1:]``).
      compilation_cache: keep compiled programs between ``compare`` runs (see
        :func:`compilation_cache_dir`); default: on for the installed command (``argv`` None),
        off when called with explicit arguments (tests, embedding).
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command == "record":
        return _record(args)
    if args.command == "check-port":
        return _check_port(args)
    if args.command == "port":
        return _port(args)
    if args.command == "compare":
        if (argv is None if compilation_cache is None else compilation_cache) and not args.list:
            _enable_compilation_cache()
        return _compare(args)
    parser.print_help()
    return 0
