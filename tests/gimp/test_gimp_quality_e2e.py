"""End-to-end, the Quality choice (issue 16): the plug-in in the real GIMP 3.0.4 (chroot), a real sanetd on this
CPU. Fast: the new layer is the library's result in sanetd's fast precision (bf16 on a CPU with bf16 units),
named "… fast", and Repeat Last runs Fast again; Exact: the library's fp32 result; a wrong value is one message.
(The dialog's Quality row: test_gimp_e2e.py's dialog tests.)"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gimp_runner import ensure_chroot, run_gimp
from sanetd_process import running_sanetd
from test_gimp_e2e import (CASES, ELLIPSE, FEATHER, IMAGE, LAYER, TOL, content_pixels, expected, load_f32,
                           style_image)

pytestmark = [pytest.mark.gimp, pytest.mark.slow]


def _u8_case(work):
    """The style image and an 8-bit RGBA layer written into `work` (GIMP's /e2e), and the case fields naming them."""
    Image.fromarray(style_image(1)).save(work / "style.png")
    prec, base, fmt, dtype = CASES["u8"]
    (work / "u8.in.raw").write_bytes(content_pixels(dtype, 7).tobytes())
    return dict(precision=prec, base=base, image_size=IMAGE, read_format=fmt,
                layer=dict(LAYER, data="/e2e/u8.in.raw", babl=fmt), ellipse=ELLIPSE, feather=FEATHER)


@pytest.fixture(scope="module")
def quality_e2e(synthetic_weights, tmp_path_factory):
    """One headless GIMP run of the quality cases against one sanetd; also its hello's fast precision."""
    ensure_chroot()
    work = tmp_path_factory.mktemp("gimp-quality")
    plain = _u8_case(work)
    cases = [dict(plain, name="fast", args={"style-file": "/e2e/style.png", "quality": "fast", "alpha": 0.8},
                  repeat_args={}),
             dict(plain, name="exact", args={"style-file": "/e2e/style.png", "quality": "exact", "alpha": 0.8}),
             dict(plain, name="quality_bad", args={"style-file": "/e2e/style.png", "quality": "quick"})]
    with running_sanetd(work / "daemon", synthetic_weights) as d:
        from sanet_client import Client
        with Client(d.connection_file) as c:
            fast = c.hello()["capabilities"]["fast_precision"]
        results, output, seconds = run_gimp(work, {"cases": cases}, binds=[d.runtime_dir],
                                            env={"SANETD_CONNECTION_FILE": str(d.connection_file)}, timeout=600)
    print(f"GIMP quality e2e run: {seconds:.1f} s")
    return work, results, output, fast


@pytest.fixture(scope="module")
def oracle(synthetic_weights):
    import sanet
    return sanet.Stylizer(synthetic_weights, device="cpu")


def _result(quality_e2e, name):
    work, results, output, _ = quality_e2e
    res = results[name]
    assert res["status"] == "success", f"{name}: {res['status']}: {res.get('error')}\n{output[-3000:]}"
    return work / "out", res


@pytest.mark.parametrize("name", ["fast", "exact"])
def test_the_result_is_the_library_result_in_the_precision_of_the_choice(quality_e2e, oracle, name):
    """Fast = the library's stylize(..., precision=hello's fast_precision); Exact = precision fp32 (bit for bit,
    as the u8 cases of test_gimp_e2e.py). Where this CPU has no fast precision, Fast runs exact."""
    fast = quality_e2e[3] if name == "fast" else None
    out, res = _result(quality_e2e, name)
    suffix = ", fast" if fast else ""
    assert res["new"]["name"] == f"Style: style (SANet, α 0.80{suffix})", res["new"]["name"]
    style = [np.asarray(Image.open(out.parent / "style.png"))]
    ref, _ = expected(oracle, out, name, np.uint8, style, alpha=0.8, precision=fast or "fp32")
    pixels = load_f32(out / f"{name}.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint8]
    assert (out / f"{name}.orig_after.raw").read_bytes() == (out / f"{name}.orig_before.raw").read_bytes()
    if fast:   # the check tells the precisions apart: the fp32 result differs on this layer
        other, _ = expected(oracle, out, name, np.uint8, style, alpha=0.8, precision="fp32")
        assert np.abs(pixels - other).max() > TOL[np.uint8]


def test_repeat_last_runs_fast_again(quality_e2e):
    out, res = _result(quality_e2e, "fast")
    rep = res["repeat"]
    assert rep["status"] == "success", rep["error"]
    name = "Style: style (SANet, α 0.80%s)" % (", fast" if quality_e2e[3] else "")
    assert [x["name"] for x in rep["after"]] == ["top", name, f"{name} #1", "content", "background"]
    assert (out / "fast.repeat.raw").read_bytes() == (out / "fast.new.raw").read_bytes()


def test_a_wrong_quality_is_one_message(quality_e2e):
    _, results, _, _ = quality_e2e
    res = results["quality_bad"]
    assert res["status"] == "calling-error", res
    assert res["error"].startswith("Style Transfer: quality: 'quick'; expected one of exact, fast"), res["error"]
    assert [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]]


@pytest.fixture(scope="module")
def quality_gui(synthetic_weights, tmp_path_factory):
    """The full GIMP on Xvfb: a scripted run (remembered: alpha 0.8, exact), then the dialog: the Quality row
    (Alt+Q, Down = Fast), a screenshot, OK."""
    ensure_chroot()
    work = tmp_path_factory.mktemp("gimp-quality-gui")
    plain = _u8_case(work)
    cases = [dict(plain, name="script", args={"style-file": "/e2e/style.png", "alpha": 0.8}),
             dict(plain, name="dialog_quality", steps=[
                 {"window": "^Style Transfer$"}, {"event": "preview"}, {"keys": "alt+q Down"},
                 {"event": "quality"}, {"sleep": 0.5}, {"shot": "/e2e/gui/quality.png"}, {"keys": "alt+o"},
                 {"event": "run-finished"}])]
    (work / "gui").mkdir()
    with running_sanetd(work / "daemon", synthetic_weights) as d:
        from sanet_client import Client
        with Client(d.connection_file) as c:
            fast = c.hello()["capabilities"]["fast_precision"]
        results, output, seconds = run_gimp(work, {"cases": cases}, binds=[d.runtime_dir], timeout=600,
                                            out_name="gui", gui=True,
                                            env={"SANETD_CONNECTION_FILE": str(d.connection_file),
                                                 "SANET_GIMP_EVENT_LOG": "/e2e/gui/events.jsonl"})
    print(f"GIMP quality GUI run: {seconds:.1f} s")
    return work, results, output, work / "gui" / "events.jsonl", fast


def test_the_dialog_quality_row_runs_fast(quality_gui, oracle):
    """In the real dialog: the Quality row is offered (this sanetd has a fast precision) with its note; Alt+Q,
    Down picks Fast; OK gives the library's bf16 result, named "… fast"; the next dialog would open with Fast
    (remembered)."""
    from gimp_runner import read_events
    work, results, output, events_path, fast = quality_gui
    if not fast:
        pytest.skip("this CPU has no fast precision: the row is greyed out (checked in test_gimp_quality_helpers)")
    res = results["dialog_quality"]
    assert res.get("dialog_helper") == 0, f"the driver failed: {res.get('driver')}\n{output[-3000:]}"
    assert res["status"] == "success", f"{res.get('error')}\n{output[-3000:]}"
    assert [x["name"] for x in res["after"]] == ["top", "Style: style (SANet, α 0.80, fast)", "content", "background"]
    events = read_events(events_path, "dialog_quality")
    rows = [e for e in events if e["event"] == "quality-row"]
    assert rows and rows[-1]["sensitive"] and rows[-1]["shown"] == "exact", rows
    assert rows[-1]["note"].startswith("Fast: bf16 on the CPU's bf16 units"), rows[-1]
    assert [e["quality"] for e in events if e["event"] == "quality"] == ["fast"]
    opened = [e for e in events if e["event"] == "opened"][0]
    keys = [k for _, k in opened["mnemonics"]]
    assert "q" in keys and len(keys) == len(set(keys)), opened["mnemonics"]
    assert opened["width"] <= 1100, f"the dialog is {opened['width']} px wide"
    out = work / "gui"
    ref, _ = expected(oracle, out, "dialog_quality", np.uint8, [np.asarray(Image.open(work / "style.png"))],
                      alpha=0.8, precision=fast)
    pixels = load_f32(out / "dialog_quality.new.raw", (LAYER["h"], LAYER["w"], 4))
    assert np.abs(pixels - ref).max() <= TOL[np.uint8]
    assert (out / "quality.png").stat().st_size > 10_000
