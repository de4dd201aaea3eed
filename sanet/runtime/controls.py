"""Runtime controls of the paper (§4.4) plus colour preservation and the selection blend.

Feature mixing: with per-style coefficient maps c_k(x) (style weight × region mask), the transformed feature is
    F = α · Σ_k c_k T(c, s_k) + (1 − α · Σ_k c_k) · T(c, c)
which is the paper's α trade-off, its convex style interpolation (no regions: weights normalised to sum 1) and
its spatial control (regions: F = Σ_k M_k T(c, s_k) where the masks cover the image). Where the regions cover
less than everything, the remainder keeps the content's own reconstruction T(c, c). The same mix is applied to every
input a model's decoder takes (SANet: the merged transform at relu4_1; AdaAttN: that and its relu3_1 skip), with the
coefficient maps at each input's grid.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..images import LUMA


def check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha {alpha} is out of range: expected a value in [0, 1]")
    return alpha


def normalised_weights(weights: list[float], any_region: bool) -> list[float]:
    for i, w in enumerate(weights):
        if not np.isfinite(w) or w < 0:
            raise InputError(f"style {i + 1}: weight {w} is invalid: expected a finite value ≥ 0")
    total = sum(weights)
    if total <= 0:
        raise InputError("style weights sum to 0: at least one style needs a positive weight")
    if any_region:
        return list(weights)  # with regions the masks say where; weights scale each style's strength
    return [w / total for w in weights]


def coefficient_maps(weights: list[float], regions: list[torch.Tensor | None], grid: tuple[int, int],
                     device, dtype) -> list[torch.Tensor]:
    """c_k at feature resolution (1×1×h×w each); regions are soft masks already padded like the content."""
    maps = []
    for w, region in zip(weights, regions):
        if region is None:
            maps.append(torch.full((1, 1, *grid), w, device=device, dtype=dtype))
        else:
            r = F.interpolate(region.to(device=device, dtype=torch.float32)[None, None], size=grid, mode="area")
            maps.append((r * w).to(dtype))
    total = torch.stack(maps).sum(0)
    over = total.clamp(min=1.0)  # where coefficients sum above 1, scale them back to a convex combination
    return [m / over for m in maps]


def mix(outs: list[dict[str, torch.Tensor]], alpha: float, coeffs: dict[str, list[torch.Tensor]],
        rest: dict[str, torch.Tensor] | None, region: dict[str, tuple[slice, slice]]) -> dict[str, torch.Tensor]:
    """α · Σ_k c_k · outs[k] + rest · outs[own], per decoder input; outs[-1] is T(c, c) when rest is given.
    coeffs / rest are whole-image maps (1×1×h×w at each input's grid), sliced to this region."""
    n_styles = len(outs) - (rest is not None)
    mixed = {}
    for name, (rows, cols) in region.items():
        acc = None
        for k, out in enumerate(outs):
            c = (alpha * coeffs[name][k] if k < n_styles else rest[name])[:, :, rows, cols]
            part = c * out[name]
            acc = part if acc is None else acc + part
        mixed[name] = acc
    return mixed


def preserve_colour(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Keep the content's chroma, take the stylized luminance (YCbCr, BT.601): texture from the style only."""
    y_out = stylized @ LUMA
    y_in = content @ LUMA
    return content + (y_out - y_in)[:, :, None]


def blend_selection(stylized: np.ndarray, content: np.ndarray, selection: np.ndarray | None) -> np.ndarray:
    if selection is None:
        return stylized
    s = selection[:, :, None]
    return s * stylized + (1.0 - s) * content
