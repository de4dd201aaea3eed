"""Live preview: the layer scaled down in Krita to preview_long_side(), the image the docker shows, and the
short history of results to compare, apply or discard.

The layer is scaled HERE, before it travels, so the daemon gets a small layer and has little to do (the issue's
"preview resolution"): 8-bit with QImage smooth scaling, 16-bit with Qt's RGBA64 images (Qt >= 5.12), float
documents (Qt 5 has no float images) by nearest-neighbour sampling of the raw values, so they stay floats —
HDR values above 1 included — and cost no conversion of the full-size layer. The selection is scaled smoothly
and sent along (the daemon blends it), a label layer by nearest neighbour (no new colours appear).

Styles are sent for the preview at the same scale as the layer (style_max_side() × scale, at least
MIN_STYLE_SIDE): SANet's strokes have the size of the style's features, so a style at full size over a
small layer would paint strokes several times too big compared with the full-resolution result.

The scaling runs on the worker thread (QImage is reentrant); reading the layer stays on the main thread
(document.snapshot). History and sizes are plain Python, tested outside Krita.
"""
import time
import zlib

from . import formats
from . import clientlib
from .sources import style_max_side

MIN_STYLE_SIDE = 256        # styles smaller than this lose their character; never scale a preview style below
HISTORY_SIZE = 8            # results kept in the docker's history strip


def preview_long_side():
    """sanet_client.protocol.PREVIEW_LONG_SIDE: the long side of a preview (the engine's preview mode uses it too)."""
    return clientlib.load().protocol.PREVIEW_LONG_SIDE


def preview_size(width, height, long_side=None):
    """(w, h) of the preview: the layer's size scaled so that its long side is at most ``long_side``."""
    long_side = long_side or preview_long_side()
    side = max(width, height)
    if side <= long_side:
        return width, height
    scale = long_side / float(side)
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def preview_style_side(width, height, long_side=None, full=None):
    """style_max_side for a preview of a width x height layer (see the module docstring)."""
    full = full or style_max_side()
    pw, ph = preview_size(width, height, long_side)
    scale = max(pw, ph) / float(max(width, height))
    return max(min(MIN_STYLE_SIDE, full), min(full, int(round(full * scale))))


def nearest(data, width, height, pixel_size, out_w, out_h):
    """Nearest-neighbour resampling of row-major pixels (any pixel size), sampling pixel centres."""
    if (out_w, out_h) == (width, height):
        return bytes(data)
    src = memoryview(data).cast("B")
    formats.expect_size(src, width, height, pixel_size, "image")
    stride = width * pixel_size
    offsets = [min(width - 1, int((x + 0.5) * width / out_w)) * pixel_size for x in range(out_w)]
    rows = []
    for y in range(out_h):
        yi = min(height - 1, int((y + 0.5) * height / out_h))
        row = src[yi * stride:(yi + 1) * stride]
        rows.append(b"".join(row[o:o + pixel_size] for o in offsets))
    return b"".join(rows)


def _packed(image, bytes_per_pixel):
    """A QImage's pixels as tightly packed rows."""
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    ptr = image.constBits()
    ptr.setsize(stride * h)
    raw = bytes(ptr)
    row = w * bytes_per_pixel
    if stride == row:
        return raw
    return b"".join(raw[r * stride:r * stride + row] for r in range(h))


def scale_layer(raw, width, height, depth, out_w, out_h):
    """Krita pixelData of a layer -> (client format, bytes) at out_w x out_h."""
    if (out_w, out_h) == (width, height):
        return formats.krita_to_client(raw, depth)
    from PyQt5.QtCore import Qt
    from PyQt5.QtGui import QImage
    if depth == "U8":     # B,G,R,A bytes are QImage's ARGB32 on little-endian machines
        image = QImage(raw, width, height, 4 * width, QImage.Format_ARGB32)
        small = image.scaled(out_w, out_h, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
        return "rgba8", _packed(small.convertToFormat(QImage.Format_RGBA8888), 4)
    if depth == "U16" and hasattr(QImage, "Format_RGBA64"):
        # B,G,R,A scaled as if it were R,G,B,A (scaling treats colour channels alike; alpha stays the 4th),
        # then swapped: the swap touches the small image, not the full layer
        image = QImage(raw, width, height, 8 * width, QImage.Format_RGBA64)
        small = image.scaled(out_w, out_h, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
        return "rgba16", formats.swap_red_blue(_packed(small.convertToFormat(QImage.Format_RGBA64), 8), 2)
    small = nearest(raw, width, height, formats.krita_pixel_size(depth), out_w, out_h)
    return formats.krita_to_client(small, depth)


def scale_mask(mask, width, height, out_w, out_h):
    """A u8 selection (width x height) smoothly scaled to out_w x out_h (u8)."""
    if (out_w, out_h) == (width, height):
        return bytes(mask)
    from PyQt5.QtCore import Qt
    from PyQt5.QtGui import QImage
    image = QImage(bytes(mask), width, height, width, QImage.Format_Grayscale8)
    small = image.scaled(out_w, out_h, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
    return _packed(small.convertToFormat(QImage.Format_Grayscale8), 1)


def scale_labels(raw, width, height, depth, out_w, out_h):
    """A label layer's Krita bytes -> rgba8 colour-coded label map at out_w x out_h (nearest: no new colours)."""
    small = nearest(raw, width, height, formats.krita_pixel_size(depth), out_w, out_h)
    fmt, data = formats.krita_to_client(small, depth)
    return formats.client_to_rgba8(data, fmt)


class PreviewInput:
    """The small layer (+ selection, label map) a preview sends; built on the worker thread from a snapshot."""

    def __init__(self, snap, content_labels=None, long_side=None):
        self.source_size = (snap.width, snap.height)
        self.width, self.height = preview_size(snap.width, snap.height, long_side)
        self.format, self.data = scale_layer(snap.raw, snap.width, snap.height, snap.depth,
                                             self.width, self.height)
        self.mask = None if snap.mask is None else scale_mask(snap.mask, snap.width, snap.height,
                                                              self.width, self.height)
        self.labels = None
        if content_labels is not None:
            raw, w, h, depth = content_labels
            self.labels = scale_labels(raw, w, h, depth, self.width, self.height)
        self.style_max_side = preview_style_side(snap.width, snap.height, long_side)

    def fingerprint(self):
        """A cheap hash of what is sent: a repainted layer or a new selection gives a new history entry."""
        crc = zlib.crc32(self.data)
        for extra in (self.mask, self.labels):
            if extra is not None:
                crc = zlib.crc32(extra, crc)
        return (self.width, self.height, self.format, crc)


def rgba8_image(fmt, data, width, height):
    """A QImage (RGBA8888, owning its pixels) of client-format pixels, for the docker to show."""
    from PyQt5.QtGui import QImage
    rgba = formats.client_to_rgba8(data, fmt)
    return QImage(rgba, width, height, 4 * width, QImage.Format_RGBA8888).copy()


class HistoryItem:
    """One preview result: its picture, the settings that made it (to apply it at full size) and a name."""

    def __init__(self, image, key, name, settings, before=None, seconds=0.0, short=""):
        self.image = image          # QImage of the result at preview size
        self.before = before        # QImage of the layer at preview size (press-and-hold compare)
        self.key = key              # settings + input fingerprint: the same key is the same picture
        self.name = name            # result_name(..., preview=True)
        self.settings = settings    # what Apply needs to redo it at full resolution
        self.seconds = seconds      # how long the preview took (shown in the caption)
        self.short = short          # a few characters under the thumbnail (the strength)
        self.created = time.time()


class History:
    """Newest first, at most ``size`` items; a result with the same key replaces the older one."""

    def __init__(self, size=HISTORY_SIZE):
        self.size = int(size)
        self.items = []

    def __len__(self):
        return len(self.items)

    def add(self, item):
        """Put ``item`` first; returns the items that fell out (a duplicate key, or beyond ``size``)."""
        dropped = [i for i in self.items if i.key == item.key]
        self.items = [item] + [i for i in self.items if i.key != item.key]
        dropped += self.items[self.size:]
        del self.items[self.size:]
        return dropped

    def remove(self, item):
        if item in self.items:
            self.items.remove(item)
            return True
        return False

    def find(self, key):
        for item in self.items:
            if item.key == key:
                return item
        return None

    def clear(self):
        self.items = []
