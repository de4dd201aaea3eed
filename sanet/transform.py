"""The style-attentional transform T(c, s), written for speed and memory.

Same equations as the paper (see tests/oracle.py for the literal form): the score matrix is never built
explicitly; torch's scaled_dot_product_attention (scale=1.0: SANet has no 1/sqrt(d)) picks a fused,
memory-efficient kernel where one exists. Style keys/values are computed once and reused (StyleLevel).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .network import SANet, Transform, mean_variance_norm


@dataclass
class StyleLevel:
    """What attention needs from a style at one level: keys g(norm Fs) and values h(Fs), as N×Ns×C."""
    keys: torch.Tensor
    values: torch.Tensor


def style_level(module: SANet, style_feat: torch.Tensor) -> StyleLevel:
    k = module.g(mean_variance_norm(style_feat))
    v = module.h(style_feat)
    return StyleLevel(k.flatten(2).transpose(1, 2).contiguous(), v.flatten(2).transpose(1, 2).contiguous())


def attend(module: SANet, content_feat: torch.Tensor, style: StyleLevel, query_chunk: int | None = None) -> torch.Tensor:
    """Fc + out_conv(V · softmax(Qᵀ K)ᵀ), optionally in query chunks to bound memory."""
    n, c, h, w = content_feat.shape
    q = module.f(mean_variance_norm(content_feat)).flatten(2).transpose(1, 2)   # N × Nc × C
    k, v = style.keys.unsqueeze(1), style.values.unsqueeze(1)                   # N × 1 × Ns × C
    if query_chunk is None or query_chunk >= q.shape[1]:
        o = F.scaled_dot_product_attention(q.unsqueeze(1), k, v, scale=1.0).squeeze(1)
    else:
        o = torch.cat([F.scaled_dot_product_attention(q[:, i:i + query_chunk].unsqueeze(1), k, v, scale=1.0).squeeze(1)
                       for i in range(0, q.shape[1], query_chunk)], dim=1)
    o = o.transpose(1, 2).reshape(n, c, h, w)
    return content_feat + module.out_conv(o)


def merge(transform: Transform, o4: torch.Tensor, o5: torch.Tensor) -> torch.Tensor:
    """merge_conv(reflection_pad(SA4 + up2_nearest(SA5))); inputs are padded so relu5_1 is exactly half of relu4_1."""
    up = F.interpolate(o5, scale_factor=2, mode="nearest")
    return transform.merge_conv(transform.merge_conv_pad(o4 + up))


def transform_features(transform: Transform, c4: torch.Tensor, c5: torch.Tensor,
                       s4: StyleLevel, s5: StyleLevel, query_chunk: int | None = None) -> torch.Tensor:
    return merge(transform,
                 attend(transform.sanet4_1, c4, s4, query_chunk),
                 attend(transform.sanet5_1, c5, s5, query_chunk))
