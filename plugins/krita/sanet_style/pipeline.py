"""One style-transfer job in three steps: snapshot (main thread), stylize (any thread), apply (main thread).

The docker runs step 2 on a worker thread; tests and scripts call `stylize_active_layer`, which runs
the same three steps in a row.
"""
from . import document, labels


class Options:
    def __init__(self, alpha=1.0, preserve_color=False, preview=False, only_selection=True,
                 style_max_side=None, layer_name=None, scsa_weights=None):
        self.alpha = float(alpha)
        self.preserve_color = bool(preserve_color)
        self.preview = bool(preview)
        self.only_selection = bool(only_selection)
        self.style_max_side = style_max_side
        self.layer_name = layer_name
        self.scsa_weights = None if scsa_weights is None else tuple(float(v) for v in scsa_weights)

    def result_name(self, style_names=()):
        if self.layer_name:
            return self.layer_name
        label = "Style Transfer"
        if style_names:
            label += " (%s)" % ", ".join(style_names)
        if self.preview:
            label = "[Preview] " + label
        return label


def stylize(client_module, client, snap, styles, options, on_progress=None, cancel_event=None,
            job_id=None, content_labels=None):
    """Send the snapshot to sanetd and return its Result (blocking; safe off the main thread).

    The selection is NOT sent: the whole layer is stylized and the selection becomes the new
    layer's alpha in document.add_result_layer (see document.py for why).
    content_labels: (Krita bytes, width, height, depth) of a label layer (labels.read_label_layer), for SCSA.
    """
    if not styles:
        raise ValueError("Add at least one style image.")
    layer = client_module.Layer(snap.width, snap.height, snap.format, snap.client_data())
    kwargs = dict(alpha=options.alpha, preserve_color=options.preserve_color,
                  preview=options.preview, on_progress=on_progress, cancel_event=cancel_event)
    if options.style_max_side:
        kwargs["style_max_side"] = options.style_max_side
    if job_id:
        kwargs["job_id"] = job_id
    if content_labels is not None:
        kwargs["content_labels"] = labels.layer_labels(client_module, *content_labels)
        if options.scsa_weights is not None:
            kwargs["scsa_weights"] = options.scsa_weights
    return client.stylize(layer, list(styles), **kwargs)


def run_job(client_module, client, snap, styles, options, on_progress=None, cancel_event=None,
            content_labels=None):
    """Worker-thread part of a job: stylize, then turn the result into the new layer's Krita bytes."""
    result = stylize(client_module, client, snap, styles, options, on_progress, cancel_event,
                     content_labels=content_labels)
    return document.result_pixels(snap, result)


def stylize_active_layer(doc, styles, options, client_module, client, style_names=(), node=None,
                         label_layer=None):
    """Synchronous apply path: active layer (or `node`) + selection of `doc` -> new layer above it.

    (Under kritarunner there is no view, so Document.setActiveNode has no effect: pass `node`.)
    label_layer: name of the document's label layer for semantic (SCSA) transfer, or None.
    """
    snap = document.snapshot(doc, options.only_selection, node)
    content_labels = None if label_layer is None else labels.read_label_layer(doc, label_layer)
    prepared = run_job(client_module, client, snap, styles, options, content_labels=content_labels)
    return document.insert_layer(snap, prepared, options.result_name(style_names))
