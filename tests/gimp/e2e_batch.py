"""Runs INSIDE GIMP (gimp-console-3.0 --batch-interpreter python-fu-eval -b -): the end-to-end scenario.

Driven by a JSON spec (path in SANET_E2E_SPEC); writes raw pixel dumps and one result JSON per case into the
spec's "out" folder, for tests/gimp/test_gimp_e2e.py to check with numpy. Executed with exec(): no __file__.
"""
import json
import os
import subprocess
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

SPEC = json.load(open(os.environ["SANET_E2E_SPEC"]))
OUT = SPEC["out"]
PDB = Gimp.get_pdb()


def rect(x, y, w, h):
    return Gegl.Rectangle.new(int(x), int(y), int(w), int(h))


def dump(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes(data))


def read(drawable, fmt, x=0, y=0, w=None, h=None):
    w = drawable.get_width() if w is None else w
    h = drawable.get_height() if h is None else h
    return drawable.get_buffer().get(rect(x, y, w, h), 1.0, fmt, Gegl.AbyssPolicy.NONE)


def layer_info(layer):
    _, x, y = layer.get_offsets()
    info = {"id": layer.get_id(), "name": layer.get_name(), "x": x, "y": y, "w": layer.get_width(),
            "h": layer.get_height(), "has_mask": layer.get_mask() is not None}
    if layer.is_group_layer():
        info["children"] = [layer_info(c) for c in layer.get_children()]
    return info


def all_layers(img):
    """Every layer, group members included, top to bottom."""
    out = []

    def walk(layers):
        for x in layers:
            out.append(x)
            if x.is_group_layer():
                walk(x.get_children())
    walk(img.get_layers())
    return out


def run_procedure(name, image, drawables, args, run_mode=Gimp.RunMode.NONINTERACTIVE):
    proc = PDB.lookup_procedure(name)
    if proc is None:
        raise RuntimeError(f"procedure {name} is not registered (plug-in not found or failed to load)")
    cfg = proc.create_config()
    cfg.set_property("run-mode", run_mode)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", drawables)
    for key, value in args.items():
        if key == "style-file":
            value = Gio.File.new_for_path(value) if value else None
        elif key in ("style-layer", "style-label-layer"):  # "open:PATH": a layer of another open image
            gfile = Gio.File.new_for_path(value[len("open:"):])
            other = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, gfile)
            value = other.get_layers()[0]
        elif key == "content-labels-layer":  # "layer:NAME": a layer of this image
            value = image.get_layer_by_name(value[len("layer:"):])
        cfg.set_property(key, value)
    t0 = time.monotonic()
    result = proc.run(cfg)
    elapsed = time.monotonic() - t0
    status = result.index(0)
    error = PDB.get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""
    return status.value_nick, error, elapsed


def press_undo(img, count_after):
    """Ctrl+Z in the image window, through the X server (xdotool), as an artist would; GIMP has no PDB undo."""
    time.sleep(0.5)
    listing = subprocess.run("for w in $(xdotool search --onlyvisible --name '.*'); do "
                             "echo $w $(xdotool getwindowname $w); done", shell=True, capture_output=True,
                             text=True, timeout=30).stdout
    windows = [line.split()[0] for line in listing.splitlines() if "GIMP" in line and "Untitled" in line]
    if not windows:
        return {"error": f"no image window found among: {listing!r}"}
    key = subprocess.run(["xdotool", "windowfocus", "--sync", windows[-1], "key", "--clearmodifiers", "ctrl+z"],
                         capture_output=True, text=True, timeout=30)
    for _ in range(100):  # the core handles the key while this script waits
        time.sleep(0.1)
        if len(img.get_layers()) != count_after:
            break
    time.sleep(0.3)
    return {"layers": [layer_info(x) for x in img.get_layers()], "xdotool": key.returncode}


def run_case(case):
    prec = getattr(Gimp.Precision, case["precision"])
    base = getattr(Gimp.ImageBaseType, case.get("base", "RGB"))
    W, H = case["image_size"]
    img = Gimp.Image.new_with_precision(W, H, base, prec)
    gray = base == Gimp.ImageBaseType.GRAY
    bg = Gimp.Layer.new(img, "background", W, H, Gimp.ImageType.GRAY_IMAGE if gray else Gimp.ImageType.RGB_IMAGE,
                        100, Gimp.LayerMode.NORMAL)
    img.insert_layer(bg, None, 0)
    bg.fill(Gimp.FillType.WHITE)
    L = case["layer"]
    content = Gimp.Layer.new(img, "content", L["w"], L["h"],
                             Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE,
                             100, Gimp.LayerMode.NORMAL)
    parent = None
    if case.get("in_group"):
        # the active layer sits inside a layer group, under a sibling: the result must land in the group
        parent = Gimp.GroupLayer.new(img, "group")
        img.insert_layer(parent, None, 0)
        sibling = Gimp.Layer.new(img, "sibling", 4, 4, Gimp.ImageType.RGBA_IMAGE, 100, Gimp.LayerMode.NORMAL)
        img.insert_layer(sibling, parent, 0)
    img.insert_layer(content, parent, 1 if parent is not None else 0)
    content.set_offsets(L["x"], L["y"])
    buf = content.get_buffer()
    buf.set(rect(0, 0, L["w"], L["h"]), L["babl"], open(L["data"], "rb").read())
    buf.flush()
    # a layer on top that must stay on top: the result goes right above the active layer, not at the top
    top = Gimp.Layer.new(img, "top", 8, 8, Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE,
                         100, Gimp.LayerMode.NORMAL)
    img.insert_layer(top, None, 0)
    if case.get("label_layer"):
        # SCSA: a colour-coded label layer, hidden, at the bottom of the stack
        LL = case["label_layer"]
        regions = Gimp.Layer.new(img, "regions", LL["w"], LL["h"], Gimp.ImageType.RGBA_IMAGE, 100,
                                 Gimp.LayerMode.NORMAL)
        img.insert_layer(regions, None, len(img.get_layers()))
        regions.set_offsets(L["x"], L["y"])
        rbuf = regions.get_buffer()
        rbuf.set(rect(0, 0, LL["w"], LL["h"]), LL["babl"], open(LL["data"], "rb").read())
        rbuf.flush()
        regions.set_visible(False)
    for k, ch in enumerate(case.get("channels") or []):
        # SCSA: saved selection channels (Select → Save to Channel), dumped over the layer's area
        img.select_rectangle(Gimp.ChannelOps.REPLACE, *ch["rect"])
        channel = Gimp.Selection.save(img)
        channel.set_name(ch["name"])
        dump(f"{case['name']}.channel{k}.raw", channel.get_buffer().get(
            rect(L["x"], L["y"], L["w"], L["h"]), 1.0, "Y u8", Gegl.AbyssPolicy.NONE))
    if case.get("channels"):
        Gimp.Selection.none(img)
    img.set_selected_layers([content])

    if case.get("ellipse"):
        ex, ey, ew, eh = case["ellipse"]
        img.select_ellipse(Gimp.ChannelOps.REPLACE, ex, ey, ew, eh)
        if case.get("feather"):
            Gimp.Selection.feather(img, case["feather"])
    name = case["name"]
    fmt = case["read_format"]
    dump(f"{name}.orig_before.raw", read(content, None))            # native format: byte identity
    dump(f"{name}.content.raw", read(content, fmt))                 # what the plug-in sends
    dump(f"{name}.selection.raw", img.get_selection().get_buffer().get(
        rect(L["x"], L["y"], L["w"], L["h"]), 1.0, "Y float", Gegl.AbyssPolicy.NONE))
    before = [layer_info(x) for x in img.get_layers()]
    before_all = all_layers(img)

    if case.get("display"):
        # GUI run only: an image window, so that GIMP shows the filter's progress (and its Cancel) in its status bar
        Gimp.Display.new(img)
        Gimp.displays_flush()
    if case.get("undo"):
        # GUI run only: a display, and one undoable step of our own before the filter, so that one Ctrl+Z
        # must remove exactly the filter's work (no more, no less)
        Gimp.Display.new(img)
        content.set_name("content (renamed)")
        Gimp.displays_flush()
    if case.get("last_values") is not None:   # what the plug-in remembers from its last run (its own file)
        folder = os.path.join(Gimp.directory(), "sanet-style")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "last-values.json"), "w") as f:
            json.dump(case["last_values"], f)
    if case.get("server_choice") is not None:   # the dialog's Server choice of this GIMP profile
        folder = os.path.join(Gimp.directory(), "sanet-style")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "server.json"), "w") as f:
            json.dump({"connection-file": case["server_choice"]}, f)
    helper = None
    run_mode = Gimp.RunMode.NONINTERACTIVE
    log = os.environ.get("SANET_GIMP_EVENT_LOG")
    if log:  # the plug-in's events of this case follow this line
        with open(log, "a") as f:
            f.write(json.dumps({"event": "case", "name": name, "time": time.time()}) + "\n")
    steps = case.get("steps")
    if case.get("dialog_keys"):
        # the dialog (a window titled "Style Transfer"): wait, then press the keys, like an artist
        keys = case["dialog_keys"] if isinstance(case["dialog_keys"], list) else [case["dialog_keys"]]
        steps = [{"window": "^Style Transfer$"}]
        for k in keys:
            steps += [{"sleep": case.get("dialog_wait", 1.5)}, {"keys": k}]
    if steps:
        # GUI run only: dialog_driver.py answers the filter's windows (see its docstring)
        if case.get("interactive", True):
            run_mode = Gimp.RunMode.INTERACTIVE
        spec_path = os.path.join(OUT, f"{name}.steps.json")
        with open(spec_path, "w") as f:   # "@IMAGE@": this case's image id (its window title has it)
            f.write(json.dumps(steps).replace("@IMAGE@", str(img.get_id())))
        helper = subprocess.Popen(["python3", "/e2e/dialog_driver.py", spec_path,
                                   os.path.join(OUT, f"{name}.driver.json")])
    if case.get("gui_only"):
        # the artist drives GIMP's own menus (action search, Filters → Repeat): no procedure call here
        t0 = time.monotonic()
        try:
            helper.wait(case.get("gui_timeout", 400))
        except subprocess.TimeoutExpired:
            pass
        status, error, elapsed = "gui", "", time.monotonic() - t0
    else:
        target = content
        if case.get("on_mask"):   # the artist left the layer's mask active: the filter is handed the mask
            mask = content.create_mask(Gimp.AddMaskType.WHITE)
            content.add_mask(mask)
            target = mask
        status, error, elapsed = run_procedure(case.get("procedure", "python-fu-sanet-style-transfer"), img,
                                               [target], case.get("args", {}), run_mode=run_mode)
    if helper is not None:
        try:
            helper_rc = helper.wait(60)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper_rc = "timeout"
    after = [layer_info(x) for x in img.get_layers()]
    res = {"status": status, "error": error, "elapsed": elapsed, "before": before, "after": after,
           "selected": [x.get_id() for x in img.get_selected_layers()],
           "selected_drawables": [x.get_id() for x in img.get_selected_drawables()], "content_id": content.get_id()}
    if case.get("server_choice") is not None:   # what the dialog left as this profile's Server choice
        try:
            res["server_choice_after"] = json.load(open(os.path.join(Gimp.directory(), "sanet-style",
                                                                     "server.json")))
        except (OSError, ValueError) as exc:
            res["server_choice_after"] = {"error": str(exc)}
    if helper is not None:
        res["dialog_helper"] = helper_rc
        try:
            res["driver"] = json.load(open(os.path.join(OUT, f"{name}.driver.json")))
        except (OSError, ValueError) as exc:
            res["driver"] = {"error": f"no driver report: {exc}"}
    dump(f"{name}.orig_after.raw", read(content, None))
    before_ids = {x.get_id() for x in before_all}
    new_layers = [x for x in all_layers(img) if x.get_id() not in before_ids]
    if new_layers:
        new = new_layers[0]
        res["new"] = layer_info(new)
        res["new_composite_space"] = new.get_composite_space().value_nick
        dump(f"{name}.new.raw", read(new, "R'G'B'A float"))
        if new.get_mask() is not None:
            dump(f"{name}.new_mask.raw", read(new.get_mask(), "Y float"))
        # what the artist sees over the content layer's area
        vis = Gimp.Layer.new_from_visible(img, img, "visible")
        dump(f"{name}.visible.raw", read(vis, "R'G'B'A float", L["x"], L["y"], L["w"], L["h"]))
        vis.delete()
        for i, extra in enumerate(new_layers[1:], 1):   # e.g. Filters → Repeat right after the run
            dump(f"{name}.new{i}.raw", read(extra, "R'G'B'A float"))
    if case.get("undo"):
        res["undo"] = press_undo(img, len(after))
        res["undo"]["orig_after_undo_identical"] = bytes(read(content, None)) == open(
            os.path.join(OUT, f"{name}.orig_before.raw"), "rb").read()
    if case.get("repeat_args") is not None:
        # Repeat Last Style Transfer on the same layer: another new layer with the same settings
        # Filters → Repeat runs it on the image's selected drawables: the source layer again, not the result
        r_status, r_error, _ = run_procedure("python-fu-sanet-style-transfer-repeat", img,
                                             list(img.get_selected_drawables()), case["repeat_args"])
        res["repeat"] = {"status": r_status, "error": r_error,
                         "after": [layer_info(x) for x in img.get_layers()]}
        added = [x for x in img.get_layers() if x.get_id() not in {a["id"] for a in after}]
        if added:
            dump(f"{name}.repeat.raw", read(added[0], "R'G'B'A float"))
        # GIMP's own Filters → Repeat: the main procedure WITH_LAST_VALS on the selected drawables
        before_ids = {x.get_id() for x in img.get_layers()}
        g_status, g_error, _ = run_procedure("python-fu-sanet-style-transfer", img,
                                             list(img.get_selected_drawables()), {},
                                             run_mode=Gimp.RunMode.WITH_LAST_VALS)
        res["repeat_gimp"] = {"status": g_status, "error": g_error,
                              "after": [layer_info(x) for x in img.get_layers()],
                              "selected": [x.get_id() for x in img.get_selected_drawables()]}
        added = [x for x in img.get_layers() if x.get_id() not in before_ids]
        if added:
            dump(f"{name}.repeat_gimp.raw", read(added[0], "R'G'B'A float"))
    img.delete()
    return res


results = {}
for case in SPEC["cases"]:
    try:
        results[case["name"]] = run_case(case)
    except Exception:
        results[case["name"]] = {"status": "script-error", "error": traceback.format_exc()}
with open(os.path.join(OUT, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
