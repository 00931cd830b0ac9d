"""``torchsem compare``: the catalogue run against PyTorch, shown as PyTorch | torchsem | plain JAX.

:func:`run_catalogue` runs scenarios against an oracle and returns a :class:`Report`;
:func:`render_table`, :func:`render_markdown` and :func:`render_json` print it. The pytest
parity suite judges the same scenarios' outputs with the same :func:`judge` and the same
tolerances, so the report and the tests cannot disagree.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TextIO

import numpy as np

from ._format import format_cell, format_like_torch, format_value
from ._oracle import RecordedOracle, get_oracle
from ._outputs import OutputValue, Outputs
from ._result import OutputComparison, ScenarioResult, compare_output, judge
from ._scenario import Scenario, catalogue
from ._store import RecordedStore, RecordingMissing

EXIT_AGREE, EXIT_DISAGREE, EXIT_USAGE = 0, 1, 2
PROGRESS_AFTER_S = 1.0
"""Progress lines appear once a run has taken this long (short runs print only the report)."""

_VALUE_WIDTH = 40


@dataclasses.dataclass(frozen=True)
class PlainJax:
    """What plain JAX/Flax/Optax gives for an entry (the pitfall), set against PyTorch; never judged.

    Attributes:
      outputs: the plain JAX program's outputs (empty when it raised).
      comparisons: plain JAX against PyTorch for every name both have, under the entry's tolerances.
      error: the last line of the exception when the plain program raised, else None.
    """

    outputs: Outputs
    comparisons: tuple[OutputComparison, ...]
    error: str | None

    @property
    def differs(self) -> bool:
        """Whether plain JAX disagrees with PyTorch anywhere (the pitfall shows)."""
        return self.error is not None or any(not c.ok for c in self.comparisons)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One catalogue entry's result: the judged torchsem outputs, and plain JAX where the scenario has it."""

    result: ScenarioResult
    plain: PlainJax | None = None
    oracle_error: str | None = None

    @property
    def scenario(self) -> Scenario:
        return self.result.scenario

    @property
    def ok(self) -> bool:
        return self.oracle_error is None and self.result.ok

    @property
    def verdict(self) -> str:
        return "agree" if self.ok else "DIFFER"


@dataclasses.dataclass(frozen=True)
class Report:
    """A whole ``torchsem compare`` run: the oracle, every entry, the wall time."""

    entries: tuple[Entry, ...]
    oracle_mode: str
    oracle_description: str
    recorded_torch_versions: tuple[str, ...]
    jit: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)

    @property
    def agreeing(self) -> int:
        return sum(e.ok for e in self.entries)

    @property
    def exit_status(self) -> int:
        """0 when every entry agrees with PyTorch, 1 otherwise."""
        return EXIT_AGREE if self.ok else EXIT_DISAGREE

    def headline(self) -> str:
        jax_version = _jax_version()
        oracle = self.oracle_description
        if self.oracle_mode == "live":
            recorded = ", ".join(self.recorded_torch_versions)
            oracle += (f" (the recordings shipped for users without PyTorch come from PyTorch {recorded})" if recorded
                       else " (no recordings shipped for these entries)")
        return f"oracle: {oracle}; JAX {jax_version}, {'jit' if self.jit else 'eager'}"


def _jax_version() -> str:
    import jax

    return str(jax.__version__)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def _plain_outputs(scenario: Scenario) -> tuple[Outputs, str | None]:
    try:
        return scenario.run_plain_jax() or {}, None
    except Exception:  # a plain program that raises is itself the pitfall's evidence
        return {}, _last_line(traceback.format_exc())


def _run_plain(scenario: Scenario, expected: Outputs, ready: Future | None = None) -> PlainJax | None:
    """Plain JAX against PyTorch; ``ready`` is a future of :func:`_plain_outputs` already under way."""
    if scenario.plain_jax_program is None:
        return None
    outputs, error = ready.result() if ready is not None else _plain_outputs(scenario)
    if error is not None:
        return PlainJax({}, (), error)
    comparisons = tuple(
        compare_output(name, expected[name], outputs[name], scenario.tolerance_for(name))
        for name in outputs if name in expected
    )
    return PlainJax(outputs, comparisons, None)


def run_entry(scenario: Scenario, oracle, *, jit: bool = False, plain: bool = True,
              plain_ready: Future | None = None) -> Entry:
    """Judge one scenario against the oracle, as the parity suite's :func:`run_scenario` does, and set its
    plain JAX program's outputs against PyTorch's.

    The JAX program runs before PyTorch's outputs are asked for, so that an oracle computing them in
    the background (:class:`PrefetchingOracle`) overlaps with it.

    Args:
      plain: whether to run the plain JAX program (when the scenario has one).
      plain_ready: a future of its outputs already under way in another thread, if any.
    """
    start = time.perf_counter()
    try:
        actual = scenario.run_jax(jit)
        error = None
    except Exception:  # a crashing JAX program is a disagreement, shown with its traceback
        actual, error = {}, traceback.format_exc(limit=6)
    try:
        expected = oracle.outputs(scenario)
    except Exception as err:  # a missing recording or a crashing PyTorch program: no verdict possible
        message = str(err) if isinstance(err, RecordingMissing) else _last_line(traceback.format_exc())
        result = judge(scenario, {}, actual, oracle=oracle.mode, jit=jit, error=message,
                       seconds=time.perf_counter() - start)
        return Entry(result, None, f"PyTorch's outputs are unavailable: {message}")
    result = judge(scenario, expected, actual, oracle=oracle.mode, jit=jit, error=error,
                   seconds=time.perf_counter() - start)
    return Entry(result, _run_plain(scenario, expected, plain_ready) if plain else None)


class PrefetchingOracle:
    """A live oracle whose PyTorch programs run in one background thread, in catalogue order.

    PyTorch's programs (and ``import torch``) then overlap with the JAX programs, whose time is
    mostly XLA compilation outside the GIL. Answers are the wrapped oracle's, unchanged.
    """

    def __init__(self, oracle, scenarios: Sequence[Scenario]) -> None:
        self.oracle = oracle
        self.mode = oracle.mode
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torchsem-pytorch")
        self._futures = {s.name: self._executor.submit(oracle.outputs, s) for s in scenarios}

    def outputs(self, scenario: Scenario) -> Outputs:
        future = self._futures.get(scenario.name)
        return future.result() if future is not None else self.oracle.outputs(scenario)

    def describe(self, scenarios: Iterable[Scenario] = ()) -> str:
        return self.oracle.describe(scenarios)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class Progress:
    """Per-entry progress lines on a stream, shown only once the run has taken over ``after_s`` seconds.

    Lines for entries finished before that are held back and printed together when the threshold
    passes, so a fast run prints nothing and a slow one shows every entry. When an entry is still
    running at the threshold (the first one compiles most of what the rest reuse), a timer says so
    rather than leaving the terminal silent.
    """

    def __init__(self, total: int, stream: TextIO | None = None, after_s: float = PROGRESS_AFTER_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.after_s = after_s
        self.clock = clock
        self.start = clock()
        self.done = 0
        self.showing = False
        self._held: list[str] = []
        self._running: str | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def _count(self, n: int) -> str:
        return f"[{n:>{len(str(self.total))}}/{self.total}]"

    def _show(self) -> None:
        self.showing = True
        for held in self._held:
            print(held, file=self.stream)
        self._held.clear()

    def begin(self, name: str) -> None:
        """An entry starts; the first call arms the timer that announces a slow start."""
        with self._lock:
            self._running = name
            if self._timer is None and not self.showing:
                self._timer = threading.Timer(self.after_s, self._announce)
                self._timer.daemon = True
                self._timer.start()

    def _announce(self) -> None:
        with self._lock:
            if self.showing or self._running is None:
                return
            self._show()
            print(f"{self._count(self.done + 1)} running {self._running} ...", file=self.stream, flush=True)

    def __call__(self, entry: Entry) -> None:
        with self._lock:
            self.done += 1
            self._running = None
            line = f"{self._count(self.done)} {entry.verdict:<6} {entry.scenario.name} ({entry.result.seconds:.2f} s)"
            if not self.showing and self.clock() - self.start > self.after_s:
                self._show()
            if self.showing:
                print(line, file=self.stream, flush=True)
            else:
                self._held.append(line)

    def close(self) -> None:
        """Stop the timer (the run is over)."""
        with self._lock:
            self._running = None
            if self._timer is not None:
                self._timer.cancel()


def _recorded_versions(scenarios: Iterable[Scenario], oracle) -> tuple[str, ...]:
    store = oracle.store if isinstance(oracle, RecordedOracle) else RecordedStore()
    versions = set()
    for family in sorted({s.family for s in scenarios}):
        try:
            versions.add(store.torch_version(family))
        except (RecordingMissing, OSError, KeyError, ValueError):
            continue
    return tuple(sorted(versions))


def run_catalogue(scenarios: Sequence[Scenario], oracle, *, jit: bool = False, plain: bool = True,
                  progress: Callable[[Entry], None] | None = None) -> Report:
    """Run every scenario against the oracle; ``progress`` is called after each entry.

    With a live oracle the PyTorch programs run in a background thread (:class:`PrefetchingOracle`),
    and the plain JAX programs in another, so that their work overlaps the judged JAX programs'.
    A ``progress`` with ``begin(name)``/``close()`` (:class:`Progress`) is told when entries start.
    """
    start = time.perf_counter()
    source = PrefetchingOracle(oracle, scenarios) if oracle.mode == "live" else oracle
    # The plain JAX programs are never judged against torchsem's, so they can compile in parallel.
    plain_runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torchsem-plain-jax") if plain else None
    plain_futures = {s.name: plain_runner.submit(_plain_outputs, s)
                     for s in scenarios if plain_runner is not None and s.plain_jax_program is not None}
    entries = []
    try:
        for scenario in scenarios:
            if hasattr(progress, "begin"):
                progress.begin(scenario.name)
            entry = run_entry(scenario, source, jit=jit, plain=plain, plain_ready=plain_futures.get(scenario.name))
            entries.append(entry)
            if progress is not None:
                progress(entry)
    finally:
        if hasattr(progress, "close"):
            progress.close()
        if isinstance(source, PrefetchingOracle):
            source.close()
        if plain_runner is not None:
            plain_runner.shutdown(wait=True, cancel_futures=True)
    return Report(
        entries=tuple(entries),
        oracle_mode=oracle.mode,
        oracle_description=_describe(oracle, scenarios),
        recorded_torch_versions=_recorded_versions(scenarios, oracle),
        jit=jit,
        seconds=time.perf_counter() - start,
    )


def _describe(oracle, scenarios: Sequence[Scenario]) -> str:
    if not isinstance(oracle, RecordedOracle):
        return oracle.describe(scenarios)
    versions, missing = set(), []
    for family in sorted({s.family for s in scenarios}):
        try:
            versions.add(oracle.store.torch_version(family))
        except (RecordingMissing, OSError, KeyError, ValueError):
            missing.append(family)
    text = f"recorded outputs of PyTorch {', '.join(sorted(versions)) or '(none)'} ({oracle.store.directory})"
    return text + (f"; no recording for {', '.join(missing)}" if missing else "")


# ----------------------------------------------------------------------------------------- table

def _number(x: float) -> str:
    if x == 0:
        return "0"
    if x == float("inf"):
        return "inf"
    return f"{x:.1e}"


def _tolerance_text(c: OutputComparison) -> str:
    value = c.expected if c.expected is not None else c.actual
    if value is None or isinstance(value, str) or value.dtype.kind in "biu":
        return "exact"
    if c.tolerance.rtol == 0 and c.tolerance.atol == 0:
        return "bit-exact"
    return f"rtol {c.tolerance.rtol:g}, atol {c.tolerance.atol:g}"


def _differences(c: OutputComparison) -> tuple[str, str]:
    value = c.expected
    exact_kind = value is None or isinstance(value, str) or value.dtype.kind in "biu"
    if exact_kind and c.ok:
        return "-", "-"
    return _number(c.max_abs), _number(c.max_rel)


def _aligned(rows: list[tuple[str, ...]], indent: str) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _quantity_rows(entry: Entry, width: int) -> list[tuple[str, ...]]:
    result = entry.result
    rows: list[tuple[str, ...]] = [("quantity", "PyTorch", "torchsem", "max abs", "max rel", "tolerance", "")]
    for c in result.comparisons:
        abs_text, rel_text = _differences(c)
        rows.append((c.name, format_cell(c.expected, width), format_cell(c.actual, width), abs_text, rel_text,
                     _tolerance_text(c), "ok" if c.ok else "DIFFERS"))
    for name in result.missing:
        rows.append((name, format_cell(result.torch_outputs[name], width), "(not returned)", "", "", "", "DIFFERS"))
    for name in result.unexpected:
        rows.append((name, "(not returned)", format_cell(result.jax_outputs[name], width), "", "", "", "DIFFERS"))
    return rows


def _tolerance_notes(entry: Entry) -> list[str]:
    by_reason: dict[str, list[str]] = {}
    for c in entry.result.comparisons:
        if c.tolerance.reason not in ("float32 default", "scenario default") and _tolerance_text(c) != "exact":
            by_reason.setdefault(c.tolerance.reason, []).append(c.name)
    return [f"{', '.join(names)}: {reason}" for reason, names in by_reason.items()]


def _plain_lines(entry: Entry, width: int, indent: str) -> list[str]:
    plain = entry.plain
    if plain is None:
        return []
    scenario = entry.scenario
    head = "plain JAX (not judged): " + (scenario.pitfall or "the same behaviour written with plain JAX/Flax/Optax.")
    lines = textwrap.wrap(head, width=110, initial_indent=indent, subsequent_indent=indent + "  ")
    if plain.error is not None:
        lines.append(f"{indent}  plain JAX raised: {plain.error}")
    rows: list[tuple[str, ...]] = []
    for c in plain.comparisons:
        if not c.ok:
            rows.append((c.name, format_cell(c.actual, width), f"PyTorch: {format_cell(c.expected, width)}",
                         f"max abs {_number(c.max_abs)}, max rel {_number(c.max_rel)}" if np.isfinite(c.max_abs)
                         else "differs"))
    shown = {c.name for c in plain.comparisons}
    for name, value in plain.outputs.items():
        if name not in shown:
            rows.append((name, format_cell(value, width), "(PyTorch has no such output)", ""))
    if rows:
        lines.extend(_aligned(rows, indent + "  "))
    elif plain.error is None:
        lines.append(f"{indent}  (plain JAX agrees with PyTorch on every quantity it returns)")
    return lines


def _full_values(entry: Entry, width: int, indent: str) -> list[str]:
    lines: list[str] = []
    pad = indent + "    "
    for c in entry.result.comparisons:
        cut = any(isinstance(v, np.ndarray) and format_cell(v, width) != format_value(v) for v in (c.expected, c.actual))
        if not cut:
            continue
        lines.append(f"{indent}  {c.name}")
        for side, value in (("PyTorch ", c.expected), ("torchsem", c.actual)):
            text = format_like_torch(value).replace("\n", "\n" + pad + " " * 9)
            lines.append(f"{pad}{side} {text}")
    return lines


def _entry_block(entry: Entry, width: int, full: bool) -> list[str]:
    scenario = entry.scenario
    indent = "        "
    lines = [f"{entry.verdict:<6}  {scenario.name}  ({scenario.section})", f"{indent}{scenario.mapping}"]
    if entry.oracle_error is not None:
        lines.append(f"{indent}{entry.oracle_error}")
        return lines
    if entry.result.error is not None:
        lines.append(f"{indent}the JAX program raised: {_last_line(entry.result.error)}")
    lines.extend(_aligned(_quantity_rows(entry, width), indent))
    for c in entry.result.comparisons:
        if not c.ok:
            lines.append(f"{indent}{c.name}: {c.detail}")
    notes = _tolerance_notes(entry)
    if notes:
        lines.extend(f"{indent}tolerance of {note}" for note in notes)
    if scenario.notes:
        lines.extend(textwrap.wrap("note: " + scenario.notes, width=110, initial_indent=indent,
                                   subsequent_indent=indent + "  "))
    if full:
        lines.extend(_full_values(entry, width, indent))
    lines.extend(_plain_lines(entry, width, indent))
    return lines


def _summary_rows(report: Report) -> list[str]:
    rows: list[tuple[str, ...]] = [("verdict", "entry", "quantities", "max abs", "max rel", "plain JAX")]
    for e in report.entries:
        plain = "-" if e.plain is None else ("differs (pitfall shown)" if e.plain.differs else "agrees")
        rows.append((e.verdict, e.scenario.name, str(len(e.result.comparisons)), _number(e.result.max_abs),
                     _number(e.result.max_rel), plain))
    return _aligned(rows, "")


def _footer(report: Report) -> str:
    text = f"{report.agreeing} of {len(report.entries)} entries agree with PyTorch"
    differing = [e.scenario.name for e in report.entries if not e.ok]
    if differing:
        shown = ", ".join(differing[:5]) + (f" and {len(differing) - 5} more" if len(differing) > 5 else "")
        text += f"; {len(differing)} DIFFER: {shown}"
    return f"{text} ({report.seconds:.1f} s)"


def render_table(report: Report, *, full: bool = False, details: bool = True) -> str:
    """The default report: a block per entry (PyTorch | torchsem per quantity, plain JAX), then a summary.

    Args:
      full: print whole arrays under each entry, as PyTorch prints them, where the columns cut them.
      details: blocks for report entries and every disagreement; False prints only the summary.
    """
    lines = ["torchsem compare: PyTorch and torchsem on the same inputs and starting weights", report.headline(), ""]
    if details:
        for e in report.entries:
            if e.scenario.in_report or not e.ok:
                lines.extend(_entry_block(e, _VALUE_WIDTH, full))
                lines.append("")
    lines.extend(_summary_rows(report))
    lines.append("")
    lines.append(_footer(report))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- markdown

def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_code(value: OutputValue) -> str:
    return f"`{_md(format_cell(value, 160))}`"


def render_markdown(report: Report) -> str:
    """The report as GitHub markdown: a summary table, then a table per entry."""
    lines = ["# torchsem compare", "", f"{_md(report.headline())}. {_footer(report)}.", "",
             "| verdict | entry | section | mapping | max abs | max rel |", "| --- | --- | --- | --- | --- | --- |"]
    for e in report.entries:
        lines.append(f"| {e.verdict} | `{e.scenario.name}` | {_md(e.scenario.section)} | {_md(e.scenario.mapping)} | "
                     f"{_number(e.result.max_abs)} | {_number(e.result.max_rel)} |")
    for e in report.entries:
        if not (e.scenario.in_report or not e.ok):
            continue
        s = e.scenario
        lines += ["", f"## `{s.name}`: {e.verdict}", "", f"{_md(s.section)}. Mapping: {_md(s.mapping)}", ""]
        if e.oracle_error is not None:
            lines += [_md(e.oracle_error)]
            continue
        if e.result.error is not None:
            lines += [f"The JAX program raised: `{_md(_last_line(e.result.error))}`", ""]
        plain = {c.name: c for c in e.plain.comparisons} if e.plain is not None else None
        header = "| quantity | PyTorch | torchsem | max abs | max rel | tolerance | verdict |"
        if plain is not None:
            header = header.replace("| torchsem |", "| torchsem | plain JAX (not judged) |")
        columns = header.count(" | ") + 1
        lines += [header, "|" + " --- |" * columns]
        for c in e.result.comparisons:
            abs_text, rel_text = _differences(c)
            cells = [f"`{_md(c.name)}`", _md_code(c.expected), _md_code(c.actual)]
            if plain is not None:
                pc = plain.get(c.name)
                cells.append("" if pc is None else _md_code(pc.actual) + ("" if pc.ok else " (differs)"))
            cells += [abs_text, rel_text, _tolerance_text(c), "ok" if c.ok else "**DIFFERS**"]
            lines.append("| " + " | ".join(cells) + " |")
        for name in e.result.missing + e.result.unexpected:
            lines.append(f"| `{_md(name)}` | returned by one side only |" + " |" * (columns - 3) + " **DIFFERS** |")
        for note in _tolerance_notes(e):
            lines += ["", f"Tolerance of {_md(note)}."]
        if s.notes:
            lines += ["", f"Note: {_md(s.notes)}"]
        if e.plain is not None and s.pitfall:
            lines += ["", f"> Pitfall: {_md(s.pitfall)}"]
        if e.plain is not None and e.plain.error is not None:
            lines += ["", f"> Plain JAX raised: `{_md(e.plain.error)}`"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ json

def _json_value(value: OutputValue) -> Any:
    if value is None or isinstance(value, str):
        return value
    if value.dtype.kind == "f":
        as_object = value.astype(object)
        flat = as_object.reshape(-1)
        for i, x in enumerate(flat):
            if not np.isfinite(x):
                flat[i] = str(float(x))
            else:
                flat[i] = float(x)
        return as_object.reshape(value.shape).tolist()
    return value.tolist()


def _json_number(x: float) -> float | str:
    return x if np.isfinite(x) else str(x)


def _value_meta(value: OutputValue) -> dict[str, Any]:
    if value is None:
        return {"type": "None"}
    if isinstance(value, str):
        return {"type": "str"}
    return {"type": "array", "dtype": str(value.dtype), "shape": list(value.shape)}


def report_as_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-able data (arrays as nested lists, non-finite floats as strings)."""
    from .._version import __version__

    entries = []
    for e in report.entries:
        r = e.result
        outputs = [{
            "name": c.name, "pytorch": _json_value(c.expected), "torchsem": _json_value(c.actual),
            **_value_meta(c.expected), "max_abs": _json_number(c.max_abs), "max_rel": _json_number(c.max_rel),
            "rtol": c.tolerance.rtol, "atol": c.tolerance.atol, "tolerance_reason": c.tolerance.reason,
            "ok": c.ok, "detail": c.detail,
        } for c in r.comparisons]
        plain = None
        if e.plain is not None:
            plain = {
                "error": e.plain.error,
                "differs_from_pytorch": e.plain.differs,
                "outputs": [{"name": c.name, "value": _json_value(c.actual), "agrees_with_pytorch": c.ok,
                             "max_abs": _json_number(c.max_abs), "max_rel": _json_number(c.max_rel)}
                            for c in e.plain.comparisons],
            }
        entries.append({
            "name": e.scenario.name, "section": e.scenario.section, "mapping": e.scenario.mapping,
            "pitfall": e.scenario.pitfall, "verdict": e.verdict.lower(), "ok": e.ok,
            "max_abs": _json_number(r.max_abs), "max_rel": _json_number(r.max_rel), "seconds": r.seconds,
            "error": e.oracle_error or r.error, "missing": list(r.missing), "unexpected": list(r.unexpected),
            "outputs": outputs, "plain_jax": plain,
        })
    return {
        "torchsem": __version__,
        "oracle": {"mode": report.oracle_mode, "description": report.oracle_description,
                   "recorded_torch_versions": list(report.recorded_torch_versions)},
        "jax": _jax_version(), "jit": report.jit, "seconds": report.seconds,
        "ok": report.ok, "agree": report.agreeing, "total": len(report.entries), "entries": entries,
    }


def render_json(report: Report) -> str:
    """The report as JSON (see :func:`report_as_dict`)."""
    return json.dumps(report_as_dict(report), indent=2)


# ------------------------------------------------------------------------------------------- CLI

def select(only: Sequence[str] | None, include_all: bool = False) -> list[Scenario]:
    """The scenarios ``--only`` names (a scenario or a family, in the order given), else the catalogue.

    Raises:
      KeyError: with the first name that matches nothing.
    """
    if only:
        chosen: list[Scenario] = []
        for name in only:
            found = catalogue(name)
            if not found:
                raise KeyError(name)
            chosen.extend(s for s in found if s not in chosen)
        return chosen
    return catalogue(report_only=not include_all)


def _render_list(scenarios: Sequence[Scenario], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{"name": s.name, "section": s.section, "mapping": s.mapping, "in_report": s.in_report,
                            "pitfall": s.pitfall} for s in scenarios], indent=2)
    if fmt == "markdown":
        rows = ["| entry | section | mapping |", "| --- | --- | --- |"]
        rows += [f"| `{s.name}` | {_md(s.section)} | {_md(s.mapping)} |" for s in scenarios]
        return "\n".join(rows)
    if not scenarios:
        return "(no scenarios)"
    return "\n".join(_aligned([("entry", "section", "mapping")] + [(s.name, s.section, s.mapping) for s in scenarios], ""))


def run_report(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``torchsem compare``: 0 when every entry agrees, 1 when one disagrees, 2 on bad arguments."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        scenarios = select(args.only, args.all)
    except KeyError as missing:
        print(f"torchsem compare: no scenario or family named {missing.args[0]!r} (see `torchsem compare --list`)",
              file=err)
        return EXIT_USAGE
    if args.list:
        print(_render_list(scenarios, args.format), file=out)
        return EXIT_AGREE
    if not scenarios:
        print("torchsem compare: no scenarios are registered", file=err)
        return EXIT_USAGE
    try:
        oracle = get_oracle(args.oracle)
    except (RuntimeError, ValueError) as problem:
        print(f"torchsem compare: {problem}", file=err)
        return EXIT_USAGE
    progress = Progress(len(scenarios), err)
    report = run_catalogue(scenarios, oracle, jit=args.jit, progress=progress)
    if args.format == "json":
        print(render_json(report), file=out)
    elif args.format == "markdown":
        print(render_markdown(report), file=out, end="")
    else:
        print(render_table(report, full=getattr(args, "full", False)), file=out)
    for e in report.entries:
        if not e.ok and e.result.error is not None and e.oracle_error is None:
            print(e.result.explain(), file=err)
    if args.format != "table":
        print(_footer(report), file=err)
    return report.exit_status


__all__ = [
    "EXIT_AGREE", "EXIT_DISAGREE", "EXIT_USAGE", "Entry", "PlainJax", "Progress", "Report", "render_json",
    "render_markdown", "render_table", "report_as_dict", "run_catalogue", "run_entry", "run_report", "select",
]
