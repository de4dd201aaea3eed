"""The networks on the device, per precision: loading, channels-last, the per-part precision of a call
(Model.cpu_bf16 on CPUs) and, optionally, compiled graphs (torch.compile with freezing) that never fail a call.

    store = ModuleStore(weights_dir, device)
    parts = store.parts(model, torch.bfloat16)        # SANet on a CPU: VGG to relu4_1 fp32, the rest bf16
    stages, nets = store.get(model, parts)            # stages cast their input to their own dtype

Each (model, dtype) is loaded once and kept: a preview in bf16 and the full-resolution result in fp32 alternate
without re-reading files. A lower precision is a cast copy of a higher one; a higher one is read from the files
(a cast down and up again would lose bits).
"""
from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass

import torch
from torch import nn

from .. import vgg
from ..checkpoints import expected_layout, load_checkpoints, read_state_dict, validate_state_dict
from ..models import Model

log = logging.getLogger("sanet.runtime")


@dataclass(frozen=True)
class Parts:
    """The dtype of every part of one call: encoder stages (relu1_1 .. relu5_1), transform, decoder."""
    encoder: tuple[torch.dtype, ...]
    transform: torch.dtype
    decoder: torch.dtype

    @property
    def widest(self) -> torch.dtype:
        """The dtype with the most bytes per element (what memory planning must assume)."""
        return max((*self.encoder, self.transform, self.decoder), key=lambda d: torch.finfo(d).bits)

    @property
    def mixed(self) -> bool:
        return len({*self.encoder, self.transform, self.decoder}) > 1


def parts_for(model: Model, device: torch.device, dtype: torch.dtype) -> Parts:
    """bf16 on a CPU: the model's measured split (Model.cpu_bf16); any other precision: every part in it."""
    if device.type == "cpu" and dtype == torch.bfloat16:
        low = model.cpu_bf16
        pick = lambda is_low: dtype if is_low else torch.float32  # noqa: E731
        return Parts(tuple(pick(x) for x in low.encoder), pick(low.transform), pick(low.decoder))
    return Parts((dtype,) * len(vgg.ENCODER_SLICES), dtype, dtype)


def prepare(module: nn.Module, device, dtype) -> nn.Module:
    module.eval().requires_grad_(False).to(device=device, dtype=dtype, memory_format=torch.channels_last)
    for layer in module.modules():  # every ReLU follows a conv whose output nothing else reads: ~9% faster
        if isinstance(layer, nn.ReLU):
            layer.inplace = True
    return module


class AtDtype(nn.Module):
    """A stage that runs in its own dtype: casts its input (a no-op when it already is)."""

    def __init__(self, module: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.module, self.dtype = module, dtype

    def forward(self, x):
        return self.module(x.to(self.dtype))

    @property
    def cast_sequential(self) -> tuple[torch.dtype, nn.Module]:
        """(dtype, module): sanet.interrupt.sequential runs the module layer by layer after the cast, so a stage
        keeps its cancellation points inside."""
        return self.dtype, self.module


def _bits(dtype: torch.dtype) -> int:
    return torch.finfo(dtype).bits


class ModuleStore:
    """Loaded modules per (model, dtype) and the encoder per dtype, on one device."""

    def __init__(self, weights_dir, device: torch.device, compiler=None):
        """compiler: a sanet.runtime.compiled.Compiler, or None (eager only)."""
        self.weights_dir = weights_dir
        self.device = device
        self.compiler = compiler
        self._encoders: dict[torch.dtype, list[nn.Module]] = {}
        self._nets: dict[tuple[str, torch.dtype], dict[str, nn.Module]] = {}
        self._lock = threading.RLock()   # the daemon's compiler thread reads what the worker loads
        # Modules of a (model, dtype) never change once made, so cached features stay valid until clear(); this
        # counts clears and is part of every content-cache key (sanet.runtime.cache.ContentCache).
        self.generation = 0

    def parts(self, model: Model, dtype: torch.dtype) -> Parts:
        return parts_for(model, self.device, dtype)

    # ---------------------------------------------------------------- one dtype

    def nets(self, model: Model, dtype: torch.dtype) -> dict[str, nn.Module]:
        with self._lock:
            key = (model.name, dtype)
            if key not in self._nets:
                source = self._castable_from(model.name, dtype)
                if source is not None:
                    self._nets[key] = {role: copy.deepcopy(m).to(dtype=dtype) for role, m in source.items()}
                else:
                    states = load_checkpoints(self.weights_dir, model)   # validates every file, the VGG's too
                    nets = model.build()
                    for role, module in nets.items():
                        module.load_state_dict(states[model.files[role]])
                        prepare(module, self.device, dtype)
                    self._nets[key] = nets
                    if dtype not in self._encoders:
                        self._encoders[dtype] = self._build_encoder(states[vgg.VGG_FILE], dtype)
            return self._nets[key]

    def encoder(self, dtype: torch.dtype) -> list[nn.Module]:
        with self._lock:
            if dtype not in self._encoders:
                wider = [d for d in self._encoders if _bits(d) > _bits(dtype)]
                if wider:
                    self._encoders[dtype] = [copy.deepcopy(s).to(dtype=dtype) for s in self._encoders[wider[0]]]
                else:
                    path = self.weights_dir / vgg.VGG_FILE
                    state = read_state_dict(path)
                    validate_state_dict(vgg.VGG_FILE, state, path)
                    self._encoders[dtype] = self._build_encoder(state, dtype)
            return self._encoders[dtype]

    def _castable_from(self, name: str, dtype: torch.dtype) -> dict[str, nn.Module] | None:
        for (n, d), nets in self._nets.items():
            if n == name and _bits(d) > _bits(dtype):
                return nets
        return None

    def _build_encoder(self, state: dict, dtype: torch.dtype) -> list[nn.Module]:
        keep = expected_layout()[vgg.VGG_FILE]
        encoder = vgg.build_encoder()
        encoder.load_state_dict({k: v for k, v in state.items() if k in keep})
        prepare(encoder, self.device, dtype)
        return vgg.slices(encoder)

    # ---------------------------------------------------------------- one call

    def get(self, model: Model, parts: Parts) -> tuple[list[nn.Module], dict[str, nn.Module]]:
        """(encoder stages, each casting its input to its dtype; nets: decoder roles in parts.decoder, the others
        in parts.transform), compiled where the compiler has a graph ready."""
        with self._lock:
            nets = dict(self.nets(model, parts.transform))
            if parts.decoder != parts.transform:
                low = self.nets(model, parts.decoder)
                nets.update({role: low[role] for role in model.decoder_roles})
            stages = [AtDtype(self.encoder(dt)[i], dt) for i, dt in enumerate(parts.encoder)]
        if self.compiler is not None:
            stages, nets = self.compiler.swap(model, parts, stages, nets)
        return stages, nets

    def loaded(self) -> list[tuple[str, torch.dtype]]:
        with self._lock:
            return list(self._nets)

    def clear(self) -> None:
        with self._lock:
            self._encoders.clear()
            self._nets.clear()
            self.generation += 1
        if self.compiler is not None:
            self.compiler.clear()
