"""A shared server (issue 14): sanetd --listen over tcp with CURVE + ZAP, invited clients, revocation, fair
queueing across clients, per-client limits, compression. Real daemons and real sockets on 127.0.0.1 only; free
ports are chosen at run time (tcp://127.0.0.1:* and the bound port read back); every wait is bounded."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq

from daemon_kit import (RawPeer, array_of, invite, layer_of, raw_stylize, rgba, sanetd_command, style_of,
                        terminal_for, wait_until_idle)
from sanet_client import Client, DaemonNotRunning, Mask, NotAdmitted
from sanet_client import protocol as P
from sanet_client.connect import read_connection_file
from sanetd_process import ROOT, running_sanetd

BLOCKER = (768, 768)   # a job that keeps the (single) worker busy for a second or more while others queue


@pytest.fixture(scope="module")
def shared(tmp_path_factory, synthetic_weights):
    """One sanetd serving this computer (ipc) and the network (CURVE on 127.0.0.1, a free port). The raw test peers
    send no heartbeats while they wait, hence the long lease (leases are tested in test_concurrency.py)."""
    with running_sanetd(tmp_path_factory.mktemp("shared"), synthetic_weights, "--listen", "tcp://127.0.0.1:*",
                        "--lease", "600") as d:
        yield d


def listen_endpoint(d) -> str:
    return read_connection_file(d.connection_file).listen


def empty_mask(content) -> Mask:
    h, w = content.shape[:2]
    return Mask(w, h, "u8", bytes(w * h))


def accepted(peer, job_id, timeout=20):
    got = peer.recv_until(lambda h: h.get("job_id") == job_id and h["type"] in ("accepted", "error"), timeout)
    assert got is not None, f"no answer to {job_id}"
    return got[0]


def submit_empty(peer, job_id, seed):
    """A job that takes the whole daemon path without device time (empty selection); its accepted header."""
    content = rgba(16, 12, seed)
    header = peer.header("stylize", job_id=job_id,
                         layer=P.pixels_field(16, 12, "rgba8", 0),
                         styles=[{"pixels": P.pixels_field(16, 16, "rgba8", 1)}],
                         selection=P.pixels_field(16, 12, "u8", 2, 0, 0))
    peer.send(header, [content.tobytes(), rgba(16, 16, 5).tobytes(), bytes(16 * 12)])
    return accepted(peer, job_id)


# ------------------------------------------------------------------------------------------ invite, files, keys

def test_an_invited_client_works_end_to_end(shared, tmp_path):
    conn = invite(shared, "alice", "--endpoint", listen_endpoint(shared))
    assert stat.S_IMODE(conn.stat().st_mode) == 0o600
    data = json.loads(conn.read_text())
    assert data["client"] == "alice" and data["transport"] == "tcp" and data["endpoint"] == listen_endpoint(shared)
    assert all(len(data[k]) == 40 for k in ("curve_server_key", "curve_public_key", "curve_secret_key"))
    # the server's secret key stays in the daemon's config folder (0600 in a 0700 folder), never in a file handed out
    net = shared.runtime_dir.parent / "state" / "network"
    assert stat.S_IMODE(net.stat().st_mode) == 0o700
    for f in ("server.key_secret", "clients.json"):
        assert stat.S_IMODE((net / f).stat().st_mode) == 0o600
    secret_line = next(ln for ln in (net / "server.key_secret").read_text().splitlines() if "secret-key" in ln)
    assert secret_line.split('"')[1] not in conn.read_text()
    assert data["curve_secret_key"] not in (net / "clients.json").read_text()   # the client's secret stays with it

    content, style = rgba(96, 64, 1), rgba(32, 32, 2)
    sel = np.zeros((64, 96), np.uint8)
    sel[16:48, 24:72] = 255
    mask = Mask(96, 64, "u8", sel.tobytes())
    with Client(connection_file=conn, timeout=30) as remote:
        hello = remote.hello()
        assert (hello["client"], hello["transport"]) == ("alice", "network")
        assert hello["compression"] == P.available_codecs()[0] and remote.compression == hello["compression"]
        r_remote = remote.stylize(layer_of(content), [style_of(style)], selection=mask)
        assert remote.status()["client"] == "alice"
    with Client(connection_file=shared.connection_file, timeout=30) as local:
        assert local.hello().get("compression") is None and local.hello()["client"] == "local"
        r_local = local.stylize(layer_of(content), [style_of(style)], selection=mask)
    got = array_of(r_remote, np.uint8)
    assert np.array_equal(got[sel == 0], content[sel == 0])           # unselected pixels bit-exact
    assert np.array_equal(got, array_of(r_local, np.uint8))           # the same result as on this computer

    # the command line takes the same file
    for name, arr in (("in.png", content[..., :3]), ("style.png", style[..., :3])):
        from sanet.images import save_image
        save_image(tmp_path / name, arr)
    r = subprocess.run([sys.executable, "-m", "sanet_client.cli", "--connection", str(conn), "stylize",
                        str(tmp_path / "in.png"), "--style", str(tmp_path / "style.png"), "-o", str(tmp_path / "o.png")],
                       env=shared.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.png").stat().st_size > 0

    end = time.monotonic() + 10     # the daemon records last use at most once a second
    while True:
        listing = sanetd_command(shared, "clients", "--json")
        assert listing.returncode == 0, listing.stderr
        alice = next(c for c in json.loads(listing.stdout)["clients"] if c["name"] == "alice")
        if alice["jobs_done"] >= 2 or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert alice["last_seen"] and alice["address"] == "127.0.0.1" and alice["jobs_done"] == 2
    table = sanetd_command(shared, "clients").stdout
    assert "alice" in table and "LAST USE" in table and "127.0.0.1" in table


def test_invite_checks_its_input(shared, tmp_path):
    bad = sanetd_command(shared, "invite", "local", "-o", tmp_path / "x.json")      # reserved for this computer
    assert bad.returncode == 2 and "reserved" in bad.stderr
    bad = sanetd_command(shared, "invite", "bo b", "-o", tmp_path / "x.json")
    assert bad.returncode == 2 and "client name" in bad.stderr
    bad = sanetd_command(shared, "invite", "zed", "-o", tmp_path / "x.json", "--endpoint", "tcp://0.0.0.0:5555")
    assert bad.returncode == 2 and "wildcard" in bad.stderr
    invite(shared, "twice", folder=tmp_path)
    again = sanetd_command(shared, "invite", "twice", "-o", tmp_path / "other.json")
    assert again.returncode == 2 and "already invited" in again.stderr
    gone = sanetd_command(shared, "revoke", "nobody")
    assert gone.returncode == 2 and "no client named 'nobody'" in gone.stderr


# ------------------------------------------------------------------------------------------ refusals

def test_wrong_server_key_plaintext_and_uninvited_keys_are_refused_while_others_are_served(shared, tmp_path):
    good = invite(shared, "carol")
    data = json.loads(good.read_text())
    # 1. the right client keys, but another server's key (an old or foreign file)
    wrong = tmp_path / "wrong-server.json"
    wrong.write_text(json.dumps(dict(data, curve_server_key=zmq.curve_keypair()[0].decode())))
    # 2. a key pair nobody invited
    stranger_pub, stranger_sec = zmq.curve_keypair()
    stranger = tmp_path / "stranger.json"
    stranger.write_text(json.dumps(dict(data, client="mallory", curve_public_key=stranger_pub.decode(),
                                        curve_secret_key=stranger_sec.decode())))
    t0 = time.monotonic()
    with pytest.raises(NotAdmitted, match="server's key does not match"):
        with Client(connection_file=wrong, timeout=10, retries=1) as c:
            c.hello()
    with pytest.raises(NotAdmitted, match="not on its allow-list"):
        with Client(connection_file=stranger, timeout=10, retries=1) as c:
            c.hello()
    assert time.monotonic() - t0 < 10, "refusals must be reported at once, not after the timeout"
    # 3. a plaintext client with the right HMAC key: the handshake fails, nothing reaches the protocol layer
    log_before = len(shared.log_text())
    plain = RawPeer(good, curve=False)
    try:
        plain.send(plain.header("hello"))
        assert plain.recv(2.0) is None
    finally:
        plain.close()
    # 4. carol's CURVE keys with another client's signing key: admitted by ZAP, but every message is dropped
    dropped_before = None
    with Client(connection_file=good, timeout=20) as c:
        dropped_before = c.status()["dropped_messages"]
    forged = RawPeer(good, key=bytes(32))
    try:
        forged.send(forged.header("hello"))
        assert forged.recv(2.0) is None
    finally:
        forged.close()
    # the daemon kept serving the invited client all along, and said what it refused, with key and address
    with Client(connection_file=good, timeout=20) as c:
        assert c.hello()["client"] == "carol"
        assert c.status()["dropped_messages"] == dropped_before + 1
    log = shared.log_text()
    from sanetd.allowlist import fingerprint
    assert f"refused a connection from 127.0.0.1: key {fingerprint(stranger_pub)} is not invited" in log
    # libzmq reports a plaintext peer as a mechanism mismatch, or (when the peer hangs up first) without detail
    after = log[log_before:]
    assert ("refused a connection from 127.0.0.1: not encrypted (a plaintext ZeroMQ client" in after
            or "refused a connection from 127.0.0.1: the ZeroMQ handshake failed before authentication" in after), after
    assert "refused a connection from 127.0.0.1: the CURVE handshake failed (the client uses another server key" in log


def test_a_revoked_client_is_refused_and_its_open_connection_dropped(shared):
    conn = invite(shared, "dave")
    other = invite(shared, "erin")
    peer = RawPeer(conn, monitor=True)
    try:
        peer.send(peer.header("hello"))
        assert peer.recv(20) is not None
        assert "HANDSHAKE_SUCCEEDED" in peer.wait_event("HANDSHAKE_SUCCEEDED", 5)
        raw_stylize(peer, "dave-long", rgba(*BLOCKER, 30), rgba(32, 32, 31))
        assert peer.recv_until(lambda h: h["type"] == "progress" and h.get("job_id") == "dave-long", 60)
        t0 = time.monotonic()
        out = sanetd_command(shared, "revoke", "dave")
        assert out.returncode == 0 and "applied it" in out.stdout, out.stdout + out.stderr
        seen = peer.wait_event("DISCONNECTED", 10)
        assert "DISCONNECTED" in seen, seen                      # its open connection was dropped...
        seen += peer.wait_event("HANDSHAKE_FAILED_AUTH", 10)
        assert "HANDSHAKE_FAILED_AUTH" in seen, seen             # ...and its reconnect refused by ZAP
        assert time.monotonic() - t0 < 15
        while peer.recv(0.2) is not None:
            pass   # events that arrived before the connection was dropped
        try:   # nowhere to send it (the DEALER has no connection left), or sent and never answered
            peer.sock.send_multipart(P.build_message(peer.key, peer.header("ping")), zmq.NOBLOCK)
        except zmq.Again:
            pass
        assert peer.recv(1.0) is None
    finally:
        peer.close()
    with pytest.raises(NotAdmitted):
        with Client(connection_file=conn, timeout=10, retries=1) as c:
            c.hello()
    with Client(connection_file=other, timeout=30) as c:   # the others are served; dave's job no longer runs
        assert not any(x["name"] == "dave" for x in c.status()["clients"])
        assert wait_until_idle(c, 60) is False      # the cancelled job stops at its next stage
    assert "client dave (key" in shared.log_text() and "revoked: 1 connection(s) dropped, 1 job(s) cancelled" in \
        shared.log_text()
    listing = json.loads(sanetd_command(shared, "clients", "--json").stdout)
    assert "dave" not in [c["name"] for c in listing["clients"]]


# ------------------------------------------------------------------------------------------ fairness

def test_round_robin_across_three_clients_with_uneven_loads(shared):
    """While one long job runs, A queues 6 jobs, then B 1, then C 3: they run A B C A C A C A A A, and each
    `accepted` says so; status and the log count per client."""
    files = {n: invite(shared, n) for n in ("rr-a", "rr-b", "rr-c")}
    peers = {n: RawPeer(f) for n, f in files.items()}
    try:
        a, b, c = peers["rr-a"], peers["rr-b"], peers["rr-c"]
        raw_stylize(a, "a0", rgba(*BLOCKER, 40), rgba(32, 32, 41))
        assert a.recv_until(lambda h: h["type"] == "progress" and h.get("job_id") == "a0", 60)
        positions = {}
        for i in range(1, 7):
            positions[f"a{i}"] = submit_empty(a, f"a{i}", 100 + i)["position"]
        positions["b1"] = submit_empty(b, "b1", 200)["position"]
        for i in range(1, 4):
            positions[f"c{i}"] = submit_empty(c, f"c{i}", 300 + i)["position"]
        c.send(c.header("status"))
        st = c.recv_until(lambda h: h["type"] == "status.reply", 10)[0]
        counts = {x["name"]: (x["queued"], x["running"]) for x in st["clients"]}
        assert counts["rr-a"] == (6, 1) and counts["rr-b"] == (1, 0) and counts["rr-c"] == (3, 0)
        assert [x["you"] for x in st["clients"] if x["name"] == "rr-c"] == [True]
        # positions: jobs ahead in round-robin order, plus the running one
        assert positions == {"a1": 1, "a2": 2, "a3": 3, "a4": 4, "a5": 5, "a6": 6, "b1": 2, "c1": 3, "c2": 5,
                             "c3": 7}, positions
        seq = {}
        for name, peer in peers.items():
            for job in [j for j in positions if j[0] == name[-1]] + (["a0"] if name == "rr-a" else []):
                h, _ = peer.recv_until(terminal_for(job), 120)
                assert h["type"] == "result", h
                seq[job] = h["info"]["sequence"]
        order = [j for j in sorted(seq, key=seq.get) if j != "a0"]
        assert order == ["a1", "b1", "c1", "a2", "c2", "a3", "c3", "a4", "a5", "a6"], order
    finally:
        for p in peers.values():
            p.close()
    log = shared.log_text()
    assert "job c3 of rr-c accepted at position 7 (rr-a: 6 waiting, 1 running; rr-b: 1 waiting, 0 running; " \
           "rr-c: 3 waiting, 0 running)" in log


def test_per_client_queue_limit(shared):
    limited = invite(shared, "lim", "--max-queued", "2")
    free = invite(shared, "unlim")
    lp, fp = RawPeer(limited), RawPeer(free)
    try:
        raw_stylize(fp, "f0", rgba(*BLOCKER, 50), rgba(32, 32, 51))
        assert fp.recv_until(lambda h: h["type"] == "progress" and h.get("job_id") == "f0", 60)
        answers = [submit_empty(lp, f"l{i}", 400 + i) for i in range(4)]
        assert [h["type"] for h in answers] == ["accepted", "accepted", "error", "error"]
        busy = answers[2]
        assert busy["code"] == "busy" and busy["field"] == "max_queued"
        assert "max_queued = 2" in busy["message"] and "lim" in busy["message"]
        assert submit_empty(fp, "f1", 500)["type"] == "accepted"        # the limit is per client
        lp.send(lp.header("hello"))
        assert lp.recv_until(lambda h: h["type"] == "hello.reply", 10)[0]["limits"]["max_queued"] == 2
        for peer, jobs in ((lp, ["l0", "l1"]), (fp, ["f0", "f1"])):
            for j in jobs:
                assert peer.recv_until(terminal_for(j), 120)[0]["type"] == "result"
    finally:
        lp.close()
        fp.close()
    assert "job l2 of lim refused: max_queued" in shared.log_text()


# ------------------------------------------------------------------------------------------ protocol v1 over tcp

def test_replay_limits_cancel_and_reattach_are_unchanged_over_tcp(shared):
    """Over CURVE the rest of protocol v1 holds: a replayed message is dropped, a limit names its field, a running
    job is cancelled, and a job re-submitted on a new connection (same session, same job id) re-attaches."""
    conn = invite(shared, "v1")
    peer = RawPeer(conn)
    try:
        frames = peer.send(peer.header("status"))
        before = peer.recv_until(lambda h: h["type"] == "status.reply", 10)[0]["dropped_messages"]
        peer.send_frames(frames)                                          # the very same signed frames again
        assert peer.recv(1.0) is None
        peer.send(peer.header("status"))
        assert peer.recv_until(lambda h: h["type"] == "status.reply", 10)[0]["dropped_messages"] == before + 1
        assert "replayed message" in shared.log_text()

        peer.send(peer.header("stylize", job_id="v1-big", layer=P.pixels_field(9000, 9000, "rgba8", 0),
                              styles=[{"pixels": P.pixels_field(32, 32, "rgba8", 1)}]),
                  [bytes(16), rgba(32, 32, 80).tobytes()])
        err = peer.recv_until(terminal_for("v1-big"), 10)[0]
        assert (err["type"], err["code"], err["field"]) == ("error", "too_large", "layer"), err
        assert "limit is" in err["message"]

        raw_stylize(peer, "v1-cancel", rgba(*BLOCKER, 81), rgba(32, 32, 82))
        assert peer.recv_until(lambda h: h["type"] == "progress" and h.get("job_id") == "v1-cancel", 60)
        peer.send(peer.header("cancel", job_id="v1-cancel"))
        assert peer.recv_until(lambda h: h["type"] == "cancel.reply", 10)[0]["state"] == "cancelling"
        h, _ = peer.recv_until(terminal_for("v1-cancel"), 60)
        assert (h["type"], h["code"]) == ("error", "cancelled"), h

        peer.send(peer.header("status"))
        st = peer.recv_until(lambda h: h["type"] == "status.reply", 10)[0]
        done_before = next(c["done"] for c in st["clients"] if c["name"] == "v1")
        content, style = rgba(*BLOCKER, 83), rgba(32, 32, 84)
        raw_stylize(peer, "v1-again", content, style)
        assert peer.recv_until(lambda h: h["type"] == "progress" and h.get("job_id") == "v1-again", 60)
        session = peer.session
    finally:
        peer.close()                                                      # the connection is gone mid-job
    again = RawPeer(conn)                                                 # a new connection: new routing id, port
    try:
        again.session = session
        raw_stylize(again, "v1-again", content, style)                    # the client's retry of the same job
        acc = again.recv_until(lambda h: h.get("job_id") == "v1-again" and h["type"] in ("accepted", "result"), 30)
        assert acc is not None
        if acc[0]["type"] == "accepted":                                  # still running: re-attached to it
            assert acc[0]["reattached"] is True, acc[0]
            h, bufs = again.recv_until(terminal_for("v1-again"), 120)
        else:                                                             # it finished meanwhile: the held result
            h, bufs = acc
            assert h.get("resent") is True, h
        assert h["type"] == "result", h
        assert len(bufs[0]) == content.nbytes
        again.send(again.header("status"))
        st = again.recv_until(lambda h: h["type"] == "status.reply", 10)[0]
        assert [c["done"] for c in st["clients"] if c["name"] == "v1"] == [done_before + 1]   # once, not twice
    finally:
        again.close()


def test_a_silent_remote_client_loses_its_job_with_the_lease(tmp_path, synthetic_weights):
    with running_sanetd(tmp_path, synthetic_weights, "--listen", "tcp://127.0.0.1:*", "--lease", "1") as d:
        peer = RawPeer(invite(d, "quiet"))
        try:
            raw_stylize(peer, "q1", rgba(1024, 1024, 90), rgba(32, 32, 91))
            assert peer.recv_until(lambda h: h["type"] == "progress" and h.get("job_id") == "q1", 60)
        finally:
            peer.close()                                                  # gone without a word, no heartbeats
        with Client(connection_file=d.connection_file, timeout=30) as c:
            assert not wait_until_idle(c, 30)
        log = d.log_text()
        assert "silent for more than 1 s" in log and "cancelled (lease_expired)" in log


# ------------------------------------------------------------------------------------------ compression

def test_compression_is_negotiated_only_over_the_network(shared):
    conn = invite(shared, "zip")
    peer = RawPeer(conn)
    local = RawPeer(shared.connection_file)
    try:
        peer.send(peer.header("hello", compression=["zlib"]))           # a client without zstd
        assert peer.recv_until(lambda h: h["type"] == "hello.reply", 10)[0]["compression"] == "zlib"
        peer.send(peer.header("hello", compression=["brotli"]))         # nothing in common: uncompressed
        assert "compression" not in peer.recv_until(lambda h: h["type"] == "hello.reply", 10)[0]
        # a smooth layer, compressed on the way in (zlib) and out (the session's codec), comes back bit-exact
        y, x = np.mgrid[0:256, 0:320]
        content = np.stack([x % 256, y % 256, (x + y) % 256, np.full_like(x, 255)], -1).astype(np.uint16) * 257
        peer.send(peer.header("hello", compression=["zlib"]))
        peer.recv_until(lambda h: h["type"] == "hello.reply", 10)
        header = peer.header("stylize", job_id="z1", layer=P.pixels_field(320, 256, "rgba16", 0),
                             styles=[{"pixels": P.pixels_field(16, 16, "rgba8", 1)}],
                             selection=P.pixels_field(320, 256, "u8", 2, 0, 0))
        frames = P.build_message(peer.key, header, [content.tobytes(), rgba(16, 16, 6).tobytes(),
                                                    bytes(320 * 256)], codec="zlib")
        assert P.unpack_header(frames[1], 1 << 20)["compressed"]["codec"] == "zlib"
        assert len(frames[2]) < content.nbytes * P.COMPRESS_MAX_RATIO
        peer.send_frames(frames)
        h, bufs = peer.recv_until(terminal_for("z1"), 60)
        assert h["type"] == "result" and h["compressed"]["codec"] == "zlib"
        assert np.array_equal(np.frombuffer(bufs[0], np.uint16).reshape(content.shape), content)
        # compressed frames over the local endpoint are refused, naming the field
        local.send_frames(P.build_message(local.key, local.header("stylize", job_id="z2",
                                                                     layer=P.pixels_field(320, 256, "rgba16", 0),
                                                                     styles=[{"pixels": P.pixels_field(16, 16, "rgba8",
                                                                                                       1)}]),
                                          [content.tobytes(), rgba(16, 16, 6).tobytes()], codec="zlib"))
        err = local.recv_until(lambda h: h["type"] == "error", 10)[0]
        assert err["code"] == "bad_request" and err["field"] == "compressed"
    finally:
        peer.close()
        local.close()


# ------------------------------------------------------------------------------------------ several devices

def test_two_cpu_devices_share_one_queue_and_every_job_gets_its_own_result(tmp_path, synthetic_weights):
    with running_sanetd(tmp_path, synthetic_weights, "--device", "cpu,cpu", "--listen", "tcp://127.0.0.1:*") as d:
        files = [invite(d, f"dev{i}") for i in range(2)] + [d.connection_file]
        with Client(connection_file=d.connection_file, timeout=30) as c:
            st = c.status()
            assert [x["index"] for x in st["devices"]] == [0, 1]
            assert all(x["device"] == "cpu" and x["state"] == "idle" and x["memory"] is None for x in st["devices"])
            assert c.hello()["devices"] == ["cpu", "cpu"]
        results, failures, lock = {}, [], threading.Lock()
        sel = np.zeros((48, 64), np.uint8)
        sel[8:40, 8:56] = 255
        contents = {f"j{k}": rgba(64, 48, 600 + (k % 5)) for k in range(12)}   # repeats: same input, same output

        def run(file, jobs):
            try:
                with Client(connection_file=file, timeout=60) as cl:
                    for j in jobs:
                        r = cl.stylize(layer_of(contents[j]), [style_of(rgba(32, 32, 7))],
                                       selection=Mask(64, 48, "u8", sel.tobytes()), job_id=j)
                        with lock:
                            results[j] = r
            except Exception as exc:  # noqa: BLE001  asserted below
                with lock:
                    failures.append(repr(exc))
        threads = []
        for t in range(4):   # four concurrent clients (two invited, the local one twice) on two devices
            jobs = [f"j{k}" for k in range(t, 12, 4)]
            threads.append(threading.Thread(target=run, args=(files[t % 3], jobs)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not failures, failures
        assert sorted(results) == sorted(contents)
        outputs = {}
        for j, r in results.items():
            got = array_of(r, np.uint8)
            assert np.array_equal(got[sel == 0], contents[j][sel == 0]), j     # its own layer, nobody else's
            assert not np.array_equal(got[sel > 0], contents[j][sel > 0]), j
            outputs.setdefault(contents[j].tobytes(), []).append((r.info["worker"], got))
        assert {r.info["worker"] for r in results.values()} == {0, 1}           # both devices took jobs
        for same in outputs.values():                                           # each worker's own model copy
            assert all(np.array_equal(same[0][1], g) for _, g in same)
        assert sorted(r.info["sequence"] for r in results.values()) == list(range(1, 13))
        with Client(connection_file=d.connection_file, timeout=30) as c:
            st = c.status()
            assert sum(x["jobs_done"] for x in st["devices"]) == 12 and st["jobs_done"] == 12


def test_device_lists_are_checked(tmp_path):
    from sanetd.config import ConfigError, load_settings
    env = {"SANETD_CONFIG": str(tmp_path / "none.conf")}
    assert load_settings(["--device", "cpu,cpu"], env).device == "cpu,cpu"
    with pytest.raises(ConfigError, match="'gpu' is not a device"):
        load_settings(["--device", "cpu,gpu"], env)
    with pytest.raises(ConfigError, match="expected tcp://HOST:PORT"):
        load_settings([], {**env, "SANETD_LISTEN": "udp://0.0.0.0:1"})
    r = subprocess.run([sys.executable, "-m", "sanetd", "--device", "cuda:all"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "daemon"), str(ROOT / "plugins"),
                                                                         str(ROOT)]),
                            "SANETD_CONFIG": env["SANETD_CONFIG"], "SANETD_RUNTIME_DIR": str(tmp_path / "run"),
                            "SANETD_LOG_DIR": str(tmp_path / "log")}, timeout=120)
    if not __import__("torch").cuda.is_available():
        assert r.returncode == 2 and "cuda:all" in r.stderr and "no CUDA GPU" in r.stderr


def test_listen_comes_from_the_config_file_the_environment_or_the_command_line(tmp_path, monkeypatch):
    from sanetd.config import ConfigError, load_settings
    conf = tmp_path / "sanetd.conf"
    conf.write_text("[sanetd]\nlisten = tcp://0.0.0.0:5555\nmax_queued = 3\ndevice = cpu,cpu\n")
    monkeypatch.setenv("SANETD_CONFIG", str(conf))
    s = load_settings([], {})
    assert (s.listen, s.max_queued, s.device) == ("tcp://0.0.0.0:5555", 3, "cpu,cpu")
    assert load_settings([], {"SANETD_LISTEN": "tcp://10.0.0.2:6000"}).listen == "tcp://10.0.0.2:6000"
    assert load_settings(["--listen", "tcp://127.0.0.1:7000"],
                         {"SANETD_LISTEN": "tcp://10.0.0.2:6000"}).listen == "tcp://127.0.0.1:7000"
    conf.write_text("[sanetd]\nlisten = ipc:///tmp/x\n")
    with pytest.raises(ConfigError, match=r"config file .*sanetd.conf: listen = 'ipc:///tmp/x'; expected tcp://"):
        load_settings([], {})


# ------------------------------------------------------------------------------------------ a dying server

def test_kill_9_during_a_remote_job_then_a_clean_reconnect_after_restart(tmp_path, synthetic_weights):
    from sanetd_process import start_sanetd, wait_ready
    d = start_sanetd(tmp_path, synthetic_weights, "--listen", "tcp://127.0.0.1:*", "--lease", "15")
    wait_ready(d)
    endpoint = read_connection_file(d.connection_file).listen
    conn = invite(d, "frank")
    outcome, started = {}, threading.Event()
    client = Client(connection_file=conn, timeout=5, retries=2)
    try:
        def run():
            try:
                client.stylize(layer_of(rgba(1024, 1024, 70)), [style_of(rgba(32, 32, 71))],
                               on_progress=lambda f, s: started.set())
            except Exception as exc:  # noqa: BLE001
                outcome["error"] = exc
            outcome["at"] = time.monotonic()
        t = threading.Thread(target=run)
        t.start()
        assert started.wait(120)
        d.kill()
        killed = time.monotonic()
        d.proc.wait(10)
        t.join(60)
        assert isinstance(outcome.get("error"), DaemonNotRunning), outcome
        assert "lost the connection to the shared sanetd at " + endpoint in str(outcome["error"])
        assert outcome["at"] - killed < 15, "the client must know within the lease (15 s)"
        # the server comes back on the same address with the same keys: the same file, even the same Client, works
        d2 = start_sanetd(tmp_path, synthetic_weights, "--listen", endpoint)
        try:
            wait_ready(d2)
            r = client.stylize(layer_of(rgba(64, 48, 72)), [style_of(rgba(32, 32, 73))])
            assert (r.width, r.height) == (64, 48)
            assert client.hello()["client"] == "frank"
        finally:
            assert d2.stop() == 0
    finally:
        client.close()
