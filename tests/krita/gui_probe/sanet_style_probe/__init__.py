"""Test-only Krita plug-in: drives the REAL sanet_style docker inside a full Krita GUI (under Xvfb).

Installed next to sanet_style in a throw-away profile by tests/krita/test_krita_gui.py and enabled
through kritarc. Once the main window exists it runs a script of steps, driven by a QTimer so the
Krita event loop (and the docker's own polling timer) keep running between steps:

 1. the Tools > Scripts > Style Transfer… action and the Style Transfer docker exist;
 2. the action opens the dialog;
 3. with sanetd DOWN: Apply gives a clear message, nothing is added;
 4. it asks the test for a daemon (flag files) and presses Reconnect until the docker says connected;
 5. Apply from the docker on a painted document with a feathered selection -> a new layer, with
    progress and no frozen UI (the step loop keeps ticking while the job runs);
 6. Edit > Undo (the real action) removes the new layer and leaves the original untouched;
 6b. Semantic (SCSA): a label layer chosen in the group's menu + a label map for the style -> a new layer.

Everything observed goes to $SANET_PROBE_OUT/probe.json (+ raw pixel files); then Krita quits.
"""
import json
import os
import sys
import time
import traceback

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication, QDockWidget, QMenu
from krita import Extension, Krita, Selection

OUT = os.environ.get("SANET_PROBE_OUT", "")
TESTS_DIR = os.environ.get("SANET_PROBE_TESTS_DIR", "")
STYLE_PNG = os.environ.get("SANET_PROBE_STYLE", "")
STYLE_LABELS_PNG = os.environ.get("SANET_PROBE_STYLE_LABELS", "")
DEPTH = os.environ.get("SANET_PROBE_DEPTH", "U8")
BIG = int(os.environ.get("SANET_PROBE_BIG", "768"))
STEP_TIMEOUT = float(os.environ.get("SANET_PROBE_TIMEOUT", "120"))


class Probe:
    def __init__(self):
        self.report = {"steps": [], "ok": False}
        self.gen = None
        self.wait_until = None
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self.tick)
        self.ticks_while_busy = 0

    # ---- step machinery: the generator yields a predicate (wait for it) or a number (sleep) -----
    def start(self):
        self.gen = self.script()
        self.pending = None
        self.deadline = None
        self.timer.start()

    def tick(self):
        try:
            if self.pending is not None:
                if callable(self.pending):
                    if not self.pending():
                        if time.monotonic() > self.deadline:
                            raise TimeoutError("waited %.0f s for %s" % (STEP_TIMEOUT, self.pending_what))
                        return
                elif time.monotonic() < self.pending:
                    return
            item = next(self.gen)
            if isinstance(item, tuple):
                what, pred = item
                self.pending, self.pending_what = pred, what
                self.deadline = time.monotonic() + STEP_TIMEOUT
            else:
                self.pending = time.monotonic() + float(item)
        except StopIteration:
            self.finish()
        except Exception:
            self.report["error"] = traceback.format_exc()
            self.finish()

    def step(self, name, **data):
        self.report["steps"].append(dict(name=name, t=round(time.monotonic(), 3), **data))
        self.save()

    def save(self):
        with open(os.path.join(OUT, "probe.json"), "w") as fh:
            json.dump(self.report, fh, indent=1, default=str)

    def finish(self):
        self.timer.stop()
        self.save()
        app = Krita.instance()
        for doc in app.documents():
            doc.setModified(False)
            doc.close()
        with open(os.path.join(OUT, "done"), "w") as fh:
            fh.write("done")
        # Krita's own File > Quit: QApplication.quit() skips Krita's shutdown and segfaults in 5.1.
        QTimer.singleShot(200, lambda: Krita.instance().action("file_quit").trigger())

    # ---- the script -------------------------------------------------------------------------------
    def script(self):
        sys.path.insert(0, TESTS_DIR)
        import krita_scenarios as ks
        from sanet_style import formats
        app = Krita.instance()
        window = app.activeWindow()
        qwin = window.qwindow()

        # 1. action + menu entry + docker
        action = app.action("sanet_style_dialog")
        menu_path = _menu_path(qwin.menuBar(), action) if action is not None else None
        docks = [d for d in qwin.findChildren(QDockWidget) if d.objectName() == "sanet_style_docker"]
        self.step("loaded", action=action is not None, action_text=action.text() if action else None,
                  action_tooltip=action.toolTip() if action else None,
                  menu_path=menu_path, dockers=len(docks),
                  docker_title=docks[0].windowTitle() if docks else None,
                  docker_widget=type(docks[0].widget()).__name__ if docks else None)
        docker = docks[0]
        docker.show()
        controls = docker.widget()

        # 2. the action opens the dialog with the same controls
        action.trigger()
        yield ("dialog", lambda: _find_dialog() is not None)
        dialog = _find_dialog()
        self.step("dialog", visible=dialog.isVisible(), title=dialog.windowTitle(),
                  controls=type(dialog.controls).__name__)
        dialog.close()

        # 3. a painted document with a feathered selection, shown in a view (undo needs one)
        doc = app.createDocument(ks.W, ks.H, "probe", "RGBA", DEPTH, "", 72.0)
        window.addView(doc)
        layer = doc.createNode("painting", "paintlayer")
        fmt = formats.client_format(DEPTH)
        layer.setPixelData(formats.client_to_krita(ks._pattern_client(fmt), DEPTH), 0, 0, ks.W, ks.H)
        doc.rootNode().addChildNode(layer, None)
        sel = Selection()
        sel.select(*ks.SEL_RECT, 255)
        sel.feather(ks.FEATHER)
        doc.setSelection(sel)
        doc.waitForDone()
        yield 0.3
        doc.setActiveNode(layer)
        yield ("active node", lambda: doc.activeNode() is not None and doc.activeNode().name() == "painting")
        before = bytes(layer.pixelData(0, 0, ks.W, ks.H))
        _write("original_before.bin", before)
        _write("selection.bin", doc.selection().pixelData(0, 0, ks.W, ks.H))
        controls.add_file(STYLE_PNG)
        n_layers = len(_layers(doc))

        # 4. sanetd is down: a clear message, nothing added, the UI keeps running
        yield ("status says not connected", lambda: controls.status_task is None and not controls.connected
               and "checking" not in controls.status_label.text())
        controls.apply_button.click()
        yield ("apply finishes with daemon down", lambda: controls.task is None)
        self.step("daemon_down", status=controls.status_label.text(), message=controls.message.text(),
                  layers_added=len(_layers(doc)) - n_layers)

        # 5. ask the test for a daemon, reconnect
        _write("need_daemon", b"1")
        yield ("daemon_up flag", lambda: os.path.exists(os.path.join(OUT, "daemon_up")))
        controls.reconnect_button.click()
        yield ("status connected", lambda: controls.status_label.text().startswith("sanetd connected"))
        self.step("reconnected", status=controls.status_label.text())

        # 6. Apply from the docker; count event-loop ticks while the job runs (UI not frozen)
        controls.apply_button.click()
        started = time.monotonic()
        self.ticks_while_busy = 0

        def job_done():
            if controls.task is not None:
                self.ticks_while_busy += 1
                return False
            return True
        yield ("stylize job", job_done)
        top = _layers(doc)
        new = doc.nodeByName(top[-1]) if top else None
        self.step("applied", seconds=round(time.monotonic() - started, 3), ticks=self.ticks_while_busy,
                  message=controls.message.text(), progress=controls.progress.value(), layers=top,
                  active=doc.activeNode().name() if doc.activeNode() else None)
        _write("new_layer.bin", new.pixelData(0, 0, ks.W, ks.H))
        docker.grab().save(os.path.join(OUT, "docker.png"))        # for humans reading the test output
        qwin.grab().save(os.path.join(OUT, "window.png"))
        _write("original_after.bin", layer.pixelData(0, 0, ks.W, ks.H))

        # 7. one Edit > Undo removes the whole insertion
        app.action("edit_undo").trigger()
        doc.waitForDone()
        yield 0.5
        doc.waitForDone()
        self.step("undone", layers=_layers(doc),
                  original_same=bytes(layer.pixelData(0, 0, ks.W, ks.H)) == before)

        # 7a. Semantic (SCSA) through the docker's own controls: label layer from the group's menu, the
        # style row's label-map file, SCA/SSA weights; the new layer goes above "painting" as before
        if STYLE_LABELS_PNG:
            regions = doc.createNode("regions", "paintlayer")
            regions.setPixelData(formats.client_to_krita(ks._label_layer_client(fmt), DEPTH), 0, 0, ks.W, ks.H)
            doc.rootNode().addChildNode(regions, layer)
            doc.waitForDone()
            yield 0.3
            doc.setActiveNode(layer)
            yield ("active node for SCSA", lambda: doc.activeNode() is not None
                   and doc.activeNode().name() == "painting")
            names_before = set(_layers(doc))
            controls.semantic.setChecked(True)
            controls.label_layer_menu.aboutToShow.emit()          # what opening the menu does
            label_menu = [a.text() for a in controls.label_layer_menu.actions()]
            [a for a in controls.label_layer_menu.actions() if a.text() == "regions"][0].trigger()
            controls.set_style_labels(STYLE_LABELS_PNG, [0])
            controls.scsa_t1.setValue(0.6)
            controls.scsa_t2.setValue(0.4)
            controls.apply_button.click()
            yield ("SCSA job", lambda: controls.task is None)
            added = [n for n in _layers(doc) if n not in names_before]
            self.step("semantic", message=controls.message.text(), layers=_layers(doc), added=added,
                      label_menu=label_menu, label_button=controls.label_layer_button.text(),
                      label_cell=controls.table.item(0, 2).text())
            if added:
                _write("semantic_layer.bin", doc.nodeByName(added[0]).pixelData(0, 0, ks.W, ks.H))
            _write("semantic_selection.bin", doc.selection().pixelData(0, 0, ks.W, ks.H))
            controls.semantic.setChecked(False)

        # 7b. "Open image" menu: an open document's layer as a style source (then removed again)
        controls._fill_open_menu()
        texts = [a.text() for a in controls.open_menu.actions()]
        [a for a in controls.open_menu.actions() if a.text().strip() == "Layer: painting"][0].trigger()
        entry = controls.entries[-1]
        import sanet_client
        style = entry.to_style(sanet_client)
        self.step("open_image_source", menu=texts, kind=entry.kind, label=entry.label,
                  style=[style.width, style.height, style.format], rows=controls.table.rowCount())
        controls.table.selectRow(controls.table.rowCount() - 1)
        controls.remove_selected()

        # 8. a bigger canvas so jobs last long enough to cancel / kill the daemon under them
        big = app.createDocument(BIG, BIG, "probe big", "RGBA", "U8", "", 72.0)
        window.addView(big)
        big_layer = big.createNode("big painting", "paintlayer")
        row = bytes((x * 3) % 256 for x in range(BIG * 4))
        big_layer.setPixelData(b"".join(row[(y % 7) * 4:] + row[:(y % 7) * 4] for y in range(BIG)),
                               0, 0, BIG, BIG)
        big.rootNode().addChildNode(big_layer, None)
        big.waitForDone()
        yield 0.3
        big.setActiveNode(big_layer)
        yield ("big active node", lambda: big.activeNode() is not None
               and big.activeNode().name() == "big painting")
        n_big = len(_layers(big))

        controls.apply_button.click()
        yield ("progress before cancel", lambda: controls.progress.value() > 0 or controls.task is None)
        controls.cancel_button.click()
        yield ("cancelled job ends", lambda: controls.task is None)
        self.step("cancelled", message=controls.message.text(), layers_added=len(_layers(big)) - n_big)

        # 9. the daemon dies mid-job (the test kills it): a clear message, then it comes back
        controls.apply_button.click()
        yield ("job running", lambda: controls.task is not None and controls.progress.value() > 0)
        _write("job_started", b"1")
        yield ("job ends after the kill", lambda: controls.task is None)
        self.step("daemon_killed", message=controls.message.text(), status=controls.status_label.text(),
                  layers_added=len(_layers(big)) - n_big)
        _write("need_daemon_again", b"1")
        yield ("daemon_up_again flag", lambda: os.path.exists(os.path.join(OUT, "daemon_up_again")))
        controls.reconnect_button.click()
        yield ("status connected again", lambda: controls.connected and controls.status_task is None)
        big.setActiveNode(big_layer)
        controls.apply_button.click()
        started = time.monotonic()
        gaps = _GapMeter()
        yield ("job after restart", lambda: gaps.tick() and controls.task is None)
        self.step("after_restart", message=controls.message.text(), status=controls.status_label.text(),
                  layers=_layers(big), seconds=round(time.monotonic() - started, 3),
                  max_event_loop_gap_ms=gaps.max_ms, ticks=gaps.n)
        self.report["ok"] = True


class _GapMeter:
    """Longest time between two probe ticks: how long Krita's event loop was blocked at worst."""

    def __init__(self):
        self.last = time.monotonic()
        self.max_ms = 0.0
        self.n = 0

    def tick(self):
        now = time.monotonic()
        self.max_ms = max(self.max_ms, round((now - self.last) * 1000, 1))
        self.last = now
        self.n += 1
        return True


def _layers(doc):
    """Layer names bottom to top (the global selection shows up as a 'Selection Mask' node: skip it)."""
    return [n.name() for n in doc.topLevelNodes() if n.type() != "selectionmask"]


def _write(name, data):
    with open(os.path.join(OUT, name), "wb") as fh:
        fh.write(bytes(data))


def _find_dialog():
    for w in QApplication.topLevelWidgets():
        if w.objectName() == "sanet_style_dialog_window" and w.isVisible():
            return w
    return None


def _menu_path(menubar, action):
    """Titles of the menus leading to `action`, e.g. ['Tools', 'Scripts']."""
    def walk(menu, path):
        for a in menu.actions():
            if a is action or (a.objectName() and a.objectName() == action.objectName()):
                return path
            sub = a.menu()
            if isinstance(sub, QMenu):
                found = walk(sub, path + [a.text().replace("&", "")])
                if found:
                    return found
        return None
    return walk(menubar, [])


class ProbeExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)
        self.probe = None

    def setup(self):
        Krita.instance().notifier().windowCreated.connect(self.window_created)

    def window_created(self):
        if self.probe is None and OUT:
            self.probe = Probe()
            QTimer.singleShot(1000, self.probe.start)

    def createActions(self, window):
        pass


Krita.instance().addExtension(ProbeExtension(Krita.instance()))
