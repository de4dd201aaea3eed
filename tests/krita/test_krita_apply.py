"""The plug-in's document/pixel logic inside a real Krita 5 (kritarunner) against a real sanetd.

krita_scenarios.apply_scenario creates a document of the given depth, paints a layer, sets a
feathered selection (Krita's own feather), runs the plug-in's apply path (the same functions the
docker uses) and dumps raw bytes; here they are checked against `sanet.Stylizer` in-process.
Undo needs a view, which kritarunner has not: test_krita_gui.py covers it with Edit > Undo.
"""
import os

import pytest

import kritatools as kt
from oracle_checks import ALPHA, check_result_layer
from krita_scenarios import H, W

pytestmark = pytest.mark.krita


def _run(function, args, env, tmp_path):
    return kt.run_scenario(function, args, env, tmp_path / "out")


@pytest.mark.parametrize("depth", ["U8", "U16", "F16", "F32"])
def test_new_layer_matches_library_inside_selection(depth, tmp_path, sanetd, engine, style_png):
    kt.require_krita()
    (tmp_path / "out").mkdir()
    env = kt.krita_env(sanetd.env, kt.shared_home())
    summary = _run("apply_scenario", [tmp_path / "out", depth, style_png[0], ALPHA], env, tmp_path)
    # A new paint layer, same depth, directly above the original; nothing else added.
    assert summary["layers"] == ["Background", "painting", summary["new_name"]]
    assert summary["new_type"] == "paintlayer"
    assert summary["new_depth"] == summary["original_depth"] == depth
    # named as in GIMP (sanet_client.naming): the style, the model and what differs from a plain run
    assert summary["new_name"] == "Style: style (SANet, α 0.80)"
    check_result_layer(tmp_path / "out", depth, W, H, engine, style_png[1], ALPHA)


def test_no_daemon_gives_one_clear_message_and_adds_nothing(tmp_path):
    kt.require_krita()
    (tmp_path / "out").mkdir()
    env = kt.krita_env(os.environ, kt.shared_home())
    env["SANETD_CONNECTION_FILE"] = str(tmp_path / "nowhere" / "sanetd.json")
    summary = _run("no_daemon_scenario", [tmp_path / "out"], env, tmp_path)
    assert summary["exception"] == "DaemonNotRunning"
    assert "sanetd is not running" in summary["message"] and "start it" in summary["message"]
    assert summary["layers_added"] == 0


def test_library_style_and_weights_without_selection(tmp_path, sanetd, engine, style_png):
    """Two styles (one from the daemon's library, one file) with weights, preserve colours, no
    selection: the new layer covers the canvas and equals the library's result exactly."""
    import numpy as np
    import sanet
    from PIL import Image
    kt.require_krita()
    out = tmp_path / "out"
    out.mkdir()
    style_b = tmp_path / "b.png"
    rgba_b = style_png[1][::-1, ::-1].copy()
    Image.fromarray(rgba_b[..., :3], "RGB").save(style_b)
    env = kt.krita_env(sanetd.env, kt.shared_home())
    summary = _run("library_scenario", [out, style_png[0], style_b], env, tmp_path)
    assert "probe style A" in summary["library_names"]
    assert summary["thumbnail"] and max(summary["thumbnail"]) > 0      # PNG thumbnail decoded by Qt
    assert summary["selection"] is False
    assert (out / "original_after.bin").read_bytes() == (out / "original_before.bin").read_bytes()
    orig = kt.pixels((out / "original_before.bin").read_bytes(), "U8", W, H)
    new = kt.pixels((out / "new_layer.bin").read_bytes(), "U8", W, H)
    want = engine.stylize(orig, [sanet.Style(style_png[1], weight=0.3), sanet.Style(rgba_b, weight=0.7)],
                          preserve_color=True)
    np.testing.assert_array_equal(new, want)


def test_grayscale_document_is_refused_with_a_clear_message(tmp_path):
    (tmp_path / "out").mkdir()
    env = kt.krita_env(os.environ, kt.shared_home())
    summary = _run("bad_document_scenario", [tmp_path / "out"], env, tmp_path)
    assert "GRAYA" in summary["message"] and "Convert Image Color Space" in summary["message"]
