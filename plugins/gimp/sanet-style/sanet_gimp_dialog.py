"""The Style Transfer dialog: a live preview beside the settings, sanetd's state on top, and OK running the
full-size job with its progress in the dialog (Cancel stops that job at once and goes back to the settings).

Built on GimpUi.ProcedureDialog, so GIMP's Reset, Load Saved Settings and Save Settings work on the procedure's
arguments, with a hand-built layout (like G'MIC-Qt's filter dialog). The settings live in the procedure's
config: widgets made by the ProcedureDialog follow it by themselves; the style list, the size choices and the
region maps are written into it here and re-read when it changes (Reset, Load Saved Settings).

Threads: the daemon monitor, the preview worker and the full-size job talk to sanetd; they report through
GLib.idle_add, so GTK and libgimp are only ever used on the main thread.

Layout (a model or quality choice is one more row of the settings grid, ``_add_row``; the Server choice — this
computer, or a connection file such as a shared server's from `sanetd invite` — is under Advanced, remembered per
GIMP profile in sanet-style/server.json):

    ┌ (i) sanetd is ready: SANet and AdaAttN on the CPU.                       [Start sanetd] ┐
    │ ┌ preview ─────────────┐   Styles: library thumbnails (click to use, right-click remove) │
    │ │                      │   [Add image…]  Style from a layer [Browse…]                   │
    │ │                      │   In use: thumbnail, name, weight, [Add to library], ✕        │
    │ │                      │   Strength ───●──                                              │
    │ │                      │   Style size [Standard ▾]                                      │
    │ └──────────────────────┘   Model      [SANet ▾]   (SANet, AdaAttN, AdaAttN full attention) │
    │                            Quality    [Exact ▾]   (Exact / Fast: greyed where sanetd has no │
    │                            what Fast means here, or why it is not offered    fast precision) │
    │ [✓] Preview  Preview size [Medium ▾]  [Show before]   [ ] Preserve colours …            │
    │ status line                                      ▸ Semantic (SCSA)   ▸ Advanced          │
    │ progress of the full-size run / messages                                                 │
    │ Load Saved Settings  Save Settings                                                       │
    └ Help                                                               Reset  Cancel  OK    ┘
"""
import hashlib
import os
import threading
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import GdkPixbuf, Gimp, GimpUi, GLib, GObject, Gtk  # noqa: E402

import sanet_gimp_io as io  # noqa: E402
from sanet_gimp_daemon import (FAILED, INCOMPATIBLE, NOT_RUNNING, RUNNING, STARTING, DaemonMonitor,  # noqa: E402
                               DaemonState, find_sanetd, installed_models)
from sanet_gimp_job import Job, PluginError, import_client  # noqa: E402
from sanet_gimp_job import emit_event as _event  # noqa: E402
from sanet_gimp_preview import PreviewWorker, preview_geometry  # noqa: E402
from sanet_gimp_settings import (DEFAULT_PREVIEW_SIZE, NO_LABELS, PREVIEW_SIZE_CHOICES,  # noqa: E402
                                 MODEL_TOOLTIP, QUALITY_TOOLTIP, STYLE_SIZE_CHOICES, MixEntry, SettingsError, args_from_mix,
                                 mix_from_args, model_args, model_choice, model_choices, parse_weights,
                                 fast_precision_of, quality_choices, quality_note, shown_quality,
                                 save_server_choice, size_choices, sort_mix, split_list, style_label)

TITLE = "Style Transfer"
PANE = 440                 # the preview pane's side in pixels
PREVIEW_DELAY_MS = 300     # debounce: a preview starts this long after the last change
MAX_ZOOM = 4.0             # a small selection is shown enlarged at most this much
THUMB = 56                 # library thumbnails in the gallery
ROW_THUMB = 40             # thumbnails in the list of styles in use
CANCEL_GRACE_S = 3.0       # after Cancel, the dialog waits this long for sanetd to confirm, then moves on
PREVIEW_CLIENT_TIMEOUT_S = 5.0

STYLE_PROPS = ("style-file", "style-files", "style-layer", "library-styles", "style-weights", "style-label-files")
NO_PREVIEW_PROPS = ("connection-file", "start-daemon", "preview", "quality")   # previews: sanetd's auto precision


def run_dialog(procedure, config, image, drawable, last_values):
    """Show the dialog; (run, result, dialog values) after a finished OK, None on Cancel."""
    GimpUi.init("sanet-style")
    ui = StyleTransferDialog(procedure, config, image, drawable, last_values)
    try:
        return ui.run()
    finally:
        ui.close()


def _label(text, *, wrap=True, chars=60, dim=False, markup=False, selectable=False):
    """A left-aligned label that wraps instead of widening the dialog."""
    lab = Gtk.Label(xalign=0.0, wrap=wrap, max_width_chars=chars, width_chars=min(chars, 20) if wrap else -1,
                    selectable=selectable)
    if wrap:
        lab.set_line_wrap_mode(2)   # Pango.WrapMode.WORD_CHAR: long paths break too
    if markup:
        lab.set_markup(text)
    else:
        lab.set_text(text)
    if dim:
        lab.get_style_context().add_class("dim-label")
    return lab


def _pixbuf_from_rgba(data, w, h):
    return GdkPixbuf.Pixbuf.new_from_bytes(GLib.Bytes.new(bytes(data)), GdkPixbuf.Colorspace.RGB, True, 8, w, h,
                                          w * 4)


def _pixbuf_from_png(data, size=None):
    loader = GdkPixbuf.PixbufLoader()
    try:
        loader.write(bytes(data))
        loader.close()
    except GLib.Error:
        return None
    pix = loader.get_pixbuf()
    return _fit(pix, size) if (pix is not None and size) else pix


def _fit(pix, size, max_zoom=1.0, checks=True):
    """``pix`` scaled to fit a size×size square (enlarged at most ``max_zoom``), over checks when it has alpha."""
    w, h = pix.get_width(), pix.get_height()
    k = min(size / float(w), size / float(h), max_zoom)
    dw, dh = max(1, int(round(w * k))), max(1, int(round(h * k)))
    interp = GdkPixbuf.InterpType.NEAREST if k >= 2 else GdkPixbuf.InterpType.BILINEAR
    if pix.get_has_alpha() and checks:
        return pix.composite_color_simple(dw, dh, interp, 255, 8, 0x666666, 0x999999)
    return pix.scale_simple(dw, dh, interp) if (dw, dh) != (w, h) else pix


def _file_thumbnail(path, size):
    try:
        return GdkPixbuf.Pixbuf.new_from_file_at_scale(path, size, size, True)
    except GLib.Error:
        return None   # a format only GIMP reads (xcf, psd, ...): the row shows an icon


def mnemonics_of(widget):
    """(label text, key) of every mnemonic in a widget tree (internal children included)."""
    found = []

    def walk(w):
        if isinstance(w, Gtk.Label) and w.get_use_underline():
            key = w.get_mnemonic_keyval()
            if key not in (0, 0xFFFFFF):
                found.append((w.get_label(), chr(key).lower() if key < 0x110000 else str(key)))
        if isinstance(w, Gtk.Container):
            w.forall(walk)
    walk(widget)
    return found


class StyleTransferDialog:
    def __init__(self, procedure, config, image, drawable, last_values):
        self.config = config
        self.image = image
        self.drawable = drawable
        self.client = import_client()
        self.last = dict(last_values or {})
        self.preview_size = int(self.last.get("dialog-preview-size") or DEFAULT_PREVIEW_SIZE)
        self.live = bool(self.last.get("dialog-live-preview", True))
        self.connection_file = config.get_property("connection-file") or None
        self.library = []                  # styles.list entries (id, name, width, height, thumbnail)
        self.library_thumbs = {}           # id -> pixbuf
        self.mix = []                      # MixEntry list in argument order
        self.label_maps = {}               # (kind, value) -> label-map path (SCSA style-label-files)
        self.daemon = DaemonState("checking", "Looking for sanetd…")
        self._writing = False              # we are writing the config ourselves: ignore its notifications
        self._debounce = None
        self._refresh_pending = False
        self._source = None                # PreviewSource cache: (key, source)
        self._source_pixbuf = None
        self._preview_pixbuf = None
        self._style_cache = {}
        self._preview_started = {}         # seq -> (t0, alpha)
        self._preview_count = 0
        self._job = None                   # the full-size run: (Job, Run, watchdog, cancel time)
        self._stage = None
        self._finished = None
        self._closed = False

        self.dialog = GimpUi.ProcedureDialog.new(procedure, config, TITLE)
        self.dialog.connect("response", self._on_response)   # before run(): it can hold OK and Cancel back
        # Escape and the window's close button end GIMP's dialog loop through "delete-event" even when the
        # response is held back: while a run goes on, they only cancel it (see _on_response)
        self.dialog.connect("delete-event", lambda *_: self._job is not None)
        self._build()
        self._read_config()
        try:
            parse_weights(config.get_property("style-weights") or "", len(self.mix))
        except SettingsError:   # weights that do not fit the styles (a script's): equal weights, as shown
            self._write({"style-weights": ""})
        config.connect("notify", self._on_config_notify)

        self.worker = PreviewWorker(self._make_preview_client, self._preview_finished_in_thread)
        self.monitor = DaemonMonitor(self._probe, lambda st: GLib.idle_add(self._daemon_changed, st),
                                     find=self._find_local_sanetd)

    # ------------------------------------------------------------------------------------------- layout

    def _build(self):
        d = self.dialog
        content = d.get_content_area()
        content.set_spacing(8)
        outer = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8, border_width=6)
        content.pack_start(outer, True, True, 0)

        # sanetd's state, with Start
        self.bar = Gtk.Frame()
        bar_box = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=8, border_width=6)
        self.bar.add(bar_box)
        self.bar_icon = Gtk.Image.new_from_icon_name("dialog-information", Gtk.IconSize.LARGE_TOOLBAR)
        self.bar_spinner = Gtk.Spinner()
        self.bar_spinner.set_no_show_all(True)
        bar_box.pack_start(self.bar_icon, False, False, 0)
        bar_box.pack_start(self.bar_spinner, False, False, 0)
        self.bar_label = _label("Looking for sanetd…", chars=90)
        bar_box.pack_start(self.bar_label, True, True, 0)
        self.start_button = Gtk.Button.new_with_mnemonic("Start sanet_d")
        self.start_button.set_valign(Gtk.Align.CENTER)
        self.start_button.set_tooltip_text("Start the sanetd the sanet-style installer set up; it keeps running "
                                           "for later runs and other images")
        self.start_button.connect("clicked", self._on_start_clicked)
        bar_box.pack_end(self.start_button, False, False, 0)
        outer.pack_start(self.bar, False, False, 0)

        main = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=16)
        outer.pack_start(main, True, True, 0)

        # left: the preview
        left = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        main.pack_start(left, False, False, 0)
        frame = Gtk.Frame(shadow_type=Gtk.ShadowType.IN)
        overlay = Gtk.Overlay()
        self.preview_image = Gtk.Image()
        self.preview_image.set_size_request(PANE, PANE)
        overlay.add(self.preview_image)
        self.busy = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6, halign=Gtk.Align.END,
                            valign=Gtk.Align.END, margin=6)
        self.busy.pack_start(Gtk.Spinner(active=True), False, False, 0)
        self.busy.pack_start(Gtk.Label(label="Rendering…"), False, False, 0)
        self.busy.set_no_show_all(True)
        overlay.add_overlay(self.busy)
        frame.add(overlay)
        left.pack_start(frame, False, False, 0)

        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=8)
        self.live_check = Gtk.CheckButton.new_with_mnemonic("_Preview")
        self.live_check.set_tooltip_text("Show the result here as you change the settings (nothing is added to "
                                         "the image until OK)")
        self.live_check.set_active(self.live)
        self.live_check.connect("toggled", self._on_live_toggled)
        row.pack_start(self.live_check, False, False, 0)
        size_label = Gtk.Label.new_with_mnemonic("Preview si_ze")
        self.preview_size_combo = self._combo(size_choices(PREVIEW_SIZE_CHOICES, self.preview_size),
                                              self.preview_size, self._on_preview_size)
        self.preview_size_combo.set_tooltip_text("How many pixels the preview has: more shows finer detail, "
                                                 "fewer is faster. OK always works at full size.")
        size_label.set_mnemonic_widget(self.preview_size_combo)
        row.pack_start(size_label, False, False, 0)
        row.pack_start(self.preview_size_combo, False, False, 0)
        self.before_button = Gtk.ToggleButton.new_with_mnemonic("Show _before")
        self.before_button.set_tooltip_text("Show the layer as it is, to compare")
        self.before_button.connect("toggled", lambda *_: self._show_preview())
        row.pack_end(self.before_button, False, False, 0)
        left.pack_start(row, False, False, 0)
        self.preview_status = _label("", chars=55, dim=True)
        left.pack_start(self.preview_status, False, False, 0)

        # right: the settings
        right = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        scroller = Gtk.ScrolledWindow(hscrollbar_policy=Gtk.PolicyType.NEVER,
                                      vscrollbar_policy=Gtk.PolicyType.AUTOMATIC)
        scroller.set_propagate_natural_height(True)
        scroller.set_max_content_height(800)   # taller content (many styles, Semantic open) scrolls
        scroller.set_min_content_width(400)
        scroller.add(right)
        main.pack_start(scroller, True, True, 0)
        self.settings_box = right
        self.scroller = scroller

        right.pack_start(_label("<b>Styles</b>", markup=True, wrap=False), False, False, 0)
        self.gallery = Gtk.FlowBox(selection_mode=Gtk.SelectionMode.NONE, max_children_per_line=5,
                                   min_children_per_line=3, homogeneous=True, column_spacing=4, row_spacing=4)
        self.gallery.set_size_request(-1, THUMB + 34)
        right.pack_start(self.gallery, False, False, 0)
        self.gallery_note = _label("", chars=55, dim=True)
        right.pack_start(self.gallery_note, False, False, 0)

        sources = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=8)
        add_button = Gtk.Button.new_with_mnemonic("_Add image…")
        add_button.set_tooltip_text("Use image files as styles (any format GIMP opens)")
        add_button.connect("clicked", self._on_add_images)
        sources.pack_start(add_button, False, False, 0)
        self.layer_chooser = self.dialog.get_widget("style-layer", GObject.TYPE_NONE)
        sources.pack_start(self.layer_chooser, False, False, 0)
        right.pack_start(sources, False, False, 0)

        right.pack_start(_label("<b>In use</b>", markup=True, wrap=False), False, False, 0)
        self.mix_list = Gtk.ListBox(selection_mode=Gtk.SelectionMode.NONE)
        self._button_column = Gtk.SizeGroup(mode=Gtk.SizeGroupMode.HORIZONTAL)
        right.pack_start(self.mix_list, False, False, 0)
        self.mix_note = _label("", chars=55, dim=True)
        right.pack_start(self.mix_note, False, False, 0)

        right.pack_start(Gtk.Separator(), False, False, 2)
        self.grid = Gtk.Grid(row_spacing=6, column_spacing=12)
        self._grid_rows = 0
        right.pack_start(self.grid, False, False, 0)
        alpha = self.dialog.get_scale_entry("alpha", 1.0)
        alpha.set_tooltip_text("How much style: 0 keeps the layer, 1 is full style")
        self.grid.attach(alpha, 0, self._next_row(), 2, 1)
        self.style_size_combo = self._combo(
            size_choices(STYLE_SIZE_CHOICES, self.config.get_property("style-max-side")),
            self.config.get_property("style-max-side"), self._on_style_size)
        self.style_size_combo.set_tooltip_text("How large the style's texture (brush strokes, patterns) comes out "
                                               "on the layer. Styles smaller than the choice keep their size.")
        self._add_row("Style s_ize", self.style_size_combo)
        # the model (SANet, AdaAttN, AdaAttN with full attention); the texts say which sanetd cannot run
        self.model_combo = Gtk.ComboBoxText()
        for cell in self.model_combo.get_cells():   # the row never widens the dialog
            cell.set_property("ellipsize", 3)         # Pango.EllipsizeMode.END
            cell.set_property("max-width-chars", 40)
        self._installed = None
        self._fill_model_combo()
        self.model_combo.connect("changed", self._on_model)
        self.model_combo.set_tooltip_text(MODEL_TOOLTIP)
        self._add_row("Mod_el", self.model_combo)   # e: the connection file (folded away) gave its mnemonic up
        # the quality of the full-size result: Exact (fp32) or Fast (sanetd's fast precision, from its hello);
        # insensitive, with the reason below, where sanetd has none. Previews always use sanetd's automatic choice.
        self._hello = None
        self.quality_combo = Gtk.ComboBoxText()
        self.quality_combo.set_tooltip_text(QUALITY_TOOLTIP)
        self._add_row("_Quality", self.quality_combo)
        self.quality_note = _label("", chars=55, dim=True)
        self.grid.attach(self.quality_note, 0, self._next_row(), 2, 1)
        self._fill_quality_combo()
        self.quality_combo.connect("changed", self._on_quality)
        for prop in ("preserve-colors", "only-in-selection"):
            widget = self.dialog.get_widget(prop, GObject.TYPE_NONE)
            self.grid.attach(widget, 0, self._next_row(), 2, 1)
        if Gimp.Selection.is_empty(self.image):
            widget.set_sensitive(False)
            widget.set_tooltip_text("Nothing is selected: the whole layer is stylized")

        # Semantic (SCSA), folded away unless in use
        self.scsa = Gtk.Expander(use_underline=True, label="Se_mantic (SCSA): regions to regions")
        self.scsa_box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, border_width=6)
        self.scsa.add(self.scsa_box)
        self.scsa_box.pack_start(_label(
            "Paint the layer's regions (sky, face, …) as flat colours on a layer of the same size, or save them as "
            "selection channels; give each style a region map of its own size in the same colours (or grey values "
            "1, 2, … for channels). Each region then takes its style only from the matching region.",
            chars=55, dim=True), False, False, 0)
        self.scsa_box.pack_start(self.dialog.get_widget("content-labels-layer", GObject.TYPE_NONE), False, False, 0)
        self.channel_box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=2)
        self.scsa_box.pack_start(self.channel_box, False, False, 0)
        self.style_maps_box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        self.scsa_box.pack_start(self.style_maps_box, False, False, 0)
        self.scsa_box.pack_start(self.dialog.get_widget("style-label-layer", GObject.TYPE_NONE), False, False, 0)
        for prop in ("scsa-t1", "scsa-t2"):
            self.scsa_box.pack_start(self.dialog.get_scale_entry(prop, 1.0), False, False, 0)
        right.pack_start(self.scsa, False, False, 0)
        self.scsa.connect("notify::expanded", lambda *_: GLib.idle_add(self._fit_height))
        self._build_channels()

        # Advanced: the server (this computer, or a connection file: a shared server's, from `sanetd invite`)
        adv = Gtk.Expander(use_underline=True, label="Ad_vanced")
        adv_box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, border_width=6)
        adv.add(adv_box)
        self.start_daemon_check = self.dialog.get_widget("start-daemon", GObject.TYPE_NONE)
        adv_box.pack_start(self._build_server(), False, False, 0)
        adv_box.pack_start(self.start_daemon_check, False, False, 0)
        self.start_daemon_check.set_sensitive(not self._remote())   # a shared server is started where it runs
        right.pack_start(adv, False, False, 0)
        adv.set_expanded(bool(self.connection_file))   # a connection file in use is never hidden
        adv.connect("notify::expanded", lambda *_: GLib.idle_add(self._fit_height))

        # the full-size run: its progress, in the dialog
        self.run_box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        self.progress = Gtk.ProgressBar(show_text=True)
        self.run_box.pack_start(self.progress, False, False, 0)
        self.run_box.set_no_show_all(True)
        outer.pack_start(self.run_box, False, False, 0)
        self.run_message = _label("", chars=110)
        self.run_message.set_no_show_all(True)
        outer.pack_start(self.run_message, False, False, 0)

    # ------------------------------------------------------------------------------------------- server

    def _build_server(self):
        """Server: (•) This computer  ( ) A connection file:
                   [file…                               ]
        and what the file leads to."""
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=8)
        row.pack_start(_label("Server:", wrap=False), False, False, 0)
        # Alt+J picks this computer, then ←/→ move within the choice (every letter of "This computer" is taken:
        # Help, Load…, and e by the Model row)
        self.server_local = Gtk.RadioButton.new_with_mnemonic(None, "_Just this computer")
        self.server_file = Gtk.RadioButton.new_with_label_from_widget(self.server_local, "A connection file:")
        self.server_chooser = Gtk.FileChooserButton(title="The connection file of a sanetd (a shared server's "
                                                          "from `sanetd invite`, or a sanetd.json)",
                                                    action=Gtk.FileChooserAction.OPEN)
        json_filter = Gtk.FileFilter()
        json_filter.set_name("Connection files (*.json)")
        json_filter.add_pattern("*.json")
        self.server_chooser.add_filter(json_filter)
        all_files = Gtk.FileFilter()
        all_files.set_name("All files")
        all_files.add_pattern("*")
        self.server_chooser.add_filter(all_files)
        self.server_chooser.set_width_chars(18)
        for w in (self.server_local, self.server_file):
            row.pack_start(w, False, False, 0)
        box.pack_start(row, False, False, 0)
        # the file on a line of its own: on one line with the choice it widened the dialog by ~100 px
        box.pack_start(self.server_chooser, False, False, 0)
        self.server_note = _label("", chars=45, dim=True)
        box.pack_start(self.server_note, False, False, 0)
        if self.connection_file:
            self.server_file.set_active(True)
            self.server_chooser.set_filename(self.connection_file)
        self._server_note()
        self.server_local.connect("toggled", self._on_server_toggled)
        self.server_chooser.connect("file-set", self._on_server_file_set)
        return box

    def _server_note(self):
        """What the chosen server is, in words (or why the file cannot be used)."""
        from sanet_client import connect
        try:
            text = f"Server: {connect.server_label(self.connection_file)}."
        except self.client.SanetClientError as exc:
            text = str(exc)
        if not self.connection_file:
            text = ("Server: this computer (the sanetd running for you here). A connection file from "
                    "`sanetd invite` uses a shared server instead.")
        self.server_note.set_text(text)
        if getattr(self, "start_daemon_check", None) is not None:
            self.start_daemon_check.set_sensitive(not self._remote())

    def _on_server_toggled(self, _button):
        if self.server_local.get_active():
            self._set_server("")
        elif self.server_chooser.get_filename():
            self._set_server(self.server_chooser.get_filename())
        else:
            self.server_chooser.grab_focus()

    def _on_server_file_set(self, chooser):
        path = chooser.get_filename() or ""
        if path and not self.server_file.get_active():
            self.server_file.set_active(True)    # toggled → _set_server
        else:
            self._set_server(path)

    def _set_server(self, path):
        if (path or None) == self.connection_file:
            return
        self.config.set_property("connection-file", path)   # _on_config_notify: the monitor looks again
        try:
            save_server_choice(io.server_choice_path(), path)
        except OSError:
            pass   # remembering the choice is a convenience
        self._server_note()
        _event("server", connection_file=path or None)

    def _remote(self) -> bool:
        if not self.connection_file:
            return False
        try:
            from sanet_client import connect
            return connect.read_connection_file(self.connection_file).remote
        except Exception:  # noqa: BLE001  an unreadable file is reported by the probe
            return False

    def _find_local_sanetd(self):
        """The sanetd the Start button would launch; none for a shared server (it runs elsewhere)."""
        return None if self._remote() else find_sanetd()

    def _next_row(self):
        self._grid_rows += 1
        return self._grid_rows - 1

    def _add_row(self, mnemonic_label, widget):
        """One labelled row of the settings grid (a model or quality choice fits here the same way)."""
        lab = Gtk.Label.new_with_mnemonic(mnemonic_label)
        lab.set_xalign(0.0)
        lab.set_mnemonic_widget(widget)
        r = self._next_row()
        self.grid.attach(lab, 0, r, 1, 1)
        self.grid.attach(widget, 1, r, 1, 1)
        widget.set_hexpand(True)
        return lab

    def _model_id(self):
        c = self.config
        try:
            return model_choice(c.get_property("model"), c.get_property("style-keys"))
        except SettingsError:
            return None   # a script's value that is not a model: the run says so; the row shows nothing

    def _fill_model_combo(self):
        """The model row's entries (marked when sanetd lacks their weights) and the config's choice."""
        combo = self.model_combo
        combo.remove_all()
        for cid, text in model_choices(self._installed):
            combo.append(cid, text)
        combo.set_active_id(self._model_id())

    def _on_model(self, combo):
        cid = combo.get_active_id()
        if cid is not None and cid != self._model_id():
            self._write(model_args(cid))
            _event("model", model=self.config.get_property("model"), style_keys=self.config.get_property("style-keys"))

    def _fill_quality_combo(self):
        """Exact / Fast as sanetd's hello allows, the config's choice (Exact shown where Fast cannot run), the
        note."""
        combo = self.quality_combo
        choices = quality_choices(self._hello)
        combo.remove_all()
        for quality, text, _enabled in choices:
            combo.append(quality, text)
        combo.set_active_id(shown_quality(self.config.get_property("quality"), self._hello))
        combo.set_sensitive(all(enabled for _, _, enabled in choices))
        self.quality_note.set_text(quality_note(self._hello))

    def _on_quality(self, combo):
        quality = combo.get_active_id()
        if quality is not None and quality != (self.config.get_property("quality") or ""):
            self._writing = True      # not _write: the previews do not depend on it (they stay auto)
            try:
                self.config.set_property("quality", quality)
            finally:
                self._writing = False
            _event("quality", quality=quality)

    def _combo(self, choices, active, on_changed):
        combo = Gtk.ComboBoxText()
        for value, text in choices:
            combo.append(str(value), text)
        combo.set_active_id(str(int(active or 0)))
        combo.connect("changed", on_changed)
        return combo

    def _build_channels(self):
        """One check button per saved channel of the image (SCSA region map from selections)."""
        for child in self.channel_box.get_children():
            child.destroy()
        channels = [c.get_name() for c in self.image.get_channels()]
        self.channel_checks = {}
        if not channels:
            return
        self.channel_box.pack_start(_label("Or regions from saved selections (Select → Save to Channel), numbered in "
                                           "the order you tick them:", chars=55), False, False, 0)
        for name in channels:
            check = Gtk.CheckButton(label=name, use_underline=False)
            check.connect("toggled", self._on_channel_toggled)
            self.channel_checks[name] = check
            self.channel_box.pack_start(check, False, False, 0)

    # ------------------------------------------------------------------------------------------- run

    def run(self):
        self._refresh_mix()
        self.dialog.show_all()
        self.start_button.hide()
        ok = self.dialog.get_widget_for_response(Gtk.ResponseType.OK)
        if ok is not None:   # Return is OK (a focused toggle or check button would eat it)
            ok.grab_focus()
        self.scsa.set_expanded(self._semantic_in_use())
        self._show_source()
        self.monitor.run()
        GLib.idle_add(self._report_opened)
        ok = self.dialog.run()
        if ok and self._finished is not None:
            run, result = self._finished
            return run, result, {"dialog-preview-size": self.preview_size, "dialog-live-preview": self.live}
        return None

    def close(self):
        self._closed = True
        self.monitor.close(timeout=1.0)
        self.worker.close(timeout=2.0)
        if self._job is not None:     # the dialog is closed while a job runs (should not happen): stop it
            self._job[0].cancel_event.set()
            if self._job[2] is not None:
                self._job[2].close()
        self.dialog.destroy()

    def _report_opened(self):
        alloc = self.dialog.get_allocation()
        _event("opened", width=alloc.width, height=alloc.height, mnemonics=mnemonics_of(self.dialog),
               daemon=self.daemon.kind)
        return False

    # ------------------------------------------------------------------------------------------- config

    def _on_config_notify(self, _config, pspec):
        name = pspec.name
        if name == "connection-file":
            self.connection_file = self.config.get_property("connection-file") or None
            self._style_cache.clear()
            self.monitor.check_now()
        if self._writing:
            return
        if name in STYLE_PROPS and not self._refresh_pending:
            self._refresh_pending = True
            GLib.idle_add(self._refresh_from_config)
        if name == "style-max-side":
            self.style_size_combo.handler_block_by_func(self._on_style_size)
            self._set_combo(self.style_size_combo, STYLE_SIZE_CHOICES, self.config.get_property("style-max-side"))
            self.style_size_combo.handler_unblock_by_func(self._on_style_size)
        if name in ("model", "style-keys"):
            self.model_combo.handler_block_by_func(self._on_model)
            self._fill_model_combo()
            self.model_combo.handler_unblock_by_func(self._on_model)
        if name == "quality":
            self.quality_combo.handler_block_by_func(self._on_quality)
            self._fill_quality_combo()
            self.quality_combo.handler_unblock_by_func(self._on_quality)
        if name == "content-labels-channels":
            self._read_channels()
        if name == "only-in-selection":
            self._source = None
        if name not in NO_PREVIEW_PROPS:
            self._schedule_preview()

    def _refresh_from_config(self):
        self._refresh_pending = False
        self._read_config()
        self._refresh_mix()
        self._schedule_preview()
        return False

    def _set_combo(self, combo, choices, value):
        combo.remove_all()
        for v, text in size_choices(choices, value):
            combo.append(str(v), text)
        combo.set_active_id(str(int(value or 0)))

    def _read_config(self):
        """The style list and the region-map choices from the config."""
        c = self.config
        style_file = c.get_property("style-file")
        layer = c.get_property("style-layer")
        names = {m.get("id"): m.get("name") for m in self.library}
        self.mix = mix_from_args(
            style_file=style_file.get_path() if style_file is not None else None,
            style_files=list(c.get_property("style-files") or []),
            style_layer=(layer.get_id(), io.style_layer_label(layer, self.image)) if layer is not None else None,
            library_styles=c.get_property("library-styles") or "",
            style_weights=c.get_property("style-weights") or "", library_names=names)
        maps = list(c.get_property("style-label-files") or [])
        self.label_maps = {}
        for entry, path in zip(self.mix, maps):
            if path and path.strip().lower() not in NO_LABELS:
                self.label_maps[(entry.kind, entry.value)] = path.strip()
        self._read_channels()

    def _channel_order(self):
        """The checked channels in region order (region 1 first): the config's order; '*' = every channel."""
        names = split_list(self.config.get_property("content-labels-channels") or "")
        checks = getattr(self, "channel_checks", {})
        return list(checks) if names == ["*"] else [n for n in names if n in checks]

    def _read_channels(self):
        order = self._channel_order()
        for name, check in getattr(self, "channel_checks", {}).items():
            check.handler_block_by_func(self._on_channel_toggled)
            check.set_active(name in order)
            check.set_label(f"{name}: region {order.index(name) + 1}" if name in order else name)
            check.handler_unblock_by_func(self._on_channel_toggled)

    def _write(self, values):
        self._writing = True
        try:
            for key, value in values.items():
                self.config.set_property(key, value)
        finally:
            self._writing = False
        self._schedule_preview()

    def _write_mix(self):
        self.mix = sort_mix(self.mix)
        args = args_from_mix(self.mix)
        layer_id = args.pop("style-layer")
        args["style-layer"] = Gimp.Layer.get_by_id(layer_id) if layer_id is not None else None
        maps = [self.label_maps.get((e.kind, e.value), "") for e in self.mix]
        args["style-label-files"] = maps if any(maps) else []
        self._write(args)
        self._refresh_mix()

    def _semantic_in_use(self):
        c = self.config
        return bool(c.get_property("content-labels-layer") or c.get_property("content-labels-channels")
                    or c.get_property("style-label-layer") or self.label_maps)

    # ------------------------------------------------------------------------------------------- styles

    def _refresh_gallery(self):
        for child in self.gallery.get_children():
            child.destroy()
        in_use = {e.value for e in self.mix if e.kind == "library"}
        for meta in self.library:
            sid, name = meta.get("id", ""), str(meta.get("name") or meta.get("id", ""))
            button = Gtk.ToggleButton()
            button.set_relief(Gtk.ReliefStyle.NONE)
            box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=2)
            pix = self.library_thumbs.get(sid)
            if pix is not None:
                box.pack_start(Gtk.Image.new_from_pixbuf(pix), False, False, 0)
            used = sid in in_use
            # Pango.EllipsizeMode.END; a check mark on the styles in use
            name_label = Gtk.Label(label=("\u2713 " if used else "") + name, ellipsize=3, max_width_chars=10)
            box.pack_start(name_label, False, False, 0)
            button.add(box)
            button.set_active(used)
            w, h = meta.get("width"), meta.get("height")
            button.set_tooltip_text(f"{name} ({w}×{h}): click to use it, click again to stop. Right-click to "
                                    f"remove it from the library.")
            button.connect("toggled", self._on_library_toggled, sid, name)
            button.connect("button-press-event", self._on_tile_press, sid, name)
            button.connect("popup-menu", lambda _b, sid=sid, name=name: self._tile_menu(sid, name, None) or True)
            self.gallery.add(button)
        if self.library:
            self.gallery_note.set_text("Your style library, kept by sanetd for every image. Click a style to use "
                                       "it; right-click to remove it from the library.")
        elif self.daemon.running:
            self.gallery_note.set_text("The style library is empty. Add an image below, then press its "
                                       "\"Add to library\" button to keep it here for next time.")
        else:
            self.gallery_note.set_text("The style library appears here when sanetd is running.")
        self.gallery.show_all()

    def _refresh_mix(self):
        for child in self.mix_list.get_children():
            child.destroy()
        several = len(self.mix) > 1
        for entry in self.mix:
            self.mix_list.add(self._mix_row(entry, several))
        self.mix_list.show_all()
        if not self.mix:
            self.mix_note.set_text("No style yet: click a thumbnail above, or add an image.")
        elif several:
            self.mix_note.set_text("The sliders set how much of each style goes into the mix.")
        else:
            self.mix_note.set_text("")
        self.mix_note.set_visible(bool(self.mix_note.get_text()))
        self._refresh_gallery()
        self._refresh_style_maps()
        GLib.idle_add(self._fit_height)

    def _fit_height(self):
        """Grow the dialog when the settings got taller (a style added, the library arrived), up to the
        screen; beyond that the settings scroll."""
        if self._closed or not self.dialog.get_mapped():
            return False
        natural = self.settings_box.get_preferred_height()[1]
        have = self.scroller.get_allocated_height()
        if natural <= have + 2:
            return False
        window = self.dialog.get_window()
        monitor = window.get_display().get_monitor_at_window(window) if window is not None else None
        limit = monitor.get_workarea().height - 60 if monitor is not None else 900
        w, h = self.dialog.get_size()
        if h < limit:
            self.dialog.resize(w, min(limit, h + natural - have))
        return False

    def _mix_row(self, entry, several):
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6, border_width=2)
        pix = self._entry_thumbnail(entry)
        image = Gtk.Image.new_from_pixbuf(pix) if pix is not None else \
            Gtk.Image.new_from_icon_name("image-x-generic", Gtk.IconSize.DND)
        image.set_size_request(ROW_THUMB, ROW_THUMB)
        row.pack_start(image, False, False, 0)
        kind = {"file": "image file", "layer": "layer", "library": "library"}[entry.kind]
        name = Gtk.Label(label=entry.label, xalign=0.0, ellipsize=3, max_width_chars=14)
        name.set_tooltip_text(f"{entry.label} ({kind}{': ' + str(entry.value) if entry.kind == 'file' else ''})")
        row.pack_start(name, True, True, 0)
        if several:
            scale = Gtk.Scale.new_with_range(Gtk.Orientation.HORIZONTAL, 0.0, 1.0, 0.05)
            scale.set_digits(2)
            scale.set_value_pos(Gtk.PositionType.RIGHT)
            scale.set_value(entry.weight)
            scale.set_size_request(130, -1)
            scale.set_tooltip_text(f"How much of {entry.label} goes into the mix")
            scale.connect("value-changed", self._on_weight, entry)
            row.pack_start(scale, False, False, 0)
        if entry.kind in ("file", "layer"):
            keep = Gtk.Button(label="Add to library")
            keep.set_tooltip_text("Keep this style in sanetd's style library, for every image")
            keep.connect("clicked", self._on_add_to_library, entry)
            keep.set_sensitive(self.daemon.running)
        else:
            keep = Gtk.Box()   # keeps the sliders of all rows aligned
        self._button_column.add_widget(keep)
        row.pack_start(keep, False, False, 0)
        off = Gtk.Button.new_from_icon_name("window-close", Gtk.IconSize.BUTTON)
        off.set_relief(Gtk.ReliefStyle.NONE)
        off.set_tooltip_text("Stop using this style")
        off.connect("clicked", self._on_unuse, entry)
        row.pack_start(off, False, False, 0)
        return row

    def _entry_thumbnail(self, entry):
        if entry.kind == "library":
            pix = self.library_thumbs.get(entry.value)
            return _fit(pix, ROW_THUMB, checks=False) if pix is not None else None
        if entry.kind == "file":
            return _file_thumbnail(str(entry.value), ROW_THUMB)
        layer = Gimp.Layer.get_by_id(entry.value)
        if layer is None or not layer.is_valid():
            return None
        try:
            return layer.get_thumbnail(ROW_THUMB, ROW_THUMB, Gimp.PixbufTransparency.SMALL_CHECKS)
        except (GLib.Error, TypeError):
            return None

    def _refresh_style_maps(self):
        """SCSA: one region-map file chooser per style in use, in the same order."""
        for child in self.style_maps_box.get_children():
            child.destroy()
        if not self.mix:
            return
        self.style_maps_box.pack_start(_label("Each style's region map (an image of the style's size):", chars=55),
                                       False, False, 0)
        for entry in self.mix:
            row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
            row.pack_start(Gtk.Label(label=entry.label, xalign=0.0, ellipsize=3, max_width_chars=14), True, True, 0)
            chooser = Gtk.FileChooserButton(title=f"Region map of {entry.label}", action=Gtk.FileChooserAction.OPEN)
            chooser.set_width_chars(16)
            path = self.label_maps.get((entry.kind, entry.value))
            if path:
                chooser.set_filename(path)
            chooser.connect("file-set", self._on_style_map, entry)
            row.pack_start(chooser, False, False, 0)
            clear = Gtk.Button.new_from_icon_name("edit-clear", Gtk.IconSize.BUTTON)
            clear.set_tooltip_text("No region map for this style")
            clear.connect("clicked", self._on_style_map_clear, entry)
            row.pack_start(clear, False, False, 0)
            self.style_maps_box.pack_start(row, False, False, 0)
        self.style_maps_box.show_all()

    def _on_tile_press(self, _button, event, sid, name):
        if event.button == 3:   # right click
            self._tile_menu(sid, name, event)
            return True
        return False

    def _tile_menu(self, sid, name, event):
        menu = Gtk.Menu()
        item = Gtk.MenuItem(label=f"Remove \u201c{name}\u201d from the library\u2026")
        item.connect("activate", lambda _i: self._on_remove_from_library(None, MixEntry("library", sid, name)))
        menu.append(item)
        menu.show_all()
        menu.attach_to_widget(self.gallery, None)
        menu.popup_at_pointer(event)
        self._menu = menu   # keep a reference while it is shown

    def _on_library_toggled(self, button, sid, name):
        if button.get_active():
            if not any(e.kind == "library" and e.value == sid for e in self.mix):
                self.mix.append(MixEntry("library", sid, name))
        else:
            self.mix = [e for e in self.mix if not (e.kind == "library" and e.value == sid)]
        GLib.idle_add(self._write_mix_idle)   # not while the toggled button is being destroyed

    def _write_mix_idle(self):
        self._write_mix()
        return False

    def _on_add_images(self, _button):
        chooser = Gtk.FileChooserDialog(title="Style images", transient_for=self.dialog,
                                        action=Gtk.FileChooserAction.OPEN)
        chooser.add_buttons("_Cancel", Gtk.ResponseType.CANCEL, "_Use as styles", Gtk.ResponseType.OK)
        chooser.set_select_multiple(True)
        images = Gtk.FileFilter()
        images.set_name("Images")
        images.add_pixbuf_formats()
        for pattern in ("*.xcf", "*.psd", "*.tif", "*.tiff", "*.exr"):
            images.add_pattern(pattern)
        chooser.add_filter(images)
        everything = Gtk.FileFilter()
        everything.set_name("All files")
        everything.add_pattern("*")
        chooser.add_filter(everything)
        if chooser.run() == Gtk.ResponseType.OK:
            for path in chooser.get_filenames():
                if not any(e.kind == "file" and e.value == path for e in self.mix):
                    self.mix.append(MixEntry("file", path, style_label(path)))
            self._write_mix()
        chooser.destroy()

    def _on_weight(self, scale, entry):
        key = (entry.kind, entry.value)
        self.mix = [MixEntry(e.kind, e.value, e.label, scale.get_value()) if (e.kind, e.value) == key else e
                    for e in self.mix]
        # only the weights change: no rebuild of the list while the slider is dragged
        self._write({"style-weights": args_from_mix(self.mix)["style-weights"]})

    def _on_unuse(self, _button, entry):
        self.mix = [e for e in self.mix if not (e.kind == entry.kind and e.value == entry.value)]
        self.label_maps.pop((entry.kind, entry.value), None)
        GLib.idle_add(self._write_mix_idle)

    def _on_style_map(self, chooser, entry):
        path = chooser.get_filename()
        if path:
            self.label_maps[(entry.kind, entry.value)] = path
        self._write_mix()

    def _on_style_map_clear(self, _button, entry):
        self.label_maps.pop((entry.kind, entry.value), None)
        GLib.idle_add(self._write_mix_idle)

    def _on_channel_toggled(self, _check):
        # the regions keep their numbers: a newly ticked channel becomes the next region
        order = [n for n in self._channel_order() if self.channel_checks[n].get_active()]
        order += [n for n, c in self.channel_checks.items() if c.get_active() and n not in order]
        self._write({"content-labels-channels": ", ".join(order)})
        self._read_channels()

    # ------------------------------------------------------------------------------------------- library

    def _on_add_to_library(self, _button, entry):
        try:
            settings = io.build_settings(style_files=[entry.value] if entry.kind == "file" else [],
                                         style_layer=(entry.value, entry.label) if entry.kind == "layer" else None)
            styles = io.gather_styles(self.client, settings, cache=self._style_cache)
        except (SettingsError, PluginError) as exc:
            self._say(f"Could not read {entry.label}: {exc}")
            return
        pixels = styles[0]
        conn = self.connection_file

        def work():
            try:
                with self.client.Client(conn, timeout=10.0, retries=2) as c:
                    added = c.styles_add(entry.label, pixels)
                GLib.idle_add(self._added_to_library, entry, added, None)
            except Exception as exc:  # noqa: BLE001  shown in the dialog
                GLib.idle_add(self._added_to_library, entry, None, exc)
        self._say(f"Adding {entry.label} to the style library…")
        threading.Thread(target=work, name="sanet-style-library", daemon=True).start()

    def _added_to_library(self, entry, added, error):
        if self._closed:
            return False
        if error is not None:
            self._say(f"Could not add {entry.label} to the style library: {error}")
            return False
        sid = added.get("id")
        self.library = [m for m in self.library if m.get("id") != sid] + [added]
        self._remember_thumb(added)
        # the style is used from the library from now on (the same pixels), keeping its weight and region map
        self.mix = [MixEntry("library", sid, added.get("name") or entry.label, e.weight)
                    if (e.kind, e.value) == (entry.kind, entry.value) else e for e in self.mix]
        if (entry.kind, entry.value) in self.label_maps:
            self.label_maps[("library", sid)] = self.label_maps.pop((entry.kind, entry.value))
        if entry.kind == "layer":
            self._writing = True
            self.config.set_property("style-layer", None)
            self._writing = False
        self._write_mix()
        self._say(f"{added.get('name')} is in the style library now.")
        _event("library-added", id=sid, name=added.get("name"))
        return False

    def _on_remove_from_library(self, _button, entry):
        ask = Gtk.MessageDialog(transient_for=self.dialog, modal=True, message_type=Gtk.MessageType.QUESTION,
                                buttons=Gtk.ButtonsType.NONE,
                                text=f"Remove \u201c{entry.label}\u201d from the style library?")
        ask.format_secondary_text("sanetd forgets its copy of the style; image files on your disk stay as they are.")
        ask.add_buttons("_Keep", Gtk.ResponseType.CANCEL, "_Remove", Gtk.ResponseType.OK)
        answer = ask.run()
        ask.destroy()
        if answer != Gtk.ResponseType.OK:
            return
        conn = self.connection_file

        def work():
            try:
                with self.client.Client(conn, timeout=10.0, retries=2) as c:
                    c.styles_remove(entry.value)
                GLib.idle_add(self._removed_from_library, entry, None)
            except Exception as exc:  # noqa: BLE001
                GLib.idle_add(self._removed_from_library, entry, exc)
        threading.Thread(target=work, name="sanet-style-library", daemon=True).start()

    def _removed_from_library(self, entry, error):
        if self._closed:
            return False
        if error is not None:
            self._say(f"Could not remove {entry.label} from the style library: {error}")
            return False
        self.library = [m for m in self.library if m.get("id") != entry.value]
        self.mix = [e for e in self.mix if not (e.kind == "library" and e.value == entry.value)]
        self.label_maps.pop(("library", entry.value), None)
        self._write_mix()
        self._say(f"{entry.label} was removed from the style library.")
        _event("library-removed", id=entry.value)
        return False

    def _remember_thumb(self, meta):
        thumb = meta.get("thumbnail")
        pix = _pixbuf_from_png(thumb) if thumb else None
        if pix is not None:
            self.library_thumbs[meta.get("id")] = _fit(pix, THUMB, checks=True)

    def _load_library(self):
        conn = self.connection_file

        def work():
            try:
                with self.client.Client(conn, timeout=5.0, retries=1) as c:
                    GLib.idle_add(self._library_loaded, c.styles_list(), None)
            except Exception as exc:  # noqa: BLE001
                GLib.idle_add(self._library_loaded, None, exc)
        threading.Thread(target=work, name="sanet-style-library", daemon=True).start()

    def _library_loaded(self, styles, error):
        if self._closed:
            return False
        if error is not None:
            self.gallery_note.set_text(f"The style library could not be read: {error}")
            return False
        self.library = list(styles)
        for meta in self.library:
            self._remember_thumb(meta)
        names = {m.get("id"): m.get("name") for m in self.library}
        self.mix = [MixEntry(e.kind, e.value, str(names.get(e.value) or e.label), e.weight)
                    if e.kind == "library" else e for e in self.mix]
        self._refresh_mix()
        _event("library", count=len(self.library), names=[m.get("name") for m in self.library])
        return False

    # ------------------------------------------------------------------------------------------- sanetd

    def _probe(self):
        """(monitor thread) Is sanetd there? Uses its own short-lived client."""
        try:
            with self.client.Client(self.connection_file, timeout=2.0, retries=1) as c:
                return RUNNING, c.hello()
        except self.client.ProtocolMismatch as exc:
            return INCOMPATIBLE, str(exc)
        except self.client.NotAdmitted as exc:      # a shared server that refuses this connection file
            return FAILED, str(exc)
        except self.client.SanetClientError as exc:
            if self._remote():                        # a shared server does not answer: nothing to start here
                return FAILED, str(exc)
            return NOT_RUNNING, str(exc)

    def _daemon_changed(self, state):
        if self._closed:
            return False
        was_running = self.daemon.running
        self.daemon = state
        where = f" (connection file {self.connection_file})" if self.connection_file and not state.running else ""
        self.bar_label.set_text(state.message + where)
        self.bar_label.set_tooltip_text(state.detail or None)
        busy = state.kind in (STARTING, "checking")
        self.bar_spinner.set_visible(busy)
        self.bar_spinner.set_property("active", busy)
        icon = {RUNNING: "dialog-information", NOT_RUNNING: "dialog-warning"}.get(state.kind, "dialog-error")
        self.bar_icon.set_from_icon_name(icon, Gtk.IconSize.LARGE_TOOLBAR)
        self.bar_icon.set_visible(not busy)
        self.start_button.set_visible(state.kind in (NOT_RUNNING, "failed") and state.can_start)
        self.start_button.set_sensitive(state.kind != STARTING)
        installed = installed_models(state.hello) if state.running else None
        if installed != self._installed:
            self._installed = installed
            self.model_combo.handler_block_by_func(self._on_model)
            self._fill_model_combo()
            self.model_combo.handler_unblock_by_func(self._on_model)
        hello = state.hello if state.running else None
        if fast_precision_of(hello) != fast_precision_of(self._hello):
            self._hello = hello
            self.quality_combo.handler_block_by_func(self._on_quality)
            self._fill_quality_combo()
            self.quality_combo.handler_unblock_by_func(self._on_quality)
            _event("quality-row", sensitive=self.quality_combo.get_sensitive(),
                   shown=self.quality_combo.get_active_id(), note=self.quality_note.get_text())
        if state.running and not was_running:
            self._load_library()
            self._schedule_preview(0)
        elif not state.running:
            self.worker.cancel()
            self.busy.hide()
            if self.live:
                self._status("The preview starts when sanetd is running.")
        self._refresh_mix()
        # reported once GTK has laid the new text out: its width and lines are what the artist sees
        GLib.timeout_add(200, self._report_daemon, state.kind, self.bar_label.get_text(), time.time())
        return False

    def _report_daemon(self, kind, text, at):
        if not self._closed:
            _event("daemon", state=kind, message=text, at=at, width=self.dialog.get_allocated_width(),
                   label_lines=self.bar_label.get_layout().get_line_count())
        return False

    def _on_start_clicked(self, _button):
        env = None
        if self.connection_file:   # Advanced: the new sanetd writes its connection file where this dialog looks
            env = dict(os.environ, SANETD_CONNECTION_FILE=self.connection_file)
        self.start_button.set_sensitive(False)
        self.monitor.start_daemon(env=env)
        _event("start-pressed")

    # ------------------------------------------------------------------------------------------- preview

    def _on_live_toggled(self, check):
        self.live = check.get_active()
        if self.live:
            self._schedule_preview(0)
        else:
            self.worker.cancel()
            self.busy.hide()
            self._preview_pixbuf = None
            self._show_preview()
            self._status("")

    def _on_preview_size(self, combo):
        self.preview_size = int(combo.get_active_id() or DEFAULT_PREVIEW_SIZE)
        self._source = None
        self._schedule_preview()

    def _on_style_size(self, combo):
        self._write({"style-max-side": int(combo.get_active_id() or 0)})

    def _schedule_preview(self, delay_ms=PREVIEW_DELAY_MS):
        if self._closed:
            return
        if self._debounce is not None:
            GLib.source_remove(self._debounce)
            self._debounce = None
        if not self.live or self._job is not None:
            return
        self._debounce = GLib.timeout_add(delay_ms, self._start_preview)

    def _preview_source(self, only_in_selection):
        """The preview's area of the layer at preview size, read once per preview size and area."""
        key = (self.preview_size, bool(only_in_selection))
        if self._source is None or self._source[0] != key:
            region = io.preview_region(self.image, self.drawable, only_in_selection)
            geometry = preview_geometry(self.drawable.get_width(), self.drawable.get_height(), self.preview_size,
                                        region)
            source = io.read_preview_source(self.client, self.image, self.drawable, geometry, only_in_selection)
            self._source = (key, source)
            self._source_pixbuf = _pixbuf_from_rgba(source.layer.data, geometry.out_w, geometry.out_h)
        return self._source[1]

    def _show_source(self):
        try:
            self._preview_source(self.config.get_property("only-in-selection"))
        except (PluginError, ValueError) as exc:
            self._status(f"No preview: {exc}")
        self._show_preview()

    def _show_preview(self):
        pix = self._source_pixbuf
        if self._preview_pixbuf is not None and not self.before_button.get_active():
            pix = self._preview_pixbuf
        if pix is None:
            self.preview_image.clear()
            return
        self.preview_image.set_from_pixbuf(_fit(pix, PANE, MAX_ZOOM))

    def _status(self, text):
        if text != self.preview_status.get_text():
            self.preview_status.set_text(text)
            if text:
                _event("status", text=text)

    def _start_preview(self):
        self._debounce = None
        if self._closed or not self.live or self._job is not None:
            return False
        try:
            settings = io.settings_from_config(self.config, self.image)
        except SettingsError as exc:
            self.worker.cancel()
            self.busy.hide()
            if not self.mix:
                self._status("Choose a style to see the preview.")
            else:
                self._status(f"No preview: {exc}")
            self._show_source()
            return False
        try:
            source = self._preview_source(settings.only_in_selection)
        except (PluginError, ValueError) as exc:
            self._status(f"No preview: {exc}")
            return False
        if not self.daemon.running:
            self._show_preview()
            self._status("The preview starts when sanetd is running.")
            return False
        g = source.geometry
        try:
            styles = io.gather_styles(self.client, settings, scale=g.scale, cache=self._style_cache)
            labels = io.read_content_labels(self.client, self.image, self.drawable, settings, geometry=g) \
                if settings.semantic else None
        except (SettingsError, PluginError) as exc:
            self._status(f"No preview: {exc}")
            return False
        semantic = {} if labels is None else dict(content_labels=labels, scsa_weights=settings.scsa_weights)
        side = io.preview_style_side(settings, g.scale)

        model = io.model_fields(settings)

        def job(client, cancel):
            return client.stylize(source.layer, styles, selection=source.mask, alpha=settings.alpha,
                                  preserve_color=settings.preserve_color, preview=False, style_max_side=side,
                                  cancel_event=cancel, **model, **semantic)
        seq = self.worker.submit(job)
        self._preview_started[seq] = (time.monotonic(), settings.alpha, len(settings.styles),
                                      f"{settings.model}:{settings.style_keys}")
        self.busy.show_all()
        return False

    def _make_preview_client(self):
        return self.client.Client(self.connection_file, timeout=PREVIEW_CLIENT_TIMEOUT_S, retries=1)

    def _preview_finished_in_thread(self, seq, result, error):
        GLib.idle_add(self._preview_finished, seq, result, error)

    def _preview_finished(self, seq, result, error):
        if self._closed:
            return False
        t0, alpha, n_styles, model = self._preview_started.pop(seq, (time.monotonic(), None, 0, None))
        self.busy.hide()
        if error is not None:
            if isinstance(error, self.client.JobCancelled):
                return False
            if isinstance(error, self.client.DaemonNotRunning):
                self.monitor.check_now()
                self._status("The preview stopped: sanetd is not answering.")
            else:
                self._status(f"The preview failed: {error}")
            _event("preview-failed", seq=seq, error=str(error))
            return False
        g = self._source[1].geometry if self._source else None
        self._preview_pixbuf = _pixbuf_from_rgba(result.data, result.width, result.height)
        self._show_preview()
        seconds = time.monotonic() - t0
        area = "the selection" if (g and (g.w, g.h) != (self.drawable.get_width(), self.drawable.get_height())) \
            else "the layer"
        self._status(f"Preview of {area} at {result.width}×{result.height} ({seconds:.1f} s). "
                     f"OK renders it at full size.")
        self._preview_count += 1
        _event("preview", seq=seq, count=self._preview_count, alpha=alpha, styles=n_styles, model=model,
               size=[result.width, result.height], seconds=round(seconds, 3),
               digest=hashlib.sha1(result.data).hexdigest(),
               layers=[layer.get_name() for layer in self.image.get_layers()])
        return False

    # ------------------------------------------------------------------------------------------- OK / Cancel

    def _on_response(self, dialog, response):
        if response == Gtk.ResponseType.OK:
            if self._finished is not None:
                return                              # the run is done: let OK close the dialog
            dialog.stop_emission_by_name("response")
            if self._job is None:
                self._start_full_run()
        elif response in (Gtk.ResponseType.CANCEL, Gtk.ResponseType.DELETE_EVENT):
            if self._job is not None:               # Cancel stops the run and goes back to the settings
                dialog.stop_emission_by_name("response")
                self._cancel_full_run()

    def _say(self, text):
        self.run_message.set_text(text)
        self.run_message.set_visible(bool(text))

    def _set_editing(self, editable):
        self.settings_box.set_sensitive(editable)
        self.live_check.set_sensitive(editable)
        self.preview_size_combo.set_sensitive(editable)
        self.bar.set_sensitive(editable)
        self.dialog.set_response_sensitive(Gtk.ResponseType.OK, editable)

    def _start_full_run(self):
        try:
            self._writing = True
            self.config.set_property("preview", False)   # OK is the full-size run (scripts may ask for less)
            self._writing = False
            settings = io.settings_from_config(self.config, self.image)
            if not settings.start_daemon and not self.daemon.running:
                raise PluginError("sanetd is not running: press Start at the top, then OK again.")
            run = io.prepare_run(self.client, self.image, self.drawable, settings, style_cache=self._style_cache)
        except (SettingsError, PluginError, ValueError) as exc:
            self._say(f"Not started: {exc}")
            return
        finally:
            self._writing = False
        self.worker.cancel()
        if self._debounce is not None:
            GLib.source_remove(self._debounce)
            self._debounce = None
        self.busy.hide()
        watchdog = io.start_watchdog(self.client)
        job = Job(lambda p, c: io.submit_run(self.client, run, p, c, watchdog)).start()
        self._job = [job, run, watchdog, None]
        self._set_editing(False)
        self._say("")
        self.run_box.show()
        self.progress.show()
        self.progress.set_fraction(0.0)
        self.progress.set_text("Connecting to sanetd…")
        Gimp.progress_init("Style transfer: connecting to sanetd…")
        _event("run-started", job_id=run.job_id, width=run.width, height=run.height,
               watchdog=watchdog.pid if watchdog is not None else None)
        GLib.timeout_add(50, self._poll_full_run)

    def _cancel_full_run(self):
        if self._job is None or self._job[3] is not None:
            return
        self._job[0].cancel_event.set()   # the client sends the cancel to sanetd at once
        self._job[3] = time.monotonic()
        self.progress.set_text("Cancelling…")
        _event("run-cancel", job_id=self._job[1].job_id)

    def _on_full_progress(self, fraction, stage):
        fraction = max(0.0, min(1.0, fraction))
        if stage != self._stage:
            self._stage = stage
            _event("run-progress", stage=stage, fraction=round(fraction, 3))
        if self._job is not None and self._job[3] is None:
            self.progress.set_fraction(fraction)
            self.progress.set_text(f"{stage} ({fraction * 100:.0f} %)")
        Gimp.progress_update(fraction)

    def _poll_full_run(self):
        if self._job is None:
            return False
        job, run, watchdog, cancelled_at = self._job
        done = job.poll(self._on_full_progress)
        if not done and cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_S:
            # sanetd got the cancel; it stops at its next check. The dialog does not wait for that.
            self._end_full_run(watchdog)
            self._say("Cancelled. Change the settings and press OK again, or Cancel to close.")
            _event("run-cancelled", job_id=run.job_id, confirmed=False,
                   seconds=round(time.monotonic() - cancelled_at, 3))
            return False
        if not done:
            return True
        self._end_full_run(watchdog)
        try:
            result = job.outcome()
        except self.client.JobCancelled:
            self._say("Cancelled. Change the settings and press OK again, or Cancel to close.")
            _event("run-cancelled", job_id=run.job_id, confirmed=True,
                   seconds=round(time.monotonic() - (cancelled_at or time.monotonic()), 3))
            return False
        except (self.client.SanetClientError, PluginError, SettingsError) as exc:
            self._say(f"The style transfer failed: {exc}")
            _event("run-failed", job_id=run.job_id, error=str(exc))
            return False
        self._finished = (run, result)
        _event("run-finished", job_id=run.job_id)
        self.dialog.response(Gtk.ResponseType.OK)
        return False

    def _end_full_run(self, watchdog):
        if watchdog is not None:
            watchdog.close()
        Gimp.progress_end()
        self._job = None
        self.run_box.hide()
        self._set_editing(True)
        self._schedule_preview()
