"""End-to-end: the plug-in in a real GIMP 3.0 (Debian trixie chroot), a real sanetd on CPU, real files.

One headless GIMP run does every case (GIMP starts in ~5-10 s); the checks are split into small tests.
The oracle is the engine itself: `sanet.Stylizer.stylize` on the same pixels and the same selection.
Build the chroot once with `tests/gimp/gimp_env.sh build` (cached in ~/.cache/sanet-style/gimp-trixie).
"""
from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from gimp_runner import ROOT, ensure_chroot, log_times, read_events, run_gimp
from sanetd_process import running_sanetd

pytestmark = [pytest.mark.gimp, pytest.mark.slow]
SCREENSHOTS = ROOT / "docs" / "screenshots"   # SANET_UPDATE_SCREENSHOTS=1 copies the dialog's screenshot there

# image 72x60, content layer 48x36 at (14, 10); the feathered ellipse pokes out of the layer's top-left
IMAGE = (72, 60)
LAYER = dict(w=48, h=36, x=14, y=10)
ELLIPSE = (4, 2, 44, 34)
FEATHER = 10
BIG = (1920, 1080)  # a full-HD layer: its job (~10 s on an idle 2-core CPU) is still running when Escape comes
SCENE = (480, 360)  # the layer the dialog's preview is shown and screenshotted with

# name -> (GIMP precision, base type, babl format the plug-in reads, numpy dtype of that format)
CASES = {
    "u8": ("U8_NON_LINEAR", "RGB", "R'G'B'A u8", np.uint8),
    "u16": ("U16_NON_LINEAR", "RGB", "R'G'B'A u16", np.uint16),
    "float": ("FLOAT_LINEAR", "RGB", "R'G'B'A float", np.float32),
}
# the Cancel button of the image window's status bar, from the window's bottom-right corner (GIMP 3.0.4's
# default layout on the 1280x1400 Xvfb screen; a miss shows as a run that was not cancelled)
GIMP_STATUS_CANCEL = [282, 18]
CANCEL_EFFECT_S = 5.0
# the style settings of the preview case (a library style and an image file), and where that dialog shows the
# file's "Add to library" button and the first library thumbnail (GIMP 3.0.4's theme on the 1280x1400 Xvfb
# screen; a miss shows as a missing library event)
PREVIEW_VALUES = {"style-files": ["/e2e/style2.png"], "style-weights": "0.6, 1", "alpha": 1.0, "preserve-colors": True}
ADD_TO_LIBRARY_BUTTON = [896, 324]
FIRST_LIBRARY_TILE = [597, 125]   # a Cancel must end the daemon job within this (issue 12: "within a few seconds")
TOL = {np.uint8: 1.01 / 255, np.uint16: 4 / 65535, np.float32: 2e-4}


def content_pixels(dtype, seed):
    """Opaque, structured content (gradients + blobs + noise), so the result depends on the pixels."""
    rng = np.random.default_rng(seed)
    h, w = LAYER["h"], LAYER["w"]
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    rgb = np.stack([xx, yy, 0.5 + 0.4 * np.sin(6 * xx + 4 * yy)], -1) * 0.8 + rng.random((h, w, 3)) * 0.2
    rgba = np.concatenate([np.clip(rgb, 0, 1), np.ones((h, w, 1))], -1)
    if dtype == np.float32:
        return rgba.astype(np.float32)
    scale = np.iinfo(dtype).max
    return np.round(rgba * scale).astype(dtype)


def big_style_image(n=280):
    """A style above 256 px: AdaAttN's released code attends over a sample of its relu3_1 positions (70² > 64²)."""
    rng = np.random.default_rng(12)
    yy, xx = np.mgrid[0:n, 0:n]
    img = (np.sin(xx / 7.0 + 2 * np.sin(yy / 23.0))[..., None] * np.array([90, 40, -60]) + np.array([120, 110, 130])
           + ((xx // 20 + yy // 20) % 2)[..., None] * np.array([60, -30, 40]) + rng.integers(0, 40, (n, n, 3)))
    return np.clip(img, 0, 255).astype(np.uint8)


def style_image(seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48]
    stripes = ((xx + yy) // 6 % 2)[..., None] * np.array([200, 60, 30]) + rng.integers(0, 55, (48, 48, 3))
    return np.clip(stripes, 0, 255).astype(np.uint8)


# SCSA label maps: flat colours (content: left / right / a block; style: top / middle / bottom bands)
RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (30, 40, 220)


def content_regions(w=None):
    h, w = LAYER["h"], w or LAYER["w"]
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:, : w // 2, :3] = RED
    rgba[:, w // 2:, :3] = BLUE
    rgba[8:24, 30:44, :3] = GREEN
    return rgba


def region_style():
    """A style whose bands look very different, so that which band a region may attend to shows."""
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:48, 0:48]
    img = np.zeros((48, 48, 3), np.int64)
    img[:16] = ((xx[:16] // 4) % 2)[..., None] * np.array([230, 40, 20]) + 20
    img[16:32] = np.array([40, 190, 60]) + rng.integers(-30, 30, (16, 48, 3))
    img[32:] = ((yy[32:] // 3) % 2)[..., None] * np.array([20, 60, 240]) + 10
    return np.clip(img, 0, 255).astype(np.uint8)


def style_regions():
    rgb = np.zeros((48, 48, 3), np.uint8)
    rgb[:16], rgb[16:32], rgb[32:] = RED, GREEN, BLUE
    return rgb


def style_region_ids():
    """Integer labels as grey values: 1 top band, 2 middle band, 0 bottom band (for the channels case)."""
    ids = np.zeros((48, 48), np.uint8)
    ids[:16], ids[16:32] = 1, 2
    return ids


# two saved channels in image coordinates ("sky" covers the layer's top, "face" overlaps it lower right)
CHANNELS = [dict(name="sky", rect=[0, 0, IMAGE[0], LAYER["y"] + 14]),
            dict(name="face", rect=[LAYER["x"] + 20, LAYER["y"] + 10, 20, 30])]


def load_f32(path, shape):
    return np.frombuffer(path.read_bytes(), np.float32).reshape(shape)


@pytest.fixture(scope="module")
def gimp_e2e(adaattn_weights, synthetic_weights, tmp_path_factory):
    """One headless GIMP run of every scripted case against a sanetd with both models' weights (SANet's files are
    the same as synthetic_weights'), and a second sanetd with SANet's only (a model it lacks)."""
    ensure_chroot()
    work = tmp_path_factory.mktemp("gimp-e2e")
    Image.fromarray(style_image(1)).save(work / "style.png")
    Image.fromarray(style_image(2)[:, ::-1]).save(work / "style2.png")
    cases = []
    for name, (prec, base, fmt, dtype) in CASES.items():
        (work / f"{name}.in.raw").write_bytes(content_pixels(dtype, 7).tobytes())
        cases.append(dict(name=name, precision=prec, base=base, image_size=IMAGE, read_format=fmt,
                          layer=dict(LAYER, data=f"/e2e/{name}.in.raw", babl=fmt), ellipse=ELLIPSE,
                          feather=FEATHER, args={"style-file": "/e2e/style.png"}))
    cases[0]["repeat_args"] = {}  # "Repeat Last Style Transfer" right after the u8 run
    # several styles with weights, strength and colour preservation
    (work / "mix.in.raw").write_bytes(content_pixels(np.uint8, 8).tobytes())
    cases.append(dict(name="mix", precision="U8_NON_LINEAR", base="RGB", image_size=IMAGE,
                      read_format="R'G'B'A u8", layer=dict(LAYER, data="/e2e/mix.in.raw", babl="R'G'B'A u8"),
                      ellipse=ELLIPSE, feather=FEATHER,
                      args={"style-file": "/e2e/style.png", "style-files": ["/e2e/style2.png"],
                            "style-weights": "1, 3", "alpha": 0.7, "preserve-colors": True}))
    # no selection: the whole layer, no layer mask
    cases.append(dict(cases[0], name="nosel", ellipse=None, repeat_args=None))
    # the style taken from a layer of another open image (the same pixels as style.png)
    cases.append(dict(cases[0], name="stylelayer", repeat_args=None,
                      args={"style-layer": "open:/e2e/style.png"}))
    # a style from the daemon's library (added below, the same pixels as style.png)
    cases.append(dict(cases[0], name="library", repeat_args=None, args={"library-styles": "@LIBRARY_ID@"}))
    # the active layer inside a layer group
    cases.append(dict(cases[0], name="group", in_group=True, repeat_args=None))
    # the drawable handed to the filter is a layer mask: one message, the filter's name once
    cases.append(dict(cases[0], name="on_mask", on_mask=True, repeat_args=None))
    # a grayscale image
    # SCSA: a label layer + a style label file; saved channels + an integer (grey) style label file
    Image.fromarray(region_style()).save(work / "style_regions.png")
    Image.fromarray(style_regions()).save(work / "style_regions.labels.png")
    Image.fromarray(style_region_ids(), "L").save(work / "style_regions.ids.png")
    (work / "regions.raw").write_bytes(content_regions().tobytes())
    (work / "regions_narrow.raw").write_bytes(content_regions(LAYER["w"] - 8).tobytes())
    labelled = dict(cases[0], repeat_args=None,
                    label_layer=dict(w=LAYER["w"], h=LAYER["h"], data="/e2e/regions.raw", babl="R'G'B'A u8"),
                    args={"style-file": "/e2e/style_regions.png", "content-labels-layer": "layer:regions",
                          "style-label-files": ["/e2e/style_regions.labels.png"]})
    cases.append(dict(labelled, name="labels"))
    # a 16-bit image: the layer goes as rgba16, its label layer still as rgba8 colours
    cases.append(dict(labelled, name="labels_u16", precision="U16_NON_LINEAR", read_format="R'G'B'A u16",
                      layer=dict(LAYER, data="/e2e/u16.in.raw", babl="R'G'B'A u16")))
    # the style and its label map both from layers of other open images (the same pixels as the files)
    cases.append(dict(labelled, name="labels_stylelayer",
                      args={"style-layer": "open:/e2e/style_regions.png", "content-labels-layer": "layer:regions",
                            "style-label-layer": "open:/e2e/style_regions.labels.png"}))
    cases.append(dict(labelled, name="labels_plain", label_layer=None, args={"style-file": "/e2e/style_regions.png"}))
    cases.append(dict(labelled, name="labels_size", label_layer=dict(labelled["label_layer"], w=LAYER["w"] - 8,
                                                                     data="/e2e/regions_narrow.raw")))
    # a library style with a label map (the daemon pairs it with the stored image), and a style map of the
    # wrong size (refused by the plug-in, naming both sizes)
    Image.fromarray(style_regions()[:, ::-1]).save(work / "style.labels.png")
    Image.fromarray(style_regions()[:40, :40]).save(work / "small.labels.png")
    cases.append(dict(labelled, name="labels_library",
                      args=dict(labelled["args"], **{"style-file": None, "library-styles": "@LIBRARY_ID@",
                                                     "style-label-files": ["/e2e/style.labels.png"]})))
    cases.append(dict(labelled, name="labels_style_size",
                      args=dict(labelled["args"], **{"style-label-files": ["/e2e/small.labels.png"]})))
    cases.append(dict(cases[0], name="channels", repeat_args=None, ellipse=None, channels=CHANNELS,
                      args={"style-file": "/e2e/style_regions.png", "content-labels-channels": "sky, face",
                            "style-label-files": ["/e2e/style_regions.ids.png"], "scsa-t1": 0.9, "scsa-t2": 0.5}))
    # AdaAttN: the model argument (and Repeat remembers it), full attention on a large style, label maps; a model
    # the daemon lacks, a model that does not exist
    Image.fromarray(big_style_image()).save(work / "big_style.png")
    cases.append(dict(cases[0], name="ada", args={"style-file": "/e2e/style.png", "model": "adaattn"}))
    cases.append(dict(cases[0], name="ada_sampled", repeat_args=None, ellipse=None,
                      args={"style-file": "/e2e/big_style.png", "model": "adaattn"}))
    cases.append(dict(cases[0], name="ada_all", repeat_args=None, ellipse=None,
                      args={"style-file": "/e2e/big_style.png", "model": "adaattn", "style-keys": "all"}))
    cases.append(dict(labelled, name="ada_labels", args=dict(labelled["args"], model="adaattn")))
    cases.append(dict(cases[0], name="ada_missing", repeat_args=None,
                      args={"style-file": "/e2e/style.png", "model": "adaattn", "connection-file": "@SANET_ONLY@"}))
    cases.append(dict(cases[0], name="model_bad", repeat_args=None, args={"style-file": "/e2e/style.png",
                                                                          "model": "adain"}))
    gray = content_pixels(np.uint8, 9)
    gray[..., 1] = gray[..., 2] = gray[..., 0]
    (work / "gray.in.raw").write_bytes(gray.tobytes())
    cases.append(dict(name="gray", precision="U8_NON_LINEAR", base="GRAY", image_size=IMAGE,
                      read_format="R'G'B'A u8", layer=dict(LAYER, data="/e2e/gray.in.raw", babl="R'G'B'A u8"),
                      ellipse=ELLIPSE, feather=FEATHER, args={"style-file": "/e2e/style.png"}))

    # the daemon's weights: both models plus the variant sanet:ink, installed from a synthetic `sanet train` run
    weights = variant_weights(work, adaattn_weights)
    cases.append(dict(cases[0], name="variant", repeat_args=None, args={"style-file": "/e2e/style.png", "model": "sanet:ink"}))
    with running_sanetd(work / "daemon", weights) as d, \
            running_sanetd(work / "daemon_sanet", synthetic_weights) as sanet_only:
        from sanet_client import Client, StylePixels
        rgba = np.asarray(Image.open(work / "style.png").convert("RGBA"))
        with Client(d.connection_file) as c:
            style_id = c.styles_add("Stripes", StylePixels(rgba.shape[1], rgba.shape[0], "rgba8", rgba.tobytes()))["id"]
        for case in cases:
            if case["args"].get("library-styles") == "@LIBRARY_ID@":
                case["args"] = {k: v for k, v in case["args"].items() if v is not None} | {"library-styles": style_id}
            if case["args"].get("connection-file") == "@SANET_ONLY@":
                case["args"] = dict(case["args"], **{"connection-file": str(sanet_only.connection_file)})
        results, output, seconds = run_gimp(work, {"cases": cases}, binds=[d.runtime_dir, sanet_only.runtime_dir],
                                            env={"SANETD_CONNECTION_FILE": str(d.connection_file)}, timeout=600)
    print(f"GIMP e2e run: {seconds:.1f} s")
    return work, results, output


def variant_weights(work, adaattn_weights):
    import os
    import subprocess
    import sys
    from sanetd_process import PYTHONPATH
    from synthetic import make_synthetic_run
    folder = work / "weights"
    folder.mkdir()
    for f in adaattn_weights.iterdir():
        os.link(f, folder / f.name)
    run = make_synthetic_run(work / "runs" / "ink", "sanet", folder, 77)
    r = subprocess.run([sys.executable, "-m", "sanet.cli", "weights", "install", str(run), "--weights", str(folder)],
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(PYTHONPATH)), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return folder


@pytest.fixture(scope="module")
def oracle(synthetic_weights):
    import sanet
    return sanet.Stylizer(synthetic_weights, device="cpu")


@pytest.fixture(scope="module")
def ada_oracle(adaattn_weights):
    import sanet
    return sanet.Stylizer(adaattn_weights, device="cpu", model="adaattn")


def case_result(gimp_e2e, name):
    work, results, output = gimp_e2e
    res = results[name]
    assert res["status"] == "success", f"{name}: {res['status']}: {res.get('error')}\n{output[-3000:]}"
    return work / "out", res


def expected(oracle, out, name, dtype, styles, **controls):
    h, w = LAYER["h"], LAYER["w"]
    content = np.frombuffer((out / f"{name}.content.raw").read_bytes(), dtype).reshape(h, w, 4)
    sel = load_f32(out / f"{name}.selection.raw", (h, w))
    ref = oracle.stylize(content, styles, selection=sel, **controls)
    scale = 1.0 if dtype == np.float32 else float(np.iinfo(dtype).max)
    return ref.astype(np.float64) / scale, sel


@pytest.mark.parametrize("name", list(CASES))
def test_new_layer_equals_library_inside_and_is_transparent_outside(gimp_e2e, oracle, name):
    out, res = case_result(gimp_e2e, name)
    dtype = CASES[name][3]
    h, w = LAYER["h"], LAYER["w"]
    # a new layer, right above the active one, same geometry, named after the style and the model
    names = [x["name"] for x in res["after"]]
    assert names == ["top", "Style: style (SANet)", "content", "background"], names
    new = res["new"]
    assert (new["x"], new["y"], new["w"], new["h"]) == (LAYER["x"], LAYER["y"], w, h)
    # the source stays the source: the original layer is the active drawable again (not the result's mask),
    # so Filters → Repeat and Re-show act on the photo
    assert new["has_mask"] and res["selected"] == [res["content_id"]]
    assert res["selected_drawables"] == [res["content_id"]]

    ref, sel = expected(oracle, out, name, dtype, [np.asarray(Image.open(out.parent / "style.png"))])
    assert 0 < (sel > 0).sum() < sel.size and ((sel > 0) & (sel < 1)).sum() > 50, "the selection is not feathered"
    pixels = load_f32(out / f"{name}.new.raw", (h, w, 4)).astype(np.float64)
    mask = load_f32(out / f"{name}.new_mask.raw", (h, w))
    effective_alpha = pixels[..., 3] * mask
    assert np.all(effective_alpha[sel == 0] == 0), "the new layer shows outside the selection"
    assert np.all(mask[sel > 1e-3] == 1.0), "the layer mask hides part of the selection"
    err = np.abs(pixels - ref)
    assert err.max() <= TOL[dtype], f"{name}: new layer differs from sanet.Stylizer by {err.max():.6f}"
    # and what the artist sees (GIMP's own projection) is the library's result, feathered edge included
    visible = load_f32(out / f"{name}.visible.raw", (h, w, 4)).astype(np.float64)
    vis_tol = 1.51 / 255 if dtype == np.uint8 else 1e-3
    assert np.abs(visible - ref).max() <= vis_tol


@pytest.mark.parametrize("name", list(CASES) + ["mix", "nosel", "gray", "group", "stylelayer", "library", "labels",
                                  "channels", "labels_library", "labels_stylelayer", "ada", "ada_all", "ada_labels"])
def test_original_layer_is_byte_identical(gimp_e2e, name):
    out, _ = case_result(gimp_e2e, name)
    assert (out / f"{name}.orig_after.raw").read_bytes() == (out / f"{name}.orig_before.raw").read_bytes()


def test_several_styles_weights_strength_and_colours(gimp_e2e, oracle):
    import sanet
    out, res = case_result(gimp_e2e, "mix")
    assert res["new"]["name"] == "Style: style + style2 (SANet, α 0.70, colours kept)"
    s1 = np.asarray(Image.open(out.parent / "style.png"))
    s2 = np.asarray(Image.open(out.parent / "style2.png"))
    ref, _ = expected(oracle, out, "mix", np.uint8, [sanet.Style(s1, 1.0), sanet.Style(s2, 3.0)],
                      alpha=0.7, preserve_color=True)
    pixels = load_f32(out / "mix.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint8]


def test_without_selection_the_whole_layer_is_stylized(gimp_e2e, oracle):
    out, res = case_result(gimp_e2e, "nosel")
    assert not res["new"]["has_mask"]
    content = np.frombuffer((out / "nosel.content.raw").read_bytes(), np.uint8).reshape(LAYER["h"], LAYER["w"], 4)
    ref = oracle.stylize(content, [np.asarray(Image.open(out.parent / "style.png"))]) / 255.0
    pixels = load_f32(out / "nosel.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint8]
    assert np.abs(pixels - content / 255.0).max() > 0.05, "nothing was stylized"


def test_semantic_labels_from_a_label_layer(gimp_e2e, oracle):
    """SCSA: the label layer (rgba8) and the style's label file give the engine's semantic result."""
    import sanet
    out, res = case_result(gimp_e2e, "labels")
    assert res["new"]["name"] == "Style: style_regions (SANet, semantic)" and res["new"]["has_mask"]
    assert [x["name"] for x in res["after"]] == ["top", "Style: style_regions (SANet, semantic)", "content", "background",
                                                 "regions"]
    style = np.asarray(Image.open(out.parent / "style_regions.png"))
    style_labels = np.asarray(Image.open(out.parent / "style_regions.labels.png").convert("RGBA"))
    ref, _ = expected(oracle, out, "labels", np.uint8, [sanet.Style(style, labels=style_labels)],
                      content_labels=content_regions())
    pixels = load_f32(out / "labels.new.raw", (LAYER["h"], LAYER["w"], 4))
    err = np.abs(pixels - ref)
    assert err.max() <= TOL[np.uint8], f"differs from sanet.Stylizer with labels by {err.max():.6f}"
    # and the labels matter: the same run without them is a different picture
    plain = load_f32(out / "labels_plain.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(plain - pixels).max() > 0.05, "the label maps changed nothing"


def test_semantic_labels_on_a_16_bit_image(gimp_e2e, oracle):
    import sanet
    out, res = case_result(gimp_e2e, "labels_u16")
    style = np.asarray(Image.open(out.parent / "style_regions.png"))
    style_labels = np.asarray(Image.open(out.parent / "style_regions.labels.png").convert("RGBA"))
    ref, _ = expected(oracle, out, "labels_u16", np.uint16, [sanet.Style(style, labels=style_labels)],
                      content_labels=content_regions())
    pixels = load_f32(out / "labels_u16.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint16]


def test_semantic_style_and_its_label_map_from_layers(gimp_e2e):
    out, res = case_result(gimp_e2e, "labels_stylelayer")
    assert res["new"]["name"] == "Style: Background (SANet, semantic)"
    # the same style pixels and label maps as the files of the "labels" case: the same result
    assert (out / "labels_stylelayer.new.raw").read_bytes() == (out / "labels.new.raw").read_bytes()


def test_label_layer_of_another_size_is_one_clear_error(gimp_e2e):
    _, results, _ = gimp_e2e
    res = results["labels_size"]
    assert res["status"] == "calling-error", res
    assert (f"the label layer 'regions' is {LAYER['w'] - 8}x{LAYER['h']} pixels, but the layer 'content' is "
            f"{LAYER['w']}x{LAYER['h']}") in res["error"], res["error"]
    assert [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]], "a layer was added"


def test_semantic_labels_with_a_library_style(gimp_e2e, oracle):
    import sanet
    out, res = case_result(gimp_e2e, "labels_library")
    assert res["new"]["name"] == "Style: Stripes (SANet, semantic)"
    style = np.asarray(Image.open(out.parent / "style.png"))
    style_labels = np.asarray(Image.open(out.parent / "style.labels.png"))
    ref, _ = expected(oracle, out, "labels_library", np.uint8, [sanet.Style(style, labels=style_labels)],
                      content_labels=content_regions())
    pixels = load_f32(out / "labels_library.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint8]


def test_style_label_map_of_another_size_is_one_clear_error(gimp_e2e):
    _, results, _ = gimp_e2e
    res = results["labels_style_size"]
    assert res["status"] == "calling-error", res
    assert ("the label map of style 1 /e2e/small.labels.png is 40x40 pixels, but its style is 48x48"
            in res["error"]), res["error"]
    assert [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]], "a layer was added"


def test_semantic_labels_from_saved_channels(gimp_e2e, oracle):
    """SCSA from saved selections: channel k above 50 % = label k+1 (u8), the style's map in grey values."""
    import sanet
    out, res = case_result(gimp_e2e, "channels")
    assert res["new"]["name"] == "Style: style_regions (SANet, semantic)" and not res["new"]["has_mask"]
    h, w = LAYER["h"], LAYER["w"]
    labels = np.zeros((h, w), np.uint8)
    for k in range(len(CHANNELS)):
        chan = np.frombuffer((out / f"channels.channel{k}.raw").read_bytes(), np.uint8).reshape(h, w)
        labels[chan >= 128] = k + 1
    assert set(np.unique(labels)) == {0, 1, 2}, "the channels do not give three regions on the layer"
    content = np.frombuffer((out / "channels.content.raw").read_bytes(), np.uint8).reshape(h, w, 4)
    style = np.asarray(Image.open(out.parent / "style_regions.png"))
    ref = oracle.stylize(content, [sanet.Style(style, labels=style_region_ids())], content_labels=labels,
                         scsa_weights=(0.9, 0.5)) / 255.0
    pixels = load_f32(out / "channels.new.raw", (h, w, 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint8]


def test_style_from_a_layer_of_another_open_image(gimp_e2e):
    out, res = case_result(gimp_e2e, "stylelayer")
    # an image loaded through the PDB is untitled, so the label is the layer's own name
    assert res["new"]["name"] == "Style: Background (SANet)"
    # same content, same style pixels as the style-file run: the same result
    assert (out / "stylelayer.new.raw").read_bytes() == (out / "u8.new.raw").read_bytes()


def test_style_from_the_daemon_library(gimp_e2e):
    out, res = case_result(gimp_e2e, "library")
    assert res["new"]["name"] == "Style: Stripes (SANet)"  # the library name, not the id
    pixels = load_f32(out / "library.new.raw", (LAYER["h"], LAYER["w"], 4))
    same_style = load_f32(out / "u8.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - same_style).max() <= TOL[np.uint8]


def test_layer_inside_a_group(gimp_e2e, oracle):
    out, res = case_result(gimp_e2e, "group")
    top = [x["name"] for x in res["after"]]
    assert top == ["top", "group", "background"], top
    group = res["after"][1]
    assert [x["name"] for x in group["children"]] == ["sibling", "Style: style (SANet)", "content"]
    new = group["children"][1]
    assert (new["x"], new["y"], new["has_mask"]) == (LAYER["x"], LAYER["y"], True)
    ref, _ = expected(oracle, out, "group", np.uint8, [np.asarray(Image.open(out.parent / "style.png"))])
    pixels = load_f32(out / "group.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint8]


def test_grayscale_image(gimp_e2e):
    out, res = case_result(gimp_e2e, "gray")
    h, w = LAYER["h"], LAYER["w"]
    sel = load_f32(out / "gray.selection.raw", (h, w))
    pixels = load_f32(out / "gray.new.raw", (h, w, 4))
    mask = load_f32(out / "gray.new_mask.raw", (h, w))
    assert np.all(pixels[..., 3][sel == 0] * mask[sel == 0] == 0)
    content = np.frombuffer((out / "gray.content.raw").read_bytes(), np.uint8).reshape(h, w, 4) / 255.0
    assert np.abs(pixels[sel == 1] - content[sel == 1]).max() > 0.05, "nothing was stylized"


def test_a_layer_mask_as_drawable_gives_one_clear_message(gimp_e2e):
    _, results, _ = gimp_e2e
    res = results["on_mask"]
    assert res["status"] == "execution-error", res
    assert res["error"].startswith("Style Transfer: the active drawable is a layer mask or a channel; select a "
                                   "layer"), res["error"]
    assert res["error"].count("Style Transfer") == 1
    assert len(res["after"]) == len(res["before"])


# ----------------------------------------------------------------------------------------------- AdaAttN

def test_adaattn_new_layer_equals_the_library(gimp_e2e, ada_oracle):
    """model=adaattn: the new layer is AdaAttN's result (sanet.Stylizer(model="adaattn") on the same pixels and
    selection), masked like SANet's, named after the model; Repeat Last and Filters → Repeat run AdaAttN again."""
    out, res = case_result(gimp_e2e, "ada")
    h, w = LAYER["h"], LAYER["w"]
    assert [x["name"] for x in res["after"]] == ["top", "Style: style (AdaAttN)", "content", "background"]
    assert res["new"]["has_mask"] and res["selected"] == [res["content_id"]]
    ref, sel = expected(ada_oracle, out, "ada", np.uint8, [np.asarray(Image.open(out.parent / "style.png"))])
    pixels = load_f32(out / "ada.new.raw", (h, w, 4)).astype(np.float64)
    mask = load_f32(out / "ada.new_mask.raw", (h, w))
    assert np.all((pixels[..., 3] * mask)[sel == 0] == 0)
    err = np.abs(pixels - ref)
    assert err.max() <= TOL[np.uint8], f"AdaAttN layer differs from sanet.Stylizer by {err.max():.6f}"
    sanet_layer = load_f32(out / "u8.new.raw", (h, w, 4))
    assert np.abs(pixels - sanet_layer).max() > 0.05, "AdaAttN gave SANet's picture"
    for key, suffix in (("repeat", " #1"), ("repeat_gimp", " #2")):
        assert res[key]["status"] == "success", res[key]["error"]
        assert "Style: style (AdaAttN)" + suffix in [x["name"] for x in res[key]["after"]]
        assert (out / f"ada.{key}.raw").read_bytes() == (out / "ada.new.raw").read_bytes()


def test_adaattn_full_attention_on_a_large_style(gimp_e2e, ada_oracle):
    """style-keys=all attends over every position of a 280-px style; the default samples them as released."""
    import sanet
    outs = {}
    for name, keys in (("ada_sampled", "sampled"), ("ada_all", "all")):
        out, res = case_result(gimp_e2e, name)
        assert res["new"]["name"] == "Style: big_style (AdaAttN)" and not res["new"]["has_mask"]
        content = np.frombuffer((out / f"{name}.content.raw").read_bytes(), np.uint8).reshape(LAYER["h"], LAYER["w"], 4)
        style = np.asarray(Image.open(out.parent / "big_style.png"))
        ref = ada_oracle.stylize(content, [sanet.Style(style)], style_keys=keys) / 255.0
        outs[keys] = load_f32(out / f"{name}.new.raw", (LAYER["h"], LAYER["w"], 4))
        assert np.abs(outs[keys] - ref).max() <= TOL[np.uint8], name
    assert np.abs(outs["all"] - outs["sampled"]).max() > 2 / 255, "full attention changed nothing"


def test_adaattn_with_label_maps(gimp_e2e, ada_oracle):
    import sanet
    out, res = case_result(gimp_e2e, "ada_labels")
    assert res["new"]["name"] == "Style: style_regions (AdaAttN, semantic)"
    style = np.asarray(Image.open(out.parent / "style_regions.png"))
    style_labels = np.asarray(Image.open(out.parent / "style_regions.labels.png").convert("RGBA"))
    ref, _ = expected(ada_oracle, out, "ada_labels", np.uint8, [sanet.Style(style, labels=style_labels)],
                      content_labels=content_regions())
    pixels = load_f32(out / "ada_labels.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint8]


def test_a_fine_tuned_variant_new_layer_equals_the_library(gimp_e2e):
    """model=sanet:ink (a `sanet train` result installed as a model variant): the new layer is that variant's
    result (sanet.Stylizer(model="sanet:ink")), named after it, and not the released SANet's picture."""
    import sanet
    out, res = case_result(gimp_e2e, "variant")
    h, w = LAYER["h"], LAYER["w"]
    assert [x["name"] for x in res["after"]] == ["top", "Style: style (SANet · ink)", "content", "background"]
    engine = sanet.Stylizer(out.parent / "weights", device="cpu", model="sanet:ink")
    ref, sel = expected(engine, out, "variant", np.uint8, [np.asarray(Image.open(out.parent / "style.png"))])
    pixels = load_f32(out / "variant.new.raw", (h, w, 4)).astype(np.float64)
    err = np.abs(pixels - ref)
    assert err.max() <= TOL[np.uint8], f"the variant's layer differs from sanet.Stylizer by {err.max():.6f}"
    assert np.abs(pixels - load_f32(out / "u8.new.raw", (h, w, 4))).max() > 0.05, "the variant gave SANet's picture"


def test_a_model_sanetd_lacks_and_an_unknown_model_are_one_clear_message(gimp_e2e):
    _, results, _ = gimp_e2e
    res = results["ada_missing"]
    assert res["status"] == "execution-error", res
    assert res["error"].startswith("Style Transfer: model 'adaattn' (AdaAttN) is not installed: "
                                   "latest_net_transformer.pth, latest_net_decoder.pth, latest_net_adaattn_3.pth are "
                                   "missing in "), res["error"]
    assert "sanet weights install --model adaattn" in res["error"] and res["error"].count("Style Transfer") == 1
    assert [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]], "a layer was added"
    bad = results["model_bad"]
    assert bad["status"] == "calling-error", bad
    assert bad["error"] == ("Style Transfer: model: 'adain' is not a model; expected one of sanet, adaattn, or an "
                            "installed variant MODEL:NAME (e.g. sanet:my-style)")
    assert [x["name"] for x in bad["after"]] == [x["name"] for x in bad["before"]]
    out = gimp_e2e[0] / "out"
    for name in ("ada_missing", "model_bad"):
        assert (out / f"{name}.orig_after.raw").read_bytes() == (out / f"{name}.orig_before.raw").read_bytes()


def test_repeat_last_uses_the_same_settings(gimp_e2e):
    out, res = case_result(gimp_e2e, "u8")
    rep = res["repeat"]
    assert rep["status"] == "success", rep["error"]
    # right above the active layer again; GIMP numbers the second layer of the same name
    assert [x["name"] for x in rep["after"]] == ["top", "Style: style (SANet)", "Style: style (SANet) #1", "content",
                                                 "background"]
    assert (out / "u8.repeat.raw").read_bytes() == (out / "u8.new.raw").read_bytes()


def test_filters_repeat_right_after_a_run_stylizes_the_source_again(gimp_e2e):
    """GIMP's Filters → Repeat (Ctrl+F) runs the filter WITH_LAST_VALS on the selected drawables: after a run
    (and a Repeat Last) that is the source layer, not a result or its mask."""
    out, res = case_result(gimp_e2e, "u8")
    rep = res["repeat_gimp"]
    assert rep["status"] == "success", rep["error"]
    assert [x["name"] for x in rep["after"]] == ["top", "Style: style (SANet)", "Style: style (SANet) #1",
                                                 "Style: style (SANet) #2", "content", "background"]
    assert rep["selected"] == [res["content_id"]]
    assert (out / "u8.repeat_gimp.raw").read_bytes() == (out / "u8.new.raw").read_bytes()


def scene(w, h):
    """A synthetic photo-like layer (sky, sun, hills, grass texture) so that the dialog shows something legible."""
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w], float)[:, None, None]
    img = np.zeros((h, w, 3))
    img[:] = np.stack([0.35 + 0.3 * yy, 0.55 + 0.25 * yy, 0.95 - 0.2 * yy], -1)          # sky
    sun = (xx - 0.72) ** 2 + ((yy - 0.25) * h / w) ** 2 < 0.008
    img[sun] = (1.0, 0.85, 0.35)
    hills = yy > 0.55 + 0.08 * np.sin(xx * 9) + 0.05 * np.sin(xx * 23 + 1)
    img[hills] = np.stack([0.2 + 0.2 * xx, 0.45 + 0.2 * yy, 0.15 + 0.1 * xx], -1)[hills]
    img += rng.normal(0, 0.03, img.shape) * hills[..., None]
    rgba = np.concatenate([np.clip(img, 0, 1), np.ones((h, w, 1))], -1)
    return np.round(rgba * 255).astype(np.uint8)


def swirl_style(n=256):
    """A colourful painting-like style (swirling bands), so that its thumbnail reads as a painting."""
    yy, xx = np.mgrid[0:n, 0:n] / float(n) - 0.5
    r, a = np.hypot(xx, yy), np.arctan2(yy, xx)
    t = np.sin(18 * r + 3 * a) * 0.5 + 0.5
    img = np.stack([0.9 * t + 0.1, 0.35 + 0.45 * np.sin(6 * a) ** 2, 0.6 - 0.5 * t], -1)
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def add_library_style(connection_file, name, rgb):
    from sanet_client import Client, StylePixels
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)
    with Client(connection_file) as c:
        return c.styles_add(name, StylePixels(rgba.shape[1], rgba.shape[0], "rgba8", rgba.tobytes()))["id"]


@pytest.fixture(scope="module")
def gimp_gui(gimp_e2e, adaattn_weights, tmp_path_factory):
    """One run of the full GIMP on Xvfb: Ctrl+Z after the filter, the dialog (preview, OK, Escape, Cancel of a
    full-HD run) and GIMP's own progress Cancel (which kills the plug-in)."""
    work, _, _ = gimp_e2e
    base = dict(precision="U8_NON_LINEAR", base="RGB", image_size=IMAGE, read_format="R'G'B'A u8",
                layer=dict(LAYER, data="/e2e/u8.in.raw", babl="R'G'B'A u8"), ellipse=ELLIPSE, feather=FEATHER)
    big_layer = dict(w=BIG[0], h=BIG[1], x=0, y=0, data="/e2e/big.in.raw", babl="R'G'B'A u8")
    scene_case = dict(base, image_size=SCENE, ellipse=None,
                      layer=dict(w=SCENE[0], h=SCENE[1], x=0, y=0, data="/e2e/scene.raw", babl="R'G'B'A u8"))
    shots = work / "gui"
    cases = [dict(base, name="undo", undo=True, args={"style-file": "/e2e/style.png", "alpha": 0.8}),
             # the dialog opens with the values of the last run (alpha 0.8 above); Return = OK
             dict(base, name="dialog_ok", steps=[{"window": "^Style Transfer$"}, {"event": "preview"},
                                                 {"keys": "Return"}]),
             # the model row: the dialog opens with the last run's values (SANet, alpha 0.8), the artist picks
             # AdaAttN (its row's mnemonic, then Down), the preview follows, OK (alt+o: the row has the focus)
             dict(base, name="dialog_model", steps=[
                 {"window": "^Style Transfer$"}, {"event": "preview"}, {"keys": "alt+e Down"},
                 {"event": "model"}, {"event": "preview", "where": {"model": "adaattn:sampled"}}, {"sleep": 0.5},
                 {"shot": "/e2e/gui/model.png"}, {"keys": "alt+o"}, {"event": "run-finished"}]),
             dict(base, name="dialog_cancel", dialog_keys="Escape"),
             # the live preview: two styles (a library one and a file), then Strength 0.5: a new preview,
             # no new layer; screenshots of both
             dict(scene_case, name="preview_setup", args=dict(PREVIEW_VALUES, **{"library-styles": "@SWIRLS@"})),
             dict(scene_case, name="preview", steps=[
                 {"window": "^Style Transfer$"}, {"event": "library"}, {"event": "preview"}, {"sleep": 1},
                 {"shot": "/e2e/gui/gimp-dialog.png"},
                 {"keys": "alt+t ctrl+a"}, {"type": "0.5"}, {"mark": "strength"}, {"keys": "Tab"},
                 {"event": "preview", "count": 2}, {"sleep": 1}, {"shot": "/e2e/gui/preview-alpha-0.5.png"},
                 {"keys": "Escape"}]),
             # OK on a full-HD layer, then Cancel in the dialog while the job runs: the dialog stays, Escape
             # again closes it
             dict(base, name="progress_cancel", image_size=BIG, layer=big_layer, ellipse=(0, 0, BIG[0], BIG[1]),
                  steps=[{"window": "^Style Transfer$"}, {"event": "preview", "timeout": 300}, {"keys": "Return"},
                         {"event": "run-started"}, {"sleep": 4}, {"mark": "escape"}, {"keys": "Escape"},
                         {"event": "run-cancelled", "timeout": 60}, {"sleep": 1}, {"keys": "Escape"}]),
             # a scripted full-HD run: GIMP's own progress window (no display) and its Cancel, which kills the
             # plug-in; the watchdog must cancel the daemon job at once (not the 15 s lease)
             dict(base, name="kill_cancel", image_size=BIG, layer=big_layer, ellipse=None, interactive=False,
                  display=True, args={"style-file": "/e2e/style.png"},
                  steps=[{"close": "^Welcome to GIMP"}, {"window": r"\[Untitled\]-@IMAGE@\.0"},
                         {"event": "run-progress", "timeout": 120}, {"sleep": 2}, {"mark": "cancel"},
                         {"click_br": GIMP_STATUS_CANCEL}]),
             # SCSA through the dialog: a scripted run with label channels, then OK in the dialog, which shows
             # the remembered channel names and style label maps in its Semantic section
             dict(base, name="semantic_script", ellipse=None, channels=CHANNELS,
                  args={"style-file": "/e2e/style_regions.png", "content-labels-channels": "sky, face",
                        "style-label-files": ["/e2e/style_regions.ids.png"], "scsa-t1": 0.9, "scsa-t2": 0.5}),
             dict(base, name="semantic_dialog", ellipse=None, channels=CHANNELS,
                  steps=[{"window": "^Style Transfer$"}, {"event": "preview"}, {"sleep": 0.5},
                         {"shot": "/e2e/gui/semantic.png"}, {"keys": "Return"}]),
             # the artist's way in GIMP's own UI: the filter from the menus (action search "/"), OK in the
             # dialog, then Filters → Repeat (Ctrl+F) at once: it must stylize the source layer again
             dict(base, name="menu_repeat", display=True, gui_only=True,
                  last_values={"style-file": "/e2e/style.png", "alpha": 0.8},
                  steps=[{"close": "^Welcome to GIMP"}, {"window": r"\[Untitled\]-@IMAGE@\.0"}, {"sleep": 1},
                         {"keys": "slash"}, {"window": "^Search Actions$", "timeout": 20}, {"sleep": 1},
                         {"type": "Style Transfer"}, {"sleep": 1.5}, {"keys": "Return"},
                         {"window": "^Style Transfer$", "timeout": 30}, {"event": "preview"}, {"keys": "Return"},
                         {"event": "run-finished"}, {"sleep": 1}, {"focus": r"\[Untitled\]-@IMAGE@\.0"},
                         {"keys": "ctrl+f"}, {"event": "run-finished", "count": 2, "timeout": 120}, {"sleep": 1},
                         {"shot": "/e2e/gui/after-repeat.png"}]),
             # library management in the dialog: the image file's "Add to library", then right-click on the
             # Swirls thumbnail → "Remove … from the library…" → Remove (the same layout as the preview case)
             dict(scene_case, name="library_manage", last_values=dict(PREVIEW_VALUES, **{"library-styles": "@SWIRLS@"}),
                  steps=[{"window": "^Style Transfer$"}, {"event": "library"}, {"event": "preview"}, {"sleep": 1},
                         {"click": ADD_TO_LIBRARY_BUTTON}, {"event": "library-added", "timeout": 60}, {"sleep": 1},
                         {"click": FIRST_LIBRARY_TILE, "button": 3}, {"sleep": 1}, {"keys_focused": "Down Return"},
                         {"sleep": 1.5}, {"keys_focused": "alt+r"}, {"event": "library-removed", "timeout": 60},
                         {"sleep": 1}, {"shot": "/e2e/gui/library-managed.png"}, {"keys": "Escape"}])]
    big = np.random.default_rng(5).integers(0, 256, (BIG[1], BIG[0], 4), dtype=np.uint8)
    big[..., 3] = 255
    (work / "big.in.raw").write_bytes(big.tobytes())
    (work / "scene.raw").write_bytes(scene(*SCENE).tobytes())
    events = shots / "events.jsonl"
    if events.exists():
        events.unlink()
    with running_sanetd(tmp_path_factory.mktemp("gui-daemon"), adaattn_weights) as d:
        swirls = add_library_style(d.connection_file, "Swirls", swirl_style())
        for case in cases:
            for key in ("args", "last_values"):
                if (case.get(key) or {}).get("library-styles") == "@SWIRLS@":
                    case[key] = dict(case[key], **{"library-styles": swirls})
        results, output, seconds = run_gimp(work, {"cases": cases}, binds=[d.runtime_dir], timeout=600,
                                            out_name="gui", gui=True,
                                            env={"SANETD_CONNECTION_FILE": str(d.connection_file),
                                                 "SANET_GIMP_EVENT_LOG": "/e2e/gui/events.jsonl"})
        log = d.log_text()
        from sanet_client import Client
        with Client(d.connection_file) as c:
            results["library_after"] = [m["name"] for m in c.styles_list()]
    print(f"GIMP GUI run: {seconds:.1f} s")
    if os.environ.get("SANET_UPDATE_SCREENSHOTS") == "1" and (shots / "gimp-dialog.png").exists():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shots / "gimp-dialog.png", SCREENSHOTS / "gimp-dialog.png")
    return work, results, output + "\n--- sanetd log ---\n" + log, events


def test_one_undo_removes_the_new_layer(gimp_gui):
    """In the full GIMP UI (Xvfb): run the filter, press Ctrl+Z once: the new layer is gone, nothing else is."""
    _, results, output, _ = gimp_gui
    res = results["undo"]
    assert res["status"] == "success", f"{res.get('error')}\n{output[-3000:]}"
    assert [x["name"] for x in res["after"]] == ["top", "Style: style (SANet, α 0.80)", "content (renamed)", "background"]
    undo = res["undo"]
    assert "error" not in undo, undo
    # exactly one step: the filter's layer is gone, the rename done before it is still there
    assert [x["name"] for x in undo["layers"]] == ["top", "content (renamed)", "background"], undo
    assert undo["orig_after_undo_identical"]


def test_interactive_dialog_ok_runs_with_remembered_settings(gimp_gui):
    work, results, output, events_path = gimp_gui
    res = results["dialog_ok"]
    assert res.get("dialog_helper") == 0, f"the dialog never appeared: {res}\n{output[-3000:]}"
    assert res["status"] == "success", f"{res.get('error')}\n{output[-3000:]}"
    assert [x["name"] for x in res["after"]] == ["top", "Style: style (SANet, α 0.80)", "content", "background"]
    # the preview showed the selection's area (its bounding box inside the layer), not the whole layer
    sel = load_f32(work / "gui" / "dialog_ok.selection.raw", (LAYER["h"], LAYER["w"]))
    ys, xs = np.nonzero(sel)
    previews = [e for e in read_events(events_path, "dialog_ok") if e["event"] == "preview"]
    assert previews and previews[0]["size"] == [int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    assert previews[0]["layers"] == ["top", "content", "background"]
    # same content, same remembered settings (alpha 0.8) as the scripted run before it: same pixels
    out = work / "gui"
    assert (out / "dialog_ok.new.raw").read_bytes() == (out / "undo.new.raw").read_bytes()
    assert (out / "dialog_ok.orig_after.raw").read_bytes() == (out / "dialog_ok.orig_before.raw").read_bytes()


def test_the_dialog_model_row_runs_adaattn_and_its_preview_follows(gimp_gui, ada_oracle):
    """In the real dialog: pick AdaAttN in the Model row; a new preview comes from AdaAttN, OK gives the library's
    AdaAttN result (same content, selection and remembered alpha 0.8)."""
    work, results, output, events_path = gimp_gui
    res = results["dialog_model"]
    assert res.get("dialog_helper") == 0, f"the driver failed: {res.get('driver')}\n{output[-3000:]}"
    assert res["status"] == "success", f"{res.get('error')}\n{output[-3000:]}"
    assert [x["name"] for x in res["after"]] == ["top", "Style: style (AdaAttN, α 0.80)", "content", "background"]
    events = read_events(events_path, "dialog_model")
    assert [e["model"] for e in events if e["event"] == "model"] == ["adaattn"]
    previews = [e["model"] for e in events if e["event"] == "preview"]
    assert previews[0] == "sanet:sampled" and previews[-1] == "adaattn:sampled", previews
    out = work / "gui"
    ref, _ = expected(ada_oracle, out, "dialog_model", np.uint8, [np.asarray(Image.open(work / "style.png"))],
                      alpha=0.8)
    pixels = load_f32(out / "dialog_model.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint8]
    assert (work / "gui" / "model.png").stat().st_size > 10_000


def test_interactive_dialog_cancel_changes_nothing(gimp_gui):
    _, results, output, _ = gimp_gui
    res = results["dialog_cancel"]
    assert res.get("dialog_helper") == 0, f"the dialog never appeared: {res}\n{output[-3000:]}"
    assert res["status"] == "cancel", res
    assert [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]]


def test_interactive_dialog_keeps_the_semantic_settings(gimp_gui):
    work, results, output, _ = gimp_gui
    for name in ("semantic_script", "semantic_dialog"):
        assert results[name]["status"] == "success", f"{name}: {results[name].get('error')}\n{output[-3000:]}"
    res = results["semantic_dialog"]
    assert res.get("dialog_helper") == 0, f"the dialog never appeared: {res}\n{output[-3000:]}"
    assert res["new"]["name"] == "Style: style_regions (SANet, semantic)"
    out = work / "gui"
    assert (out / "semantic_dialog.new.raw").read_bytes() == (out / "semantic_script.new.raw").read_bytes()


def _cancel_delays(gimp_gui):
    """(seconds from the dialog's Cancel, seconds from the status bar's Cancel) to the end of each daemon job."""
    _, results, output, events_path = gimp_gui
    log = output.split("--- sanetd log ---")[-1]
    delays = []
    for case, mark in (("progress_cancel", "escape"), ("kill_cancel", "cancel")):
        res = results[case]
        started = [e for e in read_events(events_path, case) if e["event"] == "run-started"]
        assert started and res.get("driver", {}).get("marks", {}).get(mark), (case, res.get("driver"))
        ended = log_times(log, f"job {started[0]['job_id']} cancelled (cancelled)")
        assert ended, f"{case}: sanetd never cancelled job {started[0]['job_id']}:\n{log[-3000:]}"
        delays.append(ended[0] - res["driver"]["marks"][mark])
    return delays


def test_cancel_in_the_dialog_comes_back_at_once_and_the_job_ends_cancelled(gimp_gui):
    """OK on a 1920×1080 layer, Cancel while the job runs: the dialog is back within seconds (and stays open),
    the client cancelled the daemon job (not its lease), no layer is added; Escape again closes the dialog."""
    _, results, output, events_path = gimp_gui
    res = results["progress_cancel"]
    assert res.get("dialog_helper") == 0, f"the driver failed: {res.get('driver')}\n{output[-3000:]}"
    assert res["status"] == "cancel", f"{res}\n{output[-3000:]}"
    assert [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]], "a layer was added"
    events = read_events(events_path, "progress_cancel")
    started = [e for e in events if e["event"] == "run-started"]
    assert started and (started[0]["width"], started[0]["height"]) == BIG
    escape = res["driver"]["marks"]["escape"]
    back = [e for e in events if e["event"] == "run-cancelled"]
    assert back, events
    assert back[0]["time"] - escape < 5, f"the dialog came back {back[0]['time'] - escape:.1f} s after Cancel"
    dialog_delay, _ = _cancel_delays(gimp_gui)
    print(f"dialog Cancel at 1920x1080: dialog back after {back[0]['time'] - escape:.2f} s, sanetd job ended "
          f"{dialog_delay:.2f} s after Cancel")
    log = output.split("--- sanetd log ---")[-1]
    assert "cancelled (lease_expired)" not in log


def test_gimp_status_bar_cancel_kills_the_plug_in_and_the_watchdog_cancels_at_once(gimp_gui):
    """The Cancel button in the image window's status bar: GIMP kills the plug-in (GP_QUIT, 10 ms, SIGKILL).
    The watchdog sends sanetd the cancel at once (sanetd acknowledges it within seconds), so the job ends as
    cancelled by its client, not when the 15 s lease runs out."""
    work, results, output, events_path = gimp_gui
    res = results["kill_cancel"]
    assert res.get("dialog_helper") == 0, f"the driver failed: {res.get('driver')}"
    assert res["status"] == "cancel", res
    assert [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]], "a layer was added"
    job = [e for e in read_events(events_path, "kill_cancel") if e["event"] == "run-started"][0]["job_id"]
    click = res["driver"]["marks"]["cancel"]
    lines = [line for line in (work / "profile" / "sanet-style" / "watchdog.log").read_text().splitlines()
             if f"cancel {job}:" in line]
    assert lines and lines[0].split(f"cancel {job}: ")[1] in ("cancelling", "cancelled"), lines
    acked = float(lines[0].split("(t=")[1].split(")")[0])
    assert acked - click < 3, f"the watchdog's cancel was acknowledged {acked - click:.1f} s after the click"
    _, job_delay = _cancel_delays(gimp_gui)
    print(f"status-bar Cancel at 1920x1080: cancel acknowledged by sanetd {acked - click:.2f} s after the click, "
          f"job ended {job_delay:.2f} s after it")
    log = output.split("--- sanetd log ---")[-1]
    assert "cancelled (lease_expired)" not in log


def test_full_hd_cancel_ends_the_daemon_job_within_seconds(gimp_gui):
    """Both Cancels at 1920×1080 end the daemon's job within CANCEL_EFFECT_S: sanetd checks for a cancel inside the
    engine's stages (sanet.interrupt), not only between them (before: ~15 s)."""
    dialog_delay, status_bar_delay = _cancel_delays(gimp_gui)
    assert dialog_delay < CANCEL_EFFECT_S and status_bar_delay < CANCEL_EFFECT_S, (dialog_delay, status_bar_delay)


def test_filters_repeat_in_the_real_ui_right_after_a_dialog_run(gimp_gui):
    """Style Transfer… from GIMP's menus (action search), OK, then Ctrl+F (Filters → Repeat): a second result
    from the SOURCE layer, which stays the active layer (before, the result's mask was active and Repeat
    failed with "works on a layer")."""
    work, results, output, events_path = gimp_gui
    res = results["menu_repeat"]
    assert res.get("dialog_helper") == 0, f"the driver failed: {res.get('driver')}\n{output[-3000:]}"
    assert [x["name"] for x in res["after"]] == ["top", "Style: style (SANet, α 0.80)",
                                                 "Style: style (SANet, α 0.80) #1", "content", "background"]
    assert res["selected"] == [res["content_id"]] and res["selected_drawables"] == [res["content_id"]]
    out = work / "gui"
    assert (out / "menu_repeat.new.raw").read_bytes() == (out / "menu_repeat.new1.raw").read_bytes()
    assert (out / "menu_repeat.orig_after.raw").read_bytes() == (out / "menu_repeat.orig_before.raw").read_bytes()
    finished = [e for e in read_events(events_path, "menu_repeat") if e["event"] == "run-finished"]
    assert len(finished) == 2


def test_library_add_and_remove_from_the_dialog(gimp_gui):
    _, results, output, events_path = gimp_gui
    res = results["library_manage"]
    assert res.get("dialog_helper") == 0, f"the driver failed: {res.get('driver')}\n{output[-3000:]}"
    events = read_events(events_path, "library_manage")
    added = [e for e in events if e["event"] == "library-added"]
    removed = [e for e in events if e["event"] == "library-removed"]
    assert added and added[0]["name"] == "style2" and removed, events
    assert results["library_after"] == ["style2"]          # sanetd's library: the file in, Swirls out
    assert [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]]


def test_preview_updates_after_a_slider_change_without_a_new_layer(gimp_gui):
    work, results, output, events_path = gimp_gui
    res = results["preview"]
    assert res.get("dialog_helper") == 0, f"the driver failed: {res.get('driver')}\n{output[-3000:]}"
    assert res["status"] == "cancel", res
    names = [x["name"] for x in res["before"]]
    assert [x["name"] for x in res["after"]] == names, "the preview added a layer"
    events = read_events(events_path, "preview")
    previews = [e for e in events if e["event"] == "preview"]
    assert len(previews) >= 2, events
    first, last = previews[0], previews[-1]
    assert first["alpha"] == 1.0 and last["alpha"] == 0.5, (first, last)
    assert first["digest"] != last["digest"], "the preview did not change with the strength"
    assert first["styles"] == 2 and first["size"] == list(SCENE)   # 480x360 fits in the 512 preview size
    # while the dialog was open the image kept its layers: the preview lives in the dialog only
    assert all(e["layers"] == names for e in previews)
    print(f"preview times: {[e['seconds'] for e in previews]} s")
    assert (work / "gui" / "gimp-dialog.png").stat().st_size > 10_000


def test_dialog_mnemonics_are_unique_and_it_fits_the_screen(gimp_gui):
    _, results, _, events_path = gimp_gui
    opened = [e for e in read_events(events_path, "preview") if e["event"] == "opened"]
    assert opened
    keys = [k for _, k in opened[0]["mnemonics"]]
    dupes = {k: [t for t, kk in opened[0]["mnemonics"] if kk == k] for k in keys if keys.count(k) > 1}
    assert not dupes, f"duplicate mnemonics: {dupes}"
    assert {"t", "o", "c"} <= set(keys), opened[0]["mnemonics"]   # Strength, OK, Cancel
    assert opened[0]["width"] <= 1100, f"the dialog is {opened[0]['width']} px wide"


def test_stopped_daemon_gives_a_clear_error_quickly(gimp_e2e, synthetic_weights, tmp_path):
    """sanetd killed (stale connection file) and never started (no file): one clear message, no hang.
    Also, in this fresh GIMP profile, "Repeat Last" before any run says there is nothing to repeat."""
    shared, _, _ = gimp_e2e
    work = tmp_path / "gimp"
    work.mkdir()
    for name in ("u8.in.raw", "style.png"):
        shutil.copy(shared / name, work / name)
    with running_sanetd(tmp_path / "daemon", synthetic_weights) as d:
        d.kill()
        d.proc.wait(10)
        stale = d.connection_file
        assert stale.exists()
        base = dict(precision="U8_NON_LINEAR", base="RGB", image_size=IMAGE, read_format="R'G'B'A u8",
                    layer=dict(LAYER, data="/e2e/u8.in.raw", babl="R'G'B'A u8"), ellipse=ELLIPSE, feather=FEATHER)
        cases = [dict(base, name="repeat_first", procedure="python-fu-sanet-style-transfer-repeat"),
                 dict(base, name="killed", args={"style-file": "/e2e/style.png", "connection-file": str(stale)}),
                 dict(base, name="never", args={"style-file": "/e2e/style.png",
                                                "connection-file": "/e2e/no-daemon/sanetd.json"})]
        t0 = time.monotonic()
        results, output, _ = run_gimp(work, {"cases": cases}, binds=[d.runtime_dir], timeout=180)
        wall = time.monotonic() - t0
    first = results["repeat_first"]
    assert first["status"] == "calling-error" and "nothing to repeat yet" in first["error"], first
    for name in ("killed", "never"):
        res = results[name]
        assert res["status"] == "execution-error", f"{name}: {res}"
        assert "sanetd is not running" in res["error"] and "start it with `sanetd`" in res["error"], res["error"]
        assert res["elapsed"] < 20, f"{name}: the error took {res['elapsed']:.1f} s"
        assert [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]], "a layer was added"
        out = work / "out"
        assert (out / f"{name}.orig_after.raw").read_bytes() == (out / f"{name}.orig_before.raw").read_bytes()
    assert wall < 120
    print(json.dumps({n: round(results[n]["elapsed"], 2) for n in ("killed", "never")}))
