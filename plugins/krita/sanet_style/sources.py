"""Style sources -> sanet_client style objects: image files, open documents, layers, the daemon's library.

Every pixel source goes through a QImage scaled to at most style_max_side(), so a huge style document
never travels to the daemon at full size (the model looks at styles at <= 1024 px anyway).
Qt is imported inside the functions, so this module is importable without Qt (tests of preview.py).
"""


def style_max_side():
    """The engine's style size, sanet_client.protocol.DEFAULT_STYLE_MAX_SIDE (one definition, not a copy)."""
    from . import clientlib
    try:
        return clientlib.load().protocol.DEFAULT_STYLE_MAX_SIDE
    except clientlib.ClientMissing as exc:
        raise StyleSourceError(str(exc)) from None


class StyleSourceError(Exception):
    pass


def qimage_rgba8(image):
    """(width, height, bytes) of a QImage (scaled to at most style_max_side()) as tightly packed RGBA8 rows."""
    from PyQt5.QtCore import Qt
    if image is None or image.isNull():
        raise StyleSourceError("The style image is empty.")
    side = style_max_side()
    if max(image.width(), image.height()) > side:
        image = image.scaled(side, side, Qt.KeepAspectRatio, Qt.SmoothTransformation)
    return packed_rgba8(image)


def packed_rgba8(image):
    """(width, height, bytes) of a QImage as it is, as tightly packed RGBA8 rows."""
    from PyQt5.QtGui import QImage
    image = image.convertToFormat(QImage.Format_RGBA8888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    ptr = image.constBits()
    ptr.setsize(stride * h)
    raw = bytes(ptr)
    if stride == 4 * w:
        return w, h, raw
    return w, h, b"".join(raw[r * stride:r * stride + 4 * w] for r in range(h))


def image_from_file(path):
    from PyQt5.QtGui import QImage
    image = QImage(path)
    if image.isNull():
        raise StyleSourceError("Could not read the style image %s (not an image Qt can open)." % path)
    return image


def image_from_document(doc):
    """The document's composited image (Krita scales it for us)."""
    w, h = doc.width(), doc.height()
    scale = min(1.0, style_max_side() / float(max(w, h)))
    return doc.thumbnail(max(1, int(w * scale)), max(1, int(h * scale)))


def image_from_node(doc, node):
    w, h = doc.width(), doc.height()
    scale = min(1.0, style_max_side() / float(max(w, h)))
    return node.thumbnail(max(1, int(w * scale)), max(1, int(h * scale)))


def style_pixels(client_module, image, weight):
    w, h, data = qimage_rgba8(image)
    return client_module.StylePixels(w, h, "rgba8", data, weight=float(weight))


def library_thumbnail(entry):
    """A QImage for a styles.list entry's thumbnail (PNG/JPEG bytes or an rgba8 pixel map), or None."""
    from PyQt5.QtGui import QImage
    thumb = entry.get("thumbnail")
    if isinstance(thumb, (bytes, bytearray)):
        image = QImage.fromData(bytes(thumb))
        return None if image.isNull() else image
    if isinstance(thumb, dict) and thumb.get("format") == "rgba8":
        w, h, data = thumb.get("width"), thumb.get("height"), thumb.get("data")
        if isinstance(w, int) and isinstance(h, int) and isinstance(data, (bytes, bytearray)) \
                and len(data) == w * h * 4:
            return QImage(bytes(data), w, h, 4 * w, QImage.Format_RGBA8888).copy()
    return None
