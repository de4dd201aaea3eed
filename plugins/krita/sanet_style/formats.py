"""Pixel byte conversions between Krita's layout and the sanet_client wire formats.

Pure standard library (no Qt, no numpy, no krita) so it is unit-tested without Krita and runs in
any editor Python. Krita stores integer RGBA as B,G,R,A and float RGBA as R,G,B,A, native byte
order (little endian on every platform Krita ships for). The client wants row-major R,G,B,A:
"rgba8", "rgba16" (uint16 little endian) or "rgbaf32" (float32 little endian). Krita's F16 has
no wire format, so it travels as rgbaf32 and is converted back to half floats on the way in.
"""
import array
import struct
import sys

# Krita colour depth id -> (bytes per channel, client format, floating point?)
DEPTHS = {
    "U8": (1, "rgba8", False),
    "U16": (2, "rgba16", False),
    "F16": (2, "rgbaf32", True),
    "F32": (4, "rgbaf32", True),
}
CLIENT_CHANNEL_BYTES = {"rgba8": 1, "rgba16": 2, "rgbaf32": 4}
_CHUNK = 1 << 18  # values per struct call: keeps temporary tuples small on big canvases


class FormatError(ValueError):
    """A document or buffer the plug-in cannot handle; str() is the message for the artist."""


def check_depth(color_model, color_depth):
    """Raise FormatError unless this is an RGBA document of a supported depth."""
    if color_model != "RGBA":
        raise FormatError(
            "Style Transfer works on RGB/Alpha layers; this layer is %s. "
            "Convert it with Image > Convert Image Color Space (RGB/Alpha)." % color_model)
    if color_depth not in DEPTHS:
        raise FormatError(
            "Unsupported colour depth %r: expected one of %s." % (color_depth, ", ".join(DEPTHS)))


def client_format(color_depth):
    """The sanet_client Layer format used for a Krita colour depth."""
    return DEPTHS[color_depth][1]


def krita_pixel_size(color_depth):
    return 4 * DEPTHS[color_depth][0]


def client_pixel_size(fmt):
    return 4 * CLIENT_CHANNEL_BYTES[fmt]


def expect_size(data, width, height, pixel_size, what):
    """Check that a buffer holds exactly width*height pixels (a clear message instead of garbage)."""
    want = width * height * pixel_size
    if len(data) != want:
        raise FormatError("%s has %d bytes; expected %d (%dx%d pixels, %d bytes each)."
                          % (what, len(data), want, width, height, pixel_size))


def swap_red_blue(data, channel_bytes):
    """B,G,R,A <-> R,G,B,A for pixels of 4 channels of channel_bytes each (the swap is its own inverse).

    Uses extended slice assignment on bytearrays, which runs in C: no per-pixel Python loop.
    """
    src = memoryview(data).cast("B")
    out = bytearray(src)
    step = 4 * channel_bytes
    red = 2 * channel_bytes
    for b in range(channel_bytes):
        out[b::step] = src[red + b::step]
        out[red + b::step] = src[b::step]
    return bytes(out)


def _native_to_little(arr):
    if sys.byteorder != "little":
        arr.byteswap()
    return arr


def half_to_float32(data):
    """IEEE half floats (native order) -> float32 little-endian bytes."""
    src = memoryview(data).cast("B")
    if len(src) % 2:
        raise FormatError("F16 buffer has an odd number of bytes (%d)." % len(src))
    out = array.array("f")
    n = len(src) // 2
    for start in range(0, n, _CHUNK):
        count = min(_CHUNK, n - start)
        out.extend(struct.unpack("=%de" % count, src[2 * start:2 * (start + count)]))
    return _native_to_little(out).tobytes()


def float32_to_half(data):
    """float32 little-endian bytes -> IEEE half floats (native order); out-of-range values clamp to ±65504."""
    vals = array.array("f")
    vals.frombytes(bytes(data))
    if sys.byteorder != "little":
        vals.byteswap()
    out = bytearray()
    n = len(vals)
    for start in range(0, n, _CHUNK):
        chunk = vals[start:start + _CHUNK]
        try:
            out += struct.pack("=%de" % len(chunk), *chunk)
        except (OverflowError, struct.error):
            clamped = [min(65504.0, max(-65504.0, v)) if v == v else 0.0 for v in chunk]
            out += struct.pack("=%de" % len(clamped), *clamped)
    return bytes(out)


def krita_to_client(data, color_depth):
    """Krita pixelData bytes of an RGBA layer -> (client format, client bytes)."""
    channel_bytes, fmt, is_float = DEPTHS[color_depth]
    if not is_float:
        return fmt, swap_red_blue(data, channel_bytes)
    if color_depth == "F16":
        return fmt, half_to_float32(data)
    return fmt, _native_to_little(_as_array("f", data)).tobytes()


def client_to_krita(data, color_depth):
    """Client result bytes (format client_format(color_depth)) -> bytes for Krita setPixelData."""
    channel_bytes, _fmt, is_float = DEPTHS[color_depth]
    if not is_float:
        return swap_red_blue(data, channel_bytes)
    if color_depth == "F16":
        return float32_to_half(data)
    arr = _as_array("f", data)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr.tobytes()


def client_to_rgba8(data, fmt):
    """Client-format RGBA bytes -> rgba8 bytes (how a label layer travels as a colour-coded label map).

    rgba16 keeps the high byte, which maps a colour painted as 8-bit c (stored as c*257) back to c exactly;
    rgbaf32 is clamped to [0, 1] and rounded (NaN -> 0). Label colours only need to stay distinct."""
    if fmt == "rgba8":
        return bytes(data)
    if fmt == "rgba16":
        raw = bytes(data)
        return raw[1::2]          # little-endian uint16: the second byte of each sample is the high byte
    if fmt == "rgbaf32":
        px = _from_little(_as_array("f", data))
        return bytes(0 if not v > 0.0 else 255 if v >= 1.0 else int(v * 255.0 + 0.5) for v in px)
    raise FormatError("Unknown client format %r." % fmt)


def _as_array(typecode, data):
    arr = array.array(typecode)
    arr.frombytes(bytes(data))
    return arr


def multiply_alpha(data, fmt, selection):
    """Scale each pixel's alpha by a u8 selection value (0..255), client format in and out.

    This is how the result is limited to the (feathered) selection: colour stays the stylized
    colour, alpha becomes alpha*selection/255, so the layer composited over the original gives
    sel*stylized + (1-sel)*original, with no second blend of colours.
    """
    n = len(selection)
    expect_size(data, n, 1, client_pixel_size(fmt), "result")
    sel = bytes(selection)
    if fmt == "rgba8":
        out = bytearray(data)
        alpha = out[3::4]
        if alpha.count(255) == n:          # opaque layer: alpha is just the selection
            out[3::4] = sel
        else:
            out[3::4] = bytes((a * s + 127) // 255 for a, s in zip(alpha, sel))
        return bytes(out)
    if fmt == "rgba16":
        px = _from_little(_as_array("H", data))
        alpha = px[3::4]
        px[3::4] = array.array("H", ((a * s + 127) // 255 for a, s in zip(alpha, sel)))
        return _native_to_little(px).tobytes()
    if fmt == "rgbaf32":
        px = _from_little(_as_array("f", data))
        alpha = px[3::4]
        px[3::4] = array.array("f", (a * (s / 255.0) for a, s in zip(alpha, sel)))
        return _native_to_little(px).tobytes()
    raise FormatError("Unknown client format %r." % fmt)


def _from_little(arr):
    """An array read from little-endian wire bytes, in native order."""
    if sys.byteorder != "little":
        arr.byteswap()
    return arr


def crop(data, width, height, pixel_size, x, y, w, h):
    """Row-major sub-rectangle (x, y, w, h) of a width x height buffer."""
    if x < 0 or y < 0 or w < 0 or h < 0 or x + w > width or y + h > height:
        raise FormatError("crop %r outside %dx%d" % ((x, y, w, h), width, height))
    src = memoryview(data).cast("B")
    stride = width * pixel_size
    row = w * pixel_size
    return b"".join(src[(y + r) * stride + x * pixel_size:(y + r) * stride + x * pixel_size + row]
                    for r in range(h))


def mask_bounds(mask, width, height):
    """Bounding box (x, y, w, h) of the non-zero values of a u8 mask, or None when it is empty."""
    expect_size(mask, width, height, 1, "selection")
    mv = memoryview(mask).cast("B")
    top = bottom = None
    left, right = width, 0
    for r in range(height):
        row = bytes(mv[r * width:(r + 1) * width])
        stripped = row.lstrip(b"\0")
        if not stripped:
            continue
        if top is None:
            top = r
        bottom = r
        left = min(left, width - len(stripped))
        right = max(right, len(row.rstrip(b"\0")))
    if top is None:
        return None
    return left, top, right - left, bottom - top + 1


def is_full(mask):
    """True when every value of a u8 mask is 255 (a selection covering everything counts as none)."""
    mv = memoryview(mask).cast("B")
    return len(mv) > 0 and bytes(mv).count(255) == len(mv)
