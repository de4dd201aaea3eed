"""Stylizer: the public entry point. Loads models lazily (the default one at once), encodes styles into the one
cache, validates inputs, plans, runs the plan through the out-of-memory chain, applies the per-pixel controls.

    st = Stylizer(weights_dir, device="auto")                    # SANet loaded now; AdaAttN on first use
    out = st.stylize(content, [Style(img, weight=0.7, region=mask), Style(img2)], alpha=0.8, model="adaattn")

Sizes: any. Contents are padded to multiples of 16 (sanet.runtime.padding) and cropped back; styles above
`style_max_side` are downscaled (area) before encoding, and padded to at least 32 px.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import interrupt, vgg
from ..checkpoints import installed_models
from ..devices import resolve_device, resolve_precision
from ..errors import InputError
from ..images import as_mask, merge_layer, split_layer
from ..labels import LabelMap, grid_labels, label_key, make_request, resize_labels
from ..models import Model, get_model
from ..models.base import STYLE_KEYS
from ..weights import resolve_weights_dir
from . import oom, planner
from .cache import DEFAULT_BYTES, DEFAULT_CONTENT_BYTES, DEFAULT_ENTRIES, ContentCache, FeatureCache, image_key
from .controls import blend_selection, check_alpha, coefficient_maps, normalised_weights, preserve_colour
from .execute import Job, Progress, Run, execute
from .modules import ModuleStore
from .padding import MIN_SIDE, pad_to, padded_size
from .stats import Stats

# shared with the daemon, the plug-ins and clients: one definition in sanet_client.protocol
from sanet_client.protocol import DEFAULT_STYLE_MAX_SIDE, PREVIEW_LONG_SIDE  # noqa: E402


@dataclass
class StyleFeatures:
    """A style encoded once for one model: its attention memory on the Stylizer's device (opaque to callers)."""
    model: str                 # the model it was encoded for
    memory: object             # the model's style memory (keys/values per level)
    size: tuple[int, int]      # (height, width) the style was encoded at
    key: tuple                 # model, pixels digest, size cap, labels, options, dtype: the cache key
    dtype: torch.dtype


@dataclass
class Style:
    source: "np.ndarray | StyleFeatures"
    weight: float = 1.0
    region: np.ndarray | None = None   # soft mask at content size: where this style applies
    labels: np.ndarray | None = None   # SCSA label map at the style image's size (see sanet/labels.py)


_ftz = threading.local()


@contextmanager
def flush_denormals():
    """Flush denormal floats to zero while the engine runs, then restore the default (per thread, re-entrant).

    The unscaled softmax of SANet and AdaAttN is extremely peaked: most probabilities underflow to denormals, which
    x86 handles ~100× slower. The flag is thread-wide, so it is switched off again afterwards instead of leaking into
    the caller's code.
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


class Stylizer:
    def __init__(self, weights_dir=None, device: str = "auto", precision: str = "fp32",
                 style_cache_size: int = DEFAULT_ENTRIES, memory_budget: int | None = None, model: str = "sanet",
                 style_cache_bytes: int = DEFAULT_BYTES, compile: bool = False,
                 content_cache_bytes: int = DEFAULT_CONTENT_BYTES):
        """model: the default model, loaded now (a missing file is one WeightsError naming it and the folder); other
        models load on first use. memory_budget: bytes the engine may use for one call; None →
        sanet.runtime.planner.default_budget (CPU: what keeps the process near 2 GiB at the layer's size, CUDA half the
        free device memory, MPS 4 GiB). Above it
        layers are stylized in tiles. The style cache holds at most style_cache_size styles and style_cache_bytes.
        precision: "fp32" | "bf16" (CPUs with bf16 hardware: the parts that keep the quality bar, Model.cpu_bf16;
        GPUs: all) | "fp16" (GPUs) | "auto" (previews in bf16 on such CPUs, everything else fp32); every call may
        say another. compile: torch.compile (freezing) the encoder and decoder on CPUs, graphs built in the
        background (sanet.runtime.compiled), eager until they are ready and whenever compiling fails.
        content_cache_bytes bounds the feature reuse across calls (sanet.runtime.cache.ContentCache; 0 turns it off):
        a content stylized again (other α, weights, regions, colour option, selection, or another style) reuses its
        encoded maps and the transformed features of the styles it was already stylized with."""
        if memory_budget is not None and not (isinstance(memory_budget, (int, float)) and memory_budget > 0):
            raise InputError(f"memory_budget {memory_budget!r} is invalid: expected a positive number of bytes")
        self.memory_budget = None if memory_budget is None else int(memory_budget)
        self.last_plan: planner.Plan | None = None   # how the latest stylize() ran (for logs and tests)
        self.last_info: dict = {}                    # model, plan, precision, degraded (what the fallbacks changed)
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)     # full resolution's; previews may differ (auto)
        self.precision = (precision or "fp32").lower()
        self.model = get_model(model)
        self.weights_dir = resolve_weights_dir(weights_dir)
        self.style_cache = FeatureCache(style_cache_size, style_cache_bytes)
        self.compiler = None
        if compile:
            from .compiled import Compiler
            self.compiler = Compiler(self.device)
        self.store = ModuleStore(self.weights_dir, self.device, self.compiler)
        self.content_cache = ContentCache(content_cache_bytes)
        self.load(self.model)

    # ------------------------------------------------------------------ models

    def available_models(self) -> list[str]:
        """Models whose files are all in the weights folder (not loaded, not validated), then the installed model
        variants (MODEL:NAME, sanet.variants) whose files are all there."""
        return installed_models(self.weights_dir)

    def loaded_models(self) -> list[str]:
        """Models whose networks are in memory now (the others load on first use)."""
        return list(dict.fromkeys(name for name, _ in self.store.loaded()))

    def networks(self, model=None) -> dict:
        """The loaded modules of a model (default: the Stylizer's), in checkpoint layout, plus "encoder": the VGG
        stages relu1_1 .. relu5_1, in the Stylizer's precision. For tools, training and tests; the runtime itself
        passes them to the model."""
        m = self.load(model)
        return {"encoder": self.store.encoder(self.dtype), **self.store.nets(m, self.dtype)}

    def load(self, model=None) -> Model:
        """Load a model's weights now (otherwise the first call that needs them does)."""
        m = get_model(model) if model is not None else self.model
        self.store.nets(m, self.dtype)
        self.store.encoder(self.dtype)
        return m

    def _modules(self, model: Model, dtype: torch.dtype) -> tuple[list[torch.nn.Module], dict[str, torch.nn.Module]]:
        """(encoder stages, model nets) for a call in `dtype`: each part in the dtype the model's split gives it
        (sanet.runtime.modules)."""
        return self.store.get(model, self.store.parts(model, dtype))

    def clear_cache(self) -> None:
        """Forget every cached style and content feature (frees their device memory)."""
        self.style_cache.clear()
        self.content_cache.clear()

    def unload(self) -> None:
        """Free the models and cached styles (the daemon calls this after its keep-alive); a later call reloads."""
        self.clear_cache()
        self.store.clear()
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ styles

    def _to_device(self, rgb: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        return t.to(device=self.device, dtype=dtype).contiguous(memory_format=torch.channels_last)

    def _encode_as_style(self, model: Model, x: torch.Tensor, dtype: torch.dtype, labels: LabelMap | None = None,
                         style_keys: str = "sampled", label_image: torch.Tensor | None = None,
                         ids: torch.Tensor | None = None):
        """A style memory from an image tensor on the device, already resized (labels: image + ids resized too)."""
        stages, nets = self._modules(model, dtype)
        inner = self.store.parts(model, dtype).transform
        h, w = x.shape[-2:]
        pad = (max(h, MIN_SIDE), max(w, MIN_SIDE))
        label_enc = None
        if labels is not None and model.label_image:
            label_enc = vgg.encode(stages, pad_to(label_image, pad), model.levels)
        feats = {k: v.to(inner) for k, v in
                 model.features(vgg.encode(stages, pad_to(x, pad), model.levels), label_enc).items()}
        grids = None
        if labels is not None:
            ids = pad_to(ids, pad)[0, 0]
            grids = {}
            for name, f in model.feature_factors.items():
                if name in feats and f not in grids:
                    size = tuple(feats[name].shape[-2:])
                    grids[f] = grid_labels(ids, size).reshape(size)
        return model.style_memory(nets, feats, Stats.of(feats), grids, style_keys)

    def _style_features(self, model: Model, image: np.ndarray, max_side: int | None, dtype: torch.dtype,
                        style_keys: str = "sampled", labels: LabelMap | None = None,
                        what: str = "style image") -> StyleFeatures:
        arr = np.asarray(image)
        key = (model.name, image_key(arr), max_side, None if labels is None else label_key(labels), style_keys,
               str(dtype))
        hit = self.style_cache.get(key)
        if hit is not None:
            return hit
        rgb = split_layer(arr, what).rgb
        with torch.inference_mode(), flush_denormals():
            first = self.store.parts(model, dtype).encoder[0]   # the image in the first stage's dtype
            x = self._to_device(rgb, first)
            h, w = rgb.shape[:2]
            m = ids = None
            if labels is not None:
                m = self._to_device(labels.image, first)
                ids = torch.from_numpy(labels.ids.astype(np.float32))[None, None].to(self.device)
            if max_side and max(h, w) > max_side:
                s = max_side / max(h, w)
                h, w = max(1, round(h * s)), max(1, round(w * s))
                x = F.interpolate(x, size=(h, w), mode="area")
                if labels is not None:   # the map image and ids NEAREST: labels stay labels
                    m, ids = resize_labels(m, (h, w)), resize_labels(ids, (h, w))
            memory = self._encode_as_style(model, x, dtype, labels, style_keys, m, ids)
        feats = StyleFeatures(model.name, memory, (h, w), key, dtype)
        self.style_cache.put(key, feats)
        return feats

    def encode_style(self, image: np.ndarray, *, max_side: int | None = DEFAULT_STYLE_MAX_SIDE, model=None,
                     style_keys: str = "sampled", precision: str | None = None) -> StyleFeatures:
        """Encode a style image once (cached by model, pixels, size cap, options and precision); pass the result to
        stylize() any number of times (with the same model)."""
        m = self.model if model is None else get_model(model)
        _check_style_keys(style_keys)
        return self._style_features(m, image, max_side, self._dtype(precision), style_keys)

    def _dtype(self, precision: str | None, preview: bool = False) -> torch.dtype:
        """A call's dtype: its own precision, else the Stylizer's ("auto" picks per call: previews may differ)."""
        return resolve_precision(self.precision if precision is None else precision, self.device, preview)

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
                    label_palette=None, scsa_weights: tuple[float, float] | None = None, model=None,
                    style_keys: str = "sampled", precision: str | None = None,
                    content_key: str | None = None) -> np.ndarray:
        """Float32 H×W×3, unclamped: decoder output with the controls applied (what .npy output stores); the
        selection blends the unclamped values."""
        return self._run(content, styles, alpha, preserve_color, selection, preview, style_max_side,
                         Run(progress, cancel_check), (content_labels, label_palette, scsa_weights), model,
                         style_keys, precision, content_key, False)[0]

    def stylize(self, content: np.ndarray, styles, *, alpha: float = 1.0, preserve_color: bool = False,
                selection: np.ndarray | None = None, preview: bool = False,
                style_max_side: int | None = DEFAULT_STYLE_MAX_SIDE, progress: Progress | None = None,
                cancel_check: Callable[[], bool] | None = None, content_labels: np.ndarray | None = None,
                label_palette=None, scsa_weights: tuple[float, float] | None = None, model=None,
                style_keys: str = "sampled", precision: str | None = None,
                content_key: str | None = None) -> np.ndarray:
        """The stylized image in the content's own shape and dtype; alpha and unselected pixels untouched.
        content_labels + Style(labels=...): SCSA semantic attention (sanet/models/scsa.py; palette for colour maps).
        model: "sanet" | "adaattn" (None: the Stylizer's default). style_keys: AdaAttN's style keys, "sampled" (the
        released subsampling) or "all". precision: this call's ("fp32" | "fp16" | "bf16"; None: the Stylizer's).
        selection: sel·clamp(stylized) + (1 − sel)·content, what an editor shows when it composites the clamped
        result over the original; only the selection's bounding box (plus halo) is stylized, with the whole
        content's statistics. content_key: a digest the caller guarantees names the content's pixels (the daemon
        passes its layer digest); None: the engine hashes the content for its feature reuse. cancel_check() is
        polled between stages and inside them (sanet.interrupt)."""
        run = Run(progress, cancel_check)
        raw, layer, sel = self._run(content, styles, alpha, preserve_color, selection, preview, style_max_side, run,
                                    (content_labels, label_palette, scsa_weights), model, style_keys, precision,
                                    content_key, True)
        out = merge_layer(raw, layer)
        if sel is not None:  # outside the selection the content stays bit-exact, not a float round trip
            keep = sel <= 0.0
            src = np.asarray(content).reshape(out.shape)
            out[keep] = src[keep]
        run.step(1.0, "done")
        return out

    def _run(self, *args):
        run = args[7]
        with flush_denormals(), torch.inference_mode(), \
                interrupt.checking(run.check if run.cancel_check is not None else None):
            return self._execute(*args)

    def _execute(self, content, styles, alpha, preserve_color, selection, preview, style_max_side, run: Run,
                 semantic, model, style_keys, precision, content_key, clamp):
        """Validate, encode styles, plan (sanet.runtime.planner), execute (sanet.runtime.execute) through the
        out-of-memory chain (sanet.runtime.oom). Colour preservation and the selection blend are per pixel: per
        tile when tiled. clamp: blend the stylized values clamped to [0, 1] (image output), else unclamped (raw)."""
        m = self.model if model is None else get_model(model)
        _check_style_keys(style_keys)
        dtype = self._dtype(precision, preview)
        alpha = check_alpha(alpha)
        layer = split_layer(content, "content image")
        h, w = layer.rgb.shape[:2]
        styles = self._style_list(styles)
        for i, s in enumerate(styles):
            if isinstance(s.source, StyleFeatures) and s.source.model != m.name:
                raise InputError(f"style {i + 1}: its features were encoded for model '{s.source.model}', not "
                                 f"'{m.name}': encode it with model='{m.name}' or give the style image")
        request = self._semantic_request(semantic, styles, (h, w), m)
        regions = [None if s.region is None else as_mask(s.region, (h, w), f"style {i + 1} region")
                   for i, s in enumerate(styles)]
        weights = normalised_weights([float(s.weight) for s in styles], any(r is not None for r in regions))
        sel = None if selection is None else as_mask(selection, (h, w), "selection")
        cap = style_max_side or DEFAULT_STYLE_MAX_SIDE

        run.step(0.0, "encode styles")
        held: dict = {}     # this call's style memories at one dtype (kept across retries; the cache may be cleared)

        def memories(dt: torch.dtype) -> list:
            if held.get("dtype") != dt:
                held.pop("list", None)                 # drop the other precision's memories first
                held.pop("dtype", None)
                encoded, keys = [], []
                for i, s in enumerate(styles):
                    if request is not None and request.styles[i] is not None:
                        if isinstance(s.source, StyleFeatures):
                            raise InputError(f"style {i + 1}: a label map needs the style image, not pre-encoded "
                                             f"StyleFeatures")
                        f = self._style_features(m, s.source, style_max_side, dt, style_keys, request.styles[i],
                                                 f"style {i + 1} image")
                    elif isinstance(s.source, StyleFeatures):
                        f = s.source if s.source.dtype == dt else self._retype(s.source, dt, m)
                    else:
                        f = self._style_features(m, s.source, style_max_side, dt, style_keys,
                                                 what=f"style {i + 1} image")
                    encoded.append(f.memory)
                    keys.append(f.key)
                    if not held.get("reported"):
                        run.step(0.3 * (i + 1) / len(styles), "encode styles")
                held.update(dtype=dt, list=encoded, keys=keys, reported=True)   # once all of them are encoded
            return held["list"]

        src = torch.from_numpy(layer.rgb).permute(2, 0, 1)[None]   # CPU view of the layer; tiles go to the device
        if preview and max(h, w) > PREVIEW_LONG_SIDE:
            s = PREVIEW_LONG_SIDE / max(h, w)
            src = F.interpolate(src, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
        rh, rw = src.shape[-2:]
        size = padded_size(rh, rw)
        same = (rh, rw) == (h, w)
        region_t = [None if r is None else pad_to(F.interpolate(torch.from_numpy(r)[None, None], size=(rh, rw),
                                                                mode="area"), size)[0, 0]
                    for r in regions]
        coeffs = {name: coefficient_maps(weights, region_t, (size[0] // f, size[1] // f), self.device, dtype)
                  for name, f in m.decoder_inputs.items()}
        del regions, region_t   # full-size masks: only their coefficient maps are needed from here
        rest = {name: 1.0 - alpha * torch.stack(c).sum(0) for name, c in coeffs.items()}
        use_own = any(float(r.max()) > 1e-6 for r in rest.values())   # T(c, c) for the α trade-off / uncovered areas
        label_src, label_grids = self._content_labels(request, m, (h, w), (rh, rw), size)
        own_needs_full = not (cap and max(rh, rw) > cap)
        bbox = None if sel is None else _selection_box(sel, (rh, rw), size)
        reuse = self.content_cache.max_bytes > 0
        digest = (content_key or image_key(np.asarray(content))) if reuse else None
        labels_key = None if request is None else label_key(request.content)
        pair = None if request is None else (request.t1, request.t2)

        def own(maps, stats):
            """T(c, c)'s memory: the content's own maps up to the style cap; above it the content downscaled to the
            cap, exactly as a style would be (an 8K T(c, c) would otherwise attend over 518k positions)."""
            dt = held["dtype"]
            _, nets = self._modules(m, dt)
            if maps is not None:
                return m.style_memory(nets, maps, stats, None, style_keys)
            s = cap / max(rh, rw)
            x = F.interpolate(src, size=(max(1, round(rh * s)), max(1, round(rw * s))), mode="area")
            first = self.store.parts(m, dt).encoder[0]
            return self._encode_as_style(m, self._to_device(x[0].permute(1, 2, 0).numpy(), first), dt,
                                         style_keys=style_keys)

        def finish(tile: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
            rgb = layer.rgb[rows, cols]
            if preserve_color:
                tile = preserve_colour(tile, rgb)
            if clamp and sel is not None:
                tile = np.clip(tile, 0.0, 1.0)
            return blend_selection(tile, rgb, None if sel is None else sel[rows, cols])

        def first_plan(dt: torch.dtype) -> planner.Plan:
            positions = max(m.score_positions(mem) for mem in memories(dt))
            # mixed precisions (bf16 on CPUs) plan for the widest part: the fp32 encoder holds the peak
            return planner.make_plan(rh, rw, self.device, self.store.parts(m, dt).widest, self.memory_budget,
                                     positions, m.costs)

        def attempt(plan: planner.Plan, dt: torch.dtype) -> np.ndarray:
            stages, nets = self._modules(m, dt)
            parts = self.store.parts(m, dt)
            inner = parts.transform
            cast = lambda d: {k: ([x.to(inner) for x in v] if isinstance(v, list) else v.to(inner))  # noqa: E731
                              for k, v in d.items()}
            mems = memories(dt)
            keys = ckey = None
            if reuse:   # the keys of sanet.runtime.cache.ContentCache (its doc says what each must name)
                ckey = (m.name, self.store.generation, str(dt), digest, (rh, rw), labels_key,
                        plan.tile if plan.tiled else None)    # tiled maps differ from whole-image ones in the ulps
                keys = [(k, pair, plan.query_chunk) for k in held["keys"]]
                if use_own:
                    keys.append(("own", style_keys, own_needs_full, None if own_needs_full else cap,
                                 plan.query_chunk))
            job = Job(m, nets, stages, self.device, inner, src, mems, alpha, cast(coeffs),
                      cast(rest) if use_own else None, own, own_needs_full, run,
                      label_src, label_grids, pair, input_dtype=parts.encoder[0], decoder_dtype=parts.decoder,
                      bbox=bbox, cache=self.content_cache if reuse else None, content_key=ckey, keys=keys)
            return execute(job, plan, finish if same else None)

        def free() -> None:
            self.clear_cache()
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

        outcome = oom.run_with_fallback(attempt, first_plan, (rh, rw), self.device, dtype, free,
                                        lambda stage: run.step(run.done, stage))
        (raw, reused), plan = outcome.value, outcome.plan
        self.last_plan = plan
        self.last_info = {"model": m.name, "plan": plan.describe(), "precision": oom.NAMES[outcome.dtype],
                          "reused": reused if reuse else None}
        if bbox is not None:
            self.last_info["region"] = list(bbox)
        if outcome.degraded:
            self.last_info["degraded"] = list(outcome.degraded)
        if not same:
            out = torch.from_numpy(raw).permute(2, 0, 1)[None]
            raw = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
        run.step(0.95, "finish")
        if not same:
            if preserve_color:
                raw = preserve_colour(raw, layer.rgb)
            if clamp and sel is not None:
                raw = np.clip(raw, 0.0, 1.0)
            raw = blend_selection(raw, layer.rgb, sel)
        return np.ascontiguousarray(raw, dtype=np.float32), layer, sel

    def _retype(self, feats: StyleFeatures, dtype: torch.dtype, model: Model) -> StyleFeatures:
        """Pre-encoded features in another precision (the out-of-memory chain lowered it): tensors cast to the dtype
        the model's transform runs in at that precision."""
        inner = self.store.parts(model, dtype).transform

        def cast(obj):
            if isinstance(obj, torch.Tensor):
                return obj.to(inner) if obj.is_floating_point() else obj
            if isinstance(obj, dict):
                return {k: cast(v) for k, v in obj.items()}
            if hasattr(obj, "__dataclass_fields__"):
                return type(obj)(**{k: cast(getattr(obj, k)) for k in obj.__dataclass_fields__})
            return obj
        return StyleFeatures(feats.model, cast(feats.memory), feats.size, feats.key, dtype)

    def _semantic_request(self, semantic, styles: list[Style], content_hw, m: Model):
        """stylize()'s (content_labels, label_palette, scsa_weights) plus each Style.labels → a request or None."""
        content_labels, palette, weights = semantic
        hws = [None if isinstance(s.source, StyleFeatures) else np.asarray(s.source).shape[:2] for s in styles]
        request = make_request(content_labels, [s.labels for s in styles], palette,
                               m.scsa_weights if weights is None else weights, content_hw, hws)
        if request is not None:
            why = m.check_scsa_weights(request.t1, request.t2)
            if why:
                raise InputError(f"scsa_weights ({request.t1:g}, {request.t2:g}): {why}")
        return request

    def _content_labels(self, request, m: Model, content_hw, run_hw, pad_size):
        """The content label map through the same preview resize and padding as the content: the map image as a
        CPU tensor like the content's (if the model encodes it), the label ids at every feature grid."""
        if request is None:
            return None, None
        image = torch.from_numpy(request.content.image).permute(2, 0, 1)[None]
        ids = torch.from_numpy(request.content.ids.astype(np.float32))[None, None]
        if tuple(run_hw) != tuple(content_hw):
            image, ids = resize_labels(image, run_hw), resize_labels(ids, run_hw)
        ids = pad_to(ids, pad_size)[0, 0]
        grids = {}
        for f in sorted(set(m.feature_factors.values())):
            grid = (pad_size[0] // f, pad_size[1] // f)
            grids[f] = grid_labels(ids, grid).reshape(grid).to(self.device)
        return (image if m.label_image else None), grids


def _selection_box(sel: np.ndarray, run_hw: tuple[int, int], padded: tuple[int, int]
                   ) -> tuple[int, int, int, int] | None:
    """The padded-image rows y0:y1 and cols x0:x1 (multiples of 16) that hold every selected pixel, at the size the
    call runs at (a preview's: 2 px of margin for the upscale's bilinear neighbours); None when that is everything.
    An empty selection gives an empty box."""
    rows = np.flatnonzero(sel.max(axis=1) > 0)
    if rows.size == 0:
        return 0, 0, 0, 0
    cols = np.flatnonzero(sel.max(axis=0) > 0)
    (h, w), (rh, rw), (hp, wp) = sel.shape, run_hw, padded
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    if (rh, rw) != (h, w):
        y0, y1 = int(np.floor(y0 * rh / h)) - 2, int(np.ceil(y1 * rh / h)) + 2
        x0, x1 = int(np.floor(x0 * rw / w)) - 2, int(np.ceil(x1 * rw / w)) + 2
    y0, x0 = max(0, y0) // 16 * 16, max(0, x0) // 16 * 16
    y1, x1 = min(hp, -(-y1 // 16) * 16), min(wp, -(-x1 // 16) * 16)
    if (y0, y1, x0, x1) == (0, hp, 0, wp):
        return None
    return y0, y1, x0, x1


def _check_style_keys(style_keys: str) -> None:
    if style_keys not in STYLE_KEYS:
        raise InputError(f"style_keys '{style_keys}' is invalid: expected one of {', '.join(STYLE_KEYS)}")
