"""Tools > Scripts > Style Transfer…: the docker's controls in a dialog."""
from PyQt5.QtWidgets import QDialog, QVBoxLayout
from krita import Extension

from .widget import StyleTransferWidget

ACTION_ID = "sanet_style_dialog"


class StyleTransferDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Style Transfer")
        self.setObjectName("sanet_style_dialog_window")
        layout = QVBoxLayout(self)
        self.controls = StyleTransferWidget(self)
        layout.addWidget(self.controls)


class StyleTransferExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)
        self.dialog = None

    def setup(self):
        pass

    def createActions(self, window):
        action = window.createAction(ACTION_ID, "Style Transfer…", "tools/scripts")
        action.triggered.connect(self.show_dialog)

    def show_dialog(self):
        # Non-modal and kept alive: a running job survives closing and reopening the dialog.
        if self.dialog is None:
            window = self.parent().activeWindow()
            self.dialog = StyleTransferDialog(window.qwindow() if window is not None else None)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
