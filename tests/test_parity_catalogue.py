"""Every scenario in the catalogue agrees with PyTorch, eager and under jax.jit.

This is the same catalogue ``torchsem compare`` reports, so the report and the tests
cannot disagree. With live torch the recorded outputs are also checked against a fresh
PyTorch run, so the files shipped for users without torch cannot rot.

With live torch every scenario runs eagerly and jitted against PyTorch. Against the recorded
outputs (``TORCHSEM_ORACLE=recorded``, the path of a user without torch) it runs jitted only:
the JAX programs are the same in both passes, the eager ones are already judged against live
PyTorch, and the recorded pass exists to prove that every recording is there and agrees (CI
runs both passes on 2 cores, and the eager half of the recorded pass took a quarter of it).
"""

from __future__ import annotations

import pytest

from conftest import LIVE_TORCH
from torchsem.compare import LiveOracle, RecordedOracle, catalogue, check_recording, run_scenario
from torchsem.random import normal_kernel_build

SCENARIOS = catalogue()
IDS = [s.name for s in SCENARIOS]
JIT_MODES = [False, True] if LIVE_TORCH else [True]


@pytest.mark.parametrize("jit", JIT_MODES, ids=["eager", "jit"][2 - len(JIT_MODES) :])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_jax_agrees_with_pytorch(scenario, oracle, jit):
    result = run_scenario(scenario, oracle, jit=jit)
    if result.error is not None and "UnsupportedKernel:" in result.error:
        pytest.skip(result.error.strip().splitlines()[-1])  # see conftest: a kernel not reproduced here
    assert result.ok, result.explain()


@pytest.mark.live_torch
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_recording_matches_live_pytorch(scenario, oracle):
    assert isinstance(oracle, LiveOracle)
    result = check_recording(scenario, oracle, RecordedOracle())
    if not result.ok and normal_kernel_build() != "avx2":
        # The recordings come from PyTorch's AVX2 kernels; on a DEFAULT-kernel machine torch.randn
        # itself draws other numbers (libm logf/sinf/cosf), so PyTorch cannot reproduce them here.
        pytest.skip(f"recorded with PyTorch's AVX2 kernels; this machine runs {normal_kernel_build()!r}")
    assert result.ok, result.explain()


def test_catalogue_is_not_empty():
    assert len(SCENARIOS) > 0
