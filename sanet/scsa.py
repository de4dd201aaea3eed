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
so the same colour means the same label in content and style). Label grids come from NEAREST downsampling.

Fallback: a content label that the style lacks gets ordinary SANet attention over ALL style positions in that
region (query from the raw content feature, residual F_c) -- exactly what it would get without label maps --
instead of the official code's uniform average. Empty regions never divide by zero.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError
from .images import to_float
from .network import SANet, mean_variance_norm

T1, T2 = 0.7, 0.3          # SCA / SSA weights for the SANet backbone (official SANet+SCSA)
MAX_LABELS = 64            # colour maps without a palette: more distinct colours than this is noise, not labels
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


def resolve_label_maps(content, styles: list, palette=None) -> tuple[LabelMap, list[LabelMap | None]]:
    """Content map and one (or None) per style → LabelMaps with shared label ids."""
    pal = parse_palette(palette)
    maps = [("content label map", np.asarray(content))] + [
        (f"style {i + 1} label map", None if s is None else np.asarray(s)) for i, s in enumerate(styles)]
    for what, arr in maps:
        if arr is not None and arr.size == 0:
            raise InputError(f"{what}: empty image")
    if pal is None and any(a is not None and _is_colour(a) for _, a in maps):
        # no palette: the distinct 8-bit colours of ALL colour maps, so ids agree between content and style
        colours = set()
        for what, arr in maps:
            if arr is not None and _is_colour(arr):
                q = np.rint(np.clip(np.nan_to_num(to_float(arr[:, :, :3])), 0, 1) * 255).astype(np.uint8)
                found = np.unique(q.reshape(-1, 3), axis=0)
                colours.update(map(tuple, found.tolist()))
                if len(colours) > MAX_LABELS:
                    raise InputError(f"{what}: more than {MAX_LABELS} distinct colours (anti-aliased or JPEG "
                                     f"edges?): give a label palette, or use an integer label image")
        pal = np.asarray(sorted(colours), dtype=np.float32) / 255.0
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
    return F.interpolate(x, size=size, mode="nearest-exact").reshape(*lead, *size)


def grid_labels(ids: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Labels of a (padded) H×W id tensor at a feature grid, flattened row-major like the features."""
    return resize_labels(ids, grid).reshape(-1).round().long()


# ------------------------------------------------------------------------------------------ the math

def _flat(x: torch.Tensor) -> torch.Tensor:
    """1×C×H×W → (H·W)×C, position-major like the attention rows."""
    return x.flatten(2)[0].transpose(0, 1)


def region_stats(feat: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-label mean and std of N×C features: (sorted labels L, L×C mean, L×C std), all in float32.

    std = sqrt(Σ mask·(f − μ)² / count + eps), i.e. biased variance as in the official semantic AdaIN. Only labels
    that occur are returned, so count ≥ 1 and nothing divides by zero.
    """
    f = feat.float()
    uniq, inv = torch.unique(labels, return_inverse=True)
    count = torch.bincount(inv, minlength=len(uniq)).to(f.dtype)[:, None]
    mean = torch.zeros(len(uniq), f.shape[1], dtype=f.dtype, device=f.device).index_add_(0, inv, f) / count
    dev = (f - mean[inv]) ** 2
    var = torch.zeros_like(mean).index_add_(0, inv, dev) / count
    return uniq, mean, (var + ADAIN_EPS).sqrt()


def semantic_adain(fc: torch.Tensor, lc: torch.Tensor, s_labels: torch.Tensor, s_mean: torch.Tensor,
                   s_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """N×C content features → (F_c', matched): each region normalised with its own stats and re-coloured with
    the same-label style region's stats; positions whose label the style lacks are returned unchanged."""
    c_labels, c_mean, c_std = region_stats(fc, lc)
    pos = torch.searchsorted(s_labels, c_labels).clamp(max=len(s_labels) - 1)
    has = s_labels[pos] == c_labels                                   # per content label: present in the style?
    inv = torch.searchsorted(c_labels, lc)
    matched = has[inv]
    scale = torch.where(has[:, None], s_std[pos] / c_std, torch.ones_like(c_std))
    shift = torch.where(has[:, None], s_mean[pos] - c_mean * scale, torch.zeros_like(c_mean))
    out = fc.float() * scale[inv] + shift[inv]                        # (f − μc)/σc·σs + μs
    return out.to(fc.dtype), matched


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


def scsa_attend(module: SANet, fc: torch.Tensor, mc: torch.Tensor, lc: torch.Tensor, s: SemanticStyleLevel,
                t1: float = T1, t2: float = T2) -> torch.Tensor:
    """One SCSA block: fc, mc 1×C×h×w (content and content-map features), lc the h·w content labels."""
    n, c, h, w = fc.shape
    if n != 1:
        raise ValueError("scsa_attend works on one image at a time")
    f = _flat(fc)
    fprime, matched = semantic_adain(f, lc, s.stat_labels, s.mean, s.std)
    fprime_map = fprime.transpose(0, 1).reshape(1, c, h, w)
    q_ssa = _flat(module.f(mean_variance_norm(fprime_map)))
    q_sca = _flat(module.f(mean_variance_norm(mc)))

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
        q_plain = _flat(module.f(mean_variance_norm(fc)))[fb]
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
        raise InputError("style label map given but no content label map: give content_labels too "
                         "(or drop the style labels)")
    if all(s is None for s in style_labels):
        raise InputError("content label map given but no style has a label map: give Style(..., labels=...)")
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


class SemanticRun:
    """One stylize() call's SCSA state: per-style semantic levels, then (bind_content) the content map's."""

    def __init__(self, st, request: SemanticRequest, styles: list, style_max_side):
        from .engine import StyleFeatures
        self.request = request
        self.transform = st._transform
        self.styles = []
        for i, (s, m) in enumerate(zip(styles, request.styles)):
            if m is None:
                self.styles.append(None)   # a style without labels: plain SANet for it
                continue
            if isinstance(s.source, StyleFeatures):
                raise InputError(f"style {i + 1}: a label map needs the style image, not pre-encoded StyleFeatures")
            self.styles.append(encode_semantic_style(st, s.source, m, style_max_side, f"style {i + 1} image"))
        self.m4 = self.m5 = self.ids = None

    def plain_features(self, i: int):
        """Style i's plain SANet keys/values (same tensors as encode_style would give), without re-encoding."""
        from .engine import StyleFeatures
        from .transform import StyleLevel
        s4, s5 = self.styles[i]
        lv = lambda s: StyleLevel(s.keys[None], s.values[None])  # noqa: E731
        return StyleFeatures(lv(s4), lv(s5), (0, 0), f"scsa-style-{i}")

    def bind_content(self, st, content_hw, run_hw, pad_size) -> "SemanticRun":
        """Encode the content label-map image through the same preview resize and padding as the content."""
        from .engine import pad_to
        m = st._to_tensor(self.request.content.image)
        ids = torch.from_numpy(self.request.content.ids.astype(np.float32))[None, None].to(st.device)
        if tuple(run_hw) != tuple(content_hw):
            m, ids = resize_labels(m, run_hw), resize_labels(ids, run_hw)
        self.m4, self.m5 = st._encode(pad_to(m, pad_size))
        self.ids = pad_to(ids, pad_size)[0, 0]
        return self

    def applies(self, i: int) -> bool:
        return self.styles[i] is not None

    def transform_features(self, i: int, c4: torch.Tensor, c5: torch.Tensor) -> torch.Tensor:
        """merge(SCSA4(c4), SCSA5(c5)) for style i: replaces sanet.transform.transform_features."""
        from .transform import merge
        s4, s5 = self.styles[i]
        t, r = self.transform, self.request
        lc4 = grid_labels(self.ids, tuple(c4.shape[-2:])).to(c4.device)
        lc5 = grid_labels(self.ids, tuple(c5.shape[-2:])).to(c5.device)
        return merge(t, scsa_attend(t.sanet4_1, c4, self.m4, lc4, s4, r.t1, r.t2),
                     scsa_attend(t.sanet5_1, c5, self.m5, lc5, s5, r.t1, r.t2))


def request_for(semantic, styles: list, content_hw: tuple[int, int]) -> SemanticRequest | None:
    """stylize()'s (content_labels, label_palette, scsa_weights) plus each Style.labels → a request or None."""
    content_labels, palette, weights = semantic if semantic is not None else (None, None, (T1, T2))
    from .engine import StyleFeatures
    hws = [None if isinstance(s.source, StyleFeatures) else np.asarray(s.source).shape[:2] for s in styles]
    return make_request(content_labels, [getattr(s, "labels", None) for s in styles], palette, weights,
                        content_hw, hws)
