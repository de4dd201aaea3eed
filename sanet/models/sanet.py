"""SANet (Park & Lee, CVPR 2019): style-attentional modules at relu4_1 and relu5_1, merged, decoded.

Per level (facts: sanet-reference.md), with norm = per-channel mean/variance normalisation (unbiased, eps inside):

    Q = f(norm Fc),  K = g(norm Fs),  V = h(Fs)
    SA(Fc, Fs) = Fc + out_conv(V · softmax(Qᵀ K)ᵀ)          no 1/sqrt(d) scaling
    T(c, s) = merge_conv(reflection_pad(SA4 + up2_nearest(SA5)))  → decoder (mirror of the VGG to relu4_1)

Module names and indices match the circulated checkpoints (decoder_iter_500000.pth: "1.weight", ...;
transformer_iter_500000.pth: "sanet4_1.f.weight", ..., "merge_conv.weight"). The literal form is tests/oracle.py;
here attention is sanet.functional.attention (fused kernel, queries in chunks) and norm uses the statistics the
runtime passes in (whole-image ones when the content comes in tiles). Labelled styles run SCSA (models/scsa.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import functional as fn
from .. import interrupt
from . import scsa
from .base import Context, Costs, LowPrecision, Model

DECODER_FILE = "decoder_iter_500000.pth"
TRANSFORMER_FILE = "transformer_iter_500000.pth"


# --------------------------------------------------------------------------------------------- modules

def build_decoder() -> nn.Sequential:
    """Mirror of the encoder up to relu4_1 (as in AdaIN); the last conv has no ReLU, output is not clamped."""
    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.ReflectionPad2d(1), nn.Conv2d(i, o, 3), nn.ReLU()]

    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    layers = (
        block(512, 256) + [up()]
        + block(256, 256) + block(256, 256) + block(256, 256) + block(256, 128) + [up()]
        + block(128, 128) + block(128, 64) + [up()]
        + block(64, 64) + [nn.ReflectionPad2d(1), nn.Conv2d(64, 3, 3)]
    )
    return nn.Sequential(*layers)


class SANet(nn.Module):
    """One style-attentional module: four 1×1 convs f, g, h, out_conv (the math is in this file's functions)."""

    def __init__(self, in_planes: int = 512):
        super().__init__()
        self.f = nn.Conv2d(in_planes, in_planes, 1)
        self.g = nn.Conv2d(in_planes, in_planes, 1)
        self.h = nn.Conv2d(in_planes, in_planes, 1)
        self.out_conv = nn.Conv2d(in_planes, in_planes, 1)


class Transform(nn.Module):
    """The two SANet modules and the merge conv, named as in transformer_iter_500000.pth."""

    def __init__(self, in_planes: int = 512):
        super().__init__()
        self.sanet4_1 = SANet(in_planes)
        self.sanet5_1 = SANet(in_planes)
        self.merge_conv_pad = nn.ReflectionPad2d(1)
        self.merge_conv = nn.Conv2d(in_planes, in_planes, 3)


# --------------------------------------------------------------------------------------------- functions

@dataclass
class AttentionMemory:
    """What attention needs from a style at one level: keys g(norm Fs) and values h(Fs), N×Ns×C."""
    keys: torch.Tensor
    values: torch.Tensor


@dataclass
class SanetMemory:
    level4: AttentionMemory
    level5: AttentionMemory


def style_level(module: SANet, feat: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> AttentionMemory:
    """K = g(norm Fs), V = h(Fs) of a style feature map, normalised with (mean, std)."""
    k = module.g(fn.normalise(feat, mean, std))
    return AttentionMemory(fn.tokens(k).contiguous(), fn.tokens(module.h(feat)).contiguous())


def attend(module: SANet, content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
           memories: list[AttentionMemory], chunk: int | None = None) -> list[torch.Tensor]:
    """Fc + out_conv(attention(f(norm Fc), K, V)) for each memory; one query map shared by all of them."""
    n, c, h, w = content.shape
    q = fn.tokens(module.f(fn.normalise(content, mean, std)))
    return [content + module.out_conv(fn.untokens(fn.attention(q, m.keys, m.values, chunk), h, w))
            for m in memories]


class SanetModel(Model):
    name = "sanet"
    title = "SANet (Park & Lee, CVPR 2019)"
    files = {"decoder": DECODER_FILE, "transformer": TRANSFORMER_FILE}
    levels = (4, 5)
    feature_factors = {"r4": 8, "r5": 16, "m4": 8, "m5": 16}   # m*: the label-map image's (SCSA only)
    decoder_inputs = {"t": 8}
    region_stats = ("r4", "r5")          # SCSA's semantic AdaIN
    label_image = True                   # SCSA's continuous attention reads the label-map images' features
    scsa_weights = (scsa.T1, scsa.T2)
    # measured on CPU (sanet.runtime.planner doc): encoder/decoder ~550 B/px peak; relu4_1 + relu5_1 = 10 values/px
    costs = Costs(work_bytes_per_px=640, untiled_extra_per_px=160, feature_bytes_per_px=40)
    # bf16 on CPUs (measured at 512², 5 contents, vs fp32): everything in bf16 35.0-37.5 dB (the encoder's rounding
    # flips relu4_1 winners); encoder through relu3_1 in fp32 38.3-40.6 dB; through relu4_1 43.4-44.3 dB, mean ≤ 1.2/255
    cpu_bf16 = LowPrecision(encoder=(False, False, False, False, True), transform=True, decoder=True)

    def build(self) -> dict[str, nn.Module]:
        return {"decoder": build_decoder(), "transformer": Transform()}

    def features(self, enc, label_enc=None):
        feats = {"r4": enc[4], "r5": enc[5]}
        if label_enc is not None:
            feats.update(m4=label_enc[4], m5=label_enc[5])
        return feats

    def style_memory(self, nets, feats, stats, labels=None, style_keys="sampled"):
        t = nets["transformer"]
        if labels is not None:
            return scsa.SanetSemanticMemory(
                scsa.semantic_style_level(t.sanet4_1, feats["r4"], feats["m4"], labels[8], stats.mean_std("r4"),
                                          stats.mean_std("m4")),
                scsa.semantic_style_level(t.sanet5_1, feats["r5"], feats["m5"], labels[16], stats.mean_std("r5"),
                                          stats.mean_std("m5")))
        return SanetMemory(style_level(t.sanet4_1, feats["r4"], *stats.mean_std("r4")),
                           style_level(t.sanet5_1, feats["r5"], *stats.mean_std("r5")))

    def transform(self, nets, feats, ctx: Context, memories):
        t = nets["transformer"]
        plain = [m for m in memories if isinstance(m, SanetMemory)]
        o4 = attend(t.sanet4_1, feats["r4"], *ctx.stats.mean_std("r4"), [m.level4 for m in plain], ctx.chunk)
        o5 = attend(t.sanet5_1, feats["r5"], *ctx.stats.mean_std("r5"), [m.level5 for m in plain], ctx.chunk)
        outs, j = [], 0
        for m in memories:
            if isinstance(m, SanetMemory):
                a, b = o4[j], o5[j]
                j += 1
            else:
                a, b = scsa.sanet_scsa_levels(t, feats, ctx, m)
            outs.append({"t": fn.merge_levels(t.merge_conv_pad, t.merge_conv, a, b)})
        return outs

    def decode(self, nets, inputs):
        return interrupt.sequential(nets["decoder"], inputs["t"])   # = nets["decoder"](t), cancellable inside

    def score_positions(self, memory) -> int:
        return int(memory.level4.keys.shape[-2])


MODEL = SanetModel()
