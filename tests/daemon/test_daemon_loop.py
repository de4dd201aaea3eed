"""The artist's loop through a real sanetd: feature reuse across jobs, layer refs (feature "layer_ref"), prompt cancel.

Every reused result is compared with a fresh in-process engine run (no feature reuse): they must be bit-equal.
Speed is measured by bench/bench_loop.py, not here; the cancel test asserts a generous bound that holds under load.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import sanet
from daemon_kit import RawPeer, array_of, layer_of, style_of, terminal_for
from sanet_client import JobCancelled, Mask
from sanet_client import client as client_module
from sanet_client import protocol as P

CANCEL_BOUND_S = 3.0     # cancel → `cancelled` at 1920×1080; ≤ 1 s on a quiet machine (bench/bench_loop.py)


@pytest.fixture(scope="module")
def fresh(synthetic_weights):
    """The engine without feature reuse: what every job must equal."""
    return sanet.Stylizer(synthetic_weights, device="cpu", content_cache_bytes=0)


def smooth_rgba(w, h, seed):
    rng = np.random.default_rng(seed)
    low = rng.random((h // 8 + 2, w // 8 + 2, 4))
    ys, xs = np.linspace(0, h // 8, h), np.linspace(0, w // 8, w)
    img = low[ys.astype(int)][:, xs.astype(int)]
    out = (img * 255).astype(np.uint8)
    out[..., 3] = 255
    return out


def test_a_preview_loop_reuses_features_and_equals_fresh_runs(client, fresh):
    content, s1, s2 = smooth_rgba(200, 150, 1), smooth_rgba(96, 96, 2), smooth_rgba(80, 64, 3)
    layer = layer_of(content)
    sel = np.zeros((150, 200), np.uint8)
    sel[30:100, 40:150] = 255
    sel[30:40, 40:150] = 128
    steps = [   # (request, what the daemon must have reused)
        (dict(styles=[s1], alpha=1.0), dict(layer=False, features=False, styles=[False], own=None)),
        (dict(styles=[s1], alpha=0.5), dict(layer=True, features=True, styles=[True], own=False)),
        (dict(styles=[s1], alpha=0.5, preserve_color=True), dict(layer=True, features=True, styles=[True], own=True)),
        (dict(styles=[s1, s2], weights=[0.7, 0.3], alpha=0.5),
         dict(layer=True, features=True, styles=[True, False], own=True)),
        (dict(styles=[s1, s2], weights=[0.2, 0.8], alpha=0.9, selection=sel),
         dict(layer=True, features=True, styles=[True, True], own=True)),
    ]
    for req, reused in steps:
        weights = req.get("weights", [1.0] * len(req["styles"]))
        styles = [style_of(s, w) for s, w in zip(req["styles"], weights)]
        mask = req.get("selection")
        r = client.stylize(layer, styles, alpha=req["alpha"], preserve_color=req.get("preserve_color", False),
                           selection=None if mask is None else Mask(200, 150, "u8", mask.tobytes()))
        assert r.info["reused"] == reused, (req, r.info["reused"])
        assert P.LAYER_REF_PATTERN.match(r.info["layer_ref"])
        want = fresh.stylize(content, [sanet.Style(s, w) for s, w in zip(req["styles"], weights)],
                             alpha=req["alpha"], preserve_color=req.get("preserve_color", False),
                             selection=None if mask is None else mask.astype(np.float32) / 255)
        np.testing.assert_array_equal(array_of(r, np.uint8), want)


def test_a_changed_layer_is_sent_and_encoded_again(client):
    a, b = smooth_rgba(64, 48, 4), smooth_rgba(64, 48, 4)
    b[10, 10, 0] ^= 1                                   # one sample differs
    s = [style_of(smooth_rgba(48, 48, 5))]
    first = client.stylize(layer_of(a), s)
    second = client.stylize(layer_of(b), s)
    assert first.info["layer_ref"] != second.info["layer_ref"]
    assert second.info["reused"]["layer"] is False and second.info["reused"]["features"] is False


def test_layer_refs_on_the_wire(daemon):
    """What any client may do (docs/protocol.md section 6c), sent by hand."""
    content = smooth_rgba(48, 32, 6)
    style = smooth_rgba(32, 32, 7)
    peer = RawPeer(daemon.connection_file)
    try:
        def stylize(job_id, layer_field, buffers):
            h = peer.header("stylize", job_id=job_id, layer=layer_field,
                            styles=[{"pixels": P.pixels_field(32, 32, "rgba8", len(buffers) - 1)}])
            peer.send(h, buffers)
            got = peer.recv_until(lambda e: terminal_for(job_id)(e) or (e["type"] == "error"
                                                                        and e.get("reply_to") == h["msg_id"]), 60)
            assert got is not None, f"no answer to {job_id}"
            return got

        ref = "0123456789abcdef0123456789abcdef"
        h, _ = stylize("j1", P.layer_ref_field(48, 32, "rgba8", ref), [style.tobytes()])
        assert h["type"] == "error" and h["code"] == "unknown_layer" and h["field"] == "layer.ref", h
        # the job id was not used up: the same job with the pixels runs
        h, bufs = stylize("j1", P.pixels_field(48, 32, "rgba8", 0), [content.tobytes(), style.tobytes()])
        assert h["type"] == "result", h
        ref = h["info"]["layer_ref"]
        by_pixels = bytes(bufs[0])
        h, bufs = stylize("j2", P.layer_ref_field(48, 32, "rgba8", ref), [style.tobytes()])
        assert h["type"] == "result" and h["info"]["reused"]["layer"] is True, h
        assert bytes(bufs[0]) == by_pixels
        h, _ = stylize("j3", P.layer_ref_field(32, 48, "rgba8", ref), [style.tobytes()])
        assert h["type"] == "error" and h["code"] == "bad_request" and h["field"] == "layer", h
        h, _ = stylize("j4", {**P.layer_ref_field(48, 32, "rgba8", ref), "buf": 0},
                       [content.tobytes(), style.tobytes()])
        assert h["type"] == "error" and h["code"] == "bad_request" and "both 'ref' and 'buf'" in h["message"], h
    finally:
        peer.close()


def test_the_client_names_a_layer_it_sent_and_falls_back_when_the_daemon_forgot_it(client, fresh):
    content, style = smooth_rgba(64, 64, 8), smooth_rgba(48, 48, 9)
    layer = layer_of(content)
    first = client.stylize(layer, [style_of(style)], alpha=0.9)
    assert first.info["reused"]["layer"] is False
    second = client.stylize(layer, [style_of(style)], alpha=0.6)
    assert second.info["reused"]["layer"] is True              # sent as a ref: no pixels on the wire
    # the daemon forgets (a restart, an eviction): the client's ref is now unknown to it
    key, fp = client._info.key, client_module._layer_refs.fingerprint(layer)
    client_module._layer_refs.put(key, fp, "f" * 32)
    third = client.stylize(layer, [style_of(style)], alpha=0.3)
    assert third.info["reused"]["layer"] is False              # the pixels went after all
    np.testing.assert_array_equal(array_of(third, np.uint8), fresh.stylize(content, [style], alpha=0.3))
    assert client_module._layer_refs.get(key, fp) == third.info["layer_ref"]


def test_cancel_takes_effect_within_a_few_seconds_on_a_full_hd_layer(client):
    """Cancelled inside the engine's stages (sanet.interrupt), at two points of a 1920×1080 job."""
    content = smooth_rgba(1920, 1080, 10)
    for stage in ("encode content", "stylize"):
        cancel = threading.Event()
        marks = {}

        def progress(fraction, s, stage=stage, cancel=cancel, marks=marks):
            if s.startswith(stage) and not cancel.is_set():
                marks["cancel"] = time.monotonic()
                cancel.set()
        with pytest.raises(JobCancelled):
            client.stylize(layer_of(content), [style_of(smooth_rgba(64, 64, 11 + len(stage)))], alpha=0.8,
                           on_progress=progress, cancel_event=cancel)
        took = time.monotonic() - marks["cancel"]
        print(f"cancel during {stage!r} at 1920x1080 took effect in {took:.2f} s")
        assert took <= CANCEL_BOUND_S, f"cancel during {stage!r} took {took:.2f} s"
