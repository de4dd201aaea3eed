"""Fast tests (no GIMP) of the GIMP plug-in's SCSA helpers: label maps from channels, label-map arguments."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "gimp" / "sanet-style"
sys.path.insert(0, str(PLUGIN))

import sanet_gimp_pixels as px  # noqa: E402
import sanet_gimp_settings as st  # noqa: E402
from sanet_client.naming import result_name  # noqa: E402


# ----------------------------------------------------------------------------------------------- channels → labels

def reference_labels(channels: list) -> np.ndarray:
    """The rule in numpy: channel k above 50 % (u8 >= 128) → label k + 1; later channels win; else 0."""
    out = np.zeros(channels[0].shape, np.uint8)
    for k, c in enumerate(channels):
        out[c >= 128] = k + 1
    return out


def test_labels_from_channels_match_the_rule():
    rng = np.random.default_rng(3)
    chans = [rng.integers(0, 256, (17, 23), dtype=np.uint8) for _ in range(3)]
    got = px.labels_from_channels([c.tobytes() for c in chans], 17 * 23)
    assert np.array_equal(np.frombuffer(got, np.uint8).reshape(17, 23), reference_labels(chans))


def test_labels_from_channels_threshold_and_overlap():
    a = bytes([0, 127, 128, 255, 255, 0])
    b = bytes([0, 0, 0, 0, 200, 128])
    # 127 (49.8 %) is not above half, 128 (50.2 %) is; where both are set the later channel wins
    assert list(px.labels_from_channels([a, b], 6)) == [0, 0, 1, 1, 2, 2]
    assert list(px.labels_from_channels([b, a], 6)) == [0, 0, 2, 2, 2, 1]
    assert px.labels_from_channels([], 4) == bytes(4)
    assert px.labels_from_channels([b""], 0) == b""


def test_labels_from_channels_feathered_edges_become_hard_regions():
    ramp = bytes(range(256))
    labels = px.labels_from_channels([ramp], 256)
    assert labels == bytes(128) + bytes([1]) * 128


def test_labels_from_channels_errors_name_the_channel():
    with pytest.raises(ValueError, match=r"label channel 2: got 3 bytes, expected 4"):
        px.labels_from_channels([bytes(4), bytes(3)], 4)
    with pytest.raises(ValueError, match="at most 255"):
        px.labels_from_channels([bytes(1)] * 256, 1)


def test_labels_from_channels_is_fast_enough_for_big_layers():
    n = 2048 * 2048
    chans = [bytes([k * 60]) * n for k in range(4)]
    t0 = time.perf_counter()
    labels = px.labels_from_channels(chans, n)
    assert time.perf_counter() - t0 < 5.0  # no per-pixel Python loop (that would take tens of seconds)
    assert labels == bytes([4]) * n  # only the 4th channel (180) is above half


def test_label_map_size_error_names_both_sizes():
    assert px.label_map_size_error("the label layer 'regions'", (40, 30), "content", (40, 30)) is None
    msg = px.label_map_size_error("the label layer 'regions'", (40, 31), "content", (40, 30))
    assert msg == ("the label layer 'regions' is 40x31 pixels, but the layer 'content' is 40x30; a content label "
                   "map must have exactly the layer's size")


# ----------------------------------------------------------------------------------------------- settings

def test_label_files_follow_the_style_order():
    s = st.build_settings(style_file="/a.png", style_files=["/b.png"], style_layer=(5, "L"), library_styles="lib",
                          content_labels_layer=(9, "regions"),
                          style_label_files=["/a-labels.png", "", "none", "/lib-labels.png"])
    assert [x.labels_file for x in s.styles] == ["/a-labels.png", None, None, "/lib-labels.png"]
    assert s.semantic and s.label_format == "rgba8"
    assert s.content_labels_layer == (9, "regions") and s.content_labels_channels == ()
    assert s.scsa_weights == (0.7, 0.3)
    assert st.result_layer_name(s, result_name) == "Style: a + b + L + … (SANet, semantic)"


def test_channels_give_integer_labels_and_custom_weights():
    s = st.build_settings(style_file="/a.png", content_labels_channels="sky, face", style_label_files="/a-ids.png",
                          scsa_t1=1.5, scsa_t2=0)
    assert s.content_labels_channels == ("sky", "face") and s.label_format == "u8"
    assert s.scsa_weights == (1.5, 0.0) and s.styles[0].labels_file == "/a-ids.png"
    every = st.build_settings(style_file="/a.png", content_labels_channels="*", style_label_files=["/x.png"])
    assert every.content_labels_channels == ("*",)


def test_style_label_layer_belongs_to_the_style_layer():
    s = st.build_settings(style_file="/a.png", style_layer=(3, "S"), library_styles="lib",
                          style_label_layer=(4, "S labels"), content_labels_layer=(1, "r"))
    assert [x.labels_layer for x in s.styles] == [None, (4, "S labels"), None]
    assert [x.labels_file for x in s.styles] == [None, None, None] and s.semantic
    # with a file for another style, too
    both = st.build_settings(style_file="/a.png", style_layer=(3, "S"), style_label_layer=(4, "SL"),
                             content_labels_channels="*", style_label_files=["/a-ids.png", ""])
    assert [(x.labels_file, x.labels_layer) for x in both.styles] == [("/a-ids.png", None), (None, (4, "SL"))]


def test_no_labels_is_a_plain_run():
    s = st.build_settings(style_file="/a.png", style_label_files=["", "none"][:1])
    assert not s.semantic and s.styles[0].labels_file is None
    assert st.result_layer_name(s, result_name) == "Style: a (SANet)"


@pytest.mark.parametrize("kwargs, message", [
    ({"content_labels_layer": (1, "r")}, "a content label map is set but no style has one"),
    ({"content_labels_channels": "sky"}, "a content label map is set but no style has one"),
    ({"style_label_files": ["/l.png"]}, "a style label map is set but the layer has none"),
    ({"style_layer": (3, "S"), "style_label_layer": (4, "SL")}, "a style label map is set but the layer has none"),
    ({"style_label_layer": (4, "SL"), "content_labels_layer": (1, "r")}, "style-layer is not set"),
    ({"style_layer": (3, "S"), "style_label_layer": (4, "SL"), "content_labels_layer": (1, "r"),
      "style_label_files": ["", "/s.png"]}, r"both style-label-layer and style-label-files \(item 2\)"),
    ({"content_labels_layer": (1, "r"), "content_labels_channels": "sky", "style_label_files": ["/l.png"]},
     "content-labels-layer and content-labels-channels are both set"),
    ({"content_labels_layer": (1, "r"), "style_label_files": ["/l.png", "/m.png"]},
     r"style-label-files: 2 item\(s\) given for 1 style\(s\)"),
    ({"content_labels_channels": "*, sky", "style_label_files": ["/l.png"]}, "'\\*' .* cannot be mixed"),
    ({"content_labels_layer": (1, "r"), "style_label_files": ["/l.png"], "scsa_t1": 11}, "scsa-t1: 11 is outside"),
    ({"content_labels_layer": (1, "r"), "style_label_files": ["/l.png"], "scsa_t2": -0.5}, "scsa-t2: -0.5 is out"),
    ({"content_labels_layer": (1, "r"), "style_label_files": ["/l.png"], "scsa_t2": "x"}, "scsa-t2: 'x' is not"),
])
def test_bad_label_arguments_name_the_argument(kwargs, message):
    with pytest.raises(st.SettingsError, match=message):
        st.build_settings(style_file="/a.png", **kwargs)


def test_label_values_are_remembered(tmp_path):
    path = str(tmp_path / "last.json")
    values = {"style-file": "/a.png", "content-labels-layer": 12, "content-labels-channels": "sky",
              "style-label-files": ["/l.png", ""], "style-label-layer": 13, "scsa-t1": 0.5, "scsa-t2": 1}
    st.save_last_values(path, values)
    assert st.load_last_values(path) == values | {"scsa-t2": 1.0}
