"""The Style Transfer controls, shared by the docker and the Tools > Scripts dialog.

Layout, top to bottom (inside a scroll area, so a short docker scrolls instead of squeezing widgets on top of
each other): the connection state (Start / Reconnect), the live preview with its history, the styles and the
daemon's library (tabs), the settings, the Semantic (SCSA) group, Apply / Cancel with progress and messages.

Both views share one session.Session: the same style list model and the same connection monitor. All Krita
and widget access happens on the main thread; daemon calls run in worker.Task threads whose events a QTimer
drains, so Krita never freezes while sanetd works.
"""
import os
import time

from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QFont, QIcon, QPixmap
from PyQt5.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame,
                             QGroupBox, QHBoxLayout, QHeaderView, QLabel, QListView, QListWidget,
                             QListWidgetItem, QMenu, QMessageBox, QProgressBar, QPushButton, QScrollArea,
                             QSizePolicy, QSlider, QTableView, QTabWidget, QToolButton, QVBoxLayout, QWidget)

from . import (clientlib, connection, document, formats, labels, messages, pipeline, prefs, preview, server, session,
               sources)
from .panels import HistoryStrip, PreviewPane, WeightDelegate
from .styles import COL_LABELS, COL_STYLE, COL_WEIGHT, ICON, StyleEntry
from .worker import Task

POLL_MS = 50                 # task queue drain interval while something runs
STATUS_MS = 250              # how often the connection snapshot is read
WATCH_MS = 700               # how often the active layer / its content / the selection are compared
DEBOUNCE_MS = 300            # a preview starts this long after the last change of a setting
JOB_QUIET_S = 10.0           # no word from sanetd (it answers pings even when busy) for this long = gone
LABEL_FILES = "Images (*.png *.bmp *.tif *.tiff *.webp)"   # no JPEG: its noise invents label colours
STYLE_FILES = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)"
ERROR_COLOUR = "#e0533f"
QUALITY_KEY = "quality"      # kritarc [sanet_style]: the Quality choice of this Krita profile
OK_COLOUR = "#3fa35b"
EXPECTED = (document.DocumentError, formats.FormatError, labels.LabelError, sources.StyleSourceError, ValueError)


def _krita():
    from krita import Krita
    return Krita.instance()


class Settings:
    """Everything a run needs besides the layer: options, the styles (frozen copies), the label layer."""

    def __init__(self, options, entries, label_layer=None):
        self.options = options
        self.entries = entries
        self.label_layer = label_layer

    @property
    def semantic(self):
        return self.options.scsa_weights is not None

    def names(self):
        return [e.label for e in self.entries]

    def key(self):
        return (tuple(e.key() for e in self.entries), self.options.key(), self.label_layer)


class StyleTransferWidget(QWidget):
    def __init__(self, parent=None, shared=None):
        super().__init__(parent)
        self.session = shared or session.get()
        self.model = self.session.styles
        self.task = None             # the running full-resolution job
        self.preview_task = None     # the running preview
        self.side_tasks = []         # library add / remove
        self.snap = None
        self.history = preview.History()
        self.last_preview = None     # what the latest preview sent and got (tests read it)
        self.label_layer_name = None
        self._status_serial = -1
        self._quality_serial = self.session.quality_serial
        self._library_serial = -1
        self._watched = None
        self._preview_wanted = False
        self.connected = False
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(STATUS_MS)
        self.status_timer.timeout.connect(self._read_status)
        self.status_timer.start()
        self.preview_timer = QTimer(self)
        self.preview_timer.setSingleShot(True)
        self.preview_timer.setInterval(DEBOUNCE_MS)
        self.preview_timer.timeout.connect(self.run_preview)
        self.watch_timer = QTimer(self)
        self.watch_timer.setInterval(WATCH_MS)
        self.watch_timer.timeout.connect(self._watch_document)
        self._build()
        self.watch_timer.start()
        for signal in (self.model.rowsInserted, self.model.rowsRemoved, self.model.dataChanged,
                       self.model.modelReset):
            signal.connect(self.schedule_preview)
        self.model.rowsInserted.connect(self._open_weight_editors)
        self.model.modelReset.connect(self._open_weight_editors)
        self._open_weight_editors()
        QTimer.singleShot(0, self._read_status)

    # ---- layout -------------------------------------------------------------------------------
    def _build(self):
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        outer.addWidget(self.scroll)
        self.body = QWidget()
        self.scroll.setWidget(self.body)
        box = QVBoxLayout(self.body)
        box.setContentsMargins(4, 4, 4, 4)

        box.addLayout(self._build_status())
        box.addWidget(self._build_preview())
        box.addWidget(self._build_styles())
        box.addLayout(self._build_settings())
        box.addWidget(self._build_semantic())

        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Stylize the active layer at full resolution into a new layer above it")
        self.apply_button.clicked.connect(lambda: self.apply())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.apply_button, 1)
        row.addWidget(self.cancel_button)
        box.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        box.addWidget(self.progress)
        self.message = _wrapping_label("")
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        box.addWidget(self.message)
        box.addStretch(1)

    def _build_status(self):
        """Connection state: the Server (this computer / a connection file, e.g. a shared server's from
        `sanetd invite`; remembered per Krita profile), a headline, the reason in whole sentences, Start and
        Reconnect."""
        col = QVBoxLayout()
        srow = QHBoxLayout()
        srow.addWidget(QLabel("Server:"))
        self.server_combo = QComboBox()
        self.server_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.server_combo.setMinimumContentsLength(12)
        self.server_combo.activated.connect(self._server_chosen)
        srow.addWidget(self.server_combo, 1)
        col.addLayout(srow)
        self._fill_servers()
        row = QHBoxLayout()
        self.status_label = _wrapping_label("Connecting to sanetd…")
        font = QFont(self.status_label.font())
        font.setBold(True)
        self.status_label.setFont(font)
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start sanetd (the one the sanet-style installer set up)")
        self.start_button.clicked.connect(self.start_daemon)
        self.start_button.setVisible(False)
        self.reconnect_button = QPushButton("Reconnect")
        self.reconnect_button.setToolTip("Ask sanetd again now")
        self.reconnect_button.clicked.connect(self.check_connection)
        row.addWidget(self.status_label, 1)
        row.addWidget(self.start_button, 0, Qt.AlignTop)
        row.addWidget(self.reconnect_button, 0, Qt.AlignTop)
        col.addLayout(row)
        self.status_detail = _wrapping_label("")
        self.status_detail.setVisible(False)
        col.addWidget(self.status_detail)
        return col

    def _build_preview(self):
        group = QGroupBox("Preview")
        g = QVBoxLayout(group)
        g.setContentsMargins(4, 4, 4, 4)
        self.pane = PreviewPane()
        self.pane.clear("Add a style to see a preview.")
        g.addWidget(self.pane)
        row = QHBoxLayout()
        self.live = QCheckBox("Live preview")
        self.live.setChecked(True)
        try:
            self.live.setToolTip("Re-render a small preview (long side %d px) whenever a setting changes"
                                 % preview.preview_long_side())
        except clientlib.ClientMissing:   # the docker still loads and says what is missing
            self.live.setToolTip("Re-render a small preview whenever a setting changes")
        self.live.toggled.connect(self._live_toggled)
        self.refresh_button = QToolButton()
        self.refresh_button.setText("Refresh")
        self.refresh_button.setToolTip("Render the preview again (after painting on the layer)")
        self.refresh_button.clicked.connect(lambda: self.run_preview(force=True))
        row.addWidget(self.live, 1)
        row.addWidget(self.refresh_button)
        g.addLayout(row)
        self.history_box = QWidget()          # shown once there is a result to compare
        hb = QVBoxLayout(self.history_box)
        hb.setContentsMargins(0, 0, 0, 0)
        self.history_view = HistoryStrip()
        self.history_view.chosen.connect(self._show_history_item)
        hb.addWidget(self.history_view)
        row = QHBoxLayout()
        self.apply_history_button = QPushButton("Apply this")
        self.apply_history_button.setToolTip("Apply the selected preview's settings at full resolution")
        self.apply_history_button.clicked.connect(self.apply_history_item)
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Remove the selected preview from the history")
        self.discard_button.clicked.connect(self.discard_history_item)
        row.addWidget(self.apply_history_button, 1)
        row.addWidget(self.discard_button)
        hb.addLayout(row)
        g.addWidget(self.history_box)
        self.history_box.setVisible(False)
        self._update_history_buttons()
        return group

    def _build_styles(self):
        self.tabs = QTabWidget()
        # the style list of the next run (shared model)
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(2, 2, 2, 2)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(COL_WEIGHT, WeightDelegate(self.table))
        self.table.horizontalHeader().setSectionResizeMode(COL_STYLE, QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(COL_WEIGHT, QHeaderView.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(ICON + 6)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setIconSize(QPixmap(ICON, ICON).size())
        self.table.setEditTriggers(QAbstractItemView.AllEditTriggers)
        self.table.setMinimumHeight(ICON * 2 + 36)
        self.table.setColumnHidden(COL_LABELS, True)
        v.addWidget(self.table)
        row = QHBoxLayout()
        # one "Add" menu (an image file, an open image or one of its layers, a library style) keeps the row
        # narrow enough for a narrow docker
        self.add_button = _tool("Add style", "Add a style: an image file, an open image or its layer, "
                                             "or a style from sanetd's library")
        self.add_button.setPopupMode(QToolButton.InstantPopup)
        self.add_menu = QMenu(self.add_button)
        self.add_menu.addAction("Image file…").triggered.connect(self.add_file_dialog)
        self.open_menu = self.add_menu.addMenu("Open image")
        self.open_menu.aboutToShow.connect(self._fill_open_menu)
        self.library_menu = self.add_menu.addMenu("Library")
        self.library_menu.aboutToShow.connect(self._fill_library_menu)
        self.add_button.setMenu(self.add_menu)
        remove = _tool("Remove", "Remove the selected styles from the list")
        remove.clicked.connect(self.remove_selected)
        row.addWidget(self.add_button)
        row.addWidget(remove)
        v.addLayout(row)
        self.tabs.addTab(page, "Styles")

        # the daemon's library: thumbnails, use, add the active layer or a file, remove
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(2, 2, 2, 2)
        self.library_view = QListWidget()
        self.library_view.setViewMode(QListView.IconMode)
        self.library_view.setResizeMode(QListView.Adjust)
        self.library_view.setMovement(QListView.Static)
        self.library_view.setIconSize(QPixmap(64, 64).size())
        self.library_view.setGridSize(QPixmap(84, 90).size())
        self.library_view.setWordWrap(True)
        self.library_view.setMinimumHeight(110)
        self.library_view.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.library_view.itemDoubleClicked.connect(lambda _item: self.use_library_selected())
        v.addWidget(self.library_view)
        row = QHBoxLayout()
        use = _tool("Use", "Add the selected library styles to the style list (or double-click one)")
        use.clicked.connect(self.use_library_selected)
        store = _tool("Add", "Store the active layer or an image file in sanetd's library")
        store.setPopupMode(QToolButton.InstantPopup)
        store_menu = QMenu(store)
        store_menu.addAction("Active layer").triggered.connect(self.library_add_layer)
        store_menu.addAction("Image file…").triggered.connect(lambda: self.library_add_file())
        store.setMenu(store_menu)
        delete = _tool("Delete", "Delete the selected styles from the library")
        delete.clicked.connect(lambda: self.library_remove_selected())
        for w in (use, store, delete):
            row.addWidget(w)
        v.addLayout(row)
        self.tabs.addTab(page, "Library")
        self.tabs.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Maximum)
        return self.tabs

    def _build_settings(self):
        """One form row per setting."""
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        row = QHBoxLayout()
        self.strength = QSlider(Qt.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(100)
        self.strength.setToolTip("How much style: 0 % keeps the layer, 100 % is the full stylization")
        self.strength_label = QLabel("100 %")
        self.strength_label.setMinimumWidth(self.strength_label.fontMetrics().width("100 %") + 4)
        self.strength.valueChanged.connect(lambda v: self.strength_label.setText("%d %%" % v))
        self.strength.valueChanged.connect(self.schedule_preview)
        row.addWidget(self.strength, 1)
        row.addWidget(self.strength_label)
        form.addRow("Strength", row)
        # the model (SANet, AdaAttN, AdaAttN with full attention): sanet_client.naming's entries, as in GIMP; the
        # ones sanetd has no weights for say so and cannot be picked (the list follows the daemon's hello)
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self._installed = None
        self._fill_models()
        self.model_combo.currentIndexChanged.connect(self.schedule_preview)
        form.addRow("Model", self.model_combo)
        # the quality of the full-resolution result: Exact (fp32) or Fast (sanetd's fast precision, from its hello;
        # greyed out with the reason where sanetd has none); remembered per Krita profile. Previews keep sanetd's
        # automatic choice, so changing it does not re-render the preview.
        self.quality_combo = QComboBox()
        self.quality_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.quality_combo.setMinimumContentsLength(8)
        self.quality_note = _wrapping_label("")
        self._fast = (False, None)          # (known, hello's fast_precision)
        self._fill_quality(prefs.load(QUALITY_KEY, ""))
        self.quality_combo.currentIndexChanged.connect(self._quality_chosen)   # refills block signals: not saved
        quality = QVBoxLayout()
        quality.setContentsMargins(0, 0, 0, 0)
        quality.addWidget(self.quality_combo)
        quality.addWidget(self.quality_note)
        form.addRow("Quality", quality)
        self.preserve = QCheckBox("Keep the layer's colours")
        self.preserve.toggled.connect(self.schedule_preview)
        form.addRow("Colours", self.preserve)
        self.only_selection = QCheckBox("Only inside the selection")
        self.only_selection.setChecked(True)
        self.only_selection.toggled.connect(self.schedule_preview)
        form.addRow("Area", self.only_selection)
        return form

    def _build_semantic(self):
        """Semantic (SCSA) group: region-to-region style from a label layer and per-style label maps."""
        self.semantic = QGroupBox("Semantic (SCSA)")
        self.semantic.setCheckable(True)
        self.semantic.setChecked(False)
        self.semantic.setToolTip("Paint flat colours on a label layer (sky, face, ...) and give a style a label "
                                 "map with the same colours: each region takes style only from its own region.")
        self.semantic.toggled.connect(self._semantic_toggled)
        outer = QVBoxLayout(self.semantic)
        outer.setContentsMargins(4, 4, 4, 4)
        self.semantic_body = QWidget()          # hidden while the group is off: then only its title shows
        outer.addWidget(self.semantic_body)
        form = QFormLayout(self.semantic_body)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.label_layer_button = QToolButton()
        self.label_layer_button.setText("(choose)")
        self.label_layer_button.setPopupMode(QToolButton.InstantPopup)
        self.label_layer_button.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.label_layer_menu = QMenu(self.label_layer_button)
        self.label_layer_menu.aboutToShow.connect(self._fill_label_layer_menu)
        self.label_layer_button.setMenu(self.label_layer_menu)
        form.addRow("Label layer", self.label_layer_button)
        row = QHBoxLayout()
        pick = QPushButton("Style label map…")
        pick.setToolTip("A label-map image for the selected style, at that style image's size")
        pick.clicked.connect(self.style_labels_dialog)
        clear = QPushButton("Clear")
        clear.setToolTip("The selected style is applied the plain way")
        clear.clicked.connect(lambda: self.set_style_labels(None))
        row.addWidget(pick, 1)
        row.addWidget(clear)
        form.addRow(row)
        row = QHBoxLayout()
        self.scsa_t1, self.scsa_t2 = QDoubleSpinBox(), QDoubleSpinBox()
        try:   # the defaults and range are sanet_client.protocol's (one definition)
            proto = clientlib.load().protocol
            defaults, top = proto.DEFAULT_SCSA_WEIGHTS, proto.SCSA_WEIGHT_MAX
        except clientlib.ClientMissing:
            defaults, top = (0.0, 0.0), 0.0   # nothing can run without the client; the status line says why
        for name, spin, value in (("SCA", self.scsa_t1, defaults[0]), ("SSA", self.scsa_t2, defaults[1])):
            spin.setRange(0.0, top)
            spin.setSingleStep(0.1)
            spin.setValue(value)
            spin.valueChanged.connect(self.schedule_preview)
            label = QLabel(name)
            label.setToolTip("Weight of semantic %s attention" % ("continuous" if name == "SCA" else "sparse"))
            row.addWidget(label)
            row.addWidget(spin, 1)
        form.addRow(row)
        hint = _wrapping_label("Same colour = same region; unpainted parts of the label layer count as black.")
        form.addRow(hint)
        self._semantic_toggled(False)
        return self.semantic

    # ---- semantic (SCSA) ------------------------------------------------------------------------
    def _semantic_toggled(self, on):
        self.table.setColumnHidden(COL_LABELS, not on)
        self.semantic.setFlat(not on)            # off: just the title, no empty frame
        # a checkable QGroupBox only disables its children; hide them so "off" takes no room
        self.semantic_body.setVisible(on)
        self.schedule_preview()

    def _fill_label_layer_menu(self):
        self.label_layer_menu.clear()
        doc = _krita().activeDocument()
        names = [] if doc is None else _layer_names(doc.topLevelNodes())
        if not names:
            self.label_layer_menu.addAction("(no layers in the active document)").setEnabled(False)
        for name in names:
            self.label_layer_menu.addAction(name).triggered.connect(
                lambda _=False, n=name: self.set_label_layer(n))

    def set_label_layer(self, name):
        self.label_layer_name = name
        self.label_layer_button.setText(name if name else "(choose)")
        self.schedule_preview()

    def style_labels_dialog(self):
        rows = self.selected_rows()
        if not rows:
            self.show_message("Select a style in the list first, then choose its label map.", error=True)
            return
        path, _ = QFileDialog.getOpenFileName(self, "Label map of the style", "", LABEL_FILES)
        if path:
            self.set_style_labels(path, rows)

    def set_style_labels(self, path, rows=None):
        """Attach a label-map file to the given (default: selected) style rows; None removes it."""
        self.model.set_labels(self.selected_rows() if rows is None else rows, path)

    # ---- style list -------------------------------------------------------------------------
    @property
    def entries(self):
        return self.model.entries

    def selected_rows(self):
        return sorted({i.row() for i in self.table.selectionModel().selectedIndexes()})

    def _open_weight_editors(self, *_):
        for row in range(self.model.rowCount()):
            index = self.model.index(row, COL_WEIGHT)
            self.table.openPersistentEditor(index)
            editor = self.table.indexWidget(index)
            if isinstance(editor, QDoubleSpinBox):   # the view selected all its text, as for a typed edit
                editor.lineEdit().deselect()

    def add_entry(self, entry):
        self.model.add(entry)

    def remove_selected(self):
        self.model.remove_rows(self.selected_rows())

    def add_file_dialog(self):
        paths, _ = QFileDialog.getOpenFileNames(self, "Style images", "", STYLE_FILES)
        for path in paths:
            self.add_file(path)

    def add_file(self, path, weight=1.0):
        try:
            image = sources.image_from_file(path)
        except sources.StyleSourceError as exc:
            self.show_message(str(exc), error=True)
            return
        self.add_entry(StyleEntry("file", os.path.basename(path), weight, path=path,
                                  icon=image.scaled(ICON, ICON, Qt.KeepAspectRatio, Qt.SmoothTransformation)))

    def _fill_open_menu(self):
        self.open_menu.clear()
        docs = _krita().documents()
        if not docs:
            self.open_menu.addAction("(no open documents)").setEnabled(False)
        for doc in docs:
            name = os.path.basename(doc.fileName() or "") or doc.name() or "Untitled"
            self.open_menu.addAction("Document: %s" % name).triggered.connect(
                lambda _=False, d=doc, n=name: self.add_entry(StyleEntry(
                    "document", n, doc=d, icon=d.thumbnail(ICON, ICON))))
            for node in doc.topLevelNodes():
                if node.type().endswith("mask"):   # the global selection shows up as a mask node
                    continue
                label = "%s / %s" % (name, node.name())
                self.open_menu.addAction("    Layer: %s" % node.name()).triggered.connect(
                    lambda _=False, d=doc, nd=node, lb=label: self.add_entry(StyleEntry(
                        "layer", lb, doc=d, node=nd, icon=nd.thumbnail(ICON, ICON))))

    def _library_entry(self, entry):
        style_id = entry.get("style_id") or entry.get("id")
        name = entry.get("name") or style_id
        size = (entry["width"], entry["height"]) if "width" in entry and "height" in entry else None
        return StyleEntry("library", name, style_id=style_id, icon=sources.library_thumbnail(entry), size=size)

    def _fill_library_menu(self):
        self.library_menu.clear()
        library = self.session.status().library
        if not library:
            self.library_menu.addAction("(library empty or sanetd not connected)").setEnabled(False)
        for entry in library:
            style = self._library_entry(entry)
            action = self.library_menu.addAction(style.label)
            if style.icon is not None:
                action.setIcon(QIcon(QPixmap.fromImage(style.icon)))
            action.triggered.connect(lambda _=False, e=entry: self.add_entry(self._library_entry(e)))

    # ---- the daemon's library ---------------------------------------------------------------------
    def _show_library(self, library):
        selected = {i.data(Qt.UserRole) for i in self.library_view.selectedItems()}
        self.library_view.clear()
        for entry in library:
            style = self._library_entry(entry)
            item = QListWidgetItem(style.label)
            if style.icon is not None:
                item.setIcon(QIcon(QPixmap.fromImage(style.icon)))
            item.setData(Qt.UserRole, style.style_id)
            item.setToolTip("%s (%s×%s)" % (style.label, entry.get("width", "?"), entry.get("height", "?")))
            self.library_view.addItem(item)
            item.setSelected(style.style_id in selected)

    def _selected_library(self):
        ids = [i.data(Qt.UserRole) for i in self.library_view.selectedItems()]
        return [e for e in self.session.status().library if (e.get("style_id") or e.get("id")) in ids]

    def use_library_selected(self):
        for entry in self._selected_library():
            self.add_entry(self._library_entry(entry))

    def library_add_layer(self):
        """Store the active layer (scaled to at most the style size) in sanetd's library."""
        try:
            doc = _krita().activeDocument()
            node = document.active_layer(doc)
            image = sources.image_from_node(doc, node)
        except Exception as exc:
            self.show_message(str(exc), error=True)
            return
        self._library_add(node.name(), image)

    def library_add_file(self, path=None):
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Style image for the library", "", STYLE_FILES)
            if not path:
                return
        try:
            image = sources.image_from_file(path)
        except sources.StyleSourceError as exc:
            self.show_message(str(exc), error=True)
            return
        self._library_add(os.path.splitext(os.path.basename(path))[0], image)

    def _library_add(self, name, image):
        mod = self._client_module()
        if mod is None:
            return
        pixels = sources.style_pixels(mod, image, 1.0)

        def add(mod, client, report, cancel):
            return client.styles_add(name, pixels)

        self._side_task(add, lambda entry: "Added %r to the library." % (entry.get("name") or name))

    def library_remove_selected(self, confirm=True):
        chosen = self._selected_library()
        if not chosen:
            self.show_message("Select a style in the Library tab first.", error=True)
            return
        names = ", ".join(repr(e.get("name")) for e in chosen)
        if confirm and QMessageBox.question(
                self, "Delete from the library", "Delete %s from sanetd's style library?" % names,
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No) != QMessageBox.Yes:
            return
        ids = [e.get("style_id") or e.get("id") for e in chosen]
        # rows of the style list that use them would fail with "unknown style": take them out too
        self.model.remove_rows([r for r, e in enumerate(self.model.entries)
                                if e.kind == "library" and e.style_id in ids])

        def remove(mod, client, report, cancel):
            for style_id in ids:
                client.styles_remove(style_id)
            return ids

        self._side_task(remove, lambda _ids: "Deleted %s from the library." % names)

    def _side_task(self, fn, done_message):
        mod = self._client_module()
        if mod is None:
            return
        task = Task(mod, fn, timeout=JOB_QUIET_S, expected=EXPECTED, retries=1,
                    connection_file=self.session.connection_file).start()
        task.done_message = done_message
        self.side_tasks.append(task)
        self.timer.start()

    def _side_event(self, task, event):
        if event[0] == "done":
            self.show_message(task.done_message(event[1]))
            if self.session.monitor is not None:
                self.session.monitor.refresh_library()
        elif event[0] == "error":
            self.show_message(event[1], error=True)

    # ---- settings ------------------------------------------------------------------------------
    def _fill_models(self):
        """The model entries, marked (and disabled) when sanetd has no weights for them; the choice is kept."""
        try:
            entries = pipeline.naming().model_choices(self._installed)
        except clientlib.ClientMissing:
            self.model_combo.setEnabled(False)    # the docker says what is missing
            return
        self.model_combo.setToolTip(pipeline.naming().MODEL_TOOLTIP)
        current = self.model_combo.currentData()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for model, keys, text in entries:
            self.model_combo.addItem(text, (model, keys))
            item = self.model_combo.model().item(self.model_combo.count() - 1)
            item.setEnabled(self._installed is None or model in self._installed)
        at = self.model_combo.findData(current) if current is not None else 0
        self.model_combo.setCurrentIndex(max(at, 0))
        self.model_combo.blockSignals(False)

    def set_model(self, model, style_keys=None):
        """Pick the entry of (model, style_keys) (tests and scripts; the artist uses the combo)."""
        choice = pipeline.naming().model_choice(model, style_keys)
        at = self.model_combo.findData(choice)
        if at < 0:
            raise ValueError("no model entry %r" % (choice,))
        self.model_combo.setCurrentIndex(at)

    def _fill_quality(self, wanted=None):
        """Exact / Fast as sanetd's hello allows (Fast disabled where it has no fast precision), the note; the
        choice shown is ``wanted`` (default: the current one), Exact where Fast cannot run."""
        try:
            names = pipeline.naming()
        except clientlib.ClientMissing:
            self.quality_combo.setEnabled(False)   # the docker says what is missing
            return
        known, fast = self._fast
        wanted = self.quality_combo.currentData() if wanted is None else wanted
        try:
            wanted = names.quality_choice(wanted)
        except ValueError:
            wanted = None
        self.quality_combo.setToolTip(names.QUALITY_TOOLTIP)
        self.quality_combo.blockSignals(True)
        self.quality_combo.clear()
        enabled = {}
        for quality, text, on in names.quality_choices(fast, known=known):
            self.quality_combo.addItem(text, quality)
            self.quality_combo.model().item(self.quality_combo.count() - 1).setEnabled(on)
            enabled[quality] = on
        at = self.quality_combo.findData(wanted if enabled.get(wanted) else names.quality_choice(None))
        self.quality_combo.setCurrentIndex(max(at, 0))
        self.quality_combo.blockSignals(False)
        self.quality_note.setText(messages.wrappable(names.quality_note(fast, known=known)))

    def _quality_chosen(self, index):
        quality = self.quality_combo.itemData(index)
        if quality:
            prefs.save(QUALITY_KEY, quality)
            self.session.choose_quality(quality)
            self._quality_serial = self.session.quality_serial

    def _follow_quality(self):
        """Take over a Quality choice made in the other view (docker or dialog), where this sanetd offers it."""
        if self._quality_serial == self.session.quality_serial:
            return
        self._quality_serial = self.session.quality_serial
        at = self.quality_combo.findData(self.session.quality)
        if at >= 0 and self.quality_combo.model().item(at).isEnabled() and at != self.quality_combo.currentIndex():
            self.quality_combo.blockSignals(True)
            self.quality_combo.setCurrentIndex(at)
            self.quality_combo.blockSignals(False)

    def set_quality(self, quality):
        """Pick Exact or Fast (tests and scripts; the artist uses the combo); remembered like the combo's choice."""
        quality = pipeline.naming().quality_choice(quality)
        at = self.quality_combo.findData(quality)
        if at < 0 or not self.quality_combo.model().item(at).isEnabled():
            raise ValueError("quality %r is not offered by this sanetd" % quality)
        self.quality_combo.setCurrentIndex(at)

    def options(self):
        semantic = self.semantic.isChecked()
        model, style_keys = self.model_combo.currentData() or (None, None)
        return pipeline.Options(alpha=self.strength.value() / 100.0,
                                preserve_color=self.preserve.isChecked(),
                                only_selection=self.only_selection.isChecked(),
                                scsa_weights=(self.scsa_t1.value(), self.scsa_t2.value()) if semantic else None,
                                model=model, style_keys=style_keys,
                                quality=self.quality_combo.currentData())

    def settings(self):
        return Settings(self.options(), [e.copy() for e in self.model.entries],
                        self.label_layer_name if self.semantic.isChecked() else None)

    def semantic_problem(self, mod, settings=None):
        """Why the Semantic (SCSA) settings cannot run, or None (also None when the group is off)."""
        settings = settings or self.settings()
        if not settings.semantic:
            return None
        if not hasattr(mod, "Labels"):
            return ("Semantic (SCSA) needs a newer sanet_client (with label maps): run the sanet-style "
                    "installer for Krita again.")
        if not settings.label_layer:
            return "Semantic (SCSA): choose the label layer (the layer painted with region colours)."
        if not any(e.labels_path for e in settings.entries):
            return "Semantic (SCSA): give at least one style a label map (select it, then 'Style label map…')."
        return None

    def _client_module(self, quiet=False):
        if self.session.monitor is None:
            if not quiet:
                self.show_message(self.session.client_error or "sanet_client is missing.", error=True)
            return None
        return self.session.monitor.mod

    def _prepare(self, mod, settings):
        """(doc, snapshot, client styles, label layer bytes) on the main thread; raises an artist message."""
        doc = _krita().activeDocument()
        snap = document.snapshot(doc, settings.options.only_selection)
        styles = [e.to_style(mod, with_labels=settings.semantic) for e in settings.entries]
        content = labels.read_label_layer(doc, settings.label_layer) if settings.semantic else None
        return doc, snap, styles, content

    # ---- connection -------------------------------------------------------------------------
    SERVER_LOCAL, SERVER_FILE, SERVER_CHOOSE = "local", "file", "choose"

    def _fill_servers(self):
        """This computer / the chosen connection file / A connection file…"""
        combo, path = self.server_combo, self.session.connection_file
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("This computer", self.SERVER_LOCAL)
        if path:
            combo.addItem(os.path.basename(path), self.SERVER_FILE)
        combo.addItem("A connection file…", self.SERVER_CHOOSE)
        combo.setCurrentIndex(1 if path else 0)
        mod = self._client_module(quiet=True)
        combo.setToolTip("Server: %s" % (server.label(mod, path) if mod is not None else (path or "this computer")))
        combo.blockSignals(False)

    def _server_chosen(self, index):
        kind = self.server_combo.itemData(index)
        if kind == self.SERVER_CHOOSE:
            start = os.path.dirname(self.session.connection_file or "") or os.path.expanduser("~")
            path, _ = QFileDialog.getOpenFileName(self, "Connection file of a sanetd (from `sanetd invite`)", start,
                                                  "Connection files (*.json);;All files (*)")
            if path:
                self.set_server(path)
            else:
                self._fill_servers()
        elif kind == self.SERVER_LOCAL:
            self.set_server(None)

    def set_server(self, path):
        """Use another Server (None: this computer); remembered in the Krita profile."""
        if (path or None) == self.session.connection_file:
            self._fill_servers()
            return
        self.session.set_server(path)
        self._fill_servers()
        self._status_serial = -1
        self._read_status()

    def check_connection(self):
        if self.session.monitor is not None:
            self.session.monitor.start().check_now()
        self._read_status()

    def start_daemon(self):
        if self.session.monitor is None:
            return
        problem = self.session.monitor.start().start_daemon()
        if problem:
            self.show_message(problem, error=True)
        else:
            self.show_message("Starting sanetd…")
        self._read_status()

    def _read_status(self):
        self._follow_quality()
        status = self.session.status()
        if status.serial == self._status_serial and self._status_serial >= 0:
            return
        was = self.connected
        self._status_serial = status.serial
        self.connected = status.connected
        self.status_label.setText(messages.wrappable(status.headline()))
        colour = OK_COLOUR if status.connected else (ERROR_COLOUR if status.state in (
            connection.NOT_RUNNING, connection.ERROR) else "")
        self.status_label.setStyleSheet("color: %s;" % colour if colour else "")
        detail = status.text()
        self.status_detail.setText(messages.wrappable(detail))
        self.status_detail.setVisible(bool(detail))
        self.start_button.setVisible(status.offer_start)
        installed = [m["name"] for m in clientlib.load().protocol.hello_models(status.hello)] \
            if status.connected and self.session.monitor is not None else None
        if installed != self._installed:
            self._installed = installed
            self._fill_models()
        fast = (False, None)
        if status.connected and isinstance(status.hello, dict):
            caps = status.hello.get("capabilities")
            if isinstance(caps, dict) and "precisions" in caps:
                fast = (True, caps.get("fast_precision") or None)
        if fast != self._fast:
            self._fast = fast
            self._fill_quality(prefs.load(QUALITY_KEY, ""))   # the remembered choice, where it can run
        if status.library_serial != self._library_serial:
            self._library_serial = status.library_serial
            self._show_library(status.library)
        if status.connected and not was:
            self.schedule_preview()
        elif not status.connected and self.pane.image is None:
            self.pane.set_placeholder("The preview needs sanetd: %s." % status.headline())

    # ---- live preview -------------------------------------------------------------------------
    def schedule_preview(self, *_):
        """A setting changed: preview again DEBOUNCE_MS after the last change."""
        if self.live.isChecked():
            self.preview_timer.start()

    def _live_toggled(self, on):
        if on:
            self.schedule_preview()
        elif self.preview_task is not None:
            self.preview_task.abandon()
            self.preview_task = None
            self.pane.set_busy(False)

    def _preview_problem(self, settings):
        if not self.connected:
            return "The preview needs sanetd: %s." % self.session.status().headline()
        if not settings.entries:
            return "Add a style (File…, Open image or Library) to see a preview."
        doc = _krita().activeDocument()
        if doc is None:
            return "Open a document to see a preview."
        mod = self.session.monitor.mod
        return self.semantic_problem(mod, settings)

    def run_preview(self, force=False):
        """Render the preview now: scale the layer here, send the small layer, show the result."""
        if not (self.live.isChecked() or force) or not self.isVisible():
            return
        if self.task is not None:          # a full-resolution run has the daemon: preview after it
            self._preview_wanted = True
            return
        settings = self.settings()
        problem = self._preview_problem(settings)
        if problem:
            if self.pane.image is None:
                self.pane.set_placeholder(problem)
            return
        mod = self.session.monitor.mod
        try:
            doc, snap, styles, content = self._prepare(mod, settings)
        except Exception as exc:
            self.pane.clear(messages.sentence(exc))
            return
        if self.preview_task is not None:   # superseded by these settings: cancel it in sanetd too
            self.preview_task.abandon()
        known = {item.key for item in self.history.items}
        node_id = _node_id(snap.node)
        started = time.monotonic()

        def run(mod, client, report, cancel):
            prepared = preview.PreviewInput(snap, content)
            key = (node_id, settings.key(), prepared.fingerprint())
            if key in known:
                return dict(key=key, cached=True)
            result = pipeline.stylize_preview(mod, client, prepared, styles, settings.options, report, cancel)
            return dict(key=key, cached=False, prepared=prepared, result=result,
                        image=preview.rgba8_image(result.format, result.data, result.width, result.height),
                        before=preview.rgba8_image(prepared.format, prepared.data, prepared.width,
                                                   prepared.height))

        task = Task(mod, run, timeout=JOB_QUIET_S, expected=EXPECTED, retries=1,
                    connection_file=self.session.connection_file)
        task.settings, task.started, task.source = settings, started, snap.node.name()
        self.preview_task = task.start()
        self.pane.set_busy(True)
        self.timer.start()

    def _preview_event(self, task, event):
        kind = event[0]
        if kind == "progress":
            return
        self.pane.set_busy(False)
        if kind == "done":
            value = event[1]
            item = self.history.find(value["key"])
            if item is None and not value["cached"]:
                settings = task.settings
                item = preview.HistoryItem(value["image"], value["key"],
                                           settings.options.result_name(settings.names(), preview=True),
                                           settings, before=value["before"],
                                           seconds=time.monotonic() - task.started,
                                           short="%d %%" % round(settings.options.alpha * 100))
                self.history.add(item)
                value["settings"] = settings
                self.last_preview = value
            if item is not None:
                self._show_history(item)
        elif kind == "error":
            self.pane.clear(messages.sentence(event[1]))
            if isinstance(event[2], task.client_module.DaemonNotRunning):
                self.check_connection()

    def _show_history(self, current):
        """Rebuild the strip from the history and show ``current`` (None: the history is empty)."""
        self.history_view.show_history(self.history.items, current=current)
        self.history_box.setVisible(bool(self.history.items))
        if current is not None:
            self._show_history_item(current)
        else:
            self._update_history_buttons()

    def _show_history_item(self, item):
        if item is None:
            self._update_history_buttons()
            return
        w, h = item.image.width(), item.image.height()
        self.pane.set_image(item.image, item.before, "%s · %d×%d" % (item.name, w, h))
        self._update_history_buttons()

    def _update_history_buttons(self):
        chosen = self.history_view.selected() is not None
        self.apply_history_button.setEnabled(chosen and self.task is None)
        self.discard_button.setEnabled(chosen)

    def apply_history_item(self):
        item = self.history_view.selected()
        if item is not None:
            self.apply(item.settings)

    def discard_history_item(self):
        item = self.history_view.selected()
        if item is None:
            return
        self.history.remove(item)
        newest = self.history.items[0] if self.history.items else None
        self._show_history(newest)
        if newest is None:
            self.pane.clear("History is empty; change a setting or press Refresh for a new preview.")

    def _watch_document(self):
        """Krita has no Python signals for layer or selection changes: compare them (cheaply) now and then."""
        if not (self.live.isChecked() and self.isVisible() and self.connected):
            return
        try:
            doc = _krita().activeDocument()
            node = doc.activeNode() if doc is not None else None
            selection = doc.selection() if doc is not None else None
            watched = (_node_id(doc.rootNode()) if doc is not None else None, _node_id(node),
                       None if selection is None else (selection.x(), selection.y(), selection.width(),
                                                       selection.height()),
                       bytes(_thumb_bits(node)) if node is not None else None)
        except Exception:
            return
        if watched != self._watched:
            first = self._watched is None
            self._watched = watched
            if not first:
                self.schedule_preview()

    def showEvent(self, event):
        super().showEvent(event)
        self.schedule_preview()

    # ---- full-resolution job ----------------------------------------------------------------------
    def apply(self, settings=None):
        """Stylize the active layer at full resolution with ``settings`` (default: the controls')."""
        if self.task is not None:
            return
        mod = self._client_module()
        if mod is None:
            return
        settings = settings or self.settings()
        if not settings.entries:
            self.show_message("Add at least one style (File…, Open image or Library).", error=True)
            return
        problem = self.semantic_problem(mod, settings)
        if problem:
            self.show_message(problem, error=True)
            return
        try:
            doc, snap, styles, content = self._prepare(mod, settings)
        except Exception as exc:  # DocumentError, FormatError, StyleSourceError, LabelError: artist messages
            self.show_message(str(exc), error=True)
            return
        if self.preview_task is not None:    # the daemon is ours now; the preview follows the job
            self.preview_task.abandon()
            self.preview_task = None
            self.pane.set_busy(False)
            self._preview_wanted = True
        options = settings.options

        def run(mod, client, report, cancel):
            return pipeline.run_job(mod, client, snap, styles, options, on_progress=report,
                                    cancel_event=cancel, content_labels=content)

        self.snap = snap
        self.job_settings = settings        # the layer is named when the result says how it ran (fast or not)
        self.task = Task(mod, run, timeout=JOB_QUIET_S, expected=EXPECTED,
                         connection_file=self.session.connection_file)
        self.apply_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._update_history_buttons()
        self.progress.setValue(0)
        self.show_message("Stylizing %s…" % snap.node.name())
        self.task.start()
        self.timer.start()

    def cancel(self):
        """Stop the job now: the docker is free at once; sanetd is told to stop and any late result is dropped."""
        if self.task is None:
            return
        self.task.abandon()
        self.task = None
        self._job_over()
        self.progress.setValue(0)
        self.show_message("Cancelled; nothing was added.")

    def _job_over(self):
        self.apply_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.snap = None
        self._update_history_buttons()
        if self._preview_wanted:
            self._preview_wanted = False
            self.schedule_preview()

    def _job_event(self, event):
        kind = event[0]
        if kind == "progress":
            self.progress.setValue(int(max(0.0, min(1.0, event[1])) * 1000))
            if event[2]:
                self.show_message("Stylizing: %s" % event[2])
            return
        snap = self.snap
        if kind == "done":
            try:
                prepared, info = event[1]
                name = self.job_settings.options.result_name(self.job_settings.names(), preview=False,
                                                             precision=info.get("precision"))
                layer = document.insert_layer(snap, prepared, name)
                self.progress.setValue(1000)
                original = snap.node
                # Krita may activate the new layer when its node model catches up: make the source active again
                QTimer.singleShot(0, lambda d=snap.document, n=original: d.setActiveNode(n))
                self.show_message("Added layer %r above %r, which stays active for the next run."
                                  % (layer.name(), original.name()))
            except Exception as exc:
                self.show_message(str(exc), error=True)
        elif kind == "cancelled":
            self.progress.setValue(0)
            self.show_message("Cancelled; nothing was added.")
        else:
            self.progress.setValue(0)
            self.show_message(event[1], error=True)
            if isinstance(event[2], self.task.client_module.DaemonNotRunning):
                self.check_connection()      # sanetd died or vanished mid-job: let the heartbeat say so now
        self.task = None
        self._job_over()

    # ---- event pump -----------------------------------------------------------------------------
    def _poll(self):
        if self.task is not None:
            task = self.task
            for event in task.poll():
                if self.task is task:
                    self._job_event(event)
        if self.preview_task is not None:
            task = self.preview_task
            for event in task.poll():
                self._preview_event(task, event)
            if task.finished and self.preview_task is task:
                self.preview_task = None
        for task in list(self.side_tasks):
            for event in task.poll():
                self._side_event(task, event)
            if task.finished:
                self.side_tasks.remove(task)
        if self.task is None and self.preview_task is None and not self.side_tasks:
            self.timer.stop()

    def show_message(self, text, error=False):
        self.message.setText(messages.wrappable(messages.sentence(text) if error else text))
        self.message.setStyleSheet("color: %s;" % ERROR_COLOUR if error else "")


def _tool(text, tooltip):
    """A compact button that shares a row with others (QPushButton's minimum width makes rows too wide)."""
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tooltip)
    button.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
    return button


def _wrapping_label(text):
    """A label that wraps and never makes the docker wider than it is."""
    label = QLabel(text)
    label.setWordWrap(True)
    policy = QSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    policy.setHeightForWidth(True)
    label.setSizePolicy(policy)
    label.setMinimumWidth(60)
    return label


def _node_id(node):
    if node is None:
        return None
    try:
        return node.uniqueId().toString()
    except AttributeError:       # older libkis
        return node.name()


def _thumb_bits(node):
    """A tiny thumbnail's pixels: changes when the layer is painted on (a cheap change detector)."""
    image = node.thumbnail(24, 24)
    if image.isNull():
        return b""
    ptr = image.constBits()
    ptr.setsize(image.byteCount())
    return ptr


def _layer_names(nodes):
    """Names of the layers among ``nodes`` and their children, top to bottom (masks left out)."""
    out = []
    for node in reversed(list(nodes)):
        if node.type() in document.LAYER_TYPES:
            out.append(node.name())
        out.extend(_layer_names(node.childNodes()))
    return out
