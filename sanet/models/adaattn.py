"""AdaAttN (Liu et al., ICCV 2021) as released: shallow keys, attention-normalisation at relu3_1, relu4_1, relu5_1,
the relu3_1 output as a skip connection into the decoder (facts: scsa-adaattn.md §2).

Keys at level L (the released get_key): every relu{j}_1 map with j ≤ L, nearest-resized to level L's grid, each
mean/variance-normalised AFTER the resize, concatenated (448 / 960 / 1472 channels at relu3_1 / 4_1 / 5_1). Per-channel
normalisation of the concatenation is the same thing, so the runtime keeps the raw concatenation and its statistics.

    Q = f(key_c),  K = g(key_s),  V = h(F_s)                  1×1 convs; F = the level's own relu map
    A = softmax(Qᵀ K) over style positions                    no scaling
    mean = A V,   std = sqrt(relu(A V² − mean²))
    AdaAttN(c, s) = std · norm(F_c) + mean                    no residual, no out_conv

    T(c, s)  = merge_conv(reflection_pad(AdaAttN4 + up2_nearest(AdaAttN5)))       (attn_adain_4_1 / 5_1)
    skip     = AdaAttN3 (adaattn_3, its own file)
    image    = decoder_layer_2(concat(decoder_layer_1(T), skip))                 (decoder_layer_1 ends with up ×2)

Style-key subsampling (released behaviour, the default): a style level with more than 64·64 (relu3_1) / 256·256
(relu4_1, relu5_1) positions keeps the first `cap` entries of randperm(n) drawn from a generator seeded 6666 on the
CPU, for both K and V; queries are never subsampled. A LOCAL torch.Generator is used, never the global seed.
style_keys="all" attends over every style position instead (a quality option).

Module names, keys and shapes are the released files' (latest_net_transformer.pth, latest_net_decoder.pth,
latest_net_adaattn_3.pth; every conv has a bias). The literal form is tests/oracle_adaattn.py. Labelled styles run
the SCSA variant (models/scsa.py: same-label continuous attention plus the sparse top-1 term).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import functional as fn
from .. import interrupt
from . import scsa
from .base import Context, Costs, LowPrecision, Model
from .sanet import AttentionMemory

TRANSFORMER_FILE = "latest_net_transformer.pth"
DECODER_FILE = "latest_net_decoder.pth"
ADAATTN_3_FILE = "latest_net_adaattn_3.pth"
SAMPLE_CAP = {3: 64 * 64, 4: 256 * 256, 5: 256 * 256}   # released max_sample per level
SAMPLE_SEED = 6666
KEY_CHANNELS = {3: 64 + 128 + 256, 4: 64 + 128 + 256 + 512, 5: 64 + 128 + 256 + 512 + 512}
CHANNELS = {3: 256, 4: 512, 5: 512}


# --------------------------------------------------------------------------------------------- modules

class AdaAttN(nn.Module):
    """One attention-normalisation module: 1×1 convs f, g on keys (key_planes) and h on values (in_planes)."""

    def __init__(self, in_planes: int, key_planes: int | None = None):
        super().__init__()
        key_planes = key_planes or in_planes
        self.f = nn.Conv2d(key_planes, key_planes, 1)
        self.g = nn.Conv2d(key_planes, key_planes, 1)
        self.h = nn.Conv2d(in_planes, in_planes, 1)


class Transformer(nn.Module):
    """attn_adain_4_1 (960-channel keys), attn_adain_5_1 (1472) and the merge conv, as latest_net_transformer.pth."""

    def __init__(self):
        super().__init__()
        self.attn_adain_4_1 = AdaAttN(512, KEY_CHANNELS[4])
        self.attn_adain_5_1 = AdaAttN(512, KEY_CHANNELS[5])
        self.upsample5_1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge_conv_pad = nn.ReflectionPad2d(1)
        self.merge_conv = nn.Conv2d(512, 512, 3)


class Decoder(nn.Module):
    """decoder_layer_1 (512→256, up ×2) and decoder_layer_2 (takes the relu3_1 skip: 256 + 256 channels)."""

    def __init__(self):
        super().__init__()

        def block(i: int, o: int) -> list[nn.Module]:
            return [nn.ReflectionPad2d(1), nn.Conv2d(i, o, 3), nn.ReLU()]

        up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
        self.decoder_layer_1 = nn.Sequential(*block(512, 256), up())
        self.decoder_layer_2 = nn.Sequential(
            *block(512, 256), *block(256, 256), *block(256, 256), *block(256, 128), up(),
            *block(128, 128), *block(128, 64), up(),
            *block(64, 64), nn.ReflectionPad2d(1), nn.Conv2d(64, 3, 3))


# --------------------------------------------------------------------------------------------- functions

def keys(enc: dict[int, torch.Tensor], level: int) -> torch.Tensor:
    """The raw (not yet normalised) key of `level`: relu1_1 .. relu{level}_1 nearest-resized to its grid, concatenated."""
    size = tuple(enc[level].shape[-2:])
    return torch.cat([fn.resize_nearest(enc[j], size) for j in range(1, level)] + [enc[level]], dim=1)


def sample_index(n: int, cap: int | None) -> torch.Tensor | None:
    """The released subsampling: the first `cap` of randperm(n) from a CPU generator seeded 6666; None if n ≤ cap."""
    if cap is None or n <= cap:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(SAMPLE_SEED))[:cap]


def style_level(module: AdaAttN, key: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels: int,
                cap: int | None) -> tuple[AttentionMemory, torch.Tensor | None]:
    """K = g(norm key_s), V = h(F_s) (F_s = the key's last `channels`), subsampled to `cap` positions; and the index."""
    k = fn.tokens(module.g(fn.normalise(key, mean, std)))
    v = fn.tokens(module.h(key[:, -channels:]))
    idx = sample_index(k.shape[1], cap)
    if idx is not None:
        idx = idx.to(k.device)
        k, v = k[:, idx], v[:, idx]
    return AttentionMemory(k.contiguous(), v.contiguous()), idx


def adaattn(module: AdaAttN, key: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels: int,
            memories: list, chunk: int | None = None, labels: torch.Tensor | None = None,
            scsa_weights: tuple[float, float] | None = None) -> list[torch.Tensor]:
    """std · norm(F_c) + mean for each memory (one query map shared by all); the key normalised with (mean, std).
    SCSA memories (scsa.SemanticMomentsLevel) use the region-restricted continuous-sparse moments (labels: h·w)."""
    n, _, h, w = key.shape
    kn = fn.normalise(key, mean, std)
    q = fn.tokens(module.f(kn))
    content = kn[:, -channels:]                    # norm(F_c): the key's last block, same statistics
    outs = []
    for m in memories:
        if isinstance(m, scsa.SemanticMomentsLevel):
            mu, sd = scsa.scsa_moments(q[0], labels.reshape(-1), m, *scsa_weights, chunk)
            mu, sd = mu[None], sd[None]
        else:
            mu, sd = fn.attention_moments(q, m.keys, m.values, chunk)
        outs.append(fn.untokens(sd, h, w) * content + fn.untokens(mu, h, w))
    return outs


@dataclass
class AdaAttnMemory:
    level3: "AttentionMemory | scsa.SemanticMomentsLevel"
    level4: "AttentionMemory | scsa.SemanticMomentsLevel"
    level5: "AttentionMemory | scsa.SemanticMomentsLevel"


class AdaAttnModel(Model):
    name = "adaattn"
    title = "AdaAttN (Liu et al., ICCV 2021)"
    files = {"transformer": TRANSFORMER_FILE, "decoder": DECODER_FILE, "adaattn_3": ADAATTN_3_FILE}
    levels = (1, 2, 3, 4, 5)
    feature_factors = {"k3": 4, "k4": 8, "k5": 16}
    decoder_inputs = {"t": 8, "skip": 4}
    region_stats = ()
    label_image = False
    scsa_weights = (scsa.T1, scsa.T2)
    # content maps kept: 448/16 + 960/64 + 1472/256 = 48.75 values per pixel. Measured on CPU (peak RSS above the
    # idle process, 1024² content, 512² cached style, next to SANet in the same run): whole image 1017 B/px (SANet
    # 805, planned 800); tiles of 256 px with kept maps 554 MiB (SANet 298): the per-tile part is ~1.4× SANet's,
    # as the encoder also holds relu1_1 and relu2_1 while the keys are built.
    costs = Costs(work_bytes_per_px=900, untiled_extra_per_px=160, feature_bytes_per_px=196)
    # bf16 on CPUs (measured at 512² vs fp32): its keys are shallow maps (relu1_1 ..) normalised per channel, so any
    # bf16 before the attention costs: all bf16 26-28 dB, fp32 encoder + bf16 transform 39.4-39.7 dB; only the
    # decoder in bf16 47.4-47.5 dB (mean 0.8/255). The attention moments in fp32 buy nothing (39.5 vs 39.4 dB).
    cpu_bf16 = LowPrecision(encoder=(False,) * 5, transform=False, decoder=True)

    def build(self) -> dict[str, nn.Module]:
        return {"transformer": Transformer(), "decoder": Decoder(), "adaattn_3": AdaAttN(256, KEY_CHANNELS[3])}

    def features(self, enc, label_enc=None):
        return {"k3": keys(enc, 3), "k4": keys(enc, 4), "k5": keys(enc, 5)}

    def _modules(self, nets):
        t = nets["transformer"]
        return ((3, nets["adaattn_3"], "k3", 4), (4, t.attn_adain_4_1, "k4", 8), (5, t.attn_adain_5_1, "k5", 16))

    def style_memory(self, nets, feats, stats, labels=None, style_keys="sampled"):
        levels = []
        for level, module, name, factor in self._modules(nets):
            cap = SAMPLE_CAP[level] if style_keys == "sampled" else None
            mem, idx = style_level(module, feats[name], *stats.mean_std(name), CHANNELS[level], cap)
            if labels is not None:
                lab = labels[factor].reshape(-1).to(mem.keys.device)
                mem = scsa.semantic_moments_level(mem.keys, mem.values, lab if idx is None else lab[idx])
            levels.append(mem)
        return AdaAttnMemory(*levels)

    def transform(self, nets, feats, ctx: Context, memories):
        t = nets["transformer"]
        per_level = {}
        for level, module, name, factor in self._modules(nets):
            per_level[level] = adaattn(module, feats[name], *ctx.stats.mean_std(name), CHANNELS[level],
                                       [getattr(m, f"level{level}") for m in memories], ctx.chunk,
                                       None if ctx.labels is None else ctx.labels[factor], ctx.scsa_weights)
        return [{"t": fn.merge_levels(t.merge_conv_pad, t.merge_conv, o4, o5), "skip": o3}
                for o3, o4, o5 in zip(per_level[3], per_level[4], per_level[5])]

    def decode(self, nets, inputs):
        d = nets["decoder"]
        first = interrupt.sequential(d.decoder_layer_1, inputs["t"])       # the modules' calls, cancellable inside
        return interrupt.sequential(d.decoder_layer_2, torch.cat([first, inputs["skip"]], dim=1))

    def check_scsa_weights(self, t1, t2):
        if t1 < 0 or t2 < 0 or t1 + t2 <= 0:
            return "AdaAttN mixes the two parts as a distribution: expected t1, t2 ≥ 0 with t1 + t2 > 0"
        return None

    def score_positions(self, memory) -> int:
        return max(int(memory.level4.keys.shape[-2]), 4 * int(memory.level3.keys.shape[-2]),
                   int(memory.level5.keys.shape[-2]) // 4)


MODEL = AdaAttnModel()
