"""Scenarios that run INSIDE a real Krita (kritarunner, or the GUI probe plug-in) with a real sanetd.

Each writes what it saw to an output folder (raw Krita bytes + a JSON summary); the pytest side
(test_krita_*.py) checks those files against the `sanet` library with numpy. Runs on Krita's Python
(Debian's /usr/bin/python3): stdlib, PyQt5, krita, the plug-in and sanet_client only.

kritarunner calls `function(args)` with the extra command-line arguments as a list of strings.
"""
import contextlib
import json
import os
import sys
import traceback

try:
    from krita import Krita, Selection
except ImportError:  # imported by pytest only for the constants below
    Krita = Selection = None

W, H = 48, 40
SEL_RECT = (10, 8, 26, 22)    # x, y, w, h before feathering
FEATHER = 4


def _pattern_client(fmt, w=W, h=H, hdr=False):
    """A smooth, non-trivial test painting in client format (alpha 1 except a soft corner); hdr: red up to 2."""
    import array
    vals = []
    for y in range(h):
        for x in range(w):
            r = x / (w - 1) * (2.0 if hdr else 1.0)
            g = y / (h - 1)
            b = ((x * 7 + y * 3) % 17) / 16.0
            a = 1.0 if (x < w * 5 // 8 or y < h * 3 // 5) else 0.5
            vals.extend((r, g, b, a))
    if fmt == "rgba8":
        return bytes(int(round(v * 255)) for v in vals)
    if fmt == "rgba16":
        return array.array("H", (int(round(v * 65535)) for v in vals)).tobytes()
    return array.array("f", vals).tobytes()


def _write(out, name, data):
    with open(os.path.join(out, name), "wb") as fh:
        fh.write(bytes(data))


_OPEN = []


def _close_documents():
    """Close what a scenario opened: a document left open at exit makes kritarunner 5.1 segfault
    during teardown once sanet_client has been used (seen here; closing avoids it)."""
    import gc
    while _OPEN:
        doc = _OPEN.pop()
        doc.waitForDone()
        doc.close()
    gc.collect()


@contextlib.contextmanager
def _scenario(out, **initial):
    """A scenario's body runs inside; whatever happens, summary.json is written (with the traceback on failure) and
    the documents are closed (kritarunner segfaults at exit with a document left open)."""
    summary = dict(initial, ok=False)
    try:
        yield summary
    except Exception:
        summary["error"] = traceback.format_exc()
    finally:
        _close_documents()
        with open(os.path.join(out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)


def _make_document(depth, select=True, w=W, h=H, hdr=False, sel_rect=SEL_RECT):
    from sanet_style import formats
    app = Krita.instance()
    app.setBatchmode(True)
    doc = app.createDocument(w, h, "sanet-style test %s" % depth, "RGBA", depth, "", 72.0)
    _OPEN.append(doc)
    root = doc.rootNode()
    layer = doc.createNode("painting", "paintlayer")
    fmt = formats.client_format(depth)
    layer.setPixelData(formats.client_to_krita(_pattern_client(fmt, w, h, hdr), depth), 0, 0, w, h)
    root.addChildNode(layer, None)
    doc.setActiveNode(layer)
    if select:
        sel = Selection()
        sel.select(*sel_rect, 255)
        sel.feather(FEATHER)
        doc.setSelection(sel)
    doc.refreshProjection()
    doc.waitForDone()
    return doc, layer


def apply_scenario(args):
    """args: OUT_DIR DEPTH STYLE_PNG [ALPHA [MODEL [STYLE_KEYS [QUALITY]]]] — paint, select, run the plug-in's apply
    path, dump ('' = the default)."""
    out, depth, style_png = args[0], args[1], args[2]
    alpha = float(args[3]) if len(args) > 3 else 1.0
    model = (args[4] or None) if len(args) > 4 else None
    style_keys = (args[5] or None) if len(args) > 5 else None
    quality = (args[6] or None) if len(args) > 6 else None
    with _scenario(out, depth=depth) as summary:
        from sanet_style import clientlib, pipeline, styles
        mod = clientlib.load()
        doc, layer = _make_document(depth)
        before = bytes(layer.pixelData(0, 0, W, H))
        _write(out, "original_before.bin", before)
        _write(out, "selection.bin", doc.selection().pixelData(0, 0, W, H))
        # The style goes through the same path as the docker's "File…" entry.
        style = styles.StyleEntry("file", os.path.basename(style_png), path=style_png).to_style(mod)
        options = pipeline.Options(alpha=alpha, model=model, style_keys=style_keys, quality=quality)
        client = mod.Client(timeout=60.0)
        summary["fast_precision"] = client.hello()["capabilities"].get("fast_precision")
        try:
            new = pipeline.stylize_active_layer(doc, [style], options, mod, client, ["style"], node=layer)
        except mod.JobFailed as exc:   # e.g. a model sanetd has no weights for: what the artist would read
            summary.update(failed=dict(code=exc.code, field=exc.field, message=str(exc)),
                           layers=[n.name() for n in layer.parentNode().childNodes()
                                   if n.type() != "selectionmask"])
            summary["ok"] = True
            return
        finally:
            client.close()
        doc.waitForDone()
        siblings = layer.parentNode().childNodes()
        summary.update(
            layers=[n.name() for n in siblings if n.type() != "selectionmask"],
            new_name=new.name(), new_type=new.type(), new_depth=new.colorDepth(),
            original_depth=layer.colorDepth(),
            active=doc.activeNode().name() if doc.activeNode() else None,
        )
        _write(out, "new_layer.bin", new.pixelData(0, 0, W, H))
        _write(out, "original_after.bin", layer.pixelData(0, 0, W, H))
        summary["ok"] = True


PREVIEW_DOC = (160, 96)      # big enough to be scaled down with PREVIEW_TEST_SIDE
PREVIEW_TEST_SIDE = 64


def preview_scenario(args):
    """args: OUT_DIR DEPTH STYLE_PNG — the live preview's input from a real layer of that depth (scaled down in
    Krita, HDR values in float documents) and one preview request against sanetd; dump both."""
    out, depth, style_png = args[0], args[1], args[2]
    with _scenario(out, depth=depth) as summary:
        from sanet_style import clientlib, document, pipeline, preview, styles
        mod = clientlib.load()
        w, h = PREVIEW_DOC
        doc, layer = _make_document(depth, w=w, h=h, hdr=depth in ("F16", "F32"), sel_rect=(30, 20, 90, 60))
        snap = document.snapshot(doc, True, layer)
        prepared = preview.PreviewInput(snap, long_side=PREVIEW_TEST_SIDE)
        _write(out, "layer.bin", snap.raw)
        _write(out, "selection.bin", snap.mask)
        _write(out, "preview_in.bin", prepared.data)
        _write(out, "preview_mask.bin", prepared.mask)
        style = styles.StyleEntry("file", "style", path=style_png).to_style(mod)
        client = mod.Client(timeout=60.0)
        try:
            result = pipeline.stylize_preview(mod, client, prepared, [style], pipeline.Options(alpha=0.8))
        finally:
            client.close()
        _write(out, "preview_out.bin", result.data)
        image = preview.rgba8_image(result.format, result.data, result.width, result.height)
        summary.update(size=[w, h], preview_size=[prepared.width, prepared.height], long_side=PREVIEW_TEST_SIDE,
                       format=prepared.format, style_max_side=prepared.style_max_side,
                       image=[image.width(), image.height()], ok=True)


def library_scenario(args):
    """args: OUT_DIR STYLE_A_PNG STYLE_B_PNG — add A to the daemon's library, then stylize the whole
    layer (no selection) with [library A weight 0.3, file B weight 0.7] and preserve colours."""
    out, style_a, style_b = args[0], args[1], args[2]
    with _scenario(out) as summary:
        from sanet_style import clientlib, pipeline, sources, styles
        mod = clientlib.load()
        doc, layer = _make_document("U8", select=False)
        _write(out, "original_before.bin", layer.pixelData(0, 0, W, H))
        client = mod.Client(timeout=60.0)
        try:
            added = client.styles_add("probe style A",
                                      styles.StyleEntry("file", "A", path=style_a).to_style(mod))
            entries = client.styles_list()
            entry = [e for e in entries if e.get("id") == added.get("id")][0]
            thumb = sources.library_thumbnail(entry)
            summary.update(library_names=[e.get("name") for e in entries],
                           thumbnail=None if thumb is None else [thumb.width(), thumb.height()])
            chosen = [styles.StyleEntry("library", entry["name"], 0.3, style_id=entry["id"]).to_style(mod),
                      styles.StyleEntry("file", "B", 0.7, path=style_b).to_style(mod)]
            options = pipeline.Options(preserve_color=True, only_selection=True)
            new = pipeline.stylize_active_layer(doc, chosen, options, mod, client, node=layer)
            client.styles_remove(entry["id"])
        finally:
            client.close()
        summary.update(new_name=new.name(), selection=doc.selection() is not None)
        _write(out, "new_layer.bin", new.pixelData(0, 0, W, H))
        _write(out, "original_after.bin", layer.pixelData(0, 0, W, H))
        summary["ok"] = True


LABEL_COLOURS = ((230, 40, 30), (20, 60, 220))   # the two regions of the labelled scenario


def _label_layer_client(fmt):
    """The content label layer in client format: colour 0 on the left 20 columns, colour 1 on the rest."""
    import array
    vals = []
    for y in range(H):
        for x in range(W):
            vals.extend(LABEL_COLOURS[0 if x < 20 else 1] + (255,))
    if fmt == "rgba8":
        return bytes(vals)
    if fmt == "rgba16":
        return array.array("H", (v * 257 for v in vals)).tobytes()
    return array.array("f", (v / 255.0 for v in vals)).tobytes()


def labelled_scenario(args):
    """args: OUT_DIR DEPTH STYLE_PNG STYLE_LABELS_PNG — semantic (SCSA) run: a label layer painted with two
    colours gives the content label map; the style file has a label-map file; no selection."""
    out, depth, style_png, style_labels_png = args[0], args[1], args[2], args[3]
    with _scenario(out) as summary:
        from sanet_style import clientlib, formats, pipeline, styles
        mod = clientlib.load()
        doc, layer = _make_document(depth, select=False)
        label_layer = doc.createNode("regions", "paintlayer")
        fmt = formats.client_format(depth)
        label_layer.setPixelData(formats.client_to_krita(_label_layer_client(fmt), depth), 0, 0, W, H)
        layer.parentNode().addChildNode(label_layer, layer)
        doc.refreshProjection()
        doc.waitForDone()
        _write(out, "original_before.bin", layer.pixelData(0, 0, W, H))
        entry = styles.StyleEntry("file", "style", path=style_png, labels_path=style_labels_png)
        style = entry.to_style(mod, with_labels=True)
        summary["style_labels"] = [style.labels.width, style.labels.height, style.labels.format]
        client = mod.Client(timeout=60.0)
        try:
            new = pipeline.stylize_active_layer(doc, [style], pipeline.Options(scsa_weights=(0.6, 0.4)), mod,
                                                client, node=layer, label_layer="regions")
            try:
                pipeline.stylize_active_layer(doc, [style], pipeline.Options(), mod, client, node=layer,
                                              label_layer="no such layer")
                summary["missing_layer"] = "no exception"
            except Exception as exc:
                summary["missing_layer"] = "%s: %s" % (type(exc).__name__, exc)
        finally:
            client.close()
        summary["new_name"] = new.name()
        _write(out, "new_layer.bin", new.pixelData(0, 0, W, H))
        _write(out, "original_after.bin", layer.pixelData(0, 0, W, H))
        summary["ok"] = True


def bad_document_scenario(args):
    """args: OUT_DIR — a grayscale document is refused with a message that says what to do."""
    out = args[0]
    with _scenario(out) as summary:
        from sanet_style import document, formats
        app = Krita.instance()
        app.setBatchmode(True)
        doc = app.createDocument(16, 16, "gray", "GRAYA", "U8", "", 72.0)
        _OPEN.append(doc)
        layer = doc.createNode("gray painting", "paintlayer")
        doc.rootNode().addChildNode(layer, None)
        try:
            document.snapshot(doc, True, layer)
            summary["error"] = "no exception"
        except formats.FormatError as exc:
            summary.update(ok=True, message=str(exc))


def no_daemon_scenario(args):
    """args: OUT_DIR — the apply path with sanetd absent must raise one clear, actionable error."""
    out = args[0]
    with _scenario(out) as summary:
        from sanet_style import clientlib, pipeline
        mod = clientlib.load()
        doc, layer = _make_document("U8")
        n_before = len(layer.parentNode().childNodes())
        style = mod.StylePixels(2, 2, "rgba8", b"\x80" * 16)
        client = None
        try:
            client = mod.Client(timeout=2.0)
            pipeline.stylize_active_layer(doc, [style], pipeline.Options(), mod, client, node=layer)
            summary["error"] = "no exception"
        except mod.SanetClientError as exc:
            summary.update(ok=True, exception=type(exc).__name__, message=str(exc))
        finally:
            if client is not None:
                client.close()
        summary["layers_added"] = len(layer.parentNode().childNodes()) - n_before


if __name__ == "__main__":
    sys.exit("run me through kritarunner -s krita_scenarios -f FUNCTION ARGS")


def _wait_connected(sess, timeout=90.0):
    import time
    end = time.monotonic() + timeout
    status = sess.status()
    while time.monotonic() < end and not status.connected:
        time.sleep(0.2)
        status = sess.status()
    return status


def server_choice_scenario(args):
    """args: OUT_DIR CONNECTION_FILE STYLE_PNG — the docker's Server choice set to a shared server's connection
    file (sanetd invite): remembered in the profile (kritarc), the heartbeat connects there, and the apply path
    stylizes through it."""
    out, conn, style_png = args[0], args[1], args[2]
    with _scenario(out) as summary:
        from sanet_style import pipeline, session, styles
        sess = session.get()
        sess.set_server(conn)
        status = _wait_connected(sess)
        summary.update(headline=status.headline(), remote=status.remote, offer_start=status.offer_start,
                       setting=Krita.instance().readSetting("sanet_style", "connection_file", ""))
        mod = sess.monitor.mod
        doc, layer = _make_document("U8")
        style = styles.StyleEntry("file", os.path.basename(style_png), path=style_png).to_style(mod)
        client = mod.Client(connection_file=sess.connection_file, timeout=60.0)
        try:
            new = pipeline.stylize_active_layer(doc, [style], pipeline.Options(alpha=0.8), mod, client, ["style"],
                                                node=layer)
            summary["client"] = client.hello()["client"]
        finally:
            client.close()
        doc.waitForDone()
        summary["new_name"] = new.name()
        sess.shutdown()
        summary["ok"] = True


def server_remembered_scenario(args):
    """args: OUT_DIR — a new Krita process: the Server choice made before is still there; then back to this
    computer (the profile is shared with other tests)."""
    out = args[0]
    with _scenario(out) as summary:
        from sanet_style import session
        sess = session.get()
        summary["connection_file"] = sess.connection_file
        status = _wait_connected(sess)
        summary["headline"] = status.headline()
        sess.set_server(None)
        summary["after_reset"] = Krita.instance().readSetting("sanet_style", "connection_file", "unset")
        sess.shutdown()
        summary["ok"] = True
