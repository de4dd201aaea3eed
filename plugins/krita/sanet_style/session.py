"""What the docker and the Tools > Scripts dialog share in one Krita process: the style list (one model, two
views), the connection monitor (one heartbeat) and the daemon's style library that comes with it."""
import importlib

from . import clientlib, connection, server
from .styles import StyleListModel

_SESSION = None


class Session:
    def __init__(self):
        self.styles = StyleListModel()
        self.monitor = None
        self.client_error = None     # why sanet_client could not be loaded (shown in the docker)
        self.connection_file = server.load()   # the Server choice of this Krita profile (None: this computer)
        self.quality = None          # the latest Quality choice made in any view; each view follows it
        self.quality_serial = 0
        try:
            mod = clientlib.load()
            try:
                launcher = importlib.import_module("sanet_client.launch")
            except ImportError:      # an older vendored sanet_client: no Start button
                launcher = None
            self.monitor = connection.Monitor(mod, launcher, connection_file=self.connection_file)
        except clientlib.ClientMissing as exc:
            self.client_error = str(exc)

    def status(self):
        if self.monitor is None:
            return connection.Status(connection.ERROR, self.client_error or "sanet_client is missing.",
                                     retrying=False)
        return self.monitor.start().snapshot()

    def set_server(self, path):
        """Use another Server (None: this computer), remembered in the Krita profile; the heartbeat follows."""
        self.connection_file = path or None
        server.save(self.connection_file)
        if self.monitor is not None:
            self.monitor.set_connection_file(self.connection_file)

    def choose_quality(self, quality):
        """A view's Quality combo changed: the other views take it over on their next status tick."""
        self.quality = quality
        self.quality_serial += 1

    def shutdown(self):
        if self.monitor is not None:
            self.monitor.stop()


def get():
    """The process-wide Session (created on first use, on the main thread)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
        try:
            from krita import Krita
            Krita.instance().notifier().applicationClosing.connect(_SESSION.shutdown)
        except Exception:   # not inside Krita (tests of the widgets alone)
            pass
    return _SESSION
