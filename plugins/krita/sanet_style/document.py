"""Krita document/pixel logic: read the active layer and selection, write the result as a new layer.

Plain functions on Krita's libkis objects (Document, Node, Selection); no widgets, no daemon, so the
same code runs from the docker, the menu dialog and `kritarunner` tests.

How the result is limited to the selection: through its ALPHA. The daemon stylizes the whole layer
(the model normalises content features over the whole image, so a crop would change the result);
the new layer keeps the stylized colours and gets alpha = layer alpha x selection / 255, written only
inside the selection's bounding box. Over the untouched original this composites to
sel*stylized + (1-sel)*original, i.e. the engine's own selection blend. Krita 5.1's Python API has
no way to create a transparency mask, and alpha keeps the insertion a single undo step.
"""
from . import formats

LAYER_TYPES = ("paintlayer", "grouplayer", "filelayer", "filllayer", "clonelayer", "vectorlayer",
               "filterlayer")


class DocumentError(Exception):
    """Something about the document prevents the job; str() is the message for the artist."""


class LayerSnapshot:
    """Pixels of one layer taken at job start, plus where the result has to go.

    Taking it (Krita calls) must happen on the main thread; the byte conversions (client_data,
    result_pixels) are pure Python and run on the worker thread, so big F16 canvases do not stall
    the UI.
    """

    def __init__(self, document, node, width, height, depth, raw, mask):
        self.document = document
        self.node = node
        self.width = width
        self.height = height
        self.depth = depth        # Krita colour depth id of the layer
        self.format = formats.client_format(depth)   # client format sent to sanetd
        self.raw = raw            # Krita pixelData bytes, width x height
        self.mask = mask          # u8 canvas-size selection bytes, or None (no selection / not limited)

    def client_data(self):
        """The layer in client format (row-major RGBA, little endian)."""
        return formats.krita_to_client(self.raw, self.depth)[1]


def active_layer(document):
    if document is None:
        raise DocumentError("No document is open.")
    node = document.activeNode()
    if node is None or node.type() not in LAYER_TYPES:
        raise DocumentError("Select a layer to stylize (the active node is %s)."
                            % ("nothing" if node is None else "a " + (node.type() or "node")))
    return node


def read_layer(document, node):
    """(Krita bytes, width, height, depth) of a layer over the whole canvas.

    projectionPixelData is what the artist sees of that layer (its masks applied); areas outside
    the layer's own bounds read as transparent black.
    """
    formats.check_depth(node.colorModel(), node.colorDepth())
    depth = node.colorDepth()
    width, height = document.width(), document.height()
    raw = bytes(node.projectionPixelData(0, 0, width, height))
    formats.expect_size(raw, width, height, formats.krita_pixel_size(depth), "layer %r" % node.name())
    return raw, width, height, depth


def read_selection(document):
    """Canvas-size u8 selection bytes (feathered values kept), or None when nothing or everything is selected."""
    selection = document.selection()
    if selection is None:
        return None
    width, height = document.width(), document.height()
    data = bytes(selection.pixelData(0, 0, width, height))
    formats.expect_size(data, width, height, 1, "selection")
    if formats.is_full(data):
        return None
    return data


def selection_as_mask(mask_bytes, width, height, mask_class):
    """The selection cropped to its bounds as a client Mask (u8 + offset), or None if empty."""
    box = formats.mask_bounds(mask_bytes, width, height)
    if box is None:
        return None
    x, y, w, h = box
    return mask_class(w, h, "u8", formats.crop(mask_bytes, width, height, 1, x, y, w, h), x=x, y=y)


def snapshot(document, only_selection=True, node=None):
    """Read a layer (default: the active one) and, if asked, the selection into a LayerSnapshot."""
    if node is None:
        node = active_layer(document)
    elif node.type() not in LAYER_TYPES:
        raise DocumentError("%r is a %s, not a layer." % (node.name(), node.type()))
    raw, width, height, depth = read_layer(document, node)
    mask = read_selection(document) if only_selection else None
    if mask is not None and formats.mask_bounds(mask, width, height) is None:
        raise DocumentError("The selection is empty: select an area, or untick 'Only inside the selection'.")
    return LayerSnapshot(document, node, width, height, depth, raw, mask)


def result_pixels(snap, result):
    """Krita bytes and rectangle (x, y, w, h) for the new layer, limited to the selection (any thread)."""
    if (result.width, result.height) != (snap.width, snap.height) or result.format != snap.format:
        raise DocumentError("sanetd returned a %dx%d %s image for a %dx%d %s layer."
                            % (result.width, result.height, result.format,
                               snap.width, snap.height, snap.format))
    pixel_size = formats.client_pixel_size(snap.format)
    formats.expect_size(result.data, snap.width, snap.height, pixel_size, "result")
    if snap.mask is None:
        return formats.client_to_krita(result.data, snap.depth), (0, 0, snap.width, snap.height)
    x, y, w, h = formats.mask_bounds(snap.mask, snap.width, snap.height)
    pixels = formats.crop(result.data, snap.width, snap.height, pixel_size, x, y, w, h)
    mask = formats.crop(snap.mask, snap.width, snap.height, 1, x, y, w, h)
    pixels = formats.multiply_alpha(pixels, snap.format, mask)
    return formats.client_to_krita(pixels, snap.depth), (x, y, w, h)


def add_result_layer(snap, result, name="Style Transfer"):
    """Insert a client Result as a new paint layer directly above the original; returns the new node."""
    return insert_layer(snap, result_pixels(snap, result), name)


def insert_layer(snap, prepared, name="Style Transfer"):
    """Insert prepared (Krita bytes, rect) pixels as a new paint layer above the original (main thread).

    Pixels are written before the node joins the image, so the insertion is one undo step and the
    original layer is never written to. (Krita 5's Python API cannot name that step: Edit > Undo reads
    "Undo Add Layer"; the layer itself carries the filter's name.)

    The ORIGINAL layer stays the active one, so the next Apply (or preview) works on the photo again,
    not on the stylization.
    """
    data, (x, y, w, h) = prepared
    document, original = snap.document, snap.node
    layer = document.createNode(name, "paintlayer")
    if layer.colorDepth() != snap.depth or layer.colorModel() != original.colorModel():
        # The layer may differ from the image's colour space; match the original's.
        layer.setColorSpace(original.colorModel(), snap.depth, original.colorProfile())
    layer.setPixelData(data, x, y, w, h)
    parent = original.parentNode()
    if parent is None or not parent.addChildNode(layer, original):
        raise DocumentError("Krita refused to add the result layer above %r." % original.name())
    document.setActiveNode(original)
    document.refreshProjection()
    return layer
