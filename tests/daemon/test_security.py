"""Authentication and limits against a live daemon: wrong key, flipped byte, replay, unsigned, oversize."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from daemon_kit import RawPeer, raw_stylize, rgba
from sanet_client import Client, ProtocolMismatch
from sanet_client import protocol as P
from sanetd_process import running_sanetd


@pytest.fixture
def peer(daemon):
    p = RawPeer(daemon.connection_file)
    yield p
    p.close()


def dropped(daemon) -> int:
    with Client(connection_file=daemon.connection_file) as c:
        return c.status()["dropped_messages"]


def test_wrong_key_gets_nothing(daemon):
    before = dropped(daemon)
    intruder = RawPeer(daemon.connection_file, key=os.urandom(32))
    try:
        intruder.send(intruder.header("hello"))
        raw_stylize(intruder, "evil-1", rgba(32, 24, 60), rgba(32, 32, 61))
        assert intruder.recv(1.0) is None
    finally:
        intruder.close()
    assert dropped(daemon) == before + 2
    assert "bad signature" in daemon.log_text()


def test_flipped_pixel_byte_is_rejected(daemon, peer):
    content, style = rgba(32, 24, 62), rgba(32, 32, 63)
    header = peer.header("stylize", job_id="flip-1", layer=P.pixels_field(32, 24, "rgba8", 0),
                         styles=[{"pixels": P.pixels_field(32, 32, "rgba8", 1)}])
    frames = P.build_message(peer.key, header, [content.tobytes(), style.tobytes()])
    tampered = bytearray(frames[2])
    tampered[1234] ^= 0x01
    peer.send_frames([frames[0], frames[1], bytes(tampered), frames[3]])
    assert peer.recv(1.0) is None
    peer.send_frames(frames)                    # the untampered message is accepted
    assert peer.recv_until(lambda h: h["type"] == "accepted", 10) is not None
    assert peer.recv_until(lambda h: h["type"] == "result", 60) is not None


def test_replayed_message_is_dropped(daemon, peer):
    frames = peer.send(peer.header("hello"))
    assert peer.recv(10)[0]["type"] == "hello.reply"
    before = dropped(daemon)
    peer.send_frames(frames)
    assert peer.recv(1.0) is None
    assert dropped(daemon) == before + 1
    assert "replayed message" in daemon.log_text()


def test_unsigned_and_malformed_framing_are_dropped(daemon, peer):
    header = P.pack_header(peer.header("hello"))
    peer.send_frames([b"", header])                       # unsigned
    peer.send_frames([b"x" * 64])                         # no header
    peer.send_frames([b"0" * 64, header] + [b"x"] * 40)   # too many frames
    assert peer.recv(1.0) is None
    peer.send(peer.header("hello"))
    assert peer.recv(10)[0]["type"] == "hello.reply"


def test_stale_and_future_times_are_refused(peer):
    h = peer.header("hello")
    h["time"] -= 3600
    peer.send(h)
    got = peer.recv(10)[0]
    assert (got["type"], got["code"], got["field"]) == ("error", "stale_message", "time")
    assert got["reply_to"] == h["msg_id"]


def test_version_mismatch_is_a_clear_error(daemon, peer, tmp_path):
    h = peer.header("hello")
    h["v"] = 2
    peer.send(h)
    got = peer.recv(10)[0]
    assert (got["code"], got["field"], got["protocols"]) == ("version_mismatch", "v", [1])
    assert "version 2 is not supported" in got["message"]
    import json
    data = json.loads(daemon.connection_file.read_text())
    fake = tmp_path / "future.json"
    fake.write_text(json.dumps(dict(data, protocol=2)))
    with pytest.raises(ProtocolMismatch, match="protocol version 2"):
        Client(connection_file=fake).hello()


def test_limits_name_the_field_and_the_limit(peer):
    style = [{"pixels": P.pixels_field(32, 32, "rgba8", 0)}]
    cases = [
        ({"layer": P.pixels_field(9000, 9000, "rgba8", 1)}, "too_large", "layer", "limit is 67108864"),
        ({"layer": P.pixels_field(32, 24, "rgba9", 1)}, "bad_request", "layer.format", "rgba8, rgba16, rgbaf32"),
        ({"layer": P.pixels_field(32, 25, "rgba8", 1)}, "bad_request", "layer", "needs 3200"),
        ({"layer": P.pixels_field(32, 24, "rgba8", 1), "alpha": "much"}, "bad_request", "alpha", "must be a number"),
        ({"layer": P.pixels_field(32, 24, "rgba8", 1), "styles": style * 9}, "too_large", "styles", "limit is 8"),
        ({"layer": P.pixels_field(32, 24, "rgba8", 1), "style_max_side": 10}, "bad_request", "style_max_side", "64..8192"),
    ]
    for i, (fields, code, field, words) in enumerate(cases):
        base = {"job_id": f"lim-{i}", "styles": style}
        base.update(fields)
        peer.send(peer.header("stylize", **base), [np.zeros(32 * 32 * 4, np.uint8).tobytes(),
                                                   np.zeros(32 * 24 * 4, np.uint8).tobytes()])
        got = peer.recv(10)[0]
        assert (got["type"], got["code"], got["field"]) == ("error", code, field), got
        assert words in got["message"], got["message"]
        assert got["job_id"] == f"lim-{i}"


def _rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_oversized_frame_is_rejected_without_memory_growth(tmp_path, synthetic_weights):
    with running_sanetd(tmp_path, synthetic_weights, "--max-pixels", "4096") as d:
        with Client(connection_file=d.connection_file) as c:
            limit = c.hello()["limits"]["max_frame_bytes"]
        assert limit == 4096 * 16 + (1 << 20)
        before = _rss_kib(d.proc.pid)
        big = bytes(64 << 20)
        for _ in range(4):
            p = RawPeer(d.connection_file)
            h = p.header("stylize", job_id="big", layer=P.pixels_field(4096, 4096, "rgba8", 0),
                         styles=[{"pixels": P.pixels_field(1, 1, "rgba8", 1)}])
            p.send(h, [big, bytes(4)])
            assert p.recv(1.0) is None          # libzmq drops the peer before allocating the frame
            p.close()
        time.sleep(0.5)
        growth_mib = (_rss_kib(d.proc.pid) - before) / 1024
        assert growth_mib < 32, f"RSS grew by {growth_mib:.1f} MiB"
        with Client(connection_file=d.connection_file) as c:
            assert c.hello()["protocol"] == 1
