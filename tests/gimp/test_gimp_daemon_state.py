"""The dialog with sanetd stopped, in the full GIMP on Xvfb: a clear state at once, recovery when sanetd starts,
and the Start button launching the sanetd the installer set up.

Two dialogs in one GIMP run, sharing nothing with the other GUI tests (own profile):
  recover  sanetd is not running when the dialog opens; the test starts it (as an artist would in a
           terminal); the dialog notices, loads the library and renders its preview.
  start    that sanetd is stopped again; the artist presses Start (Alt+D): the plug-in finds the installer's
           sanetd through the install manifest (XDG_DATA_HOME/sanet-style/install-manifest.json) and starts
           it detached; the dialog shows "starting", then the preview.
GIMP runs in a Debian chroot without torch, so the installer's venv is test plumbing: its bin/sanetd changes
root back to the host (bind-mounted at /host) and runs this checkout's real sanetd there.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gimp_runner import ROOT, ensure_chroot, read_events, run_gimp
from sanetd_process import sanetd_env, start_sanetd, wait_ready

pytestmark = [pytest.mark.gimp, pytest.mark.slow]

LAYER = dict(w=160, h=120, x=0, y=0)
LONG_PATH = "/e2e/" + "a-folder-with-a-long-name/" * 8 + "sanetd.json"


def _pixels():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:LAYER["h"], 0:LAYER["w"]] / np.array([LAYER["h"], LAYER["w"]], float)[:, None, None]
    rgb = np.stack([xx, yy, 0.5 + 0.4 * np.sin(6 * xx)], -1) * 0.8 + rng.random((LAYER["h"], LAYER["w"], 3)) * 0.2
    return np.round(np.concatenate([np.clip(rgb, 0, 1), np.ones((LAYER["h"], LAYER["w"], 1))], -1) * 255
                    ).astype(np.uint8)


def _installer_venv(work: Path, weights: Path, runtime: Path, state: Path) -> None:
    """XDG_DATA_HOME/sanet-style/install-manifest.json naming a venv whose bin/sanetd runs the real daemon."""
    data = work / "xdg" / "sanet-style"
    data.mkdir(parents=True)
    (data / "install-manifest.json").write_text(json.dumps({"venv": {"path": "/e2e/venv"}}))
    sanetd = work / "venv" / "bin" / "sanetd"
    sanetd.parent.mkdir(parents=True)
    env = sanetd_env(runtime, state, {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    exports = " ".join(f"{k}='{v}'" for k, v in sorted(env.items()))
    inner = (f"exec env -i {exports} '{sys.executable}' -m sanetd --device cpu --weights '{weights}' "
             f"--log-level debug >> '{state / 'started-by-gimp.out'}' 2>&1")
    sanetd.write_text("#!/bin/sh\n"
                      "# test plumbing: the chroot has no torch; run the checkout's sanetd in the host's root\n"
                      "/usr/bin/mount -t proc proc /host/proc 2>/dev/null || true\n"
                      "/usr/bin/mount --rbind /dev /host/dev 2>/dev/null || true\n"
                      f"exec /usr/sbin/chroot /host /bin/sh -c \"{inner}\"\n")
    sanetd.chmod(0o755)


@pytest.fixture(scope="module")
def gimp_no_daemon(synthetic_weights, tmp_path_factory):
    ensure_chroot()
    work = tmp_path_factory.mktemp("gimp-no-daemon")
    base = tmp_path_factory.mktemp("no-daemon-sanetd")
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    state = base / "state"
    state.mkdir()
    (work / "content.raw").write_bytes(_pixels().tobytes())
    style = np.random.default_rng(4).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(style).save(work / "style.png")
    _installer_venv(work, synthetic_weights, runtime, state)
    profile = work / "profile" / "sanet-style"
    profile.mkdir(parents=True)
    (profile / "last-values.json").write_text(json.dumps({"style-file": "/e2e/style.png"}))
    case = dict(precision="U8_NON_LINEAR", base="RGB", image_size=[LAYER["w"], LAYER["h"]],
                read_format="R'G'B'A u8", layer=dict(LAYER, data="/e2e/content.raw", babl="R'G'B'A u8"), ellipse=None)
    cases = [dict(case, name="recover", steps=[
                 {"window": "^Style Transfer$"}, {"event": "daemon", "where": {"state": "not_running"}}, {"sleep": 1},
                 {"shot": "/e2e/out/gimp-dialog-no-sanetd.png"},
                 {"event": "daemon", "where": {"state": "running"}, "timeout": 180},
                 {"event": "preview", "timeout": 120}, {"keys": "Escape"}]),
             dict(case, name="start", steps=[
                 {"window": "^Style Transfer$"}, {"event": "daemon", "where": {"state": "not_running"}, "timeout": 60},
                 {"sleep": 1}, {"keys": "alt+d"}, {"event": "daemon", "where": {"state": "starting"}},
                 {"sleep": 0.5}, {"shot": "/e2e/out/gimp-dialog-starting.png"},
                 {"event": "daemon", "where": {"state": "running"}, "timeout": 240},
                 {"event": "preview", "timeout": 120}, {"sleep": 0.5}, {"shot": "/e2e/out/gimp-dialog-started.png"},
                 {"keys": "Escape"}]),
             # a long message (a connection file deep in folders that does not exist): it wraps
             dict(case, name="long_message", last_values={"style-file": "/e2e/style.png",
                                                          "connection-file": LONG_PATH},
                  steps=[{"window": "^Style Transfer$"},
                         {"event": "daemon", "where": {"state": "not_running"}, "timeout": 60}, {"sleep": 1},
                         {"shot": "/e2e/out/gimp-dialog-long-message.png"}, {"keys": "Escape"}])]
    events = work / "out" / "events.jsonl"
    first = {}

    def play_the_artist():
        """Start sanetd when the first dialog says it is not running; stop it when the second case begins."""
        while not first.get("done"):
            time.sleep(0.2)
            if "daemon" not in first and any(e["event"] == "daemon" and e["state"] == "not_running"
                                             for e in read_events(events, "recover")):
                first["daemon"] = start_sanetd(base / "terminal", synthetic_weights, runtime_dir=runtime)
                wait_ready(first["daemon"])
            if "daemon" in first and "stopped" not in first and events.exists() \
                    and '"name": "start"' in events.read_text():
                first["stopped"] = first["daemon"].stop()
    player = threading.Thread(target=play_the_artist, daemon=True)
    player.start()
    started_by_gimp = None
    try:
        results, output, seconds = run_gimp(
            work, {"cases": cases}, binds=[runtime, state, ("/", "/host")], timeout=600, gui=True,
            env={"SANETD_CONNECTION_FILE": str(runtime / "sanetd.json"), "XDG_DATA_HOME": "/e2e/xdg",
                 "SANET_GIMP_EVENT_LOG": "/e2e/out/events.jsonl"})
    finally:
        first["done"] = True
        player.join(30)
        if first.get("daemon") is not None and first["daemon"].proc.poll() is None:
            first["daemon"].stop()
        conn = runtime / "sanetd.json"
        if conn.exists():   # the sanetd that the Start button launched: it outlives GIMP, as it should
            started_by_gimp = json.loads(conn.read_text())["pid"]
            os.kill(started_by_gimp, signal.SIGTERM)
            for _ in range(200):
                if not Path(f"/proc/{started_by_gimp}").exists():
                    break
                time.sleep(0.1)
    print(f"GIMP GUI run without sanetd: {seconds:.1f} s")
    if os.environ.get("SANET_UPDATE_SCREENSHOTS") == "1" and (work / "out" / "gimp-dialog-no-sanetd.png").exists():
        (ROOT / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
        shutil.copy(work / "out" / "gimp-dialog-no-sanetd.png", ROOT / "docs" / "screenshots")
    started_log = (state / "started-by-gimp.out").read_text() if (state / "started-by-gimp.out").exists() else ""
    return work, results, output, events, first, started_by_gimp, started_log


def test_stopped_sanetd_is_shown_at_once_and_the_dialog_recovers_when_it_starts(gimp_no_daemon):
    work, results, output, events_path, first, _, _ = gimp_no_daemon
    res = results["recover"]
    assert res.get("dialog_helper") == 0, f"{res.get('driver')}\n{output[-3000:]}"
    assert res["status"] == "cancel" and [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]]
    events = read_events(events_path, "recover")
    states = [e for e in events if e["event"] == "daemon"]
    opened = [e for e in events if e["event"] == "opened"][0]
    down = [e for e in states if e["state"] == "not_running"][0]
    assert down["at"] - opened["time"] < 5, "the state took more than a few seconds to show"
    assert down["message"].startswith("sanetd is not running. Press Start"), down
    assert "daemon" in first, "the test never saw the not-running state"
    up = [e for e in states if e["state"] == "running"][0]
    preview = [e for e in events if e["event"] == "preview"][0]
    assert up["at"] < preview["time"]
    # messages wrap: the dialog keeps its width whatever the state says
    assert len({e["width"] for e in states}) == 1 and states[0]["width"] <= 1100, states


def test_start_launches_the_installers_sanetd_and_the_preview_follows(gimp_no_daemon):
    work, results, output, events_path, first, started_by_gimp, started_log = gimp_no_daemon
    res = results["start"]
    assert res.get("dialog_helper") == 0, f"{res.get('driver')}\n{output[-3000:]}\n{started_log[-2000:]}"
    assert first.get("stopped") == 0, "the first sanetd did not stop cleanly"
    events = read_events(events_path, "start")
    kinds = [e["state"] for e in events if e["event"] == "daemon"]
    assert "starting" in kinds and kinds[-1] == "running", kinds
    assert kinds.index("starting") > kinds.index("not_running")
    assert any(e["event"] == "start-pressed" for e in events)
    assert any(e["event"] == "preview" for e in events)
    # the daemon that answered is the one Start launched (through the installer's venv), not the test's
    assert started_by_gimp and started_by_gimp != first["daemon"].proc.pid
    assert "ready on" in started_log, started_log[-2000:]
    assert res["status"] == "cancel" and [x["name"] for x in res["after"]] == [x["name"] for x in res["before"]]


def test_long_messages_wrap_instead_of_widening_the_dialog(gimp_no_daemon):
    work, results, output, events_path, _, _, _ = gimp_no_daemon
    res = results["long_message"]
    assert res.get("dialog_helper") == 0, f"{res.get('driver')}\n{output[-3000:]}"
    states = [e for e in read_events(events_path, "long_message") if e["event"] == "daemon"]
    down = [e for e in states if e["state"] == "not_running"][0]
    assert LONG_PATH in down["message"], down
    assert down["label_lines"] >= 3, f"the message is on {down['label_lines']} line(s): it does not wrap"
    widths = {e["width"] for e in read_events(events_path, "recover") if e["event"] == "daemon"}
    assert {e["width"] for e in states} == widths, "a long message made the dialog wider"
