"""The whole plug-in in a real Krita GUI under Xvfb: docker + menu action load, Apply from the docker,
Edit > Undo, Cancel, sanetd down / killed mid-job / restarted.

Krita starts with a throw-away profile whose kritarc enables sanet_style (installed into the
profile's pykrita folder like a user install) and a test-only probe plug-in
(gui_probe/sanet_style_probe) that drives the real docker and writes what it saw to probe.json.
The test plays the daemon's part through flag files: Krita first runs with no sanetd, then the test
starts one, later kills it mid-job (SIGKILL), and starts it again.
"""
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

import kritatools as kt
from krita_scenarios import LABEL_COLOURS, H, W
from oracle_checks import check_result_layer
from sanetd_process import running_sanetd

pytestmark = pytest.mark.krita
KRITA_TIMEOUT_S = 420


def _wait_for(path, proc, log, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            return
        if proc.poll() is not None:
            raise AssertionError("Krita exited (%s) before %s:\n%s" % (proc.returncode, path.name, _tail(log)))
        time.sleep(0.2)
    raise AssertionError("Krita did not write %s within %d s:\n%s" % (path.name, timeout, _tail(log)))


def _tail(log, n=3000):
    text = log.read_text(errors="replace") if log.exists() else ""
    keep = [ln for ln in text.splitlines() if not ln.startswith(("QObject::connect", "SAFE ASSERT"))]
    return "\n".join(keep)[-n:]


def _style_labels(style_rgba):
    """The style's label map for the semantic step: top rows colour 0, the rest colour 1."""
    sl = np.zeros(style_rgba.shape[:2] + (3,), np.uint8)
    sl[:] = LABEL_COLOURS[0]
    sl[18:] = LABEL_COLOURS[1]
    return sl


def _style_labels_png(tmp_path, style_rgba):
    from PIL import Image
    path = tmp_path / "style-labels.png"
    Image.fromarray(_style_labels(style_rgba), "RGB").save(path)
    return path


def test_docker_action_apply_undo_cancel_and_daemon_restart(tmp_path, synthetic_weights, engine, style_png):
    kt.require_krita("Xvfb")
    home = tmp_path / "home"
    kt.seed_resources(home)
    kt.install_gui_profile(home, [kt.HERE / "gui_probe"])
    out, run_dir = tmp_path / "out", tmp_path / "sanetd-run"
    out.mkdir()
    env = kt.krita_env(os.environ, home, plugin_source=False)
    env.pop("QT_QPA_PLATFORM")                       # a real X display (Xvfb), not offscreen
    env.update(SANET_PROBE_OUT=str(out), SANET_PROBE_TESTS_DIR=str(kt.HERE),
               SANET_PROBE_STYLE=str(style_png[0]), SANET_PROBE_DEPTH="U8",
               SANET_PROBE_STYLE_LABELS=str(_style_labels_png(tmp_path, style_png[1])),
               SANETD_CONNECTION_FILE=str(run_dir / "sanetd.json"), SANETD_RUNTIME_DIR=str(run_dir))
    log = tmp_path / "krita.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([*kt.xvfb_run("1600x1000x24"), "krita", "--nosplash"],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(out / "need_daemon", proc, log, 240)
        with running_sanetd(tmp_path / "d1", synthetic_weights, runtime_dir=run_dir) as d:
            (out / "daemon_up").write_text("1")
            _wait_for(out / "job_started", proc, log, KRITA_TIMEOUT_S)
            d.kill(signal.SIGKILL)
            d.proc.wait(10)
        _wait_for(out / "need_daemon_again", proc, log, 120)
        with running_sanetd(tmp_path / "d2", synthetic_weights, runtime_dir=run_dir):
            (out / "daemon_up_again").write_text("1")
            proc.wait(KRITA_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    report = json.loads((out / "probe.json").read_text())
    assert "error" not in report, report["error"] + "\n" + _tail(log)
    assert report["ok"], report
    assert proc.returncode == 0, "Krita exited with %s:\n%s" % (proc.returncode, _tail(log))
    steps = {s["name"]: s for s in report["steps"]}

    # The plug-in loaded in the GUI: the menu action under Tools > Scripts and one docker per window.
    loaded = steps["loaded"]
    assert loaded["action"] and loaded["action_text"] == "Style Transfer…"
    assert loaded["menu_path"] == ["Tools", "Scripts"]
    assert loaded["action_tooltip"] == "Arbitrary style transfer of the active layer (sanetd)"  # .action file read
    assert loaded["dockers"] == 1 and loaded["docker_title"] == "Style Transfer"
    assert loaded["docker_widget"] == "StyleTransferWidget"
    assert steps["dialog"]["visible"] and steps["dialog"]["controls"] == "StyleTransferWidget"

    # sanetd down: one actionable message in the docker, no layer, status says so.
    down = steps["daemon_down"]
    assert "sanetd is not running" in down["message"] and "start it" in down["message"]
    assert "sanetd is not running" in down["status"]
    assert down["layers_added"] == 0
    assert steps["reconnected"]["status"].startswith("sanetd connected")

    # Apply from the docker: a new layer above the original; the event loop kept ticking meanwhile.
    applied = steps["applied"]
    assert applied["layers"][-2:] == ["painting", "Style Transfer (style.png)"], applied
    assert applied["active"] == "Style Transfer (style.png)"
    assert applied["progress"] == 1000 and "Added layer" in applied["message"]
    # the probe's 50 ms timer must have kept firing for at least half the job's duration (a frozen UI gives ~0),
    # whatever the job's length on this machine
    assert applied["ticks"] >= max(1, int(applied["seconds"] / 0.05 / 2)), ("the UI did not run while the job did",
                                                                           applied)
    check_result_layer(out, "U8", W, H, engine, style_png[1], 1.0)

    # One Edit > Undo removes the inserted layer; the original is byte-identical.
    undone = steps["undone"]
    assert "Style Transfer (style.png)" not in undone["layers"] and "painting" in undone["layers"]
    assert undone["original_same"]

    # Semantic (SCSA) from the docker: label layer + the style's label map; equals the library with labels.
    semantic = steps["semantic"]
    assert "regions" in semantic["label_menu"] and "painting" in semantic["label_menu"]
    assert semantic["label_button"] == "regions ▾" and semantic["label_cell"] == "style-labels.png"
    assert semantic["added"] == ["Style Transfer (style.png)"] and "Added layer" in semantic["message"], semantic
    assert (out / "semantic_selection.bin").read_bytes() == (out / "selection.bin").read_bytes()
    assert (out / "semantic_layer.bin").read_bytes() != (out / "new_layer.bin").read_bytes()   # labels mattered
    import sanet
    cl = np.zeros((H, W, 3), np.uint8)
    cl[:] = LABEL_COLOURS[1]
    cl[:, :20] = LABEL_COLOURS[0]
    check_result_layer(out, "U8", W, H, engine, style_png[1], 1.0, new_file="semantic_layer.bin",
                       style=sanet.Style(style_png[1], labels=_style_labels(style_png[1])), content_labels=cl,
                       scsa_weights=(0.6, 0.4))

    # An open document's layer can be a style source (Open image menu), as a scaled RGBA8 image.
    source = steps["open_image_source"]
    assert "    Layer: painting" in source["menu"] and any(t.startswith("Document: ") for t in source["menu"])
    assert source["kind"] == "layer" and source["label"].endswith("/ painting") and source["rows"] == 2
    assert source["style"] == [W, H, "rgba8"]

    # Cancel: the job stops, nothing is added.
    assert steps["cancelled"]["layers_added"] == 0
    assert steps["cancelled"]["message"] == "Cancelled; nothing was added."

    # Killed mid-job: a clear message, no layer; after the restart the same docker works again.
    killed = steps["daemon_killed"]
    assert killed["layers_added"] == 0
    assert "sanetd" in killed["message"] and "start it" in killed["message"]
    assert not killed["status"].startswith("sanetd connected"), killed
    after = steps["after_restart"]
    assert after["status"].startswith("sanetd connected")
    assert after["layers"][-2:] == ["big painting", "Style Transfer (style.png)"], after
    assert np.frombuffer((out / "new_layer.bin").read_bytes(), np.uint8).size == W * H * 4
