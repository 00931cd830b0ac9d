"""Printing outputs the way PyTorch prints them: 4 decimals, whole, fixed or scientific by PyTorch's rule."""

from __future__ import annotations

import numpy as np

from ._outputs import OutputValue

_ELLIPSIS = "…"


def _float_style(values: np.ndarray) -> str:
    """PyTorch's print rule: ``int`` (``0.``) when every finite value is whole, else ``sci`` when the
    finite non-zero magnitudes span more than 1e3 or leave [1e-4, 1e8], else ``fixed``."""
    finite = np.abs(values[np.isfinite(values)]).astype(np.float64)
    nonzero = finite[finite != 0]
    if nonzero.size == 0:
        return "int"
    low, high = float(nonzero.min()), float(nonzero.max())
    if np.all(finite == np.round(finite)):
        return "sci" if high > 1e8 else "int"
    return "sci" if high / low > 1000.0 or high > 1e8 or low < 1e-4 else "fixed"


def _float_text(x: float, style: str, precision: int) -> str:
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    if style == "int":
        return f"{x:.0f}."
    return f"{x:.{precision}e}" if style == "sci" else f"{x:.{precision}f}"


def _nested(value: np.ndarray, element) -> str:
    if value.ndim == 0:
        return element(value.item())
    return "[" + ", ".join(_nested(row, element) for row in value) + "]"


def last_line(text: str) -> str:
    """The last non-blank line of ``text``, stripped (an exception's ``Type: message`` from its traceback)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def shape_text(value: np.ndarray) -> str:
    """``4x12`` for a (4, 12) array, ``scalar`` for a 0-d one."""
    return "x".join(str(n) for n in value.shape) if value.ndim else "scalar"


def format_value(value: OutputValue, precision: int = 4) -> str:
    """One line, as PyTorch prints the numbers (without the ``tensor(...)`` wrapper).

    ``None`` -> ``None``; a string -> itself in quotes; booleans ``True``/``False``;
    integers as integers; floats with ``precision`` decimals, whole (``0.``) or scientific by PyTorch's rule.
    """
    if value is None:
        return "None"
    if isinstance(value, str):
        return repr(value)
    kind = value.dtype.kind
    if kind == "b":
        return _nested(value, lambda x: str(bool(x)))
    if kind in "iu":
        return _nested(value, lambda x: str(int(x)))
    if kind == "f":
        style = _float_style(value)
        return _nested(value, lambda x: _float_text(float(x), style, precision))
    return np.array2string(value)


def format_cell(value: OutputValue, width: int, precision: int = 4) -> str:
    """:func:`format_value` cut to ``width`` characters at an element boundary, with the shape when cut.

    Strings are shown without quotes (a cell is read as text; ``None`` is never a string here).
    """
    text = value if isinstance(value, str) else format_value(value, precision)
    if len(text) <= width or not isinstance(value, np.ndarray):
        return text if len(text) <= width else text[: max(width - 1, 1)] + _ELLIPSIS
    suffix = f"{_ELLIPSIS} ({shape_text(value)})"
    room = max(width - len(suffix), 1)
    cut = text.rfind(", ", 0, room + 1)
    head = text[: cut + 1] if cut > 0 else text[:room]
    return head + suffix


def format_like_torch(value: OutputValue, precision: int = 4, linewidth: int = 80) -> str:
    """What ``print()`` shows for the PyTorch value: ``tensor([ 0.1875, -0.8615, ...])``, ``None``, ``True``.

    Follows PyTorch's ``_tensor_str``: every element right-aligned to the widest, as many per line
    as fit in ``linewidth`` after the indent, nested rows separated by ``dim - 1`` newlines.
    (No ``...`` summarising: PyTorch starts it at 1000 elements, the catalogue never reaches it.)
    """
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    if value.ndim == 0 and value.dtype.kind == "b":
        return str(bool(value))
    if value.dtype.kind == "f":
        style = _float_style(value)
        texts = [_float_text(float(x), style, precision) for x in value.reshape(-1)]
    else:
        texts = [str(x) for x in value.reshape(-1).tolist()]
    width = max((len(t) for t in texts), default=0)
    cells = np.array([t.rjust(width) for t in texts], dtype=object).reshape(value.shape)
    prefix = "tensor("
    if value.ndim == 0:
        return f"{prefix}{cells.item().strip()})"
    return f"{prefix}{_torch_block(cells, len(prefix), width, linewidth)})"


def _torch_block(cells: np.ndarray, indent: int, width: int, linewidth: int) -> str:
    if cells.ndim == 1:
        per_line = max(1, (linewidth - indent) // (width + 2))
        items = list(cells)
        lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"
    rows = [_torch_block(row, indent + 1, width, linewidth) for row in cells]
    return "[" + ("," + "\n" * (cells.ndim - 1) + " " * (indent + 1)).join(rows) + "]"
