"""SCSA (CVPR 2025) as a variant of the attention of SANet and of AdaAttN: region-to-region style transfer driven by
label maps (label-map input handling: sanet/labels.py). Training-free: the same checkpoints, only the attention
step changes (facts: scsa-adaattn.md §1). Content position i only ever sees style positions j with its own label;
positions are grouped by label and attention runs on each group (block-diagonal), so no N×N mask is built and
memory is that of the plain model at any image size.

SANet + SCSA, per level (the official SANet+SCSA block):

    F_c' = semantic AdaIN(F_c)              each content region k re-coloured with style region k's mean/std
                                            (biased std, eps inside; statistics of the WHOLE image's regions)
    SCA  = softmax(f(norm M_c)ᵀ g(norm M_s)) · h(F_s)   M = encoder features of the label-map IMAGES
    SSA  = h(F_s) at argmax f(norm F_c')ᵀ g(norm F_s)  (hard top-1)
    out  = t1 · out_conv(SCA) + t2 · out_conv(SSA) + F_c'          t1, t2 = 0.7, 0.3

AdaAttN + SCSA, per level (our formulation; the official code has no AdaAttN variant). AdaAttN's attention forms a
per-point distribution over style positions whose mean and std re-colour the normalised content. With
q = f(norm key_c), k = g(norm key_s), v = h(F_s) as in AdaAttN and L(i) the label of content position i:

    A_ij   = softmax_j(q_i · k_j) over the style positions j with L(j) = L(i)        (continuous part)
    j*(i)  = argmax_j q_i · k_j over the same positions                              (sparse part, hard top-1)
    P_ij   = w1 · A_ij + w2 · δ(j = j*(i)),      w1 = t1 / (t1 + t2), w2 = t2 / (t1 + t2)
    mean_i = Σ_j P_ij v_j,   std_i = sqrt(relu(Σ_j P_ij v_j² − mean_i²))
    out_i  = std_i · norm(F_c)_i + mean_i                                            (AdaAttN's output)

i.e. AdaAttN's attention-weighted mean and std under SCSA's continuous-sparse mixture of attention, restricted to
the region. Style keys are the (subsampled, when subsampling is on) AdaAttN keys; a style label none of whose kept
positions survived the subsampling counts as missing.

Fallback (both variants): a content label that the style lacks gets the plain model's attention over ALL style
positions for that region (SANet: query from the raw content feature, residual F_c) -- exactly what it would get
without label maps -- instead of the official code's uniform average. Empty regions never divide by zero.

Tiles: every statistic a position needs (per-region content mean/std, the whole-map normalisation of F_c, F_c', M_c)
comes from the runtime's whole-image statistics (Context.stats), so tiled runs give the whole-image numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sanet_client.protocol import DEFAULT_SCSA_WEIGHTS   # one definition for engine, daemon, plug-ins

from .. import functional as fn
from ..labels import grid_labels

T1, T2 = DEFAULT_SCSA_WEIGHTS   # SCA / SSA weights for the SANet backbone (official SANet+SCSA)
ADAIN_EPS = 1e-5           # inside the square root, as in the official semantic AdaIN


def _flat(x: torch.Tensor) -> torch.Tensor:
    """1×C×H×W → (H·W)×C, position-major like the attention rows."""
    return fn.tokens(x)[0]


# ------------------------------------------------------------------------------------- semantic AdaIN

def region_stats(feat: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-label mean and std of N×C features: (sorted labels L, L×C mean, L×C std), all in float32.

    std = sqrt(Σ mask·(f − μ)² / count + eps), i.e. biased variance as in the official semantic AdaIN. Only labels
    that occur are returned, so count ≥ 1 and nothing divides by zero.
    """
    uniq, _, count, mean, m2 = fn.label_sums(feat.float(), labels)
    return uniq, mean, (m2 / count[:, None] + ADAIN_EPS).sqrt()


def regions(feat: torch.Tensor, labels: torch.Tensor):
    """(sorted labels L, counts L, means L×C, biased variances L×C) in float64 of N×C features: the form of the
    runtime's whole-image per-label statistics (Context.stats.regions)."""
    uniq, _, count, mean, m2 = fn.label_sums(feat.float(), labels)
    count = count.double()
    return uniq, count, mean.double(), m2.double() / count[:, None]


def apply_semantic_adain(f: torch.Tensor, lc: torch.Tensor, c_labels: torch.Tensor, c_mean: torch.Tensor,
                         c_std: torch.Tensor, s_labels: torch.Tensor, s_mean: torch.Tensor,
                         s_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f − μc)/σc·σs + μs per content region, with given region statistics (c_labels must hold every label
    in lc). Returns (F_c', matched); positions whose label the style lacks keep F_c."""
    pos = torch.searchsorted(s_labels, c_labels).clamp(max=len(s_labels) - 1)
    has = s_labels[pos] == c_labels                                   # per content label: present in the style?
    inv = torch.searchsorted(c_labels, lc)
    scale = torch.where(has[:, None], s_std[pos] / c_std, torch.ones_like(c_std))
    shift = torch.where(has[:, None], s_mean[pos] - c_mean * scale, torch.zeros_like(c_mean))
    return (f.float() * scale[inv] + shift[inv]).to(f.dtype), has[inv]


def semantic_adain(fc: torch.Tensor, lc: torch.Tensor, s_labels: torch.Tensor, s_mean: torch.Tensor,
                   s_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-map form: N×C content features → (F_c', matched), content regions' statistics from fc itself."""
    return apply_semantic_adain(fc, lc, *region_stats(fc, lc), s_labels, s_mean, s_std)


# ------------------------------------------------------------------------------------- SANet + SCSA

@dataclass
class SemanticStyleLevel:
    """Everything SCSA needs from a style at one SANet level (positions flattened row-major)."""
    keys: torch.Tensor       # Ns×C  g(norm F_s)       SSA keys, and the fallback's keys
    values: torch.Tensor     # Ns×C  h(F_s)
    map_keys: torch.Tensor   # Ns×C  g(norm M_s)       SCA keys from the style label-map image
    labels: torch.Tensor     # Ns    label per position
    stat_labels: torch.Tensor  # L sorted labels present
    mean: torch.Tensor       # L×C float32
    std: torch.Tensor        # L×C float32
    groups: dict             # label → LongTensor of style positions


@dataclass
class SanetSemanticMemory:
    level4: SemanticStyleLevel
    level5: SemanticStyleLevel


def semantic_style_level(module, fs: torch.Tensor, ms: torch.Tensor, ids: torch.Tensor,
                         norm_f: tuple | None = None, norm_m: tuple | None = None) -> SemanticStyleLevel:
    """fs, ms: 1×C×h×w style and style-map features; ids: style labels (padded image size, or already at h×w);
    norm_f / norm_m: their (mean, std), None for their own."""
    labels = grid_labels(ids, tuple(fs.shape[-2:])).to(fs.device)
    stat_labels, mean, std = region_stats(_flat(fs), labels)
    nf = fn.normalise(fs, *(norm_f or fn.mean_std(fs)))
    nm = fn.normalise(ms, *(norm_m or fn.mean_std(ms)))
    return SemanticStyleLevel(_flat(module.g(nf)).contiguous(), _flat(module.h(fs)).contiguous(),
                              _flat(module.g(nm)).contiguous(), labels, stat_labels, mean, std,
                              fn.group_positions(labels))


def global_from_regions(n: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-map mean and std (UNBIASED variance + eps, like functional.mean_std) from per-region count/mean/var."""
    total = n.sum()
    mu = (n[:, None] * mean).sum(0) / total
    m2 = (n[:, None] * (var + (mean - mu) ** 2)).sum(0)
    return mu, (m2 / max(float(total) - 1.0, 1.0) + ADAIN_EPS).sqrt()


@dataclass
class ContentLevelStats:
    """Whole-image statistics one SCSA level needs, so that any part (tile) of the image gives exact results."""
    labels: torch.Tensor     # L sorted content labels present
    mean: torch.Tensor       # L×C float32   per-region content mean
    std: torch.Tensor        # L×C float32   per-region content std (biased, eps inside)
    matched: torch.Tensor    # L bool        the style has this label
    norm_c: tuple            # (mean, std) of F_c   over the whole map: the fallback's query normalisation
    norm_cp: tuple           # (mean, std) of F_c'  over the whole map: SSA's query normalisation
    norm_m: tuple            # (mean, std) of M_c   over the whole map: SCA's query normalisation


def content_level_stats(regions_c, norm_c: tuple, norm_m: tuple, s: SemanticStyleLevel, device,
                        dtype) -> ContentLevelStats:
    """From whole-image content regions (labels, counts, means, biased variances; float64) and the whole-map
    (mean, std) of F_c and M_c: everything the queries need.

    F_c' region k is (F_c − μc)/σc·σs + μs, so its mean is μs and its (biased) variance var_c·σs²/σc²; the whole
    map's statistics of F_c' follow exactly from the regions' without ever building F_c'."""
    labels, n, mean, var = regions_c
    std = (var + ADAIN_EPS).sqrt()
    pos = torch.searchsorted(s.stat_labels, labels).clamp(max=len(s.stat_labels) - 1)
    has = s.stat_labels[pos] == labels
    s_mean, s_std = s.mean[pos].double(), s.std[pos].double()
    p_mean = torch.where(has[:, None], s_mean, mean)
    p_var = torch.where(has[:, None], var * s_std ** 2 / std ** 2, var)
    cast = lambda t: tuple(x.to(device=device, dtype=dtype).reshape(1, -1) for x in t)  # noqa: E731
    return ContentLevelStats(labels, mean.float(), std.float(), has, cast(norm_c),
                             cast(global_from_regions(n, p_mean, p_var)), cast(norm_m))


def whole_level_stats(fc: torch.Tensor, mc: torch.Tensor, lc: torch.Tensor, s: SemanticStyleLevel) -> ContentLevelStats:
    """content_level_stats when fc / mc / lc are the whole image."""
    return content_level_stats(regions(_flat(fc), lc), fn.mean_std(fc), fn.mean_std(mc), s, fc.device, fc.dtype)


def scsa_attend(module, fc: torch.Tensor, mc: torch.Tensor, lc: torch.Tensor, s: SemanticStyleLevel,
                t1: float = T1, t2: float = T2, stats: ContentLevelStats | None = None) -> torch.Tensor:
    """One SANet+SCSA block: fc, mc 1×C×h×w (content and content-map features), lc the h·w content labels.

    stats: whole-image statistics when fc/mc/lc are one tile of the image; None: they are the whole image."""
    n, c, h, w = fc.shape
    if n != 1:
        raise ValueError("scsa_attend works on one image at a time")
    if stats is None:
        stats = whole_level_stats(fc, mc, lc, s)
    f = _flat(fc)
    # semantic AdaIN with the regions' whole-image statistics; F_c unchanged where the style lacks the label
    fprime, matched = apply_semantic_adain(f, lc, stats.labels, stats.mean, stats.std, s.stat_labels, s.mean, s.std)
    normed = lambda x, ms: (x - ms[0]) / ms[1]  # noqa: E731
    q_ssa = _conv(module.f, normed(fprime, stats.norm_cp))
    q_sca = _conv(module.f, normed(_flat(mc), stats.norm_m))

    mix = torch.zeros_like(f)                                          # what goes through out_conv
    # out_conv is 1×1 and linear: t1·out_conv(a) + t2·out_conv(b) = out_conv(t1·a + t2·b) + (t1 + t2 − 1)·bias
    extra = torch.full((f.shape[0], 1), t1 + t2 - 1.0, dtype=f.dtype, device=f.device)
    resid = fprime
    for k in torch.unique(lc[matched]).tolist():
        pc = (lc == k).nonzero().squeeze(1)
        ps = s.groups[k]
        sca = fn.attention(q_sca[pc][None], s.map_keys[ps][None], s.values[ps][None])[0]
        ssa = fn.top1(q_ssa[pc], s.keys[ps], s.values[ps])
        mix[pc] = t1 * sca + t2 * ssa
    if not bool(matched.all()):  # fallback: plain SANet over all style positions, residual F_c
        fb = (~matched).nonzero().squeeze(1)
        q_plain = _conv(module.f, normed(f[fb], stats.norm_c))
        mix[fb] = fn.attention(q_plain[None], s.keys[None], s.values[None])[0]
        extra[fb] = 0.0
        resid = fprime.clone()
        resid[fb] = f[fb]
    out = resid + _conv(module.out_conv, mix) + extra * module.out_conv.bias[None, :]
    return out.transpose(0, 1).reshape(1, c, h, w)


def _conv(conv, x: torch.Tensor) -> torch.Tensor:
    """A 1×1 conv module applied to N×C position rows (as a 1×C×N×1 map)."""
    return conv(x.transpose(0, 1)[None, :, :, None])[0, :, :, 0].transpose(0, 1)


def sanet_scsa_levels(transform, feats: dict, ctx, m: SanetSemanticMemory) -> tuple[torch.Tensor, torch.Tensor]:
    """SCSA at relu4_1 and relu5_1 of a region (SANet's transform for a labelled style)."""
    t1, t2 = ctx.scsa_weights
    out = []
    for level, module, s, f, mm, factor in ((4, transform.sanet4_1, m.level4, "r4", "m4", 8),
                                            (5, transform.sanet5_1, m.level5, "r5", "m5", 16)):
        key = ("scsa-sanet", id(m), level)
        if key not in ctx.memo:    # once per style and call: the whole image's statistics for this style
            fc = feats[f]
            ctx.memo[key] = content_level_stats(ctx.stats.regions(f), ctx.stats.mean_std(f), ctx.stats.mean_std(mm),
                                                s, fc.device, fc.dtype)
        out.append(scsa_attend(module, feats[f], feats[mm], ctx.labels[factor].reshape(-1), s, t1, t2,
                               ctx.memo[key]))
    return out[0], out[1]


# ------------------------------------------------------------------------------------- AdaAttN + SCSA

@dataclass
class SemanticMomentsLevel:
    """An AdaAttN style level with labels: keys g(norm key_s), values h(F_s) at the kept positions, their labels."""
    keys: torch.Tensor       # Ns×E
    values: torch.Tensor     # Ns×C
    labels: torch.Tensor     # Ns
    groups: dict             # label → LongTensor of positions in keys/values


def semantic_moments_level(keys: torch.Tensor, values: torch.Tensor, labels: torch.Tensor) -> SemanticMomentsLevel:
    """keys 1×Ns×E, values 1×Ns×C, labels Ns (of the same, possibly subsampled, positions)."""
    return SemanticMomentsLevel(keys[0], values[0], labels, fn.group_positions(labels))


def scsa_moments(q: torch.Tensor, lc: torch.Tensor, s: SemanticMomentsLevel, t1: float, t2: float,
                 chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-query (mean, std) of h(F_s) under the continuous-sparse mixture P (module doc); q: Nq×E, lc: Nq labels.
    Content labels the style lacks: AdaAttN's plain attention over all style positions."""
    c = s.values.shape[1]
    w1, w2 = t1 / (t1 + t2), t2 / (t1 + t2)
    out_mean, out_std = q.new_empty(q.shape[0], c), q.new_empty(q.shape[0], c)

    def moments(pc: torch.Tensor, ps: torch.Tensor | None) -> None:
        """About the group's own value mean (functional.attention_moments): a group never sees another's values."""
        keys, values = (s.keys, s.values) if ps is None else (s.keys[ps], s.values[ps])
        mu, sigma = fn.value_frame(values, dim=0)
        vs = (values - mu) / sigma
        vv = torch.cat([vs, vs * vs], dim=1)
        m = fn.attention(q[pc][None], keys[None], vv[None], chunk)[0]
        if ps is not None:                                            # the sparse part: the best key's value
            m = w1 * m + w2 * vv[fn.top1_index(q[pc], keys)]
        out_mean[pc] = m[:, :c] * sigma + mu
        out_std[pc] = torch.sqrt(torch.relu(m[:, c:] - m[:, :c] * m[:, :c])) * sigma

    missing = []
    for k in torch.unique(lc).tolist():
        pc = (lc == k).nonzero().squeeze(1)
        ps = s.groups.get(k)
        if ps is None:
            missing.append(pc)
        else:
            moments(pc, ps)
    if missing:
        moments(torch.cat(missing), None)
    return out_mean, out_std
