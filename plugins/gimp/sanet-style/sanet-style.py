#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters → Style Transfer → "Style Transfer…" and "Repeat Last Style Transfer".

Reads the active layer (at its own precision) and the selection, sends them to the sanetd daemon through
sanet_client, and puts the result on a NEW layer above the original, clipped by a layer mask made from the
selection. Everything it adds is one undo step; the original layer is never written to.

Selection handling: the daemon gets the feathered selection (u8 or float, as GIMP stores it) and does the
blend itself, `sel·stylized + (1−sel)·original`, so the new layer's pixels are exactly the engine's result
(the same as `sanet.Stylizer.stylize(..., selection=sel)`). The new layer's layer mask is the selection's
footprint: white wherever the selection is non-zero, black elsewhere. So the new layer is fully transparent
outside the selection, the feathered edge shows once (not twice), and the artist can still paint the mask to
hide parts of the result.
"""
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sanet_gimp_daemon import START_TIMEOUT_S, find_sanetd, sanetd_candidates, start_sanetd, wait_until_answering  # noqa: E402,E501
from sanet_gimp_job import Job, PluginError, import_client  # noqa: E402
from sanet_gimp_pixels import (check_size, footprint_u8, formats_for_precision, from_little_endian,  # noqa: E402
                               label_map_size_error, labels_from_channels, mask_is_empty, sample_bytes,
                               to_little_endian)
from sanet_gimp_settings import (ALL_CHANNELS, SCSA_DEFAULT_WEIGHTS, SCSA_WEIGHT_MAX, STYLE_MAX_SIDE,  # noqa: E402
                                 STYLE_MAX_SIDE_MAX, SettingsError, build_settings, layer_name, load_last_values,
                                 save_last_values, style_label, with_library_names)

PROC_MAIN = "python-fu-sanet-style-transfer"
PROC_REPEAT = "python-fu-sanet-style-transfer-repeat"
MENU = "<Image>/Filters/Style Transfer"
STYLE_DOWNSCALE_FACTOR = 2      # style images larger than 2× the engine's style size are shrunk in GIMP first
ENGINE_STYLE_MAX_SIDE = STYLE_MAX_SIDE   # sanet_client.protocol.DEFAULT_STYLE_MAX_SIDE, which the engine uses too
HELLO_TIMEOUT_S = 5.0           # a dead or stuck daemon is reported after at most ~2 × this
JOB_QUIET_TIMEOUT_S = 10.0      # the daemon answers heartbeats while it works; silence this long = gone

# the dialog's controls below the style sources (the sources get their own widgets, see run_dialog)
DIALOG_CONTROLS = ["style-weights", "alpha", "preserve-colors", "preview", "only-in-selection", "style-max-side",
                   "start-daemon", "connection-file"]
# the "Semantic (SCSA)" section (style-label-files gets its own text box, like style-files)
DIALOG_SCSA = ["content-labels-layer", "content-labels-channels", "style-label-layer", "scsa-t1", "scsa-t2"]


def _error(procedure, status, message):
    return procedure.new_return_values(status, GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0))


# ----------------------------------------------------------------------------------------------- settings

def style_layer_label(layer, image):
    """A layer's name, prefixed by its image's name when it comes from another image with several layers
    (a lone "Background" layer of an opened style file is named after the file)."""
    owner = layer.get_image()
    if owner is None or image is None or owner.get_id() == image.get_id():
        return layer.get_name()
    source = owner.get_file() or owner.get_imported_file()
    name = source.get_basename() if source is not None else (owner.get_name() or "")
    if not name or name.startswith("["):  # "[Untitled]": no file behind it
        return layer.get_name()
    stem = style_label(name)
    return stem if len(owner.get_layers()) == 1 else f"{stem}/{layer.get_name()}"


def settings_from_config(config, image=None, library_names=None):
    """The procedure arguments as a checked Settings (SettingsError names the wrong argument)."""
    style_file = config.get_property("style-file")
    style_layer = config.get_property("style-layer")
    labels_layer = config.get_property("content-labels-layer")
    style_labels_layer = config.get_property("style-label-layer")
    return build_settings(
        style_file=style_file.get_path() if style_file is not None else None,
        style_files=config.get_property("style-files") or [],
        style_layer=(style_layer.get_id(), style_layer_label(style_layer, image)) if style_layer is not None else None,
        library_styles=config.get_property("library-styles") or "",
        style_weights=config.get_property("style-weights") or "",
        alpha=config.get_property("alpha"),
        preserve_color=config.get_property("preserve-colors"),
        preview=config.get_property("preview"),
        only_in_selection=config.get_property("only-in-selection"),
        style_max_side=config.get_property("style-max-side"),
        connection_file=config.get_property("connection-file") or "",
        start_daemon=config.get_property("start-daemon"),
        library_names=library_names,
        content_labels_layer=(labels_layer.get_id(), labels_layer.get_name()) if labels_layer is not None else None,
        content_labels_channels=config.get_property("content-labels-channels") or "",
        style_label_files=list(config.get_property("style-label-files") or []),
        style_label_layer=(style_labels_layer.get_id(), style_labels_layer.get_name())
        if style_labels_layer is not None else None,
        scsa_t1=config.get_property("scsa-t1"),
        scsa_t2=config.get_property("scsa-t2"),
    )


def last_values_path():
    return os.path.join(Gimp.directory(), "sanet-style", "last-values.json")


def config_to_values(config):
    style_file = config.get_property("style-file")
    style_layer = config.get_property("style-layer")
    values = {k: config.get_property(k) for k in ("library-styles", "style-weights", "alpha", "preserve-colors",
                                                  "preview", "only-in-selection", "style-max-side",
                                                  "connection-file", "start-daemon",
                                                  "content-labels-channels", "scsa-t1", "scsa-t2")}
    values["style-files"] = list(config.get_property("style-files") or [])
    values["style-label-files"] = list(config.get_property("style-label-files") or [])
    values["style-file"] = style_file.get_path() if style_file is not None else None
    values["style-layer"] = style_layer.get_id() if style_layer is not None else None
    for key in ("content-labels-layer", "style-label-layer"):
        layer = config.get_property(key)
        values[key] = layer.get_id() if layer is not None else None
    return values


def apply_values(config, values):
    """Put remembered values into the config; a style layer that no longer exists is dropped."""
    for key, value in values.items():
        if key == "style-file":
            value = Gio.File.new_for_path(value) if value else None
        elif key in ("style-layer", "content-labels-layer", "style-label-layer"):
            value = Gimp.Layer.get_by_id(value) if Gimp.Item.id_is_layer(value) else None
        config.set_property(key, value)


# ----------------------------------------------------------------------------------------------- pixels

def _rect(x, y, w, h):
    return Gegl.Rectangle.new(int(x), int(y), int(w), int(h))


def read_drawable(drawable, babl_format):
    """All pixels of a drawable (its own coordinates) converted by babl to ``babl_format``."""
    w, h = drawable.get_width(), drawable.get_height()
    return drawable.get_buffer().get(_rect(0, 0, w, h), 1.0, babl_format, Gegl.AbyssPolicy.CLAMP)


def open_image(path, what):
    """An image opened with GIMP's own loaders (any format GIMP reads); the caller deletes it."""
    if not os.path.isfile(path):
        raise SettingsError(f"{what} not found: {path}")
    try:
        img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    except GLib.Error as exc:
        raise PluginError(f"cannot open the {what} {path}: {exc.message}") from None
    if img is None:
        raise PluginError(f"cannot open the {what} {path}: GIMP could not load it")
    return img


# how a style's label-map image is read: the same kind of labels as the content map (settings.label_format)
LABEL_FILE_BABL = {"rgba8": "R'G'B'A u8",   # colour-coded, like a label layer
                   "u8": "Y' u8"}           # grey values = label numbers, like saved channels (1 = channel 1)


def read_label_file(sanet_client, path, size, what, fmt, scale_to=None):
    """A style's label-map image as Labels in ``fmt`` ("rgba8" colours | "u8" grey values). It must be ``size``
    (w, h) = the style's pixel size (None: any size, e.g. a library style, checked by sanetd); ``scale_to``:
    shrink it like its style, with NEAREST (interpolated edges would invent colours that are no label)."""
    img = open_image(path, what)
    try:
        w, h = img.get_width(), img.get_height()
        if size is not None and (w, h) != tuple(size):
            raise SettingsError(f"style-label-files: the {what} {path} is {w}x{h} pixels, but its style is "
                                f"{size[0]}x{size[1]}; a style's label map must have the style's size")
        if scale_to is not None and scale_to != (w, h):
            Gimp.context_push()
            try:
                Gimp.context_set_interpolation(Gimp.InterpolationType.NONE)
                img.scale(*scale_to)
            finally:
                Gimp.context_pop()
        layer = img.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        lw, lh = layer.get_width(), layer.get_height()
        data = read_drawable(layer, LABEL_FILE_BABL[fmt])
        check_size(what, lw, lh, fmt, data)
        return sanet_client.Labels(lw, lh, fmt, bytes(data))
    finally:
        img.delete()


def read_label_layer(sanet_client, layer_ref, size, what, fmt):
    """A style's label map from a layer (``layer_ref`` = (id, name)), exactly ``size``, as Labels in ``fmt``."""
    layer_id, name = layer_ref
    layer = Gimp.Layer.get_by_id(layer_id)
    if layer is None or not layer.is_valid():
        raise SettingsError(f"style-label-layer: layer {name!r} no longer exists")
    w, h = layer.get_width(), layer.get_height()
    if (w, h) != tuple(size):
        raise SettingsError(f"style-label-layer: the {what}, layer '{layer.get_name()}', is {w}x{h} pixels, but "
                            f"its style is {size[0]}x{size[1]}; a style's label map must have the style's size")
    data = read_drawable(layer, LABEL_FILE_BABL[fmt])
    check_size(what, w, h, fmt, data)
    return sanet_client.Labels(w, h, fmt, bytes(data))


def read_style_file(sanet_client, spec, max_side, number, label_format):
    """A style image flattened to rgba8 (shrunk when larger than ``max_side``), with its label map if any."""
    img = open_image(spec.value, "style image")
    try:
        w, h = img.get_width(), img.get_height()
        if max(w, h) > max_side:
            scale = max_side / float(max(w, h))
            img.scale(max(1, round(w * scale)), max(1, round(h * scale)))
        layer = img.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        labels = None
        if spec.labels_file:
            labels = read_label_file(sanet_client, spec.labels_file, (w, h), f"label map of style {number}",
                                     label_format, scale_to=(layer.get_width(), layer.get_height()))
        return _style_pixels(sanet_client, layer, spec.weight, labels)
    finally:
        img.delete()


def _style_pixels(sanet_client, layer, weight, labels=None):
    w, h = layer.get_width(), layer.get_height()
    data = read_drawable(layer, "R'G'B'A u8")
    check_size(f"style '{layer.get_name()}'", w, h, "rgba8", data)
    if labels is None:  # keyword left out: works with a client that predates SCSA
        return sanet_client.StylePixels(w, h, "rgba8", bytes(data), weight=weight)
    return sanet_client.StylePixels(w, h, "rgba8", bytes(data), weight=weight, labels=labels)


def gather_styles(sanet_client, settings):
    max_side = STYLE_DOWNSCALE_FACTOR * (settings.style_max_side or ENGINE_STYLE_MAX_SIDE)
    styles = []
    for number, spec in enumerate(settings.styles, 1):
        what = f"label map of style {number}"
        if spec.kind == "file":
            styles.append(read_style_file(sanet_client, spec, max_side, number, settings.label_format))
        elif spec.kind == "layer":
            layer = Gimp.Layer.get_by_id(spec.value)
            if layer is None or not layer.is_valid():
                raise SettingsError(f"style-layer: layer {spec.label!r} no longer exists")
            labels = None
            size = (layer.get_width(), layer.get_height())
            if spec.labels_file:
                labels = read_label_file(sanet_client, spec.labels_file, size, what, settings.label_format)
            elif spec.labels_layer is not None:
                labels = read_label_layer(sanet_client, spec.labels_layer, size, what, settings.label_format)
            styles.append(_style_pixels(sanet_client, layer, spec.weight, labels))
        elif spec.labels_file:
            # the library image's size is the daemon's to check (it names the style and both sizes)
            labels = read_label_file(sanet_client, spec.labels_file, None, what, settings.label_format)
            styles.append(sanet_client.StyleRef(spec.value, weight=spec.weight, labels=labels))
        else:
            styles.append(sanet_client.StyleRef(spec.value, weight=spec.weight))
    return styles


def read_content_labels(sanet_client, image, drawable, settings):
    """The layer's SCSA label map as Labels at the layer's size, or None: the colours of a label layer
    (rgba8), or saved selection channels over the layer's area (u8: channel k above 50 % → label k + 1)."""
    if settings.semantic and not hasattr(sanet_client, "Labels"):
        raise PluginError("the installed sanet_client has no SCSA label maps (sanet_client.Labels); install "
                          "matching versions of sanet-style")
    w, h = drawable.get_width(), drawable.get_height()
    if settings.content_labels_layer is not None:
        layer_id, name = settings.content_labels_layer
        layer = Gimp.Layer.get_by_id(layer_id)
        if layer is None or not layer.is_valid():
            raise SettingsError(f"content-labels-layer: layer {name!r} no longer exists")
        problem = label_map_size_error(f"the label layer '{layer.get_name()}'",
                                       (layer.get_width(), layer.get_height()), drawable.get_name(), (w, h))
        if problem:
            raise SettingsError(f"content-labels-layer: {problem}")
        data = read_drawable(layer, "R'G'B'A u8")
        check_size(f"label layer '{layer.get_name()}'", w, h, "rgba8", data)
        return sanet_client.Labels(w, h, "rgba8", bytes(data))
    if settings.content_labels_channels:
        saved = list(image.get_channels())
        if settings.content_labels_channels == (ALL_CHANNELS,):
            channels = saved
            if not channels:
                raise SettingsError("content-labels-channels: '*' but the image has no saved channels (Select → "
                                    "Save to Channel)")
        else:
            by_name = {c.get_name(): c for c in saved}
            missing = [n for n in settings.content_labels_channels if n not in by_name]
            if missing:
                have = ", ".join(repr(n) for n in by_name) or "none"
                raise SettingsError(f"content-labels-channels: no saved channel named "
                                    f"{', '.join(repr(n) for n in missing)} (the image's channels: {have})")
            channels = [by_name[n] for n in settings.content_labels_channels]
        _, ox, oy = drawable.get_offsets()
        # channels live in image coordinates; outside the image (abyss) is "not in the channel" = label 0
        masks = [c.get_buffer().get(_rect(ox, oy, w, h), 1.0, "Y u8", Gegl.AbyssPolicy.NONE) for c in channels]
        try:
            return sanet_client.Labels(w, h, "u8", labels_from_channels(masks, w * h))
        except ValueError as exc:
            raise SettingsError(f"content-labels-channels: {exc}") from None
    return None


def read_selection(image, drawable, babl_mask):
    """(x, y, w, h, feathered mask bytes in ``babl_mask``) of the selection inside the drawable (drawable
    coordinates), or None when nothing is selected."""
    if Gimp.Selection.is_empty(image):
        return None
    ok, x, y, w, h = drawable.mask_intersect()
    if not ok or w <= 0 or h <= 0:
        raise PluginError(f"The selection does not touch the layer '{drawable.get_name()}'. Select part of "
                          f"the layer, or untick \"Only inside the selection\".")
    _, ox, oy = drawable.get_offsets()
    # the selection channel lives in image coordinates; "Y" (linear) keeps the stored feathered values
    sel = image.get_selection().get_buffer().get(_rect(ox + x, oy + y, w, h), 1.0, babl_mask,
                                                  Gegl.AbyssPolicy.NONE)
    if mask_is_empty(sel):
        raise PluginError(f"The selection does not touch the layer '{drawable.get_name()}'.")
    return x, y, w, h, sel


# ----------------------------------------------------------------------------------------------- the filter

def stylize_drawable(image, drawable, settings, interactive):
    """Send the layer to sanetd and insert the result as a new layer; returns the new layer."""
    if not isinstance(drawable, Gimp.Layer) or drawable.is_layer_mask() or drawable.is_channel():
        raise PluginError("Style Transfer works on a layer: select a layer (not a mask or channel).")
    if drawable.is_floating_sel():
        raise PluginError("Anchor or convert the floating selection to a layer first.")
    sanet_client = import_client()
    fmts = formats_for_precision(image.get_precision().value_nick)
    w, h = drawable.get_width(), drawable.get_height()
    _, ox, oy = drawable.get_offsets()

    selection = read_selection(image, drawable, fmts.babl_mask) if settings.only_in_selection else None
    mask = None
    if selection is not None:
        mx, my, mw, mh, feathered = selection
        check_size("selection", mw, mh, fmts.mask, feathered)
        mask = sanet_client.Mask(mw, mh, fmts.mask, to_little_endian(feathered, sample_bytes(fmts.mask)),
                                 x=mx, y=my)

    raw = read_drawable(drawable, fmts.babl_layer)
    check_size(f"layer '{drawable.get_name()}'", w, h, fmts.layer, raw)
    layer = sanet_client.Layer(w, h, fmts.layer, to_little_endian(raw, sample_bytes(fmts.layer)))
    content_labels = read_content_labels(sanet_client, image, drawable, settings)
    styles = gather_styles(sanet_client, settings)
    # SCSA keywords only when labels are used: plain runs work with a client that predates them
    semantic = {} if content_labels is None else dict(content_labels=content_labels,
                                                      scsa_weights=settings.scsa_weights)

    library_names = {}

    def submit(on_progress, cancel_event):
        ensure_daemon(sanet_client, settings, on_progress, cancel_event)
        with sanet_client.Client(settings.connection_file, timeout=JOB_QUIET_TIMEOUT_S, retries=2) as c:
            if any(s.kind == "library" for s in settings.styles):
                # name the new layer after the library styles, not their ids (content hashes)
                library_names.update({m.get("id"): m.get("name") for m in c.styles_list()})
            return c.stylize(layer, styles, selection=mask, alpha=settings.alpha,
                             preserve_color=settings.preserve_color, preview=settings.preview,
                             style_max_side=settings.style_max_side, on_progress=on_progress,
                             cancel_event=cancel_event, **semantic)

    Gimp.progress_init("Style transfer: connecting to sanetd…")
    progress_ui = ProgressDialog() if interactive else None
    try:
        last_stage = [None]

        def on_progress(fraction, stage):
            if stage != last_stage[0]:  # the status bar names the stage (encode styles, decode, …)
                last_stage[0] = stage
                Gimp.progress_set_text(f"Style transfer: {stage}")
            Gimp.progress_update(max(0.0, min(1.0, fraction)))
            if progress_ui is not None:
                progress_ui.update(fraction, stage)

        result = Job(submit).run(on_progress=on_progress,
                                 is_cancelled=(progress_ui.cancelled if progress_ui else None),
                                 pump=(progress_ui.pump if progress_ui else None))
    except sanet_client.JobCancelled:
        raise PluginCancelled() from None
    except sanet_client.SanetClientError as exc:
        raise PluginError(str(exc)) from None
    finally:
        if progress_ui is not None:
            progress_ui.close()
        Gimp.progress_end()

    check_size("sanetd result", w, h, fmts.layer, result.data)
    pixels = from_little_endian(result.data, sample_bytes(fmts.layer))
    name = layer_name(with_library_names(settings, library_names))
    return insert_result_layer(image, drawable, pixels, fmts.babl_layer, name,
                               with_mask=selection is not None)


def ensure_daemon(sanet_client, settings, on_progress, cancel_event):
    """Fail fast, before megabytes are sent, when sanetd is not there; start it if the artist allowed that."""
    def hello(timeout=HELLO_TIMEOUT_S, retries=2):
        with sanet_client.Client(settings.connection_file, timeout=timeout, retries=retries) as probe:
            probe.hello()
    try:
        hello()
        return
    except sanet_client.DaemonNotRunning as exc:
        if not settings.start_daemon:
            raise
        not_running = str(exc)
    command = find_sanetd()
    if command is None:
        raise PluginError(f"{not_running}. \"Start sanetd if needed\" is on, but no sanetd was found (looked for "
                          f"{', '.join(sanetd_candidates())}); run the sanet-style installer.")
    on_progress(0.0, "starting sanetd")
    proc = start_sanetd(command)
    if not wait_until_answering(lambda: hello(timeout=1.0, retries=1), proc, cancel_event=cancel_event):
        if cancel_event.is_set():
            raise sanet_client.JobCancelled("cancelled while sanetd was starting")
        code = proc.poll()
        raise PluginError(f"started {command}, but it " + (f"exited with code {code}" if code is not None else
                          f"did not answer within {START_TIMEOUT_S:g} s") + "; run `sanetd` in a terminal to see why.")


def insert_result_layer(image, drawable, pixels, babl_format, name, with_mask):
    """The new layer, above ``drawable``, same size and offsets; one undo group; the original untouched.

    ``with_mask``: add a layer mask that is white wherever the selection is non-zero (its footprint)."""
    w, h = drawable.get_width(), drawable.get_height()
    _, ox, oy = drawable.get_offsets()
    layer_type = Gimp.ImageType.GRAYA_IMAGE if image.get_base_type() == Gimp.ImageBaseType.GRAY \
        else Gimp.ImageType.RGBA_IMAGE
    image.undo_group_start()
    try:
        new = Gimp.Layer.new(image, name, w, h, layer_type, 100.0, Gimp.LayerMode.NORMAL)
        image.insert_layer(new, drawable.get_parent(), image.get_item_position(drawable))
        new.set_offsets(ox, oy)
        buf = new.get_buffer()
        buf.set(_rect(0, 0, w, h), babl_format, pixels)
        buf.flush()
        if with_mask:
            # white wherever the selection is non-zero over the whole layer (the image's abyss is unselected)
            sel = image.get_selection().get_buffer().get(_rect(ox, oy, w, h), 1.0, "Y u32", Gegl.AbyssPolicy.NONE)
            mask = new.create_mask(Gimp.AddMaskType.BLACK)
            new.add_mask(mask)
            mbuf = mask.get_buffer()
            mbuf.set(_rect(0, 0, w, h), "Y u8", footprint_u8(sel))
            mbuf.flush()
            mask.update(0, 0, w, h)
        new.update(0, 0, w, h)
        image.set_selected_layers([new])
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return new


class PluginCancelled(Exception):
    pass


# ----------------------------------------------------------------------------------------------- UI

class ProgressDialog:
    """A small window with a progress bar and Cancel (GIMP's status-bar cancel kills the plug-in outright)."""

    def __init__(self):
        from gi.repository import Gtk
        self._gtk = Gtk
        self._cancelled = False
        self.win = Gtk.Dialog(title="Style Transfer", modal=False)
        self.win.add_button("_Cancel", Gtk.ResponseType.CANCEL)
        self.win.connect("response", self._on_response)
        self.win.connect("delete-event", lambda *a: self._on_response(None, Gtk.ResponseType.CANCEL) or True)
        box = self.win.get_content_area()
        box.set_spacing(8)
        box.set_border_width(12)
        self.label = Gtk.Label(label="Connecting to sanetd…", xalign=0.0)
        self.bar = Gtk.ProgressBar()
        self.bar.set_size_request(320, -1)
        box.pack_start(self.label, False, False, 0)
        box.pack_start(self.bar, False, False, 0)
        self.win.show_all()
        self.pump()

    def _on_response(self, _dialog, response):
        if response == self._gtk.ResponseType.CANCEL and not self._cancelled:
            self._cancelled = True
            self.label.set_text("Cancelling…")

    def cancelled(self):
        return self._cancelled

    def update(self, fraction, stage):
        if not self._cancelled:
            self.bar.set_fraction(max(0.0, min(1.0, fraction)))
            self.label.set_text(f"{stage} ({fraction * 100:.0f} %)")

    def pump(self):
        while self._gtk.events_pending():
            self._gtk.main_iteration_do(False)

    def close(self):
        self.win.destroy()
        self.pump()


def library_styles_or_message(connection_file):
    """(styles, None) from the daemon's library, or ([], message) when it cannot be reached (quickly)."""
    try:
        sanet_client = import_client()
        with sanet_client.Client(connection_file or None, timeout=2.0, retries=1) as c:
            return c.styles_list(), None
    except PluginError as exc:
        return [], str(exc)
    except Exception as exc:  # the dialog still works with files and layers
        return [], f"Library styles unavailable: {exc}"


def run_dialog(procedure, config):
    """The interactive dialog; True on OK. Extra widgets: style-file list and library thumbnails."""
    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    from gi.repository import GdkPixbuf, GimpUi, Gtk

    GimpUi.init("sanet-style")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Style Transfer")
    dialog.get_scale_entry("alpha", 1.0)  # a slider rather than a spin button
    # style sources first (file, more files, layer, library), then the controls
    dialog.fill_box("sources-file", ["style-file"])
    sources_rest = dialog.fill_box("sources-rest", ["style-layer", "library-styles"])
    controls = dialog.fill_box("controls", DIALOG_CONTROLS)
    dialog.fill(["sources-file"])
    box = dialog.get_content_area()

    # more style images: one path per line (the string-list argument "style-files")
    frame = Gtk.Frame(label="More style images (one file per line)")
    text = Gtk.TextView()
    text.get_buffer().set_text("\n".join(config.get_property("style-files") or []))
    scroller = Gtk.ScrolledWindow()
    scroller.set_size_request(-1, 70)
    scroller.add(text)
    add_btn = Gtk.Button(label="Add image…")

    def add_files(_btn):
        chooser = Gtk.FileChooserDialog(title="Style images", transient_for=dialog,
                                        action=Gtk.FileChooserAction.OPEN)
        chooser.add_buttons("_Cancel", Gtk.ResponseType.CANCEL, "_Add", Gtk.ResponseType.OK)
        chooser.set_select_multiple(True)
        if chooser.run() == Gtk.ResponseType.OK:
            tb = text.get_buffer()
            for f in chooser.get_filenames():
                tb.insert(tb.get_end_iter(), ("" if tb.get_char_count() == 0 else "\n") + f)
        chooser.destroy()

    add_btn.connect("clicked", add_files)
    vb = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
    vb.set_border_width(6)
    vb.pack_start(scroller, True, True, 0)
    vb.pack_start(add_btn, False, False, 0)
    frame.add(vb)
    box.pack_start(frame, False, False, 0)
    box.pack_start(sources_rest, False, False, 0)

    # library styles with thumbnails: toggles write the ids into "library-styles"
    styles, message = library_styles_or_message(config.get_property("connection-file"))
    lib_frame = Gtk.Frame(label="Styles from the sanetd library")
    if styles:
        flow = Gtk.FlowBox(selection_mode=Gtk.SelectionMode.NONE, max_children_per_line=6)
        chosen = set(s.strip() for s in (config.get_property("library-styles") or "").split(",") if s.strip())
        order = []

        def toggled(btn, sid):
            (chosen.add if btn.get_active() else chosen.discard)(sid)
            config.set_property("library-styles", ", ".join(i for i in order if i in chosen))

        for meta in styles:
            sid, name = meta.get("id", ""), meta.get("name", meta.get("id", ""))
            order.append(sid)
            btn = Gtk.ToggleButton()
            inner = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=2)
            thumb = meta.get("thumbnail")
            if thumb:
                loader = GdkPixbuf.PixbufLoader()
                try:
                    loader.write(bytes(thumb))
                    loader.close()
                    inner.pack_start(Gtk.Image.new_from_pixbuf(loader.get_pixbuf()), False, False, 0)
                except GLib.Error:
                    pass
            inner.pack_start(Gtk.Label(label=name), False, False, 0)
            btn.add(inner)
            btn.set_active(sid in chosen)
            btn.set_tooltip_text(f"{name} ({sid})")
            btn.connect("toggled", toggled, sid)
            flow.add(btn)
        lib_frame.add(flow)
    else:
        lib_frame.add(Gtk.Label(label=message or "The library is empty (add styles with `sanet-client styles add`).",
                                wrap=True, xalign=0.0))
    box.pack_start(lib_frame, False, False, 0)
    box.pack_start(controls, False, False, 0)

    # "Semantic (SCSA)": the layer's label map (layer or channels), one label map per style, t1/t2; folded
    # away unless the current values use it (most runs do not)
    in_use = bool(config.get_property("content-labels-layer") or config.get_property("content-labels-channels")
                  or config.get_property("style-label-layer") or any(config.get_property("style-label-files") or []))
    scsa_frame = Gtk.Expander(label="Semantic (SCSA): region-to-region style with label maps", expanded=in_use)
    scsa_box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
    scsa_box.set_border_width(6)
    scsa_box.pack_start(dialog.fill_box("scsa", DIALOG_SCSA), False, False, 0)
    scsa_box.pack_start(Gtk.Label(label="Style label maps, one line per style in the order above ('none' for a "
                                        "style without one):", xalign=0.0, wrap=True, max_width_chars=50),
                        False, False, 0)
    label_text = Gtk.TextView()
    label_text.get_buffer().set_text("\n".join(p or "none" for p in config.get_property("style-label-files") or []))
    label_scroller = Gtk.ScrolledWindow()
    label_scroller.set_size_request(-1, 50)
    label_scroller.add(label_text)
    scsa_box.pack_start(label_scroller, True, True, 0)
    scsa_frame.add(scsa_box)
    box.pack_start(scsa_frame, False, False, 0)
    box.show_all()

    ok = dialog.run()
    if ok:
        tb = text.get_buffer()
        paths = tb.get_text(tb.get_start_iter(), tb.get_end_iter(), False)
        config.set_property("style-files", [p.strip() for p in paths.splitlines() if p.strip()])
        tb = label_text.get_buffer()
        lines = [p.strip() for p in tb.get_text(tb.get_start_iter(), tb.get_end_iter(), False).splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        config.set_property("style-label-files", lines)
    dialog.destroy()
    return ok


# ----------------------------------------------------------------------------------------------- procedures

def run_main(procedure, run_mode, image, drawables, config, data):
    if len(drawables) != 1:
        return _error(procedure, Gimp.PDBStatusType.CALLING_ERROR,
                      "Style Transfer works on exactly one layer: select one layer.")
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    if run_mode != Gimp.RunMode.NONINTERACTIVE:
        last = load_last_values(last_values_path())
        if run_mode == Gimp.RunMode.WITH_LAST_VALS and not last:
            return _error(procedure, Gimp.PDBStatusType.CALLING_ERROR,
                          "Style Transfer: nothing to repeat yet; run Filters → Style Transfer → Style Transfer… "
                          "first.")
        apply_values(config, last)
    if interactive and not run_dialog(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        settings = settings_from_config(config, image)
        stylize_drawable(image, drawables[0], settings, interactive)
        try:
            save_last_values(last_values_path(), config_to_values(config))
        except OSError:
            pass  # remembering settings is a convenience; the result is already in the image
    except SettingsError as exc:
        return _error(procedure, Gimp.PDBStatusType.CALLING_ERROR, f"Style Transfer: {exc}")
    except PluginCancelled:
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except PluginError as exc:
        return _error(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, f"Style Transfer: {exc}")
    except Exception as exc:  # never a Python traceback for the artist, always one message
        return _error(procedure, Gimp.PDBStatusType.EXECUTION_ERROR,
                      f"Style Transfer failed: {type(exc).__name__}: {exc}")
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def run_repeat(procedure, run_mode, image, drawables, config, data):
    """Run the main procedure again with the values of its last successful run."""
    main = Gimp.get_pdb().lookup_procedure(PROC_MAIN)
    cfg = main.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.WITH_LAST_VALS)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", drawables)
    result = main.run(cfg)
    status = result.index(0)
    if status == Gimp.PDBStatusType.SUCCESS or status == Gimp.PDBStatusType.CANCEL:
        return procedure.new_return_values(status, GLib.Error())
    return _error(procedure, status, Gimp.get_pdb().get_last_error() or "Style Transfer failed")


class SanetStyle(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_MAIN, PROC_REPEAT]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        if name == PROC_MAIN:
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_main, None)
            proc.set_menu_label("Style _Transfer…")
            proc.set_documentation(
                "Paint the layer in the style of one or more images (SANet, via the sanetd daemon)",
                "Stylizes the active layer inside the selection and puts the result on a new layer above it, "
                "masked by the selection. Needs the sanetd daemon running (start it with `sanetd`).", name)
        elif name == PROC_REPEAT:
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_repeat, None)
            proc.set_menu_label("_Repeat Last Style Transfer")
            proc.set_documentation("Repeat the last style transfer with the same settings",
                                   "Runs Style Transfer again on the active layer with the last values.", name)
        else:
            return None
        proc.set_image_types("RGB*, GRAY*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.add_menu_path(MENU)
        proc.set_attribution("sanet-style", "sanet-style contributors", "2026")
        if name == PROC_MAIN:
            add_arguments(proc)
        return proc


def add_arguments(proc):
    rw = GObject.ParamFlags.READWRITE
    proc.add_file_argument("style-file", "Style _image", "Style image file (any format GIMP opens)",
                           Gimp.FileChooserAction.OPEN, True, None, rw)
    proc.add_string_array_argument("style-files", "More style images",
                                   "More style image files, mixed with the others", rw)
    proc.add_layer_argument("style-layer", "Style _from layer",
                            "A layer of any open image to use as a style (optional)", True, rw)
    proc.add_string_argument("library-styles", "Library st_yles",
                             "Ids of styles in the sanetd library, comma-separated", "", rw)
    proc.add_string_argument("style-weights", "Style _weights",
                             "One weight per style, comma-separated, in the order: style image, more style "
                             "images, style layer, library styles. Empty: equal weights", "", rw)
    proc.add_double_argument("alpha", "Stre_ngth", "How much style: 0 keeps the content, 1 is full style",
                             0.0, 1.0, 1.0, rw)
    proc.add_boolean_argument("preserve-colors", "_Preserve colours",
                              "Keep the layer's colours, take only the style's texture", False, rw)
    proc.add_boolean_argument("preview", "Fast pre_view", "Lower resolution, much faster (for trying styles)",
                              False, rw)
    proc.add_boolean_argument("only-in-selection", "Only inside the selec_tion",
                              "Limit the result to the selection (feathered edges kept); ignored when "
                              "nothing is selected", True, rw)
    proc.add_int_argument("style-max-side", "Style si_ze",
                          "Longest side the styles are resized to (0: the daemon's default)", 0, STYLE_MAX_SIDE_MAX,
                          0, rw)
    proc.add_boolean_argument("start-daemon", "Start sanetd if nee_ded",
                              "When sanetd is not running, start the one the installer set up (or `sanetd` on PATH)",
                              False, rw)
    proc.add_string_argument("connection-file", "sanetd conn_ection file",
                             "Path of sanetd.json (empty: find the running daemon automatically)", "", rw)
    # SCSA semantic style transfer: region-to-region style with label maps (content and styles)
    proc.add_layer_argument("content-labels-layer", "Label _layer",
                            "SCSA: a layer of the image painted with one flat colour per region (sky, face, …); "
                            "it must have the active layer's size. The same colour in a style's label map means "
                            "the same region", True, rw)
    proc.add_string_argument("content-labels-channels", "Label _channels",
                             "SCSA, instead of a label layer: saved selection channels, comma-separated "
                             "(channel k above 50 % = region k, later channels win; '*' = every saved channel). "
                             "Style label maps are then greyscale images whose values are the labels "
                             "(0 = outside every channel, 1 = the first channel, …)", "", rw)
    proc.add_string_array_argument("style-label-files", "Style label maps",
                                   "SCSA: one label-map image per style, in the style order (style image, more "
                                   "style images, style layer, library styles), each at its style's size: "
                                   "colours like the label layer, or grey values = channel numbers with label "
                                   "channels; '' or 'none' for a style without one", rw)
    proc.add_layer_argument("style-label-layer", "St_yle label layer",
                            "SCSA: a layer (of any open image) holding the label map of the style-layer style, at "
                            "that layer's size; instead of its item in style-label-files", True, rw)
    proc.add_double_argument("scsa-t1", "SCSA t_1 (region attention)",
                             "SCSA weight of the semantic continuous attention (SCA)",
                             0.0, SCSA_WEIGHT_MAX, SCSA_DEFAULT_WEIGHTS[0], rw)
    proc.add_double_argument("scsa-t2", "SCSA t_2 (sparse attention)",
                             "SCSA weight of the semantic sparse attention (SSA, the best-matching style pixel)",
                             0.0, SCSA_WEIGHT_MAX, SCSA_DEFAULT_WEIGHTS[1], rw)


Gimp.main(SanetStyle.__gtype__, sys.argv)
