"""GIMP-side I/O of the filter: procedure config <-> settings, pixels in and out of GIMP, one run end to end.

Needs GIMP (libgimp through PyGObject); the pure rules live in sanet_gimp_settings / _pixels / _preview / _job.
The work of one run is split so that the dialog can run it too, with its own progress:

    run = prepare_run(client_module, image, drawable, settings)     # main thread: reads pixels from GIMP
    result = submit_run(client_module, run, on_progress, cancel)    # any thread: the sanetd job
    finish_run(image, drawable, run, result)                        # main thread: the new layer (one undo step)
"""
import math
import os
import uuid
from dataclasses import dataclass, field

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio, GLib  # noqa: E402

from sanet_gimp_daemon import START_TIMEOUT_S, find_sanetd, sanetd_candidates, start_sanetd, wait_until_answering  # noqa: E402,E501
from sanet_gimp_job import PluginError  # noqa: E402
from sanet_gimp_pixels import (check_size, footprint_u8, formats_for_precision, from_little_endian,  # noqa: E402
                               label_map_size_error, labels_from_channels, mask_is_empty, sample_bytes,
                               to_little_endian)
from sanet_gimp_settings import (ALL_CHANNELS, DEFAULT_MODEL, DEFAULT_STYLE_KEYS, DIALOG_ONLY,  # noqa: E402
                                 LAST_VALUE_TYPES, STYLE_MAX_SIDE, STYLE_MAX_SIDE_MIN, SettingsError, build_settings,
                                 result_layer_name, style_label, with_library_names)

STYLE_DOWNSCALE_FACTOR = 2      # style images larger than 2× the engine's style size are shrunk in GIMP first
ENGINE_STYLE_MAX_SIDE = STYLE_MAX_SIDE   # sanet_client.protocol.DEFAULT_STYLE_MAX_SIDE, which the engine uses too
HELLO_TIMEOUT_S = 5.0           # a dead or stuck daemon is reported after at most ~2 × this
JOB_QUIET_TIMEOUT_S = 10.0      # the daemon answers heartbeats while it works; silence this long = gone
WATCHDOG_LOG_MAX = 100_000      # <GIMP profile>/sanet-style/watchdog.log starts afresh beyond this size


class PluginCancelled(Exception):
    pass


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
        model=config.get_property("model") or "",
        style_keys=config.get_property("style-keys") or "",
        quality=config.get_property("quality") or "",
    )


def last_values_path():
    return os.path.join(Gimp.directory(), "sanet-style", "last-values.json")


def server_choice_path():
    """The dialog's Server choice, remembered per GIMP profile (sanet_gimp_settings.save_server_choice)."""
    return os.path.join(Gimp.directory(), "sanet-style", "server.json")


def config_to_values(config):
    style_file = config.get_property("style-file")
    style_layer = config.get_property("style-layer")
    values = {k: config.get_property(k) for k in ("library-styles", "style-weights", "alpha", "preserve-colors",
                                                  "preview", "only-in-selection", "style-max-side",
                                                  "connection-file", "start-daemon",
                                                  "content-labels-channels", "scsa-t1", "scsa-t2", "model",
                                                  "style-keys", "quality")}
    values["style-files"] = list(config.get_property("style-files") or [])
    values["style-label-files"] = list(config.get_property("style-label-files") or [])
    values["style-file"] = style_file.get_path() if style_file is not None else None
    values["style-layer"] = style_layer.get_id() if style_layer is not None else None
    for key in ("content-labels-layer", "style-label-layer"):
        layer = config.get_property(key)
        values[key] = layer.get_id() if layer is not None else None
    return values


def apply_values(config, values):
    """Put remembered values into the config; a style layer that no longer exists is dropped (the dialog's
    own values are not procedure arguments: skipped here). The remembered values are the whole last run: an
    argument they lack takes its default (GIMP's own memory of the last dialog may hold another run's)."""
    if values:
        defaults = {key: config.find_property(key).get_default_value() for key in LAST_VALUE_TYPES
                    if key not in DIALOG_ONLY and config.find_property(key) is not None}
        values = dict(defaults, **values)
    for key, value in values.items():
        if key in DIALOG_ONLY:
            continue
        if key == "style-file":
            value = Gio.File.new_for_path(value) if value else None
        elif key in ("style-layer", "content-labels-layer", "style-label-layer"):
            value = Gimp.Layer.get_by_id(value) if value is not None and Gimp.Item.id_is_layer(value) else None
        elif value is None and LAST_VALUE_TYPES.get(key) is str:
            value = ""   # a text field never gets NULL (GTK warns)
        config.set_property(key, value)


# ----------------------------------------------------------------------------------------------- pixels

def _rect(x, y, w, h):
    return Gegl.Rectangle.new(int(x), int(y), int(w), int(h))


def read_drawable(drawable, babl_format, scale=1.0):
    """All pixels of a drawable (its own coordinates) converted by babl to ``babl_format``; ``scale`` < 1 reads
    it shrunk (GEGL box-filters), (w, h) then being ``scaled_size``."""
    w, h = scaled_size(drawable.get_width(), drawable.get_height(), scale)
    return drawable.get_buffer().get(_rect(0, 0, w, h), scale, babl_format, Gegl.AbyssPolicy.CLAMP)


def scaled_size(w, h, scale):
    if scale >= 1.0:
        return int(w), int(h)
    return max(1, int(round(w * scale))), max(1, int(round(h * scale)))


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


def read_label_layer(sanet_client, layer_ref, size, what, fmt, scale=1.0):
    """A style's label map from a layer (``layer_ref`` = (id, name)), exactly ``size``, as Labels in ``fmt``
    (``scale``: shrunk like its style, for the preview)."""
    layer_id, name = layer_ref
    layer = Gimp.Layer.get_by_id(layer_id)
    if layer is None or not layer.is_valid():
        raise SettingsError(f"style-label-layer: layer {name!r} no longer exists")
    w, h = layer.get_width(), layer.get_height()
    if (w, h) != tuple(size):
        raise SettingsError(f"style-label-layer: the {what}, layer '{layer.get_name()}', is {w}x{h} pixels, but "
                            f"its style is {size[0]}x{size[1]}; a style's label map must have the style's size")
    data = read_drawable(layer, LABEL_FILE_BABL[fmt], scale)
    w, h = scaled_size(w, h, scale)
    check_size(what, w, h, fmt, data)
    return sanet_client.Labels(w, h, fmt, bytes(data))


@dataclass
class StyleImage:
    """A style's pixels as sent (rgba8) and its label map, without its weight (the preview reuses them)."""
    width: int
    height: int
    data: bytes
    labels: object = None


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
        return _style_image(layer, labels)
    finally:
        img.delete()


def _style_image(layer, labels=None, scale=1.0):
    w, h = scaled_size(layer.get_width(), layer.get_height(), scale)
    data = read_drawable(layer, "R'G'B'A u8", scale)
    check_size(f"style '{layer.get_name()}'", w, h, "rgba8", data)
    return StyleImage(w, h, bytes(data), labels)


def _style_pixels(sanet_client, image: StyleImage, weight):
    if image.labels is None:  # keyword left out: works with a client that predates SCSA
        return sanet_client.StylePixels(image.width, image.height, "rgba8", image.data, weight=weight)
    return sanet_client.StylePixels(image.width, image.height, "rgba8", image.data, weight=weight,
                                    labels=image.labels)


def style_limit(settings) -> int:
    """The long side the engine shrinks styles to for this run."""
    return int(settings.style_max_side or ENGINE_STYLE_MAX_SIDE)


def preview_style_side(settings, scale: float) -> int:
    """style_max_side of a preview at ``scale``: the style shrinks with the layer, so its texture keeps the
    size it will have on the full-size result (the preview is a faithful miniature)."""
    return max(STYLE_MAX_SIDE_MIN, int(round(style_limit(settings) * min(1.0, scale))))


def gather_styles(sanet_client, settings, scale=1.0, cache=None):
    """The request's styles, in argument order. ``scale`` < 1 (the preview): file and layer styles are shrunk
    like the layer; ``cache`` (a dict) keeps file styles read once (opening a file is the slow part)."""
    full_side = STYLE_DOWNSCALE_FACTOR * style_limit(settings)
    styles = []
    for number, spec in enumerate(settings.styles, 1):
        what = f"label map of style {number}"
        if spec.kind == "file":
            side = full_side
            if scale < 1.0:
                side = _preview_side_of_file(spec.value, settings, scale, cache)
            key = ("file", spec.value, spec.labels_file, side, settings.label_format)
            image = cache.get(key) if cache is not None else None
            if image is None:
                image = read_style_file(sanet_client, spec, side, number, settings.label_format)
                if cache is not None:
                    cache[key] = image
            styles.append(_style_pixels(sanet_client, image, spec.weight))
        elif spec.kind == "layer":
            layer = Gimp.Layer.get_by_id(spec.value)
            if layer is None or not layer.is_valid():
                raise SettingsError(f"style-layer: layer {spec.label!r} no longer exists")
            size = (layer.get_width(), layer.get_height())
            layer_scale = 1.0
            if scale < 1.0:
                target = max(STYLE_MAX_SIDE_MIN, round(min(max(size), style_limit(settings)) * scale))
                layer_scale = min(1.0, target / float(max(size)))
            labels = None
            if spec.labels_file:
                labels = read_label_file(sanet_client, spec.labels_file, size, what, settings.label_format,
                                         scale_to=scaled_size(*size, layer_scale) if layer_scale < 1.0 else None)
            elif spec.labels_layer is not None:
                labels = read_label_layer(sanet_client, spec.labels_layer, size, what, settings.label_format,
                                          layer_scale)
            styles.append(_style_pixels(sanet_client, _style_image(layer, labels, layer_scale), spec.weight))
        elif spec.labels_file:
            # the library image's size is the daemon's to check (it names the style and both sizes)
            key = ("labels", spec.labels_file, settings.label_format)
            labels = cache.get(key) if cache is not None else None
            if labels is None:
                labels = read_label_file(sanet_client, spec.labels_file, None, what, settings.label_format)
                if cache is not None:
                    cache[key] = labels
            styles.append(sanet_client.StyleRef(spec.value, weight=spec.weight, labels=labels))
        else:
            styles.append(sanet_client.StyleRef(spec.value, weight=spec.weight))
    return styles


def _preview_side_of_file(path, settings, scale, cache):
    """The long side a file style gets in a preview at ``scale``: what the full run would use (the file's own
    size, at most the style size), shrunk like the layer."""
    key = ("size", path)
    size = cache.get(key) if cache is not None else None
    if size is None:
        img = open_image(path, "style image")
        try:
            size = (img.get_width(), img.get_height())
        finally:
            img.delete()
        if cache is not None:
            cache[key] = size
    return max(STYLE_MAX_SIDE_MIN, int(round(min(max(size), style_limit(settings)) * scale)))


def read_region(buffer, geometry, fmt, dx=0, dy=0, abyss=Gegl.AbyssPolicy.CLAMP):
    """The preview area ``geometry`` of a buffer, shrunk to the preview size; (dx, dy): where the layer's
    origin lies in the buffer's coordinates (a channel or the selection: the layer's offsets)."""
    if geometry is None:
        raise ValueError("read_region needs a preview geometry")
    s = geometry.scale
    x, y = int(math.floor((geometry.x + dx) * s)), int(math.floor((geometry.y + dy) * s))
    return buffer.get(_rect(x, y, geometry.out_w, geometry.out_h), s, fmt, abyss)


def read_content_labels(sanet_client, image, drawable, settings, geometry=None):
    """The layer's SCSA label map as Labels at the layer's size, or None: the colours of a label layer
    (rgba8), or saved selection channels over the layer's area (u8: channel k above 50 % → label k + 1).
    ``geometry``: only the preview's area, at the preview's size."""
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
        if geometry is not None:
            w, h = geometry.out_w, geometry.out_h
            data = read_region(layer.get_buffer(), geometry, "R'G'B'A u8")
        else:
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
        if geometry is not None:
            w, h = geometry.out_w, geometry.out_h
            masks = [read_region(c.get_buffer(), geometry, "Y u8", ox, oy, Gegl.AbyssPolicy.NONE) for c in channels]
        else:
            masks = [c.get_buffer().get(_rect(ox, oy, w, h), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)
                     for c in channels]
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
        raise PluginError(f"the selection does not touch the layer '{drawable.get_name()}'. Select part of "
                          f"the layer, or untick \"Only inside the selection\".")
    _, ox, oy = drawable.get_offsets()
    # the selection channel lives in image coordinates; "Y" (linear) keeps the stored feathered values
    sel = image.get_selection().get_buffer().get(_rect(ox + x, oy + y, w, h), 1.0, babl_mask,
                                                  Gegl.AbyssPolicy.NONE)
    if mask_is_empty(sel):
        raise PluginError(f"the selection does not touch the layer '{drawable.get_name()}'. Select part of "
                          f"the layer, or untick \"Only inside the selection\".")
    return x, y, w, h, sel


# ----------------------------------------------------------------------------------------------- the filter

def check_drawable(drawable):
    """The filter works on one ordinary layer (the message is shown after "Style Transfer: ")."""
    if not isinstance(drawable, Gimp.Layer) or drawable.is_layer_mask() or drawable.is_channel():
        raise PluginError("the active drawable is a layer mask or a channel; select a layer (click the layer's "
                          "thumbnail in the Layers panel) and try again.")
    if drawable.is_floating_sel():
        raise PluginError("anchor the floating selection, or turn it into a layer, first.")


@dataclass
class Run:
    """Everything one full-size run sends, read from GIMP on the main thread."""
    settings: object
    fmts: object
    width: int
    height: int
    layer: object                     # sanet_client.Layer
    mask: object = None               # sanet_client.Mask of the selection, or None
    content_labels: object = None
    styles: list = field(default_factory=list)
    library_names: dict = field(default_factory=dict)   # id -> name, filled by submit_run
    job_id: str = ""


def prepare_run(sanet_client, image, drawable, settings, style_cache=None) -> Run:
    """Read the layer, the selection, label maps and style images from GIMP (main thread)."""
    check_drawable(drawable)
    fmts = formats_for_precision(image.get_precision().value_nick)
    w, h = drawable.get_width(), drawable.get_height()
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
    styles = gather_styles(sanet_client, settings, cache=style_cache)
    return Run(settings, fmts, w, h, layer, mask, content_labels, styles, job_id=uuid.uuid4().hex)


def submit_run(sanet_client, run: Run, on_progress, cancel_event, watchdog=None):
    """The sanetd job of a run (any thread): returns the Result; raises the client's errors."""
    settings = run.settings
    # SCSA keywords only when labels are used: plain runs work with a client that predates them
    semantic = {} if run.content_labels is None else dict(content_labels=run.content_labels,
                                                          scsa_weights=settings.scsa_weights)
    hello = ensure_daemon(sanet_client, settings, on_progress, cancel_event)
    with sanet_client.Client(settings.connection_file, timeout=JOB_QUIET_TIMEOUT_S, retries=2) as c:
        if hello is None:
            hello = c.hello()
        if any(s.kind == "library" for s in settings.styles):
            # name the new layer after the library styles, not their ids (content hashes)
            run.library_names.update({m.get("id"): m.get("name") for m in c.styles_list()})
        if watchdog is not None:
            watchdog.job(run.job_id, c.session, settings.connection_file)
        try:
            return c.stylize(run.layer, run.styles, selection=run.mask, alpha=settings.alpha,
                             preserve_color=settings.preserve_color, preview=settings.preview,
                             style_max_side=settings.style_max_side, job_id=run.job_id, on_progress=on_progress,
                             cancel_event=cancel_event, **model_fields(settings), **semantic,
                             **precision_fields(sanet_client, settings, hello))
        finally:
            if watchdog is not None:
                watchdog.end(run.job_id)


def model_fields(settings) -> dict:
    """The stylize keywords of the model choice (none for SANet with the defaults: any sanetd runs that)."""
    if (settings.model, settings.style_keys) == (DEFAULT_MODEL, DEFAULT_STYLE_KEYS):
        return {}
    return {"model": settings.model, "style_keys": settings.style_keys}


def precision_fields(sanet_client, settings, hello) -> dict:
    """The full-size run's precision for the Quality choice (sanet_client.protocol: exact → auto, i.e. an fp32
    result; fast → hello's fast_precision, auto where the device has none); none for a sanetd that predates
    per-request precisions. Previews never send one (sanetd's auto: bf16 previews on CPUs with bf16 units)."""
    precision = sanet_client.protocol.hello_precision_for_quality(hello, settings.quality)
    return {} if precision is None else {"precision": precision}


def finish_run(sanet_client, image, drawable, run: Run, result):
    """The new layer from a run's result (main thread); returns it."""
    check_size("sanetd result", run.width, run.height, run.fmts.layer, result.data)
    pixels = from_little_endian(result.data, sample_bytes(run.fmts.layer))
    name = result_layer_name(with_library_names(run.settings, run.library_names), _result_name(sanet_client),
                             precision=(getattr(result, "info", None) or {}).get("precision"))
    return insert_result_layer(image, drawable, pixels, run.fmts.babl_layer, name, with_mask=run.mask is not None)


def _result_name(sanet_client):
    from sanet_client.naming import result_name
    return result_name


def start_watchdog(sanet_client):
    """The helper that cancels this plug-in's jobs if GIMP kills it (see sanet_gimp_watchdog); or None."""
    from sanet_gimp_job import client_search_path
    from sanet_gimp_watchdog import Watchdog
    where = os.path.dirname(os.path.dirname(os.path.abspath(sanet_client.__file__)))
    paths = [where] + [p for p in client_search_path() if p != where]
    log = os.path.join(Gimp.directory(), "sanet-style", "watchdog.log")
    try:
        os.makedirs(os.path.dirname(log), exist_ok=True)
        if os.path.getsize(log) > WATCHDOG_LOG_MAX:
            os.remove(log)
    except OSError:
        pass
    dog = Watchdog(paths, log_path=log)
    return dog if dog.start() else None


def ensure_daemon(sanet_client, settings, on_progress, cancel_event):
    """Fail fast, before megabytes are sent, when sanetd is not there; start it if the artist allowed that.
    Returns sanetd's hello (None when it was just started: the run asks again)."""
    def hello(timeout=HELLO_TIMEOUT_S, retries=2):
        with sanet_client.Client(settings.connection_file, timeout=timeout, retries=retries) as probe:
            return probe.hello()
    try:
        return hello()
    except sanet_client.DaemonNotRunning as exc:
        if not settings.start_daemon:
            raise
        not_running = str(exc)
    command = find_sanetd()
    if command is None:
        raise PluginError(f"{not_running}. \"Start sanetd when needed\" is on, but no sanetd was found (looked "
                          f"for {', '.join(sanetd_candidates())}); run the sanet-style installer.")
    on_progress(0.0, "starting sanetd")
    proc = start_sanetd(command)
    if not wait_until_answering(lambda: hello(timeout=1.0, retries=1), proc, cancel_event=cancel_event):
        if cancel_event.is_set():
            raise sanet_client.JobCancelled("cancelled while sanetd was starting")
        code = proc.poll()
        raise PluginError(f"started {command}, but it " + (f"exited with code {code}" if code is not None else
                          f"did not answer within {START_TIMEOUT_S:g} s") + "; run `sanetd` in a terminal to see why.")


def insert_result_layer(image, drawable, pixels, babl_format, name, with_mask):
    """The new layer, above ``drawable``, same size and offsets; one undo group (GIMP names it after the
    filter); the original untouched and still the active layer afterwards, so that Filters → Repeat and
    Re-show work on the photo, not on the result or its mask.

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
            new.set_edit_mask(False)   # selecting the result later edits its pixels, not its mask
        new.update(0, 0, w, h)
        image.set_selected_layers([drawable])
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return new


# ----------------------------------------------------------------------------------------------- preview

@dataclass
class PreviewSource:
    """The preview's area of the layer (and of the selection), already at preview size."""
    geometry: object
    layer: object            # sanet_client.Layer, rgba8
    mask: object = None      # sanet_client.Mask (u8) of the selection over the area, or None
    content_labels: object = None


def preview_region(image, drawable, only_in_selection):
    """The layer area the preview shows: the selection's bounds inside the layer, or None (the whole layer)."""
    if not only_in_selection or Gimp.Selection.is_empty(image):
        return None
    ok, x, y, w, h = drawable.mask_intersect()
    if not ok or w <= 0 or h <= 0:
        raise PluginError(f"the selection does not touch the layer '{drawable.get_name()}'. Select part of "
                          f"the layer, or untick \"Only inside the selection\".")
    return x, y, w, h


def read_preview_source(sanet_client, image, drawable, geometry, with_selection):
    """The preview area of the layer (rgba8, the display's depth) and of the feathered selection (u8)."""
    data = read_region(drawable.get_buffer(), geometry, "R'G'B'A u8")
    check_size("preview", geometry.out_w, geometry.out_h, "rgba8", data)
    layer = sanet_client.Layer(geometry.out_w, geometry.out_h, "rgba8", bytes(data))
    mask = None
    if with_selection and not Gimp.Selection.is_empty(image):
        _, ox, oy = drawable.get_offsets()
        sel = read_region(image.get_selection().get_buffer(), geometry, "Y u8", ox, oy, Gegl.AbyssPolicy.NONE)
        mask = sanet_client.Mask(geometry.out_w, geometry.out_h, "u8", bytes(sel))
    return PreviewSource(geometry, layer, mask)
