"""Pixel conventions: any layer (gray/RGB/RGBA, 8/16-bit/float) ⇄ float RGB in [0,1] plus untouched alpha.

Sample scaling and image files are defined once in sanet_client.imagefiles (shared with `sanet-client`, so
both commands keep every pixel the same way); here they raise InputError.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sanet_client import imagefiles as _files

from .errors import InputError

LUMA = _files.luma()  # BT.601, as in YCbCr


@dataclass
class Layer:
    """A content image split into what the network sees and what it must give back untouched."""
    rgb: np.ndarray            # float32 H×W×3, clipped to [0,1]: the network input
    alpha: np.ndarray | None   # original alpha channel, original dtype, never modified
    shape: tuple               # original array shape
    dtype: np.dtype            # original dtype
    gray: bool


def _scale(dtype: np.dtype) -> float | None:
    return _files.scale_of(dtype, InputError)


def to_float(arr: np.ndarray) -> np.ndarray:
    return _files.to_float(arr, InputError)


def from_float(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return _files.from_float(arr, dtype, InputError)


def split_layer(image: np.ndarray, what: str = "image") -> Layer:
    image = np.asarray(image)
    if image.ndim == 2:
        image3 = image[:, :, None]
    elif image.ndim == 3 and image.shape[2] in (1, 2, 3, 4):
        image3 = image
    else:
        raise InputError(f"{what}: shape {image.shape} is not an image: expected H×W or H×W×C with C in 1..4")
    h, w, c = image3.shape
    if h < 1 or w < 1:
        raise InputError(f"{what}: empty image ({w}×{h})")
    _scale(image3.dtype)
    colour = image3[:, :, :1] if c in (1, 2) else image3[:, :, :3]
    rgb = to_float(colour)
    if not np.all(np.isfinite(rgb)):
        rgb = np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0)
    rgb = np.clip(rgb, 0.0, 1.0)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    alpha = image3[:, :, c - 1].copy() if c in (2, 4) else None
    return Layer(np.ascontiguousarray(rgb), alpha, image.shape, image.dtype, gray=c in (1, 2))


def merge_layer(rgb: np.ndarray, layer: Layer) -> np.ndarray:
    """float RGB (any range) → the layer's own shape and dtype, with its alpha copied back bit-exactly."""
    colour = rgb @ LUMA if layer.gray else rgb
    colour = from_float(colour, layer.dtype)
    if layer.gray:
        colour = colour[:, :, None]
    parts = [colour] + ([layer.alpha[:, :, None]] if layer.alpha is not None else [])
    out = np.concatenate(parts, axis=2) if len(parts) > 1 else colour
    return out.reshape(layer.shape)


def as_mask(mask: np.ndarray, shape: tuple[int, int], what: str = "mask") -> np.ndarray:
    """A soft mask as float32 H×W in [0,1]; uint8/uint16 scaled, extra channels: the first one is used."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[:, :, 0]
    if mask.ndim != 2:
        raise InputError(f"{what}: shape {mask.shape} is not a mask: expected H×W")
    if mask.shape != tuple(shape):
        raise InputError(f"{what}: size {mask.shape[1]}×{mask.shape[0]} does not match the content "
                         f"size {shape[1]}×{shape[0]}")
    out = to_float(mask) if mask.dtype != bool else mask.astype(np.float32)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


# ---------------------------------------------------------------------------------------------- files

def load_image(path: str | Path) -> np.ndarray:
    """PNG/JPEG/WebP/BMP (8/16-bit, gray, alpha) via OpenCV, TIFF via tifffile, .npy as is. RGB(A) order."""
    arr = _files.load_image(path, InputError)
    split_layer(arr, str(path))  # validates shape and dtype with the file name in the message
    return arr


def save_image(path: str | Path, arr: np.ndarray) -> None:
    """The extension decides the format (sanet_client.imagefiles has the table)."""
    _files.save_image(path, arr, InputError)
