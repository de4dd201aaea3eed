"""The SCSA label fields of protocol v1 (optional additions): what validate_request accepts and how it refuses,
with the message naming the field and the limit. In-process, the same validator the daemon runs."""
from __future__ import annotations

import pytest

from sanet_client import Labels, StylePixels
from sanet_client import protocol as P

LIMITS = P.Limits()


def request(**extra):
    """A 4×3 layer, one 2×2 pixels style with a label map and one library style; overrides via extra."""
    style0 = {"pixels": P.pixels_field(2, 2, "rgba8", 1), "labels": P.pixels_field(2, 2, "u8", 2)}
    h = P.envelope("stylize", session="s1", job_id="j1", layer=P.pixels_field(4, 3, "rgba8", 0),
                   styles=[style0, {"id": "abcdef0123456789"}], content_labels=P.pixels_field(4, 3, "rgba8", 3))
    bufs = [bytes(48), bytes(16), bytes(4), bytes(48)]
    for k, v in extra.items():
        if k == "style0":
            style0.update(v)
        elif v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return h, bufs


def refused(h, bufs) -> P.ProtocolError:
    with pytest.raises(P.ProtocolError) as err:
        P.validate_request(h, bufs, LIMITS)
    return err.value


def test_valid_labels_palette_weights():
    h, bufs = request(label_palette=[[255, 0, 0], [0, 0, 255]], scsa_weights=[0, 10])
    req = P.validate_request(h, bufs, LIMITS)
    assert (req["content_labels"].width, req["content_labels"].format) == (4, "rgba8")
    assert req["styles"][0]["labels"].nbytes == 4 and req["styles"][1]["labels"] is None
    assert req["label_palette"] == [[255, 0, 0], [0, 0, 255]] and req["scsa_weights"] == (0.0, 10.0)
    h, bufs = request(content_labels=P.pixels_field(4, 3, "u16", 3))
    bufs[3] = bytes(24)
    assert P.validate_request(h, bufs, LIMITS)["content_labels"].nbytes == 24


def test_without_labels_nothing_changes():
    h, bufs = request(content_labels=None, style0={"labels": None}, scsa_weights=[1, 1])
    req = P.validate_request(h, bufs[:2], LIMITS)
    assert req["content_labels"] is None and req["label_palette"] is None and req["scsa_weights"] == (1.0, 1.0)


@pytest.mark.parametrize("extra, nbufs, field, words", [
    ({"content_labels": P.pixels_field(3, 3, "rgba8", 3)}, 4, "content_labels", ["3x3", "4x3", "the layer"]),
    ({"content_labels": P.pixels_field(4, 3, "f32", 3)}, 4, "content_labels.format", ["u8, u16, rgba8"]),
    ({"content_labels": P.pixels_field(4, 3, "u8", 3)}, 4, "content_labels", ["48 bytes", "needs 12"]),
    ({"style0": {"labels": P.pixels_field(2, 1, "u8", 2)}}, 4, "styles[0].labels",
     ["2x1", "styles[0].pixels, 2x2"]),
    ({"label_palette": [[1, 2, 3]] * 65}, 4, "label_palette", ["65", "limit is 64"]),
    ({"label_palette": []}, 4, "label_palette", ["non-empty"]),
    ({"label_palette": [[0, 0, 0], [1, 2, 256]]}, 4, "label_palette[1]", ["0..255"]),
    ({"label_palette": [[0, 0, 0], [1, 2]]}, 4, "label_palette[1]", ["[r, g, b]"]),
    ({"label_palette": [[0, 0, True]]}, 4, "label_palette[0]", ["integers"]),
    ({"scsa_weights": [0.7, 10.5]}, 4, "scsa_weights[1]", ["[0.0, 10.0]"]),
    ({"scsa_weights": [-0.1, 0.3]}, 4, "scsa_weights[0]", ["[0.0, 10.0]"]),
    ({"scsa_weights": [0.7]}, 4, "scsa_weights", ["two numbers"]),
    ({"scsa_weights": [float("nan"), 0.3]}, 4, "scsa_weights[0]", ["[0.0, 10.0]"]),
    ({"content_labels": None}, 3, "content_labels", ["missing", "styles[0]"]),
    ({"style0": {"labels": None}}, 3, "content_labels", ["at least one style"]),
])
def test_bad_label_fields_name_field_and_limit(extra, nbufs, field, words):
    h, bufs = request(**extra)
    if extra.get("style0", {}).get("labels", 0) is None:   # the style's buffer is gone: renumber the content's
        h["content_labels"]["buf"] = 2
        bufs = [bufs[0], bufs[1], bufs[3]]
    err = refused(h, bufs[:nbufs])
    assert err.code == "bad_request" and err.field == field, (err.field, str(err))
    for w in words:
        assert w in str(err), str(err)


def test_limits_count_the_label_frames():
    assert LIMITS.max_frames == 2 + 3 + 3 * LIMITS.max_styles == 29


def test_client_payloads_check_label_buffers():
    Labels(4, 3, "u16", bytes(24))
    with pytest.raises(ValueError, match="label map format 'f32'"):
        Labels(4, 3, "f32", bytes(48))
    with pytest.raises(ValueError, match="4x3 u8 needs 12"):
        Labels(4, 3, "u8", bytes(11))
    s = StylePixels(2, 2, "rgba8", bytes(16), labels=Labels(2, 2, "u8", bytes(4)))
    assert s.labels.format == "u8" and s.region is None
