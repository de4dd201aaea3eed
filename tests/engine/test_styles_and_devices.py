import numpy as np
import pytest
import torch

from engine_helpers import smooth_image
from sanet import DeviceError, Stylizer, StyleFeatures, vgg


def test_encoded_style_is_reused_and_skips_the_encoder(stylizer, monkeypatch):
    style = smooth_image(64, 64, seed=31)
    content = smooth_image(48, 48, seed=32)
    feats = stylizer.encode_style(style)
    assert isinstance(feats, StyleFeatures)
    expected = stylizer.stylize_raw(content, [style])
    stylizer.content_cache.clear()     # the content's features would be reused across calls too (test_loop.py)
    calls = []
    real = vgg.encode
    monkeypatch.setattr(vgg, "encode", lambda stages, x, levels: calls.append(x.shape) or real(stages, x, levels))
    out = stylizer.stylize_raw(content, [feats])
    assert len(calls) == 1, "only the content may be encoded when the style is given as StyleFeatures"
    np.testing.assert_array_equal(out, expected)


def test_style_cache_is_keyed_by_content_and_bounded(synthetic_weights):
    st = Stylizer(synthetic_weights, device="cpu", style_cache_size=2)
    a, b, c = (smooth_image(40, 40, seed=s) for s in (41, 42, 43))
    fa = st.encode_style(a)
    assert st.encode_style(a.copy()) is fa            # same pixels → cache hit
    b2 = b.copy()
    fb = st.encode_style(b2)
    b2[0, 0, 0] += 0.5
    assert st.encode_style(b2) is not fb              # one changed pixel → new entry
    st.encode_style(c)
    assert len(st.style_cache) == 2                   # bounded
    assert st.encode_style(a, max_side=16) is not st.encode_style(a)  # size is part of the key


def test_large_styles_are_capped(stylizer):
    big = smooth_image(300, 200, seed=44)
    assert stylizer.encode_style(big, max_side=100).size == (100, 67)
    assert stylizer.encode_style(big, max_side=None).size == (300, 200)


def test_devices_and_precision_errors(synthetic_weights):
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="'cuda' is not available"):
            Stylizer(synthetic_weights, device="cuda")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        Stylizer(synthetic_weights, device="tpu")
    with pytest.raises(DeviceError, match="precision 'fp16' is for GPUs"):
        Stylizer(synthetic_weights, device="cpu", precision="fp16")
    assert Stylizer(synthetic_weights, device="auto").device.type in ("cpu", "cuda", "mps")


def test_flush_to_zero_does_not_leak_into_the_caller(stylizer):
    """The engine flushes denormals while it runs (speed) and restores IEEE behaviour afterwards (Hypothesis and
    any numeric code in the same thread rely on subnormals)."""
    tiny = np.array([1e-39], dtype=np.float32)
    stylizer.stylize(smooth_image(32, 32, seed=60), [smooth_image(32, 32, seed=61)])
    stylizer.encode_style(smooth_image(40, 32, seed=62))
    assert float(torch.from_numpy(tiny).mul(1.0)[0]) != 0.0
