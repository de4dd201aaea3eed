"""Executing a plan (sanet.planner): the whole image at once, or overlapping tiles with exact global statistics.

Tiled SANet in two passes over the padded image (sides multiples of 16):
1. encode: tiles of the image with an 80-px halo (≥ the relu5_1 receptive field; origins on multiples of 16 so the
   max-pools align). Only true image borders see reflection padding — interior tile edges fall in the halo, which
   is cropped — so each tile's core relu4_1/relu5_1 equals the whole-image features. Per-channel mean/variance of
   both maps are accumulated over the WHOLE image (Chan's parallel algorithm in float64), not per tile; the maps
   are kept when the plan allows, else re-encoded region by region in pass 2.
2. stylize: tiles on the relu4_1 grid with a 10-cell halo (decoder receptive field ~4 cells + merge conv 1).
   Queries are normalised with the global statistics, attention runs over ALL style positions (styles are
   capped, so keys/values fit), the controls' coefficient maps are sliced from whole-image maps, the decoder
   output is cropped to the tile core. Seams are cropped, not blended: the core is exact, so nothing to hide.
Selection and colour preservation are per-pixel, so they are applied per output tile (no full-size temporaries).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .network import mean_variance_norm
from .planner import ALIGN, DECODER_HALO, ENCODER_HALO, Plan
from .transform import StyleLevel, merge, style_level, transform_features

EPS = 1e-5   # as network.mean_std: unbiased variance + eps inside the square root


def spans(total: int, tile: int, align: int = ALIGN) -> list[tuple[int, int]]:
    """Split [0, total) into near-equal spans of at most ~tile, boundaries on multiples of `align`."""
    cells = total // align
    n = max(1, -(-total // tile))
    cuts = [round(i * cells / n) * align for i in range(n + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def pad_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    from .engine import pad_to as engine_pad_to   # one definition of the border padding
    return engine_pad_to(x, size)


class RunningStats:
    """Per-channel count/mean/M2 over many tiles (Chan et al.), float64: global mean and unbiased std at the end."""

    def __init__(self):
        self.n = 0
        self.mean = None
        self.m2 = None

    def add(self, feat: torch.Tensor) -> None:
        flat = feat.detach().to(torch.float64).flatten(2)[0]          # C × positions
        n_b = flat.shape[1]
        if n_b == 0:
            return
        mean_b = flat.mean(1)
        m2_b = ((flat - mean_b[:, None]) ** 2).sum(1)
        if self.n == 0:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta ** 2 * (self.n * n_b / n)
        self.n = n

    def mean_std(self, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        var = self.m2 / max(self.n - 1, 1) + EPS
        shape = (1, -1, 1, 1)
        return (self.mean.reshape(shape).to(device=device, dtype=dtype),
                var.sqrt().reshape(shape).to(device=device, dtype=dtype))


def attend_normalised(module, content_feat: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                      styles: list[StyleLevel], query_chunk: int | None) -> list[torch.Tensor]:
    """transform.attend with the content normalised by GLOBAL statistics; one query map shared by all styles."""
    n, c, h, w = content_feat.shape
    q = module.f((content_feat - mean) / std).flatten(2).transpose(1, 2)      # N × Nq × C
    outs = []
    for style in styles:
        k, v = style.keys.unsqueeze(1), style.values.unsqueeze(1)
        step = query_chunk or q.shape[1]
        parts = [F.scaled_dot_product_attention(q[:, i:i + step].unsqueeze(1), k, v, scale=1.0).squeeze(1)
                 for i in range(0, q.shape[1], step)]
        o = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        outs.append(content_feat + module.out_conv(o.transpose(1, 2).reshape(n, c, h, w)))
    return outs


class Job:
    """One stylization's inputs, shared by both executors. Style/own levels are (level4, level5) pairs."""

    def __init__(self, stylizer, src: torch.Tensor, styles: list[tuple[StyleLevel, StyleLevel]], alpha: float,
                 coeffs: list[torch.Tensor], rest: torch.Tensor, use_own: bool, own_cap: int | None, run,
                 semantic=None):
        self.st = stylizer
        self.src = src                       # 1×3×rh×rw float32 on the CPU (a view of the layer when possible)
        self.styles = styles
        self.alpha = alpha
        self.coeffs = coeffs                 # 1×1×gh×gw each, on the device: whole-image control maps
        self.rest = rest
        self.use_own = use_own               # the α / region remainder needs T(c, c)
        self.own_cap = own_cap               # content-as-style is capped like any style (see own_levels)
        self.run = run
        self.semantic = semantic             # SCSA state (sanet.scsa.SemanticRun): whole-image plans only

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.src.shape[-2:])

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(device=self.st.device, dtype=self.st.dtype).contiguous(memory_format=torch.channels_last)

    def own_needs_full_maps(self) -> bool:
        return self.use_own and not (self.own_cap and max(self.size) > self.own_cap)

    def own_levels(self, c4: torch.Tensor | None = None, c5: torch.Tensor | None = None):
        """T(c, c)'s keys/values: the content's own maps up to the style cap; above it the content downscaled to
        the cap, exactly as a style would be (an 8K T(c, c) would otherwise attend over 518k positions)."""
        t = self.st._transform
        if not self.own_needs_full_maps():
            from .engine import padded_size
            rh, rw = self.size
            s = self.own_cap / max(rh, rw)
            h, w = max(1, round(rh * s)), max(1, round(rw * s))
            x = F.interpolate(self.src, size=(h, w), mode="area")
            c4, c5 = self.st._encode(pad_to(self.to_device(x), padded_size(h, w)))
        return style_level(t.sanet4_1, c4), style_level(t.sanet5_1, c5)


def run_whole(job: Job, plan: Plan) -> np.ndarray:
    """The whole padded image at once (the engine's original path): float32 rh×rw×3 decoder output."""
    from .engine import padded_size
    st, run = job.st, job.run
    rh, rw = job.size
    x = job.to_device(job.src)
    c4, c5 = st._encode(pad_to(x, padded_size(rh, rw)))
    run.step(0.45, "encode content")
    feat = torch.zeros_like(c4)
    sem = job.semantic
    for i, (c, (s4, s5)) in enumerate(zip(job.coeffs, job.styles)):
        t = (sem.transform_features(i, c4, c5) if sem is not None and sem.applies(i)
             else transform_features(st._transform, c4, c5, s4, s5, plan.query_chunk))
        feat += job.alpha * c * t
        run.step(0.45 + 0.3 * (i + 1) / len(job.styles), "transform")
    if job.use_own:  # T(c, c): the content's own reconstruction for the α trade-off
        own4, own5 = job.own_levels(c4, c5)
        feat += job.rest * transform_features(st._transform, c4, c5, own4, own5, plan.query_chunk)
    run.step(0.8, "decode")
    out = st._decoder(feat)[:, :, :rh, :rw]
    return out[0].permute(1, 2, 0).float().cpu().numpy()


Finish = Callable[[np.ndarray, slice, slice], np.ndarray]


class TiledRun:
    """Two-pass tiled execution (module doc). `finish(tile, rows, cols)` post-processes each output tile."""

    def __init__(self, job: Job, plan: Plan):
        from .engine import padded_size
        self.job, self.plan = job, plan
        self.st = job.st
        self.padded = padded_size(*job.size)
        self.grid = (self.padded[0] // 8, self.padded[1] // 8)
        self.tiles = [(y, x) for y in spans(self.padded[0], plan.tile) for x in spans(self.padded[1], plan.tile)]
        self.keep = plan.keep_features or job.own_needs_full_maps()
        self.c4 = self.c5 = None

    # ---------------------------------------------------------------- features of an aligned region

    def encode_region(self, y0: int, y1: int, x0: int, x1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """relu4_1/relu5_1 of padded-image rows y0:y1, cols x0:x1 (multiples of 16), equal to the whole-image maps."""
        (hp, wp), (rh, rw) = self.padded, self.job.size
        ys, ye = max(0, y0 - ENCODER_HALO), min(hp, y1 + ENCODER_HALO)
        xs, xe = max(0, x0 - ENCODER_HALO), min(wp, x1 + ENCODER_HALO)
        crop = self.job.to_device(self.job.src[:, :, ys:min(ye, rh), xs:min(xe, rw)])
        c4, c5 = self.st._encode(pad_to(crop, (ye - ys, xe - xs)))
        a, b = (y0 - ys) // 8, (x0 - xs) // 8
        c4 = c4[:, :, a:a + (y1 - y0) // 8, b:b + (x1 - x0) // 8]
        c5 = c5[:, :, a // 2:a // 2 + (y1 - y0) // 16, b // 2:b // 2 + (x1 - x0) // 16]
        return c4, c5

    def features(self, ga: int, gb: int, gc: int, gd: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps on relu4_1 cells ga:gb × gc:gd (even bounds), relu5_1 on the matching half-size cells."""
        if self.c4 is not None:
            return self.c4[:, :, ga:gb, gc:gd], self.c5[:, :, ga // 2:gb // 2, gc // 2:gd // 2]
        return self.encode_region(8 * ga, 8 * gb, 8 * gc, 8 * gd)

    # ---------------------------------------------------------------- pass 1

    def encode_pass(self, lo: float, hi: float) -> None:
        st, n = self.st, len(self.tiles)
        s4, s5 = RunningStats(), RunningStats()
        if self.keep:
            gh, gw = self.grid
            self.c4 = torch.empty(1, 512, gh, gw, device=st.device, dtype=st.dtype).contiguous(memory_format=torch.channels_last)
            self.c5 = torch.empty(1, 512, gh // 2, gw // 2, device=st.device, dtype=st.dtype).contiguous(memory_format=torch.channels_last)
        for i, ((y0, y1), (x0, x1)) in enumerate(self.tiles):
            self.job.run.step(lo + (hi - lo) * i / n, f"encode content (tile {i + 1}/{n})")
            c4, c5 = self.encode_region(y0, y1, x0, x1)
            s4.add(c4)
            s5.add(c5)
            if self.keep:
                self.c4[:, :, y0 // 8:y1 // 8, x0 // 8:x1 // 8] = c4
                self.c5[:, :, y0 // 16:y1 // 16, x0 // 16:x1 // 16] = c5
        self.stats4 = s4.mean_std(st.device, st.dtype)
        self.stats5 = s5.mean_std(st.device, st.dtype)

    # ---------------------------------------------------------------- pass 2

    def stylize_tile(self, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """Decoder output for padded-image rows y0:y1, cols x0:x1, cropped to the real image: 1×3×h×w."""
        job, t = self.job, self.st._transform
        gh, gw = self.grid
        ga, gb = max(0, y0 // 8 - DECODER_HALO), min(gh, y1 // 8 + DECODER_HALO)
        gc, gd = max(0, x0 // 8 - DECODER_HALO), min(gw, x1 // 8 + DECODER_HALO)
        c4, c5 = self.features(ga, gb, gc, gd)
        levels = list(job.styles) + ([self.own] if job.use_own else [])
        o4 = attend_normalised(t.sanet4_1, c4, *self.stats4, [lv[0] for lv in levels], self.plan.query_chunk)
        o5 = attend_normalised(t.sanet5_1, c5, *self.stats5, [lv[1] for lv in levels], self.plan.query_chunk)
        del c4, c5
        feat = None
        for k in range(len(levels)):
            c = (job.alpha * job.coeffs[k] if k < len(job.styles) else job.rest)[:, :, ga:gb, gc:gd]
            part = c * merge(t, o4[k], o5[k])
            feat = part if feat is None else feat + part
        del o4, o5
        out = self.st._decoder(feat)
        rh, rw = job.size
        oy, ox = y0 - 8 * ga, x0 - 8 * gc
        return out[:, :, oy:oy + min(y1, rh) - y0, ox:ox + min(x1, rw) - x0]

    def stylize_pass(self, out: np.ndarray, finish: Finish | None, lo: float, hi: float) -> None:
        n = len(self.tiles)
        if self.job.use_own:
            self.own = self.job.own_levels(self.c4, self.c5)
        for i, ((y0, y1), (x0, x1)) in enumerate(self.tiles):
            self.job.run.step(lo + (hi - lo) * i / n, f"stylize (tile {i + 1}/{n})")
            tile = self.stylize_tile(y0, y1, x0, x1)[0].permute(1, 2, 0).float().cpu().numpy()
            rows, cols = slice(y0, y0 + tile.shape[0]), slice(x0, x0 + tile.shape[1])
            out[rows, cols] = finish(tile, rows, cols) if finish is not None else tile


def run_tiled(job: Job, plan: Plan, finish: Finish | None = None) -> np.ndarray:
    """Float32 rh×rw×3: the decoder output (with `finish` applied per tile), computed tile by tile."""
    tiled = TiledRun(job, plan)
    out = np.empty((*job.size, 3), dtype=np.float32)
    tiled.encode_pass(0.3, 0.5)
    tiled.stylize_pass(out, finish, 0.5, 0.95)
    return out
