"""How to run one stylization within a memory budget: whole image, or overlapping tiles (sanet.runtime.execute).

The planner only does arithmetic on sizes; it never touches tensors. The per-pixel figures are each model's
(sanet.models.base.Costs). SANet's were measured on this project's CPU (PyTorch 2.13, channels_last, inference
mode): the encoder up to relu5_1 and the decoder each peak at ~520-570 bytes per image pixel in fp32
(full-resolution 64-channel maps, two or three alive at a time); it plans with 640 B/px so that allocator slack and
the small feature maps fit too. AdaAttN keeps more (relu1_1..relu5_1 while its keys are built; 48.75 key values
per pixel between the passes).

Budget = bytes the engine may use for one call beyond the process's other memory. Defaults: CUDA half the free
device memory at planning time; MPS 4 GiB (unified memory, no query); CPU: what keeps the whole process near a peak
resident size of 2 GiB (CPU_PEAK) — minus 0.75 GiB for torch, the loaded weights and cached features (CPU_HELD),
minus the layer's own buffers (32 B/px: 8-bit in and out, float content and result), so about 1.2 GiB for
1920×1080 and 1.0 GiB for 3840×2160. It is arithmetic on the layer's size only: the same layer always gets the same
plan (cached features are keyed by it). A process that holds more (several models, a full content cache) can peak
higher; --memory-budget sets the budget outright. Never less than 1 GiB: a layer past ~5K px exceeds the target
(its own buffers alone take 1 GB at 7680×4320) rather than running in tiny tiles.
Tiles are squares of at most the side the budget allows; of the sides that need the same number of tiles the
smallest is taken (a 1920×1088 layer: two tiles of 1088 rather than four of 1024), which wastes the least work on
the last row and column.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from ..models.base import Costs
from ..models.sanet import MODEL as _SANET
from .padding import ALIGN

GIB = 1024 ** 3
ENCODER_HALO = 80             # px: relu5_1 depends on image px 16j-70 .. 16j+85 (receptive field), rounded up to 16
DECODER_HALO = 10             # relu4_1 cells (80 px): decoder RF ≈ 4 cells + merge conv 1; even keeps relu5_1 aligned
MIN_TILE = 64                 # px: below this the halos cost more than ten times the tile itself
MAX_TILE = {"cpu": 2048, "cuda": 2048, "mps": 1024}   # larger tiles buy little: halo overhead is already ≤ 35 %
SANET_COSTS = _SANET.costs   # the default: SANet's measured figures (see module doc)
CPU_PEAK = 2 * GIB            # the process's peak resident size the CPU default aims at
CPU_HELD = 3 * GIB // 4       # torch + weights (~0.55 GiB), cached transformed maps, allocator slack
LAYER_BYTES_PER_PX = 32       # the layer's own buffers: 8-bit in and out (4 + 4), float content and result (12 + 12)
MIN_CPU_BUDGET = GIB           # below this tiles get small and slow: layers past ~5K px exceed CPU_PEAK
DEFAULT_MPS_BUDGET = 4 * GIB


@dataclass(frozen=True)
class Plan:
    tiled: bool
    tile: int | None            # core tile side in px (multiple of ALIGN) when tiled
    keep_features: bool         # keep relu4_1/relu5_1 of the whole image between the two passes (else re-encode)
    query_chunk: int | None     # attention queries per SDPA call (None: all at once)
    budget: int                 # bytes
    estimate: int               # predicted peak working bytes of this plan
    costs: Costs = field(default=SANET_COSTS, repr=False)   # the model's per-pixel figures

    def describe(self) -> str:
        mode = (f"tiles of {self.tile}px, {'kept' if self.keep_features else 're-encoded'} features"
                if self.tiled else "whole image")
        return f"{mode}, ~{self.estimate / GIB:.2f} of {self.budget / GIB:.2f} GiB"

    def smaller(self, height: int, width: int) -> "Plan | None":
        """The next plan to try after running out of memory: half the tile side (or first tiling); None at the end."""
        chunk = max(256, (self.query_chunk or 16384) // 2)
        if not self.tiled:
            side = max(padded_side(height), padded_side(width))
            tile = _align_down(min(side // 2, 2048))
            keep = True
        else:
            tile, keep = _align_down(self.tile // 2), self.keep_features
        if tile < MIN_TILE:
            return None
        return replace(self, tiled=True, tile=tile, keep_features=keep, query_chunk=chunk,
                       estimate=tile_bytes(tile, keep, 4, self.costs)
                       + (feature_bytes(height, width, 4, self.costs) if keep else 0))


def padded_side(n: int) -> int:
    """The engine pads each side up to a multiple of 16 (at least 32); plans are made on padded sizes."""
    return max(32, -(-n // ALIGN) * ALIGN)


def _align_down(n: int) -> int:
    return (int(n) // ALIGN) * ALIGN


def element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def feature_bytes(height: int, width: int, elem: int, costs: Costs = SANET_COSTS) -> int:
    return costs.feature_bytes_per_px * elem // 4 * padded_side(height) * padded_side(width)


def tile_bytes(tile: int, keep_features: bool, elem: int, costs: Costs = SANET_COSTS) -> int:
    """Peak working bytes of one tile: the decoder tile carries 2·80 px of halo, a re-encoded one 2·80 more."""
    halo = DECODER_HALO * 8 + (0 if keep_features else ENCODER_HALO)
    return costs.work_bytes_per_px * elem // 4 * (tile + 2 * halo) ** 2


def budget_for_tile(tile: int, height: int, width: int, dtype: torch.dtype = torch.float32,
                    costs: Costs = SANET_COSTS) -> int:
    """The budget under which make_plan picks `tile` with kept features (tests use it to force small tiles)."""
    elem = element_size(dtype)
    return tile_bytes(tile, True, elem, costs) + feature_bytes(height, width, elem, costs) + ALIGN


def default_budget(device: torch.device, height: int = 0, width: int = 0) -> int:
    """The budget when the caller gives none (module doc); on a CPU it depends on the layer's size."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    if device.type == "mps":
        return DEFAULT_MPS_BUDGET
    return max(MIN_CPU_BUDGET, CPU_PEAK - CPU_HELD - LAYER_BYTES_PER_PX * height * width)


def balanced_side(limit: int, hp: int, wp: int) -> int:
    """The smallest aligned square side that covers hp × wp in as few tiles as side `limit` does."""
    rows, cols = -(-hp // limit), -(-wp // limit)
    return min(limit, -(-max(-(-hp // rows), -(-wp // cols)) // ALIGN) * ALIGN)


def _query_chunk(queries: int, style_positions: int, elem: int, budget: int) -> int | None:
    """Score-matrix bytes if a kernel materialises it (CUDA math fallback, MPS): bound it to 1/8 of the budget."""
    per_query = max(1, style_positions) * elem * 3
    if queries * per_query <= budget // 8:
        return None
    return max(256, budget // 8 // per_query)


def make_plan(height: int, width: int, device: torch.device, dtype: torch.dtype = torch.float32,
              budget: int | None = None, style_positions: int = 16384, costs: Costs = SANET_COSTS) -> Plan:
    """Plan for a (height × width) content; style_positions = key positions per relu4_1 query of the largest style
    (Model.score_positions); costs = the model's per-pixel figures."""
    budget = int(budget) if budget else default_budget(device, height, width)
    elem = element_size(dtype)
    hp, wp = padded_side(height), padded_side(width)
    whole = (costs.work_bytes_per_px + costs.untiled_extra_per_px) * elem // 4 * hp * wp
    if whole <= budget:
        return Plan(False, None, True, _query_chunk(hp * wp // 64, style_positions, elem, budget), budget, whole,
                    costs)

    feats = feature_bytes(height, width, elem, costs)
    max_tile = MAX_TILE.get(device.type, 1024)
    best = None
    for keep in (True, False):
        if keep and feats > budget * 3 // 4:
            continue  # keeping the maps would leave too little for tiles: re-encode instead
        avail = budget - (feats if keep else 0)
        halo = DECODER_HALO * 8 + (0 if keep else ENCODER_HALO)
        side = math.isqrt(max(0, avail // (costs.work_bytes_per_px * elem // 4))) - 2 * halo
        tile = min(_align_down(side), max_tile, max(hp, wp))
        if tile >= MIN_TILE:
            best = (balanced_side(tile, hp, wp), keep)
            break
    if best is None:  # budget too small for any sensible tile: run the smallest one and say so in the estimate
        best = (MIN_TILE, feats <= budget)
    tile, keep = best
    chunk = _query_chunk((tile // 8 + 2 * DECODER_HALO) ** 2, style_positions, elem, budget)
    return Plan(True, tile, keep, chunk, budget, tile_bytes(tile, keep, elem, costs) + (feats if keep else 0), costs)
