"""A client written from docs/protocol.md alone, walking the documented behaviours against a real sanetd.

Nothing here imports sanet_client: the connection file is read as JSON (section 1), messages are framed, signed and
packed as sections 3-5 say (msgpack and HMAC from the standard libraries), and every behaviour checked is first
looked up in the document, so that the document and the daemon cannot drift apart unnoticed.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import struct
import time
import uuid
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from sanetd_process import running_sanetd, start_sanetd, wait_ready

DOC = re.sub(r"\s+", " ", (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text())
CHUNK = 4 * 1024 * 1024          # section 4


def doc_says(*phrases: str) -> None:
    """The behaviour a test checks must be written in the document (whitespace-normalised)."""
    for p in phrases:
        assert re.sub(r"\s+", " ", p) in DOC, f"docs/protocol.md does not say: {p!r}"


# ------------------------------------------------------------------------------------------------ the doc client

def digest(buf: bytes) -> bytes:
    """Section 4: SHA-256 over the SHA-256 digests of the 4 MiB chunks; no chunk for an empty buffer."""
    parts = [hashlib.sha256(buf[i:i + CHUNK]).digest() for i in range(0, len(buf), CHUNK)]
    return hashlib.sha256(b"".join(parts)).digest()


def signature(key: bytes, header: bytes, buffers) -> bytes:
    mac = hmac.new(key, struct.pack(">Q", len(header)) + header, hashlib.sha256)
    for b in buffers:
        mac.update(digest(bytes(b)))
    return mac.hexdigest().encode("ascii")


def pixels(width, height, fmt, buf, **extra):
    return {"width": width, "height": height, "format": fmt, "buf": buf, **extra}


def gone(info: dict) -> bool:
    """Section 1: is the daemon process of this connection file gone?"""
    pid = info["pid"]
    if info.get("pid_namespace") is not None and os.stat("/proc/self/ns/pid").st_ino != info["pid_namespace"]:
        return False   # cannot judge from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        fields = open(f"/proc/{pid}/stat", "rb").read().rsplit(b")", 1)[1].split()
    except OSError:
        return True
    return fields[0] in (b"Z", b"X") or (info.get("pid_start") is not None and int(fields[19]) != info["pid_start"])


class DocPeer:
    def __init__(self, connection_file: Path, session: str | None = None, monitor: bool = False):
        self.info = json.loads(Path(connection_file).read_text(encoding="utf-8"))
        assert self.info["protocol"] == 1 and self.info["signature_scheme"] == "hmac-sha256"
        assert re.fullmatch(r"[0-9a-f]{64}", self.info["key"])
        self.key = bytes.fromhex(self.info["key"])
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.monitor = self.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED) if monitor else None
        self.sock.connect(self.info["endpoint"])
        self.session = session or uuid.uuid4().hex
        self.seen: list = []

    def send(self, kind: str, buffers=(), **fields) -> dict:
        header = {"v": 1, "type": kind, "msg_id": uuid.uuid4().hex, "time": time.time(), "session": self.session,
                  **fields}
        self.send_raw(msgpack.packb(header, use_bin_type=True), buffers)
        return header

    def send_raw(self, raw: bytes, buffers=()) -> None:
        self.sock.send_multipart([signature(self.key, raw, buffers), raw, *buffers])

    def recv(self, timeout: float):
        if not self.sock.poll(int(timeout * 1000)):
            return None
        frames = self.sock.recv_multipart()
        sig, raw, buffers = frames[0], frames[1], frames[2:]
        assert hmac.compare_digest(sig, signature(self.key, raw, buffers)), "the daemon's signature does not verify"
        header = msgpack.unpackb(raw, raw=False)
        assert header["v"] == 1 and abs(header["time"] - time.time()) < 300
        return header, buffers

    def until(self, pred, timeout: float = 60.0):
        for i, got in enumerate(self.seen):
            if pred(got[0]):
                return self.seen.pop(i)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.recv(end - time.monotonic())
            if got is None:
                return None
            if pred(got[0]):
                return got
            self.seen.append(got)
        return None

    def request(self, kind: str, buffers=(), timeout: float = 30.0, **fields):
        h = self.send(kind, buffers, **fields)
        return self.until(lambda e: e.get("reply_to") == h["msg_id"], timeout)

    def close(self):
        if self.monitor is not None:
            self.sock.disable_monitor()
            self.monitor.close(0)
        self.sock.close(0)
        self.ctx.term()


def rgba8(w, h, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8).tobytes()


def stylize(peer: DocPeer, job_id: str, w=32, h=24, extra_buffers=(), **fields):
    buffers = [rgba8(w, h, 1), rgba8(32, 32, 2), *extra_buffers]
    body = {"job_id": job_id, "layer": pixels(w, h, "rgba8", 0), "styles": [{"pixels": pixels(32, 32, "rgba8", 1)}]}
    body.update(fields)
    return peer.send("stylize", buffers, **body)


def terminal(job_id):
    return lambda e: e.get("job_id") == job_id and e["type"] in ("result", "error")


@pytest.fixture
def peer(daemon):
    p = DocPeer(daemon.connection_file)
    yield p
    p.close()


# ------------------------------------------------------------------------------------------------ the walk

def test_hello_advertises_the_documented_limits_and_defaults(peer):
    doc_says("`max_pixels` | 67,108,864", "`max_side` | 32768", "`max_styles` | 8", "`max_header_bytes` | 65,536",
             "`max_frames` | 29", "`style_max_side` ([64, 8192])", "`scsa_weight_max` (10)", "`max_palette` (64)",
             "`alpha` 1.0, `style_max_side` 1024, `preview_long_side` 512, `scsa_weights` [0.7, 0.3], `weight` 1.0",
             '`"raw"` = the `raw` field of `stylize`')
    h, _ = peer.request("hello", client="doc-client")
    assert h["type"] == "hello.reply" and h["protocol"] == 1 and h["protocols"] == [1]
    assert {"scsa", "raw"} <= set(h["features"])
    lim = h["limits"]
    assert (lim["max_pixels"], lim["max_side"], lim["max_styles"], lim["max_header_bytes"], lim["max_frames"]) == \
        (67108864, 32768, 8, 65536, 29)
    assert lim["max_frame_bytes"] == lim["max_pixels"] * 16 + (1 << 20)
    assert lim["style_max_side"] == [64, 8192] and lim["scsa_weight_max"] == 10 and lim["max_palette"] == 64
    d = h["defaults"]
    assert (d["alpha"], d["style_max_side"], d["preview_long_side"], d["scsa_weights"], d["weight"]) == \
        (1.0, 1024, 512, [0.7, 0.3], 1.0)
    assert d["precision"] == h["precision"]


def test_a_job_from_accepted_to_result_and_its_resubmission(peer):
    doc_says("`reattached` (always present: true when this was a resubmission of a known, unfinished job id, "
             "else false)", 'a job that succeeds sends `fraction` 1.0, stage "done" before its `result`',
             "`resent: true`")
    sent = stylize(peer, "j1", alpha=0.8)
    acc, _ = peer.until(lambda e: e.get("reply_to") == sent["msg_id"])
    assert acc["type"] == "accepted" and acc["job_id"] == "j1" and acc["reattached"] is False
    assert isinstance(acc["position"], int)
    res, bufs = peer.until(terminal("j1"))
    assert res["type"] == "result", res
    assert res["layer"] == pixels(32, 24, "rgba8", 0) and len(bufs) == 1 and len(bufs[0]) == 32 * 24 * 4
    progress = [e for e, _ in peer.seen if e["type"] == "progress" and e["job_id"] == "j1"]
    fractions = [e["fraction"] for e in progress]
    assert fractions == sorted(fractions) and progress[-1]["fraction"] == 1.0 and progress[-1]["stage"] == "done"
    again = stylize(peer, "j1")
    res2, bufs2 = peer.until(lambda e: e.get("reply_to") == again["msg_id"])
    assert res2["type"] == "result" and res2.get("resent") is True and bufs2[0] == bufs[0]


def test_raw_results_are_unclamped_float_rgb(peer):
    doc_says("`rgbf32` (results only) = 3 × float32 (R, G, B), unclamped, no alpha")
    stylize(peer, "raw1", raw=True)
    res, bufs = peer.until(terminal("raw1"))
    assert res["type"] == "result" and res["layer"] == pixels(32, 24, "rgbf32", 0)
    raw = np.frombuffer(bufs[0], "<f4")
    assert raw.size == 32 * 24 * 3 and np.isfinite(raw).all()


def test_models_the_daemon_lacks_are_refused_with_the_missing_files(peer):
    """This module's daemon has SANet's files only (section 6b)."""
    doc_says('`"models"` = the `model` and `style_keys` fields, section 6b', "`model` \"sanet\", `style_keys` "
             '"sampled"', "`hello.reply` `models` lists the models whose files are all in the weights folder",
             "A model whose files are not all there is refused at once with `error` code `model_unavailable`, "
             "`field` `\"model\"`, a message naming the missing files and the folder, and `missing`",
             "Another string is `bad_request`, field `model`")
    h, _ = peer.request("hello")
    assert "models" in h["features"] and (h["defaults"]["model"], h["defaults"]["style_keys"]) == ("sanet", "sampled")
    assert [m["name"] for m in h["models"]] == ["sanet"] and h["models"][0]["loaded"] is True
    sent = stylize(peer, "ada1", model="adaattn", style_keys="all")
    err, _ = peer.until(lambda e: e.get("reply_to") == sent["msg_id"])
    assert err["type"] == "error" and err["code"] == "model_unavailable" and err["field"] == "model"
    assert err["missing"] == ["latest_net_transformer.pth", "latest_net_decoder.pth", "latest_net_adaattn_3.pth"]
    assert all(name in err["message"] for name in err["missing"]) and err["job_id"] == "ada1"
    sent = stylize(peer, "ada2", model="AdaAttN")
    err, _ = peer.until(lambda e: e.get("reply_to") == sent["msg_id"])
    assert err["code"] == "bad_request" and err["field"] == "model"
    stylize(peer, "sanet1", model="sanet", style_keys="all")      # SANet ignores style_keys
    res, _ = peer.until(terminal("sanet1"))
    assert res["type"] == "result" and res["info"]["model"] == "sanet"
    # model variants: written as the doc writes them, not installed here
    doc_says("A value that is neither a model nor `MODEL:NAME` with such a name is `bad_request`, field `model`; a "
             "well-formed variant that is not installed is `model_unavailable`",
             "`missing` lists the variant's files (`variants/<model>/<NAME>/variant.json` and its checkpoint files)",
             "`base` (the model it is: `\"sanet\"` or `\"adaattn\"`; a model's own name for the models themselves)")
    assert h["models"][0]["base"] == "sanet" and h["models"][0]["display"] == "SANet"
    for job, bad in (("var1", "sanet:My Style"), ("var2", "sanet:-x"), ("var3", "adain:ink")):
        sent = stylize(peer, job, model=bad)
        err, _ = peer.until(lambda e: e.get("reply_to") == sent["msg_id"])
        assert err["code"] == "bad_request" and err["field"] == "model", err
    sent = stylize(peer, "var4", model="sanet:my-style")
    err, _ = peer.until(lambda e: e.get("reply_to") == sent["msg_id"])
    assert err["code"] == "model_unavailable" and err["field"] == "model"
    assert err["missing"] == ["variants/sanet/my-style/variant.json", "variants/sanet/my-style/decoder_iter_500000.pth",
                              "variants/sanet/my-style/transformer_iter_500000.pth"]


@pytest.mark.parametrize("side", [0, -3])
def test_sizes_of_zero_or_less_are_bad_request(peer, side):
    doc_says("A side of 0 or less is `bad_request`; over `max_side`, or over `max_pixels` in all, is `too_large`",
             "always `protocols` (list of versions the daemon speaks)")
    sent = peer.send("stylize", [b""], job_id="z", layer=pixels(side, 24, "rgba8", 0),
                     styles=[{"id": "0000000000000000"}])
    err, _ = peer.until(lambda e: e.get("reply_to") == sent["msg_id"])
    assert (err["type"], err["code"], err["field"], err["protocols"]) == ("error", "bad_request", "layer.width", [1])
    sent = peer.send("stylize", [b""], job_id="z", layer=pixels(40000, 24, "rgba8", 0),
                     styles=[{"id": "0000000000000000"}])
    err, _ = peer.until(lambda e: e.get("reply_to") == sent["msg_id"])
    assert (err["code"], err["field"]) == ("too_large", "layer.width")


def test_an_unreferenced_buffer_is_named(peer):
    doc_says("a buffer that no `buf` names is `bad_request` with `field` = `buffers[i]`")
    sent = stylize(peer, "extra", extra_buffers=[b"\0" * 16])
    err, _ = peer.until(lambda e: e.get("reply_to") == sent["msg_id"])
    assert (err["type"], err["code"], err["field"], err["protocols"]) == ("error", "bad_request", "buffers[2]", [1])


def test_an_oversized_header_is_dropped_unanswered(peer):
    doc_says("a header frame over `max_header_bytes`", "larger header frames are dropped unanswered (no `error`")
    before = peer.request("status")[0]["dropped_messages"]
    big = {"v": 1, "type": "ping", "msg_id": "big", "time": time.time(), "session": peer.session,
           "pad": "x" * 70000}
    peer.send_raw(msgpack.packb(big, use_bin_type=True))
    assert peer.until(lambda e: e.get("reply_to") == "big", timeout=2.0) is None
    assert peer.request("status")[0]["dropped_messages"] == before + 1


def test_job_errors_carry_protocols(peer):
    doc_says("on job errors too (`cancelled`, `shutting_down`, `invalid_input`, ...)")
    doc_says("A precision not in hello's `capabilities.precisions` (fp16 on a CPU, bf16 on a CPU without bf16 units) "
             "is refused at once: `invalid_input`, field `precision`")
    stylize(peer, "fp16", precision="fp16")                 # refused up front: no fp16 on a CPU daemon
    err, _ = peer.until(terminal("fp16"))
    assert (err["type"], err["code"], err["protocols"], err["field"]) == ("error", "invalid_input", [1], "precision")
    # a waiting job cancelled by the I/O thread
    w, h = 768, 768
    stylize(peer, "long", w, h)
    stylize(peer, "waiting")
    acc, _ = peer.until(lambda e: e["type"] == "accepted" and e["job_id"] == "waiting")
    if acc["position"] > 0:
        rep, _ = peer.request("cancel", job_id="waiting")
        assert rep["state"] == "cancelled"
        err, _ = peer.until(terminal("waiting"))
        assert (err["code"], err["protocols"]) == ("cancelled", [1])
    peer.until(terminal("long"), timeout=300)


def test_events_follow_the_most_recent_socket_of_a_session(daemon):
    doc_says("the routing id of the latest message of that session that passed the signature checks")
    a = DocPeer(daemon.connection_file)
    b = DocPeer(daemon.connection_file, session=a.session)
    try:
        stylize(a, "moved", 640, 640)
        assert a.until(lambda e: e["type"] == "accepted" and e["job_id"] == "moved")
        b.request("ping")                                    # the session's most recent socket is now b's
        res = b.until(terminal("moved"), timeout=300)
        assert res is not None and res[0]["type"] == "result"
        assert a.until(terminal("moved"), timeout=1.0) is None
    finally:
        a.close()
        b.close()


def test_f32_mask_values_outside_0_1_are_clamped(peer):
    doc_says("NaN counts as 0, +inf as 1, −inf as 0, and any other value outside 0..1 is clamped to it")
    wild = np.linspace(-1.0, 2.0, 32 * 24, dtype=np.float32).reshape(24, 32)
    wild[0, :4] = [np.nan, np.inf, -np.inf, 7.0]
    clamped = np.clip(np.nan_to_num(wild, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0).astype(np.float32)
    outs = []
    for job, mask in (("wild", wild), ("clamped", clamped)):
        stylize(peer, job, extra_buffers=[mask.astype("<f4").tobytes()], selection=pixels(32, 24, "f32", 2, x=0, y=0))
        res, bufs = peer.until(terminal(job))
        assert res["type"] == "result", res
        outs.append(bufs[0])
    assert outs[0] == outs[1]


def test_connection_file_elsewhere_takes_its_lock_and_socket_along(tmp_path, synthetic_weights):
    doc_says("the daemon writes `/dir/NAME.json`, takes its lock on `/dir/NAME.lock` and listens on "
             "`ipc:///dir/NAME.sock`")
    where = tmp_path / "elsewhere"
    conn = where / "mine.json"
    with running_sanetd(tmp_path, synthetic_weights, connection_file=conn) as d:
        info = json.loads(conn.read_text())
        assert info["endpoint"] == f"ipc://{where / 'mine.sock'}" and (where / "mine.lock").is_file()
        assert not (d.runtime_dir / "sanetd.json").exists() and not (d.runtime_dir / "sanetd.sock").exists()
        p = DocPeer(conn)
        try:
            assert p.request("ping")[0]["type"] == "pong"
        finally:
            p.close()
    assert not conn.exists() and not (where / "mine.sock").exists()


def test_a_daemon_that_dies_mid_job_is_seen_at_once(tmp_path, synthetic_weights):
    doc_says("The client sees no terminal event at all", "`ZMQ_EVENT_DISCONNECTED`",
             "`kill(pid, 0)` with the rules of section 1")
    d = start_sanetd(tmp_path, synthetic_weights)
    wait_ready(d)
    p = DocPeer(d.connection_file, monitor=True)
    try:
        stylize(p, "doomed", 1024, 1024)
        assert p.until(lambda e: e["type"] == "progress" and e["job_id"] == "doomed", timeout=120)
        assert not gone(p.info)
        d.kill(signal.SIGKILL)
        killed = time.monotonic()
        assert p.monitor.poll(30_000), "no disconnect event from the socket monitor"
        event = recv_monitor_message(p.monitor)
        assert event["event"] == zmq.EVENT_DISCONNECTED
        deadline = time.monotonic() + 10
        while not gone(p.info) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(p.info)
        assert time.monotonic() - killed < 30   # not the request timeout: the two signals above decided
        assert p.until(terminal("doomed"), timeout=0.5) is None
    finally:
        p.close()
        d.proc.wait(10)


def test_shutdown_errors_carry_protocols(tmp_path, synthetic_weights):
    doc_says("ends waiting jobs and cancels the running one (each gets `error` `shutting_down`)")
    d = start_sanetd(tmp_path, synthetic_weights)
    wait_ready(d)
    p = DocPeer(d.connection_file)
    try:
        stylize(p, "running", 1024, 1024)
        stylize(p, "queued")
        assert p.until(lambda e: e["type"] == "progress" and e["job_id"] == "running", timeout=120)
        d.proc.send_signal(signal.SIGTERM)
        for job in ("queued", "running"):
            got = p.until(terminal(job), timeout=30)
            assert got is not None, job
            if got[0]["type"] == "error":
                assert (got[0]["code"], got[0]["protocols"]) == ("shutting_down", [1])
        assert d.proc.wait(15) == 0
    finally:
        p.close()
        if d.proc.poll() is None:
            d.proc.kill()


def test_this_module_implements_the_wire_format_itself():
    """No import of sanet_client (or sanetd) here: only the document, msgpack, zmq and the standard library."""
    import ast
    tree = ast.parse(Path(__file__).read_text())
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for n in names:
            assert n.split(".")[0] not in ("sanet_client", "sanetd", "sanet", "daemon_kit"), n
