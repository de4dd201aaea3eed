"""SCSA label maps from Krita: the content's from a label layer, a style's from a label-map file.

Semantic style transfer (docs/protocol.md, section 6a) pairs regions: a pixel of the layer takes style only from
style pixels that carry the same label. Here labels are colours: the artist paints flat colours on a label layer
(sky blue, face pink, ...) and a label-map image per style with the same colours. The layer's map travels as
rgba8 at the canvas size (alpha is ignored, so unpainted areas count as black); a style's map is scaled with
nearest-neighbour (no new colours) to exactly the size at which the style itself is sent.

Reading pixels from Krita happens on the main thread (read_label_layer); the byte conversion is plain Python
(layer_labels) and may run on the worker thread.
"""
from . import document, formats


class LabelError(Exception):
    """A label-map problem the artist can fix; str() says what and how."""


def read_label_layer(doc, name):
    """(Krita bytes, width, height, depth) of the document's layer called ``name`` over the whole canvas."""
    node = doc.nodeByName(name) if name else None
    if node is None or node.type() not in document.LAYER_TYPES:
        raise LabelError("Semantic (SCSA): this document has no layer named %r to use as the label layer; "
                         "choose one under 'Label layer'." % name)
    return document.read_layer(doc, node)


def layer_labels(mod, raw, width, height, depth):
    """A label layer's Krita bytes -> sanet_client Labels (rgba8, colour-coded) at the canvas size."""
    fmt, data = formats.krita_to_client(raw, depth)
    return mod.Labels(width, height, "rgba8", formats.client_to_rgba8(data, fmt))


def style_labels(mod, path, source_size, sent_size):
    """The label-map file of a style -> Labels (rgba8) at ``sent_size``.

    The file must have the style's own size (``source_size``: the image file, the document, or the library
    entry); it is scaled with nearest-neighbour to the size the style is sent at, like the style itself."""
    from PyQt5.QtCore import Qt
    from PyQt5.QtGui import QImage
    from .sources import packed_rgba8
    image = QImage(path)
    if image.isNull():
        raise LabelError("Could not read the label map %s (not an image Qt can open)." % path)
    if (image.width(), image.height()) != tuple(source_size):
        raise LabelError("The label map %s is %dx%d; it must have the size of its style image, %dx%d."
                         % (path, image.width(), image.height(), source_size[0], source_size[1]))
    if tuple(sent_size) != tuple(source_size):
        image = image.scaled(sent_size[0], sent_size[1], Qt.IgnoreAspectRatio, Qt.FastTransformation)
    w, h, data = packed_rgba8(image)
    return mod.Labels(w, h, "rgba8", data)
