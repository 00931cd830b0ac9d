"""The generic module runner can fail: each kind of wrong port is caught, against live PyTorch.

The catalogue runs every ModuleCase against PyTorch; these tests show that the runner notices a
port whose initialisation, forward, gradients, buffers or errors differ from PyTorch's, so an
"agree" from it means something.
"""

from __future__ import annotations

import flax.linen as nn
import numpy as np
import pytest

import torchsem.nn as tnn
from torchsem.compare import ErrorCase, Input, ModuleCase, judge
from torchsem.random import linear_torch_init, register_torch_init


class _ZeroBiasInit(tnn.Linear):
    """A Linear whose registered init replay forgets to draw the bias (PyTorch draws it)."""


def _weight_only(module, params, generator):
    drawn = linear_torch_init(module, params, generator)
    return {**drawn, "bias": np.zeros_like(params["bias"])}


register_torch_init(_ZeroBiasInit, _weight_only)


class _DoubledLinear(tnn.Linear):
    """A Linear whose forward is off by a factor of two."""

    @nn.compact
    def __call__(self, input):
        return 2 * super().__call__(input)


class _OtherMomentum(tnn.BatchNorm1d):
    """A BatchNorm1d whose default momentum is not PyTorch's 0.1 (Flax's convention mixed up)."""

    momentum: float | None = 0.2


class _Lenient(nn.Module):
    """A port that accepts what PyTorch refuses."""

    num_features: int

    def __call__(self, x):
        return x


def _failing_quantities(case, jit=False):
    scenario = case.scenario("selftest", "runner self-test")
    expected = scenario.run_torch()
    result = judge(scenario, expected, scenario.run_jax(jit), oracle="live", jit=jit)
    return sorted({c.name for c in result.comparisons if not c.ok}), result


@pytest.mark.live_torch
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_a_faithful_port_agrees(jit):
    case = ModuleCase("torch.nn.Linear", tnn.Linear, (5, 3), inputs=((2, 5),), seed=4)
    failing, result = _failing_quantities(case, jit)
    assert failing == [], result.explain()


@pytest.mark.live_torch
def test_a_wrong_init_replay_is_caught_at_init_and_downstream():
    case = ModuleCase("torch.nn.Linear", _ZeroBiasInit, (5, 3), inputs=((2, 5),), modes=("train",), seed=4)
    failing, _ = _failing_quantities(case)
    assert "init bias" in failing and "init weight" not in failing
    assert "train.1 output0" in failing


@pytest.mark.live_torch
def test_a_wrong_forward_is_caught_in_outputs_and_gradients():
    case = ModuleCase("torch.nn.Linear", _DoubledLinear, (5, 3), inputs=((2, 5),), modes=("train",), seed=4)
    failing, _ = _failing_quantities(case)
    assert {"train.1 output0", "train.1 grad input0", "train.1 grad weight", "train.1 grad bias"} <= set(failing)
    assert not any(name.startswith("init") for name in failing)


@pytest.mark.live_torch
def test_a_wrong_running_statistic_is_caught_in_the_buffers():
    case = ModuleCase("torch.nn.BatchNorm1d", _OtherMomentum, (3,), inputs=((4, 3),), modes=("train", "eval"), seed=4)
    failing, _ = _failing_quantities(case)
    assert {"train.1 running_mean", "train.1 running_var"} <= set(failing)
    assert "train.1 output0" not in failing  # training normalises with the batch's statistics
    assert "eval.2 output0" in failing  # eval reads the wrong running statistics


@pytest.mark.live_torch
def test_error_cases_compare_type_and_pytorchs_message():
    agrees = ErrorCase("torch.nn.Linear", tnn.Linear, "features", (4, 2), inputs=((3, 5),))
    assert _failing_quantities(agrees)[0] == []
    lenient = ErrorCase("torch.nn.BatchNorm1d", _Lenient, "lenient", (3,), inputs=((3,),))
    assert _failing_quantities(lenient)[0] == ["error message", "error type"]


def test_case_names_and_inputs_are_deterministic():
    case = ModuleCase(
        "torch.nn.BatchNorm2d",
        "torchsem.nn.BatchNorm2d",
        (3,),
        {"momentum": None},
        inputs=(Input((2, 3, 2, 2), offset=1.0, fixed=(np.inf, 0.0)),),
        modes=("train", "eval"),
    )
    assert case.scenario("batchnorm", "s").name == "batchnorm/batchnorm2d-3-momentum=none-in=2x3x2x2"
    first, second = case.make_inputs(), case.make_inputs()
    assert sorted(first) == ["input0.1", "input0.2"]  # a fresh batch per step
    np.testing.assert_array_equal(first["input0.1"], second["input0.1"])
    assert not np.array_equal(first["input0.1"], first["input0.2"])
    assert first["input0.1"].reshape(-1)[0] == np.inf and first["input0.1"].reshape(-1)[1] == 0.0
    ints = Input((50,), "int64", low=-3, high=3).draw(np.random.default_rng(0))
    assert ints.dtype == np.int64 and ints.min() >= -3 and ints.max() < 3


def test_bad_case_declarations_are_refused():
    with pytest.raises(ValueError, match="modes must be a non-empty sequence of 'train'/'eval'"):
        ModuleCase("torch.nn.Linear", tnn.Linear, (2, 2), inputs=((2,),), modes=("training",))
    with pytest.raises(ValueError, match="needs at least one input"):
        ModuleCase("torch.nn.Linear", tnn.Linear, (2, 2))


def test_init_quantities_are_compared_exactly_and_others_by_the_stated_tolerance():
    from torchsem.compare import Tolerance

    loose = Tolerance(1e-4, 1e-5, "stated for the test")
    case = ModuleCase("torch.nn.Linear", tnn.Linear, (2, 2), inputs=((2,),), tolerances={"grad weight": loose})
    scenario = case.scenario("selftest", "s")
    assert scenario.tolerance_for("init weight").rtol == 0 and scenario.tolerance_for("init weight").atol == 0
    assert scenario.tolerance_for("train.1 grad weight") is loose
    assert scenario.tolerance_for("train.1 output0").is_default
