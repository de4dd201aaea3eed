"""Device and precision selection: one clear error when the request cannot be met; what the CPU can do.

Precisions (names shared with the protocol: sanet_client.protocol.PRECISIONS):
    fp32   exact, everywhere
    bf16   on CPUs with AVX-512-BF16 or AMX-BF16 (the parts of each model that keep the quality bar run in bf16,
           the rest in fp32: Model.cpu_bf16, measured in docs/benchmarks.md); whole graph in bf16 on CUDA
    fp16   GPUs (cuda, mps) only
    auto   previews in the device's fast precision where it is a CPU with bf16 hardware, everything else fp32
    fp64   a slow reference precision for verification (tests), not offered to artists
"""
from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass

import torch

from .cpuflags import proc_cpuinfo, usable_cpus
from .errors import DeviceError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}
AUTO = "auto"


# ------------------------------------------------------------------------------------------------ the CPU

@dataclass(frozen=True)
class CpuInfo:
    """What this CPU offers the engine (detected once: torch's cpuinfo, else /proc/cpuinfo flags)."""
    name: str
    isa: str                  # the kernels torch dispatches to: "AVX512", "AVX2", "DEFAULT", ...
    avx512_bf16: bool
    amx_bf16: bool
    physical_cores: int
    logical_cores: int

    @property
    def bf16(self) -> bool:
        """bf16 arithmetic in hardware (oneDNN runs bf16 convolutions and matmuls on it)."""
        return self.avx512_bf16 or self.amx_bf16

    def describe(self) -> str:
        """One line: 'AMD EPYC, 2 physical cores, AVX512, bf16: AVX-512-BF16'."""
        units = [n for n, ok in (("AMX-BF16", self.amx_bf16), ("AVX-512-BF16", self.avx512_bf16)) if ok]
        return (f"{self.name}, {self.physical_cores} physical core{'s' if self.physical_cores != 1 else ''}, "
                f"{self.isa}, bf16: {' + '.join(units) if units else 'no (needs AVX-512-BF16 or AMX-BF16)'}")

    def as_dict(self) -> dict:
        return {**asdict(self), "bf16": self.bf16}


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    caps: dict = {}
    try:
        caps = dict(torch.cpu.get_capabilities())   # torch's cpuinfo (x86 and ARM), torch ≥ 2.8
    except Exception:  # noqa: BLE001  older torch or no cpuinfo: the kernel's flags instead
        caps = {}
    name, flags, _ = proc_cpuinfo()
    usable = usable_cpus()
    logical = int(caps.get("num_logical_cores") or os.cpu_count() or 1)
    physical = int(caps.get("num_physical_cores") or logical)
    # a container or `taskset` may allow fewer CPUs than the machine has: never plan threads beyond them
    physical = max(1, min(physical, usable))
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001
        isa = "unknown"
    return CpuInfo(
        name=name or str(caps.get("cpu_name") or platform.processor() or platform.machine()),
        isa=isa,
        avx512_bf16=bool(caps.get("avx512_bf16", "avx512_bf16" in flags)),
        amx_bf16=bool(caps.get("amx_bf16", "amx_bf16" in flags)),
        physical_cores=physical,
        logical_cores=min(logical, usable),
    )


def cpu_bf16() -> bool:
    """Whether bf16 is worth running on this CPU (hardware bf16; oneDNN must be there to use it)."""
    return cpu_info().bf16 and torch.backends.mkldnn.is_available()


# ------------------------------------------------------------------------------------------------ devices

def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> torch.device:
    name = (name or "auto").lower()
    base = name.split(":", 1)[0]
    if base not in DEVICES:
        raise DeviceError(f"unknown device '{name}': expected one of {', '.join(DEVICES)}")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch has no CUDA support" if torch.version.cuda is None else "no CUDA GPU was found"
            raise DeviceError(f"device 'cuda' is not available: {why} (torch {torch.__version__}); use --device cpu or auto")
        if ":" in name:
            idx = int(name.split(":", 1)[1])
            if idx >= torch.cuda.device_count():
                raise DeviceError(f"device '{name}' is not available: only {torch.cuda.device_count()} CUDA device(s)")
    if base == "mps" and not _mps_available():
        raise DeviceError("device 'mps' is not available: needs Apple silicon and a PyTorch built with MPS; use --device cpu or auto")
    return torch.device(name)


# ------------------------------------------------------------------------------------------------ precision

def fast_precision(device: torch.device) -> str | None:
    """The precision a "fast" choice means on this device: bf16 on a CPU with bf16 hardware, fp16 on GPUs; None where
    there is nothing faster than fp32 (a CPU without bf16)."""
    if device.type == "cpu":
        return "bf16" if cpu_bf16() else None
    return "fp16"


def precision_choices(device: torch.device) -> list[str]:
    """The precision names a request may use on this device (fp64, the test reference, aside)."""
    fast = fast_precision(device)
    if device.type == "cpu":
        return [AUTO, "fp32"] + ([fast] if fast else [])
    if device.type == "mps":
        return [AUTO, "fp32", "fp16"]
    return [AUTO, "fp32", "fp16", "bf16"]


def choose_precision(name: str | None, device: torch.device, preview: bool = False) -> str:
    """The concrete precision name ("fp32", "bf16", ...) a call runs in; `auto` → the fast precision for previews
    on a CPU with bf16 hardware, fp32 otherwise. Unusable requests raise one DeviceError line."""
    name = (name or "fp32").lower()
    if name == AUTO:
        fast = fast_precision(device) if device.type == "cpu" else None
        return fast if (preview and fast) else "fp32"
    if name not in PRECISIONS:
        raise DeviceError(f"unknown precision '{name}': expected one of {', '.join((AUTO, *PRECISIONS))}")
    if device.type == "cpu":
        if name == "fp16":
            raise DeviceError("precision 'fp16' is for GPUs (cuda, mps); on cpu use bf16 (CPUs with AVX-512-BF16 "
                              "or AMX-BF16), fp32 or auto")
        if name == "bf16" and not cpu_bf16():
            raise DeviceError(f"precision 'bf16' needs a CPU with AVX-512-BF16 or AMX-BF16; this one "
                              f"({cpu_info().name}, {cpu_info().isa}) has none: use fp32 or auto")
    if name in ("bf16", "fp64") and device.type == "mps":
        raise DeviceError(f"precision '{name}' is not supported on mps; use fp16 or fp32")
    return name


def resolve_precision(name: str | None, device: torch.device, preview: bool = False) -> torch.dtype:
    return PRECISIONS[choose_precision(name, device, preview)]


def capabilities(device: torch.device | None = None) -> dict:
    """What `sanetd status` and `sanet --version` report: torch, the CPU, threads, and the device's precisions."""
    cpu = cpu_info()
    out = {"torch": torch.__version__, "cpu": cpu.as_dict(), "cpu_summary": cpu.describe(),
           "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if device is not None:
        out.update(device=str(device), precisions=precision_choices(device), fast_precision=fast_precision(device))
    return out
