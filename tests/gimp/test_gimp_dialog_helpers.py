"""Fast tests (no GIMP) of what the dialog is built on: named choices, the style list <-> arguments, the preview
geometry and worker, sanetd's state and Start, and the watchdog that cancels a killed plug-in's job. The
daemon parts run against a real sanetd."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "gimp" / "sanet-style"
sys.path.insert(0, str(PLUGIN))

import sanet_gimp_daemon as dm  # noqa: E402
import sanet_gimp_settings as st  # noqa: E402
from sanet_gimp_preview import PreviewWorker, preview_geometry  # noqa: E402
from sanet_gimp_watchdog import Watchdog  # noqa: E402


# ----------------------------------------------------------------------------------------------- choices

def test_sizes_are_named_choices_and_a_scripted_value_stays_visible():
    assert (0, "Standard") in st.STYLE_SIZE_CHOICES
    assert all(label and not label[0].isdigit() for _, label in st.STYLE_SIZE_CHOICES + st.PREVIEW_SIZE_CHOICES)
    assert st.size_choices(st.STYLE_SIZE_CHOICES, 0) == list(st.STYLE_SIZE_CHOICES)
    assert st.size_choices(st.STYLE_SIZE_CHOICES, 700)[-1] == (700, "Custom: 700 px")
    assert st.DEFAULT_PREVIEW_SIZE == 512 and (512, "Medium") in st.PREVIEW_SIZE_CHOICES


# ----------------------------------------------------------------------------------------------- style list

def test_style_list_from_arguments_and_back():
    mix = st.mix_from_args(style_file="/a/one.png", style_files=["/b/two.png"], style_layer=(7, "Brush"),
                           library_styles="id1, id2", style_weights="2, 1, 4, 2, 2",
                           library_names={"id1": "Monet"})
    # weights are relative (largest = 1), names come from the library
    assert [(e.kind, e.value, e.label, e.weight) for e in mix] == [
        ("file", "/a/one.png", "one", 0.5), ("file", "/b/two.png", "two", 0.25), ("layer", 7, "Brush", 1.0),
        ("library", "id1", "Monet", 0.5), ("library", "id2", "id2", 0.5)]
    assert len(st.mix_from_args(style_file="/a.png", style_files=["/a.png", "/b.png"])) == 2   # no duplicates
    args = st.args_from_mix(mix)
    assert args["style-file"] is None and args["style-files"] == ["/a/one.png", "/b/two.png"]
    assert args["style-layer"] == 7 and args["library-styles"] == "id1, id2"
    # the same run: build_settings gives the same styles and the same normalised weights
    again = st.build_settings(style_files=args["style-files"], style_layer=(7, "Brush"),
                              library_styles=args["library-styles"], style_weights=args["style-weights"])
    first = st.build_settings(style_file="/a/one.png", style_files=["/b/two.png"], style_layer=(7, "Brush"),
                              library_styles="id1, id2", style_weights="2, 1, 4, 2, 2")
    norm = [w / sum(x.weight for x in first.styles) for w in (x.weight for x in first.styles)]
    norm2 = [w / sum(x.weight for x in again.styles) for w in (x.weight for x in again.styles)]
    assert [x.value for x in again.styles] == [x.value for x in first.styles]
    assert np.allclose(norm, norm2)


def test_style_list_keeps_argument_order_and_equal_weights_stay_empty():
    entries = [st.MixEntry("library", "x", "X"), st.MixEntry("file", "/f.png", "f"), st.MixEntry("layer", 3, "L")]
    assert [e.kind for e in st.sort_mix(entries)] == ["file", "layer", "library"]
    assert st.args_from_mix(entries)["style-weights"] == ""
    assert st.format_weights([1, 0.5]) == "1, 0.5"
    assert st.format_weights([0.3333333, 1]) == "0.3333, 1"
    with pytest.raises(st.SettingsError, match="only one style can come from a layer"):
        st.args_from_mix([st.MixEntry("layer", 1, "a"), st.MixEntry("layer", 2, "b")])


def test_style_list_never_fails_on_bad_remembered_weights():
    mix = st.mix_from_args(style_file="/a.png", library_styles="x", style_weights="1, 2, 3")
    assert [e.weight for e in mix] == [1.0, 1.0]
    assert st.mix_from_args(style_weights="5") == []


# ----------------------------------------------------------------------------------------------- preview

def test_preview_geometry_whole_layer_and_selection():
    g = preview_geometry(1920, 1080, 512)
    assert (g.x, g.y, g.w, g.h, g.out_w, g.out_h) == (0, 0, 1920, 1080, 512, 288)
    assert g.scaled_rect == (0, 0, 512, 288)
    # the selection's area, clipped to the layer; a small area is never enlarged
    g = preview_geometry(1920, 1080, 512, region=(1800, -20, 400, 200))
    assert (g.x, g.y, g.w, g.h) == (1800, 0, 120, 180) and g.scale == 1.0 and (g.out_w, g.out_h) == (120, 180)
    g = preview_geometry(4000, 3000, 512, region=(1000, 1000, 1024, 512))
    assert (g.out_w, g.out_h) == (512, 256) and g.scaled_rect == (500, 500, 512, 256)
    with pytest.raises(ValueError, match="empty"):
        preview_geometry(100, 100, 512, region=(200, 200, 10, 10))


def test_preview_worker_runs_only_the_latest_request():
    """A new request cancels the running one and replaces the waiting one; only the newest reports."""
    done, started = [], []
    first_running = threading.Event()

    def slow(client, cancel):
        first_running.set()
        assert cancel.wait(10), "the newer request did not cancel this one"
        raise RuntimeError("cancelled")

    def quick(value):
        return lambda client, cancel: (started.append(value), value)[1]

    worker = PreviewWorker(lambda: "client", lambda seq, r, e: done.append((seq, r, e)))
    try:
        worker.submit(slow)
        assert first_running.wait(10)
        worker.submit(quick("b"))        # waits behind the slow one: replaced by the next
        last = worker.submit(quick("c"))
        assert worker.wait_idle(10)
    finally:
        worker.close()
    assert started == ["c"]
    assert done == [(last, "c", None)]


def test_preview_worker_reports_errors_and_makes_a_new_client():
    made, done = [], []

    def make():
        made.append(1)
        return f"client{len(made)}"

    def fails(client, cancel):
        raise ConnectionError(f"{client} is broken")

    worker = PreviewWorker(make, lambda seq, r, e: done.append((r, str(e) if e else None)))
    try:
        worker.submit(fails)
        assert worker.wait_idle(10)
        worker.submit(lambda client, cancel: client)
        assert worker.wait_idle(10)
    finally:
        worker.close()
    assert done == [(None, "client1 is broken"), ("client2", None)]


def _rgba(w, h, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)


def test_preview_worker_with_a_real_daemon_cancels_the_superseded_job(tmp_path, synthetic_weights):
    from sanet_client import Client, Layer, StylePixels
    from sanetd_process import running_sanetd

    big, small, style = _rgba(1024, 1024, 1), _rgba(64, 48, 2), _rgba(32, 32, 3)
    st_px = StylePixels(32, 32, "rgba8", style.tobytes())
    done, progressed = [], threading.Event()
    with running_sanetd(tmp_path, synthetic_weights) as d:
        worker = PreviewWorker(lambda: Client(d.connection_file, timeout=5, retries=1),
                               lambda seq, r, e: done.append((seq, r, e)))
        try:
            worker.submit(lambda c, cancel: c.stylize(Layer(1024, 1024, "rgba8", big.tobytes()), [st_px],
                                                      cancel_event=cancel, on_progress=lambda f, s: progressed.set()))
            assert progressed.wait(60)
            last = worker.submit(lambda c, cancel: c.stylize(Layer(64, 48, "rgba8", small.tobytes()), [st_px],
                                                             cancel_event=cancel))
            assert worker.wait_idle(120)
        finally:
            worker.close()
        log = d.log_text()
    assert len(done) == 1 and done[0][0] == last and done[0][2] is None
    assert (done[0][1].width, done[0][1].height) == (64, 48)
    assert "cancelled (cancelled)" in log, log[-2000:]


# ----------------------------------------------------------------------------------------------- sanetd state

def _probe(connection_file):
    from sanet_client import Client, ProtocolMismatch, SanetClientError

    def probe():
        try:
            with Client(connection_file, timeout=2.0, retries=1) as c:
                return dm.RUNNING, c.hello()
        except ProtocolMismatch as exc:
            return dm.INCOMPATIBLE, str(exc)
        except SanetClientError as exc:
            return dm.NOT_RUNNING, str(exc)
    return probe


class States:
    def __init__(self):
        self.seen, self.cond = [], threading.Condition()

    def __call__(self, state):
        with self.cond:
            self.seen.append(state)
            self.cond.notify_all()

    def wait_for(self, kind, timeout):
        with self.cond:
            assert self.cond.wait_for(lambda: self.seen and self.seen[-1].kind == kind, timeout), \
                [(s.kind, s.message) for s in self.seen]
            return self.seen[-1]


def _sanetd_wrapper(tmp_path, synthetic_weights, body=None):
    """An executable `sanetd` like the installer's venv has: this checkout's daemon with the test weights."""
    from sanetd_process import PYTHONPATH
    wrapper = tmp_path / "venv" / "bin" / "sanetd"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(body or ("#!/bin/sh\n"
                                f"export PYTHONPATH='{os.pathsep.join(PYTHONPATH)}'\n"
                                f"exec '{sys.executable}' -m sanetd --device cpu --weights '{synthetic_weights}' "
                                f"--log-level info \"$@\"\n"))
    wrapper.chmod(0o755)
    return str(wrapper)


def test_monitor_shows_not_running_then_start_then_running_then_gone(tmp_path, synthetic_weights):
    """The dialog's top bar: not running (with Start), Start launches the installer's sanetd, it comes up; when
    it goes away the state follows within a few seconds."""
    from sanetd_process import sanetd_env
    runtime = tmp_path / "run"
    env = sanetd_env(runtime, tmp_path / "state")
    conn = runtime / "sanetd.json"
    command = _sanetd_wrapper(tmp_path, synthetic_weights)
    states = States()
    started = []

    def start(cmd, env=None):
        started.append(dm.start_sanetd(cmd, env=env))
        return started[-1]

    monitor = dm.DaemonMonitor(_probe(conn), states, find=lambda: command, start=start, poll_running_s=0.5,
                               poll_down_s=0.3).run()
    try:
        state = states.wait_for(dm.NOT_RUNNING, 30)
        assert state.can_start and "Press Start" in state.message and "no connection file" in state.detail
        monitor.start_daemon(env=env)
        state = states.wait_for(dm.RUNNING, 120)
        assert any(s.kind == dm.STARTING for s in states.seen)
        assert state.message == "sanetd is ready: SANet on the CPU."
        assert os.getsid(started[0].pid) == started[0].pid   # detached: it outlives GIMP
        started[0].send_signal(signal.SIGTERM)
        assert started[0].wait(30) == 0
        state = states.wait_for(dm.NOT_RUNNING, 30)
    finally:
        monitor.close()
        for p in started:
            if p.poll() is None:
                p.kill()
    # the state is reported on changes only (no repeats while nothing changes)
    kinds = [s.kind for s in states.seen]
    assert all(a != b for a, b in zip(kinds, kinds[1:])), kinds


def test_monitor_says_why_a_start_failed_and_when_there_is_nothing_to_start(tmp_path):
    broken = _sanetd_wrapper(tmp_path, None, body="#!/bin/sh\necho 'no model' >&2\nexit 3\n")
    states = States()
    missing = tmp_path / "none" / "sanetd.json"
    monitor = dm.DaemonMonitor(_probe(missing), states, find=lambda: broken, poll_down_s=0.2).run()
    try:
        states.wait_for(dm.NOT_RUNNING, 30)
        monitor.start_daemon()
        state = states.wait_for(dm.FAILED, 30)
        assert "exit code 3" in state.message and "terminal" in state.message and state.can_start
    finally:
        monitor.close()
    states = States()
    monitor = dm.DaemonMonitor(_probe(missing), states, find=lambda: None, poll_down_s=0.2).run()
    try:
        state = states.wait_for(dm.NOT_RUNNING, 30)
        assert not state.can_start and "installer" in state.message
    finally:
        monitor.close()


def test_describe_hello():
    assert dm.describe_hello({"device": "cuda:0", "model": {"name": "SANet (Park & Lee, CVPR 2019)"}}) == \
        "sanetd is ready: SANet on the GPU (CUDA)."
    assert dm.describe_hello({}) == "sanetd is ready: the model."


# ----------------------------------------------------------------------------------------------- watchdog

PLUGIN_SCRIPT = """
import os, sys, uuid
import numpy as np
sys.path.insert(0, sys.argv[1])
from sanet_gimp_watchdog import Watchdog
from sanet_client import Client, Layer, StylePixels
paths = [p for p in sys.path if os.path.isdir(os.path.join(p, 'sanet_client'))][:1]
dog = Watchdog(paths, log_path=sys.argv[2])
assert dog.start()
a = np.random.default_rng(1).integers(0, 256, (1536, 1536, 4), dtype=np.uint8)
with Client(timeout=30) as c:
    job = uuid.uuid4().hex
    dog.job(job, c.session)
    print('job', job, flush=True)
    def progress(f, s):
        print('running', flush=True)
        os.kill(os.getpid(), 9)            # GIMP's progress Cancel: SIGKILL, no last words
    c.stylize(Layer(1536, 1536, 'rgba8', a.tobytes()), [StylePixels(32, 32, 'rgba8', a[:32, :32].tobytes())],
              job_id=job, on_progress=progress)
"""


def test_watchdog_cancels_the_job_of_a_killed_plug_in_at_once(tmp_path, synthetic_weights):
    """The plug-in is killed mid-job (as GIMP does on Cancel): the watchdog sends the cancel with the plug-in's
    session at once, so the job ends as cancelled by its client, not when the 15 s lease runs out."""
    from sanetd_process import running_sanetd
    log = tmp_path / "watchdog.log"
    with running_sanetd(tmp_path, synthetic_weights) as d:
        p = subprocess.run([sys.executable, "-c", PLUGIN_SCRIPT, str(PLUGIN), str(log)], env=d.env,
                           capture_output=True, text=True, timeout=120)
        killed_at = time.time()
        assert p.returncode == -signal.SIGKILL and "running" in p.stdout, p.stderr
        job = p.stdout.split()[1]
        end = time.monotonic() + 30
        while f"job {job} cancelled" not in d.log_text() and time.monotonic() < end:
            time.sleep(0.1)
        ended_after = time.time() - killed_at
        text = d.log_text()
    assert f"cancel {job}: cancelling" in log.read_text() or f"cancel {job}: cancelled" in log.read_text()
    assert f"job {job} cancelled (cancelled)" in text, text[-3000:]
    assert "lease_expired" not in text
    print(f"killed plug-in: its job ended {ended_after:.2f} s after the kill")


def test_watchdog_after_bye_cancels_nothing(tmp_path):
    log = tmp_path / "watchdog.log"
    dog = Watchdog([], log_path=str(log))
    assert dog.start()
    dog.job("j1", "s1", str(tmp_path / "no-daemon.json"))
    dog.end("j1")
    dog.job("j2", "s1", str(tmp_path / "no-daemon.json"))
    pid = dog.pid
    dog.close()
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    assert "cancel" not in log.read_text()
