"""Runtime controls, composable in one call: α, style interpolation, spatial regions, colour, selection."""
import numpy as np
import pytest
import torch

from engine_helpers import rel_dev, smooth_image, to_tensor
from sanet import InputError, Style

C = smooth_image(64, 64, seed=21)
S1 = smooth_image(64, 64, seed=22)
S2 = smooth_image(48, 80, seed=23)


def decode_mix(stylizer, oracle, coeffs):
    """Literal: decode Σ_k coeff_k · T(c, s_k) with coefficient maps at relu4_1 resolution."""
    with torch.no_grad():
        c = oracle.encode(to_tensor(C))
        feat = 0
        for coeff, s in coeffs:
            ss = oracle.encode(to_tensor(s))
            feat = feat + coeff * oracle.transform_features(c[3], c[4], ss[3], ss[4])
        return oracle.decoder(feat)[0].permute(1, 2, 0).numpy()


def test_style_interpolation_is_a_convex_combination(stylizer, oracle):
    ref = decode_mix(stylizer, oracle, [(0.7, S1), (0.3, S2)])
    out = stylizer.stylize_raw(C, [Style(S1, 0.7), Style(S2, 0.3)])
    assert rel_dev(out, ref) <= 1e-4
    out_unnormalised = stylizer.stylize_raw(C, [Style(S1, 7), Style(S2, 3)])
    assert rel_dev(out_unnormalised, ref) <= 1e-4


def test_spatial_control_with_soft_masks(stylizer, oracle):
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1.0
    mask[:, 28:36] = np.linspace(1, 0, 8)  # soft edge
    m = torch.nn.functional.interpolate(torch.from_numpy(mask)[None, None], size=(8, 8), mode="area")
    ref = decode_mix(stylizer, oracle, [(m, S1), (1 - m, S2)])
    out = stylizer.stylize_raw(C, [Style(S1, region=mask), Style(S2, region=1 - mask)])
    assert rel_dev(out, ref) <= 1e-4


def test_alpha_and_regions_compose(stylizer, oracle):
    mask = np.zeros((64, 64), np.float32)
    mask[:32] = 1.0
    m = torch.nn.functional.interpolate(torch.from_numpy(mask)[None, None], size=(8, 8), mode="area")
    a = 0.6
    ref = decode_mix(stylizer, oracle, [(a * m, S1), (a * (1 - m), S2), (1 - a, C)])
    out = stylizer.stylize_raw(C, [Style(S1, region=mask), Style(S2, region=1 - mask)], alpha=a)
    assert rel_dev(out, ref) <= 1e-4


def test_uncovered_region_keeps_the_content_reconstruction(stylizer, oracle):
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1.0
    m = torch.nn.functional.interpolate(torch.from_numpy(mask)[None, None], size=(8, 8), mode="area")
    ref = decode_mix(stylizer, oracle, [(m, S1), (1 - m, C)])
    assert rel_dev(stylizer.stylize_raw(C, [Style(S1, region=mask)]), ref) <= 1e-4


def test_preserve_colour_keeps_content_chroma(stylizer):
    out = stylizer.stylize_raw(C, [S1], preserve_color=True)
    plain = stylizer.stylize_raw(C, [S1])
    ycc = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
    chroma = lambda x: (x @ ycc.T)[:, :, 1:]  # noqa: E731
    np.testing.assert_allclose(chroma(out), chroma(C), atol=1e-5)
    np.testing.assert_allclose(out @ ycc[0], plain @ ycc[0], atol=1e-5)  # luminance (texture) from the style run
    assert np.abs(chroma(plain) - chroma(C)).max() > 1e-3  # and it made a difference


def test_selection_blends_and_leaves_outside_bit_exact(stylizer):
    content = (smooth_image(40, 60, seed=24, channels=4) * 255).astype(np.uint8)
    sel = np.zeros((40, 60), np.float32)
    sel[10:30, 15:45] = 1.0
    sel[10:30, 15:20] = 0.5
    full = stylizer.stylize(content, [S1])
    out = stylizer.stylize(content, [S1], selection=sel)
    assert np.array_equal(out[sel == 0], content[sel == 0])
    assert np.array_equal(out[sel == 1], full[sel == 1])
    half = np.rint(0.5 * full[sel == 0.5][:, :3].astype(np.float32) + 0.5 * content[sel == 0.5][:, :3])
    assert np.abs(half - out[sel == 0.5][:, :3]).max() <= 1
    u8sel = (sel * 255).astype(np.uint8)  # 8-bit masks are accepted too
    assert np.array_equal(stylizer.stylize(content, [S1], selection=u8sel)[sel == 0], content[sel == 0])


@pytest.mark.parametrize("kwargs,msg", [
    (dict(alpha=1.5), "alpha 1.5 is out of range"),
    (dict(alpha=-0.1), "out of range"),
    (dict(selection=np.ones((3, 3), np.float32)), "selection: size 3×3 does not match"),
])
def test_bad_controls(stylizer, kwargs, msg):
    with pytest.raises(InputError, match=msg):
        stylizer.stylize(C, [S1], **kwargs)


def test_bad_styles(stylizer):
    with pytest.raises(InputError, match="no style"):
        stylizer.stylize(C, [])
    with pytest.raises(InputError, match="weight"):
        stylizer.stylize(C, [Style(S1, -1.0)])
    with pytest.raises(InputError, match="sum to 0"):
        stylizer.stylize(C, [Style(S1, 0.0)])
    with pytest.raises(InputError, match="style 1 region: size"):
        stylizer.stylize(C, [Style(S1, region=np.ones((5, 5), np.float32))])


def test_preview_is_small_inside_and_same_size_outside(stylizer):
    big = smooth_image(600, 900, seed=25)
    calls = []
    out = stylizer.stylize(big, [S1], preview=True, progress=lambda f, s: calls.append((f, s)))
    assert out.shape == big.shape
    assert calls and calls[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in calls)


def test_cancel_between_stages(stylizer):
    from sanet import Cancelled
    seen = []

    def cancel():
        seen.append(1)
        return len(seen) > 2
    with pytest.raises(Cancelled):
        stylizer.stylize(C, [S1], cancel_check=cancel)
