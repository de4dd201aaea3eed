"""GIMP and a shared server (issue 14): the dialog's Server choice (this computer / a connection file from
`sanetd invite`), remembered per GIMP profile; a scripted run and a dialog run through an invited client's file to
a sanetd listening on 127.0.0.1 (CURVE); pure helpers tested outside GIMP."""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "gimp" / "sanet-style"
sys.path.insert(0, str(PLUGIN))

import sanet_gimp_daemon as dm  # noqa: E402
import sanet_gimp_settings as st  # noqa: E402


# ----------------------------------------------------------------------------------------------- outside GIMP

def test_the_server_choice_is_remembered_in_its_own_file(tmp_path):
    path = str(tmp_path / "sanet-style" / "server.json")
    assert st.load_server_choice(path) is None                    # nothing chosen yet: the last run's value stays
    st.save_server_choice(path, "/home/a/alice.json")
    assert st.load_server_choice(path) == "/home/a/alice.json"
    st.save_server_choice(path, "")
    assert st.load_server_choice(path) == ""                      # "this computer" is a choice too
    Path(path).write_text("not json")
    assert st.load_server_choice(path) is None


def test_the_daemon_line_names_a_shared_server_and_its_gpus():
    hello = {"device": "cuda:0,cuda:1", "devices": ["cuda:0", "cuda:1"], "transport": "network", "client": "alice",
             "model": {"name": "SANet (Park & Lee, CVPR 2019)"}}
    assert dm.describe_hello(hello) == "Connected to the shared sanetd as alice: SANet on 2 GPUs (CUDA)."
    assert dm.describe_hello({"device": "cpu", "model": {"name": "SANet (x)"}}) == "sanetd is ready: SANet on the CPU."


def test_a_refusing_shared_server_is_a_failure_without_start():
    states = []
    monitor = dm.DaemonMonitor(lambda: (dm.FAILED, "the shared sanetd at tcp://gpu:5555 refused this connection "
                                                  "file"), states.append, find=lambda: None, poll_down_s=0.1).run()
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end and not any(s.kind == dm.FAILED for s in states):
            time.sleep(0.05)
    finally:
        monitor.close()
    failed = [s for s in states if s.kind == dm.FAILED]
    assert failed and "refused this connection file" in failed[0].message and not failed[0].can_start


# ----------------------------------------------------------------------------------------------- in GIMP

from gimp_runner import ensure_chroot, read_events, run_gimp  # noqa: E402
from sanetd_process import running_sanetd  # noqa: E402

IMAGE = (72, 60)
LAYER = dict(w=48, h=36, x=14, y=10)


@pytest.fixture(scope="module")
def gimp_shared(synthetic_weights, tmp_path_factory):
    """A sanetd serving the network on 127.0.0.1 (the chroot shares the host's loopback), one invited client's
    file inside /e2e; one headless GIMP run (a script with the file) and one GUI run (the dialog, whose Server
    choice is the file, remembered in the profile)."""
    pytest.importorskip("zmq")
    ensure_chroot()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
    from daemon_kit import invite
    work = tmp_path_factory.mktemp("gimp-shared")
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(work / "style.png")
    content = rng.integers(0, 256, (LAYER["h"], LAYER["w"], 4), dtype=np.uint8)
    content[..., 3] = 255
    (work / "content.raw").write_bytes(content.tobytes())
    base = dict(precision="U8_NON_LINEAR", base="RGB", image_size=IMAGE, read_format="R'G'B'A u8",
                layer=dict(LAYER, data="/e2e/content.raw", babl="R'G'B'A u8"), ellipse=None)
    with running_sanetd(tmp_path_factory.mktemp("shared-daemon"), synthetic_weights,
                        "--listen", "tcp://127.0.0.1:*") as d:
        invite(d, "gimp-artist", folder=work)
        conn = "/e2e/gimp-artist.json"
        script = [dict(base, name="script_remote", args={"style-file": "/e2e/style.png", "alpha": 0.9,
                                                          "connection-file": conn})]
        results, output, _ = run_gimp(work, {"cases": script}, env={"SANETD_CONNECTION_FILE": "/nonexistent.json"})
        gui = [dict(base, name="dialog_remote", server_choice=conn,
                    last_values={"style-file": "/e2e/style.png", "alpha": 0.9},
                    # the remembered file's server previews; Server → This computer (alt+e: nothing runs here,
                    # the daemon line says so); Server → A connection file (→ in the radio group: the chooser
                    # still holds the file); OK runs on the shared server again
                    steps=[{"window": "^Style Transfer$"}, {"event": "preview", "timeout": 120}, {"sleep": 1},
                           {"shot": "/e2e/gui/server.png"},
                           {"keys": "alt+e"}, {"event": "server"},
                           {"event": "daemon", "where": {"state": "not_running"}, "timeout": 60}, {"sleep": 0.5},
                           {"shot": "/e2e/gui/server-local.png"},
                           {"keys": "Right"}, {"event": "server", "count": 2},
                           {"event": "daemon", "where": {"state": "running"}, "count": 2, "timeout": 60},
                           {"sleep": 1}, {"keys": "alt+o"}, {"event": "run-finished"}])]   # OK (the focus is on a radio)
        gui_results, gui_output, _ = run_gimp(work, {"cases": gui}, out_name="gui", gui=True, timeout=400,
                                              env={"SANETD_CONNECTION_FILE": "/nonexistent.json",
                                                   "SANET_GIMP_EVENT_LOG": "/e2e/gui/events.jsonl"})
        from sanet_client import Client
        with Client(d.connection_file) as c:
            status = c.status()
        log = d.log_text()
    return work, results, gui_results, output + gui_output + "\n--- sanetd ---\n" + log, status


@pytest.mark.gimp
@pytest.mark.slow
def test_a_scripted_run_through_an_invite_file(gimp_shared, synthetic_weights):
    work, results, _, output, _ = gimp_shared
    res = results["script_remote"]
    assert res["status"] == "success", f"{res.get('error')}\n{output[-4000:]}"
    assert "Style: style (SANet, α 0.90)" in [x["name"] for x in res["after"]]
    # the pixels are the engine's for this layer and style (the shared server ran it; no local sanetd exists)
    import sanet
    content = np.frombuffer((work / "out" / "script_remote.content.raw").read_bytes(), np.uint8).reshape(
        LAYER["h"], LAYER["w"], 4)
    style = np.asarray(Image.open(work / "style.png"))
    ref = sanet.Stylizer(synthetic_weights, device="cpu").stylize(content, [sanet.Style(style)], alpha=0.9)
    got = np.frombuffer((work / "out" / "script_remote.new.raw").read_bytes(), np.float32).reshape(ref.shape)
    assert np.abs(got.astype(np.float64) - ref / 255.0).max() <= 1.01 / 255


@pytest.mark.gimp
@pytest.mark.slow
def test_the_dialog_uses_the_remembered_server_choice(gimp_shared):
    work, _, results, output, status = gimp_shared
    res = results["dialog_remote"]
    assert res.get("dialog_helper") == 0, f"the dialog never appeared: {res}\n{output[-4000:]}"
    assert res["status"] == "success", f"{res.get('error')}\n{output[-4000:]}"
    events = read_events(work / "gui" / "events.jsonl", "dialog_remote")
    daemon = [e for e in events if e["event"] == "daemon" and e["state"] == "running"]
    assert daemon and daemon[0]["message"].startswith("Connected to the shared sanetd as gimp-artist"), events
    # the artist switched the Server to this computer and back, in the dialog; the profile keeps the last choice
    assert [e["connection_file"] for e in events if e["event"] == "server"] == [None, "/e2e/gimp-artist.json"]
    down = [e for e in events if e["event"] == "daemon" and e["state"] == "not_running"]
    assert down and "gimp-artist" not in down[0]["message"], down
    assert len(daemon) >= 2 and daemon[1]["message"].startswith("Connected to the shared sanetd as gimp-artist")
    assert res["server_choice_after"] == {"connection-file": "/e2e/gimp-artist.json"}, res["server_choice_after"]
    # the preview and the full-size run went to the shared server, as client gimp-artist
    me = {c["name"]: c for c in status["clients"]}
    assert me["gimp-artist"]["done"] >= 3, status        # the script, at least one preview, and OK
    assert (work / "gui" / "server.png").exists()
