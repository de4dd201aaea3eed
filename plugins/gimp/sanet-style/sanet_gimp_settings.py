"""The filter's settings: parse and check the procedure arguments into one plain object.

Pure Python (no GIMP): the same rules hold for the dialog, RUN_NONINTERACTIVE and RUN_WITH_LAST_VALS, and
they are unit-tested outside GIMP. Every error names the argument and says what was expected.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from sanet_gimp_job import import_client

# one definition, in sanet_client.protocol (shipped next to the plug-in): the engine and the daemon use the same
_PROTOCOL = import_client().protocol
MAX_STYLES = _PROTOCOL.MAX_STYLES                       # the daemon's limit (hello limits.max_styles)
SCSA_DEFAULT_WEIGHTS = _PROTOCOL.DEFAULT_SCSA_WEIGHTS   # t1 (SCA), t2 (SSA)
SCSA_WEIGHT_MAX = _PROTOCOL.SCSA_WEIGHT_MAX             # the protocol's range for each of t1, t2
STYLE_MAX_SIDE = _PROTOCOL.DEFAULT_STYLE_MAX_SIDE       # the engine's style size
STYLE_MAX_SIDE_MIN = _PROTOCOL.STYLE_MAX_SIDE_MIN       # the protocol's smallest style_max_side
STYLE_MAX_SIDE_MAX = _PROTOCOL.STYLE_MAX_SIDE_MAX       # the protocol's largest style_max_side
MODELS = _PROTOCOL.MODELS                               # model name -> short name (SANet, AdaAttN)
DEFAULT_MODEL = _PROTOCOL.DEFAULT_MODEL
STYLE_KEYS = _PROTOCOL.STYLE_KEYS                       # AdaAttN: "sampled" (released) | "all" (full attention)
DEFAULT_STYLE_KEYS = _PROTOCOL.DEFAULT_STYLE_KEYS
QUALITIES = _PROTOCOL.QUALITIES                         # "exact" (the default: fp32 results) | "fast"
DEFAULT_QUALITY = QUALITIES[0]
ALL_CHANNELS = "*"                  # content-labels-channels: every saved channel, in the Channels panel order
NO_LABELS = ("", "none", "-")       # a style-label-files item that means "this style has no label map"


class SettingsError(ValueError):
    """An argument is wrong; ``str(e)`` names it and says what was expected."""


@dataclass(frozen=True)
class StyleSpec:
    kind: str        # "file" | "layer" | "library"
    value: object    # path (str) | layer id (int) | library style id (str)
    label: str       # short name for the new layer
    weight: float = 1.0
    labels_file: str | None = None   # SCSA: this style's label-map image (at the style's size), or None
    labels_layer: tuple | None = None  # SCSA, style-layer only: (layer id, name) of its label-map layer


@dataclass(frozen=True)
class Settings:
    styles: tuple = field(default_factory=tuple)   # StyleSpec, in argument order
    alpha: float = 1.0
    preserve_color: bool = False
    preview: bool = False
    only_in_selection: bool = True
    style_max_side: int | None = None
    connection_file: str | None = None
    start_daemon: bool = False
    # SCSA semantic transfer: the content label map comes from ONE of these (None / () = none)
    content_labels_layer: tuple | None = None      # (layer id, layer name): a colour-coded label layer
    content_labels_channels: tuple = ()            # saved channel names, label k+1 = channel k; ("*",) = all
    scsa_weights: tuple = SCSA_DEFAULT_WEIGHTS
    model: str = DEFAULT_MODEL                     # "sanet" | "adaattn"
    style_keys: str = DEFAULT_STYLE_KEYS           # AdaAttN's style keys ("sampled" | "all"); SANet ignores it
    quality: str = DEFAULT_QUALITY                 # "exact" | "fast": the full-size run's precision (previews: auto)

    @property
    def semantic(self) -> bool:
        """True when the run uses label maps (SCSA)."""
        return self.content_labels_layer is not None or bool(self.content_labels_channels)

    @property
    def label_format(self) -> str:
        """How every label map is sent: colours ("rgba8") with a label layer, integers ("u8") with channels,
        so that content and style labels mean the same thing."""
        return "u8" if self.content_labels_channels else "rgba8"


def split_list(text) -> list:
    """Items of a comma/semicolon/newline separated string (or a list of strings), blanks dropped."""
    if text is None:
        return []
    if isinstance(text, (list, tuple)):
        items = [str(t) for t in text]
    else:
        items = re.split(r"[,;\n]", str(text))
    return [t.strip() for t in items if t and t.strip()]


def split_paths(value) -> list:
    """File paths from a string list, or from a string with one path per line (paths may hold ',' or ';')."""
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else str(value).splitlines()
    return [str(p).strip() for p in items if p and str(p).strip()]


def parse_weights(text, count: int) -> list:
    """Weights for ``count`` styles: empty means equal; otherwise exactly ``count`` numbers >= 0, not all 0."""
    items = split_list(text)
    if not items:
        return [1.0] * count
    if len(items) != count:
        raise SettingsError(f"style-weights: {len(items)} weight(s) given for {count} style(s); give one "
                            f"number per style (style-file, style-files…, style-layer, library-styles…) "
                            f"or leave it empty for equal weights")
    weights = []
    for i, item in enumerate(items):
        try:
            w = float(item)
        except ValueError:
            raise SettingsError(f"style-weights: item {i + 1} ({item!r}) is not a number") from None
        if not (w >= 0.0) or w == float("inf"):
            raise SettingsError(f"style-weights: item {i + 1} ({item!r}) must be a finite number >= 0")
        weights.append(w)
    if sum(weights) <= 0:
        raise SettingsError("style-weights: at least one weight must be greater than 0")
    return weights


def parse_label_files(value, count: int) -> list:
    """One label-map path (or None) per style from a string list, or a string with one item per line.

    Empty (or only ''/none items): no style has labels. Otherwise exactly ``count`` items, in the style order;
    '' / 'none' / '-' marks a style without a label map."""
    if value is None:
        return [None] * count
    items = list(value) if isinstance(value, (list, tuple)) else str(value).splitlines()
    paths = [None if str(p).strip().lower() in NO_LABELS else str(p).strip() for p in items]
    if not any(paths):
        return [None] * count
    if len(paths) != count:
        raise SettingsError(f"style-label-files: {len(paths)} item(s) given for {count} style(s); give one label "
                            f"map per style in the order style-file, style-files…, style-layer, library-styles… "
                            f"('' or 'none' for a style without one), or none at all")
    return paths


def parse_channel_names(text) -> tuple:
    """Saved channel names for content-labels-channels ('*' alone: every saved channel)."""
    names = split_list(text)
    if ALL_CHANNELS in names and names != [ALL_CHANNELS]:
        raise SettingsError("content-labels-channels: '*' (every saved channel) cannot be mixed with names")
    return tuple(names)


def parse_scsa_weights(t1, t2) -> tuple:
    out = []
    for name, v in (("scsa-t1", t1), ("scsa-t2", t2)):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise SettingsError(f"{name}: {v!r} is not a number") from None
        if not (0.0 <= f <= SCSA_WEIGHT_MAX):
            raise SettingsError(f"{name}: {f:g} is outside 0..{SCSA_WEIGHT_MAX:g}")
        out.append(f)
    return tuple(out)


def parse_model(model, style_keys) -> tuple:
    """(model, style_keys) from the arguments: empty means the defaults (SANet, the released key subsampling)."""
    base, variant = _PROTOCOL.split_model(str(model or "").strip())
    name = (base.lower() or DEFAULT_MODEL) if variant is None else f"{base.lower()}{_PROTOCOL.VARIANT_SEPARATOR}{variant}"
    if variant is not None and base.lower() in MODELS and _PROTOCOL.variant_name_problem(variant):
        raise SettingsError(f"model: {model!r}: {_PROTOCOL.variant_name_problem(variant)}")
    if _PROTOCOL.model_problem(name):
        raise SettingsError(f"model: {model!r} is not a model; expected one of {', '.join(MODELS)}, or an installed "
                            f"variant MODEL{_PROTOCOL.VARIANT_SEPARATOR}NAME (e.g. sanet{_PROTOCOL.VARIANT_SEPARATOR}"
                            f"my-style)")
    keys = str(style_keys or "").strip().lower() or DEFAULT_STYLE_KEYS
    if keys not in STYLE_KEYS:
        raise SettingsError(f"style-keys: {style_keys!r}; expected one of {', '.join(STYLE_KEYS)} (AdaAttN's style "
                            f"keys: the released subsampling of large styles, or all of them)")
    return name, keys


def parse_quality(quality) -> str:
    """The quality argument: empty means exact (runs saved before the argument existed)."""
    q = str(quality or "").strip().lower() or DEFAULT_QUALITY
    if q not in QUALITIES:
        raise SettingsError(f"quality: {quality!r}; expected one of {', '.join(QUALITIES)} (fast: the device's "
                            f"fast precision, bf16 on CPUs with bf16 units)")
    return q


def style_label(path: str) -> str:
    """A layer-name friendly label for a style image path: its file name without extension."""
    base = os.path.basename(str(path).rstrip("/\\")) or str(path)
    stem, _ = os.path.splitext(base)
    return stem or base


def build_settings(*, style_file=None, style_files=(), style_layer=None, library_styles="",
                   style_weights="", alpha=1.0, preserve_color=False, preview=False,
                   only_in_selection=True, style_max_side=0, connection_file="", start_daemon=False,
                   library_names=None, content_labels_layer=None, content_labels_channels="",
                   style_label_files=(), style_label_layer=None, scsa_t1=SCSA_DEFAULT_WEIGHTS[0],
                   scsa_t2=SCSA_DEFAULT_WEIGHTS[1], model=DEFAULT_MODEL, style_keys=DEFAULT_STYLE_KEYS,
                   quality=DEFAULT_QUALITY) -> Settings:
    """Check every argument and gather the styles in a fixed order: style-file, style-files, style-layer,
    library-styles.

    ``style_layer`` is (layer id, layer name) or None. ``library_names`` maps library ids to display names
    when the caller knows them. SCSA: ``content_labels_layer`` is (layer id, layer name) or None;
    ``content_labels_channels`` names saved channels; ``style_label_files`` has one item per style;
    ``style_label_layer`` is (layer id, layer name) or None: the label map of the style-layer style.
    ``model``: "sanet" | "adaattn" ('' = SANet); ``style_keys``: AdaAttN's "sampled" | "all" ('' = sampled).
    ``quality``: "exact" | "fast" ('' = exact).
    """
    model, style_keys = parse_model(model, style_keys)
    quality = parse_quality(quality)
    specs = []
    if style_file:
        specs.append(("file", str(style_file), style_label(style_file)))
    for p in split_paths(style_files):
        specs.append(("file", p, style_label(p)))
    if style_layer is not None:
        layer_id, layer_name = style_layer
        specs.append(("layer", int(layer_id), str(layer_name or f"layer {layer_id}")))
    for sid in split_list(library_styles):
        if not re.match(r"^[A-Za-z0-9_.:-]{1,64}$", sid):
            raise SettingsError(f"library-styles: {sid!r} is not a style id (letters, digits, _ . : - only); "
                                f"see `sanet-client styles` for the ids")
        specs.append(("library", sid, (library_names or {}).get(sid, sid)))
    if not specs:
        raise SettingsError("no style given: set style-file, style-files, style-layer or library-styles")
    if len(specs) > MAX_STYLES:
        raise SettingsError(f"{len(specs)} styles given; at most {MAX_STYLES} can be mixed")
    weights = parse_weights(style_weights, len(specs))
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise SettingsError(f"alpha: {alpha!r} is not a number") from None
    if not (0.0 <= alpha <= 1.0):
        raise SettingsError(f"alpha: {alpha:g} is outside 0..1")
    side = int(style_max_side or 0)
    if side < 0:
        raise SettingsError(f"style-max-side: {side} must be 0 (daemon default) or a positive size")
    label_files = parse_label_files(style_label_files, len(specs))
    label_layers = [None] * len(specs)
    if style_label_layer is not None:
        kinds = [k for k, _, _ in specs]
        if "layer" not in kinds:
            raise SettingsError("style-label-layer is the label map of the style-layer style, but style-layer is "
                                "not set")
        at = kinds.index("layer")
        if label_files[at]:
            raise SettingsError(f"the style layer has a label map from both style-label-layer and "
                                f"style-label-files (item {at + 1}); give one of them")
        label_layers[at] = (int(style_label_layer[0]), str(style_label_layer[1] or f"layer {style_label_layer[0]}"))
    has_style_labels = any(label_files) or any(label_layers)
    channels = parse_channel_names(content_labels_channels)
    if content_labels_layer is not None:
        layer_id, layer_name_ = content_labels_layer
        content_labels_layer = (int(layer_id), str(layer_name_ or f"layer {layer_id}"))
    if content_labels_layer is not None and channels:
        raise SettingsError("content-labels-layer and content-labels-channels are both set; the content label "
                            "map comes from one of them: clear the other")
    has_content = content_labels_layer is not None or bool(channels)
    if has_content and not has_style_labels:
        raise SettingsError("a content label map is set but no style has one: give style-label-files (one label "
                            "map per style) or style-label-layer, or clear content-labels-layer / "
                            "content-labels-channels")
    if has_style_labels and not has_content:
        raise SettingsError("a style label map is set but the layer has none: set content-labels-layer "
                            "(a colour-coded label layer) or content-labels-channels (saved selections)")
    scsa = parse_scsa_weights(scsa_t1, scsa_t2)
    styles = tuple(StyleSpec(k, v, label, w, f, ll)
                   for (k, v, label), w, f, ll in zip(specs, weights, label_files, label_layers))
    return Settings(styles=styles, alpha=alpha, preserve_color=bool(preserve_color), preview=bool(preview),
                    only_in_selection=bool(only_in_selection), style_max_side=side or None,
                    connection_file=(str(connection_file).strip() or None) if connection_file else None,
                    start_daemon=bool(start_daemon), content_labels_layer=content_labels_layer,
                    content_labels_channels=channels, scsa_weights=scsa, model=model, style_keys=style_keys,
                    quality=quality)


def with_library_names(settings: Settings, names: dict) -> Settings:
    """The same settings with library styles labelled by their names (the ids are content hashes)."""
    from dataclasses import replace
    styles = tuple(replace(s, label=str(names.get(s.value) or s.label)) if s.kind == "library" else s
                   for s in settings.styles)
    return replace(settings, styles=styles)


def result_layer_name(settings: Settings, result_name, precision=None) -> str:
    """Name of the new layer, made by ``sanet_client.naming.result_name`` (the same names as in Krita): the
    style(s) with a weight above 0, the model (its short name: SANet, AdaAttN), and what differs from a plain
    full run (``precision``: the result's info "precision"; "fast" when it was bf16 / fp16)."""
    active = [s for s in settings.styles if s.weight > 0] or list(settings.styles)
    return result_name([s.label for s in active], model=_PROTOCOL.model_display(settings.model), alpha=settings.alpha,
                       preserve_color=settings.preserve_color, preview=settings.preview,
                       semantic=settings.semantic, precision=precision)


# ----------------------------------------------------------------------------------------------- dialog choices
# The dialog shows sizes as named choices; the procedure arguments stay plain numbers (scripts keep working).

# style-max-side: the engine shrinks larger styles to this long side. A smaller style image makes the copied
# texture (brush strokes, patterns) smaller on the layer; a larger one makes it bolder (and costs more time).
STYLE_SIZE_CHOICES = (
    (512, "Small: finer texture"),
    (0, "Standard"),                        # 0 = the daemon's default (protocol.DEFAULT_STYLE_MAX_SIDE)
    (1536, "Large: bolder texture"),
    (2048, "Huge: boldest texture, slower"),
)
# long side of the preview the daemon renders (the pane shows it scaled to fit)
PREVIEW_SIZE_CHOICES = (
    (256, "Small: fastest"),
    (512, "Medium"),
    (768, "Large: more detail, slower"),
)
DEFAULT_PREVIEW_SIZE = 512

# the model row: sanet_client.naming's choices (shared with Krita), as GTK combo ids "model:style_keys"
import_client()
from sanet_client import naming as _NAMING  # noqa: E402  (found through import_client's search path)
MODEL_CHOICES = tuple((f"{m}:{k}", text) for m, k, text in _NAMING.MODEL_CHOICES)
MODEL_TOOLTIP = _NAMING.MODEL_TOOLTIP


def model_choice(model, style_keys) -> str:
    """The model row's id for these arguments (SANet ignores style keys: one entry)."""
    model, style_keys = parse_model(model, style_keys)
    return ":".join(_NAMING.model_choice(model, style_keys))


def model_args(choice: str) -> dict:
    """The procedure arguments of a model row id ("adaattn:all" → model adaattn, style-keys all)."""
    model, _, keys = str(choice).rpartition(":")    # "sanet:my-style:sampled": a variant's id has a ':' itself
    model, keys = parse_model(model, keys)
    return {"model": model, "style-keys": keys}


def model_choices(installed=None) -> list:
    """(id, text) of the model row; a model the daemon lists as not installed says so (it cannot run)."""
    return [(f"{m}:{k}", text) for m, k, text in _NAMING.model_choices(installed)]


# the quality row: sanet_client.naming's entries (shared with Krita), enabled by sanetd's hello "fast_precision"
QUALITY_TOOLTIP = _NAMING.QUALITY_TOOLTIP


def fast_precision_of(hello) -> tuple:
    """(known, fast precision) from sanetd's hello: (False, None) before a hello or from a daemon older than
    per-request precisions; else (True, capabilities["fast_precision"], None where the device has none)."""
    caps = (hello or {}).get("capabilities") if isinstance(hello, dict) else None
    if not isinstance(caps, dict) or "precisions" not in caps:
        return False, None
    return True, caps.get("fast_precision") or None


def quality_choices(hello=None) -> list:
    """(quality, text, enabled) of the quality row for this hello (None: sanetd not known yet)."""
    known, fast = fast_precision_of(hello)
    return _NAMING.quality_choices(fast, known=known)


def quality_note(hello=None) -> str:
    known, fast = fast_precision_of(hello)
    return _NAMING.quality_note(fast, known=known)


def shown_quality(quality, hello=None) -> str:
    """What the row shows for the argument: Exact where sanetd has no fast precision (the run is exact there; the
    argument keeps "fast" for a sanetd that has one)."""
    try:
        q = parse_quality(quality)
    except SettingsError:
        return DEFAULT_QUALITY
    enabled = {k: on for k, _, on in quality_choices(hello)}
    return q if enabled.get(q) else DEFAULT_QUALITY


def size_choices(choices, value: int) -> list:
    """The named choices, plus "Custom: N px" for a value a script set that none of them has."""
    out = list(choices)
    value = int(value or 0)
    if value not in [v for v, _ in out]:
        out.append((value, f"Custom: {value} px"))
    return out


# ----------------------------------------------------------------------------------------------- the style mix
# The dialog shows every style of a run as one list (thumbnail, name, weight slider); the procedure keeps its
# arguments, in their fixed order: style-file, style-files…, style-layer, library-styles…

@dataclass(frozen=True)
class MixEntry:
    kind: str        # "file" | "layer" | "library"
    value: object    # path (str) | layer id (int) | library style id (str)
    label: str
    weight: float = 1.0


_KIND_ORDER = {"file": 0, "layer": 1, "library": 2}


def mix_from_args(style_file=None, style_files=(), style_layer=None, library_styles="", style_weights="",
                  library_names=None) -> list:
    """The dialog's style list from the arguments. Never raises: weights that do not fit the styles (a
    hand-edited file, a script's typo) become equal weights; the run itself still checks the arguments.
    Weights are scaled so that the largest is 1 (they are relative: the engine normalises them)."""
    entries = []
    for p in ([style_file] if style_file else []) + split_paths(style_files):
        if not any(e.kind == "file" and e.value == p for e in entries):
            entries.append(MixEntry("file", p, style_label(p)))
    if style_layer is not None:
        layer_id, layer_name_ = style_layer
        entries.append(MixEntry("layer", int(layer_id), str(layer_name_ or f"layer {layer_id}")))
    for sid in split_list(library_styles):
        if not any(e.kind == "library" and e.value == sid for e in entries):
            entries.append(MixEntry("library", sid, str((library_names or {}).get(sid) or sid)))
    try:
        weights = parse_weights(style_weights, len(entries)) if entries else []
    except SettingsError:
        weights = [1.0] * len(entries)
    top = max(weights, default=1.0) or 1.0
    return [MixEntry(e.kind, e.value, e.label, w / top) for e, w in zip(entries, weights)]


def sort_mix(entries) -> list:
    """Entries in argument order (files, the layer, library styles); a stable sort keeps the artist's order
    within each kind."""
    return sorted(entries, key=lambda e: _KIND_ORDER[e.kind])


def format_weights(weights) -> str:
    """style-weights for these weights: empty when they are all equal (the default), else one number each."""
    weights = [float(w) for w in weights]
    if not weights or all(abs(w - weights[0]) < 1e-9 for w in weights):
        return ""
    return ", ".join(f"{round(w, 4):g}" for w in weights)


def args_from_mix(entries) -> dict:
    """The procedure arguments for a style list (the dialog writes these into the config).

    Every file goes to style-files (style-file is left empty), so the file order is the artist's."""
    entries = sort_mix(entries)
    layers = [e for e in entries if e.kind == "layer"]
    if len(layers) > 1:
        raise SettingsError("only one style can come from a layer (style-layer)")
    return {"style-file": None,
            "style-files": [str(e.value) for e in entries if e.kind == "file"],
            "style-layer": layers[0].value if layers else None,
            "library-styles": ", ".join(str(e.value) for e in entries if e.kind == "library"),
            "style-weights": format_weights([e.weight for e in entries])}


# ----------------------------------------------------------------------------------------------- last values
# GIMP only remembers the values of INTERACTIVE runs; scripted runs must be repeatable too, so the plug-in keeps
# the arguments of its last successful run (any run mode) in a small JSON file in the GIMP profile.

LAST_VALUE_TYPES = {
    "style-file": str, "style-files": list, "style-layer": int, "library-styles": str, "style-weights": str,
    "alpha": float, "preserve-colors": bool, "preview": bool, "only-in-selection": bool, "style-max-side": int,
    "connection-file": str, "start-daemon": bool,
    "content-labels-layer": int, "content-labels-channels": str, "style-label-files": list,
    "style-label-layer": int, "scsa-t1": float, "scsa-t2": float, "model": str, "style-keys": str, "quality": str,
    # the dialog's own settings (not procedure arguments)
    "dialog-preview-size": int, "dialog-live-preview": bool,
}
DIALOG_ONLY = ("dialog-preview-size", "dialog-live-preview")


def clean_last_values(values) -> dict:
    """Only known keys with the right types (a hand-edited or older file never breaks the filter)."""
    out = {}
    if not isinstance(values, dict):
        return out
    for key, kind in LAST_VALUE_TYPES.items():
        if key not in values or values[key] is None:
            continue
        v = values[key]
        if kind is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
        elif kind is int and isinstance(v, int) and not isinstance(v, bool):
            out[key] = v
        elif kind is list and isinstance(v, list) and all(isinstance(p, str) for p in v):
            out[key] = list(v)
        elif kind in (str, bool) and isinstance(v, kind):
            out[key] = v
    return out


def save_last_values(path: str, values: dict) -> None:
    import json
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(clean_last_values(values), f, indent=1)
    os.replace(tmp, path)


def load_last_values(path: str) -> dict:
    import json
    try:
        with open(path, encoding="utf-8") as f:
            return clean_last_values(json.load(f))
    except (OSError, ValueError):
        return {}


# ----------------------------------------------------------------------------------------------- server choice
# "Server" in the dialog: this computer (the sanetd found automatically) or a connection file (a shared server's,
# from `sanetd invite`, or another local sanetd's). It is a preference of the GIMP profile, not of one run: kept in
# its own small file and applied whenever the dialog opens, even when the last dialog was cancelled.

def save_server_choice(path: str, connection_file: str | None) -> None:
    import json
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"connection-file": str(connection_file or "")}, f, indent=1)
    os.replace(tmp, path)


def load_server_choice(path: str) -> str | None:
    """The remembered connection file: "" for this computer, a path, or None when nothing was chosen yet."""
    import json
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f).get("connection-file")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
