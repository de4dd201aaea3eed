"""Krita and a shared server (issue 14): the docker's Server choice (this computer / a connection file from
`sanetd invite`), remembered per Krita profile (kritarc). Outside Krita: the heartbeat monitor and a task against a
real sanetd listening on 127.0.0.1 (CURVE); inside Krita (kritarunner): the choice is stored in the profile, the
connection follows it, the apply path stylizes through it, and a new Krita process still has it."""
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "krita"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
import sanet_client  # noqa: E402
from sanet_style import connection, server  # noqa: E402
from sanet_style.worker import Task  # noqa: E402

import kritatools as kt  # noqa: E402
from daemon_kit import invite, sanetd_command  # noqa: E402
from sanetd_process import running_sanetd  # noqa: E402

NOTICE_S = connection.HEARTBEAT_S + connection.PING_TIMEOUT_S + 8.0


@pytest.fixture(scope="module")
def shared(tmp_path_factory, synthetic_weights):
    with running_sanetd(tmp_path_factory.mktemp("kshared"), synthetic_weights, "--listen", "tcp://127.0.0.1:*") as d:
        yield d


def _wait(monitor, pred, timeout=NOTICE_S):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = monitor.snapshot()
        if pred(status):
            return status
        time.sleep(0.05)
    raise AssertionError("monitor: %s / %s" % (monitor.snapshot().state, monitor.snapshot().detail))


def test_the_choice_is_kept_outside_krita_too():
    server.save("/x/alice.json")
    assert server.load() == "/x/alice.json"
    server.save(None)
    assert server.load() is None


def test_the_monitor_follows_the_server_choice(shared):
    conn = invite(shared, "krita-monitor")
    monitor = connection.Monitor(sanet_client, launcher=None, connection_file=conn).start()
    try:
        status = _wait(monitor, lambda s: s.connected)
        assert status.headline() == "Shared sanetd connected as krita-monitor (cpu)"
        assert status.remote and not status.can_start and not status.offer_start
        assert "shared sanetd" in monitor.start_daemon()           # nothing to start for a shared server
        # the file is revoked: one clear message, no Start
        assert sanetd_command(shared, "revoke", "krita-monitor").returncode == 0
        status = _wait(monitor, lambda s: s.state == connection.ERROR)
        assert "refused this connection file" in status.detail and not status.offer_start
        # back to this computer's sanetd (here: the same daemon's local connection file)
        monitor.set_connection_file(str(shared.connection_file))
        status = _wait(monitor, lambda s: s.connected)
        assert status.headline() == "sanetd connected (cpu)" and not status.remote
    finally:
        monitor.stop()


def test_a_task_runs_on_the_chosen_server(shared):
    conn = invite(shared, "krita-task")

    def run(mod, client, report, cancel):
        layer = mod.Layer(8, 6, "rgba8", bytes(range(192)))
        r = client.stylize(layer, [mod.StylePixels(4, 4, "rgba8", bytes(64))],
                           selection=mod.Mask(8, 6, "u8", bytes(48)))
        return client.hello()["client"], r.data == layer.data
    task = Task(sanet_client, run, timeout=20, connection_file=str(conn)).start()
    task.thread.join(60)
    events = []
    while not task.events.empty():
        events.append(task.events.get())
    assert events[-1] == ("done", ("krita-task", True)), events


@pytest.mark.krita
def test_the_server_choice_in_krita_is_remembered_in_the_profile(shared, tmp_path, style_png):
    kt.require_krita()
    conn = invite(shared, "krita-artist", folder=tmp_path)
    env = kt.krita_env(shared.env, kt.shared_home())
    env["SANETD_CONNECTION_FILE"] = str(tmp_path / "no-local-daemon.json")   # only the chosen file leads anywhere
    out1, out2 = tmp_path / "one", tmp_path / "two"
    out1.mkdir()
    out2.mkdir()
    try:
        proc = kt.run_kritarunner("server_choice_scenario", [out1, conn, style_png[0]], env)
        first = json.loads((out1 / "summary.json").read_text())
        assert first.get("ok"), first.get("error", first) + (proc.stdout + proc.stderr)[-3000:]
        assert first["headline"] == "Shared sanetd connected as krita-artist (cpu)"
        assert first["remote"] and not first["offer_start"] and first["setting"] == str(conn)
        assert first["client"] == "krita-artist" and first["new_name"] == "Style: style (SANet, α 0.80)"
    finally:   # a second Krita process: the choice is still there; then it goes back to this computer
        proc = kt.run_kritarunner("server_remembered_scenario", [out2], env)
    second = json.loads((out2 / "summary.json").read_text())
    assert second.get("ok"), second.get("error", second) + (proc.stdout + proc.stderr)[-3000:]
    assert second["connection_file"] == str(conn)
    assert second["headline"] == "Shared sanetd connected as krita-artist (cpu)"
    assert second["after_reset"] == ""
    with sanet_client.Client(shared.connection_file) as c:
        me = {x["name"]: x for x in c.status()["clients"]}
    assert me["krita-artist"]["done"] >= 1
