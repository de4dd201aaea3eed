"""SCSA semantic style transfer (sanet/models/scsa.py, sanet/labels.py) against literal forms of the method, on synthetic weights.

The literal forms below follow the facts (scsa-adaattn.md §1) step by step: semantic AdaIN with masks, the full
score matrix with a label mask filled with a large negative number (the official formulation), softmax, hard
top-1. The engine never builds that matrix (block-diagonal per label); the tests say both give the same numbers.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine_helpers import rel_dev, smooth_image, to_tensor
from oracle import mean_variance_norm as mvn

from sanet import InputError, Style
from sanet import functional
from sanet import labels as label_maps
from sanet.models import scsa

PALETTE = [(40, 160, 220), (200, 30, 30), (30, 200, 60), (240, 240, 20)]


def colour_map(ids, palette=PALETTE):
    return np.asarray(palette, dtype=np.uint8)[ids]


def grid(ids, step):
    """Labels at a feature grid by NEAREST pixel centres, written out: pixel step·i + step/2."""
    return torch.from_numpy(np.ascontiguousarray(ids[step // 2::step, step // 2::step])).reshape(-1)


# ------------------------------------------------------------------------------ literal reference forms

def literal_scsa_level(module, fc, mc, lc, fs, ms, ls, t1, t2):
    """The official SCSA block with explicit N×N label masks (every content label must exist in the style)."""
    b, c, h, w = fc.shape
    fcp = torch.zeros_like(fc)
    for k in torch.unique(lc).tolist():
        cm = (lc == k).float().view(1, 1, h, w)
        sm = (ls == k).float().view(1, 1, *fs.shape[-2:])
        mu_c = (fc * cm).sum((2, 3), keepdim=True) / cm.sum()
        sd_c = ((((fc - mu_c) ** 2) * cm).sum((2, 3), keepdim=True) / cm.sum() + 1e-5).sqrt()
        mu_s = (fs * sm).sum((2, 3), keepdim=True) / sm.sum()
        sd_s = ((((fs - mu_s) ** 2) * sm).sum((2, 3), keepdim=True) / sm.sum() + 1e-5).sqrt()
        fcp = fcp + ((fc - mu_c) / sd_c * sd_s + mu_s) * cm
    same = lc.view(-1, 1) == ls.view(1, -1)                                   # Nc × Ns label mask
    v = module.h(fs).view(b, c, -1)
    q = module.f(mvn(mc)).view(b, c, -1).permute(0, 2, 1)
    k = module.g(mvn(ms)).view(b, c, -1)
    attn = torch.softmax(torch.bmm(q, k).masked_fill(~same, -1e9), dim=-1)
    sca = torch.bmm(v, attn.permute(0, 2, 1)).view(b, c, h, w)
    q2 = module.f(mvn(fcp)).view(b, c, -1).permute(0, 2, 1)
    k2 = module.g(mvn(fs)).view(b, c, -1)
    best = torch.bmm(q2, k2).masked_fill(~same, -1e9).argmax(dim=-1)[0]
    ssa = v[:, :, best].view(b, c, h, w)
    return t1 * module.out_conv(sca) + t2 * module.out_conv(ssa) + fcp


def literal_scsa_whole(module, fc, mc, fs, ms, t1, t2):
    """Single label everywhere: AdaIN (biased std, eps inside) + SCA + SSA on whole images, no masks at all."""
    b, c, h, w = fc.shape
    mu_c, mu_s = fc.mean((2, 3), keepdim=True), fs.mean((2, 3), keepdim=True)
    sd_c = (((fc - mu_c) ** 2).mean((2, 3), keepdim=True) + 1e-5).sqrt()
    sd_s = (((fs - mu_s) ** 2).mean((2, 3), keepdim=True) + 1e-5).sqrt()
    fcp = (fc - mu_c) / sd_c * sd_s + mu_s
    v = module.h(fs).view(b, c, -1)
    attn = torch.softmax(torch.bmm(module.f(mvn(mc)).view(b, c, -1).permute(0, 2, 1),
                                   module.g(mvn(ms)).view(b, c, -1)), dim=-1)
    sca = torch.bmm(v, attn.permute(0, 2, 1)).view(b, c, h, w)
    best = torch.bmm(module.f(mvn(fcp)).view(b, c, -1).permute(0, 2, 1), module.g(mvn(fs)).view(b, c, -1)).argmax(-1)
    ssa = v[:, :, best[0]].view(b, c, h, w)
    return t1 * module.out_conv(sca) + t2 * module.out_conv(ssa) + fcp


def literal_image(oracle, level_fn, content, style, cmap_img, smap_img):
    """Encode with the oracle's encoder, run level_fn(module, level, c, mc, s, ms) at relu4_1/5_1, merge, decode."""
    c, s = oracle.encode(to_tensor(content)), oracle.encode(to_tensor(style))
    mc, ms = oracle.encode(to_tensor(cmap_img)), oracle.encode(to_tensor(smap_img))
    t = oracle.transform
    o4 = level_fn(t.sanet4_1, 4, c[3], mc[3], s[3], ms[3])
    o5 = level_fn(t.sanet5_1, 5, c[4], mc[4], s[4], ms[4])
    feat = t.merge_conv(t.merge_conv_pad(o4 + F.interpolate(o5, scale_factor=2, mode="nearest")))
    return oracle.decoder(feat)[0].permute(1, 2, 0).numpy()


# ------------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("t1,t2", [(0.7, 0.3), (0.2, 1.1)])
def test_single_label_equals_whole_image_formula(stylizer, oracle, t1, t2):
    content, style = smooth_image(64, 64, seed=11), smooth_image(64, 48, seed=12)
    cmap, smap = colour_map(np.zeros((64, 64), int)), colour_map(np.zeros((64, 48), int))
    with torch.no_grad():
        ref = literal_image(oracle, lambda m, lvl, c, mc, s, ms: literal_scsa_whole(m, c, mc, s, ms, t1, t2),
                            content, style, cmap.astype(np.float32) / 255, smap.astype(np.float32) / 255)
    assert ref.std() > 0.05
    out = stylizer.stylize_raw(content, [Style(style, labels=smap)], content_labels=cmap, label_palette=PALETTE,
                               scsa_weights=(t1, t2))
    assert rel_dev(out, ref) <= 1e-4
    assert rel_dev(out, stylizer.stylize_raw(content, [style])) > 1e-2, "SCSA must differ from plain SANet"


def test_block_diagonal_equals_masked_official_form(stylizer, oracle):
    """Three content labels (one a thin strip), three style labels laid out differently; full images."""
    cl = np.zeros((64, 80), int)
    cl[:, 40:] = 1
    cl[20:36, :] = 2
    sl = np.zeros((64, 64), int)
    sl[32:, :] = 1
    sl[:, 48:] = 2
    content, style = smooth_image(64, 80, seed=13), smooth_image(64, 64, seed=14)
    cmap, smap = colour_map(cl), colour_map(sl)

    def level(m, lvl, c, mc, s, ms):
        step = 8 if lvl == 4 else 16
        return literal_scsa_level(m, c, mc, grid(cl, step), s, ms, grid(sl, step), 0.7, 0.3)

    with torch.no_grad():
        ref = literal_image(oracle, level, content, style, cmap.astype(np.float32) / 255,
                            smap.astype(np.float32) / 255)
    out = stylizer.stylize_raw(content, [Style(style, labels=smap)], content_labels=cmap)  # palette inferred
    assert rel_dev(out, ref) <= 1e-4


def _features(seed, shape):
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(*shape, generator=g)) * 20


def _reflect_region(x, mask):
    """Negate each channel's deviations from its region mean inside `mask`: the region's (and the whole map's)
    mean and variance stay exactly the same, the values do not, so only attention that reads them can notice."""
    flat = x.clone().flatten(2)
    sel = flat[:, :, mask]
    mu = sel.mean(2, keepdim=True)
    flat[:, :, mask] = 2 * mu - sel
    return flat.view_as(x)


@pytest.mark.parametrize("level", ["sanet4_1", "sanet5_1"])
def test_attention_never_crosses_labels(stylizer, level):
    module = getattr(stylizer.networks()["transformer"], level)
    fc, mc = _features(1, (1, 512, 10, 12)), _features(2, (1, 512, 10, 12))
    fs, ms = _features(3, (1, 512, 9, 14)), _features(4, (1, 512, 9, 14))
    lc = torch.zeros(10, 12)
    lc[:, 6:] = 1                                   # content: A left, B right
    ls = torch.zeros(9, 14)
    ls[5:, :] = 1                                   # style: A top, B bottom
    in_a, style_b = lc.reshape(-1) == 0, ls.reshape(-1) == 1
    fs2, ms2 = _reflect_region(fs, style_b), _reflect_region(ms, style_b)

    def run(style_feat, style_map, labels_c, labels_s):
        s = scsa.semantic_style_level(module, style_feat, style_map, labels_s)
        return scsa.scsa_attend(module, fc, mc, scsa.grid_labels(labels_c, (10, 12)), s).flatten(2)[0]

    with torch.no_grad():
        before, after = run(fs, ms, lc, ls), run(fs2, ms2, lc, ls)
        assert rel_dev(after[:, in_a].numpy(), before[:, in_a].numpy()) <= 1e-5    # region A saw no B pixel
        assert rel_dev(after[:, ~in_a].numpy(), before[:, ~in_a].numpy()) > 1e-3   # region B did change
        # the same change with one label everywhere reaches region A: the test can see a crossing
        one_c, one_s = torch.zeros_like(lc), torch.zeros_like(ls)
        assert rel_dev(run(fs2, ms2, one_c, one_s)[:, in_a].numpy(), run(fs, ms, one_c, one_s)[:, in_a].numpy()) > 1e-3


def test_semantic_adain_uses_only_the_same_label():
    g = torch.Generator().manual_seed(5)
    fc, fs = torch.randn(30, 8, generator=g), torch.randn(40, 8, generator=g)
    lc, ls = torch.tensor([0] * 10 + [1] * 20), torch.tensor([0] * 25 + [1] * 15)
    labels, mean, std = scsa.region_stats(fs, ls)
    a, matched = scsa.semantic_adain(fc, lc, labels, mean, std)
    fs2 = fs.clone()
    fs2[25:] = fs2[25:] * 3 + 7                     # style region 1 only
    b, _ = scsa.semantic_adain(fc, lc, *scsa.region_stats(fs2, ls))
    assert matched.all() and torch.equal(a[:10], b[:10]) and not torch.allclose(a[10:], b[10:])
    # region 1 of the output carries style region 1's statistics (biased std, eps inside)
    assert torch.allclose(a[10:].mean(0), fs[25:].mean(0), atol=1e-5)
    assert torch.allclose(a[10:].std(0, unbiased=False), fs[25:].std(0, unbiased=False), rtol=1e-3)


def test_missing_style_label_falls_back_to_plain_sanet(stylizer):
    content, style = smooth_image(48, 64, seed=15), smooth_image(64, 64, seed=16)
    out = stylizer.stylize_raw(content, [Style(style, labels=np.zeros((64, 64), int))],
                               content_labels=np.full((48, 64), 3))
    assert rel_dev(out, stylizer.stylize_raw(content, [style])) <= 1e-5


@pytest.mark.parametrize("content_hw,style_hw", [((50, 70), (45, 61)), ((33, 97), (70, 20)), ((17, 17), (40, 40))])
def test_nan_free_with_empty_regions_at_any_size(stylizer, content_hw, style_hw):
    h, w = content_hw
    cl = np.zeros((h, w), int)
    cl[:, w // 2:] = 1
    cl[h // 2, w // 3] = 2                          # one pixel: vanishes at the feature grids
    cl[: h // 3, : w // 3] = 5                      # a label the style lacks: fallback
    sl = np.zeros(style_hw, int)
    sl[style_hw[0] // 2:, :] = 1
    sl[0, 0] = 9                                    # a style-only one-pixel label
    content, style = smooth_image(h, w, seed=17), smooth_image(*style_hw, seed=18)
    out = stylizer.stylize(content, [Style(style, labels=sl)], content_labels=cl)
    assert out.shape == (h, w, 3) and np.isfinite(out).all()
    raw = stylizer.stylize_raw(content, [Style(style, labels=sl)], content_labels=cl, alpha=0.6, preserve_color=True)
    assert raw.shape == (h, w, 3) and np.isfinite(raw).all()


def test_integer_and_colour_maps_agree(stylizer):
    cl = np.zeros((40, 56), int)
    cl[10:30, 20:] = 1
    sl = np.zeros((48, 48), int)
    sl[:, :20] = 1
    content, style = smooth_image(40, 56, seed=19), smooth_image(48, 48, seed=20)
    a = stylizer.stylize_raw(content, [Style(style, labels=sl)], content_labels=cl, label_palette=PALETTE)
    noisy = colour_map(cl).astype(np.int16) + np.random.default_rng(0).integers(-12, 13, (40, 56, 3))
    b = stylizer.stylize_raw(content, [Style(style, labels=colour_map(sl))],
                             content_labels=np.clip(noisy, 0, 255).astype(np.uint8), label_palette=PALETTE)
    assert np.array_equal(a, b)  # noisy colours snap to the palette at full resolution


def test_labels_work_with_alpha_and_other_styles(stylizer):
    content, s1, s2 = smooth_image(48, 48, seed=21), smooth_image(48, 48, seed=22), smooth_image(48, 48, seed=23)
    cl = np.zeros((48, 48), int)
    cl[24:] = 1
    zero = stylizer.stylize_raw(content, [Style(s1, labels=cl)], content_labels=cl, alpha=0.0)
    assert rel_dev(zero, stylizer.stylize_raw(content, [s1], alpha=0.0)) <= 1e-6  # α = 0: content reconstruction
    mixed = stylizer.stylize_raw(content, [Style(s1, labels=cl), Style(s2)], content_labels=cl, alpha=0.5)
    assert np.isfinite(mixed).all()


def test_top1_chunking_is_exact(monkeypatch):
    g = torch.Generator().manual_seed(8)
    q, k, v = torch.randn(50, 16, generator=g), torch.randn(70, 16, generator=g), torch.randn(70, 16, generator=g)
    whole = functional.top1(q, k, v)
    monkeypatch.setattr(functional, "TOP1_SCORE_BUDGET", 70 * 7)
    assert torch.equal(whole, functional.top1(q, k, v))


def test_palette_inference_and_snapping():
    c = colour_map(np.array([[0, 1], [2, 1]]))
    s = colour_map(np.array([[1, 1], [3, 0]]))
    cm, (sm,) = label_maps.resolve_label_maps(c, [s])     # no palette: distinct colours of both maps, shared ids
    assert cm.ids[0, 1] == sm.ids[0, 0] and cm.ids[0, 0] == sm.ids[1, 1] and len(np.unique(sm.ids)) == 3
    cm, _ = label_maps.resolve_label_maps(c + 9, [None], palette=["#28a0dc", (200, 30, 30), (30, 200, 60)])
    assert cm.ids.tolist() == [[0, 1], [2, 1]]


def test_painted_map_with_antialiased_edges_infers_its_labels():
    """Brush edges blend the two label colours: >64 distinct colours, yet the labels are the two main ones."""
    ids = np.zeros((60, 80), int)
    ids[:, 40:] = 1
    m = colour_map(ids).astype(np.float32)
    t = np.linspace(0.0, 1.0, 120)
    a, b = np.asarray(PALETTE[0], np.float32), np.asarray(PALETTE[1], np.float32)
    for i, ti in enumerate(t):                      # 120 blends along the edge, one pixel each
        m[i // 2, 39 + i % 2] = (1 - ti) * a + ti * b
    cm, _ = label_maps.resolve_label_maps(np.rint(m).astype(np.uint8), [None])
    assert len(np.unique(cm.ids)) == 2
    assert cm.ids[0, 39] == cm.ids[0, 0] and cm.ids[59, 40] == cm.ids[0, 79] != cm.ids[0, 0]


@pytest.mark.parametrize("kwargs,style_labels,message", [
    (dict(content_labels=np.zeros((40, 40), int)), None, "no style has a label map"),
    (dict(), np.zeros((40, 40), int), "the content has none"),
    (dict(content_labels=np.zeros((30, 40), int)), np.zeros((40, 40), int), "content label map: size 40×30"),
    (dict(content_labels=np.zeros((40, 40), int)), np.zeros((40, 41), int), "style 1 label map: size 41×40"),
    (dict(content_labels=np.full((40, 40), 0.5)), np.zeros((40, 40), int), "non-integer"),
    (dict(content_labels=np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)),
     np.zeros((40, 40), int), "distinct colours"),
    (dict(content_labels=np.zeros((40, 40), int), label_palette=["#12"]), np.zeros((40, 40), int), "#rrggbb"),
    (dict(content_labels=np.zeros((40, 40), int), scsa_weights=(0.7,)), np.zeros((40, 40), int), "scsa_weights"),
])
def test_bad_label_input_is_one_clear_message(stylizer, kwargs, style_labels, message):
    img = smooth_image(40, 40, seed=24)
    with pytest.raises(InputError, match=message):
        stylizer.stylize(img, [Style(img, labels=style_labels)], **kwargs)


def test_labels_need_the_style_image_not_features(stylizer):
    img = smooth_image(40, 40, seed=25)
    feats = stylizer.encode_style(img)
    with pytest.raises(InputError, match="needs the style image"):
        stylizer.stylize(img, [Style(feats, labels=np.zeros((40, 40), int))], content_labels=np.zeros((40, 40), int))


def test_tiled_run_equals_whole_image(synthetic_weights):
    """Large-image engine: tiles with whole-image per-region statistics give the whole-image result."""
    from sanet import Stylizer
    from sanet.runtime import planner
    st = Stylizer(synthetic_weights, device="cpu")
    h, w = 250, 200                                 # pads to 256×208: not a multiple of 16, 4×4 tiles of ≤64 px
    cl = np.zeros((h, w), int)
    cl[:, 120:] = 1
    cl[100:140, 30:90] = 2                          # label 2: not in the style → plain-SANet fallback
    sl = np.zeros((96, 80), int)
    sl[50:, :] = 1
    content, s1, s2 = smooth_image(h, w, seed=26), smooth_image(96, 80, seed=27), smooth_image(64, 64, seed=28)
    styles = [Style(s1, labels=sl), Style(s2, weight=0.5)]
    whole = st.stylize_raw(content, styles, content_labels=cl, alpha=0.8)
    assert not st.last_plan.tiled
    st.memory_budget = planner.budget_for_tile(64, h, w)
    tiled = st.stylize_raw(content, styles, content_labels=cl, alpha=0.8)
    assert st.last_plan.tiled and st.last_plan.tile == 64
    assert float(np.abs(tiled - whole).max() / (whole.max() - whole.min())) <= 1e-4


def test_labelled_styles_are_encoded_once_per_model(stylizer):
    content, style = smooth_image(40, 40, seed=29), smooth_image(48, 48, seed=30)
    cl, sl = np.zeros((40, 40), int), np.zeros((48, 48), int)
    stylizer.clear_cache()                          # earlier tests may have filled it to its size
    count = lambda: len(stylizer.style_cache)  # noqa: E731
    before = count()
    a = stylizer.stylize_raw(content, [Style(style, labels=sl)], content_labels=cl)
    b = stylizer.stylize_raw(content, [Style(style, labels=sl)], content_labels=cl)
    assert np.array_equal(a, b) and count() == before + 1
    sl2 = sl.copy()
    sl2[:10] = 1                                    # other labels on the same image: encoded again
    stylizer.stylize_raw(content, [Style(style, labels=sl2)], content_labels=cl)
    assert count() == before + 2


def test_labels_with_preview_selection_and_rgba_layers(stylizer):
    """Preview shrinks the content (labels follow with NEAREST); RGBA uint8 layers keep alpha; selection blends."""
    h, w = 40, 530                                  # long side > 512: preview resizes to 512 wide
    content = (np.concatenate([smooth_image(h, w, seed=31), smooth_image(h, w, seed=32)[:, :, :1]], axis=2)
               * 255).astype(np.uint8)
    cl = np.zeros((h, w), int)
    cl[:, 265:] = 1
    sl = np.zeros((48, 48), int)
    sl[24:] = 1
    sel = np.zeros((h, w), np.float32)
    sel[:, 100:] = 1.0
    style = Style(smooth_image(48, 48, seed=33), labels=sl)
    out = stylizer.stylize(content, [style], content_labels=cl, preview=True, selection=sel)
    assert out.shape == content.shape and out.dtype == np.uint8
    assert np.array_equal(out[:, :, 3], content[:, :, 3]) and np.array_equal(out[:, :100], content[:, :100])
    plain = stylizer.stylize(content, [style.source], preview=True, selection=sel)
    assert np.abs(out.astype(int) - plain.astype(int)).max() > 10
