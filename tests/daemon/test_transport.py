"""tcp on loopback (the Windows transport), CURVE, the refusal of unencrypted network listeners, and
a client that stops reading not holding up another client."""
from __future__ import annotations

import json
import time

import pytest
import zmq

from daemon_kit import RawPeer, layer_of, raw_stylize, rgba, style_of
from sanet_client import Client
from sanetd_process import running_sanetd


def test_tcp_loopback_with_curve(tmp_path, synthetic_weights):
    with running_sanetd(tmp_path, synthetic_weights, "--curve", endpoint="tcp://127.0.0.1:*") as d:
        info = json.loads(d.connection_file.read_text())
        assert info["transport"] == "tcp" and info["endpoint"].startswith("tcp://127.0.0.1:")
        assert int(info["endpoint"].rsplit(":", 1)[1]) > 0 and len(info["curve_server_key"]) == 40
        with Client(connection_file=d.connection_file) as c:      # the client uses the server key
            r = c.stylize(layer_of(rgba(32, 24, 90)), [style_of(rgba(32, 32, 91))])
            assert r.width == 32
        plain = RawPeer(d.connection_file)                         # right HMAC key, but no CURVE
        try:
            plain.send(plain.header("hello"))
            assert plain.recv(1.5) is None
        finally:
            plain.close()


def test_the_local_endpoint_stays_on_this_computer(tmp_path):
    """--endpoint is the local endpoint: loopback or ipc only; other computers are served by --listen (CURVE + ZAP
    allow-list, tests/daemon/test_network.py)."""
    from sanetd.instance import Instance, InstanceError
    inst = Instance(tmp_path / "run")
    with pytest.raises(InstanceError, match="use --listen tcp://HOST:PORT"):
        inst.choose_endpoint("tcp://192.0.2.10:5555", curve=False)
    assert inst.choose_endpoint("tcp://127.0.0.1:5555", curve=False) == ("tcp://127.0.0.1:5555", False)
    with pytest.raises(InstanceError, match="give an IP address"):
        inst.choose_endpoint("tcp://example.org:5555", curve=False)
    with pytest.raises(InstanceError, match="expected ipc://PATH or tcp://HOST:PORT"):
        inst.choose_endpoint("udp://127.0.0.1:1", curve=False)


def test_a_client_that_stops_reading_does_not_hold_up_others(daemon):
    """A peer submits jobs and never reads its socket; another client's job still completes promptly."""
    stuck = RawPeer(daemon.connection_file)
    stuck.sock.setsockopt(zmq.RCVHWM, 1)
    try:
        for i in range(5):
            raw_stylize(stuck, f"stuck-{i}", rgba(32, 24, 100 + i), rgba(32, 32, 99))
        with Client(connection_file=daemon.connection_file, timeout=30) as c:
            t0 = time.monotonic()
            r = c.stylize(layer_of(rgba(32, 24, 110)), [style_of(rgba(32, 32, 111))])
            assert r.width == 32 and time.monotonic() - t0 < 60
            assert c.hello()["protocol"] == 1
    finally:
        stuck.close()


def test_hello_and_pings_answer_while_the_device_is_busy(daemon):
    busy = RawPeer(daemon.connection_file)
    try:
        raw_stylize(busy, "busy-1", rgba(384, 384, 120), rgba(32, 32, 121))
        assert busy.recv_until(lambda h: h["type"] == "progress", 30) is not None
        with Client(connection_file=daemon.connection_file, timeout=30) as c:
            worst = 0.0
            for _ in range(5):
                t0 = time.monotonic()
                c.ping()
                worst = max(worst, time.monotonic() - t0)
            assert c.status()["queue"]["running"] is True      # still busy while it answered
        assert worst < 1.0, f"a ping took {worst:.2f} s while the worker was busy"
        assert busy.recv_until(lambda h: h.get("job_id") == "busy-1" and h["type"] == "result", 120)
    finally:
        busy.close()
