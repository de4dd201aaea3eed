"""Stylizer: loads the checkpoints once and runs SANet with the runtime controls on any image.

Sizes: the network needs sides that are multiples of 16 (relu5_1 must be exactly half of relu4_1) and at least
32 (reflection padding at relu5_1). Other sizes are padded at the bottom/right by reflection (edge replication
for sides too small to reflect), run, and cropped back, so the result always has exactly the input size.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from contextlib import contextmanager
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoints import DECODER_FILE, TRANSFORMER_FILE, VGG_FILE, load_checkpoints
from .controls import blend_selection, check_alpha, coefficient_maps, normalised_weights, preserve_colour
from .devices import resolve_device, resolve_precision
from .errors import Cancelled, DeviceError, InputError
from .images import as_mask, merge_layer, split_layer
from .network import ENCODER_SLICES, Transform, build_decoder, build_encoder
from .transform import StyleLevel, style_level, transform_features
from . import scsa
from .weights import resolve_weights_dir
from . import planner, tiled

# shared with the daemon, the plug-ins and clients: one definition in sanet_client.protocol
from sanet_client.protocol import DEFAULT_STYLE_MAX_SIDE, PREVIEW_LONG_SIDE  # noqa: E402
MIN_SIDE = 32

Progress = Callable[[float, str], None]


@dataclass
class StyleFeatures:
    """A style encoded once: attention keys/values at relu4_1 and relu5_1, on the Stylizer's device."""
    level4: StyleLevel
    level5: StyleLevel
    size: tuple[int, int]          # (height, width) the style was encoded at
    key: str                       # content hash + size + cap: identifies the source image


@dataclass
class Style:
    source: "np.ndarray | StyleFeatures"
    weight: float = 1.0
    region: np.ndarray | None = None   # soft mask at content size: where this style applies
    labels: np.ndarray | None = None   # SCSA label map at the style image's size (see sanet/scsa.py)


@dataclass
class _Run:
    """Per-call state shared by the stages (progress and cancellation)."""
    progress: Progress | None
    cancel_check: Callable[[], bool] | None
    done: float = 0.0

    def step(self, fraction: float, stage: str) -> None:
        if self.cancel_check is not None and self.cancel_check():
            raise Cancelled("cancelled")
        self.done = fraction
        if self.progress is not None:
            self.progress(fraction, stage)


def padded_size(h: int, w: int) -> tuple[int, int]:
    up = lambda n: max(MIN_SIDE, -(-n // 16) * 16)  # noqa: E731
    return up(h), up(w)


def pad_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pad N×C×H×W at the bottom/right to `size`: reflection where possible, edge replication otherwise."""
    ph, pw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    while ph > 0 or pw > 0:
        sh = min(ph, x.shape[-2] - 1)
        sw = min(pw, x.shape[-1] - 1)
        if sh <= 0 and sw <= 0:
            return F.pad(x, (0, pw, 0, ph), mode="replicate")
        x = F.pad(x, (0, max(sw, 0), 0, max(sh, 0)), mode="reflect")
        ph, pw = ph - max(sh, 0), pw - max(sw, 0)
    return x


_ftz = threading.local()


@contextmanager
def flush_denormals():
    """Flush denormal floats to zero while the engine runs, then restore the default (per thread, re-entrant).

    SANet's unscaled softmax is extremely peaked: most probabilities underflow to denormals, which x86 handles ~100×
    slower. The flag is thread-wide, so it is switched off again afterwards instead of leaking into the caller's code.
    """
    depth = getattr(_ftz, "depth", 0)
    if depth == 0:
        torch.set_flush_denormal(True)
    _ftz.depth = depth + 1
    try:
        yield
    finally:
        _ftz.depth = depth
        if depth == 0:
            torch.set_flush_denormal(False)


def _image_key(arr: np.ndarray, max_side: int | None) -> str:
    h = hashlib.blake2b(np.ascontiguousarray(arr).data, digest_size=16)
    h.update(f"{arr.shape}{arr.dtype}{max_side}".encode())
    return h.hexdigest()


class Stylizer:
    def __init__(self, weights_dir=None, device: str = "auto", precision: str = "fp32", style_cache_size: int = 8,
                 memory_budget: int | None = None):
        """memory_budget: bytes the engine may use beyond the image buffers; None → sanet.planner.default_budget
        (CPU 2 GiB, CUDA half the free device memory, MPS 4 GiB). Above it layers are stylized in tiles."""
        if memory_budget is not None and not (isinstance(memory_budget, (int, float)) and memory_budget > 0):
            raise InputError(f"memory_budget {memory_budget!r} is invalid: expected a positive number of bytes")
        self.memory_budget = None if memory_budget is None else int(memory_budget)
        self.last_plan: planner.Plan | None = None   # how the latest stylize() ran (for logs and tests)
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.precision = precision
        self.weights_dir = resolve_weights_dir(weights_dir)
        states = load_checkpoints(self.weights_dir)
        encoder = build_encoder()
        encoder.load_state_dict(states[VGG_FILE])
        kids = list(encoder.children())
        self._slices = [torch.nn.Sequential(*kids[a:b]) for a, b in ENCODER_SLICES]
        self._decoder = build_decoder()
        self._decoder.load_state_dict(states[DECODER_FILE])
        self._transform = Transform()
        self._transform.load_state_dict(states[TRANSFORMER_FILE])
        for m in self._slices + [self._decoder, self._transform]:
            m.eval().requires_grad_(False).to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
            for layer in m.modules():  # every ReLU follows a conv whose output nothing else reads: ~9% faster
                if isinstance(layer, torch.nn.ReLU):
                    layer.inplace = True
        self._cache: OrderedDict[str, StyleFeatures] = OrderedDict()
        self._cache_size = style_cache_size

    # ------------------------------------------------------------------ stages

    def _to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        return t.to(device=self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """relu4_1 and relu5_1 of a padded image tensor."""
        for s in self._slices[:4]:
            x = s(x)
        return x, self._slices[4](x)

    def encode_style(self, image: np.ndarray, *, max_side: int | None = DEFAULT_STYLE_MAX_SIDE) -> StyleFeatures:
        """Encode a style image once (cached by content and size); pass the result to stylize() any number of times."""
        key = _image_key(np.asarray(image), max_side)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        rgb = split_layer(image, "style image").rgb
        with torch.inference_mode(), flush_denormals():
            x = self._to_tensor(rgb)
            h, w = rgb.shape[:2]
            if max_side and max(h, w) > max_side:
                s = max_side / max(h, w)
                h, w = max(1, round(h * s)), max(1, round(w * s))
                x = F.interpolate(x, size=(h, w), mode="area")
            x = pad_to(x, (max(h, MIN_SIDE), max(w, MIN_SIDE)))
            f4, f5 = self._encode(x)
            feats = StyleFeatures(style_level(self._transform.sanet4_1, f4),
                                  style_level(self._transform.sanet5_1, f5), (h, w), key)
        self._cache[key] = feats
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return feats

    def _style_list(self, styles) -> list[Style]:
        if isinstance(styles, (np.ndarray, StyleFeatures, Style)):
            styles = [styles]
        out = [s if isinstance(s, Style) else Style(s) for s in styles]
        if not out:
            raise InputError("no style given: at least one style image is needed")
        return out

    # ------------------------------------------------------------------ public

    def stylize_raw(self, content: np.ndarray, styles, *, alpha: float = 1.0, preserve_color: bool = False,
                    selection: np.ndarray | None = None, preview: bool = False,
                    style_max_side: int | None = DEFAULT_STYLE_MAX_SIDE, progress: Progress | None = None,
                    cancel_check: Callable[[], bool] | None = None, content_labels: np.ndarray | None = None,
                    label_palette=None, scsa_weights: tuple[float, float] = (scsa.T1, scsa.T2)) -> np.ndarray:
        """Float32 H×W×3, unclamped: decoder output with the controls applied (what .npy output stores)."""
        return self._run(content, styles, alpha, preserve_color, selection, preview, style_max_side,
                         _Run(progress, cancel_check), semantic=(content_labels, label_palette, scsa_weights))[0]

    def stylize(self, content: np.ndarray, styles, *, alpha: float = 1.0, preserve_color: bool = False,
                selection: np.ndarray | None = None, preview: bool = False,
                style_max_side: int | None = DEFAULT_STYLE_MAX_SIDE, progress: Progress | None = None,
                cancel_check: Callable[[], bool] | None = None, content_labels: np.ndarray | None = None,
                label_palette=None, scsa_weights: tuple[float, float] = (scsa.T1, scsa.T2)) -> np.ndarray:
        """The stylized image in the content's own shape and dtype; alpha and unselected pixels untouched.
        content_labels + Style(labels=...): SCSA semantic attention (sanet/scsa.py; palette for colour maps)."""
        run = _Run(progress, cancel_check)
        raw, layer, sel = self._run(content, styles, alpha, preserve_color, selection, preview, style_max_side, run,
                                    semantic=(content_labels, label_palette, scsa_weights))
        out = merge_layer(raw, layer)
        if sel is not None:  # outside the selection the content stays bit-exact, not a float round trip
            keep = sel <= 0.0
            src = np.asarray(content).reshape(out.shape)
            out[keep] = src[keep]
        run.step(1.0, "done")
        return out

    def _run(self, *args, **kwargs):
        with flush_denormals():
            return self._execute(*args, **kwargs)

    def _execute(self, content, styles, alpha, preserve_color, selection, preview, style_max_side, run: _Run,
             semantic=None):
        """Validate, encode styles, plan (sanet.planner), execute whole or in tiles (sanet.tiled); on out-of-memory
        retry with a smaller plan. Colour preservation and the selection blend are per pixel: per tile when tiled."""
        alpha = check_alpha(alpha)
        layer = split_layer(content, "content image")
        h, w = layer.rgb.shape[:2]
        styles = self._style_list(styles)
        request = scsa.request_for(semantic, styles, (h, w))  # SCSA label maps; None: plain SANet
        regions = [None if s.region is None else as_mask(s.region, (h, w), f"style {i + 1} region")
                   for i, s in enumerate(styles)]
        weights = normalised_weights([float(s.weight) for s in styles], any(r is not None for r in regions))
        sel = None if selection is None else as_mask(selection, (h, w), "selection")

        with torch.inference_mode():
            run.step(0.0, "encode styles")
            sem = None if request is None else scsa.SemanticRun(self, request, styles, style_max_side)
            feats = []
            for i, s in enumerate(styles):
                feats.append(s.source if isinstance(s.source, StyleFeatures)
                             else sem.plain_features(i) if sem is not None and sem.applies(i)
                             else self.encode_style(s.source, max_side=style_max_side))
                run.step(0.3 * (i + 1) / len(styles), "encode styles")

            src = torch.from_numpy(layer.rgb).permute(2, 0, 1)[None]   # CPU view of the layer; tiles go to the device
            if preview and max(h, w) > PREVIEW_LONG_SIDE:
                s = PREVIEW_LONG_SIDE / max(h, w)
                src = F.interpolate(src, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
            rh, rw = src.shape[-2:]
            size = padded_size(rh, rw)
            if sem is not None:  # SCSA: the content label map, resized/padded like the content
                sem.bind_content(self, (h, w), (rh, rw), size)
            region_t = [None if r is None else pad_to(F.interpolate(torch.from_numpy(r)[None, None], size=(rh, rw),
                                                                    mode="area"), size)[0, 0]
                        for r in regions]
            coeffs = coefficient_maps(weights, region_t, (size[0] // 8, size[1] // 8), self.device, self.dtype)
            del regions, region_t   # full-size masks: only their 1/8-grid coefficient maps are needed from here
            rest = 1.0 - alpha * torch.stack(coeffs).sum(0)
            job = tiled.Job(self, src, [(f.level4, f.level5) for f in feats], alpha, coeffs, rest,
                            use_own=float(rest.max()) > 1e-6,  # T(c, c) for the α trade-off / uncovered regions
                            own_cap=style_max_side or DEFAULT_STYLE_MAX_SIDE, run=run, semantic=sem)
            same = (rh, rw) == (h, w)

            def finish(tile: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
                rgb = layer.rgb[rows, cols]
                if preserve_color:
                    tile = preserve_colour(tile, rgb)
                return blend_selection(tile, rgb, None if sel is None else sel[rows, cols])

            plan = planner.make_plan(rh, rw, self.device, self.dtype, self.memory_budget,
                                     max(f.level4.keys.shape[1] for f in feats))
            while True:
                failed = False
                try:
                    run_tiled = tiled.run_tiled if sem is None else sem.run_tiled   # SCSA: its own tile pass
                    raw = (run_tiled(job, plan, finish if same else None) if plan.tiled
                           else tiled.run_whole(job, plan))
                except RuntimeError as exc:   # torch.OutOfMemoryError (GPU) or the CPU allocator's RuntimeError
                    if not (isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc)):
                        raise
                    failed = True   # retried below, outside the handler, so the failed attempt's tensors are freed
                if not failed:
                    break
                smaller = plan.smaller(rh, rw)
                if smaller is None:
                    raise DeviceError(f"out of memory on {self.device} even with {plan.describe()}: use a smaller "
                                      f"image, a lower precision (fp16) or another device")
                plan = smaller
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                run.step(run.done, f"out of memory, retrying: {plan.describe()}")
            self.last_plan = plan
            if not same:
                out = torch.from_numpy(raw).permute(2, 0, 1)[None]
                raw = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
        run.step(0.95, "finish")
        if not (plan.tiled and same):
            if preserve_color:
                raw = preserve_colour(raw, layer.rgb)
            raw = blend_selection(raw, layer.rgb, sel)
        return np.ascontiguousarray(raw, dtype=np.float32), layer, sel

    def unload(self) -> None:
        """Free the model and cached styles (the daemon calls this after its keep-alive)."""
        self._cache.clear()
        self._slices = []
        self._decoder = self._transform = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
