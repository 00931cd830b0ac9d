"""Which of PyTorch's CPU kernels the local machine would run.

PyTorch compiles its CPU kernels several times (DEFAULT, AVX2, AVX512) and dispatches on the
CPU at run time. Two things differ between them for the generator:

- the float32 normal fill for 16+ elements: the AVX2 build (also used on AVX512 machines,
  where ``normal_stub`` is registered as "no AVX512") evaluates ``avx_mathfun.h``
  polynomials; the DEFAULT build calls libm's float ``logf``/``cosf``/``sinf``, which this
  package does not reproduce;
- ``a * b + c`` in ``uniform_`` (``u * (b - a) + a``) and the normal (``z * std + mean``): the
  AVX2/AVX512 builds are compiled with FMA and contract it (one rounding); the x86-64 DEFAULT
  build has no FMA instruction and rounds the product first (measured here with
  ``ATEN_CPU_CAPABILITY=default``).
"""

from __future__ import annotations

import functools
import os
import platform


class UnsupportedKernel(NotImplementedError):
    """The PyTorch CPU kernel this machine would run is one torchsem does not reproduce bit for bit.

    Raised rather than returning numbers that are merely close (the float32 normal fill of
    PyTorch's DEFAULT build, which calls libm's ``logf``/``sinf``/``cosf``). The test suite
    skips, with this message, what depends on it.
    """


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


def fma_contracted() -> bool:
    """Whether PyTorch's CPU kernels here round ``a * b + c`` once (FMA) or twice.

    It decides ``uniform_``'s ``fma(u, b - a, a)`` and the normal's ``fma(z, std, mean)``.

    On x86-64 the AVX2 build fuses and the DEFAULT build does not (``ATEN_CPU_CAPABILITY``
    honoured as PyTorch does). Elsewhere (aarch64, where FMA is part of the base instruction
    set and compilers contract by default) it is taken to fuse; that is not verified on such a
    machine here.
    """
    if platform.machine().lower() in ("x86_64", "amd64"):
        return normal_kernel_build() == AVX2
    return True
