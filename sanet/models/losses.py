"""Training objectives of SANet and AdaAttN: small pure functions on the models' own functions.

The networks are the inference ones (model.build(), model.features / style_memory / transform / decode, the shared
VGG); only what training adds is here: per-sample statistics for a batch, and the losses. Every distance is the
references' nn.MSELoss (mean over all elements); every mean/std is sanet.functional.mean_std (per sample and channel,
unbiased variance, eps inside the square root), as the references' calc_mean_std.

SANet (the circulated reproduction's train.py / net.py; facts: sanet-reference.md, Training):
    g      = D(T(c, s)),   Icc = D(T(c, c)),   Iss = D(T(s, s))
    content          = Σ_{L=4,5} MSE(norm φ_L(g), norm φ_L(c))
    style            = Σ_{L=1..5} MSE(μ φ_L(g), μ φ_L(s)) + MSE(σ φ_L(g), σ φ_L(s))
    identity_pixel   = MSE(Icc, c) + MSE(Iss, s)
    identity_feature = Σ_{L=1..5} MSE(φ_L(Icc), φ_L(c)) + MSE(φ_L(Iss), φ_L(s))
    weights (released code): content 1, style 3, identity_pixel 50, identity_feature 1 — the paper's text swaps the
    two identity weights (λ_identity1 = 1 on pixels, λ_identity2 = 50 on features).

AdaAttN (the released adaattn_model.py; facts: scsa-adaattn.md §2):
    g      = D(AdaAttN transformer and relu3_1 skip of (c, s))
    global  = Σ_{L=2..5} MSE(μ φ_L(g), μ φ_L(s)) + MSE(σ φ_L(g), σ φ_L(s))
    local   = Σ_{L=2..5} MSE(φ_L(g), σ_L · norm φ_L(c) + μ_L)      μ_L, σ_L: attention-weighted moments of φ_L(s)
              from a parameter-free AdaAttN: q = norm key_L(c), k = norm key_L(s) (keys: relu1_1..relu{L}_1 resized
              to level L and concatenated, as the model's), no f/g/h; style keys capped at 64·64 positions with the
              released subsampling (seed 6666, here from a local generator)
    content = Σ_{L=2..5} MSE(norm φ_L(g), norm φ_L(c))                 (weight 0 in the released scripts: off)
    weights: global 10, local 3, content 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import functional as fn
from .. import vgg
from . import adaattn as ada
from .base import Context, Model

ALL_LEVELS = (1, 2, 3, 4, 5)
SANET_CONTENT_LEVELS = (4, 5)
SANET_STYLE_LEVELS = (1, 2, 3, 4, 5)
ADAATTN_LEVELS = (2, 3, 4, 5)
LOCAL_SAMPLE_CAP = 64 * 64       # released max_sample of the local feature loss


class SampleStats:
    """Each feature map's own per-sample statistics: the `stats` a model's functions read, for a training batch
    (the references normalise every sample by itself; the runtime's whole-image statistics are the one-sample case).
    """

    def __init__(self, feats: dict[str, torch.Tensor]):
        self.feats = feats
        self._memo: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def mean_std(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in self._memo:
            self._memo[name] = fn.mean_std(self.feats[name])
        return self._memo[name]


# --------------------------------------------------------------------------------------------- distances

def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """nn.MSELoss(): mean of the squared differences, in fp32 whatever precision the network ran in."""
    return F.mse_loss(a.float(), b.float())


def content_loss(out: list[torch.Tensor], content: list[torch.Tensor]) -> torch.Tensor:
    """Σ MSE(norm o, norm c) over paired feature maps (mean/variance normalised per sample and channel)."""
    return sum(mse(fn.mean_variance_norm(o.float()), fn.mean_variance_norm(c.float())) for o, c in zip(out, content))


def style_loss(out: list[torch.Tensor], style: list[torch.Tensor]) -> torch.Tensor:
    """Σ MSE(μ o, μ s) + MSE(σ o, σ s) over paired feature maps (AdaIN's style loss)."""
    total = 0.0
    for o, s in zip(out, style):
        mo, so = fn.mean_std(o.float())
        ms, ss = fn.mean_std(s.float())
        total = total + mse(mo, ms) + mse(so, ss)
    return total


def feature_distance(out: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
    """Σ MSE(o, t) over paired maps (the identity loss on features, the local loss)."""
    return sum(mse(o, t) for o, t in zip(out, target))


def local_target(c: dict[int, torch.Tensor], s: dict[int, torch.Tensor], level: int,
                 cap: int | None = LOCAL_SAMPLE_CAP) -> torch.Tensor:
    """σ · norm φ_L(c) + μ of a parameter-free AdaAttN at `level` (AdaAttN's local feature loss target).
    c, s: encoder levels 1..level of content and style."""
    q = fn.tokens(fn.mean_variance_norm(ada.keys(c, level)))
    k = fn.tokens(fn.mean_variance_norm(ada.keys(s, level)))
    v = fn.tokens(s[level])
    idx = ada.sample_index(k.shape[1], cap)
    if idx is not None:
        idx = idx.to(k.device)
        k, v = k[:, idx], v[:, idx]
    mean, std = fn.attention_moments(q, k.contiguous(), v.contiguous())
    h, w = c[level].shape[-2:]
    return fn.untokens(std, h, w) * fn.mean_variance_norm(c[level]) + fn.untokens(mean, h, w)


# --------------------------------------------------------------------------------------------- forward passes

def stylize_batch(model: Model, nets: dict, a: dict[str, torch.Tensor], memories: list) -> list[dict]:
    """model.transform of a batch's features `a` (normalised by their own statistics) for each memory."""
    return model.transform(nets, a, Context(SampleStats(a)), memories)


def memory_of(model: Model, nets: dict, feats: dict[str, torch.Tensor]):
    """model.style_memory of a batch (the model's released key subsampling, if any)."""
    return model.style_memory(nets, feats, SampleStats(feats), style_keys="sampled")


def decode_many(model: Model, nets: dict, outs: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    """model.decode of several decoder inputs of equal shape in one batch; the images in the same order."""
    joined = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    return list(model.decode(nets, joined).chunk(len(outs)))


def encode_many(stages, images: list[torch.Tensor], levels=ALL_LEVELS) -> list[dict[int, torch.Tensor]]:
    """VGG levels of several equal-sized batches in one pass."""
    enc = vgg.encode(stages, torch.cat(images), levels)
    parts = {k: v.chunk(len(images)) for k, v in enc.items()}
    return [{k: parts[k][i] for k in enc} for i in range(len(images))]


# --------------------------------------------------------------------------------------------- objectives

def sanet_losses(model: Model, nets: dict, stages, content: torch.Tensor, style: torch.Tensor,
                 terms: tuple[str, ...] = ("content", "style", "identity_pixel", "identity_feature")
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The unweighted SANet loss terms of a batch of (content, style) pairs and the stylized images g."""
    c, s = encode_many(stages, [content, style])
    fc, fs = model.features(c), model.features(s)
    mem_s, mem_c = memory_of(model, nets, fs), memory_of(model, nets, fc)
    t_cs, t_cc = stylize_batch(model, nets, fc, [mem_s, mem_c])     # one query map for T(c, s) and T(c, c)
    (t_ss,) = stylize_batch(model, nets, fs, [mem_s])
    g, icc, iss = decode_many(model, nets, [t_cs, t_cc, t_ss])
    eg, ecc, ess = encode_many(stages, [g, icc, iss])
    out = {
        "content": content_loss([eg[L] for L in SANET_CONTENT_LEVELS], [c[L] for L in SANET_CONTENT_LEVELS]),
        "style": style_loss([eg[L] for L in SANET_STYLE_LEVELS], [s[L] for L in SANET_STYLE_LEVELS]),
        "identity_pixel": mse(icc, content) + mse(iss, style),
        "identity_feature": feature_distance([ecc[L] for L in ALL_LEVELS] + [ess[L] for L in ALL_LEVELS],
                                             [c[L] for L in ALL_LEVELS] + [s[L] for L in ALL_LEVELS]),
    }
    return {k: out[k] for k in terms}, g


def adaattn_losses(model: Model, nets: dict, stages, content: torch.Tensor, style: torch.Tensor,
                   terms: tuple[str, ...] = ("global", "local", "content")
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The unweighted AdaAttN loss terms of a batch (terms left out are not computed: the released content weight
    is 0) and the stylized images g."""
    c, s = encode_many(stages, [content, style])
    fc, fs = model.features(c), model.features(s)
    (t_cs,) = stylize_batch(model, nets, fc, [memory_of(model, nets, fs)])
    g = model.decode(nets, t_cs)
    eg = vgg.encode(stages, g, ALL_LEVELS)
    out = {}
    if "global" in terms:
        out["global"] = style_loss([eg[L] for L in ADAATTN_LEVELS], [s[L] for L in ADAATTN_LEVELS])
    if "local" in terms:
        with torch.no_grad():   # the target depends on the frozen encoder only
            targets = [local_target(c, s, L) for L in ADAATTN_LEVELS]
        out["local"] = feature_distance([eg[L] for L in ADAATTN_LEVELS], targets)
    if "content" in terms:
        out["content"] = content_loss([eg[L] for L in ADAATTN_LEVELS], [c[L] for L in ADAATTN_LEVELS])
    return out, g


OBJECTIVES = {"sanet": sanet_losses, "adaattn": adaattn_losses}


def stylize_images(model: Model, nets: dict, stages, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """D(T(c, s)) of a batch (previews during training): the same forward as the losses, without them."""
    c, s = encode_many(stages, [content, style], model.levels)
    fc, fs = model.features(c), model.features(s)
    (t,) = stylize_batch(model, nets, fc, [memory_of(model, nets, fs)])
    return model.decode(nets, t)
