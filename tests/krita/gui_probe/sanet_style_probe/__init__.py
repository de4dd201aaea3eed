"""Test-only Krita plug-in: drives the REAL sanet_style docker inside a full Krita GUI (under Xvfb).

Installed next to sanet_style in a throw-away profile by tests/krita/test_krita_gui.py and enabled
through kritarc. Once the main window exists it runs a script of steps, driven by a QTimer so the
Krita event loop (and the docker's own timers) keep running between steps:

  loaded / dialog      the Tools > Scripts action, the docker, and the dialog sharing the docker's style list;
  daemon_down          no sanetd: a clear state (not running, Start offered), Apply adds nothing;
  small_docker         a short floating docker with the Semantic group open: nothing overlaps (it scrolls);
  started              the Start button launches `sanetd` (the test's wrapper on PATH);
  preview_*            live preview: rendered after a slider change, debounced, never a layer; a history;
  applied / second     Apply adds a layer and the ORIGINAL stays active; a second Apply stylizes the original;
  history_apply        "Apply this" on an older preview applies that preview's settings; Discard;
  undone               one Edit > Undo removes an insertion;
  semantic, library, open_image_source
  model                the Model row: its entries follow sanetd's hello; AdaAttN gives an AdaAttN preview and layer
  quality              the Quality row: Fast offered per sanetd's hello (with its note), Apply gives a "fast" layer
  superseded           a preview superseded by a newer setting is cancelled in sanetd;
  cancelled            Cancel frees the docker at once, nothing is added, sanetd acknowledges;
  daemon_killed        the test SIGKILLs sanetd mid-job: clear message, "connected" does not stay;
  recovered            the test starts sanetd again: the heartbeat reconnects, a job works;
  screenshot           docs screenshot of the docker with a preview and a history.

Everything observed goes to $SANET_PROBE_OUT/probe.json (+ raw pixel files); then Krita quits.
"""
import json
import os
import sys
import time
import traceback

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication, QDockWidget, QMenu, QWidget
from krita import Extension, Krita, Selection

OUT = os.environ.get("SANET_PROBE_OUT", "")
TESTS_DIR = os.environ.get("SANET_PROBE_TESTS_DIR", "")
STYLE_PNG = os.environ.get("SANET_PROBE_STYLE", "")
STYLE_LABELS_PNG = os.environ.get("SANET_PROBE_STYLE_LABELS", "")
SHOWCASE_STYLE = os.environ.get("SANET_PROBE_SHOWCASE_STYLE", "")
DEPTH = os.environ.get("SANET_PROBE_DEPTH", "U8")
BIG = int(os.environ.get("SANET_PROBE_BIG", "768"))
STEP_TIMEOUT = float(os.environ.get("SANET_PROBE_TIMEOUT", "180"))
SERVER_FILE = os.environ.get("SANET_PROBE_SERVER_FILE", "")   # a shared server's connection file (sanetd invite)


class Probe:
    def __init__(self):
        self.report = {"steps": [], "ok": False}
        self.gen = None
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self.tick)

    # ---- step machinery: the generator yields (what, predicate) to wait for, or a number to sleep ----
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
                            raise TimeoutError("waited %.0f s for %s" % (self.timeout, self.pending_what))
                        return
                elif time.monotonic() < self.pending:
                    return
            item = next(self.gen)
            if isinstance(item, tuple):
                what, pred = item[0], item[1]
                self.timeout = item[2] if len(item) > 2 else STEP_TIMEOUT
                self.pending, self.pending_what = pred, what
                self.deadline = time.monotonic() + self.timeout
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
        from sanet_style import connection, formats, styles
        app = Krita.instance()
        window = app.activeWindow()
        qwin = window.qwindow()

        # loaded: action + menu entry + docker
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

        # dialog: the same controls, and the SAME style list (one model, two views)
        action.trigger()
        yield ("dialog", lambda: _find_dialog() is not None)
        dialog = _find_dialog()
        dialog.controls.add_file(STYLE_PNG)
        rows_in_docker = controls.table.model().rowCount()
        controls.table.selectRow(0)
        controls.remove_selected()
        self.step("dialog", visible=dialog.isVisible(), title=dialog.windowTitle(),
                  controls=type(dialog.controls).__name__, same_model=dialog.controls.model is controls.model,
                  rows_after_dialog_add=rows_in_docker, rows_in_dialog_after_docker_remove=dialog.controls.model.rowCount())
        dialog.close()

        # a painted document with a feathered selection, shown in a view (undo needs one)
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
        yield ("active node", lambda: _active(doc) == "painting")
        before = bytes(layer.pixelData(0, 0, ks.W, ks.H))
        _write("original_before.bin", before)
        _write("selection.bin", doc.selection().pixelData(0, 0, ks.W, ks.H))
        controls.add_file(STYLE_PNG)
        n_layers = len(_layers(doc))

        # daemon_down: a clear state, Start offered, Apply adds nothing
        yield ("status says not running", lambda: controls.session.status().state == connection.NOT_RUNNING
               and controls.status_label.text() == "sanetd is not running")
        controls.apply_button.click()
        yield ("apply finishes with daemon down", lambda: controls.task is None)
        yield from _laid_out(controls, controls.status_detail, controls.message)
        self.step("daemon_down", status=controls.status_label.text(), detail=_plain(controls.status_detail.text()),
                  message=_plain(controls.message.text()), start_visible=controls.start_button.isVisible(),
                  layers_added=len(_layers(doc)) - n_layers, pane=controls.pane.placeholder,
                  wraps=[_fits(controls, controls.status_detail), _fits(controls, controls.message)])

        # small_docker: a short floating docker with the Semantic group open; nothing may overlap
        docker.setFloating(True)
        docker.resize(300, 420)
        controls.semantic.setChecked(True)
        yield 0.8
        self.step("small_docker", **_layout_report(controls))
        docker.grab().save(os.path.join(OUT, "docker_small.png"))
        controls.semantic.setChecked(False)
        docker.setFloating(False)
        yield 0.3

        # started: the Start button launches sanetd (the test's wrapper on PATH)
        started_at = time.monotonic()
        controls.start_button.click()
        starting = controls.status_label.text()
        yield ("status connected after Start", lambda: controls.connected, 120)
        self.step("started", starting=starting, status=controls.status_label.text(),
                  seconds=round(time.monotonic() - started_at, 2), start_visible=controls.start_button.isVisible())

        # server: the Server choice switched to a shared server's connection file and back to this computer
        if SERVER_FILE:
            combo = controls.server_combo
            items_before = [combo.itemText(i) for i in range(combo.count())]
            controls.set_server(SERVER_FILE)
            yield ("shared server connected", lambda: controls.status_label.text().startswith(
                "Shared sanetd connected as"), 60)
            yield 0.5
            docker.grab().save(os.path.join(OUT, "krita-server.png"))
            shared = dict(status=controls.status_label.text(), combo=combo.currentText(),
                          items=[combo.itemText(i) for i in range(combo.count())], tooltip=combo.toolTip(),
                          start_visible=controls.start_button.isVisible(),
                          setting=app.readSetting("sanet_style", "connection_file", "unset"))
            controls.set_server(None)
            yield ("back on this computer", lambda: controls.status_label.text().startswith("sanetd connected"), 60)
            self.step("server", items_before=items_before, shared=shared, back=controls.status_label.text(),
                      combo_back=combo.currentText(),
                      setting_back=app.readSetting("sanet_style", "connection_file", "unset"))

        # preview: the first preview comes by itself (connected + a style + a layer), never as a layer
        yield ("first preview", lambda: len(controls.history) >= 1 and controls.preview_task is None)
        first = controls.last_preview
        self.step("preview_first", layers=_layers(doc), history=len(controls.history),
                  pane=[controls.pane.image.width(), controls.pane.image.height()],
                  caption=controls.pane.caption, alpha=first["settings"].options.alpha)
        # a slider change: ONE debounced preview for a burst of changes, still no layer
        n_before = len(controls.history)
        starts = _count_preview_starts(controls)
        for v in (90, 75, 60):
            controls.strength.setValue(v)
        yield ("preview after the slider", lambda: len(controls.history) == n_before + 1
               and controls.preview_task is None and controls.last_preview is not first)
        p = controls.last_preview
        pane = controls.pane                       # press and hold: the layer before; release: the result
        pane.mousePressEvent(None)
        compare = [pane.shown() is pane.before and pane.before is not None]
        pane.mouseReleaseEvent(None)
        compare.append(pane.shown() is pane.image)
        _write("preview_in.bin", p["prepared"].data)
        _write("preview_mask.bin", p["prepared"].mask or b"")
        _write("preview_out.bin", p["result"].data)
        self.step("preview_slider", layers=_layers(doc), history=len(controls.history), starts=starts.n,
                  alpha=p["settings"].options.alpha, style_max_side=p["prepared"].style_max_side,
                  size=[p["prepared"].width, p["prepared"].height], format=p["prepared"].format,
                  names=[i.name for i in controls.history.items], pane_is_latest=controls.pane.image is
                  controls.history.items[0].image, compare=compare)

        # applied: a new layer above the original, and the ORIGINAL stays active
        controls.apply_button.click()
        started = time.monotonic()
        busy = _GapMeter()
        yield ("stylize job", lambda: busy.tick() and controls.task is None)
        applied_seconds = round(time.monotonic() - started, 3)
        yield 0.6                                    # let Krita's layer model catch up before asking
        top = _layers(doc)
        new = doc.nodeByName(top[-1]) if top else None
        self.step("applied", seconds=applied_seconds, ticks=busy.n, max_event_loop_gap_ms=busy.max_ms,
                  message=_plain(controls.message.text()), progress=controls.progress.value(), layers=top,
                  active=_active(doc), undo_text=app.action("edit_undo").text())
        _write("new_layer.bin", new.pixelData(0, 0, ks.W, ks.H))
        _write("original_after.bin", layer.pixelData(0, 0, ks.W, ks.H))
        qwin.grab().save(os.path.join(OUT, "window.png"))

        # second: Apply again at once: it must stylize the photo, not the first result
        controls.apply_button.click()
        yield ("second job", lambda: controls.task is None)
        yield 0.6
        top2 = _layers(doc)
        second = doc.nodeByName(top2[-1])
        _write("second_layer.bin", second.pixelData(0, 0, ks.W, ks.H))
        self.step("second", layers=top2, active=_active(doc), message=_plain(controls.message.text()),
                  same_as_first=bytes(second.pixelData(0, 0, ks.W, ks.H)) == bytes(new.pixelData(0, 0, ks.W, ks.H)))

        # undone: one Edit > Undo removes the second insertion; the original is untouched
        app.action("edit_undo").trigger()
        doc.waitForDone()
        yield 0.5
        doc.waitForDone()
        self.step("undone", layers=_layers(doc),
                  original_same=bytes(layer.pixelData(0, 0, ks.W, ks.H)) == before)

        # history_apply: "Apply this" on the older preview (strength 100 %) while the slider says 60 %
        older = [i for i in controls.history.items if i.settings.options.alpha == 1.0][0]
        for r in range(controls.history_view.count()):
            if controls.history_view.item_of(controls.history_view.item(r)) is older:
                controls.history_view.setCurrentRow(r)
        shown = controls.pane.image is older.image
        names_before = set(_layers(doc))
        controls.apply_history_button.click()
        yield ("history job", lambda: controls.task is None)
        yield 0.6
        added = [n for n in _layers(doc) if n not in names_before]
        n_hist = len(controls.history)
        controls.discard_button.click()
        self.step("history_apply", shown=shown, added=added, slider=controls.strength.value(),
                  history_before=n_hist, history_after=len(controls.history), active=_active(doc))
        if added:
            _write("history_layer.bin", doc.nodeByName(added[0]).pixelData(0, 0, ks.W, ks.H))
        # switching the active layer re-renders the preview for that layer (Krita has no signal: polled)
        background = doc.nodeByName("Background")
        n_hist, n_now = len(controls.history), len(_layers(doc))
        doc.setActiveNode(background)
        yield ("preview of the newly active layer", lambda: controls.last_preview is not None
               and controls.last_preview["key"][0] == background.uniqueId().toString()
               and controls.preview_task is None)
        self.step("active_layer_watch", history=len(controls.history), before=n_hist,
                  layers_added=len(_layers(doc)) - n_now)
        doc.setActiveNode(layer)
        yield ("painting active again", lambda: _active(doc) == "painting")
        controls.live.setChecked(False)             # the next steps check full runs on their own

        # semantic (SCSA) through the docker's own controls
        if STYLE_LABELS_PNG:
            regions = doc.createNode("regions", "paintlayer")
            regions.setPixelData(formats.client_to_krita(ks._label_layer_client(fmt), DEPTH), 0, 0, ks.W, ks.H)
            doc.rootNode().addChildNode(regions, layer)
            doc.waitForDone()
            yield 0.3
            doc.setActiveNode(layer)
            yield ("active node for SCSA", lambda: _active(doc) == "painting")
            names_before = set(_layers(doc))
            controls.strength.setValue(100)
            controls.semantic.setChecked(True)
            controls.label_layer_menu.aboutToShow.emit()          # what opening the menu does
            label_menu = [a.text() for a in controls.label_layer_menu.actions()]
            [a for a in controls.label_layer_menu.actions() if a.text() == "regions"][0].trigger()
            controls.set_style_labels(STYLE_LABELS_PNG, [0])
            controls.scsa_t1.setValue(0.6)
            controls.scsa_t2.setValue(0.4)
            controls.apply_button.click()
            yield ("SCSA job", lambda: controls.task is None)
            yield 0.3
            added = [n for n in _layers(doc) if n not in names_before]
            self.step("semantic", message=_plain(controls.message.text()), layers=_layers(doc), added=added,
                      label_menu=label_menu, label_button=controls.label_layer_button.text(),
                      label_cell=controls.model.index(0, styles.COL_LABELS).data(),
                      label_column_shown=not controls.table.isColumnHidden(styles.COL_LABELS))
            if added:
                _write("semantic_layer.bin", doc.nodeByName(added[0]).pixelData(0, 0, ks.W, ks.H))
            _write("semantic_selection.bin", doc.selection().pixelData(0, 0, ks.W, ks.H))
            controls.semantic.setChecked(False)

        # model: pick AdaAttN in the Model row as the artist does (the combo), get its preview, Apply, then SANet again
        combo = controls.model_combo
        entries = [(combo.itemText(i), combo.model().item(i).isEnabled()) for i in range(combo.count())]
        controls.strength.setValue(100)
        names_before = set(_layers(doc))
        n_hist = len(controls.history)
        controls.live.setChecked(True)
        combo.setCurrentIndex(combo.findText("AdaAttN"))
        yield ("AdaAttN preview", lambda: controls.last_preview is not None and controls.preview_task is None
               and controls.last_preview["settings"].options.model_choice() == ("adaattn", "sampled"))
        p = controls.last_preview
        _write("model_preview_in.bin", p["prepared"].data)
        _write("model_preview_mask.bin", p["prepared"].mask or b"")
        _write("model_preview_out.bin", p["result"].data)
        controls.live.setChecked(False)
        controls.apply_button.click()
        yield ("AdaAttN job", lambda: controls.task is None)
        yield 0.3
        added = [n for n in _layers(doc) if n not in names_before]
        self.step("model", entries=entries, current=combo.currentText(), added=added,
                  preview_name=controls.history.items[0].name, history=len(controls.history), before=n_hist,
                  preview_size=[p["prepared"].width, p["prepared"].height], message=_plain(controls.message.text()),
                  active=_active(doc))
        if added:
            _write("model_layer.bin", doc.nodeByName(added[0]).pixelData(0, 0, ks.W, ks.H))
        combo.setCurrentIndex(combo.findText("SANet"))

        # quality: the row follows sanetd's hello (Fast offered where it has a fast precision, with a note); pick
        # Fast as the artist does (the combo), Apply: the layer says "fast"; the choice is remembered in kritarc
        qcombo = controls.quality_combo
        qentries = [(qcombo.itemText(i), qcombo.model().item(i).isEnabled()) for i in range(qcombo.count())]
        names_before = set(_layers(doc))
        qcombo.setCurrentIndex(qcombo.findText("Fast"))
        controls.apply_button.click()
        yield ("Fast job", lambda: controls.task is None)
        yield 0.3
        added = [n for n in _layers(doc) if n not in names_before]
        self.step("quality", entries=qentries, current=qcombo.currentText(), added=added,
                  note=_plain(controls.quality_note.text()), message=_plain(controls.message.text()),
                  setting=Krita.instance().readSetting("sanet_style", "quality", "unset"))
        if added:
            _write("quality_layer.bin", doc.nodeByName(added[0]).pixelData(0, 0, ks.W, ks.H))
        # the dialog opened now shows the docker's choice; a choice made in the dialog is taken over by the open
        # docker (both views are open at once)
        action.trigger()
        yield ("dialog again", lambda: _find_dialog() is not None)
        dialog = _find_dialog()
        yield ("dialog knows sanetd", lambda: dialog.controls.quality_combo.count() == qcombo.count())
        in_dialog = dialog.controls.quality_combo.currentText()
        dialog.controls.quality_combo.setCurrentIndex(dialog.controls.quality_combo.findText("Exact"))
        yield ("docker follows the dialog", lambda: qcombo.currentText() == "Exact", 5.0)
        self.step("quality_sync", dialog_on_open=in_dialog, docker_after=qcombo.currentText(),
                  setting=Krita.instance().readSetting("sanet_style", "quality", "unset"))
        dialog.close()
        qcombo.setCurrentIndex(qcombo.findText("Exact"))

        # library: add the active layer to sanetd's library from the docker, use it, delete it
        controls.tabs.setCurrentIndex(1)
        lib_before = controls.library_view.count()
        controls.library_add_layer()
        yield ("library shows the layer", lambda: controls.library_view.count() == lib_before + 1)
        names = [controls.library_view.item(i).text() for i in range(controls.library_view.count())]
        item = [controls.library_view.item(i) for i in range(controls.library_view.count())
                if controls.library_view.item(i).text() == "painting"][0]
        item.setSelected(True)
        icon = not item.icon().isNull()
        rows = controls.model.rowCount()
        controls.use_library_selected()
        used = controls.model.entries[-1]
        rows_after_use = controls.model.rowCount()
        controls.library_remove_selected(confirm=False)
        yield ("library entry deleted", lambda: controls.library_view.count() == lib_before)
        self.step("library", names=names, icon=icon, used=[used.kind, used.label],
                  rows=rows, rows_after_use=rows_after_use, rows_after_delete=controls.model.rowCount(),
                  message=_plain(controls.message.text()))
        controls.tabs.setCurrentIndex(0)

        # open image: an open document's layer as a style source (then removed again)
        controls._fill_open_menu()
        texts = [a.text() for a in controls.open_menu.actions()]
        [a for a in controls.open_menu.actions() if a.text().strip() == "Layer: painting"][0].trigger()
        entry = controls.entries[-1]
        import sanet_client
        style = entry.to_style(sanet_client)
        self.step("open_image_source", menu=texts, kind=entry.kind, label=entry.label,
                  style=[style.width, style.height, style.format], rows=controls.model.rowCount())
        controls.table.selectRow(controls.model.rowCount() - 1)
        controls.remove_selected()

        # a bigger canvas so jobs last long enough to supersede, cancel, kill the daemon under them
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
        yield ("big active node", lambda: _active(big) == "big painting")
        n_big = len(_layers(big))

        # superseded: a preview still running when a setting changes is cancelled in sanetd
        controls.live.setChecked(True)
        controls.run_preview(force=True)
        old = controls.preview_task
        yield ("preview running", lambda: old is not None and old.thread.is_alive() and _progress_seen(old), 60)
        controls.strength.setValue(55)
        yield ("superseding preview", lambda: controls.preview_task is not None and controls.preview_task is not old)
        yield ("superseded task ends", lambda: not old.thread.is_alive(), 60)
        yield ("new preview", lambda: controls.preview_task is None)
        self.step("superseded", old_outcome=old.outcome, abandoned=old.abandoned,
                  latest_alpha=controls.history.items[0].settings.options.alpha,
                  preview_size=[controls.pane.image.width(), controls.pane.image.height()],
                  layers_added=len(_layers(big)) - n_big)
        controls.live.setChecked(False)

        # cancelled: Cancel frees the docker at once; sanetd is told and acknowledges; nothing is added
        controls.apply_button.click()
        job = controls.task
        yield ("progress before cancel", lambda: controls.progress.value() > 0 or controls.task is None)
        clicked = time.monotonic()
        controls.cancel_button.click()
        freed_ms = None
        if controls.task is None and controls.apply_button.isEnabled():
            freed_ms = round((time.monotonic() - clicked) * 1000, 1)
        yield ("cancelled job's thread ends", lambda: not job.thread.is_alive(), 120)
        acknowledged_s = round(time.monotonic() - clicked, 2)
        yield 0.5
        self.step("cancelled", message=_plain(controls.message.text()), layers_added=len(_layers(big)) - n_big,
                  freed_ms=freed_ms, outcome=job.outcome, acknowledged_s=acknowledged_s)

        # daemon_killed: the test kills sanetd mid-job; "connected" must not stay
        controls.apply_button.click()
        yield ("job running", lambda: controls.task is not None and controls.progress.value() > 0)
        _write("job_started", b"1")
        yield ("killed flag", lambda: os.path.exists(os.path.join(OUT, "killed")))
        killed_at = time.monotonic()
        yield ("status leaves connected", lambda: not controls.status_label.text().startswith("sanetd connected"))
        left_connected_s = round(time.monotonic() - killed_at, 2)
        yield ("job ends after the kill", lambda: controls.task is None)
        yield ("status not running", lambda: controls.session.status().state == connection.NOT_RUNNING)
        yield from _laid_out(controls, controls.status_detail)
        self.step("daemon_killed", message=_plain(controls.message.text()), status=controls.status_label.text(),
                  detail=_plain(controls.status_detail.text()), left_connected_s=left_connected_s,
                  layers_added=len(_layers(big)) - n_big, wraps=_fits(controls, controls.status_detail))
        _write("need_daemon_again", b"1")

        # recovered: the test starts sanetd again; the heartbeat notices without Reconnect
        yield ("daemon_up_again flag", lambda: os.path.exists(os.path.join(OUT, "daemon_up_again")))
        up_at = time.monotonic()
        yield ("status connected again", lambda: controls.connected, 60)
        reconnect_s = round(time.monotonic() - up_at, 2)
        big.setActiveNode(big_layer)
        controls.apply_button.click()
        started = time.monotonic()
        gaps = _GapMeter()
        yield ("job after restart", lambda: gaps.tick() and controls.task is None)
        self.step("recovered", message=_plain(controls.message.text()), status=controls.status_label.text(),
                  layers=_layers(big), seconds=round(time.monotonic() - started, 3), reconnect_s=reconnect_s,
                  max_event_loop_gap_ms=gaps.max_ms, ticks=gaps.n)

        # screenshot: a picture-like document, a style, three previews in the history
        if SHOWCASE_STYLE:
            yield from self.showcase(app, window, docker, controls)
        self.report["ok"] = True

    def showcase(self, app, window, docker, controls):
        w, h = 480, 320
        doc = app.createDocument(w, h, "landscape", "RGBA", "U8", "", 72.0)
        window.addView(doc)
        painting = doc.createNode("landscape", "paintlayer")
        painting.setPixelData(_landscape_bgra(w, h), 0, 0, w, h)
        doc.rootNode().addChildNode(painting, None)
        doc.waitForDone()
        yield 0.3
        doc.setActiveNode(painting)
        yield ("showcase active node", lambda: _active(doc) == "landscape")
        controls.model.remove_rows(range(controls.model.rowCount()))
        controls.history.clear()
        controls._show_history(None)
        controls.add_file(SHOWCASE_STYLE)
        controls.strength.setValue(100)
        controls.live.setChecked(True)
        for n, strength in enumerate((100, 70, 45)):
            controls.strength.setValue(strength)
            yield ("showcase preview %d" % n, lambda n=n: len(controls.history) == n + 1
                   and controls.preview_task is None)
        controls.apply_button.click()                   # one full-resolution result in the document too
        yield ("showcase apply", lambda: controls.task is None)
        docker.setFloating(True)
        docker.resize(380, 980)
        yield ("showcase settled", lambda: controls.preview_task is None)
        yield 1.0
        controls.history_view.setCurrentRow(1)          # browsing the history: the 70 % result
        focus = QApplication.focusWidget()
        if focus is not None:                           # the artist's focus is on the canvas, not in a field
            focus.clearFocus()
        yield 0.3
        docker.grab().save(os.path.join(OUT, "krita-docker.png"))
        window.qwindow().grab().save(os.path.join(OUT, "krita-window.png"))
        self.step("screenshot", history=len(controls.history), docker=[docker.width(), docker.height()],
                  body=[controls.body.width(), controls.body.height()],
                  preview_seconds=[round(i.seconds, 2) for i in controls.history.items],
                  shown=controls.pane.caption)


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


class _count_preview_starts:
    """Counts previews sent to sanetd from now on (wraps the widget's task creation)."""

    def __init__(self, controls):
        self.n = 0
        original = controls.run_preview

        def counting(*args, **kwargs):
            before = controls.preview_task
            original(*args, **kwargs)
            if controls.preview_task is not None and controls.preview_task is not before:
                self.n += 1
        controls.preview_timer.timeout.disconnect()
        controls.preview_timer.timeout.connect(counting)


def _progress_seen(task):
    """True once the task got a progress event from sanetd (the job is running there)."""
    return task.last_progress is not None


def _layout_report(controls):
    """Whether anything in the docker is squeezed below its minimum or overlaps a sibling."""
    group = controls.semantic
    kids = [c for c in controls.semantic_body.children() if isinstance(c, QWidget) and c.isVisible()]
    overlaps = []
    for i, a in enumerate(kids):
        for b in kids[i + 1:]:
            inter = a.geometry().intersected(b.geometry())
            if inter.width() > 0 and inter.height() > 0:
                overlaps.append([type(a).__name__, type(b).__name__])
    squeezed = [type(c).__name__ for c in kids if c.height() < c.minimumSizeHint().height()]
    return dict(overlaps=overlaps, squeezed=squeezed, group=[group.height(), group.minimumSizeHint().height()],
                body=[controls.body.height(), controls.body.minimumSizeHint().height()],
                scrolls=controls.scroll.verticalScrollBar().maximum() > 0,
                docker=[controls.width(), controls.height()], children=len(kids))


def _laid_out(controls, *labels, within=3.0):
    """Give Qt's deferred layout pass (a LayoutRequest after a label's text changed) up to ``within`` seconds to
    size the labels; the step then measures them (a label that never fits is reported by ``_fits``). Under load
    the probe can tick between setText and that pass, and saw a two-line label still one line tall."""
    end = time.monotonic() + within
    while time.monotonic() < end and not all(_fits(controls, lb) is True for lb in labels):
        yield 0.1


def _fits(controls, label):
    """A wrapped label is no wider than the docker's viewport and tall enough for all its lines."""
    ok = (label.width() <= controls.scroll.viewport().width()
          and label.height() >= label.heightForWidth(label.width()))
    return ok or [label.width(), controls.scroll.viewport().width(), label.height(),
                  label.heightForWidth(label.width())]


def _plain(text):
    return text.replace("\u200b", "")


def _active(doc):
    node = doc.activeNode()
    return node.name() if node is not None else None


def _landscape_bgra(w, h):
    """A simple painted landscape (sky, sun, hills, lake) as Krita BGRA bytes."""
    import math
    out = bytearray(w * h * 4)
    for y in range(h):
        for x in range(w):
            t = y / h
            r, g, b = int(70 + 150 * t), int(120 + 90 * t), int(220 - 60 * t)      # sky
            if (x - 340) ** 2 + (y - 90) ** 2 < 38 ** 2:
                r, g, b = 250, 215, 90                                             # sun
            hill = 190 + 30 * math.sin(x / 45.0) + 12 * math.sin(x / 13.0)
            if y > hill:
                r, g, b = int(40 + 60 * (y - hill) / h), int(110 + 50 * math.sin(x / 30.0) ** 2), 50
            if y > 255:
                r, g, b = 40, int(90 + 30 * math.sin((x + y) / 9.0)), int(150 + 40 * math.sin(x / 17.0))
            i = (y * w + x) * 4
            out[i:i + 4] = bytes((b, g, r, 255))
    return bytes(out)


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
