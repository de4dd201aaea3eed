"""Device and precision selection: one clear error when the request cannot be met."""
from __future__ import annotations

import torch

from .errors import DeviceError

DEVICES = ("auto", "cpu", "cuda", "mps")
# fp64 is a reference precision for verification (slow; e.g. the AdaAttN oracle tests), not offered to artists
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}


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


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    name = (name or "fp32").lower()
    if name not in PRECISIONS:
        raise DeviceError(f"unknown precision '{name}': expected one of {', '.join(PRECISIONS)}")
    if name in ("fp16", "bf16") and device.type == "cpu":
        raise DeviceError(f"precision '{name}' is for GPUs (cuda, mps); on cpu use fp32")
    if name in ("bf16", "fp64") and device.type == "mps":
        raise DeviceError(f"precision '{name}' is not supported on mps; use fp16 or fp32")
    return PRECISIONS[name]
