"""Test set-up: 8 host CPU devices, the oracle, jit/eager parametrisation, live-torch gating.

``TORCHSEM_ORACLE=recorded`` makes the suite take the path of a user without PyTorch:
``import torch`` is blocked for the whole session, so a library path that imports torch
fails loudly, and every parity check reads the recorded outputs shipped in the package.
"""

from __future__ import annotations

import os
import sys

# Must happen before jax is imported anywhere: the multi-device tests shard over 8 host CPUs.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()

_ORACLE_MODE = os.environ.get("TORCHSEM_ORACLE", "auto").strip().lower() or "auto"
if _ORACLE_MODE == "recorded":
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` now raises ImportError

import jax
import pytest
from hypothesis import HealthCheck, settings

from torchsem.compare import get_oracle, torch_available
from torchsem.random import UnsupportedKernel

settings.register_profile(
    "torchsem",
    deadline=None,  # jit compilation makes first examples slow; time is not what these tests check
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
)
settings.load_profile("torchsem")

LIVE_TORCH = _ORACLE_MODE != "recorded" and torch_available()
LIVE_TORCH_REASON = (
    "needs live PyTorch: TORCHSEM_ORACLE=recorded forces the recorded oracle"
    if _ORACLE_MODE == "recorded"
    else "needs live PyTorch: torch is not importable (pip install torch==2.13.0)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live_torch: needs live PyTorch")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if LIVE_TORCH:
        return
    skip = pytest.mark.skip(reason=LIVE_TORCH_REASON)
    for item in items:
        if "live_torch" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A test that needs a PyTorch CPU kernel torchsem does not reproduce here is skipped, not failed.

    ``torchsem.random`` raises ``UnsupportedKernel`` for PyTorch's DEFAULT-build float32 normal
    fill (x86-64 without AVX2+FMA, or ``ATEN_CPU_CAPABILITY=default``) instead of returning
    numbers that are only close; what depends on it cannot be checked on such a machine.
    """
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(UnsupportedKernel):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    devices = jax.devices()
    return [
        f"torchsem oracle: {_ORACLE_MODE} (live torch: {LIVE_TORCH}); "
        f"jax {jax.__version__} on {len(devices)} {devices[0].platform} devices"
    ]


@pytest.fixture(scope="session")
def oracle():
    """PyTorch's outputs: live when torch is importable (and not forced off), else recorded."""
    return get_oracle()


@pytest.fixture(params=[False, True], ids=["eager", "jit"])
def jit(request: pytest.FixtureRequest) -> bool:
    """Run a check both without and under ``jax.jit``."""
    return request.param


def maybe_jit(fn, use_jit: bool):
    """``jax.jit(fn)`` when ``use_jit``, else ``fn``."""
    return jax.jit(fn) if use_jit else fn
