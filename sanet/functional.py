"""Pure tensor math shared by every model: statistics, normalisation, the one attention primitive, its
attention-weighted moments (AdaAttN), hard top-1 (SCSA) and grouping of positions by label.

No nn.Module state, no device policy, no tiling: functions of tensors only (as pytorch-AdaIN's function.py).
Feature maps are N×C×H×W; token matrices are N×positions×C (row-major positions, like flatten(2)).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import interrupt

EPS = 1e-5                  # inside the square root of every normalisation (unbiased variance, as the references)
TOP1_SCORE_BUDGET = 1 << 24  # score entries per top-1 chunk (64 MiB in fp32)
ATTENTION_STEP_MACS = 1 << 32   # multiply-adds per attention call (~25 ms on 2 CPU cores): a cancellation point each


# ------------------------------------------------------------------------------------------ statistics

def mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std over positions: UNBIASED variance, eps inside the square root."""
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    var = flat.var(dim=2, unbiased=True) + eps
    return flat.mean(dim=2).reshape(n, c, 1, 1), var.sqrt().reshape(n, c, 1, 1)


def normalise(feat: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(feat − mean) / std with GIVEN statistics (whole-image ones when feat is a tile: tiles equal the whole)."""
    return (feat - mean) / std


def mean_variance_norm(feat: torch.Tensor) -> torch.Tensor:
    """normalise() with the map's own statistics (the references' mean_variance_norm)."""
    return normalise(feat, *mean_std(feat))


# ------------------------------------------------------------------------------------------ layout

def tokens(x: torch.Tensor) -> torch.Tensor:
    """N×C×H×W → N×(H·W)×C (a view for channels_last maps)."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(n, h * w, c)


def untokens(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """N×(H·W)×C → N×C×H×W (channels_last strides)."""
    return t.reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)


def resize_nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """F.interpolate's default nearest resize (the references' key resizing); identity at the same size."""
    return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=tuple(size), mode="nearest")


def merge_levels(pad: torch.nn.Module, conv: torch.nn.Module, o4: torch.Tensor, o5: torch.Tensor) -> torch.Tensor:
    """conv(pad(o4 + up2_nearest(o5))): the multi-level merge of SANet and AdaAttN (relu5_1 exactly half of relu4_1)."""
    return conv(pad(o4 + F.interpolate(o5, scale_factor=2, mode="nearest")))


# ------------------------------------------------------------------------------------------ attention

def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """softmax(q kᵀ) v over key positions, with NO 1/sqrt(d) scaling (scale = 1, as SANet and AdaAttN).

    q: N×Nq×E, k: N×Nk×E, v: N×Nk×Ev → N×Nq×Ev. The score matrix is never built: one fused
    scaled_dot_product_attention call per chunk of `chunk` queries picks a memory-efficient kernel. Where Ev ≠ E
    the narrower side is zero-padded (zero channels change neither q·k nor the weighted sum) because the fused CPU
    kernel needs equal widths; the math fallback would build the Nq×Nk matrix. Chunks are also kept to about
    ATTENTION_STEP_MACS of work each, with a cancellation point (sanet.interrupt) before each: queries are
    independent rows, so chunking changes no result.
    """
    e, ev = q.shape[-1], v.shape[-1]
    if ev < e:
        v = F.pad(v, (0, e - ev))
    elif e < ev:
        q, k = F.pad(q, (0, ev - e)), F.pad(k, (0, ev - e))
    k, v = k.unsqueeze(1), v.unsqueeze(1)
    per_query = max(1, k.shape[-2] * 2 * k.shape[-1] * k.shape[0])
    step = max(64, min(chunk or q.shape[1], ATTENTION_STEP_MACS // per_query))
    parts = []
    for i in range(0, q.shape[1], step):
        interrupt.point()
        parts.append(F.scaled_dot_product_attention(q[:, i:i + step].unsqueeze(1), k, v, scale=1.0).squeeze(1))
    out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
    return out if out.shape[-1] == ev else out[..., :ev]


def attention_moments(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """AdaAttN's attention-weighted mean and std of the values (A = softmax(q kᵀ), no scaling):
    mean = A v, std = sqrt(relu(A v² − mean²)); one attention() over [v − μ, (v − μ)²].

    The moments are taken about μ, the values' per-channel mean, in units of σ, their largest deviation from it
    (the same quantities exactly: A(v−μ)² − (A(v−μ))² is A v² − (A v)²). With peaked attention the variance is ~0
    while A v² is ~mean², so the released form loses everything to cancellation in fp32; about μ the terms are the
    values' spread instead of their magnitude, and in units of σ the squares stay ≤ 1 (v² overflows fp16 at 256)."""
    mu, sigma = value_frame(v, dim=-2)
    vs = (v - mu) / sigma
    out = attention(q, k, torch.cat([vs, vs * vs], dim=-1), chunk)
    c = v.shape[-1]
    mean = out[..., :c]
    return mean * sigma + mu, torch.sqrt(torch.relu(out[..., c:] - mean * mean)) * sigma


def value_frame(v: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, σ) per channel over positions `dim`: the mean, and the largest |v − μ| (1 where all values are equal)."""
    mu = v.mean(dim=dim, keepdim=True)
    sigma = (v - mu).abs().amax(dim=dim, keepdim=True)
    return mu, torch.where(sigma > 0, sigma, torch.ones_like(sigma))


def top1(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Hard attention (SCSA's sparse part): for each query row the value at its best-scoring key (qᵀk, no scaling).
    q: Nq×E, k: Nk×E, v: Nk×Ev; scores in row chunks of at most TOP1_SCORE_BUDGET entries."""
    return v[top1_index(q, k)]


def top1_index(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Index of each query's best-scoring key (qᵀk), in row chunks like top1()."""
    rows = max(1, min(TOP1_SCORE_BUDGET, ATTENTION_STEP_MACS // max(1, q.shape[1])) // max(1, k.shape[0]))
    out = []
    for a in range(0, q.shape[0], rows):
        interrupt.point()
        out.append((q[a:a + rows] @ k.transpose(0, 1)).argmax(dim=1))
    return torch.cat(out) if len(out) > 1 else out[0]


# ------------------------------------------------------------------------------------------ labels

def group_positions(labels: torch.Tensor) -> dict[int, torch.Tensor]:
    """label → LongTensor of the positions (indices into `labels`, a flat LongTensor) that carry it."""
    return {int(k): (labels == k).nonzero().squeeze(1) for k in torch.unique(labels).tolist()}


def label_sums(f: torch.Tensor, labels: torch.Tensor):
    """(sorted labels L, inverse N, counts L, per-label means L×C, per-label Σ(f − μ)² L×C) of N×C features.
    Sums are one-hot GEMMs (far faster than index_add_ on CPU) and two-pass (centred) for accuracy."""
    uniq, inv = torch.unique(labels, return_inverse=True)
    onehot = torch.zeros(len(uniq), f.shape[0], dtype=f.dtype, device=f.device)
    onehot[inv, torch.arange(f.shape[0], device=f.device)] = 1.0
    count = onehot.sum(1)
    mean = (onehot @ f) / count[:, None]
    m2 = onehot @ (f - mean[inv]) ** 2
    return uniq, inv, count, mean, m2
