"""A job through the real daemon gives exactly what the engine gives in-process for the same input."""
from __future__ import annotations

import numpy as np
import pytest

import sanet
from daemon_kit import array_of, layer_of, rgba, style_of
from sanet_client import JobFailed, Mask, StyleRef


@pytest.fixture(scope="module")
def engine(synthetic_weights):
    return sanet.Stylizer(synthetic_weights, device="cpu")


def selection_plane(mask: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    plane = np.zeros((h, w), np.float32)
    mh, mw = mask.shape
    plane[y:y + mh, x:x + mw] = mask.astype(np.float32) / 255.0
    return plane


def test_hello_reports_versions_device_limits(client):
    h = client.hello()
    assert h["protocol"] == 1 and h["protocols"] == [1]
    assert h["device"] == "cpu" and h["model"]["loaded"] is True
    assert set(h["capabilities"]["formats"]) == {"rgba8", "rgba16", "rgbaf32"}
    assert h["limits"]["max_pixels"] == 8192 * 8192 and h["limits"]["max_queue"] == 16


def test_roundtrip_with_offset_selection_equals_engine(client, engine):
    content, style = rgba(32, 24, 1), rgba(32, 32, 2)
    mask = np.zeros((10, 14), np.uint8)
    mask[2:8, 3:12] = 255
    mask[0:2, :] = 128                               # feathered edge
    stages = []
    result = client.stylize(layer_of(content), [style_of(style)], selection=Mask(14, 10, "u8", mask.tobytes(), x=5, y=7),
                            alpha=0.8, on_progress=lambda f, s: stages.append((f, s)))
    got = array_of(result, np.uint8)
    want = engine.stylize(content, [sanet.Style(style)], alpha=0.8, selection=selection_plane(mask, 5, 7, 32, 24))
    np.testing.assert_array_equal(got, want)
    outside = selection_plane(mask, 5, 7, 32, 24) == 0
    np.testing.assert_array_equal(got[outside], content[outside])   # untouched pixels stay bit-exact
    assert not np.array_equal(got, content)
    assert result.info["selection"] is True and result.info["device"] == "cpu"
    fractions = [f for f, _ in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(stages) >= 3


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_roundtrip_deep_formats(client, engine, dtype):
    content, style = rgba(32, 24, 3, dtype), rgba(32, 32, 4)
    result = client.stylize(layer_of(content), [style_of(style)], preserve_color=True)
    assert result.format == {np.uint16: "rgba16", np.float32: "rgbaf32"}[dtype]
    got = array_of(result, dtype)
    want = engine.stylize(content, [sanet.Style(style)], preserve_color=True)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[..., 3], content[..., 3])     # alpha copied bit-exactly


def test_two_weighted_styles_with_region_and_f32_selection(client, engine):
    content, s1, s2 = rgba(32, 24, 5), rgba(32, 32, 6), rgba(24, 32, 7)
    region = np.zeros((24, 32), np.float32)
    region[:, 16:] = 1.0
    sel = np.linspace(0, 1, 32 * 24, dtype=np.float32).reshape(24, 32)
    result = client.stylize(layer_of(content), [style_of(s1, 2.0), style_of(s2, 1.0, Mask(32, 24, "f32", region.tobytes()))],
                            selection=Mask(32, 24, "f32", sel.tobytes()))
    want = engine.stylize(content, [sanet.Style(s1, 2.0), sanet.Style(s2, 1.0, region)], selection=sel)
    np.testing.assert_array_equal(array_of(result, np.uint8), want)


def test_library_style_equals_pixels_style(client, engine):
    content, style = rgba(32, 24, 8), rgba(32, 32, 9)
    meta = client.styles_add("noise nine", style_of(style))
    assert meta["width"] == 32 and meta["height"] == 32 and meta["thumbnail"].startswith(b"\x89PNG")
    listed = {s["id"]: s for s in client.styles_list()}
    assert listed[meta["id"]]["name"] == "noise nine"
    assert client.styles_add("renamed", style_of(style))["id"] == meta["id"]   # same pixels: same entry
    by_ref = client.stylize(layer_of(content), [StyleRef(meta["id"])])
    want = engine.stylize(content, [sanet.Style(style)])
    np.testing.assert_array_equal(array_of(by_ref, np.uint8), want)
    client.styles_remove(meta["id"])
    assert meta["id"] not in {s["id"] for s in client.styles_list()}
    with pytest.raises(JobFailed) as err:
        client.stylize(layer_of(content), [StyleRef(meta["id"])])
    assert err.value.code == "unknown_style" and err.value.field == "styles[0].id"


def test_library_persists_on_disk(client, daemon):
    meta = client.styles_add("kept", style_of(rgba(32, 32, 10)))
    folder = daemon.env["SANETD_DATA_DIR"]
    from pathlib import Path
    entry = Path(folder) / "styles" / meta["id"]
    assert {p.name for p in entry.iterdir()} == {"style.png", "thumb.png", "meta.json"}
    np.testing.assert_array_equal(sanet.load_image(entry / "style.png"), rgba(32, 32, 10))


def test_bad_input_names_the_field(client):
    content = rgba(32, 24, 11)
    with pytest.raises(JobFailed) as err:
        client.stylize(layer_of(content), [style_of(rgba(32, 32, 12))], alpha=1.5)
    assert err.value.code == "bad_request" and err.value.field == "alpha" and "[0.0, 1.0]" in str(err.value)
    assert client.hello()["protocol"] == 1


def test_memory_budget_makes_the_daemon_tile_with_the_same_result(tmp_path, synthetic_weights, engine):
    """`sanetd --memory-budget` reaches the engine's planner: a tiny budget tiles, and tiles agree with the whole."""
    from sanet_client import Client
    from sanetd_process import running_sanetd
    content, style = rgba(96, 80, 41), rgba(32, 32, 42)
    with running_sanetd(tmp_path, synthetic_weights, "--memory-budget", "0.0005") as d:
        c = Client(connection_file=d.connection_file, timeout=60)
        try:
            result = c.stylize(layer_of(content), [style_of(style)])
        finally:
            c.close()
    assert result.info["plan"].startswith("tiles of"), result.info
    want = engine.stylize(content, [sanet.Style(style)])
    assert np.abs(array_of(result, np.uint8).astype(int) - want).max() <= 1
