"""Every scenario in the catalogue agrees with PyTorch, eager and under jax.jit.

This is the same catalogue ``torchsem compare`` reports, so the report and the tests
cannot disagree. With live torch the recorded outputs are also checked against a fresh
PyTorch run, so the files shipped for users without torch cannot rot.
"""

from __future__ import annotations

import pytest

from torchsem.compare import LiveOracle, RecordedOracle, catalogue, check_recording, run_scenario

SCENARIOS = catalogue()
IDS = [s.name for s in SCENARIOS]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_jax_agrees_with_pytorch(scenario, oracle, jit):
    result = run_scenario(scenario, oracle, jit=jit)
    assert result.ok, result.explain()


@pytest.mark.live_torch
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_recording_matches_live_pytorch(scenario, oracle):
    assert isinstance(oracle, LiveOracle)
    result = check_recording(scenario, oracle, RecordedOracle())
    assert result.ok, result.explain()


def test_catalogue_is_not_empty():
    assert len(SCENARIOS) > 0
