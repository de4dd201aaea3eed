"""The "Style Transfer" docker (Settings > Dockers); one per Krita window."""
from krita import DockWidget

from .widget import StyleTransferWidget

DOCKER_ID = "sanet_style_docker"


class StyleTransferDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("Style Transfer")
        self.setObjectName(DOCKER_ID)
        self.controls = StyleTransferWidget(self)
        self.setWidget(self.controls)

    def canvasChanged(self, canvas):
        # Required by DockWidget; the controls read the active document when Apply is pressed.
        pass
