"""Compiled graphs for the convolution stacks (the VGG stages and the decoder), built in the background, never on
a request's path, never able to fail one.

    compiler = Compiler(device)            # Stylizer(compile=True) makes one; ModuleStore.get swaps modules in
    stage = compiler.wrap(module)          # forward: the compiled graph for this input shape if it is built,
                                           # else eager at once and the shape queued for the background thread

torch.compile (inductor, weights frozen into the graph: prepacked for oneDNN, no reorder per call) specialises on
the input shape, so a graph is built per (module, shape, dtype) — once per model and size bucket: the daemon warms the
preview size at start-up (sanetd --compile), other sizes are built the first time they are seen and used from then
on. Inductor's on-disk cache (TORCHINDUCTOR_CACHE_DIR, default in the user cache dir) makes later processes build
them in seconds. Any failure — building or running — logs one line and that module runs eager from then on.

Measured on the 2-core AVX-512-BF16 machine (docs/benchmarks.md): 3-4 % faster in bf16 and 8-14 % in fp32 per
stack, for 46-230 s of building per shape; so compiling is opt-in, not the default.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger("sanet.runtime")


def _default_cache_dir() -> str:
    try:
        import platformdirs
        return str(Path(platformdirs.user_cache_dir("sanet-style")) / "inductor")
    except ImportError:   # pragma: no cover  (platformdirs is a dependency of the daemon, not of the engine)
        return str(Path.home() / ".cache" / "sanet-style" / "inductor")


class Compiler:
    def __init__(self, device: torch.device, backend: str = "inductor"):
        self.device = device
        self.backend = backend
        self._fns: dict[int, object] = {}            # id(module) → its torch.compile wrapper
        self._built: set[tuple] = set()              # (id(module), shape, dtype) whose graph is ready
        self._pending: set[tuple] = set()
        self.failed: dict[int, str] = {}             # id(module) → why it runs eager
        self.disabled: str | None = None             # why nothing can be compiled here (no C++ compiler, ...)
        self._wrapped: dict[int, "Compiled"] = {}
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.idle = threading.Event()
        self.idle.set()
        if backend == "inductor":
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", _default_cache_dir())

    # ---------------------------------------------------------------- wrapping

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module, compiled per input shape once built (same parameters: it is not copied)."""
        with self._lock:
            w = self._wrapped.get(id(module))
            if w is None:
                w = self._wrapped[id(module)] = Compiled(self, module)
            return w

    def swap(self, model, parts, stages: list[nn.Module], nets: dict[str, nn.Module]):
        """ModuleStore.get's hook: the encoder stages and the decoder roles' convolution stacks wrapped."""
        if self.device.type != "cpu":
            return stages, nets
        stages = [type(s)(self.wrap(s.module), s.dtype) if hasattr(s, "module") else self.wrap(s) for s in stages]
        nets = dict(nets)
        for role in model.decoder_roles:
            nets[role] = self._wrap_stacks(nets[role])
        return stages, nets

    def _wrap_stacks(self, module: nn.Module) -> nn.Module:
        """A Sequential is wrapped whole; otherwise a shallow copy whose Sequential children are (AdaAttN's decoder:
        decoder_layer_1 / decoder_layer_2, called by name from the model's decode)."""
        if isinstance(module, nn.Sequential):
            return self.wrap(module)
        with self._lock:
            key = ("stacks", id(module))
            copy = self._wrapped.get(key)
        if copy is None:
            copy = nn.Module.__new__(type(module))
            copy.__dict__ = dict(module.__dict__)
            copy._modules = {name: (self.wrap(child) if isinstance(child, nn.Sequential) else child)
                             for name, child in module._modules.items()}
            with self._lock:
                self._wrapped[key] = copy
        return copy

    # ---------------------------------------------------------------- graphs

    def graph(self, module: nn.Module, x: torch.Tensor):
        """The compiled callable for x's shape if built; else None (and the shape is queued)."""
        key = (id(module), tuple(x.shape), x.dtype)
        with self._lock:
            if self.disabled or id(module) in self.failed:
                return None
            if key in self._built:
                return self._fns[id(module)]
            if key not in self._pending:
                self._pending.add(key)
                self._queue.put((module, key, torch.empty_like(x)))   # the shape and layout, not the pixels
                self.idle.clear()
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._build_loop, name="sanet-compile", daemon=True)
                    self._thread.start()
        return None

    def fail(self, module: nn.Module, why: str) -> None:
        with self._lock:
            first = id(module) not in self.failed
            self.failed[id(module)] = why
        if first:
            log.warning("compiled graph unavailable for %s (%s): running it eager", type(module).__name__, why)

    def _compiled_fn(self, module: nn.Module):
        fn = self._fns.get(id(module))
        if fn is None:
            options = {"freezing": True} if self.backend == "inductor" else None
            fn = torch.compile(module, backend=self.backend, dynamic=False, options=options)
            self._fns[id(module)] = fn
        return fn

    def _disable(self, why: str) -> None:
        with self._lock:
            first = self.disabled is None
            self.disabled = why
            dropped = len(self._pending)
            while True:
                try:
                    _, key, _ = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._pending.discard(key)
        if first:
            log.warning("torch.compile cannot build graphs on this machine (%s): everything runs eager "
                        "(%d queued graph(s) dropped)", why, max(0, dropped - 1))

    def _build_loop(self) -> None:
        while True:
            try:
                module, key, example = self._queue.get(timeout=1.0)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        self.idle.set()
                        return
                continue
            try:
                with torch.inference_mode():
                    self._compiled_fn(module)(example)
                with self._lock:
                    self._built.add(key)
                log.info("compiled %s for %s %s", type(module).__name__, list(key[1]), str(key[2]).split(".")[-1])
            except Exception as exc:  # noqa: BLE001  compiling must never fail a request: eager from now on
                why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                self.fail(module, why)
                if _machine_wide(why):            # every other graph would fail the same way: stop trying
                    self._disable(why)
            finally:
                with self._lock:
                    self._pending.discard(key)

    def warm(self, module_calls) -> None:
        """Queue graphs for (module, example input) pairs (the daemon's start-up warm-up)."""
        for module, x in module_calls:
            self.graph(module, x)

    def status(self) -> dict:
        with self._lock:
            return {"built": len(self._built), "pending": len(self._pending), "failed": len(self.failed),
                    "backend": self.backend, "disabled": self.disabled}

    def clear(self) -> None:
        with self._lock:
            self._wrapped.clear()
            self._fns.clear()
            self._built.clear()
            self.failed.clear()


def _machine_wide(why: str) -> bool:
    """A failure no other graph can escape (inductor needs a working C++ compiler on CPUs)."""
    return "InvalidCxxCompiler" in why or "C++ compiler" in why


class Compiled(nn.Module):
    """An eager module and, per input shape, its compiled graph once the compiler has built it."""

    def __init__(self, compiler: Compiler, module: nn.Module):
        super().__init__()
        self.module = module
        object.__setattr__(self, "_compiler", compiler)   # not a submodule

    def forward(self, x):
        fn = self._compiler.graph(self.module, x)
        if fn is not None:
            try:
                return fn(x)
            except Exception as exc:  # noqa: BLE001  never fail a request: eager from now on
                self._compiler.fail(self.module, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return self.module(x)
