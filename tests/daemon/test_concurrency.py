"""Many clients at once, a client that vanishes, and a daemon killed mid-job."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading

import numpy as np

from daemon_kit import array_of, layer_of, rgba, style_of, wait_until_idle
from sanet_client import Client, Mask
from sanetd_process import running_sanetd, start_sanetd, wait_ready

CLIENTS, JOBS = 16, 50
ENGINE_EVERY = 25   # every 25th job selects pixels, so the engine runs; the rest send an empty selection


def test_16_clients_x_50_jobs_zero_lost_or_misrouted(daemon):
    """Each job's layer is unique. Pixels outside the selection come back bit-exact, so a reply routed to
    the wrong client (or a lost one) cannot pass. Jobs with an empty selection take the daemon's full
    path (auth, validation, queue, worker, events) without device time, which keeps 800 jobs fast on CPU."""
    style = style_of(rgba(32, 32, 70))
    failures, results = [], {}
    lock = threading.Lock()

    def one_client(k: int):
        try:
            with Client(connection_file=daemon.connection_file, timeout=60) as c:
                for j in range(JOBS):
                    content = rgba(16, 12, 1000 * k + j)
                    mask = np.zeros((12, 16), np.uint8)
                    if j % ENGINE_EVERY == 0:
                        mask[4:8, 4:12] = 255
                    job_id = f"c{k}-j{j}"
                    r = c.stylize(layer_of(content), [style], selection=Mask(16, 12, "u8", mask.tobytes()),
                                  job_id=job_id)
                    got = array_of(r, np.uint8)
                    keep = mask == 0
                    ok = np.array_equal(got[keep], content[keep])
                    changed = not np.array_equal(got[~keep], content[~keep]) if mask.any() else True
                    with lock:
                        results[job_id] = (ok, changed, r.info.get("skipped"))
        except Exception as exc:  # noqa: BLE001  collected and asserted below
            with lock:
                failures.append(f"client {k}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one_client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures[:5]
    assert len(results) == CLIENTS * JOBS
    assert all(ok for ok, _, _ in results.values()), [k for k, v in results.items() if not v[0]][:10]
    assert all(changed for _, changed, _ in results.values())
    engine_jobs = [k for k, v in results.items() if v[2] is None]
    assert len(engine_jobs) == CLIENTS * JOBS // ENGINE_EVERY


def test_a_vanished_client_has_its_jobs_cancelled(tmp_path, synthetic_weights):
    with running_sanetd(tmp_path, synthetic_weights, "--lease", "1") as d:
        script = (
            "import os, sys, numpy as np\n"
            "from sanet_client import Client, Layer, StylePixels\n"
            "c = Client(timeout=30, heartbeat=0.25)\n"
            # big enough that the job outlives the 1 s lease by seconds even on a fast, idle machine
            "a = np.random.default_rng(1).integers(0, 256, (1024, 1024, 4), dtype=np.uint8)\n"
            "def progress(f, s):\n"
            "    print('running', flush=True)\n"
            "    os.kill(os.getpid(), 9)\n"       # dies mid-job without a word
            "c.stylize(Layer(1024, 1024, 'rgba8', a.tobytes()), [StylePixels(32, 32, 'rgba8', a[:32, :32].tobytes())],\n"
            "          on_progress=progress)\n")
        p = subprocess.run([sys.executable, "-c", script], env=d.env, capture_output=True, text=True, timeout=120)
        assert p.returncode == -signal.SIGKILL and "running" in p.stdout
        with Client(connection_file=d.connection_file) as c:
            assert not wait_until_idle(c, 30)
        log = d.log_text()
        assert "silent for more than 1 s" in log and "cancelled (lease_expired)" in log


def test_kill_9_mid_job_then_restart_and_the_client_recovers(tmp_path, synthetic_weights):
    d = start_sanetd(tmp_path / "first", synthetic_weights, runtime_dir=tmp_path / "run")
    wait_ready(d)
    outcome = {}
    running = threading.Event()

    def submit():
        try:
            with Client(connection_file=d.connection_file, timeout=3, retries=8) as c:
                r = c.stylize(layer_of(rgba(768, 768, 80)), [style_of(rgba(32, 32, 81))], job_id="survivor",  # ~2 s
                              on_progress=lambda f, s: running.set())
                outcome["result"] = r
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = exc
    t = threading.Thread(target=submit)
    t.start()
    try:
        assert running.wait(60)
        d.kill(signal.SIGKILL)
        d.proc.wait(10)
        assert d.connection_file.exists()       # a stale file is left behind by kill -9
        second = start_sanetd(tmp_path / "second", synthetic_weights, runtime_dir=tmp_path / "run")
        try:
            wait_ready(second)
            t.join(180)
            assert "error" not in outcome, outcome.get("error")
            r = outcome["result"]
            assert (r.width, r.height, r.format) == (768, 768, "rgba8")
            assert second.log_text().count("job survivor:") == 1    # resubmitted once, run once
        finally:
            assert second.stop() == 0
            assert not second.connection_file.exists()
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        t.join(5)
