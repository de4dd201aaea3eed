"""Message buffers ⇄ numpy arrays for the engine. Views, not copies: the frames stay read-only."""
from __future__ import annotations

import numpy as np

from sanet_client.protocol import PixelRef

LAYER_DTYPES = {"rgba8": np.dtype("<u1"), "rgba16": np.dtype("<u2"), "rgbaf32": np.dtype("<f4")}
MASK_DTYPES = {"u8": np.dtype("<u1"), "f32": np.dtype("<f4")}
LABEL_DTYPES = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "rgba8": np.dtype("<u1")}
FORMAT_OF_DTYPE = {np.dtype(np.uint8): "rgba8", np.dtype(np.uint16): "rgba16", np.dtype(np.float32): "rgbaf32"}


def layer_array(ref: PixelRef, buf) -> np.ndarray:
    """H×W×4 array viewing the buffer (read-only for zmq frames)."""
    return np.frombuffer(buf, dtype=LAYER_DTYPES[ref.format]).reshape(ref.height, ref.width, 4)


def label_array(ref: PixelRef, buf) -> np.ndarray:
    """An SCSA label map for the engine: H×W integer labels (u8/u16) or H×W×4 colour-coded (rgba8) view."""
    arr = np.frombuffer(buf, dtype=LABEL_DTYPES[ref.format])
    return arr.reshape(ref.height, ref.width, 4) if ref.format == "rgba8" else arr.reshape(ref.height, ref.width)


def mask_plane(ref: PixelRef, buf, width: int, height: int) -> np.ndarray:
    """The mask placed at (x, y) on a width×height float32 plane in [0, 1]; 0 where the mask does not reach."""
    mask = np.frombuffer(buf, dtype=MASK_DTYPES[ref.format]).reshape(ref.height, ref.width)
    plane = np.zeros((height, width), dtype=np.float32)
    x0, y0 = max(ref.x, 0), max(ref.y, 0)
    x1, y1 = min(ref.x + ref.width, width), min(ref.y + ref.height, height)
    if x0 < x1 and y0 < y1:
        part = mask[y0 - ref.y:y1 - ref.y, x0 - ref.x:x1 - ref.x]
        if ref.format == "u8":
            np.multiply(part, np.float32(1 / 255), out=plane[y0:y1, x0:x1], dtype=np.float32)
        else:
            plane[y0:y1, x0:x1] = np.clip(np.nan_to_num(part, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return plane


def as_layer_bytes(arr: np.ndarray, fmt: str) -> np.ndarray:
    """The engine's output as a C-contiguous little-endian array in the layer's format (sendable as is)."""
    return np.ascontiguousarray(arr, dtype=LAYER_DTYPES[fmt])


def as_raw_bytes(arr: np.ndarray) -> np.ndarray:
    """The engine's raw output (H×W×3, unclamped) as C-contiguous little-endian float32 ("rgbf32")."""
    return np.ascontiguousarray(arr, dtype=np.dtype("<f4"))


def mask_is_empty(ref: PixelRef, buf, width: int, height: int) -> bool:
    """True when no pixel of the mask that falls inside the layer is above 0 (cheap: no plane is built)."""
    mask = np.frombuffer(buf, dtype=MASK_DTYPES[ref.format]).reshape(ref.height, ref.width)
    x0, y0 = max(ref.x, 0), max(ref.y, 0)
    x1, y1 = min(ref.x + ref.width, width), min(ref.y + ref.height, height)
    if not (x0 < x1 and y0 < y1):
        return True
    part = mask[y0 - ref.y:y1 - ref.y, x0 - ref.x:x1 - ref.x]
    return not (part > 0).any() if ref.format == "f32" else not part.any()
