"""Pixel and mask formats between GIMP (babl format names) and the sanetd protocol.

Pure Python on bytes (no numpy, no GIMP): GIMP's Python may lack numpy, and this module is unit-tested
outside GIMP.
"""
from __future__ import annotations

import array
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Formats:
    """How to read one drawable: the protocol layer format and the babl names GIMP converts to."""

    layer: str          # sanetd layer format: rgba8 | rgba16 | rgbaf32
    babl_layer: str     # babl format of the pixels read from / written to GIMP
    mask: str           # sanetd mask format: u8 | f32
    babl_mask: str      # babl format of the selection read from GIMP


# Always the perceptual (gamma) encoding "R'G'B'A": the model was trained on sRGB-encoded values, and babl
# converts linear-light images for us. GRAY drawables are read as RGBA too (babl replicates Y').
_BY_COMPONENT = {
    "u8": Formats("rgba8", "R'G'B'A u8", "u8", "Y u8"),
    "u16": Formats("rgba16", "R'G'B'A u16", "f32", "Y float"),
    "u32": Formats("rgbaf32", "R'G'B'A float", "f32", "Y float"),
    "half": Formats("rgbaf32", "R'G'B'A float", "f32", "Y float"),
    "float": Formats("rgbaf32", "R'G'B'A float", "f32", "Y float"),
    "double": Formats("rgbaf32", "R'G'B'A float", "f32", "Y float"),
}

BYTES_PER_PIXEL = {"rgba8": 4, "rgba16": 8, "rgbaf32": 16, "u8": 1, "f32": 4}


def formats_for_precision(precision_nick: str) -> Formats:
    """Formats for a Gimp.Precision value nick such as 'u8-non-linear', 'u16-linear', 'float-perceptual'."""
    component = str(precision_nick).lower().replace("_", "-").split("-", 1)[0]
    try:
        return _BY_COMPONENT[component]
    except KeyError:
        raise ValueError(f"unsupported image precision {precision_nick!r} "
                         f"(expected one of {', '.join(_BY_COMPONENT)})") from None


def to_little_endian(data, sample_bytes: int) -> bytes:
    """babl gives native-endian samples; the protocol wants little-endian. A copy only on big-endian hosts."""
    if sys.byteorder == "little" or sample_bytes == 1:
        return bytes(data)
    arr = array.array({2: "H", 4: "f"}[sample_bytes])
    arr.frombytes(bytes(data))
    arr.byteswap()
    return arr.tobytes()


from_little_endian = to_little_endian  # the swap is its own inverse


def sample_bytes(fmt: str) -> int:
    """Bytes per sample of a protocol layer/mask format."""
    return {"rgba8": 1, "rgba16": 2, "rgbaf32": 4, "u8": 1, "f32": 4}[fmt]


_NONZERO_TO_255 = bytes([0]) + bytes([255]) * 255


def footprint_u8(mask_u32) -> bytes:
    """One u8 per pixel: 255 where a "Y u32" mask is non-zero, else 0 (no per-pixel Python loop).

    u32 keeps the faint tails of a 16-bit/float feather that a u8 read would round to 0.
    """
    data = bytes(mask_u32)
    if len(data) % 4:
        raise ValueError(f"a u32 mask has a multiple of 4 bytes, not {len(data)}")
    n = len(data) // 4
    if n == 0:
        return b""
    acc = 0
    for k in range(4):  # OR the four byte planes together: big-int ops run in C
        acc |= int.from_bytes(data[k::4], "little")
    return acc.to_bytes(n, "little").translate(_NONZERO_TO_255)


def mask_is_empty(mask) -> bool:
    """True when no pixel is selected at all (u8 or f32 bytes: 0 and 0.0 are all-zero bytes)."""
    data = bytes(mask)
    return not data or data.count(0) == len(data)


def expected_size(width: int, height: int, fmt: str) -> int:
    return int(width) * int(height) * BYTES_PER_PIXEL[fmt]


def check_size(what: str, width: int, height: int, fmt: str, data) -> None:
    """A clear error instead of a silently shifted image when a buffer has the wrong length."""
    need = expected_size(width, height, fmt)
    have = memoryview(data).nbytes
    if have != need:
        raise ValueError(f"{what}: got {have} bytes, a {width}x{height} {fmt} buffer needs {need}")


# ----------------------------------------------------------------------------------------------- SCSA label maps
# Content label maps go to sanetd either as the colours of a label layer ("rgba8", the engine snaps colours to
# labels) or as integer labels built from saved selection channels ("u8": channel k above 50 % -> label k + 1).

MAX_LABEL_CHANNELS = 255   # u8 labels: 0 is "no channel", 1..255 the channels
_ABOVE_HALF = bytes(range(256)).translate(bytes([0] * 128 + [255] * 128))  # u8 value >= 128 (> 50 %) -> 0xFF


def labels_from_channels(channels, n_pixels: int) -> bytes:
    """u8 labels from channel masks ("Y u8" bytes, one per pixel, all ``n_pixels`` long): channel k (0-based)
    above 50 % (value >= 128 of 255) gives label k + 1, else 0. Where channels overlap the LATER one wins, like
    paint on top. Big-int byte-plane ops run in C: no per-pixel Python loop."""
    channels = [bytes(c) for c in channels]
    if len(channels) > MAX_LABEL_CHANNELS:
        raise ValueError(f"{len(channels)} label channels; at most {MAX_LABEL_CHANNELS} fit in u8 labels")
    n = int(n_pixels)
    result = 0
    for k, data in enumerate(channels):
        if len(data) != n:
            raise ValueError(f"label channel {k + 1}: got {len(data)} bytes, expected {n} (one per pixel)")
        if n == 0:
            continue
        above = int.from_bytes(data.translate(_ABOVE_HALF), "little")       # 0xFF where above 50 %
        label = int.from_bytes(bytes([k + 1]) * n, "little")
        result = (result & ~above) | (label & above)
    return result.to_bytes(n, "little") if n else b""


def label_map_size_error(what: str, size, layer_name: str, layer_size) -> str | None:
    """The message when a label map is not at the layer's size (None when it is): both sizes named."""
    (w, h), (lw, lh) = size, layer_size
    if (int(w), int(h)) == (int(lw), int(lh)):
        return None
    return (f"{what} is {w}x{h} pixels, but the layer '{layer_name}' is {lw}x{lh}; a content label map must "
            f"have exactly the layer's size")
