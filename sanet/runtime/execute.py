"""Executing a plan (sanet.runtime.planner) for any model: the content in overlapping tiles with exact global
statistics. The whole image is the one-tile case of the same runner (no halo, maps kept, no copy).

Two passes over the padded image (sides multiples of 16):
1. encode: tiles of the image with an 80-px halo (≥ the relu5_1 receptive field; origins on multiples of 16 so the
   max-pools align). Only true image borders see reflection padding — interior tile edges fall in the halo, which
   is cropped — so each tile core's feature maps (model.features) equal the whole-image maps. The per-channel
   mean/variance of every map (and SCSA's per-label statistics) are accumulated over the WHOLE image
   (sanet.runtime.stats), not per tile; the maps are kept when the plan allows, else re-encoded in pass 2.
2. stylize: tiles on the relu4_1 grid with a 10-cell halo (decoder receptive field: SANet ~4 cells, AdaAttN ~5, plus
   the merge conv). The model's transform normalises with the global statistics (everything but convolutions is
   pointwise), attention runs over ALL style positions (styles are capped, so keys/values fit), the controls'
   coefficient maps are sliced from whole-image maps at each decoder input's grid, and the decoder output is
   cropped to the tile core. Seams are cropped, not blended: the core is exact, so there is nothing to hide.
Selection and colour preservation are per-pixel, so they are applied per output tile (`finish`).

Selection-sized work: with `Job.bbox` (the selection's bounding box, aligned), pass 1 still encodes the WHOLE image
(the statistics are the whole layer's), but pass 2 only visits the parts of the tiles inside the box (each with its
halo): attention and decoder run over the box. Outside it the output is the content itself.

Feature reuse (`Job.cache`, sanet.runtime.cache.ContentCache): pass 1 is skipped when the content's maps and
statistics are cached; in pass 2 each memory's transformed features T(c, s) (and T(c, c)) over a tile's region are
taken from the cache when they are there, and only the missing ones are computed (in one transform call, sharing the
content queries) and stored. The mix and the decoder always run: they read α, style weights and regions. What was
reused is recorded in `Runner.reused`.

Cancellation: Run.step between stages and tiles; inside stages the model code reaches sanet.interrupt.point()
(between encoder/decoder layers, conv row bands, attention query chunks), which calls Run.check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import vgg
from ..errors import Cancelled
from ..models.base import Context, Model
from . import controls
from .cache import ContentCache
from .padding import pad_to, padded_size, spans
from .planner import DECODER_HALO, ENCODER_HALO, Plan
from .stats import Stats

Progress = Callable[[float, str], None]
Finish = Callable[[np.ndarray, slice, slice], np.ndarray]


@dataclass
class Run:
    """Per-call progress and cancellation, shared by the stages."""
    progress: Progress | None
    cancel_check: Callable[[], bool] | None
    done: float = 0.0

    def check(self) -> None:
        """Raise Cancelled if the call was cancelled (installed as sanet.interrupt's check while the call runs)."""
        if self.cancel_check is not None and self.cancel_check():
            raise Cancelled("cancelled")

    def step(self, fraction: float, stage: str) -> None:
        self.check()
        self.done = fraction
        if self.progress is not None:
            self.progress(fraction, stage)


@dataclass
class Job:
    """One stylization's inputs, on the run's device and dtype (the CPU image aside)."""
    model: Model
    nets: dict[str, nn.Module]
    encoder: list[nn.Module]                  # VGG stages relu1_1 .. relu5_1
    device: torch.device
    dtype: torch.dtype
    src: torch.Tensor                         # 1×3×rh×rw float32 on the CPU (a view of the layer when possible)
    memories: list                            # one per style, in order (model.style_memory)
    alpha: float
    coeffs: dict[str, list[torch.Tensor]]     # per decoder input: 1×1×h×w whole-image coefficient map per style
    rest: dict[str, torch.Tensor] | None      # per decoder input: 1 − α·Σ c_k, when T(c, c) is needed
    own: Callable | None = None               # own(maps, stats) → T(c, c)'s memory
    own_needs_full_maps: bool = False         # own() reads the whole content maps (content within the style cap)
    run: Run | None = None
    label_src: torch.Tensor | None = None     # SCSA: the content label-map image (CPU, like src), if the model reads it
    label_grids: dict[int, torch.Tensor] | None = None   # SCSA: content label ids per factor (whole padded grids)
    scsa_weights: tuple[float, float] | None = None
    input_dtype: torch.dtype | None = None    # the first encoder stage's (None: dtype); mixed precision on CPUs
    decoder_dtype: torch.dtype | None = None  # the decoder's (None: dtype); its inputs are cast to it
    bbox: tuple[int, int, int, int] | None = None   # padded-image rows y0:y1, cols x0:x1 (multiples of 16) to output
    cache: ContentCache | None = None               # feature reuse across calls (module doc)
    content_key: tuple | None = None                # the content's key in `cache`
    keys: list | None = None                        # one transform key per memory (+ T(c, c)'s when rest is given)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.src.shape[-2:])

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """An image crop for the encoder, in its first stage's dtype (the stages cast between themselves)."""
        return x.to(device=self.device, dtype=self.input_dtype or self.dtype).contiguous(
            memory_format=torch.channels_last)


class Runner:
    """The two passes of one plan (module doc)."""

    def __init__(self, job: Job, plan: Plan):
        self.job, self.plan, self.model = job, plan, job.model
        self.padded = padded_size(*job.size)
        hp, wp = self.padded
        self.single = not plan.tiled
        tile = max(hp, wp) if self.single else plan.tile
        self.tiles = [(y, x) for y in spans(hp, tile) for x in spans(wp, tile)]
        self.out_tiles = self.tiles if job.bbox is None else _clip(self.tiles, job.bbox)
        self.keep = self.single or plan.keep_features or job.own_needs_full_maps
        self.maps: dict[str, torch.Tensor] | None = None
        self.stats: Stats | None = None
        self.own = None
        self.memo: dict = {}
        self.cache = job.cache if job.content_key is not None and job.keys is not None else None
        n = len(job.memories)
        # what came from the cache: the content's maps + statistics, each style's T(c, s), T(c, c)
        self.reused = {"features": False, "styles": [True] * n, "own": True if job.rest is not None else None}

    def _factor(self, name: str) -> int:
        return self.model.feature_factors[name]

    # ---------------------------------------------------------------- features of an aligned region

    def encode_region(self, y0: int, y1: int, x0: int, x1: int) -> dict[str, torch.Tensor]:
        """The model's feature maps of padded-image rows y0:y1, cols x0:x1 (multiples of 16), equal to the
        whole-image maps there."""
        job, (hp, wp), (rh, rw) = self.job, self.padded, self.job.size
        ys, ye = max(0, y0 - ENCODER_HALO), min(hp, y1 + ENCODER_HALO)
        xs, xe = max(0, x0 - ENCODER_HALO), min(wp, x1 + ENCODER_HALO)

        def encode(src: torch.Tensor) -> dict[int, torch.Tensor]:
            crop = job.to_device(src[:, :, ys:min(ye, rh), xs:min(xe, rw)])
            return vgg.encode(job.encoder, pad_to(crop, (ye - ys, xe - xs)), self.model.levels)

        feats = self.model.features(encode(job.src), None if job.label_src is None else encode(job.label_src))
        out = {}
        for name, x in feats.items():
            f = self._factor(name)
            a, b = (y0 - ys) // f, (x0 - xs) // f
            out[name] = x[:, :, a:a + (y1 - y0) // f, b:b + (x1 - x0) // f].to(job.dtype)
        return out

    def features(self, ga: int, gb: int, gc: int, gd: int) -> dict[str, torch.Tensor]:
        """Maps on relu4_1 cells ga:gb × gc:gd (even bounds), every map on its matching cells."""
        if self.maps is not None:
            return {name: x[:, :, ga * 8 // self._factor(name):gb * 8 // self._factor(name),
                            gc * 8 // self._factor(name):gd * 8 // self._factor(name)] for name, x in self.maps.items()}
        return self.encode_region(8 * ga, 8 * gb, 8 * gc, 8 * gd)

    def _labels(self, rows: tuple[int, int], cols: tuple[int, int]) -> dict[int, torch.Tensor] | None:
        """Content label ids per factor on padded-image pixels rows × cols (multiples of 16)."""
        if self.job.label_grids is None:
            return None
        return {f: g[rows[0] // f:rows[1] // f, cols[0] // f:cols[1] // f] for f, g in self.job.label_grids.items()}

    # ---------------------------------------------------------------- pass 1

    def encode_pass(self, lo: float, hi: float) -> None:
        job, n = self.job, len(self.tiles)
        if self.cache is not None:
            hit = self.cache.features(job.content_key)
            if hit is not None and (hit[0] is not None or not self.keep):
                self.maps, self.stats = hit
                self.reused["features"] = True
                return
        semantic = job.label_grids is not None
        stats = Stats(job.device, job.dtype, self.model.region_stats if semantic else ())
        for i, ((y0, y1), (x0, x1)) in enumerate(self.tiles):
            job.run.step(lo + (hi - lo) * i / n, "encode content" if self.single else
                         f"encode content (tile {i + 1}/{n})")
            feats = self.encode_region(y0, y1, x0, x1)
            labels = None
            if semantic:
                grids = self._labels((y0, y1), (x0, x1))
                labels = {name: grids[self._factor(name)].reshape(-1) for name in self.model.region_stats}
            stats.add(feats, labels)
            if self.single:
                self.maps = feats
            elif self.keep:
                if self.maps is None:
                    hp, wp = self.padded
                    self.maps = {name: torch.empty(1, x.shape[1], hp // self._factor(name), wp // self._factor(name),
                                                   device=job.device, dtype=job.dtype
                                                   ).contiguous(memory_format=torch.channels_last)
                                 for name, x in feats.items()}
                for name, x in feats.items():
                    f = self._factor(name)
                    self.maps[name][:, :, y0 // f:y1 // f, x0 // f:x1 // f] = x
            del feats
        self.stats = stats
        if self.cache is not None:
            self.cache.put_features(job.content_key, self.maps, stats)

    # ---------------------------------------------------------------- pass 2

    def _own_memory(self):
        """T(c, c)'s memory, made on first need (not at all when every T(c, c) comes from the cache)."""
        if self.own is None:
            self.own = self.job.own(self.maps if self.job.own_needs_full_maps else None, self.stats)
        return self.own

    def transformed(self, ga: int, gb: int, gc: int, gd: int) -> list[dict[str, torch.Tensor]]:
        """T for every memory (and T(c, c) last, when the mix needs it) over relu4_1 cells ga:gb × gc:gd: from the
        cache where it is, the rest computed in one transform call and stored."""
        job, model = self.job, self.model
        count = len(job.memories) + (job.rest is not None)
        region = (ga, gb, gc, gd)
        outs: list = [None] * count
        if self.cache is not None:
            for i in range(count):
                outs[i] = self.cache.transformed(job.content_key, job.keys[i], region, model.decoder_inputs)
        missing = [i for i, o in enumerate(outs) if o is None]
        if missing:
            memories = [job.memories[i] if i < len(job.memories) else self._own_memory() for i in missing]
            feats = self.features(ga, gb, gc, gd)
            ctx = Context(self.stats, self._labels((8 * ga, 8 * gb), (8 * gc, 8 * gd)), self.plan.query_chunk,
                          self.memo, job.scsa_weights)
            computed = model.transform(job.nets, feats, ctx, memories)
            del feats
            for i, out in zip(missing, computed):
                outs[i] = out
                if self.cache is not None:
                    self.cache.put_transformed(job.content_key, job.keys[i], region, out)
                if i < len(job.memories):
                    self.reused["styles"][i] = False
                else:
                    self.reused["own"] = False
        return outs

    def stylize_tile(self, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """Decoder output for padded-image rows y0:y1, cols x0:x1, cropped to the real image: 1×3×h×w."""
        job, model = self.job, self.model
        hp, wp = self.padded
        gh, gw = hp // 8, wp // 8
        ga, gb = max(0, y0 // 8 - DECODER_HALO), min(gh, y1 // 8 + DECODER_HALO)
        gc, gd = max(0, x0 // 8 - DECODER_HALO), min(gw, x1 // 8 + DECODER_HALO)
        outs = self.transformed(ga, gb, gc, gd)
        region = {name: (slice(ga * 8 // f, gb * 8 // f), slice(gc * 8 // f, gd * 8 // f))
                  for name, f in model.decoder_inputs.items()}
        job.run.check()
        mixed = controls.mix(outs, job.alpha, job.coeffs, job.rest, region)
        del outs
        if job.decoder_dtype is not None and job.decoder_dtype != job.dtype:
            mixed = {name: x.to(job.decoder_dtype) for name, x in mixed.items()}
        out = model.decode(job.nets, mixed)
        rh, rw = job.size
        oy, ox = y0 - 8 * ga, x0 - 8 * gc
        return out[:, :, oy:oy + min(y1, rh) - y0, ox:ox + min(x1, rw) - x0]

    def stylize_pass(self, out: np.ndarray, finish: Finish | None, lo: float, hi: float) -> None:
        job, n = self.job, len(self.out_tiles)
        for i, ((y0, y1), (x0, x1)) in enumerate(self.out_tiles):
            job.run.step(lo + (hi - lo) * i / n, "stylize" if n == 1 else f"stylize (tile {i + 1}/{n})")
            tile = self.stylize_tile(y0, y1, x0, x1)[0].permute(1, 2, 0).float().cpu().numpy()
            rows, cols = slice(y0, y0 + tile.shape[0]), slice(x0, x0 + tile.shape[1])
            out[rows, cols] = finish(tile, rows, cols) if finish is not None else tile


def _clip(tiles, bbox) -> list:
    """The parts of the tiles inside bbox (y0, y1, x0, x1); empty parts dropped."""
    by0, by1, bx0, bx1 = bbox
    out = []
    for (y0, y1), (x0, x1) in tiles:
        a, b, c, d = max(y0, by0), min(y1, by1), max(x0, bx0), min(x1, bx1)
        if a < b and c < d:
            out.append(((a, b), (c, d)))
    return out


def execute(job: Job, plan: Plan, finish: Finish | None = None) -> tuple[np.ndarray, dict]:
    """(Float32 rh×rw×3: the decoder output (with `finish` applied per tile), computed as the plan says — outside
    job.bbox the content itself; what came from job.cache (Runner.reused))."""
    runner = Runner(job, plan)
    if job.bbox is None:
        out = np.empty((*job.size, 3), dtype=np.float32)
    else:
        out = job.src[0].permute(1, 2, 0).numpy().astype(np.float32, copy=True)
    if runner.out_tiles:                     # an empty selection box: nothing to stylize, not even to encode
        runner.encode_pass(0.3, 0.5)
        runner.stylize_pass(out, finish, 0.5, 0.95)
    return out, runner.reused
