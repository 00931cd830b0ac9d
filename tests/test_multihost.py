"""Multi-host data parallelism for real: two JAX processes, 4 host CPU devices each, one 8-device mesh.

tests/_multihost_worker.py is launched twice on this machine: ``jax.distributed.initialize`` on a
loopback coordinator (127.0.0.1, a free port), CPU collectives over gloo, a mesh over both
processes' devices, each process passing only its 16 rows of every global batch of 32 through
:func:`torchsem.parallel.shard_batch`, and :func:`torchsem.parallel.make_train_step` with bn1
synchronised across the processes. The run is the catalogue scenario ``parallel/net-sgd/even``
(the document's Net, ``SGD(lr=0.05, momentum=0.9)``, 20 steps), and every step's parameters, bn1
running statistics and counter, loss and momentum buffers are checked against:

- the same scenario's JAX program in this test process (one process, 8 devices, the step of
  :func:`torchsem.parallel.make_train_step` on the global batch), in every oracle mode;
- PyTorch training the Net in one process on the global batch (the documented result of DDP +
  SyncBatchNorm): live when torch is importable, else PyTorch's recorded outputs
  (``TORCHSEM_ORACLE=recorded``), through the same judge and tolerances as the catalogue.

Measured (jax 0.10.2, this project's 2-core x86-64 machine): two processes against one differ by
at most 1.2e-7 absolute (the loss; 6e-8 elsewhere), from the gradient all-reduce: gloo sums the
8 devices' contributions in another order than the single-process all-reduce. bn1's running
statistics and parameters come out bit for bit equal (its forward statistics are all-gathered,
which moves values without arithmetic). Against PyTorch: at most 2.4e-7 absolute. The two
processes take 5 to 9 s of wall time (process start, jax import, compilation; the 20 steps take
well under a second), the whole file 11 to 16 s, both on a machine shared with other jobs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from torchsem import compare

pytestmark = pytest.mark.multidevice

WORKER = Path(__file__).with_name("_multihost_worker.py")
SCENARIO = "parallel/net-sgd/even"
PROCESSES, LOCAL_DEVICES = 2, 4
RTOL, ATOL = 1e-5, 1e-6  # float32 defaults; no looser tolerance was needed
DEADLINE_S = 180  # both processes together; they take ~5 s, more on a loaded 2-core machine
ATTEMPTS = 3  # a fresh port when another program took the free one between our bind and the coordinator's


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_env() -> dict[str, str]:
    """This process's environment without its 8-device XLA flag (the worker sets its own 4)."""
    env = dict(os.environ)
    flags = [f for f in env.pop("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    if flags:
        env["XLA_FLAGS"] = " ".join(flags)
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _launch(out: Path, logs: Path) -> tuple[list[int], list[str]]:
    """Run the workers to completion (or the deadline); their exit codes and logs. Kills them on failure."""
    coordinator = f"127.0.0.1:{_free_loopback_port()}"
    procs, files = [], []
    try:
        for process_id in range(PROCESSES):
            log = open(logs / f"process{process_id}.log", "w+")  # noqa: SIM115  (closed below)
            files.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(WORKER),
                        "--coordinator",
                        coordinator,
                        "--num-processes",
                        str(PROCESSES),
                        "--process-id",
                        str(process_id),
                        "--local-devices",
                        str(LOCAL_DEVICES),
                        "--out",
                        str(out),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_child_env(),
                    cwd=WORKER.parent,
                )
            )
        deadline = time.monotonic() + DEADLINE_S
        while True:
            codes = [p.poll() for p in procs]  # every one polled (any() would stop at the first running)
            if None not in codes or any(code not in (None, 0) for code in codes) or time.monotonic() > deadline:
                break  # all done, or one failed (the other would wait for it until its own timeout), or out of time
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait(timeout=30)
    texts = []
    for log in files:
        log.seek(0)
        texts.append(log.read())
        log.close()
    codes = [p.returncode for p in procs]
    return codes, [
        f"--- process {k} (exit {code}) ---\n{text[-4000:]}" for k, (code, text) in enumerate(zip(codes, texts))
    ]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> compare.Outputs:
    """Process 0's outputs of the two-process run (the scenario's output names)."""
    directory = tmp_path_factory.mktemp("multihost")
    out = directory / "process0.npz"
    for attempt in range(ATTEMPTS):
        started = time.perf_counter()
        codes, logs = _launch(out, directory)
        seconds = time.perf_counter() - started
        if codes == [0] * PROCESSES:
            break
        if attempt + 1 == ATTEMPTS or "address already in use" not in "".join(logs).lower():
            pytest.fail(
                f"the two-process run failed after {seconds:.1f} s (deadline {DEADLINE_S} s):\n" + "\n".join(logs)
            )
    with np.load(out) as recorded:
        return compare.as_outputs({name: recorded[name] for name in recorded.files})


def test_two_processes_equal_one_process_on_eight_devices(two_processes):
    """Every step's state and loss: two processes x 4 devices == one process x 8 devices."""
    assert jax.process_count() == 1 and jax.device_count() == PROCESSES * LOCAL_DEVICES, "conftest: 8 devices"
    scenario = compare.get(SCENARIO)
    one_process = compare.as_outputs(scenario.jax_program(scenario.make_inputs(), True))
    assert sorted(two_processes) == sorted(one_process)
    for name, expected in one_process.items():
        actual = two_processes[name]
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, name
        if np.issubdtype(expected.dtype, np.floating):
            np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=name)
        else:  # num_batches_tracked, which parameters have optimizer state
            np.testing.assert_array_equal(actual, expected, err_msg=name)
    np.testing.assert_array_equal(two_processes["num_batches_tracked"], np.arange(1, 21))


def test_two_processes_agree_with_pytorch_on_the_global_batch(two_processes, oracle):
    """PyTorch, one process on the global batch (live or recorded): the catalogue's judge and tolerances."""
    scenario = compare.get(SCENARIO)
    result = compare.judge(scenario, oracle.outputs(scenario), two_processes, oracle=oracle.mode, jit=True)
    assert result.ok, result.explain()
