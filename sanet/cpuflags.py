"""What the CPU offers, read without torch (for `sanet --version`, which must stay fast and torch-free).

sanet.devices.cpu_info() is the authority at run time (torch's cpuinfo first); this module reads the kernel's view:
/proc/cpuinfo on Linux. Elsewhere it knows the name and core count only and says bf16 is unknown.
"""
from __future__ import annotations

import os
import platform


def proc_cpuinfo() -> tuple[str, set[str], int]:
    """(model name, flags, physical cores) from /proc/cpuinfo; ("", set(), 0) where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return "", set(), 0
    name, flags, cores, phys = "", set(), set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and not name:
            name = value
        elif key == "flags" and not flags:
            flags = set(value.split())
        elif key == "physical id":
            phys = value
        elif key == "core id":
            cores.add((phys, value))
    return name, flags, len(cores)


def usable_cpus() -> int:
    """CPUs this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def summary() -> str:
    """One line for `sanet --version`: 'AMD EPYC, 2 physical cores, bf16: AVX-512-BF16'."""
    name, flags, physical = proc_cpuinfo()
    usable = usable_cpus()
    physical = max(1, min(physical or usable, usable))
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    if not flags:
        bf16 = "unknown here (see `sanetd status`)"
    else:
        units = [n for n, flag in (("AMX-BF16", "amx_bf16"), ("AVX-512-BF16", "avx512_bf16")) if flag in flags]
        bf16 = " + ".join(units) if units else "no (needs AVX-512-BF16 or AMX-BF16; precision auto runs fp32)"
    return f"{name}, {physical} physical core{'s' if physical != 1 else ''}, bf16: {bf16}"


def torch_version() -> str:
    """The installed torch's version from its metadata (torch itself is not imported)."""
    try:
        from importlib.metadata import version
        return version("torch")
    except Exception:  # noqa: BLE001  not installed, or an unusual install
        return "not installed"
