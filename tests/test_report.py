"""``torchsem compare``: the report on the document's catalogue, its formats, exit status and CLI.

The report runs the same scenarios against the same oracle (live PyTorch, or the recorded
outputs with ``import torch`` blocked) as the parity suite; these tests check what it shows,
that it turns to a disagreement when a JAX program is wrong, and how the command behaves.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import runpy
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from torchsem.cli import main
from torchsem.compare import (
    RecordedOracle,
    catalogue,
    get,
    render_json,
    render_markdown,
    render_table,
    run_catalogue,
    torch_available,
)
from torchsem.compare._outputs import NO_ERROR
from torchsem.compare._render import Progress
from torchsem.compare._scenario import _REGISTRY

DOCUMENT = [
    "document/requires-grad-example-one",
    "document/detach-example-two",
    "document/leaf-and-grad-fn",
    "document/no-grad-error",
    "document/eval-example-one",
    "document/eval-example-two",
    "document/batchnorm-training=true-track_running_stats=true",
    "document/batchnorm-training=true-track_running_stats=false",
    "document/batchnorm-training=false-track_running_stats=true",
    "document/batchnorm-training=false-track_running_stats=false",
    "document/batchnorm-momentum-none",
    "document/dropout-train-eval",
]
TRACE = "document/eval-example-two"
SMALL = "document/batchnorm-momentum-none"  # a quick entry for CLI round trips


@pytest.fixture(scope="module")
def report(oracle):
    """The document's catalogue, run once for the module against the session's oracle."""
    return run_catalogue(catalogue("document"), oracle)


def _entry(report, name):
    return next(e for e in report.entries if e.scenario.name == name)


def test_the_document_catalogue_has_every_behaviour():
    names = [s.name for s in catalogue("document")]
    assert names == DOCUMENT
    assert all(s.in_report for s in catalogue("document"))
    assert set(DOCUMENT) <= {s.name for s in catalogue(report_only=True)}
    for scenario in catalogue("document"):
        assert " -> " in scenario.mapping, scenario.name
        assert scenario.plain_jax_program is None or scenario.pitfall, scenario.name


def test_every_document_entry_agrees_with_pytorch(report):
    assert report.ok, "\n".join(e.result.explain() or e.oracle_error or "" for e in report.entries if not e.ok)
    assert report.exit_status == 0
    assert report.agreeing == len(DOCUMENT)


def test_the_table_shows_the_documents_printed_values(report):
    table = render_table(report)
    example_one = table.split("document/requires-grad-example-one", 1)[1].split("\n\n", 1)[0]
    # PyTorch's column and torchsem's: the document's fc1.bias.grad, printed as PyTorch prints it.
    assert example_one.count("[0.1875, -0.8615, 0.3708, 0.3033]") == 2
    trace = table.split(TRACE, 1)[1].split("\n\n", 1)[0]
    for printed in (
        "[0., 0., 0.]",
        "[-0.0287, 0.0524, -0.0517]",
        "[-0.0249, 0.0314, -0.0441]",
        "[-0.0511, 0.0806, -0.0914]",
        "[-0.0450, 0.0568, -0.0798]",
    ):
        assert trace.count(printed) >= 2, printed
    # The eval-mode trace prints the same mean three times on each side.
    assert trace.count("[-0.0249, 0.0314, -0.0441]") == 2 * 5
    assert f"{len(DOCUMENT)} of {len(DOCUMENT)} entries agree with PyTorch" in table


def test_the_headline_names_the_oracle_and_the_recorded_torch_version(report):
    headline = render_table(report).splitlines()[1]
    versions = RecordedOracle().store.torch_versions(["document"])
    assert len(versions) == 1
    (recorded,) = versions
    assert recorded.startswith("2.")
    assert f"PyTorch {recorded}" in headline
    assert headline.startswith("oracle: live PyTorch" if report.oracle_mode == "live" else "oracle: recorded outputs")
    assert report.recorded_torch_versions == (recorded,)


def test_plain_jax_shows_each_pitfall_against_pytorch(report):
    with_plain = [e for e in report.entries if e.scenario.plain_jax_program is not None]
    assert len(with_plain) >= 6
    for entry in with_plain:
        assert entry.plain is not None and entry.plain.error is None, entry.scenario.name
        assert entry.plain.differs, f"{entry.scenario.name}: plain JAX agrees with PyTorch, so there is no pitfall"
    plain = {e.scenario.name: {c.name: c for c in e.plain.comparisons} for e in with_plain}
    one = plain["document/requires-grad-example-one"]
    assert one["fc1.weight.grad"].expected is None and isinstance(one["fc1.weight.grad"].actual, np.ndarray)
    assert not one["fc1.weight after optimizer.step()"].ok  # optax.masked moved the frozen weight
    assert one["fc1.bias.grad"].ok
    two = plain["document/detach-example-two"]
    for name in ("bn1.weight.grad", "bn1.bias.grad"):
        assert two[name].expected is None and np.array_equal(two[name].actual, np.zeros(3, np.float32))
    no_grad = plain["document/no-grad-error"]
    assert no_grad["loss.backward() error message"].expected.startswith("element 0 of tensors does not require grad")
    assert no_grad["loss.backward() error message"].actual == NO_ERROR
    assert no_grad["loss.backward() error type"].expected == "RuntimeError"
    assert no_grad["loss.backward() error type"].actual == NO_ERROR
    trace = plain[TRACE]
    assert all(c.ok for name, c in trace.items() if name.startswith("running_mean"))
    variance = [c for name, c in trace.items() if name.startswith("running_var")]
    assert variance and not any(c.ok for c in variance)
    assert max(c.max_rel for c in variance) > 0.01  # Flax's biased running variance is percents off


def test_markdown_has_a_summary_and_a_table_per_entry(report):
    markdown = render_markdown(report)
    assert markdown.startswith("# torchsem compare\n")
    assert "| verdict | entry | section | mapping | max abs | max rel |" in markdown
    for name in DOCUMENT:
        assert f"## `{name}`: agree" in markdown
    assert "| quantity | PyTorch | torchsem | plain JAX (not judged) |" in markdown
    assert "`[0.1875, -0.8615, 0.3708, 0.3033]`" in markdown
    assert "> Pitfall: " in markdown
    columns = 0  # every row of an entry's table has its header's number of cells
    for line in markdown.splitlines():
        if line.startswith("| quantity |"):
            columns = line.count(" | ") + 1
        elif line.startswith("| `") and columns:
            assert line.replace("\\|", "").count(" | ") + 1 == columns, line
        elif not line.startswith("|"):
            columns = 0


def test_json_carries_every_value_and_verdict(report, oracle):
    data = json.loads(render_json(report))
    assert data["ok"] is True and data["agree"] == data["total"] == len(DOCUMENT)
    assert data["oracle"]["mode"] == report.oracle_mode
    assert [e["name"] for e in data["entries"]] == DOCUMENT
    entry = data["entries"][0]
    outputs = {o["name"]: o for o in entry["outputs"]}
    expected = oracle.outputs(get("document/requires-grad-example-one"))
    assert outputs["fc1.weight.grad"]["pytorch"] is None and outputs["fc1.weight.grad"]["torchsem"] is None
    assert outputs["fc1.bias.grad"]["pytorch"] == expected["fc1.bias.grad"].tolist()
    np.testing.assert_allclose(outputs["fc1.bias.grad"]["torchsem"], expected["fc1.bias.grad"], rtol=1e-5, atol=1e-6)
    assert outputs["fc1.bias.grad"]["dtype"] == "float32" and outputs["fc1.bias.grad"]["shape"] == [4]
    assert outputs["x"]["rtol"] == 0 and outputs["x"]["atol"] == 0
    assert entry["plain_jax"]["differs_from_pytorch"] is True


@pytest.fixture
def wrong_trace(monkeypatch):
    """The running-mean trace with flax.linen.BatchNorm's program in place of torchsem's (not the shipped code)."""
    scenario = get(TRACE)
    wrong = dataclasses.replace(scenario, jax_program=lambda inputs, jit: scenario.plain_jax_program(inputs))
    monkeypatch.setitem(_REGISTRY, TRACE, wrong)
    return wrong


def test_a_wrong_jax_program_turns_the_report_and_exit_status_to_disagreement(wrong_trace, capsys):
    assert main(["compare", "--only", TRACE]) == 1
    out = capsys.readouterr().out
    block = out.split(TRACE, 1)[1].split("\n\n", 1)[0]
    assert block.lstrip().startswith("(5. model.eval()") and out.count("DIFFER ") >= 1
    rows = {line.split("  ")[0].strip(): line for line in block.splitlines() if line.startswith(" " * 8 + "running")}
    assert rows and all(line.rstrip().endswith("DIFFERS") for name, line in rows.items() if "running_var" in name)
    assert all(line.rstrip().endswith("ok") for name, line in rows.items() if "running_mean" in name)
    assert "0 of 1 entries agree with PyTorch; 1 DIFFER: " + TRACE in out


def test_a_wrong_jax_program_shows_in_json(wrong_trace, capsys):
    assert main(["compare", "--only", TRACE, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["entries"][0]["verdict"] == "differ"
    failing = {o["name"] for o in data["entries"][0]["outputs"] if not o["ok"]}
    assert failing == {n for n in failing if n.startswith("running_var") or n == "num_batches_tracked"}
    assert any(n.startswith("running_var") for n in failing) and "num_batches_tracked" in failing


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--format", "xml"],
        ["compare", "--oracle", "nonsense"],
        ["compare", "--only", "no-such-entry"],
        ["compare", "--bogus"],
        ["nonsense"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_live_oracle_without_pytorch_exits_2(capsys):
    if torch_available():
        pytest.skip("torch is importable here, so the live oracle is available")
    assert main(["compare", "--oracle", "live", "--only", SMALL]) == 2
    assert "needs PyTorch" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_list_names_every_document_entry(fmt, capsys):
    assert main(["compare", "--list", "--format", fmt]) == 0
    out = capsys.readouterr().out
    for name in DOCUMENT:
        assert name in out
    if fmt == "json":
        assert {e["name"] for e in json.loads(out)} >= set(DOCUMENT)


def test_one_agreeing_entry_exits_0(jit, capsys):
    assert main(["compare", "--only", SMALL, "--full"] + (["--jit"] if jit else [])) == 0
    out = capsys.readouterr().out
    assert "agree   " + SMALL in out and "1 of 1 entries agree with PyTorch" in out
    assert out.splitlines()[1].endswith("jit" if jit else "eager")
    assert "tensor([[[" in out  # --full prints whole arrays as PyTorch does


class _Shown:
    """Just what Progress reads from an entry."""

    def __init__(self, name):
        self.verdict, self.scenario = "agree", type("S", (), {"name": name})()
        self.result = type("R", (), {"seconds": 0.1})()


def test_progress_lines_appear_once_the_run_passes_a_second():
    times = iter([0.0, 0.3, 0.6, 1.5, 2.0])
    stream = io.StringIO()
    progress = Progress(4, stream, after_s=1.0, clock=lambda: next(times))
    progress(_Shown("a"))
    progress(_Shown("b"))
    assert stream.getvalue() == ""  # a fast run prints no progress at all
    progress(_Shown("c"))
    assert stream.getvalue().splitlines() == [
        "[1/4] agree  a (0.10 s)",
        "[2/4] agree  b (0.10 s)",
        "[3/4] agree  c (0.10 s)",
    ]
    progress(_Shown("d"))
    assert stream.getvalue().splitlines()[-1] == "[4/4] agree  d (0.10 s)"


class _ManualTimer:
    """threading.Timer's interface, fired by the test rather than by a thread after a wait."""

    def __init__(self, seconds, callback):
        self.seconds, self.callback = seconds, callback
        self.daemon = self.started = self.cancelled = False

    def start(self):
        self.started = True

    def cancel(self):
        self.cancelled = True

    def fire(self):
        assert self.started and not self.cancelled
        self.callback()


def test_progress_announces_an_entry_still_running_after_a_second():
    timers = []

    def timer(seconds, callback):
        timers.append(_ManualTimer(seconds, callback))
        return timers[-1]

    stream = io.StringIO()
    progress = Progress(3, stream, after_s=0.05, clock=lambda: 0.0, timer=timer)
    progress.begin("a")
    progress(_Shown("a"))  # finished at once: held back
    progress.begin("slow")
    (armed,) = timers  # one timer per run, armed when the first entry begins
    assert armed.seconds == 0.05 and armed.daemon and armed.started and stream.getvalue() == ""
    armed.fire()  # the threshold passes while "slow" is running
    progress(_Shown("slow"))
    progress.close()
    assert armed.cancelled
    assert stream.getvalue().splitlines() == [
        "[1/3] agree  a (0.10 s)",
        "[2/3] running slow ...",
        "[2/3] agree  slow (0.10 s)",
    ]


def test_progress_announces_from_a_real_timer_thread():
    made = []

    def timer(seconds, callback):
        made.append(threading.Timer(seconds, callback))
        return made[-1]

    stream = io.StringIO()
    progress = Progress(2, stream, after_s=0.0, timer=timer)
    progress.begin("slow")
    (thread,) = made
    thread.join()  # the timer's thread has announced the entry and ended: no polling, no deadline
    assert thread.daemon
    progress(_Shown("slow"))
    progress.close()
    assert stream.getvalue().splitlines() == ["[1/2] running slow ...", "[1/2] agree  slow (0.10 s)"]


def test_a_fast_run_prints_no_progress():
    stream = io.StringIO()
    progress = Progress(1, stream, after_s=60)
    progress.begin("a")
    progress(_Shown("a"))
    progress.close()
    assert stream.getvalue() == ""


def test_a_missing_recording_is_a_disagreement_not_a_crash(tmp_path):
    report = run_catalogue([get(SMALL)], RecordedOracle(tmp_path))
    (entry,) = report.entries
    assert not entry.ok and report.exit_status == 1
    assert "torchsem record" in entry.oracle_error
    table = render_table(report)
    assert "PyTorch's outputs are unavailable" in table and "no recording for document" in table


def test_python_m_torchsem_compare_runs_without_pytorch():
    env = {**os.environ, "TORCHSEM_CACHE_DIR": "off"}
    code = (
        "import sys; sys.modules['torch'] = None; from torchsem.cli import main; "
        f"sys.exit(main(['compare', '--oracle', 'recorded', '--only', '{SMALL}', '--format', 'json']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] and data["oracle"]["mode"] == "recorded"
    module = subprocess.run(
        [sys.executable, "-m", "torchsem", "compare", "--list"], capture_output=True, text=True, env=env, timeout=300
    )
    assert module.returncode == 0 and SMALL in module.stdout


@pytest.mark.live_torch
@pytest.mark.parametrize(
    "values",
    [
        np.float32([0.1875, -0.8615, 0.3708, 0.3033]),
        np.zeros(3, np.float32),
        np.random.default_rng(0).standard_normal((4, 12)).astype(np.float32),
        np.float32([[-0.0287, 0.0524, -0.0517]]),
        np.float32([1.5, 2.0, -3.0]),
        np.array([1, 1, 1]),
        np.random.default_rng(1).standard_normal((2, 3, 5)).astype(np.float32),
        np.float32([1e-6, 1.0]),
        np.array(3.5, np.float32),
    ],
    ids=["bias-grad", "zeros", "4x12", "2d-row", "mixed-whole", "int64", "3d", "scientific", "0d"],
)
def test_format_like_torch_prints_as_pytorch_prints(values):
    import torch

    from torchsem.compare import format_like_torch

    assert format_like_torch(values) == str(torch.from_numpy(values))


ROOT = Path(__file__).resolve().parents[1]
COMPARISONS = sorted(p.name for p in (ROOT / "comparisons").glob("[0-9]*.py"))


def test_every_comparison_script_is_indexed():
    readme = (ROOT / "comparisons" / "README.md").read_text()
    assert len(COMPARISONS) == 8
    for script in COMPARISONS:
        assert f"({script})" in readme, script


@pytest.mark.parametrize("script", COMPARISONS)
def test_comparison_script_agrees_with_pytorch(script, oracle, monkeypatch, capsys):
    # In this process (a subprocess per script would pay JAX's start-up and compilation each time).
    monkeypatch.setenv("TORCHSEM_ORACLE", oracle.mode)
    monkeypatch.syspath_prepend(str(ROOT / "comparisons"))
    monkeypatch.setattr(sys, "argv", [script])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / "comparisons" / script), run_name="__main__")
    out = capsys.readouterr().out
    assert exit_.value.code == 0, out[-3000:]
    assert "printed values agree with PyTorch." in out
    assert ("live PyTorch" if oracle.mode == "live" else "recorded") in out.splitlines()[1]
