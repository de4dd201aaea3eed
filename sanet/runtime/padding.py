"""Sizes the networks accept, and splitting an image into aligned spans.

The encoders need sides that are multiples of 16 (relu5_1 must be exactly half of relu4_1) and at least 32
(reflection padding at relu5_1). Other sizes are padded at the bottom/right by reflection (edge replication for
sides too small to reflect), run, and cropped back, so the result always has exactly the input size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_SIDE = 32
ALIGN = 16                    # tile origins/sizes on the relu5_1 grid: max-pools then align exactly


def padded_size(h: int, w: int) -> tuple[int, int]:
    up = lambda n: max(MIN_SIDE, -(-n // ALIGN) * ALIGN)  # noqa: E731
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


def spans(total: int, tile: int, align: int = ALIGN) -> list[tuple[int, int]]:
    """Split [0, total) into near-equal spans of at most ~tile, boundaries on multiples of `align`."""
    cells = total // align
    n = max(1, -(-total // tile))
    cuts = [round(i * cells / n) * align for i in range(n + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]
