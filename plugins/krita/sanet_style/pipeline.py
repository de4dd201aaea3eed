"""One style-transfer job in three steps: snapshot (main thread), stylize (any thread), apply (main thread).

The docker runs step 2 on a worker thread; tests and scripts call `stylize_active_layer`, which runs
the same three steps in a row. `stylize_preview` is step 2 for the live preview: the same request on the
layer scaled down (preview.PreviewInput), with the selection sent along for the daemon to blend.
"""
import importlib

from . import clientlib, document, labels


def naming():
    """sanet_client.naming: one definition of result names (and of the model choice) for GIMP and Krita."""
    clientlib.load()
    return importlib.import_module("sanet_client.naming")


class Options:
    """model: "sanet" | "adaattn" (sanet_client.protocol.MODELS) or a variant MODEL:NAME (None: SANet); style_keys:
    AdaAttN's "sampled" | "all" (None: "sampled"); quality: "exact" | "fast" (sanet_client.protocol.QUALITIES; None:
    exact) — the full-resolution run's precision, from sanetd's hello (previews keep sanetd's automatic choice)."""

    def __init__(self, alpha=1.0, preserve_color=False, preview=False, only_selection=True,
                 style_max_side=None, layer_name=None, scsa_weights=None, model=None, style_keys=None,
                 quality=None):
        self.alpha = float(alpha)
        self.preserve_color = bool(preserve_color)
        self.preview = bool(preview)
        self.only_selection = bool(only_selection)
        self.style_max_side = style_max_side
        self.layer_name = layer_name
        self.scsa_weights = None if scsa_weights is None else tuple(float(v) for v in scsa_weights)
        self.model = model              # None: SANet (what a request without a model means)
        self.style_keys = style_keys    # None: "sampled"
        self.quality = quality          # None: exact (checked when the run asks for its precision)

    def model_choice(self):
        """(model, style_keys) as the editors' model choice names them (sanet_client.naming)."""
        return naming().model_choice(self.model, self.style_keys)

    def result_name(self, style_names=(), preview=None, precision=None):
        """The new layer's name: sanet_client.naming.result_name, the same names as in GIMP (``precision``: the
        result's info "precision"; a fast one adds "fast")."""
        if self.layer_name:
            return self.layer_name
        return naming().result_name(list(style_names), model=clientlib.load().protocol.model_display(self.model_choice()[0]),
                                    alpha=self.alpha,
                                    preserve_color=self.preserve_color,
                                    preview=self.preview if preview is None else preview,
                                    semantic=self.scsa_weights is not None, precision=precision)

    def key(self):
        """The settings that change a result (for the preview history)."""
        return (round(self.alpha, 4), self.preserve_color, self.only_selection, self.scsa_weights,
                self.model_choice())

    def model_fields(self):
        """The stylize keywords of the model choice (none for SANet: any sanetd runs that, even one that predates
        the choice of model)."""
        model, style_keys = self.model_choice()
        if (model, style_keys) == naming().model_choice(None, None):
            return {}
        return {"model": model, "style_keys": style_keys}

    def precision_fields(self, hello):
        """The full-resolution run's precision for the Quality choice given sanetd's hello (exact → auto: an fp32
        result; fast → hello's fast_precision); none for a sanetd older than per-request precisions."""
        quality = naming().quality_choice(self.quality)
        precision = clientlib.load().protocol.hello_precision_for_quality(hello, quality)
        return {} if precision is None else {"precision": precision}


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
                  preview=options.preview, on_progress=on_progress, cancel_event=cancel_event,
                  **options.model_fields(), **options.precision_fields(client.hello()))
    if options.style_max_side:
        kwargs["style_max_side"] = options.style_max_side
    if job_id:
        kwargs["job_id"] = job_id
    if content_labels is not None:
        kwargs["content_labels"] = labels.layer_labels(client_module, *content_labels)
        if options.scsa_weights is not None:
            kwargs["scsa_weights"] = options.scsa_weights
    return client.stylize(layer, list(styles), **kwargs)


def stylize_preview(client_module, client, prepared, styles, options, on_progress=None, cancel_event=None):
    """Stylize a preview.PreviewInput (the layer scaled down) and return the Result at that small size.

    Unlike a full run, the (scaled) selection IS sent, so the daemon returns the blend the artist will get."""
    if not styles:
        raise ValueError("Add at least one style image.")
    mod = client_module
    layer = mod.Layer(prepared.width, prepared.height, prepared.format, prepared.data)
    kwargs = dict(alpha=options.alpha, preserve_color=options.preserve_color, on_progress=on_progress,
                  cancel_event=cancel_event, style_max_side=prepared.style_max_side, **options.model_fields())
    if prepared.mask is not None and options.only_selection:
        kwargs["selection"] = mod.Mask(prepared.width, prepared.height, "u8", prepared.mask)
    if prepared.labels is not None:
        kwargs["content_labels"] = mod.Labels(prepared.width, prepared.height, "rgba8", prepared.labels)
        if options.scsa_weights is not None:
            kwargs["scsa_weights"] = options.scsa_weights
    return client.stylize(layer, list(styles), **kwargs)


def run_job(client_module, client, snap, styles, options, on_progress=None, cancel_event=None,
            content_labels=None):
    """Worker-thread part of a job: stylize, then turn the result into the new layer's Krita bytes. Returns
    (prepared pixels, the result's info: how sanetd ran it, e.g. its "precision")."""
    result = stylize(client_module, client, snap, styles, options, on_progress, cancel_event,
                     content_labels=content_labels)
    return document.result_pixels(snap, result), dict(result.info or {})


def stylize_active_layer(doc, styles, options, client_module, client, style_names=(), node=None,
                         label_layer=None):
    """Synchronous apply path: active layer (or `node`) + selection of `doc` -> new layer above it.

    (Under kritarunner there is no view, so Document.setActiveNode has no effect: pass `node`.)
    label_layer: name of the document's label layer for semantic (SCSA) transfer, or None.
    """
    snap = document.snapshot(doc, options.only_selection, node)
    content_labels = None if label_layer is None else labels.read_label_layer(doc, label_layer)
    prepared, info = run_job(client_module, client, snap, styles, options, content_labels=content_labels)
    return document.insert_layer(snap, prepared, options.result_name(style_names, precision=info.get("precision")))
