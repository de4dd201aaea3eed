"""Cancel in all four cases, busy on a full queue, idempotent job ids, progress isolation."""
from __future__ import annotations

import threading

import pytest

from daemon_kit import RawPeer, layer_of, raw_stylize, rgba, style_of, terminal_for
from sanet_client import Client, JobCancelled, Busy
from sanetd_process import running_sanetd

LONG = (768, 768)   # ~2 s on an idle 2-core CPU (the engine got faster): long enough to cancel mid-job


@pytest.fixture
def peer(daemon):
    p = RawPeer(daemon.connection_file)
    yield p
    p.close()


def status(peer):
    peer.send(peer.header("status"))
    got = peer.recv_until(lambda h: h["type"] == "status.reply", 10)
    assert got is not None
    return got[0]


def cancel(peer, job_id):
    peer.send(peer.header("cancel", job_id=job_id))
    got = peer.recv_until(lambda h: h["type"] == "cancel.reply" and h["job_id"] == job_id, 10)
    assert got is not None
    return got[0]["state"]


def test_cancel_before_start_mid_job_after_finish_and_unknown(peer):
    long_content, style = rgba(*LONG, 20), rgba(32, 32, 21)
    raw_stylize(peer, "long-1", long_content, style)
    assert peer.recv_until(lambda h: h["type"] == "progress" and h["job_id"] == "long-1", 30) is not None
    # before start: a job waiting behind the running one
    raw_stylize(peer, "waiting-1", rgba(32, 24, 22), style)
    acc = peer.recv_until(lambda h: h["type"] == "accepted" and h["job_id"] == "waiting-1", 10)
    assert acc[0]["position"] == 1
    assert cancel(peer, "waiting-1") == "cancelled"
    # mid-job: the running one stops at its next stage
    assert cancel(peer, "long-1") == "cancelling"
    seen = {}
    for job in ("waiting-1", "long-1"):
        h, _ = peer.recv_until(terminal_for(job), 60)
        seen[job] = (h["type"], h.get("code"))
    assert seen == {"waiting-1": ("error", "cancelled"), "long-1": ("error", "cancelled")}
    # after finish: a no-op, the result stands
    raw_stylize(peer, "short-1", rgba(32, 24, 23), style)
    h, bufs = peer.recv_until(terminal_for("short-1"), 60)
    assert h["type"] == "result"
    assert cancel(peer, "short-1") == "finished"
    # an id nobody submitted, and another client's id
    assert cancel(peer, "no-such-job") == "unknown"
    assert status(peer)["queue"] == {"waiting": 0, "running": False, "max": 16}


def test_cancel_is_scoped_to_the_submitting_client(daemon, peer):
    other = RawPeer(daemon.connection_file)
    try:
        raw_stylize(peer, "mine-1", rgba(32, 24, 24), rgba(32, 32, 25))
        assert cancel(other, "mine-1") == "unknown"
        h, _ = peer.recv_until(terminal_for("mine-1"), 60)
        assert h["type"] == "result"
        assert other.recv(0.3) is None and not other.backlog   # no event of someone else's job reaches this client
    finally:
        other.close()


def test_client_cancel_event_raises_job_cancelled(client):
    ev = threading.Event()

    def on_progress(fraction, stage):
        ev.set()            # cancel as soon as the job is running
    with pytest.raises(JobCancelled):
        client.stylize(layer_of(rgba(*LONG, 26)), [style_of(rgba(32, 32, 27))], on_progress=on_progress,
                       cancel_event=ev)
    assert client.status()["jobs"] == []


def test_same_job_id_never_runs_twice(daemon, peer):
    # a job long enough (LONG) that the retry surely finds it queued or running: a tiny one could finish between the
    # two sends on a loaded machine, and the retry would then get the finished result (the case tested below)
    content, style = rgba(*LONG, 28), rgba(32, 32, 29)
    done_before = status(peer)["jobs_done"]
    raw_stylize(peer, "once-1", content, style)
    raw_stylize(peer, "once-1", content, style)           # a retry while it is queued/running
    acc = [peer.recv_until(lambda h: h["type"] == "accepted", 10)[0] for _ in range(2)]
    assert acc[1].get("reattached") is True
    first, bufs1 = peer.recv_until(terminal_for("once-1"), 120, keepalive=True)
    raw_stylize(peer, "once-1", content, style)           # a retry after it finished: the cached result
    again, bufs2 = peer.recv_until(terminal_for("once-1"), 10)
    assert first["type"] == again["type"] == "result"
    assert bytes(bufs1[0]) == bytes(bufs2[0])
    assert status(peer)["jobs_done"] == done_before + 1
    assert peer.recv(0.3) is None
    assert not [h for h, _ in peer.backlog if h["type"] in ("result", "error")]


def test_full_queue_answers_busy_at_once(tmp_path, synthetic_weights):
    # the raw peer sends no heartbeats while it waits: a long lease, or under load (the long job past 15 s) it
    # loses run-0 to lease expiry ("the client stopped answering"), which is not what this test is about
    with running_sanetd(tmp_path, synthetic_weights, "--max-queue", "2", "--lease", "600") as d:
        peer = RawPeer(d.connection_file)
        try:
            style = rgba(32, 32, 30)
            raw_stylize(peer, "run-0", rgba(*LONG, 31), style)
            assert peer.recv_until(lambda h: h["type"] == "progress", 30) is not None
            for i in range(2 + 5):
                raw_stylize(peer, f"q-{i}", rgba(32, 24, 40 + i), style)
            answers = [peer.recv_until(lambda h: h["type"] in ("accepted", "error") and h["job_id"].startswith("q-"), 5)[0]
                       for _ in range(7)]
            kinds = [(a["type"], a.get("code")) for a in answers]
            assert kinds.count(("accepted", None)) == 2 and kinds.count(("error", "busy")) == 5
            busy = next(a for a in answers if a.get("code") == "busy")
            assert busy["field"] == "max_queue" and "max_queue = 2" in busy["message"]
            for job in ["run-0", "q-0", "q-1"]:   # pinging while waiting: run-0 may outlast the lease under load
                got = peer.recv_until(terminal_for(job), 60, keepalive=True)[0]
                assert got["type"] == "result", (got.get("code"), got.get("message"), job)
            with Client(connection_file=d.connection_file) as c:   # Busy is what the library raises
                c._ensure()
                raw_stylize(peer, "run-1", rgba(*LONG, 32), style)
                assert peer.recv_until(lambda h: h["type"] == "progress" and h["job_id"] == "run-1", 30)
                raw_stylize(peer, "q-a", rgba(32, 24, 33), style)
                raw_stylize(peer, "q-b", rgba(32, 24, 34), style)
                assert peer.recv_until(lambda h: h.get("job_id") == "q-b" and h["type"] == "accepted", 10)
                with pytest.raises(Busy, match="busy"):
                    c.stylize(layer_of(rgba(32, 24, 35)), [style_of(style)])
                assert cancel(peer, "run-1") in ("cancelling", "finished")
        finally:
            peer.close()
