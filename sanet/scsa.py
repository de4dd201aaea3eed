"""SCSA (CVPR 2025) on the SANet base: region-to-region style transfer driven by label maps.

Training-free: the same checkpoints, only the attention step changes (facts: scsa-adaattn.md §1). Per level:

    F_c' = semantic AdaIN(F_c)              each content region k re-coloured with style region k's mean/std
    SCA  = softmax(f(norm M_c)ᵀ g(norm M_s)) · h(F_s)   M = encoder features of the label-map IMAGES
    SSA  = h(F_s) at argmax f(norm F_c')ᵀ g(norm F_s)  (hard top-1)
    out  = t1 · out_conv(SCA) + t2 · out_conv(SSA) + F_c'          t1, t2 = 0.7, 0.3

where content position i only sees style positions j with the same label. Unlike the official code (fixed
512×512, full N×N masks), positions are grouped by label and attention runs on each group (block-diagonal), so
memory is that of plain SANet and any image size works.

Labels: an integer label image (H×W, any integer values), or a colour-coded map (H×W×3/4) whose pixels are
snapped to the nearest palette colour at full resolution (palette None: the distinct colours of all maps given,
so the same colour means the same label in content and style; painted maps' anti-aliased edge colours snap to
the main colours). Label grids come from NEAREST (pixel-centre) downsampling of the padded map, at any size.
The label-map IMAGE the encoder sees for SCA is the snapped colour map (integer labels: a fixed colour per id).

Large images: every statistic a position needs (per-region content mean/std, the whole-map normalisation of
F_c, F_c' and M_c) is accumulated over the whole image first, so tiled runs (sanet.tiled) give the same numbers.

Fallback: a content label that the style lacks gets ordinary SANet attention over ALL style positions in that
region (query from the raw content feature, residual F_c) -- exactly what it would get without label maps --
instead of the official code's uniform average. Empty regions never divide by zero.
"""
from __future__ import annotations

import colorsys
import hashlib
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError
from .images import to_float
from .network import SANet, mean_variance_norm

from sanet_client.protocol import DEFAULT_SCSA_WEIGHTS  # noqa: E402  one definition for engine, daemon, plug-ins

T1, T2 = DEFAULT_SCSA_WEIGHTS   # SCA / SSA weights for the SANet backbone (official SANet+SCSA)
MAX_LABELS = 64            # colour maps without a palette: more distinct colours than this is noise, not labels
MIN_LABEL_SHARE = 0.002    # ... then only colours covering ≥ 0.2 % of a map are labels (the rest: anti-aliasing)
ADAIN_EPS = 1e-5           # inside the square root, as in the official semantic AdaIN
_SCORE_BUDGET = 1 << 24    # SSA score entries per chunk (64 MiB in fp32)


# --------------------------------------------------------------------------------------------- label maps

@dataclass
class LabelMap:
    """A label map resolved to what SCSA needs: label ids, and the colour image the encoder sees for SCA."""
    ids: np.ndarray     # int64 H×W
    image: np.ndarray   # float32 H×W×3 in [0,1]: one flat colour per label


def parse_palette(palette) -> np.ndarray | None:
    """Palette: sequence of (r, g, b) in 0..255 or '#rrggbb' strings → K×3 float32 in [0,1]."""
    if palette is None:
        return None
    rows = []
    for i, p in enumerate(palette):
        if isinstance(p, str):
            s = p.strip().lstrip("#")
            if len(s) != 6:
                raise InputError(f"label palette entry {i + 1} '{p}': expected '#rrggbb'")
            try:
                rows.append([int(s[j:j + 2], 16) for j in (0, 2, 4)])
            except ValueError:
                raise InputError(f"label palette entry {i + 1} '{p}': expected '#rrggbb'") from None
        else:
            v = np.asarray(p, dtype=np.float64).ravel()
            if v.shape != (3,) or not np.all(np.isfinite(v)) or v.min() < 0 or v.max() > 255:
                raise InputError(f"label palette entry {i + 1} {p!r}: expected (r, g, b) with values 0..255")
            rows.append(list(v))
    if not rows:
        raise InputError("label palette is empty: give at least one colour")
    return (np.asarray(rows, dtype=np.float32) / 255.0)


def label_colour(label: int) -> tuple[float, float, float]:
    """A fixed, well-separated colour per integer label (golden-ratio hues), so content and style agree."""
    h = (label * 0.618033988749895) % 1.0
    s, v = (0.85, 0.95) if label % 2 == 0 else (0.6, 0.7)
    return colorsys.hsv_to_rgb(h, s, v)


def _is_colour(arr: np.ndarray) -> bool:
    return arr.ndim == 3 and arr.shape[2] in (3, 4)


def _integer_ids(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (1, 2):
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise InputError(f"{what}: shape {arr.shape} is not a label map: expected H×W integer labels "
                         f"or an H×W×3 colour-coded map")
    if arr.dtype == bool or np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(f"{what}: float label map with non-integer values: expected integer labels")
        return arr.astype(np.int64)
    raise InputError(f"{what}: dtype {arr.dtype} is not supported for a label map")


def _snap(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest palette colour for every pixel (full resolution, row blocks to bound memory)."""
    h, w = rgb.shape[:2]
    flat = rgb.reshape(-1, 3)
    out = np.empty(flat.shape[0], dtype=np.int64)
    step = 1 << 20
    for a in range(0, flat.shape[0], step):
        d = ((flat[a:a + step, None, :] - palette[None, :, :]) ** 2).sum(-1)
        out[a:a + step] = d.argmin(1)
    return out.reshape(h, w)


def _infer_palette(maps: list) -> np.ndarray:
    """No palette given: the distinct 8-bit colours of ALL colour maps (so ids agree between content and style).
    Painted maps have anti-aliased edges: with more than MAX_LABELS colours, only colours covering at least
    MIN_LABEL_SHARE of a map's pixels are labels and edge pixels snap to the nearest of them."""
    counts: dict[tuple, int] = {}
    major: set[tuple] = set()
    for what, arr in maps:
        q = np.rint(np.clip(np.nan_to_num(to_float(arr[:, :, :3])), 0, 1) * 255).astype(np.uint8).reshape(-1, 3)
        found, n = np.unique(q, axis=0, return_counts=True)
        for colour, k in zip(map(tuple, found.tolist()), n.tolist()):
            counts[colour] = counts.get(colour, 0) + k
            if k >= MIN_LABEL_SHARE * q.shape[0]:
                major.add(colour)
    colours = set(counts) if len(counts) <= MAX_LABELS else major
    if not colours or len(colours) > MAX_LABELS:
        names = ", ".join(what for what, _ in maps)
        raise InputError(f"{names}: {len(counts)} distinct colours, too many to tell the labels apart (JPEG "
                         f"noise?): give a label palette, or use an integer label image")
    return np.asarray(sorted(colours), dtype=np.float32) / 255.0


def resolve_label_maps(content, styles: list, palette=None) -> tuple[LabelMap, list[LabelMap | None]]:
    """Content map and one (or None) per style → LabelMaps with shared label ids."""
    pal = parse_palette(palette)
    maps = [("content label map", np.asarray(content))] + [
        (f"style {i + 1} label map", None if s is None else np.asarray(s)) for i, s in enumerate(styles)]
    for what, arr in maps:
        if arr is not None and arr.size == 0:
            raise InputError(f"{what}: empty image")
    if pal is None and any(a is not None and _is_colour(a) for _, a in maps):
        pal = _infer_palette([(what, a) for what, a in maps if a is not None and _is_colour(a)])
    out = []
    for what, arr in maps:
        if arr is None:
            out.append(None)
            continue
        if _is_colour(arr):
            rgb = np.clip(np.nan_to_num(to_float(arr[:, :, :3])), 0.0, 1.0)
            ids = _snap(rgb, pal)
            image = pal[ids]
        else:
            ids = _integer_ids(arr, what)
            table = {int(k): (pal[k] if pal is not None and 0 <= k < len(pal) else label_colour(int(k)))
                     for k in np.unique(ids)}
            lut_keys = np.array(sorted(table), dtype=np.int64)
            lut = np.asarray([table[int(k)] for k in lut_keys], dtype=np.float32)
            image = lut[np.searchsorted(lut_keys, ids)]
        out.append(LabelMap(ids, np.ascontiguousarray(image, dtype=np.float32)))
    return out[0], out[1:]


def resize_labels(ids: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """NEAREST (pixel-centre, like PIL's NEAREST) resize of an H×W label/colour tensor (…×H×W)."""
    if tuple(ids.shape[-2:]) == tuple(size):
        return ids
    x = ids.float()
    lead = x.shape[:-2]
    x = x.reshape(1, -1, *x.shape[-2:])
    return F.interpolate(x, size=size, mode="nearest-exact").reshape(*lead, *size).to(ids.dtype)


def grid_labels(ids: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Labels of a (padded) H×W id tensor at a feature grid, flattened row-major like the features."""
    return resize_labels(ids, grid).reshape(-1).round().long()


# ------------------------------------------------------------------------------------------ the math

def _flat(x: torch.Tensor) -> torch.Tensor:
    """1×C×H×W → (H·W)×C, position-major like the attention rows."""
    return x.flatten(2)[0].transpose(0, 1)


def _label_sums(f: torch.Tensor, labels: torch.Tensor):
    """(sorted labels L, inverse N, counts L, per-label means L×C, per-label Σ(f − μ)² L×C) of N×C float32 features.
    Sums are one-hot GEMMs: far faster than index_add_ on CPU, and two-pass (centred) for accuracy."""
    uniq, inv = torch.unique(labels, return_inverse=True)
    onehot = torch.zeros(len(uniq), f.shape[0], dtype=f.dtype, device=f.device)
    onehot[inv, torch.arange(f.shape[0], device=f.device)] = 1.0
    count = onehot.sum(1)
    mean = (onehot @ f) / count[:, None]
    m2 = onehot @ (f - mean[inv]) ** 2
    return uniq, inv, count, mean, m2


def region_stats(feat: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-label mean and std of N×C features: (sorted labels L, L×C mean, L×C std), all in float32.

    std = sqrt(Σ mask·(f − μ)² / count + eps), i.e. biased variance as in the official semantic AdaIN. Only labels
    that occur are returned, so count ≥ 1 and nothing divides by zero.
    """
    uniq, _, count, mean, m2 = _label_sums(feat.float(), labels)
    return uniq, mean, (m2 / count[:, None] + ADAIN_EPS).sqrt()


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


def _top1(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Hard attention: for each query row, the value at its best-scoring key (score = qᵀk, no scaling)."""
    rows = max(1, _SCORE_BUDGET // max(1, k.shape[0]))
    out = []
    for a in range(0, q.shape[0], rows):
        best = (q[a:a + rows] @ k.transpose(0, 1)).argmax(dim=1)
        out.append(v[best])
    return torch.cat(out) if len(out) > 1 else out[0]


def _soft(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(qᵀk) v without a score matrix (fused kernel; SANet has no 1/sqrt(d))."""
    return F.scaled_dot_product_attention(q[None, None], k[None, None], v[None, None], scale=1.0)[0, 0]


@dataclass
class SemanticStyleLevel:
    """Everything SCSA needs from a style at one level (positions flattened row-major)."""
    keys: torch.Tensor       # Ns×C  g(norm F_s)       SSA keys, and the fallback's keys
    values: torch.Tensor     # Ns×C  h(F_s)
    map_keys: torch.Tensor   # Ns×C  g(norm M_s)       SCA keys from the style label-map image
    labels: torch.Tensor     # Ns    label per position
    stat_labels: torch.Tensor  # L sorted labels present
    mean: torch.Tensor       # L×C float32
    std: torch.Tensor        # L×C float32
    groups: dict             # label → LongTensor of style positions


def semantic_style_level(module: SANet, fs: torch.Tensor, ms: torch.Tensor, ids: torch.Tensor) -> SemanticStyleLevel:
    """fs, ms: 1×C×h×w style and style-map features; ids: the padded style label tensor (H×W)."""
    labels = grid_labels(ids, tuple(fs.shape[-2:])).to(fs.device)
    stat_labels, mean, std = region_stats(_flat(fs), labels)
    groups = {int(k): (labels == k).nonzero().squeeze(1) for k in stat_labels.tolist()}
    return SemanticStyleLevel(_flat(module.g(mean_variance_norm(fs))).contiguous(), _flat(module.h(fs)).contiguous(),
                              _flat(module.g(mean_variance_norm(ms))).contiguous(), labels, stat_labels, mean, std,
                              groups)


class RegionAccumulator:
    """Per-label count / mean / M2 of N×C features in float64, merged over any number of parts (Chan et al.):
    whole-image statistics from tiles. finish() gives biased variances, as semantic AdaIN needs."""

    def __init__(self):
        self.parts: dict[int, tuple[float, torch.Tensor, torch.Tensor]] = {}

    def add(self, feat: torch.Tensor, labels: torch.Tensor) -> None:
        uniq, _, count, mean, m2 = _label_sums(feat.float(), labels)   # per part in float32, merged in float64
        count, mean, m2 = count.double(), mean.double(), m2.double()
        for j, k in enumerate(uniq.tolist()):
            nb, mb, qb = float(count[j]), mean[j], m2[j]
            if k not in self.parts:
                self.parts[k] = (nb, mb, qb)
                continue
            na, ma, qa = self.parts[k]
            n = na + nb
            d = mb - ma
            self.parts[k] = (n, ma + d * (nb / n), qa + qb + d * d * (na * nb / n))

    def finish(self, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sorted labels L, counts L, means L×C, biased variances L×C), float64 on `device`."""
        keys = sorted(self.parts)
        n = torch.tensor([self.parts[k][0] for k in keys], dtype=torch.float64)
        mean = torch.stack([self.parts[k][1] for k in keys]).cpu()
        var = torch.stack([self.parts[k][2] for k in keys]).cpu() / n[:, None]
        return (torch.tensor(keys, dtype=torch.long, device=device), n.to(device), mean.to(device), var.to(device))


def _global_from_regions(n: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-map mean and std (UNBIASED variance + eps, like network.mean_std) from per-region count/mean/var."""
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


def content_level_stats(feat_acc: RegionAccumulator, norm_m: tuple, s: SemanticStyleLevel, device,
                        dtype) -> ContentLevelStats:
    """From accumulated content-feature regions (and M_c's whole-map mean/std): everything the queries need.

    F_c' region k is (F_c − μc)/σc·σs + μs, so its mean is μs and its (biased) variance var_c·σs²/σc²; the whole
    map's statistics of F_c' follow exactly from the regions' without ever building F_c'."""
    labels, n, mean, var = feat_acc.finish(device)
    std = (var + ADAIN_EPS).sqrt()
    pos = torch.searchsorted(s.stat_labels, labels).clamp(max=len(s.stat_labels) - 1)
    has = s.stat_labels[pos] == labels
    s_mean, s_std = s.mean[pos].double(), s.std[pos].double()
    p_mean = torch.where(has[:, None], s_mean, mean)
    p_var = torch.where(has[:, None], var * s_std ** 2 / std ** 2, var)
    cast = lambda t: tuple(x.to(device=device, dtype=dtype).reshape(1, -1) for x in t)  # noqa: E731
    return ContentLevelStats(labels, mean.float(), std.float(), has, cast(_global_from_regions(n, mean, var)),
                             cast(_global_from_regions(n, p_mean, p_var)), cast(norm_m))


def whole_level_stats(fc: torch.Tensor, mc: torch.Tensor, lc: torch.Tensor, s: SemanticStyleLevel) -> ContentLevelStats:
    fa, ma = RegionAccumulator(), RegionAccumulator()
    fa.add(_flat(fc), lc)
    ma.add(_flat(mc), torch.zeros_like(lc))
    _, mn, mm, mv = ma.finish(fc.device)
    return content_level_stats(fa, _global_from_regions(mn, mm, mv), s, fc.device, fc.dtype)


def scsa_attend(module: SANet, fc: torch.Tensor, mc: torch.Tensor, lc: torch.Tensor, s: SemanticStyleLevel,
                t1: float = T1, t2: float = T2, stats: ContentLevelStats | None = None) -> torch.Tensor:
    """One SCSA block: fc, mc 1×C×h×w (content and content-map features), lc the h·w content labels.

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
    q_ssa = normed(fprime, stats.norm_cp) @ module.f.weight.reshape(c, c).t() + module.f.bias
    q_sca = normed(_flat(mc), stats.norm_m) @ module.f.weight.reshape(c, c).t() + module.f.bias

    mix = torch.zeros_like(f)                                          # what goes through out_conv
    bias = torch.full((f.shape[0], 1), t1 + t2, dtype=f.dtype, device=f.device)
    resid = fprime
    for k in torch.unique(lc[matched]).tolist():
        pc = (lc == k).nonzero().squeeze(1)
        ps = s.groups[k]
        sca = _soft(q_sca[pc], s.map_keys[ps], s.values[ps])
        ssa = _top1(q_ssa[pc], s.keys[ps], s.values[ps])
        mix[pc] = t1 * sca + t2 * ssa
    if not bool(matched.all()):  # fallback: plain SANet over all style positions, residual F_c
        fb = (~matched).nonzero().squeeze(1)
        q_plain = normed(f[fb], stats.norm_c) @ module.f.weight.reshape(c, c).t() + module.f.bias
        mix[fb] = _soft(q_plain, s.keys, s.values)
        bias[fb] = 1.0
        resid = fprime.clone()
        resid[fb] = f[fb]
    # out_conv is 1×1 and linear: t1·out_conv(a) + t2·out_conv(b) = W(t1·a + t2·b) + (t1 + t2)·bias
    weight = module.out_conv.weight.reshape(c, c)
    out = resid + mix @ weight.transpose(0, 1) + bias * module.out_conv.bias[None, :]
    return out.transpose(0, 1).reshape(1, c, h, w)


# ------------------------------------------------------------------------------- engine-side request

@dataclass
class SemanticRequest:
    """What stylize() was asked for: resolved label maps (content, one per style) and the SCA/SSA weights."""
    content: LabelMap
    styles: list            # LabelMap | None per style
    t1: float = T1
    t2: float = T2


def make_request(content_labels, style_labels: list, palette, weights, content_hw: tuple[int, int],
                 style_hws: list) -> SemanticRequest | None:
    """Validate the label inputs of one stylize() call; None when no label map was given at all."""
    if content_labels is None and all(s is None for s in style_labels):
        return None
    if content_labels is None:
        raise InputError("a style has a label map but the content has none: give a content label map too "
                         "(content_labels, --content-labels) or drop the style label maps")
    if all(s is None for s in style_labels):
        raise InputError("content label map given but no style has a label map: give one for at least one style "
                         "(Style(labels=...), --style-labels)")
    try:
        t1, t2 = (float(v) for v in weights)
    except (TypeError, ValueError):
        raise InputError(f"scsa_weights {weights!r}: expected two numbers (t1, t2)") from None
    if not (np.isfinite(t1) and np.isfinite(t2)):
        raise InputError(f"scsa_weights {weights!r}: expected two finite numbers (t1, t2)")
    content, styles = resolve_label_maps(content_labels, style_labels, palette)
    if content.ids.shape != tuple(content_hw):
        raise InputError(f"content label map: size {content.ids.shape[1]}×{content.ids.shape[0]} does not match "
                         f"the content size {content_hw[1]}×{content_hw[0]}")
    for i, (m, hw) in enumerate(zip(styles, style_hws)):
        if m is not None and hw is not None and m.ids.shape != tuple(hw):
            raise InputError(f"style {i + 1} label map: size {m.ids.shape[1]}×{m.ids.shape[0]} does not match "
                             f"the style image size {hw[1]}×{hw[0]}")
    return SemanticRequest(content, styles, t1, t2)


# ------------------------------------------------------------------------ engine side (needs a Stylizer)

def _encode_pair(st, rgb: np.ndarray, labels: LabelMap, resize_to: tuple[int, int] | None,
                 pad_size: tuple[int, int]):
    """Encode an image and its label-map image the same way; returns (f4, f5, m4, m5, padded ids H×W float32).

    The image is resized with "area" like the engine does; the map image and ids with NEAREST (labels stay labels).
    """
    from .engine import pad_to  # lazy: engine imports this module
    x = st._to_tensor(rgb)
    m = st._to_tensor(labels.image)
    ids = torch.from_numpy(labels.ids.astype(np.float32))[None, None].to(st.device)
    if resize_to is not None and tuple(resize_to) != tuple(x.shape[-2:]):
        x = F.interpolate(x, size=resize_to, mode="area")
        m = resize_labels(m, resize_to)
        ids = resize_labels(ids, resize_to)
    f4, f5 = st._encode(pad_to(x, pad_size))
    m4, m5 = st._encode(pad_to(m, pad_size))
    return f4, f5, m4, m5, pad_to(ids, pad_size)[0, 0]


def encode_semantic_style(st, image: np.ndarray, labels: LabelMap, max_side: int | None, what: str):
    """The two SemanticStyleLevels of a style image (resized/padded exactly like Stylizer.encode_style)."""
    from .engine import MIN_SIDE
    from .images import split_layer
    rgb = split_layer(image, what).rgb
    h, w = rgb.shape[:2]
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        h, w = max(1, round(h * s)), max(1, round(w * s))
    f4, f5, m4, m5, ids = _encode_pair(st, rgb, labels, (h, w), (max(h, MIN_SIDE), max(w, MIN_SIDE)))
    t = st._transform
    return semantic_style_level(t.sanet4_1, f4, m4, ids), semantic_style_level(t.sanet5_1, f5, m5, ids)


# Encoded labelled styles per loaded model (weak: Stylizer.unload() drops the model and, with it, this cache), so
# an artist's repeated runs with one style (preview, then full size; α tweaks) encode style + map only once.
_STYLE_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, OrderedDict]" = weakref.WeakKeyDictionary()


def _cached_semantic_style(st, image, labels: LabelMap, max_side, what: str):
    from .engine import _image_key
    h = hashlib.blake2b(np.ascontiguousarray(labels.ids).data, digest_size=16)
    h.update(np.ascontiguousarray(labels.image).data)
    key = _image_key(np.asarray(image), max_side) + h.hexdigest() + str(st.dtype)
    cache = _STYLE_CACHE.setdefault(st._transform, OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    levels = encode_semantic_style(st, image, labels, max_side, what)
    cache[key] = levels
    while len(cache) > max(1, getattr(st, "_cache_size", 8)):
        cache.popitem(last=False)
    return levels


class SemanticRun:
    """One stylize() call's SCSA state: per-style semantic levels, then (bind_content) the content map's.
    Executed by sanet.tiled.run_whole (transform_features) or, for tiled plans, by self.run_tiled."""

    def __init__(self, st, request: SemanticRequest, styles: list, style_max_side):
        from .engine import StyleFeatures
        self.st = st
        self.request = request
        self.styles = []
        for i, (s, m) in enumerate(zip(styles, request.styles)):
            if m is None:
                self.styles.append(None)   # a style without labels: plain SANet for it
                continue
            if isinstance(s.source, StyleFeatures):
                raise InputError(f"style {i + 1}: a label map needs the style image, not pre-encoded StyleFeatures")
            self.styles.append(_cached_semantic_style(st, s.source, m, style_max_side, f"style {i + 1} image"))
        self.map_src = self.lc4 = self.lc5 = self.pad_size = None
        self._maps = None

    def applies(self, i: int) -> bool:
        return self.styles[i] is not None

    def plain_features(self, i: int):
        """Style i's plain SANet keys/values (same tensors as encode_style would give), without re-encoding."""
        from .engine import StyleFeatures
        from .transform import StyleLevel
        s4, s5 = self.styles[i]
        lv = lambda s: StyleLevel(s.keys[None], s.values[None])  # noqa: E731
        return StyleFeatures(lv(s4), lv(s5), (0, 0), f"scsa-style-{i}")

    def bind_content(self, st, content_hw, run_hw, pad_size) -> "SemanticRun":
        """The content label map through the same preview resize and padding as the content: the map image as a
        CPU tensor like the content's (encoded whole or by tiles later), the labels at both feature grids."""
        from .engine import pad_to
        m = torch.from_numpy(self.request.content.image).permute(2, 0, 1)[None]
        ids = torch.from_numpy(self.request.content.ids.astype(np.float32))[None, None]
        if tuple(run_hw) != tuple(content_hw):
            m, ids = resize_labels(m, run_hw), resize_labels(ids, run_hw)
        ids = pad_to(ids, pad_size)[0, 0]
        self.map_src, self.pad_size = m, tuple(pad_size)
        self.lc4 = grid_labels(ids, (pad_size[0] // 8, pad_size[1] // 8)).reshape(pad_size[0] // 8, -1).to(st.device)
        self.lc5 = grid_labels(ids, (pad_size[0] // 16, pad_size[1] // 16)).reshape(pad_size[0] // 16, -1).to(st.device)
        self._maps = None
        return self

    def _whole_maps(self):
        if self._maps is None:  # the map image is encoded once per call, shared by all labelled styles
            from .engine import pad_to
            x = self.map_src.to(device=self.st.device, dtype=self.st.dtype).contiguous(memory_format=torch.channels_last)
            self._maps = self.st._encode(pad_to(x, self.pad_size))
        return self._maps

    def transform_features(self, i: int, c4: torch.Tensor, c5: torch.Tensor) -> torch.Tensor:
        """merge(SCSA4(c4), SCSA5(c5)) for style i on the whole image: replaces sanet.transform.transform_features."""
        from .transform import merge
        s4, s5 = self.styles[i]
        t, r = self.st._transform, self.request
        m4, m5 = self._whole_maps()
        return merge(t, scsa_attend(t.sanet4_1, c4, m4, self.lc4.reshape(-1), s4, r.t1, r.t2),
                     scsa_attend(t.sanet5_1, c5, m5, self.lc5.reshape(-1), s5, r.t1, r.t2))

    def run_tiled(self, job, plan, finish=None) -> np.ndarray:
        """Like sanet.tiled.run_tiled, with SCSA for the labelled styles and whole-image region statistics."""
        from .tiled import TiledRun
        runner = _semantic_tiled_run_class(TiledRun)(job, plan, self)
        out = np.empty((*job.size, 3), dtype=np.float32)
        runner.encode_pass(0.3, 0.5)
        runner.stylize_pass(out, finish, 0.5, 0.95)
        return out


def _semantic_tiled_run_class(TiledRun):
    """sanet.tiled.TiledRun with SCSA (built lazily: tiled imports the engine, which imports this module).

    Pass 1 also encodes the content map image tile by tile (same halos, so tile cores equal the whole-image maps)
    and accumulates per-label statistics of relu4_1/relu5_1 over the whole image; pass 2 runs scsa_attend on each
    tile with those statistics, so every tile core is exactly what the whole-image run gives."""
    import copy

    from .tiled import DECODER_HALO, attend_normalised
    from .transform import merge

    class SemanticTiledRun(TiledRun):
        def __init__(self, job, plan, sem: SemanticRun):
            super().__init__(job, plan)
            self.sem = sem
            map_job = copy.copy(job)
            map_job.src = sem.map_src
            self.maps = TiledRun(map_job, plan)
            self._acc = None

        def encode_region(self, y0, y1, x0, x1):
            c4, c5 = super().encode_region(y0, y1, x0, x1)
            if self._acc is not None:  # pass 1: whole-image per-label statistics, tile by tile
                self._acc[0].add(_flat(c4), self.sem.lc4[y0 // 8:y1 // 8, x0 // 8:x1 // 8].reshape(-1))
                self._acc[1].add(_flat(c5), self.sem.lc5[y0 // 16:y1 // 16, x0 // 16:x1 // 16].reshape(-1))
            return c4, c5

        def encode_pass(self, lo, hi):
            self._acc = (RegionAccumulator(), RegionAccumulator())
            super().encode_pass(lo, (lo + hi) / 2)
            acc4, acc5 = self._acc
            self._acc = None
            self.maps.encode_pass((lo + hi) / 2, hi)   # global mean/std of the map features (like the content's)
            st = self.st
            self.level_stats = {
                i: (content_level_stats(acc4, self.maps.stats4, s4, st.device, st.dtype),
                    content_level_stats(acc5, self.maps.stats5, s5, st.device, st.dtype))
                for i, (s4, s5) in ((i, s) for i, s in enumerate(self.sem.styles) if s is not None)}

        def stylize_tile(self, y0, y1, x0, x1):
            job, t, sem, r = self.job, self.st._transform, self.sem, self.sem.request
            gh, gw = self.grid
            ga, gb = max(0, y0 // 8 - DECODER_HALO), min(gh, y1 // 8 + DECODER_HALO)
            gc, gd = max(0, x0 // 8 - DECODER_HALO), min(gw, x1 // 8 + DECODER_HALO)
            c4, c5 = self.features(ga, gb, gc, gd)
            m4, m5 = self.maps.features(ga, gb, gc, gd)
            lc4 = sem.lc4[ga:gb, gc:gd].reshape(-1)
            lc5 = sem.lc5[ga // 2:gb // 2, gc // 2:gd // 2].reshape(-1)
            plain = [k for k in range(len(job.styles)) if not sem.applies(k)]
            levels = [job.styles[k] for k in plain] + ([self.own] if job.use_own else [])
            o4 = attend_normalised(t.sanet4_1, c4, *self.stats4, [lv[0] for lv in levels], self.plan.query_chunk)
            o5 = attend_normalised(t.sanet5_1, c5, *self.stats5, [lv[1] for lv in levels], self.plan.query_chunk)
            feat = None
            for k in range(len(job.styles)):
                if sem.applies(k):
                    (s4, s5), (st4, st5) = sem.styles[k], self.level_stats[k]
                    part = merge(t, scsa_attend(t.sanet4_1, c4, m4, lc4, s4, r.t1, r.t2, st4),
                                 scsa_attend(t.sanet5_1, c5, m5, lc5, s5, r.t1, r.t2, st5))
                else:
                    j = plain.index(k)
                    part = merge(t, o4[j], o5[j])
                part = job.alpha * job.coeffs[k][:, :, ga:gb, gc:gd] * part
                feat = part if feat is None else feat + part
            if job.use_own:
                feat = feat + job.rest[:, :, ga:gb, gc:gd] * merge(t, o4[-1], o5[-1])
            del c4, c5, m4, m5, o4, o5
            out = self.st._decoder(feat)
            rh, rw = job.size
            oy, ox = y0 - 8 * ga, x0 - 8 * gc
            return out[:, :, oy:oy + min(y1, rh) - y0, ox:ox + min(x1, rw) - x0]

    return SemanticTiledRun


def request_for(semantic, styles: list, content_hw: tuple[int, int]) -> SemanticRequest | None:
    """stylize()'s (content_labels, label_palette, scsa_weights) plus each Style.labels → a request or None."""
    content_labels, palette, weights = semantic if semantic is not None else (None, None, (T1, T2))
    from .engine import StyleFeatures
    hws = [None if isinstance(s.source, StyleFeatures) else np.asarray(s.source).shape[:2] for s in styles]
    return make_request(content_labels, [getattr(s, "labels", None) for s in styles], palette, weights,
                        content_hw, hws)
