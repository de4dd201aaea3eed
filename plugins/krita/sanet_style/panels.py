"""Small widgets of the Style Transfer controls: the preview pane, the history strip, the weight editor.

Qt only (no Krita, no daemon), so they read like any PyQt widget.
"""
from PyQt5.QtCore import QRect, QSize, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PyQt5.QtWidgets import (QAbstractItemView, QDoubleSpinBox, QListView, QListWidget, QListWidgetItem,
                             QSizePolicy, QStyledItemDelegate, QWidget)

from .styles import WEIGHT_MAX

THUMB = 56


class PreviewPane(QWidget):
    """The preview result over a checkerboard, scaled to fit; press and hold to see the layer before."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image = None          # QImage shown (the result at preview size)
        self.before = None         # QImage of the layer at preview size, shown while the mouse is pressed
        self.caption = ""
        self.placeholder = ""
        self.busy = False
        self.pressed = False
        self.setMinimumSize(120, 120)
        policy = QSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setToolTip("Preview at reduced size. Press and hold to compare with the layer before.")

    # ---- state -------------------------------------------------------------------------------
    def set_image(self, image, before=None, caption=""):
        resized = self.image is None or image is None or \
            image.width() * 1000 // max(1, image.height()) != self.image.width() * 1000 // max(1, self.image.height())
        self.image, self.before, self.caption, self.placeholder = image, before, caption, ""
        if resized:
            self.updateGeometry()
        self.update()

    def set_placeholder(self, text):
        self.placeholder = text
        if self.image is None:
            self.update()

    def clear(self, text=""):
        self.image = self.before = None
        self.caption = ""
        self.placeholder = text
        self.updateGeometry()
        self.update()

    def set_busy(self, busy):
        if busy != self.busy:
            self.busy = busy
            self.update()

    def shown(self):
        """The image on screen now (the layer before while pressed, else the result)."""
        return self.before if (self.pressed and self.before is not None) else self.image

    # ---- geometry ------------------------------------------------------------------------------
    def hasHeightForWidth(self):
        return True

    def heightForWidth(self, width):
        if self.image is None or self.image.width() == 0:
            return max(120, width * 9 // 16)
        return max(120, min(420, width * self.image.height() // self.image.width()))

    def sizeHint(self):
        return QSize(280, self.heightForWidth(280))

    # ---- painting and compare --------------------------------------------------------------------
    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().window())
        image = self.shown()
        if image is None or image.isNull():
            p.setPen(self.palette().text().color())
            p.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignCenter | Qt.TextWordWrap,
                       self.placeholder or "No preview yet.")
            return
        size = image.size().scaled(self.size(), Qt.KeepAspectRatio)
        target = QRect((self.width() - size.width()) // 2, (self.height() - size.height()) // 2,
                       size.width(), size.height())
        _checkerboard(p, target)
        p.setRenderHint(QPainter.SmoothPixmapTransform)
        p.drawImage(target, image)
        label = "Before" if self.shown() is self.before and self.pressed else self.caption
        if self.busy:
            label = (label + " · " if label else "") + "updating…"
        if label:
            font = QFont(self.font())
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
            p.setFont(font)
            metrics = p.fontMetrics()
            text = metrics.elidedText(label, Qt.ElideRight, target.width() - 8)
            box = QRect(target.left(), target.bottom() - metrics.height() - 3, target.width(), metrics.height() + 4)
            p.fillRect(box, QColor(0, 0, 0, 150))
            p.setPen(QColor(255, 255, 255))
            p.drawText(box.adjusted(4, 0, -4, 0), Qt.AlignVCenter | Qt.AlignLeft, text)

    def mousePressEvent(self, event):
        self.pressed = True
        self.update()

    def mouseReleaseEvent(self, event):
        self.pressed = False
        self.update()


def _checkerboard(p, rect, cell=8):
    p.save()
    p.setClipRect(rect)
    p.fillRect(rect, QColor(200, 200, 200))
    dark = QColor(150, 150, 150)
    for y in range(rect.top(), rect.bottom() + 1, cell):
        for x in range(rect.left() + ((y - rect.top()) // cell % 2) * cell, rect.right() + 1, 2 * cell):
            p.fillRect(x, y, cell, cell, dark)
    p.restore()


class HistoryStrip(QListWidget):
    """One row of thumbnails, newest first; selecting one shows it in the preview pane."""
    chosen = pyqtSignal(object)       # the HistoryItem selected (or None)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.IconMode)
        self.setFlow(QListView.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Static)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setSpacing(2)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setFixedHeight(THUMB + 34)
        self.setToolTip("Recent previews: click one to look at it again, then Apply it or Discard it.")
        self._items = {}
        self.currentItemChanged.connect(lambda cur, _prev: self.chosen.emit(self.item_of(cur)))

    def show_history(self, items, current=None):
        """Rebuild from a History's items (newest first) and select ``current``."""
        self.blockSignals(True)
        self.clear()
        self._items = {}
        for item in items:
            row = QListWidgetItem(QIcon(QPixmap.fromImage(item.image.scaled(
                THUMB, THUMB, Qt.KeepAspectRatio, Qt.SmoothTransformation))), item.short)
            row.setToolTip("%s\n%.1f s" % (item.name, item.seconds))
            row.setSizeHint(QSize(THUMB + 8, THUMB + 22))
            self.addItem(row)
            self._items[id(row)] = item
            if item is current:
                self.setCurrentItem(row)
        self.blockSignals(False)

    def item_of(self, row):
        return None if row is None else self._items.get(id(row))

    def selected(self):
        return self.item_of(self.currentItem())


class WeightDelegate(QStyledItemDelegate):
    """Weights are edited with a spin box (0..WEIGHT_MAX); views keep one open on every row."""

    def createEditor(self, parent, option, index):
        spin = QDoubleSpinBox(parent)
        spin.setRange(0.0, WEIGHT_MAX)
        spin.setSingleStep(0.1)
        spin.setDecimals(2)
        spin.setFrame(False)
        spin.setFocusPolicy(Qt.ClickFocus)   # never the docker's first focus (it would show all text selected)
        spin.valueChanged.connect(lambda _v, s=spin: self.commitData.emit(s))
        spin.editingFinished.connect(lambda s=spin: s.lineEdit().deselect())
        return spin

    def setEditorData(self, editor, index):
        value = index.data(Qt.EditRole)
        if value is not None and abs(editor.value() - float(value)) > 1e-9:
            editor.blockSignals(True)
            editor.setValue(float(value))
            editor.blockSignals(False)
        editor.lineEdit().deselect()     # a persistent editor is not being edited: no highlighted text

    def setModelData(self, editor, model, index):
        model.setData(index, editor.value(), Qt.EditRole)
