"""The style list: one model shared by the docker and the Tools > Scripts dialog (one model, two views).

A StyleEntry says where a style comes from (an image file, an open document or one of its layers, the daemon's
library), its weight and, for semantic (SCSA) transfer, its label-map file. StyleListModel is a Qt table model
over those entries; every view (docker, dialog) shows the same rows, so a style added in one appears in the
other, and a weight changed in one is the weight the other sends.
"""
import os

from PyQt5.QtCore import QAbstractTableModel, QModelIndex, Qt
from PyQt5.QtGui import QIcon, QPixmap

from . import labels, sources

ICON = 40
WEIGHT_MAX = 10.0
COL_STYLE, COL_WEIGHT, COL_LABELS = range(3)
HEADERS = ("Style", "Weight", "Label map")


class StyleEntry:
    """One row of the style list: where the style comes from, its weight and (SCSA) its label-map file."""

    def __init__(self, kind, label, weight=1.0, path=None, doc=None, node=None, style_id=None, icon=None,
                 labels_path=None, size=None):
        self.kind, self.label, self.weight = kind, label, float(weight)
        self.path, self.doc, self.node, self.style_id, self.icon = path, doc, node, style_id, icon
        self.labels_path = labels_path   # label-map image at the style's own size, or None
        self.size = size                 # (width, height) of a library style, from styles.list

    def copy(self):
        """A frozen copy (the history keeps the settings a result was made with)."""
        return StyleEntry(self.kind, self.label, self.weight, self.path, self.doc, self.node, self.style_id,
                          self.icon, self.labels_path, self.size)

    def key(self):
        """What identifies this style's contribution to a result (for the history's duplicate check)."""
        source = self.style_id or self.path or (id(self.node) if self.node is not None else id(self.doc))
        return (self.kind, source, round(self.weight, 4), self.labels_path)

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


class StyleListModel(QAbstractTableModel):
    """The styles of the next run, as rows (Style, Weight, Label map); weights are edited in place."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries = []

    # ---- the Qt model interface ------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole and 0 <= section < len(HEADERS):
            return HEADERS[section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.entries):
            return None
        e, col = self.entries[index.row()], index.column()
        if col == COL_STYLE:
            if role in (Qt.DisplayRole, Qt.ToolTipRole):
                return e.label
            if role == Qt.DecorationRole and e.icon is not None:
                return QIcon(QPixmap.fromImage(e.icon))
        elif col == COL_WEIGHT:
            if role == Qt.DisplayRole:
                return "%.2f" % e.weight
            if role == Qt.EditRole:
                return e.weight
            if role == Qt.ToolTipRole:
                return "How much of this style goes into the mix (weights are relative to each other)"
        elif col == COL_LABELS:
            if role == Qt.DisplayRole:
                return os.path.basename(e.labels_path) if e.labels_path else ""
            if role == Qt.ToolTipRole:
                return e.labels_path or "No label map: this style is applied the plain way"
        return None

    def flags(self, index):
        base = super().flags(index)
        if index.isValid() and index.column() == COL_WEIGHT:
            return base | Qt.ItemIsEditable
        return base

    def setData(self, index, value, role=Qt.EditRole):
        if not index.isValid() or index.column() != COL_WEIGHT or role != Qt.EditRole:
            return False
        try:
            weight = min(WEIGHT_MAX, max(0.0, float(value)))
        except (TypeError, ValueError):
            return False
        entry = self.entries[index.row()]
        if weight == entry.weight:
            return True
        entry.weight = weight
        self.dataChanged.emit(index, index, [Qt.DisplayRole, Qt.EditRole])
        return True

    # ---- what the widgets call ---------------------------------------------------------------
    def add(self, entry):
        row = len(self.entries)
        self.beginInsertRows(QModelIndex(), row, row)
        self.entries.append(entry)
        self.endInsertRows()
        return row

    def remove_rows(self, rows):
        for row in sorted(set(rows), reverse=True):
            if 0 <= row < len(self.entries):
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.entries[row]
                self.endRemoveRows()

    def set_weight(self, row, weight):
        return self.setData(self.index(row, COL_WEIGHT), weight)

    def set_labels(self, rows, path):
        """Attach a label-map file to rows (None removes it)."""
        for row in rows:
            if 0 <= row < len(self.entries):
                self.entries[row].labels_path = path
                idx = self.index(row, COL_LABELS)
                self.dataChanged.emit(idx, idx, [Qt.DisplayRole])
