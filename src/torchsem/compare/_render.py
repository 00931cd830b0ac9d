"""Printing a :class:`~torchsem.compare.Report`: the table, markdown, JSON, the entry list, progress lines.

:func:`render_table` is ``torchsem compare``'s default output (a block per entry: PyTorch |
torchsem per quantity, then plain JAX; a summary), :func:`render_markdown` the same as GitHub
markdown, :func:`render_json` every value and verdict as data. :class:`Progress` prints a line
per entry on stderr while a slow run is under way.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TextIO

import numpy as np

from ._format import format_cell, format_like_torch, format_value, last_line
from ._outputs import OutputValue
from ._report import Entry, Report, jax_version_text
from ._result import OutputComparison
from ._scenario import Scenario

PROGRESS_AFTER_S = 1.0
"""Progress lines appear once a run has taken this long (short runs print only the report)."""

_VALUE_WIDTH = 40


# ----------------------------------------------------------------------------------------- table


def _number(x: float) -> str:
    if x == 0:
        return "0"
    if x == float("inf"):
        return "inf"
    return f"{x:.1e}"


def _tolerance_text(c: OutputComparison) -> str:
    if c.exact:
        return "exact"
    if c.tolerance.rtol == 0 and c.tolerance.atol == 0:
        return "bit-exact"
    return f"rtol {c.tolerance.rtol:g}, atol {c.tolerance.atol:g}"


def _differences(c: OutputComparison) -> tuple[str, str]:
    if c.exact and c.ok:
        return "-", "-"
    return _number(c.max_abs), _number(c.max_rel)


def _aligned(rows: Sequence[tuple[str, ...]], indent: str) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _quantity_rows(entry: Entry, width: int) -> list[tuple[str, ...]]:
    result = entry.result
    rows: list[tuple[str, ...]] = [("quantity", "PyTorch", "torchsem", "max abs", "max rel", "tolerance", "")]
    for c in result.comparisons:
        abs_text, rel_text = _differences(c)
        rows.append(
            (
                c.name,
                format_cell(c.expected, width),
                format_cell(c.actual, width),
                abs_text,
                rel_text,
                _tolerance_text(c),
                "ok" if c.ok else "DIFFERS",
            )
        )
    for name in result.missing:
        rows.append((name, format_cell(result.torch_outputs[name], width), "(not returned)", "", "", "", "DIFFERS"))
    for name in result.unexpected:
        rows.append((name, "(not returned)", format_cell(result.jax_outputs[name], width), "", "", "", "DIFFERS"))
    return rows


def _tolerance_notes(entry: Entry) -> list[str]:
    """``names: reason`` for every tolerance a scenario states for its floating outputs."""
    by_reason: dict[str, list[str]] = {}
    for c in entry.result.comparisons:
        if not c.tolerance.is_default and not c.exact:
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
            rows.append(
                (
                    c.name,
                    format_cell(c.actual, width),
                    f"PyTorch: {format_cell(c.expected, width)}",
                    f"max abs {_number(c.max_abs)}, max rel {_number(c.max_rel)}"
                    if np.isfinite(c.max_abs)
                    else "differs",
                )
            )
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
        cut = any(
            isinstance(v, np.ndarray) and format_cell(v, width) != format_value(v) for v in (c.expected, c.actual)
        )
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
        lines.append(f"{indent}the JAX program raised: {last_line(entry.result.error)}")
    lines.extend(_aligned(_quantity_rows(entry, width), indent))
    for c in entry.result.comparisons:
        if not c.ok:
            lines.append(f"{indent}{c.name}: {c.detail}")
    notes = _tolerance_notes(entry)
    if notes:
        lines.extend(f"{indent}tolerance of {note}" for note in notes)
    if scenario.notes:
        lines.extend(
            textwrap.wrap("note: " + scenario.notes, width=110, initial_indent=indent, subsequent_indent=indent + "  ")
        )
    if full:
        lines.extend(_full_values(entry, width, indent))
    lines.extend(_plain_lines(entry, width, indent))
    return lines


def _summary_rows(report: Report) -> list[str]:
    rows: list[tuple[str, ...]] = [("verdict", "entry", "quantities", "max abs", "max rel", "plain JAX")]
    for e in report.entries:
        plain = "-" if e.plain is None else ("differs (pitfall shown)" if e.plain.differs else "agrees")
        rows.append(
            (
                e.verdict,
                e.scenario.name,
                str(len(e.result.comparisons)),
                _number(e.result.max_abs),
                _number(e.result.max_rel),
                plain,
            )
        )
    return _aligned(rows, "")


def footer(report: Report) -> str:
    """The last line of the table: how many entries agree, which differ, the wall time."""
    text = f"{report.agreeing} of {len(report.entries)} entries agree with PyTorch"
    differing = [e.scenario.name for e in report.entries if not e.ok]
    if differing:
        shown = ", ".join(differing[:5]) + (f" and {len(differing) - 5} more" if len(differing) > 5 else "")
        text += f"; {len(differing)} DIFFER: {shown}"
    return f"{text} ({report.seconds:.1f} s)"


def _shown(entry: Entry) -> bool:
    """Whether the table and markdown give an entry its own block: report entries and every disagreement."""
    return entry.scenario.in_report or not entry.ok


def render_table(report: Report, *, full: bool = False, details: bool = True) -> str:
    """The default report: a block per entry (PyTorch | torchsem per quantity, plain JAX), then a summary.

    Args:
      full: print whole arrays under each entry, as PyTorch prints them, where the columns cut them.
      details: blocks for report entries and every disagreement; False prints only the summary.
    """
    lines = ["torchsem compare: PyTorch and torchsem on the same inputs and starting weights", report.headline(), ""]
    if details:
        for e in report.entries:
            if _shown(e):
                lines.extend(_entry_block(e, _VALUE_WIDTH, full))
                lines.append("")
    lines.extend(_summary_rows(report))
    lines.append("")
    lines.append(footer(report))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- markdown


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_code(value: OutputValue) -> str:
    return f"`{_md(format_cell(value, 160))}`"


def _markdown_entry(e: Entry) -> list[str]:
    s = e.scenario
    lines = ["", f"## `{s.name}`: {e.verdict}", "", f"{_md(s.section)}. Mapping: {_md(s.mapping)}", ""]
    if e.oracle_error is not None:
        return [*lines, _md(e.oracle_error)]
    if e.result.error is not None:
        lines += [f"The JAX program raised: `{_md(last_line(e.result.error))}`", ""]
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
    return lines


def render_markdown(report: Report) -> str:
    """The report as GitHub markdown: a summary table, then a table per entry."""
    lines = [
        "# torchsem compare",
        "",
        f"{_md(report.headline())}. {footer(report)}.",
        "",
        "| verdict | entry | section | mapping | max abs | max rel |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in report.entries:
        lines.append(
            f"| {e.verdict} | `{e.scenario.name}` | {_md(e.scenario.section)} | {_md(e.scenario.mapping)} | "
            f"{_number(e.result.max_abs)} | {_number(e.result.max_rel)} |"
        )
    for e in report.entries:
        if _shown(e):
            lines += _markdown_entry(e)
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


def _json_entry(e: Entry) -> dict[str, Any]:
    r = e.result
    outputs = [
        {
            "name": c.name,
            "pytorch": _json_value(c.expected),
            "torchsem": _json_value(c.actual),
            **_value_meta(c.expected),
            "max_abs": _json_number(c.max_abs),
            "max_rel": _json_number(c.max_rel),
            "rtol": c.tolerance.rtol,
            "atol": c.tolerance.atol,
            "tolerance_reason": c.tolerance.reason,
            "ok": c.ok,
            "detail": c.detail,
        }
        for c in r.comparisons
    ]
    plain = None
    if e.plain is not None:
        plain = {
            "error": e.plain.error,
            "differs_from_pytorch": e.plain.differs,
            "outputs": [
                {
                    "name": c.name,
                    "value": _json_value(c.actual),
                    "agrees_with_pytorch": c.ok,
                    "max_abs": _json_number(c.max_abs),
                    "max_rel": _json_number(c.max_rel),
                }
                for c in e.plain.comparisons
            ],
        }
    return {
        "name": e.scenario.name,
        "section": e.scenario.section,
        "mapping": e.scenario.mapping,
        "pitfall": e.scenario.pitfall,
        "verdict": e.verdict_key,
        "ok": e.ok,
        "max_abs": _json_number(r.max_abs),
        "max_rel": _json_number(r.max_rel),
        "seconds": r.seconds,
        "error": e.oracle_error or r.error,
        "missing": list(r.missing),
        "unexpected": list(r.unexpected),
        "outputs": outputs,
        "plain_jax": plain,
    }


def report_as_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-able data (arrays as nested lists, non-finite floats as strings)."""
    from .._version import __version__

    return {
        "torchsem": __version__,
        "oracle": {
            "mode": report.oracle_mode,
            "description": report.oracle_description,
            "recorded_torch_versions": list(report.recorded_torch_versions),
        },
        "jax": jax_version_text(),
        "jit": report.jit,
        "seconds": report.seconds,
        "ok": report.ok,
        "agree": report.agreeing,
        "total": len(report.entries),
        "entries": [_json_entry(e) for e in report.entries],
    }


def render_json(report: Report) -> str:
    """The report as JSON (see :func:`report_as_dict`)."""
    return json.dumps(report_as_dict(report), indent=2)


# ------------------------------------------------------------------------------------ entry list


def render_list(scenarios: Sequence[Scenario], fmt: str) -> str:
    """``torchsem compare --list``: each entry's name, section and mapping, in ``fmt`` (table, markdown, json)."""
    if fmt == "json":
        return json.dumps(
            [
                {
                    "name": s.name,
                    "section": s.section,
                    "mapping": s.mapping,
                    "in_report": s.in_report,
                    "pitfall": s.pitfall,
                }
                for s in scenarios
            ],
            indent=2,
        )
    if fmt == "markdown":
        rows = ["| entry | section | mapping |", "| --- | --- | --- |"]
        rows += [f"| `{s.name}` | {_md(s.section)} | {_md(s.mapping)} |" for s in scenarios]
        return "\n".join(rows)
    if not scenarios:
        return "(no scenarios)"
    return "\n".join(
        _aligned([("entry", "section", "mapping")] + [(s.name, s.section, s.mapping) for s in scenarios], "")
    )


# -------------------------------------------------------------------------------------- progress


class Timer(Protocol):
    """What :class:`Progress` needs of :class:`threading.Timer`."""

    daemon: bool

    def start(self) -> None: ...

    def cancel(self) -> None: ...


class Progress:
    """Per-entry progress lines on a stream, shown only once the run has taken over ``after_s`` seconds.

    Lines for entries finished before that are held back and printed together when the threshold
    passes, so a fast run prints nothing and a slow one shows every entry. When an entry is still
    running at the threshold (the first one compiles most of what the rest reuse), a timer says so
    rather than leaving the terminal silent.

    Args:
      clock: the seconds since some start (default :func:`time.perf_counter`).
      timer: ``(seconds, callback) -> Timer`` that calls ``callback`` once after ``seconds`` unless
        cancelled (default :class:`threading.Timer`, which calls it from its own thread).
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        after_s: float = PROGRESS_AFTER_S,
        clock: Callable[[], float] = time.perf_counter,
        timer: Callable[[float, Callable[[], None]], Timer] = threading.Timer,
    ) -> None:
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
        self._make_timer = timer
        self._timer: Timer | None = None

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
                self._timer = self._make_timer(self.after_s, self._announce)
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


__all__ = [
    "PROGRESS_AFTER_S",
    "Progress",
    "footer",
    "render_json",
    "render_list",
    "render_markdown",
    "render_table",
    "report_as_dict",
]
