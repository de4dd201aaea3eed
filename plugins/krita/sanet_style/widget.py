"""The Style Transfer controls, shared by the docker and the Tools > Scripts dialog.

All Krita and widget access happens on the main thread; daemon calls run in worker.Task threads and
report back through a queue drained by a QTimer, so Krita never freezes while sanetd works.
"""
import os

from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QIcon, QPixmap
from PyQt5.QtWidgets import (QAbstractItemView, QCheckBox, QDoubleSpinBox, QFileDialog, QGroupBox,
                             QHBoxLayout, QHeaderView, QLabel, QMenu, QProgressBar, QPushButton, QRadioButton,
                             QSlider, QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout,
                             QWidget)

from . import clientlib, document, formats, labels, pipeline, sources
from .worker import Task

POLL_MS = 50                 # queue drain interval while something runs
RECONNECT_MS = 5000          # retry interval while sanetd is unreachable
JOB_QUIET_S = 10.0          # no word from sanetd (it answers pings even when busy) for this long = gone
ICON = 40
LABEL_FILES = "Images (*.png *.bmp *.tif *.tiff *.webp)"   # no JPEG: its noise invents label colours


def _krita():
    from krita import Krita
    return Krita.instance()


class StyleEntry:
    """One row of the style list: where the style comes from, its weight and (SCSA) its label-map file."""

    def __init__(self, kind, label, weight=1.0, path=None, doc=None, node=None, style_id=None, icon=None,
                 labels_path=None, size=None):
        self.kind, self.label, self.weight = kind, label, weight
        self.path, self.doc, self.node, self.style_id, self.icon = path, doc, node, style_id, icon
        self.labels_path = labels_path   # label-map image at the style's own size, or None
        self.size = size                 # (width, height) of a library style, from styles.list

    def to_style(self, mod, with_labels=False):
        """The sanet_client style object (called on the main thread: Krita thumbnails need it)."""
        use_labels = with_labels and bool(self.labels_path)
        if self.kind == "library":
            lab = None
            if use_labels:   # sent at the stored image's size; without it, at the file's own size
                own = self.size or _image_size(self.labels_path)
                lab = labels.style_labels(mod, self.labels_path, own, own)
            return mod.StyleRef(self.style_id, weight=self.weight, labels=lab) if lab else \
                mod.StyleRef(self.style_id, weight=self.weight)
        if self.kind == "file":
            image = sources.image_from_file(self.path)
            own = (image.width(), image.height())
        elif self.kind == "document":
            image = sources.image_from_document(self.doc)
            own = (self.doc.width(), self.doc.height())
        else:
            image = sources.image_from_node(self.doc, self.node)
            own = (self.doc.width(), self.doc.height())
        style = sources.style_pixels(mod, image, self.weight)
        if use_labels:
            style.labels = labels.style_labels(mod, self.labels_path, own, (style.width, style.height))
        return style


def _image_size(path):
    from PyQt5.QtGui import QImageReader
    size = QImageReader(path).size()
    return size.width(), size.height()


class StyleTransferWidget(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries = []
        self.library = []            # last styles.list answer
        self.task = None             # the running stylize job
        self.status_task = None      # the running connection check
        self.snap = None
        self.connected = False
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        self.reconnect_timer = QTimer(self)
        self.reconnect_timer.setInterval(RECONNECT_MS)
        self.reconnect_timer.timeout.connect(self.check_connection)
        QTimer.singleShot(0, self.check_connection)

    # ---- layout -------------------------------------------------------------------------------
    def _build(self):
        box = QVBoxLayout(self)

        row = QHBoxLayout()
        self.status_label = QLabel("sanetd: checking…")
        self.status_label.setWordWrap(True)
        self.reconnect_button = QPushButton("Reconnect")
        self.reconnect_button.clicked.connect(self.check_connection)
        row.addWidget(self.status_label, 1)
        row.addWidget(self.reconnect_button)
        box.addLayout(row)

        box.addWidget(QLabel("Styles"))
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Style", "Weight", "Label map"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setIconSize(QPixmap(ICON, ICON).size())
        box.addWidget(self.table)

        row = QHBoxLayout()
        add_file = QPushButton("File…")
        add_file.clicked.connect(self.add_file_dialog)
        self.open_button = QToolButton()
        self.open_button.setText("Open image ▾")
        self.open_button.setPopupMode(QToolButton.InstantPopup)
        self.open_menu = QMenu(self.open_button)
        self.open_menu.aboutToShow.connect(self._fill_open_menu)
        self.open_button.setMenu(self.open_menu)
        self.library_button = QToolButton()
        self.library_button.setText("Library ▾")
        self.library_button.setPopupMode(QToolButton.InstantPopup)
        self.library_menu = QMenu(self.library_button)
        self.library_menu.aboutToShow.connect(self._fill_library_menu)
        self.library_button.setMenu(self.library_menu)
        remove = QPushButton("Remove")
        remove.clicked.connect(self.remove_selected)
        for w in (add_file, self.open_button, self.library_button, remove):
            row.addWidget(w)
        box.addLayout(row)

        row = QHBoxLayout()
        row.addWidget(QLabel("Strength"))
        self.strength = QSlider(Qt.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(100)
        self.strength_label = QLabel("100 %")
        self.strength.valueChanged.connect(lambda v: self.strength_label.setText("%d %%" % v))
        row.addWidget(self.strength, 1)
        row.addWidget(self.strength_label)
        box.addLayout(row)

        box.addWidget(self._build_semantic())

        self.preserve = QCheckBox("Preserve colours")
        self.only_selection = QCheckBox("Only inside the selection")
        self.only_selection.setChecked(True)
        box.addWidget(self.preserve)
        box.addWidget(self.only_selection)
        row = QHBoxLayout()
        self.preview = QRadioButton("Preview (fast)")
        self.full = QRadioButton("Full resolution")
        self.full.setChecked(True)
        row.addWidget(self.preview)
        row.addWidget(self.full)
        box.addLayout(row)

        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.apply_button)
        row.addWidget(self.cancel_button)
        box.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        box.addWidget(self.progress)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        box.addWidget(self.message)
        box.addStretch(1)

    def _build_semantic(self):
        """Semantic (SCSA) group: region-to-region style from a label layer and per-style label maps."""
        self.semantic = QGroupBox("Semantic (SCSA)")
        self.semantic.setCheckable(True)
        self.semantic.setChecked(False)
        self.semantic.setToolTip("Paint flat colours on a label layer (sky, face, ...) and give a style a label "
                                 "map with the same colours: each region takes style only from its own region.")
        g = QVBoxLayout(self.semantic)
        row = QHBoxLayout()
        row.addWidget(QLabel("Label layer"))
        self.label_layer_name = None
        self.label_layer_button = QToolButton()
        self.label_layer_button.setText("(choose) ▾")
        self.label_layer_button.setPopupMode(QToolButton.InstantPopup)
        self.label_layer_menu = QMenu(self.label_layer_button)
        self.label_layer_menu.aboutToShow.connect(self._fill_label_layer_menu)
        self.label_layer_button.setMenu(self.label_layer_menu)
        row.addWidget(self.label_layer_button, 1)
        g.addLayout(row)
        row = QHBoxLayout()
        pick = QPushButton("Style label map…")
        pick.setToolTip("A label-map image for the selected style, at that style image's size")
        pick.clicked.connect(self.style_labels_dialog)
        clear = QPushButton("Clear")
        clear.clicked.connect(lambda: self.set_style_labels(None))
        row.addWidget(pick, 1)
        row.addWidget(clear)
        g.addLayout(row)
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
            row.addWidget(QLabel(name))
            row.addWidget(spin)
        g.addLayout(row)
        hint = QLabel("Same colour = same region; unpainted parts of the label layer count as black.")
        hint.setWordWrap(True)
        g.addWidget(hint)
        return self.semantic

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
        self.label_layer_button.setText("%s ▾" % name if name else "(choose) ▾")

    def style_labels_dialog(self):
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if not rows:
            self.show_message("Select a style in the list first, then choose its label map.", error=True)
            return
        path, _ = QFileDialog.getOpenFileName(self, "Label map of the style", "", LABEL_FILES)
        if path:
            self.set_style_labels(path, rows)

    def set_style_labels(self, path, rows=None):
        """Attach a label-map file to the given (default: selected) style rows; None removes it."""
        if rows is None:
            rows = sorted({i.row() for i in self.table.selectedIndexes()})
        for r in rows:
            self.entries[r].labels_path = path
            self.table.setItem(r, 2, _readonly_item(os.path.basename(path) if path else ""))

    # ---- style list -------------------------------------------------------------------------
    def add_entry(self, entry):
        self.entries.append(entry)
        r = self.table.rowCount()
        self.table.insertRow(r)
        item = QTableWidgetItem(entry.label)
        item.setFlags(item.flags() & ~Qt.ItemIsEditable)
        if entry.icon is not None:
            item.setIcon(QIcon(QPixmap.fromImage(entry.icon)))
        self.table.setItem(r, 0, item)
        spin = QDoubleSpinBox()
        spin.setRange(0.0, 10.0)
        spin.setSingleStep(0.1)
        spin.setValue(entry.weight)
        spin.valueChanged.connect(lambda v, e=entry: setattr(e, "weight", float(v)))
        self.table.setCellWidget(r, 1, spin)
        self.table.setItem(r, 2, _readonly_item(os.path.basename(entry.labels_path or "")))

    def remove_selected(self):
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        for r in rows:
            self.table.removeRow(r)
            del self.entries[r]

    def add_file_dialog(self):
        paths, _ = QFileDialog.getOpenFileNames(self, "Style images", "",
                                                "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)")
        for path in paths:
            self.add_file(path)

    def add_file(self, path, weight=1.0):
        try:
            image = sources.image_from_file(path)
        except sources.StyleSourceError as exc:
            self.show_message(str(exc), error=True)
            return
        self.add_entry(StyleEntry("file", os.path.basename(path), weight, path=path,
                                  icon=image.scaled(ICON, ICON, Qt.KeepAspectRatio)))

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

    def _fill_library_menu(self):
        self.library_menu.clear()
        if not self.library:
            self.library_menu.addAction("(library empty or sanetd not connected)").setEnabled(False)
        for entry in self.library:
            style_id = entry.get("style_id") or entry.get("id")
            name = entry.get("name") or style_id
            thumb = sources.library_thumbnail(entry)
            action = self.library_menu.addAction(name)
            if thumb is not None:
                action.setIcon(QIcon(QPixmap.fromImage(thumb)))
            size = (entry["width"], entry["height"]) if "width" in entry and "height" in entry else None
            action.triggered.connect(lambda _=False, s=style_id, n=name, t=thumb, z=size: self.add_entry(
                StyleEntry("library", n, style_id=s, icon=t, size=z)))

    # ---- options ------------------------------------------------------------------------------
    def options(self):
        semantic = self.semantic.isChecked()
        return pipeline.Options(alpha=self.strength.value() / 100.0,
                                preserve_color=self.preserve.isChecked(),
                                preview=self.preview.isChecked(),
                                only_selection=self.only_selection.isChecked(),
                                scsa_weights=(self.scsa_t1.value(), self.scsa_t2.value()) if semantic else None)

    def semantic_problem(self, mod):
        """Why the Semantic (SCSA) settings cannot run, or None (also None when the group is off)."""
        if not self.semantic.isChecked():
            return None
        if not hasattr(mod, "Labels"):
            return ("Semantic (SCSA) needs a newer sanet_client (with label maps): run the sanet-style "
                    "installer for Krita again.")
        if not self.label_layer_name:
            return "Semantic (SCSA): choose the label layer (the layer painted with region colours)."
        if not any(e.labels_path for e in self.entries):
            return "Semantic (SCSA): give at least one style a label map (select it, then 'Style label map…')."
        return None

    # ---- connection -------------------------------------------------------------------------
    def check_connection(self):
        if self.status_task is not None:
            return
        try:
            mod = clientlib.load()
        except clientlib.ClientMissing as exc:
            self.set_status(False, str(exc))
            return

        def ask(mod, client, report, cancel):
            hello = client.hello()
            try:
                styles = client.styles_list()
            except mod.SanetClientError:
                styles = []
            return hello, styles

        self.status_task = Task(mod, ask, timeout=3.0).start()
        self.timer.start()

    def set_status(self, ok, text):
        self.connected = ok
        self.status_label.setText(text)
        self.status_label.setStyleSheet("" if ok else "color: #c0392b;")
        if ok:
            self.reconnect_timer.stop()
        elif not self.reconnect_timer.isActive():
            self.reconnect_timer.start()

    def _status_event(self, event):
        if event[0] == "done":
            hello, styles = event[1]
            self.library = list(styles or [])
            device = hello.get("device") or hello.get("devices") or ""
            self.set_status(True, "sanetd connected%s" % (" (%s)" % device if device else ""))
        elif event[0] == "error":
            self.set_status(False, "sanetd: %s Retrying every %d s." % (event[1], RECONNECT_MS // 1000))

    # ---- job --------------------------------------------------------------------------------
    def apply(self):
        if self.task is not None:
            return
        try:
            mod = clientlib.load()
        except clientlib.ClientMissing as exc:
            self.show_message(str(exc), error=True)
            return
        if not self.entries:
            self.show_message("Add at least one style (File…, Open image or Library).", error=True)
            return
        problem = self.semantic_problem(mod)
        if problem:
            self.show_message(problem, error=True)
            return
        options = self.options()
        semantic = self.semantic.isChecked()
        try:
            doc = _krita().activeDocument()
            self.snap = document.snapshot(doc, options.only_selection)
            styles = [e.to_style(mod, with_labels=semantic) for e in self.entries]
            content_labels = labels.read_label_layer(doc, self.label_layer_name) if semantic else None
        except Exception as exc:  # DocumentError, FormatError, StyleSourceError, LabelError: artist messages
            self.show_message(str(exc), error=True)
            return
        names = [e.label for e in self.entries]
        snap = self.snap

        def run(mod, client, report, cancel):
            return pipeline.run_job(mod, client, snap, styles, options, on_progress=report,
                                    cancel_event=cancel, content_labels=content_labels)

        self.task = Task(mod, run, timeout=JOB_QUIET_S,
                         expected=(document.DocumentError, formats.FormatError, labels.LabelError, ValueError))
        self.layer_name = options.result_name(names)
        self.apply_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.show_message("Stylizing %s…" % snap.node.name())
        self.task.start()
        self.timer.start()

    def cancel(self):
        if self.task is not None:
            self.task.cancel()
            self.show_message("Cancelling…")

    def _job_event(self, event):
        kind = event[0]
        if kind == "progress":
            self.progress.setValue(int(max(0.0, min(1.0, event[1])) * 1000))
            if event[2]:
                self.show_message("Stylizing: %s" % event[2])
            return
        self.apply_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if kind == "done":
            try:
                layer = document.insert_layer(self.snap, event[1], self.layer_name)
                self.progress.setValue(1000)
                self.show_message("Added layer %r above %r." % (layer.name(), self.snap.node.name()))
            except Exception as exc:
                self.show_message(str(exc), error=True)
        elif kind == "cancelled":
            self.progress.setValue(0)
            self.show_message("Cancelled; nothing was added.")
        else:
            self.progress.setValue(0)
            self.show_message(event[1], error=True)
            mod = self.task.client_module
            if isinstance(event[2], mod.DaemonNotRunning):
                # sanetd died or vanished mid-job: say so at once; the reconnect timer takes over.
                self.set_status(False, "sanetd: %s Retrying every %d s." % (event[1], RECONNECT_MS // 1000))
            self.check_connection()
        self.snap = None

    def _poll(self):
        if self.status_task is not None:
            for event in self.status_task.poll():
                self._status_event(event)
            if self.status_task.finished:
                self.status_task = None
        if self.task is not None:
            for event in self.task.poll():
                self._job_event(event)
            if self.task is not None and self.task.finished:
                self.task = None
        if self.task is None and self.status_task is None:
            self.timer.stop()

    def show_message(self, text, error=False):
        self.message.setText(text)
        self.message.setStyleSheet("color: #c0392b;" if error else "")


def _readonly_item(text):
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemIsEditable)
    return item


def _layer_names(nodes):
    """Names of the layers among ``nodes`` and their children, top to bottom (masks left out)."""
    out = []
    for node in reversed(list(nodes)):
        if node.type() in document.LAYER_TYPES:
            out.append(node.name())
        out.extend(_layer_names(node.childNodes()))
    return out
