"""The Quality choice (issue 16) of the Krita plug-in: Options' precision for sanetd's hello, result names, the
remembered choice (no Krita); then inside a real Krita 5 (kritarunner) against a real sanetd: Fast puts the
library's bf16 result in the new layer, named "… fast", and Exact the library's fp32 result. (The docker's
Quality row: test_krita_gui.py.)"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "krita"))
from sanet_style import pipeline, prefs  # noqa: E402

import kritatools as kt  # noqa: E402
from krita_scenarios import H, W  # noqa: E402
from oracle_checks import ALPHA, check_result_layer  # noqa: E402

BF16 = {"capabilities": {"precisions": ["auto", "fp32", "bf16"], "fast_precision": "bf16"}}
NO_FAST = {"capabilities": {"precisions": ["auto", "fp32"], "fast_precision": None}}


def test_options_send_the_precision_of_the_quality_choice():
    assert pipeline.Options().precision_fields(BF16) == {"precision": "auto"}            # exact: fp32 result
    assert pipeline.Options(quality="exact").precision_fields(BF16) == {"precision": "auto"}
    assert pipeline.Options(quality="fast").precision_fields(BF16) == {"precision": "bf16"}
    assert pipeline.Options(quality="fast").precision_fields(NO_FAST) == {"precision": "auto"}
    assert pipeline.Options(quality="fast").precision_fields({"capabilities": {}}) == {}  # an older sanetd
    with pytest.raises(ValueError):
        pipeline.Options(quality="quick").precision_fields(BF16)
    # the preview history's key leaves the quality out: previews run in sanetd's automatic precision either way
    assert pipeline.Options(quality="fast").key() == pipeline.Options(quality="exact").key()


def test_a_fast_result_is_named_fast():
    o = pipeline.Options(alpha=0.6, quality="fast")
    assert o.result_name(["starry.png"], precision="bf16") == "Style: starry.png (SANet, α 0.60, fast)"
    assert o.result_name(["starry.png"], precision="fp32") == "Style: starry.png (SANet, α 0.60)"
    assert o.result_name(["starry.png"], preview=True, precision="bf16") == "Style: starry.png (SANet, α 0.60, preview)"


def test_the_quality_is_remembered_per_profile():
    prefs.save("quality", "fast")
    assert prefs.load("quality", "") == "fast"
    from sanet_style import server
    server.save("/x/sanetd.json")       # the Server choice shares the store
    assert server.load() == "/x/sanetd.json" and prefs.load("connection_file") == "/x/sanetd.json"
    server.save(None)
    assert server.load() is None


def _run(args, env, tmp_path):
    return kt.run_scenario("apply_scenario", args, env, tmp_path / "out")


@pytest.mark.krita
@pytest.mark.parametrize("quality", ["fast", "exact"])
def test_the_quality_choice_gives_the_library_result_of_its_precision(tmp_path, sanetd, engine, style_png,
                                                                       quality):
    """Fast: the new layer is the library's bf16 result (where this CPU has bf16 units; else the choice runs
    exact), named "… fast"; Exact: the library's fp32 result."""
    kt.require_krita()
    (tmp_path / "out").mkdir()
    env = kt.krita_env(sanetd.env, kt.shared_home())
    summary = _run([tmp_path / "out", "U8", style_png[0], ALPHA, "", "", quality], env, tmp_path)
    fast = summary["fast_precision"] if quality == "fast" else None
    suffix = ", fast" if fast else ""
    assert summary["layers"] == ["Background", "painting", "Style: style (SANet, α 0.80%s)" % suffix]
    check_result_layer(tmp_path / "out", "U8", W, H, engine, style_png[1], ALPHA, precision=fast or "fp32")
    if fast:   # and the two precisions differ on this layer: the check above tells them apart
        import numpy as np
        import sanet
        orig = kt.pixels((tmp_path / "out" / "original_before.bin").read_bytes(), "U8", W, H)
        a, b = (engine.stylize(orig, [sanet.Style(style_png[1])], alpha=ALPHA, precision=p) for p in (fast, "fp32"))
        assert np.abs(a.astype(int) - b.astype(int)).max() > 0
