"""Test-only Krita plug-in (tests/installers/test_install_krita.py): once the main window exists, report
whether Krita loaded the installed sanet_style plug-in, its docker and action, and where its sanet_client,
pyzmq and msgpack come from; write $SANET_INSTALL_PROBE_OUT/probe.json and quit Krita."""
import json
import os
import sys

from krita import Extension, Krita
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication

OUT = os.environ.get("SANET_INSTALL_PROBE_OUT", "")


def _report():
    res = {"sanet_style_loaded": "sanet_style" in sys.modules, "python": list(sys.version_info[:2])}
    try:
        from sanet_style import clientlib
        client = clientlib.load()
        import msgpack
        import zmq
        res.update(client=client.__file__, zmq=zmq.__file__, msgpack=msgpack.__file__)
    except Exception as exc:  # reported to the test, which shows it
        res["error"] = repr(exc)
    res["dockers"] = [d.objectName() for d in Krita.instance().dockers()]
    res["actions"] = [a.objectName() for a in Krita.instance().actions() if "sanet" in a.objectName().lower()]
    with open(os.path.join(OUT, "probe.json"), "w") as fh:
        json.dump(res, fh)
    QApplication.quit()


class InstallProbe(Extension):
    def setup(self):
        pass

    def createActions(self, window):
        QTimer.singleShot(3000, _report)     # after every plug-in had its createActions


Krita.instance().addExtension(InstallProbe(Krita.instance()))
