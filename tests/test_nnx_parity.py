"""The NNX front end agrees with PyTorch on every module case the linen modules are checked on.

Each registered ``ModuleCase`` whose module has a ``torchsem.nnx`` twin is run a second time
through ``torchsem.nnx`` (``ModuleCase.run_nnx``: the twin, ``torchsem.nnx.torch_init``,
``state_dict``/``load_state_dict``, ``model.train()``/``model.eval()``, ``nnx.jit``) and judged
against PyTorch's outputs for that case: live PyTorch, or the linen case's own recording (the
variant keeps the scenario's name, so no new recordings). Never NNX against linen. Jitted only,
to keep the suite's cost low: the linen pass already checks the eager path of the same math.
"""

from __future__ import annotations

import pytest

from torchsem.compare import catalogue, run_scenario
from torchsem.compare._module_case import nnx_variant

SCENARIOS = [variant for scenario in catalogue() if (variant := nnx_variant(scenario)) is not None]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_nnx_agrees_with_pytorch(scenario, oracle):
    result = run_scenario(scenario, oracle, jit=True)
    if result.error is not None and "UnsupportedKernel:" in result.error:
        pytest.skip(result.error.strip().splitlines()[-1])  # see conftest: a kernel not reproduced here
    assert result.ok, result.explain()


def test_every_family_of_the_issue_is_covered():
    families = {s.family for s in SCENARIOS}
    assert {"linear", "batchnorm", "dropout", "conv"} <= families
    assert len(SCENARIOS) >= 400
