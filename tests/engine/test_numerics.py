"""The engine against the literal oracle (tests/oracle.py): same numbers to 1e-4 relative deviation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine_helpers import rel_dev, smooth_image, to_tensor


@pytest.mark.parametrize("content_hw,style_hw", [((64, 96), (80, 48)), ((128, 64), (64, 64)), ((32, 160), (96, 96))])
def test_engine_equals_literal_reference(stylizer, oracle, content_hw, style_hw):
    c = smooth_image(*content_hw, seed=1)
    s = smooth_image(*style_hw, seed=2)
    ref = oracle.stylize(to_tensor(c), to_tensor(s))[0].permute(1, 2, 0).numpy()
    assert ref.std() > 0.05, "synthetic weights give a near-constant output: the comparison would prove nothing"
    out = stylizer.stylize_raw(c, [s])
    assert out.shape == ref.shape and out.dtype == np.float32
    assert rel_dev(out, ref) <= 1e-4


def test_raw_output_is_unclamped(stylizer, oracle):
    c, s = smooth_image(64, 64, seed=3), smooth_image(64, 64, seed=4)
    ref = oracle.stylize(to_tensor(c), to_tensor(s))[0].permute(1, 2, 0).numpy()
    out = stylizer.stylize_raw(c, [s])
    if ref.min() < 0 or ref.max() > 1:  # whatever the reference does beyond [0,1], we do the same
        assert out.min() == pytest.approx(ref.min(), abs=1e-3) and out.max() == pytest.approx(ref.max(), abs=1e-3)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.75])
def test_alpha_tradeoff_matches_paper(stylizer, oracle, alpha):
    c, s = smooth_image(64, 64, seed=5), smooth_image(48, 64, seed=6)
    ref = oracle.stylize(to_tensor(c), to_tensor(s), alpha=alpha)[0].permute(1, 2, 0).numpy()
    assert rel_dev(stylizer.stylize_raw(c, [s], alpha=alpha), ref) <= 1e-4


def test_sdpa_attention_equals_literal_form(stylizer):
    """models.sanet.attend (fused SDPA, scale=1, also in query chunks) vs the explicit score matrix."""
    from oracle import literal_sanet
    from sanet.functional import mean_std
    from sanet.models.sanet import attend, style_level
    g = torch.Generator().manual_seed(7)
    fc = torch.relu(torch.randn(1, 512, 12, 10, generator=g)) * 30
    fs = torch.relu(torch.randn(1, 512, 9, 11, generator=g)) * 30
    module = stylizer.networks()["transformer"].sanet4_1
    with torch.no_grad():
        ref = literal_sanet(module, fc, fs)
        fs_cl, fc_cl = (x.contiguous(memory_format=torch.channels_last) for x in (fs, fc))
        lvl = style_level(module, fs_cl, *mean_std(fs_cl))
        for chunk in (None, 7, 64):
            got = attend(module, fc_cl, *mean_std(fc_cl), [lvl], chunk)[0]
            assert float((got - ref).abs().max() / ref.abs().max()) <= 1e-4  # fp32 summation order; the engine-level bar


def test_weights_load_from_legacy_pickles_with_weights_only(synthetic_weights):
    from sanet.checkpoints import CHECKPOINT_FILES
    for name in CHECKPOINT_FILES:
        raw = (synthetic_weights / name).read_bytes()[:2]
        assert raw == b"\x80\x02", f"{name} is not a legacy (non-zip) pickle"
        state = torch.load(synthetic_weights / name, map_location="cpu", weights_only=True)
        assert isinstance(state, dict) and state


def test_vgg_file_holds_layers_past_relu5_1_that_are_not_run(synthetic_weights, stylizer):
    state = torch.load(synthetic_weights / "vgg_normalised.pth", weights_only=True)
    assert {"45.weight", "48.weight", "51.weight"} <= set(state)  # relu5_2..relu5_4 convs are in the file
    n_convs = sum(1 for s in stylizer.networks()["encoder"] for m in s.modules() if isinstance(m, torch.nn.Conv2d))
    assert n_convs == 1 + 2 + 2 + 4 + 4 + 1  # 1×1 colour conv, then up to relu5_1 only
