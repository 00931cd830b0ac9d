"""Judging a JAX program's outputs against PyTorch's: per-output differences and a verdict."""

from __future__ import annotations

import dataclasses
import time
import traceback

import numpy as np

from ._outputs import Outputs, OutputValue
from ._scenario import Scenario, Tolerance


def _kind(value: OutputValue) -> str:
    if value is None:
        return "None"
    if isinstance(value, str):
        return "str"
    if value.dtype.kind == "b":
        return "bool"
    if value.dtype.kind in "iu":
        return "int"
    if value.dtype.kind in "fc":
        return f"float{value.dtype.itemsize * 8}"
    return str(value.dtype)


def _describe(value: OutputValue) -> str:
    if value is None:
        return "None"
    if isinstance(value, str):
        return repr(value)
    return f"{value.dtype}{list(value.shape)}"


@dataclasses.dataclass(frozen=True)
class OutputComparison:
    """One named output, PyTorch's value against the JAX program's.

    ``max_abs`` and ``max_rel`` are over finite elements (0 for exact kinds that agree,
    ``inf`` when the kinds or shapes differ); ``ok`` is the verdict.
    """

    name: str
    expected: OutputValue
    actual: OutputValue
    tolerance: Tolerance
    max_abs: float
    max_rel: float
    ok: bool
    detail: str

    @property
    def exact(self) -> bool:
        """Whether the output's kind is judged exactly (None, text, booleans, integers), not within ``tolerance``."""
        value = self.expected if self.expected is not None else self.actual
        return _kind(value) in ("None", "str", "bool", "int")


def compare_output(
    name: str,
    expected: OutputValue,
    actual: OutputValue,
    tolerance: Tolerance,
    reference: OutputValue = None,
    yardstick: float | None = None,
) -> OutputComparison:
    """Compare one output: exact for None, strings, bools and ints; ``allclose`` for floats.

    Floats must agree in width (float32 against float32), shape and in where they are NaN
    or infinite; finite elements must satisfy ``|a - e| <= atol + rtol * |e|``.

    With a drift tolerance (``tolerance.drift = k``), ``reference`` is PyTorch's float64 run of
    the same quantity, ``r``, and the float output is judged by its distance from it over the
    whole output (:func:`drift_distance`): ``D(a) <= k * max(D(e), yardstick) + rtol``, i.e.
    torchsem (``a``) at most ``k`` times as far from float64 as PyTorch's float32 (``e``) is,
    or within ``rtol`` of float64. ``yardstick`` is PyTorch's largest ``D`` over the
    tolerance's ``baseline`` outputs (a scalar loss is measured against the drift of the logits
    it comes from, one number being too few to measure drift by). ``max_abs`` and ``max_rel``
    stay the distances from ``e``.
    """
    inf = float("inf")
    kind_e, kind_a = _kind(expected), _kind(actual)
    if kind_e != kind_a:
        return OutputComparison(
            name,
            expected,
            actual,
            tolerance,
            inf,
            inf,
            False,
            f"expected {_describe(expected)}, got {_describe(actual)}",
        )
    if expected is None:
        return OutputComparison(name, expected, actual, tolerance, 0.0, 0.0, True, "both None")
    if isinstance(expected, str):
        if tolerance.text == "contained":
            ok = isinstance(actual, str) and expected in actual
            detail = "PyTorch's text is contained" if ok else f"expected text containing {expected!r}, got {actual!r}"
        else:
            ok = expected == actual
            detail = "same text" if ok else f"expected {expected!r}, got {actual!r}"
        return OutputComparison(name, expected, actual, tolerance, 0.0 if ok else inf, 0.0 if ok else inf, ok, detail)
    assert isinstance(actual, np.ndarray)
    if expected.shape != actual.shape:
        return OutputComparison(
            name,
            expected,
            actual,
            tolerance,
            inf,
            inf,
            False,
            f"shape {list(expected.shape)} expected, got {list(actual.shape)}",
        )
    if kind_e in ("bool", "int"):
        mismatches = int(np.count_nonzero(expected != actual))
        diff = float(np.max(np.abs(expected.astype(np.float64) - actual.astype(np.float64)), initial=0.0))
        return OutputComparison(
            name,
            expected,
            actual,
            tolerance,
            diff,
            diff if mismatches else 0.0,
            mismatches == 0,
            "exact" if mismatches == 0 else f"{mismatches} of {expected.size} elements differ",
        )
    e = expected.astype(np.float64)
    a = actual.astype(np.float64)
    finite_e, finite_a = np.isfinite(e), np.isfinite(a)
    same_nonfinite = np.array_equal(finite_e, finite_a) and np.array_equal(
        np.where(finite_e, 0.0, np.nan_to_num(e, nan=7.0, posinf=1.0, neginf=-1.0)),
        np.where(finite_a, 0.0, np.nan_to_num(a, nan=7.0, posinf=1.0, neginf=-1.0)),
    )
    both = finite_e & finite_a
    abs_diff = np.abs(a[both] - e[both])
    max_abs = float(abs_diff.max(initial=0.0))
    scale = np.abs(e)[both]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, abs_diff / scale, np.where(abs_diff > 0, np.inf, 0.0))
    max_rel = float(rel.max(initial=0.0))
    if tolerance.drift is not None:
        within, drift_detail = _within_drift(e, a, reference, tolerance, yardstick)
    else:
        within = bool(np.all(abs_diff <= tolerance.atol + tolerance.rtol * scale))
    ok = within and same_nonfinite
    if not same_nonfinite:
        detail = "NaN/Inf positions differ"
    elif tolerance.drift is not None:
        detail = drift_detail
    elif not within:
        bad = int(np.count_nonzero(abs_diff > tolerance.atol + tolerance.rtol * scale))
        detail = f"{bad} of {expected.size} elements outside rtol={tolerance.rtol:g}, atol={tolerance.atol:g}"
    else:
        detail = f"within rtol={tolerance.rtol:g}, atol={tolerance.atol:g}"
    return OutputComparison(name, expected, actual, tolerance, max_abs, max_rel, ok, detail)


def drift_distance(value: np.ndarray, reference: np.ndarray) -> tuple[float, bool]:
    """How far a float result lies from its float64 reference, relative to the reference's scale.

    Rows along the last axis (a scalar or a vector is one row) are measured against the root
    mean square of their reference row, and the distance is the root mean square over every
    element of those scaled differences:

    .. math::

        D(x) = \\sqrt{\\operatorname{mean}_{i,j} \\left(\\frac{x_{ij} - r_{ij}}{\\operatorname{rms}_j r_{ij}}\\right)^2}

    A root mean square over many elements, not a maximum: rounding errors are random, and the
    ratio of two maxima over a few elements (or of two single projections, such as two sums) is
    itself random over orders of magnitude. Rows the reference holds at exactly zero (a frozen
    parameter's change) are left out of ``D`` and must be exactly zero. Non-finite elements are
    left out (their positions are compared separately).

    Returns:
      ``(D, zero_rows_exact)``.
    """
    v = np.asarray(value, np.float64)
    r = np.asarray(reference, np.float64)
    width = r.shape[-1] if r.ndim else 1
    v, r = v.reshape(-1, max(width, 1)), r.reshape(-1, max(width, 1))
    finite = np.isfinite(v) & np.isfinite(r)
    difference = np.where(finite, v - r, 0.0)
    scale = np.sqrt(np.mean(np.square(np.where(finite, r, 0.0)), axis=1))
    zero = scale == 0
    exact = bool(np.all(difference[zero] == 0))
    scaled = difference[~zero] / scale[~zero, None]
    counted = finite[~zero]
    distance = float(np.sqrt(np.mean(np.square(scaled[counted])))) if counted.any() else 0.0
    return distance, exact


def _distance_on_scale(value: np.ndarray, other: np.ndarray, reference: np.ndarray) -> float:
    """:func:`drift_distance`'s measure of ``value - other``, rows scaled by ``reference``'s."""
    r = np.asarray(reference, np.float64)
    shift = np.asarray(other, np.float64) - r
    return drift_distance(np.asarray(value, np.float64) - shift, r)[0]


def _within_drift(
    expected: np.ndarray, actual: np.ndarray, reference: OutputValue, tolerance: Tolerance, yardstick: float | None
) -> tuple[bool, str]:
    """The drift criterion of :func:`compare_output`, and its numbers."""
    if not isinstance(reference, np.ndarray) or reference.dtype.kind != "f" or reference.shape != expected.shape:
        wanted = f"the float64 reference {tolerance.reference!r} of the same shape"
        return False, f"needs {wanted}, got {_describe(reference)}"
    assert tolerance.drift is not None
    torch_drift, _ = drift_distance(expected, reference)
    jax_drift, exact = drift_distance(actual, reference)
    measure = max(torch_drift, yardstick or 0.0)
    bound = tolerance.drift * measure + tolerance.rtol
    # The distance between the two float32 results on float64's scale, for the reader: often far
    # below either's drift (both round alike and meet float64's rounding at the same branch points).
    apart = _distance_on_scale(actual, expected, reference)
    numbers = (
        f"D(jax) = {jax_drift:.3g}, D(torch float32) = {torch_drift:.3g}, jax to torch {apart:.3g}"
        + (f" (yardstick {measure:.3g} with its baseline outputs)" if measure > torch_drift else "")
        + f", allowed {tolerance.drift:g} x {measure:.3g} + {tolerance.rtol:g}"
    )
    if not exact:
        return False, f"float64 PyTorch leaves some rows exactly zero, torchsem does not; {numbers}"
    if jax_drift <= bound:
        return True, f"drift within: {numbers}"
    return False, f"drifts too far from float64: {numbers}"


@dataclasses.dataclass(frozen=True)
class ScenarioResult:
    """A scenario run against one oracle: every output compared, and the verdict."""

    scenario: Scenario
    oracle: str
    jit: bool
    comparisons: tuple[OutputComparison, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    error: str | None
    seconds: float
    jax_outputs: Outputs
    torch_outputs: Outputs

    @property
    def ok(self) -> bool:
        """Agreement: no error, the same output names, every output within tolerance."""
        return self.error is None and not self.missing and not self.unexpected and all(c.ok for c in self.comparisons)

    @property
    def max_abs(self) -> float:
        return max((c.max_abs for c in self.comparisons), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((c.max_rel for c in self.comparisons), default=0.0)

    def explain(self) -> str:
        """A multi-line account of what disagreed (empty when everything agrees)."""
        lines = []
        if self.error:
            lines.append(f"JAX program raised:\n{self.error}")
        if self.missing:
            lines.append(f"outputs PyTorch has and JAX does not: {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"outputs JAX has and PyTorch does not: {', '.join(self.unexpected)}")
        for c in self.comparisons:
            if not c.ok:
                lines.append(
                    f"{c.name}: {c.detail} (max abs {c.max_abs:.3g}, max rel {c.max_rel:.3g})\n"
                    f"  PyTorch: {_preview(c.expected)}\n  JAX:     {_preview(c.actual)}"
                )
        if lines:
            lines.insert(0, f"{self.scenario.name} ({self.oracle} oracle, {'jit' if self.jit else 'eager'}) disagrees:")
        return "\n".join(lines)


def _preview(value: OutputValue) -> str:
    if value is None or isinstance(value, str):
        return repr(value)
    return np.array2string(value, precision=6, threshold=24, max_line_width=120).replace("\n", "\n           ")


def judge(
    scenario: Scenario,
    expected: Outputs,
    actual: Outputs,
    *,
    oracle: str,
    jit: bool,
    error: str | None = None,
    seconds: float = 0.0,
    tolerance: Tolerance | None = None,
) -> ScenarioResult:
    """Compare two sets of outputs name by name.

    Args:
      tolerance: one tolerance for every output in place of the scenario's (used to check
        recordings against live PyTorch, which must agree far more tightly than JAX does).
    """
    chosen = {n: tolerance or scenario.tolerance_for(n) for n in expected}
    # The float64 runs drift tolerances refer to are PyTorch's alone: not missing from a JAX program.
    references = {t.reference for t in chosen.values() if t.reference is not None}
    comparisons = tuple(
        compare_output(
            n,
            expected[n],
            actual[n],
            chosen[n],
            expected.get(chosen[n].reference or ""),
            _yardstick(chosen, n, expected),
        )
        for n in expected
        if n in actual
    )
    missing = tuple(n for n in expected if n not in actual and n not in references) if error is None else ()
    unexpected = tuple(n for n in actual if n not in expected)
    return ScenarioResult(scenario, oracle, jit, comparisons, missing, unexpected, error, seconds, actual, expected)


def _yardstick(chosen: dict[str, Tolerance], name: str, expected: Outputs) -> float | None:
    """PyTorch float32's largest drift over a drift tolerance's baseline outputs (None without any)."""
    distances = []
    for other in chosen[name].baseline:
        reference = chosen[other].reference if other in chosen else None
        value, reference_value = expected.get(other), expected.get(reference or "")
        if isinstance(value, np.ndarray) and isinstance(reference_value, np.ndarray):
            distances.append(drift_distance(value, reference_value)[0])
    return max(distances) if distances else None


def run_scenario(scenario: Scenario, oracle, *, jit: bool = False) -> ScenarioResult:
    """Run a scenario's JAX program and judge it against the oracle's PyTorch outputs.

    The one runner: the parity suite and the report (:func:`~torchsem.compare.run_catalogue`) both
    call it. PyTorch's outputs are asked for first, then the JAX program runs, then :func:`judge`.

    Raises:
      whatever the oracle raises (:class:`RecordingMissing`, a crashing PyTorch program); an
      exception of the JAX program is not raised but judged, as a disagreement with its traceback.
    """
    start = time.perf_counter()
    expected = oracle.outputs(scenario)
    try:
        actual = scenario.run_jax(jit)
        error = None
    except Exception:  # the report shows a crashing JAX program as a disagreement
        actual, error = {}, traceback.format_exc(limit=6)
    return judge(
        scenario, expected, actual, oracle=oracle.mode, jit=jit, error=error, seconds=time.perf_counter() - start
    )
