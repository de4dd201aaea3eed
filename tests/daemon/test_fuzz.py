"""Malformed input never escapes the decoder/validator, and never takes the live daemon down.

In-process (Hypothesis): 4 x 2,600 = 10,400 generated messages through the same Authenticator and validator the
daemon uses; only AuthError (drop) and ProtocolError (answer) may come out. Live: a few thousand real
malformed multipart messages to a running sanetd, which must still answer hello.
"""
from __future__ import annotations

import random

import msgpack
from hypothesis import HealthCheck, given, settings, strategies as st

from daemon_kit import RawPeer
from sanet_client import Client
from sanet_client import protocol as P

KEY = bytes(range(32))
LIMITS = P.Limits(max_pixels=4096)
FUZZ = settings(max_examples=2600, deadline=None, suppress_health_check=list(HealthCheck), database=None)

scalars = st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=20) \
    | st.binary(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=25)
FIELDS = ["v", "type", "msg_id", "session", "time", "job_id", "layer", "selection", "styles", "alpha",
          "preserve_color", "preview", "style_max_side", "precision", "name", "pixels", "style_id", "width",
          "height", "format", "buf", "x", "y", "id", "weight", "region", "content_labels", "labels",
          "label_palette", "scsa_weights"]


def valid_stylize() -> dict:
    return P.envelope("stylize", session="s1", job_id="j1", layer=P.pixels_field(4, 3, "rgba8", 0),
                      selection=P.pixels_field(2, 2, "u8", 1, 1, 1),
                      styles=[{"pixels": P.pixels_field(2, 2, "rgba8", 2), "weight": 1.0,
                               "region": P.pixels_field(4, 3, "f32", 3, 0, 0),
                               "labels": P.pixels_field(2, 2, "rgba8", 5)}, {"id": "abc", "weight": 2}],
                      alpha=0.5, precision="fp32", content_labels=P.pixels_field(4, 3, "u16", 4),
                      label_palette=[[0, 0, 0], [255, 128, 1]], scsa_weights=[0.7, 0.3])


VALID_BUFFERS = [bytes(48), bytes(4), bytes(16), bytes(48), bytes(24), bytes(16)]


def check(frames) -> None:
    auth = P.Authenticator(KEY, LIMITS.max_frames, LIMITS.max_header_bytes)
    try:
        header, buffers = auth.open(frames)
        P.validate_request(header, buffers, LIMITS)
    except (P.AuthError, P.ProtocolError):
        pass


def test_the_valid_message_is_valid():
    frames = P.build_message(KEY, valid_stylize(), VALID_BUFFERS)
    header, buffers = P.Authenticator(KEY, 20, 65536).open(frames)
    req = P.validate_request(header, buffers, LIMITS)
    assert req["selection"].x == 1 and req["styles"][1]["id"] == "abc"
    assert req["content_labels"].format == "u16" and req["styles"][0]["labels"].buf == 5
    assert req["label_palette"] == [[0, 0, 0], [255, 128, 1]] and req["scsa_weights"] == (0.7, 0.3)
    assert req["styles"][1]["labels"] is None


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=25))
def test_random_frames(frames):
    check(frames)


@FUZZ
@given(values, st.lists(st.binary(max_size=64), max_size=4))
def test_signed_random_headers(header, buffers):
    raw = msgpack.packb(header, use_bin_type=True)
    check([P.compute_signature(KEY, raw, buffers), raw, *buffers])


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(FIELDS), values), min_size=1, max_size=4), st.data())
def test_signed_mutations_of_a_valid_stylize(mutations, data):
    header = valid_stylize()
    for name, value in mutations:  # replace a field somewhere in the tree with anything
        target = header
        path = data.draw(st.sampled_from([[], ["layer"], ["selection"], ["styles", 0], ["styles", 0, "pixels"],
                                          ["styles", 1], ["styles", 0, "region"], ["content_labels"],
                                          ["styles", 0, "labels"]]))
        for p in path:
            try:
                target = target[p]
            except (KeyError, IndexError, TypeError):
                break
        if isinstance(target, dict):
            target[name] = value
    raw = msgpack.packb(header, use_bin_type=True)
    check([P.compute_signature(KEY, raw, VALID_BUFFERS), raw, *VALID_BUFFERS])


@FUZZ
@given(st.binary(max_size=300))
def test_signed_random_bytes_as_header(raw):
    check([P.compute_signature(KEY, raw, []), raw])


def _malformed(rng: random.Random, peer: RawPeer) -> list:
    """One malformed (or occasionally valid) multipart message, signed about half of the time."""
    kind = rng.randrange(6)
    if kind == 0:
        return [rng.randbytes(rng.randrange(0, 80)) for _ in range(rng.randrange(1, 30))]
    if kind == 1:   # valid signature over garbage
        raw = rng.randbytes(rng.randrange(0, 200))
        return [P.compute_signature(peer.key, raw, []), raw]
    header = valid_stylize() if kind in (2, 3) else peer.header(rng.choice(P.REQUEST_TYPES))
    header["session"], header["msg_id"], header["time"] = peer.session, P.new_id(), header["time"]
    header["job_id"] = f"fz-{rng.randrange(10**9)}"
    for _ in range(rng.randrange(1, 4)):
        name = rng.choice(FIELDS)
        header[name] = rng.choice([None, -1, 2**40, 1e309, "", "x" * 70, [], {}, [1, [2]], {"buf": 99},
                                   b"\x00", True, "rgba8", 0])
    buffers = [rng.randbytes(rng.randrange(0, 64)) for _ in range(rng.randrange(0, 5))]
    frames = P.build_message(peer.key, header, buffers)
    if kind == 3:   # break the signature or a buffer after signing
        frames[rng.randrange(len(frames))] = rng.randbytes(rng.randrange(0, 70))
    return frames


def test_live_daemon_survives_thousands_of_malformed_messages(daemon):
    rng = random.Random(4242)
    peer = RawPeer(daemon.connection_file)
    replies = 0
    try:
        for i in range(3000):
            peer.send_frames(_malformed(rng, peer))
            while peer.sock.poll(0):
                peer.sock.recv_multipart()
                replies += 1
        assert replies > 100            # signed-but-invalid requests were answered with errors
    finally:
        peer.close()
    assert daemon.proc.poll() is None
    with Client(connection_file=daemon.connection_file) as c:
        assert c.hello()["protocol"] == 1
        assert c.status()["dropped_messages"] > 500
    assert "Traceback" not in daemon.log_text()
