"""SCSA label maps through the protocol: a real sanetd gives exactly what the engine gives in-process, and bad
label fields are refused with a message naming the field and the limit."""
from __future__ import annotations

import numpy as np
import pytest

import sanet
from daemon_kit import RawPeer, array_of, layer_of, rgba, style_of
from sanet_client import JobFailed, Labels, StylePixels, StyleRef
from sanet_client import protocol as P

RED, BLUE, GREEN = (220, 30, 30), (30, 40, 210), (20, 200, 60)


@pytest.fixture(scope="module")
def engine(synthetic_weights):
    return sanet.Stylizer(synthetic_weights, device="cpu")


def halves(w: int, h: int, axis: int, dtype=np.uint8) -> np.ndarray:
    """Integer labels: 0 on the first half, 1 on the second (columns for axis 1, rows for axis 0)."""
    ids = np.zeros((h, w), dtype)
    if axis == 1:
        ids[:, w // 2:] = 1
    else:
        ids[h // 2:, :] = 1
    return ids


def coloured(ids: np.ndarray, colours=(RED, BLUE, GREEN)) -> np.ndarray:
    """A colour-coded RGBA map of integer labels; alpha varies (it must be ignored)."""
    out = np.zeros(ids.shape + (4,), np.uint8)
    out[..., :3] = np.asarray(colours, np.uint8)[ids]
    out[..., 3] = np.arange(ids.size, dtype=np.uint32).reshape(ids.shape) % 256
    return out


def labels_of(arr: np.ndarray) -> Labels:
    fmt = "rgba8" if arr.ndim == 3 else {np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16"}[arr.dtype]
    return Labels(arr.shape[1], arr.shape[0], fmt, arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def test_hello_advertises_scsa(client):
    h = client.hello()
    assert "scsa" in h["features"]
    assert set(h["capabilities"]["label_formats"]) == {"u8", "u16", "rgba8"}
    assert h["limits"]["max_frames"] == 2 + 3 + 3 * h["limits"]["max_styles"]


@pytest.mark.parametrize("kind", ["u8", "u16"])
def test_integer_labels_equal_engine(client, engine, kind):
    dtype = np.uint8 if kind == "u8" else np.uint16
    content, style = rgba(32, 24, 40), rgba(32, 32, 41)
    cl, sl = halves(32, 24, 1, dtype), halves(32, 32, 0, dtype)
    if kind == "u16":   # labels above 255 survive the trip
        cl, sl = cl * 700 + 3, sl * 700 + 3
    result = client.stylize(layer_of(content), [StylePixels(32, 32, "rgba8", style.tobytes(), labels=labels_of(sl))],
                            content_labels=labels_of(cl), scsa_weights=(0.5, 0.5), alpha=0.9)
    want = engine.stylize(content, [sanet.Style(style, labels=sl)], content_labels=cl, scsa_weights=(0.5, 0.5),
                          alpha=0.9)
    np.testing.assert_array_equal(array_of(result, np.uint8), want)
    plain = engine.stylize(content, [sanet.Style(style)], alpha=0.9)
    assert not np.array_equal(want, plain)          # the labels changed the outcome


def test_colour_labels_with_palette_two_styles_equal_engine(client, engine):
    content, s1, s2 = rgba(32, 24, 42, np.uint16), rgba(32, 32, 43), rgba(24, 32, 44)
    cl = coloured(halves(32, 24, 1))
    sl1 = coloured(halves(32, 32, 0))
    palette = [RED, BLUE]
    s1p = style_of(s1, 2.0)
    s1p.labels = labels_of(sl1)
    result = client.stylize(layer_of(content), [s1p, style_of(s2)], content_labels=labels_of(cl),
                            label_palette=palette, preserve_color=True)
    want = engine.stylize(content, [sanet.Style(s1, 2.0, labels=sl1), sanet.Style(s2)], content_labels=cl,
                          label_palette=palette, preserve_color=True)
    np.testing.assert_array_equal(array_of(result, np.uint16), want)


def test_library_style_with_labels_equals_engine(client, engine):
    content, style = rgba(32, 24, 45), rgba(32, 32, 46)
    meta = client.styles_add("labelled", style_of(style))
    cl, sl = coloured(halves(32, 24, 1)), coloured(halves(32, 32, 0))
    by_ref = client.stylize(layer_of(content), [StyleRef(meta["id"], labels=labels_of(sl))],
                            content_labels=labels_of(cl))
    want = engine.stylize(content, [sanet.Style(style, labels=sl)], content_labels=cl)
    np.testing.assert_array_equal(array_of(by_ref, np.uint8), want)
    # the same library style without labels still works (cached features), and differs
    plain = client.stylize(layer_of(content), [StyleRef(meta["id"])])
    assert not np.array_equal(array_of(plain, np.uint8), want)
    # a label map that does not have the stored image's size is refused before queueing
    with pytest.raises(JobFailed) as err:
        client.stylize(layer_of(content), [StyleRef(meta["id"], labels=labels_of(halves(30, 32, 0)))],
                       content_labels=labels_of(halves(32, 24, 1)))
    assert err.value.code == "bad_request" and err.value.field == "styles[0].labels"
    assert "30x32" in str(err.value) and "32x32" in str(err.value)


def test_engine_refusal_is_invalid_input(client):
    # labels that share nothing are fine; a 65-colour map without a palette is refused by the engine
    content, style = rgba(32, 24, 47), rgba(32, 32, 48)
    rng = np.random.default_rng(1)
    noisy = np.zeros((24, 32, 4), np.uint8)
    noisy[..., :3] = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    s = style_of(style)
    s.labels = labels_of(halves(32, 32, 0))
    with pytest.raises(JobFailed) as err:
        client.stylize(layer_of(content), [s], content_labels=labels_of(noisy))
    assert err.value.code == "invalid_input" and "label" in str(err.value)
    assert client.hello()["protocol"] == 1     # the daemon lives on


def _raw_error(peer: RawPeer, **extra):
    """Send a 32×24 layer with one 32×32 style plus extra fields/buffers; return the error event."""
    bufs = [rgba(32, 24, 50).tobytes(), rgba(32, 32, 51).tobytes()]
    style = {"pixels": P.pixels_field(32, 32, "rgba8", 1)}
    style_labels = extra.pop("style_labels", None)
    if style_labels is not None:
        style["labels"] = P.pixels_field(*style_labels[:3], len(bufs))
        bufs.append(style_labels[3])
    fields = {"job_id": P.new_id(), "layer": P.pixels_field(32, 24, "rgba8", 0), "styles": [style]}
    content_labels = extra.pop("content_labels", None)
    if content_labels is not None:
        fields["content_labels"] = P.pixels_field(*content_labels[:3], len(bufs))
        bufs.append(content_labels[3])
    fields.update(extra)
    h = peer.header("stylize", **fields)
    peer.send(h, bufs)
    got = peer.recv_until(lambda e: e.get("reply_to") == h["msg_id"], timeout=30)
    assert got is not None
    return got[0]


def test_bad_label_fields_through_the_daemon(daemon):
    peer = RawPeer(daemon.connection_file)
    try:
        good_s = (32, 32, "u8", bytes(32 * 32))
        e = _raw_error(peer, content_labels=(32, 20, "u8", bytes(32 * 20)), style_labels=good_s)
        assert (e["type"], e["code"], e["field"]) == ("error", "bad_request", "content_labels")
        assert "32x20" in e["message"] and "32x24" in e["message"]
        e = _raw_error(peer, content_labels=(32, 24, "f32", bytes(32 * 24 * 4)), style_labels=good_s)
        assert e["field"] == "content_labels.format" and "u8, u16, rgba8" in e["message"]
        e = _raw_error(peer, content_labels=(32, 24, "u8", bytes(32 * 24)), style_labels=good_s,
                       label_palette=[[1, 2, 3]] * 65)
        assert e["field"] == "label_palette" and "65" in e["message"] and "64" in e["message"]
        e = _raw_error(peer, content_labels=(32, 24, "u8", bytes(32 * 24)), style_labels=good_s,
                       scsa_weights=[0.7, 11.0])
        assert e["field"] == "scsa_weights[1]" and "[0.0, 10.0]" in e["message"]
        e = _raw_error(peer, content_labels=(32, 24, "u8", bytes(32 * 24)), style_labels=(32, 32, "u16", bytes(100)))
        assert e["code"] == "bad_request" and e["field"] == "styles[0].labels" and "2048" in e["message"]
        e = _raw_error(peer, style_labels=good_s)
        assert e["field"] == "content_labels" and "styles[0]" in e["message"]
    finally:
        peer.close()
