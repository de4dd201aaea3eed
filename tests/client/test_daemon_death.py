"""The client library notices a daemon that dies mid-job by itself (socket monitor + kill(pid, 0)), far sooner
than its timeout, and says so in one message (docs/protocol.md section 11)."""
from __future__ import annotations

import signal
import threading
import time

import numpy as np

from sanet_client import Client, DaemonNotRunning, Layer, StylePixels
from sanetd_process import start_sanetd, wait_ready


def rgba8(w, h, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8).tobytes()


def test_the_reference_client_reports_a_dead_daemon_within_a_heartbeat(tmp_path, synthetic_weights):
    """The client library does the fast detection itself: far sooner than its (long) timeout."""
    d = start_sanetd(tmp_path, synthetic_weights)
    wait_ready(d)
    outcome, started = {}, threading.Event()
    layer = Layer(1024, 1024, "rgba8", rgba8(1024, 1024, 3))

    def run():
        try:
            with Client(connection_file=d.connection_file, timeout=120, retries=2) as c:
                c.stylize(layer, [StylePixels(32, 32, "rgba8", rgba8(32, 32, 4))], on_progress=lambda f, s: started.set())
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = exc
        outcome["at"] = time.monotonic()
    t = threading.Thread(target=run)
    t.start()
    try:
        assert started.wait(120)
        d.kill(signal.SIGKILL)
        killed = time.monotonic()
        d.proc.wait(10)
        t.join(200)
        assert isinstance(outcome.get("error"), DaemonNotRunning), outcome
        assert "stopped while job" in str(outcome["error"])
        assert outcome["at"] - killed < 30, "noticed only after the timeout (120 s)"
    finally:
        t.join(1)


