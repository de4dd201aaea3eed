"""The one out-of-memory fallback chain: smaller plans, then (on GPUs) lower precision, then a clear error.

    plan P (planner)  ─OOM→ free memory, P.smaller() … down to the smallest tile; the smallest once more after freeing
                      ─OOM→ (GPU, fp32) the same walk in fp16; (CPU with bf16 hardware, fp32) the same walk in bf16
                      ─OOM→ OutOfMemory: one message naming the device, the last plan and what to try
Every step first frees what is not in use (the style cache, Python garbage, the CUDA caching allocator). The result
says what degraded: "retried after freeing GPU memory" (or "... memory" for a host allocation failure) when any
attempt ran out, and "ran in fp16 instead of fp32 to fit in GPU memory" (CPU: "ran in bf16 instead of fp32 to fit in
memory") when precision was lowered. A smaller plan
is not a degradation (tiles are exact); Stylizer.last_info["plan"] says which one ran.

The chain asks two questions about the device, is_gpu() and (on CPUs) cpu_bf16(); tests fake a GPU or a CPU with or
without bf16 by replacing those functions here (nothing else in the engine is told), and inject out-of-memory errors
by wrapping a model function.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..devices import PRECISIONS, cpu_bf16
from ..errors import OutOfMemory
from .planner import Plan

LOWER = {torch.float32: torch.float16}     # the fallback precision on GPUs (what fits in half the memory)
LOWER_CPU = {torch.float32: torch.bfloat16}   # on CPUs with bf16 hardware (the model's bf16 split)
NAMES = {v: k for k, v in PRECISIONS.items()}


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's CUDA OOM, the CPU allocator's, MPS's, or Python's MemoryError (host buffers)."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "MPS backend out of memory" in text)


def is_gpu(device: torch.device) -> bool:
    """Whether lower precision is part of the chain on this device (the only device question the chain asks)."""
    return device.type in ("cuda", "mps")


def lower_precision(device: torch.device, dtype: torch.dtype) -> torch.dtype | None:
    if is_gpu(device):
        return LOWER.get(dtype)
    return LOWER_CPU.get(dtype) if cpu_bf16() else None


@dataclass
class Outcome:
    value: object
    plan: Plan
    dtype: torch.dtype
    degraded: list[str] = field(default_factory=list)


def run_with_fallback(attempt: Callable[[Plan, torch.dtype], object], first_plan: Callable[[torch.dtype], Plan],
                      size: tuple[int, int], device: torch.device, dtype: torch.dtype,
                      free: Callable[[], None], on_retry: Callable[[str], None]) -> Outcome:
    """attempt(plan, dtype) until one fits; size = (height, width) the plans are for."""
    notes: list[str] = []
    precision, last, why = dtype, None, ""
    while precision is not None:
        plan, retried = None, False
        while True:
            error = None
            try:
                if plan is None:
                    plan = first_plan(precision)      # planning encodes the styles: it may run out too
                value = attempt(plan, precision)
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc):
                    raise
                error = exc   # handled below, outside the handler: the failed attempt's frames and tensors are freed
            if error is None:
                if precision != dtype:
                    notes.append(f"ran in {NAMES[precision]} instead of {NAMES[dtype]} to fit in "
                                 f"{'GPU ' if is_gpu(device) else ''}memory")
                return Outcome(value, plan, precision, notes)
            why = str(error).splitlines()[0] if str(error) else type(error).__name__
            note = ("retried after freeing GPU memory" if isinstance(error, torch.OutOfMemoryError)
                    else "retried after freeing memory")
            if note not in notes:
                notes.append(note)
            del error
            free()
            if plan is not None:
                last, plan = plan, plan.smaller(*size)
            if plan is None:
                if retried:
                    break
                retried, plan = True, last            # the smallest plan (or the planning) once more, after freeing
            if plan is not None:
                on_retry(f"out of memory, retrying: {plan.describe()}")
        precision = lower_precision(device, precision)
        if precision is not None:
            on_retry(f"out of memory, retrying in {NAMES[precision]}")
    lowest = lower_precision(device, dtype)
    lowered = f" in {NAMES[lowest]}" if lowest is not None else ""
    where = last.describe() if last is not None else "the styles alone"
    other = " or the CPU (--device cpu)" if is_gpu(device) else ""
    raise OutOfMemory(f"out of memory on {device} even with {where}{lowered} ({why}): try preview mode, "
                      f"a smaller layer{other}")
