"""Label maps for SCSA (sanet.models.scsa): what the artist gives → label ids + the colour image the encoder sees.

Labels: an integer label image (H×W, any integer values), or a colour-coded map (H×W×3/4) whose pixels are
snapped to the nearest palette colour at full resolution (palette None: the distinct colours of all maps given,
so the same colour means the same label in content and style; painted maps' anti-aliased edge colours snap to
the main colours). Label grids come from NEAREST (pixel-centre) downsampling of the padded map, at any size.
The label-map IMAGE the encoder sees (SANet's continuous attention) is the snapped colour map (integer labels: a
fixed colour per id).
"""
from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError
from .images import to_float

MAX_LABELS = 64            # colour maps without a palette: more distinct colours than this is noise, not labels
MIN_LABEL_SHARE = 0.002    # ... then only colours covering ≥ 0.2 % of a map are labels (the rest: anti-aliasing)


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



# ------------------------------------------------------------------------------- one stylize() call's request

@dataclass
class SemanticRequest:
    """What stylize() was asked for: resolved label maps (content, one per style) and the SCA/SSA weights."""
    content: LabelMap
    styles: list            # LabelMap | None per style
    t1: float
    t2: float


def make_request(content_labels, style_labels: list, palette, weights, content_hw: tuple[int, int],
                 style_hws: list) -> SemanticRequest | None:
    """Validate the label inputs of one stylize() call; None when no label map was given at all.
    weights: (t1, t2) of the continuous and sparse parts (the model's default when the caller gave none)."""
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




def label_key(m: LabelMap) -> str:
    """A digest of a resolved label map (ids and colour image): part of a labelled style's cache key."""
    h = hashlib.blake2b(np.ascontiguousarray(m.ids).data, digest_size=16)
    h.update(np.ascontiguousarray(m.image).data)
    h.update(str(m.ids.shape).encode())
    return h.hexdigest()
