"""The docker's connection state machine and its texts, outside Krita, against a REAL sanetd.

connection.Monitor is what the docker shows at the top: connecting / connected / not running / error, from a
heartbeat thread. Here the daemon is started, SIGKILLed (leaving its connection file behind, as a crash does),
and started again, and the Monitor must follow each time within its heartbeat period; the Start path runs a
real `sanetd` executable found on PATH, as the plug-in's Start button does.
"""
import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "krita"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))
import sanet_client  # noqa: E402
from sanet_client import launch  # noqa: E402
from sanet_style import connection, messages  # noqa: E402

from sanetd_process import running_sanetd  # noqa: E402
from sanetd_wrapper import make_wrapper, stop_started  # noqa: E402

# the longest the Monitor may need to notice a change: a heartbeat period plus a ping timeout, plus slack
# for a loaded 2-core machine (the waits below end as soon as the state is reached)
NOTICE_S = connection.HEARTBEAT_S + connection.PING_TIMEOUT_S + 8.0


# ---- texts -----------------------------------------------------------------------------------------
def test_sentence_drops_doubled_prefixes_and_ends_with_a_period():
    assert messages.sentence("sanetd: sanetd is not running") == "sanetd is not running."
    assert messages.sentence("Style Transfer: select a layer") == "Select a layer."
    assert messages.sentence("  it   went\nwrong!  ") == "It went wrong!"
    assert messages.sentence("") == ""


def test_status_text_is_whole_sentences_before_retrying():
    msg = ("sanetd is not running (no connection file at /run/user/1000/sanet-style/sanetd.json); start it "
           "with `sanetd` and try again")
    text = connection.Status(connection.NOT_RUNNING, "sanetd: " + msg).text()
    assert text == msg + ". Retrying…"
    assert "sanetd: " not in text and ".." not in text
    with_start = connection.Status(connection.NOT_RUNNING, msg, can_start=True).text()
    assert with_start.endswith("try again. Press Start, or start it yourself. Retrying…")
    assert connection.Status(connection.CONNECTED, hello={"device": "cpu"}).headline() == "sanetd connected (cpu)"
    assert connection.Status(connection.CONNECTED).text() == ""
    # a running but unusable sanetd (another protocol version): starting a second one would not help
    assert not connection.Status(connection.ERROR, "other protocol", can_start=True).offer_start
    missing = connection.Status(connection.ERROR, "The sanet_client package was not found", retrying=False)
    assert missing.text() == "The sanet_client package was not found."     # no retry promised: none will come


def test_long_paths_get_break_points_and_nothing_else_changes():
    path = "/home/artist/.local/share/sanet-style/some/really/long/folder/sanetd.json"
    text = "no connection file at %s; start it" % path
    wrapped = messages.wrappable(text)
    assert messages.plain(wrapped) == text
    # every piece between break opportunities (spaces, zero-width spaces) is short
    pieces = wrapped.replace(messages.ZWSP, " ").split(" ")
    assert max(len(p) for p in pieces) <= messages.LONG_TOKEN
    assert messages.wrappable("short words stay") == "short words stay"


# ---- the monitor against a real daemon -------------------------------------------------------------------
def _wait_state(monitor, state, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = monitor.snapshot()
        if status.state == state:
            return status, timeout - (end - time.monotonic())
        time.sleep(0.05)
    raise AssertionError("monitor stayed %r (%s), wanted %r" % (monitor.snapshot().state,
                                                                monitor.snapshot().detail, state))


@pytest.fixture
def private_runtime(tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setenv("SANETD_RUNTIME_DIR", str(run))
    monkeypatch.setenv("SANETD_CONNECTION_FILE", str(run / "sanetd.json"))
    return run


def test_monitor_follows_the_daemon_going_away_and_coming_back(tmp_path, private_runtime, synthetic_weights):
    monitor = connection.Monitor(sanet_client, launcher=None).start()
    try:
        status, _ = _wait_state(monitor, connection.NOT_RUNNING, NOTICE_S)
        assert "not running" in status.detail and status.text().endswith("Retrying…")
        assert status.headline() == "sanetd is not running" and not status.can_start

        with running_sanetd(tmp_path / "d1", synthetic_weights, runtime_dir=private_runtime) as d:
            monitor.check_now()                     # what Reconnect does; the retry loop would get there too
            status, _ = _wait_state(monitor, connection.CONNECTED, NOTICE_S)
            assert status.device == "cpu" and status.headline() == "sanetd connected (cpu)"
            assert status.library == []
            # the library follows adds (refresh_library after a styles.add)
            with sanet_client.Client(connection_file=d.connection_file) as c:
                c.styles_add("dots", sanet_client.StylePixels(2, 2, "rgba8", bytes(range(16))))
            before = status.library_serial
            monitor.refresh_library()
            end = time.monotonic() + NOTICE_S
            while monitor.snapshot().library_serial == before and time.monotonic() < end:
                time.sleep(0.05)
            assert [e["name"] for e in monitor.snapshot().library] == ["dots"]

            d.kill(signal.SIGKILL)                  # a crash: the connection file stays behind
            d.proc.wait(10)
            status, took = _wait_state(monitor, connection.NOT_RUNNING, NOTICE_S)
            assert not status.connected and status.hello == {} and status.device == ""
            assert "sanetd" in status.detail

        with running_sanetd(tmp_path / "d2", synthetic_weights, runtime_dir=private_runtime):
            status, _ = _wait_state(monitor, connection.CONNECTED, NOTICE_S)   # no Reconnect: the retry finds it
            assert status.device == "cpu"
    finally:
        monitor.stop()
    assert not monitor._thread.is_alive()


def test_start_launches_sanetd_found_on_path(tmp_path, private_runtime, synthetic_weights):
    env = dict(os.environ)
    empty = dict(env, PATH=str(tmp_path / "empty"), XDG_DATA_HOME=str(tmp_path / "xdg"))
    nothing = connection.Monitor(sanet_client, launcher=launch, env=empty)
    assert "sanetd was not found" in nothing.start_daemon()
    assert not nothing.snapshot().can_start

    bin_dir = make_wrapper(tmp_path / "bin", synthetic_weights, private_runtime, tmp_path / "state")
    env.update(PATH=str(bin_dir) + os.pathsep + env["PATH"], XDG_DATA_HOME=str(tmp_path / "xdg"))
    assert launch.find_sanetd(env) == str(bin_dir / "sanetd")
    monitor = connection.Monitor(sanet_client, launcher=launch, env=env).start()
    try:
        status, _ = _wait_state(monitor, connection.NOT_RUNNING, NOTICE_S)
        assert status.can_start and status.offer_start and "Press Start" in status.text()
        assert monitor.start_daemon() is None
        starting = monitor.snapshot()
        assert starting.state == connection.CONNECTING and starting.starting
        assert starting.headline() == "Starting sanetd…"
        status, _ = _wait_state(monitor, connection.CONNECTED, launch.START_TIMEOUT_S)
        assert status.device == "cpu"
        assert monitor.start_daemon() is None       # already running: nothing to do
    finally:
        monitor.stop()
        stop_started(private_runtime / "sanetd.json")


def test_start_reports_a_sanetd_that_exits_at_once(tmp_path, private_runtime):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sanetd").write_text("#!/bin/sh\nexit 3\n")
    (bin_dir / "sanetd").chmod(0o755)
    env = dict(os.environ, PATH=str(bin_dir), XDG_DATA_HOME=str(tmp_path / "xdg"))
    monitor = connection.Monitor(sanet_client, launcher=launch, env=env).start()
    try:
        _wait_state(monitor, connection.NOT_RUNNING, NOTICE_S)
        assert monitor.start_daemon() is None
        status, _ = _wait_state(monitor, connection.ERROR, NOTICE_S)
        assert "exited with code 3" in status.detail and "terminal" in status.detail
        assert status.headline() == "sanetd cannot be used" and status.text().endswith("Retrying…")
        time.sleep(2.5 * connection.RETRY_S)        # the reason stays on screen while the retries go on
        assert monitor.snapshot().state == connection.ERROR and monitor.snapshot().offer_start   # try again
    finally:
        monitor.stop()
