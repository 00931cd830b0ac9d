"""Which of PyTorch's CPU kernels the local machine would run.

PyTorch compiles its CPU kernels several times (DEFAULT, AVX2, AVX512) and dispatches on the
CPU at run time. Only the float32 normal fill for 16+ elements differs between them: the
AVX2 build (also used on AVX512 machines, where ``normal_stub`` is registered as
"no AVX512") evaluates ``avx_mathfun.h`` polynomials; the DEFAULT build calls libm's float
``logf``/``cosf``/``sinf``, which this package does not reproduce.
"""

from __future__ import annotations

import functools
import os
import platform

AVX2 = "avx2"
DEFAULT = "default"
UNKNOWN = "unknown"


def _linux_cpu_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None


@functools.cache
def normal_kernel_build() -> str:
    """The kernel build PyTorch's CPU normal fill would use here: ``"avx2"``, ``"default"`` or ``"unknown"``.

    Honours ``ATEN_CPU_CAPABILITY`` the way PyTorch does (``default`` forces the portable
    build; ``avx2``/``avx512`` are used only when the CPU supports AVX2 and FMA).
    """
    requested = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if requested == "default":
        return DEFAULT
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return DEFAULT
    flags = _linux_cpu_flags()
    if flags is None:
        return UNKNOWN
    return AVX2 if {"avx2", "fma"} <= flags else DEFAULT
