"""Any layer an artist throws at it: sizes, aspect ratios, channel layouts, bit depths; alpha untouched."""
import numpy as np
import pytest

from engine_helpers import smooth_image
from sanet import InputError


STYLE = (smooth_image(48, 48, seed=11) * 255).astype(np.uint8)


@pytest.mark.parametrize("hw", [(1, 1), (1, 37), (37, 1), (3, 500), (500, 3), (17, 33), (31, 31), (45, 61)])
def test_any_size_comes_back_exactly_the_same_size(stylizer, hw):
    img = smooth_image(*hw, seed=hw[0] * 7 + hw[1])
    out = stylizer.stylize(img, [STYLE])
    assert out.shape == img.shape and out.dtype == img.dtype
    assert np.isfinite(out).all()


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.float16])
def test_channel_layouts_and_depths(stylizer, channels, dtype):
    base = smooth_image(40, 52, seed=3, channels=4)
    if np.issubdtype(dtype, np.integer):
        base = (base * np.iinfo(dtype).max).astype(dtype)
    else:
        base = base.astype(dtype)
    img = base[:, :, 0] if channels is None else base[:, :, :channels]
    out = stylizer.stylize(img, [STYLE])
    assert out.shape == img.shape and out.dtype == img.dtype
    if channels in (2, 4):
        assert np.array_equal(out[:, :, -1], img[:, :, -1]), "alpha must be carried through bit-exactly"
    colour = out if channels is None else out[:, :, : (1 if channels in (1, 2) else 3)]
    assert float(np.std(colour.astype(np.float64))) > 0, "output colour is constant"


def test_gray_output_is_luma_of_the_rgb_result(stylizer):
    gray = smooth_image(40, 40, seed=8)[:, :, 0]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    out_gray = stylizer.stylize(gray, [STYLE])
    out_rgb = stylizer.stylize(rgb, [STYLE])
    luma = np.clip(out_rgb @ np.array([0.299, 0.587, 0.114], np.float32), 0, 1)
    np.testing.assert_allclose(out_gray, luma, atol=1e-5)


def test_style_may_be_any_layout_too(stylizer):
    content = smooth_image(32, 48, seed=9)
    for style in (STYLE[:, :, 0], STYLE[:5, :3], (STYLE.astype(np.uint16) * 257), np.dstack([STYLE, STYLE[:, :, :1]])):
        assert stylizer.stylize(content, [style]).shape == content.shape


def test_content_is_not_modified_in_place(stylizer):
    img = (smooth_image(33, 47, seed=10, channels=4) * 255).astype(np.uint8)
    before = img.copy()
    stylizer.stylize(img, [STYLE], selection=np.ones(img.shape[:2], np.float32) * 0.5)
    assert np.array_equal(img, before)


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 5), np.uint8), "expected H×W or H×W×C"),
    (np.zeros((4, 4, 3), np.int32), "dtype int32 is not supported"),
    (np.zeros((2, 2, 2, 2), np.uint8), "expected H×W or H×W×C"),
])
def test_bad_content_says_what_is_wrong(stylizer, bad, msg):
    with pytest.raises(InputError, match=msg):
        stylizer.stylize(bad, [STYLE])


def test_nan_and_out_of_range_floats_do_not_poison_the_output(stylizer):
    img = smooth_image(32, 32, seed=12) * 3 - 1
    img[3, 3] = np.nan
    out = stylizer.stylize(img.astype(np.float32), [STYLE])
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
