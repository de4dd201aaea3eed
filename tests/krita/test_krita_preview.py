"""The live preview's helpers: sizes, the style scale, nearest-neighbour sampling and the history (no Krita);
then the scaling of real Krita layers of every depth inside kritarunner, checked with numpy, and a preview
request against a real sanetd checked against the library."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "krita"))
from sanet_style import preview  # noqa: E402

import kritatools as kt  # noqa: E402


def test_preview_size_keeps_the_aspect_and_never_enlarges():
    assert preview.preview_size(1920, 1080) == (512, 288)
    assert preview.preview_size(1080, 1920) == (288, 512)
    assert preview.preview_size(300, 200) == (300, 200)
    assert preview.preview_size(5000, 3) == (512, 1)
    assert max(preview.preview_size(4096, 4096, long_side=256)) == 256


def test_preview_styles_shrink_with_the_layer():
    assert preview.preview_style_side(512, 300) == preview.style_max_side()        # no scaling, full style
    assert preview.preview_style_side(2048, 1024) == preview.style_max_side() // 4 == 256
    assert preview.preview_style_side(8192, 8192) == preview.MIN_STYLE_SIDE     # floor


@pytest.mark.parametrize("pixel_size", [1, 4, 16])
def test_nearest_samples_pixel_centres(pixel_size):
    rng = np.random.default_rng(3)
    h, w, oh, ow = 37, 53, 11, 20
    src = rng.integers(0, 256, (h, w, pixel_size), dtype=np.uint8)
    got = np.frombuffer(preview.nearest(src.tobytes(), w, h, pixel_size, ow, oh), np.uint8).reshape(oh, ow, -1)
    ys = np.minimum(h - 1, ((np.arange(oh) + 0.5) * h / oh).astype(int))
    xs = np.minimum(w - 1, ((np.arange(ow) + 0.5) * w / ow).astype(int))
    np.testing.assert_array_equal(got, src[ys][:, xs])
    assert preview.nearest(src.tobytes(), w, h, pixel_size, w, h) == src.tobytes()


def test_history_is_newest_first_bounded_and_without_duplicates():
    hist = preview.History(size=3)
    items = [preview.HistoryItem(image=None, key=k, name=str(k), settings=None) for k in "abcd"]
    for item in items[:3]:
        assert hist.add(item) == []
    assert [i.key for i in hist.items] == ["c", "b", "a"]
    assert hist.add(items[3]) == [items[0]]                  # the oldest falls out
    again = preview.HistoryItem(image=None, key="b", name="b2", settings=None)
    assert hist.add(again) == [items[1]]                     # the same settings replace the older result
    assert [i.name for i in hist.items] == ["b2", "d", "c"]
    assert hist.find("d") is items[3] and hist.find("a") is None
    assert hist.remove(items[3]) and not hist.remove(items[3])
    assert len(hist) == 2


# ---- inside Krita -----------------------------------------------------------------------------------------
def _area_weights(n, m):
    """m x n matrix: how much of each of n source pixels falls into each of m equal output cells."""
    edges = np.arange(m + 1) * n / m
    wts = np.zeros((m, n))
    for i in range(m):
        lo, hi = edges[i], edges[i + 1]
        for j in range(int(np.floor(lo)), min(n, int(np.ceil(hi)))):
            wts[i, j] = max(0.0, min(hi, j + 1) - max(lo, j))
    return wts / wts.sum(1, keepdims=True)


def _area_mean(img, ow, oh):
    """The exact area average onto the output grid (what a smooth downscale computes)."""
    wy, wx = _area_weights(img.shape[0], oh), _area_weights(img.shape[1], ow)
    return np.einsum("yh,hwc,xw->yxc", wy, img, wx)


def _expected_smooth(rgba, ow, oh):
    """Qt scales colours premultiplied by alpha, then divides again."""
    a = rgba[..., 3:4]
    mean = _area_mean(np.concatenate([rgba[..., :3] * a, a], -1), ow, oh)
    out = mean.copy()
    out[..., :3] = mean[..., :3] / np.maximum(mean[..., 3:4], 1e-9)
    return out


@pytest.mark.krita
@pytest.mark.parametrize("depth", ["U8", "U16", "F16", "F32"])
def test_real_layers_scale_down_in_their_own_depth(depth, tmp_path, sanetd, engine, style_png):
    kt.require_krita()
    out = tmp_path / "out"
    out.mkdir()
    env = kt.krita_env(sanetd.env, kt.shared_home())
    proc = kt.run_kritarunner("preview_scenario", [out, depth, style_png[0]], env)
    log = (proc.stdout + proc.stderr)[-4000:]
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    assert proc.returncode == 0 and summary.get("ok"), summary.get("error", log)

    w, h = summary["size"]
    pw, ph = summary["preview_size"]
    assert (pw, ph) == preview.preview_size(w, h, summary["long_side"]) and max(pw, ph) == summary["long_side"]
    fmt = summary["format"]
    assert fmt == {"U8": "rgba8", "U16": "rgba16", "F16": "rgbaf32", "F32": "rgbaf32"}[depth]
    dtype = {"rgba8": np.uint8, "rgba16": np.dtype("<u2"), "rgbaf32": np.dtype("<f4")}[fmt]
    small = np.frombuffer((out / "preview_in.bin").read_bytes(), dtype).reshape(ph, pw, 4)
    full = kt.to_unit(kt.pixels((out / "layer.bin").read_bytes(), depth, w, h))
    if depth in ("U8", "U16"):       # smooth: close to the box average, within a few levels
        want = _expected_smooth(full, pw, ph)
        assert np.abs(kt.to_unit(small) - want).max() < 0.03
    else:                            # floats: the raw values at the sampled pixel centres (HDR kept)
        ys = np.minimum(h - 1, ((np.arange(ph) + 0.5) * h / ph).astype(int))
        xs = np.minimum(w - 1, ((np.arange(pw) + 0.5) * w / pw).astype(int))
        np.testing.assert_array_equal(small.astype(np.float64), full[ys][:, xs])
        assert small[..., 0].max() > 1.0                     # the scenario painted HDR values: not clipped
    mask = np.frombuffer((out / "preview_mask.bin").read_bytes(), np.uint8).reshape(ph, pw)
    sel = np.frombuffer((out / "selection.bin").read_bytes(), np.uint8).reshape(h, w)
    assert np.abs(mask.astype(float) - _area_mean(sel[..., None].astype(float), pw, ph)[..., 0]).max() < 8

    # the preview request: the small layer + scaled selection + proportionally scaled style = the library's result
    import sanet
    res = np.frombuffer((out / "preview_out.bin").read_bytes(), dtype).reshape(ph, pw, 4)
    want = engine.stylize(small, [sanet.Style(style_png[1])], alpha=0.8,
                          selection=mask * np.float32(1 / 255),   # the u8 mask as sanetd reads it
                          style_max_side=summary["style_max_side"])
    tol = {"rgba8": 0, "rgba16": 0, "rgbaf32": 1e-6}[fmt]
    assert np.abs(kt.to_unit(res) - kt.to_unit(want)).max() <= tol
    assert summary["style_max_side"] == preview.preview_style_side(w, h, summary["long_side"])
    assert summary["image"] == [pw, ph]
