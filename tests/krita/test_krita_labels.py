"""Semantic (SCSA) label maps in the Krita plug-in.

Without Krita: a label layer's Krita bytes (every depth) become the rgba8 colour-coded label map the daemon
takes, with the painted colours intact. With Krita (kritarunner) and a real sanetd: a labelled run equals
`sanet.Stylizer.stylize(..., content_labels=..., Style(..., labels=...))` in-process, exactly.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "krita"))
import sanet_client  # noqa: E402
from sanet_style import formats, labels  # noqa: E402

rng = np.random.default_rng(3)
COLOURS = np.array([[0, 0, 0], [255, 255, 255], [230, 40, 30], [20, 60, 220], [1, 128, 254]], np.uint8)


def painted(h=6, w=9):
    """A label layer's RGBA colours (uint8) with random alpha, and its region ids."""
    ids = rng.integers(0, len(COLOURS), (h, w))
    rgba = np.concatenate([COLOURS[ids], rng.integers(0, 256, (h, w, 1), dtype=np.uint8)], -1)
    return rgba, ids


def krita_bytes(rgba8, depth):
    """What Krita's pixelData gives for those colours at a depth: B,G,R,A for integers, R,G,B,A for floats."""
    if depth == "U8":
        return rgba8[..., [2, 1, 0, 3]].astype("<u1").tobytes()
    if depth == "U16":
        return (rgba8[..., [2, 1, 0, 3]].astype(np.uint32) * 257).astype("<u2").tobytes()
    unit = rgba8.astype(np.float64) / 255.0
    return unit.astype("<f2" if depth == "F16" else "<f4").tobytes()


@pytest.mark.parametrize("depth", ["U8", "U16", "F16", "F32"])
def test_label_layer_becomes_rgba8_label_map_with_the_painted_colours(depth):
    rgba, _ = painted()
    got = labels.layer_labels(sanet_client, krita_bytes(rgba, depth), 9, 6, depth)
    assert isinstance(got, sanet_client.Labels) and (got.width, got.height, got.format) == (9, 6, "rgba8")
    arr = np.frombuffer(got.data, np.uint8).reshape(6, 9, 4)
    np.testing.assert_array_equal(arr[..., :3], rgba[..., :3])


def test_client_to_rgba8_rounds_clamps_and_maps_nan_to_zero():
    f = np.array([0.0, 1.0, 0.5, -0.2, 1.7, np.nan, 0.998, 0.002], "<f4")
    assert list(formats.client_to_rgba8(f.tobytes(), "rgbaf32")) == [0, 255, 128, 0, 255, 0, 254, 1]
    u16 = np.array([0, 65535, 250 * 257, 257, 256, 255], "<u2")
    assert list(formats.client_to_rgba8(u16.tobytes(), "rgba16")) == [0, 255, 250, 1, 1, 0]
    with pytest.raises(formats.FormatError):
        formats.client_to_rgba8(b"", "rgba32")


def test_wrong_size_label_layer_is_refused_by_the_client_payload():
    with pytest.raises(ValueError, match="label map data"):
        labels.layer_labels(sanet_client, bytes(4 * 8), 3, 3, "U8")


@pytest.mark.krita
def test_labelled_run_in_krita_equals_library(tmp_path, sanetd, engine, style_png):
    import sanet
    from PIL import Image

    import kritatools as kt
    from krita_scenarios import LABEL_COLOURS, H, W
    kt.require_krita()
    out = tmp_path / "out"
    out.mkdir()
    style_rgba = style_png[1]
    sl = np.zeros(style_rgba.shape[:2] + (3,), np.uint8)
    sl[:] = LABEL_COLOURS[0]
    sl[18:] = LABEL_COLOURS[1]                                  # the style's regions: top and bottom
    Image.fromarray(sl, "RGB").save(tmp_path / "style-labels.png")
    env = kt.krita_env(sanetd.env, kt.shared_home())
    proc = kt.run_kritarunner("labelled_scenario", [out, "U16", style_png[0], tmp_path / "style-labels.png"], env)
    log = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, log
    summary = json.loads((out / "summary.json").read_text())
    assert summary.get("ok"), summary.get("error", summary)
    assert summary["style_labels"] == [style_rgba.shape[1], style_rgba.shape[0], "rgba8"]
    assert "LabelError" in summary["missing_layer"] and "no such layer" in summary["missing_layer"]
    assert (out / "original_after.bin").read_bytes() == (out / "original_before.bin").read_bytes()
    orig = kt.pixels((out / "original_before.bin").read_bytes(), "U16", W, H)
    new = kt.pixels((out / "new_layer.bin").read_bytes(), "U16", W, H)
    cl = np.zeros((H, W, 3), np.uint8)
    cl[:] = LABEL_COLOURS[1]
    cl[:, :20] = LABEL_COLOURS[0]
    want = engine.stylize(orig, [sanet.Style(style_rgba, labels=sl)], content_labels=cl, scsa_weights=(0.6, 0.4))
    np.testing.assert_array_equal(new, want)
    plain = engine.stylize(orig, [sanet.Style(style_rgba)])
    assert not np.array_equal(want, plain)
