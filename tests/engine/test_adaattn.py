"""AdaAttN through the shared runtime, against the literal released forward pass (tests/oracle_adaattn.py).

Synthetic checkpoints in the released layout (tests/synthetic.py: legacy pickles, attention as peaked as SANet's real
files, outputs ~0.5 ± 0.2). The oracle runs in float64, the exact value of the released equations (fixture
ada_oracle says why). Two bars:
  - the equations: the engine run in fp64 (its reference precision) equals the oracle to 1e-6 of the output range,
    for every path (key subsampling at each level, all keys, α, weights and regions, SCSA labels);
  - fp32 on the CPU: within 1e-4 of the oracle's range on the fidelity configurations only. That is not a bound
    for every image: bench/bench_adaattn_precision.py measures fp32 up to 2e-3 of the range (median 6e-5 over 24
    pairs) where attention is sharply peaked, from the fp32 encoder's rounding amplified by the softmax, not from the
    moments (the engine takes them about the values' mean, so std = sqrt(A·v² − mean²) does not cancel; fp64
    moments change nothing measurable). The released code run in fp32 is 1–4.4e-4 off its own exact value.
    docs/benchmarks.md, "AdaAttN in fp32: the precision floor".
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine_helpers import smooth_image, to_tensor
from oracle import mean_variance_norm as mvn
from oracle_adaattn import get_key
from sanet import Cancelled, InputError, Style, Stylizer, WeightsError, vgg
from sanet.models import adaattn
from sanet.runtime import planner


EXACT = 1e-6


@pytest.fixture(scope="module")
def ada64(adaattn_weights):
    return Stylizer(adaattn_weights, device="cpu", model="adaattn", precision="fp64")


def dev(a, b):
    return float(np.abs(a - b).max() / (b.max() - b.min()))


def ref(oracle, content, style, **kw):
    c, s = to_tensor(content).double(), to_tensor(style).double()
    return oracle.stylize(c, s, **kw)[0].permute(1, 2, 0).numpy()


# ------------------------------------------------------------------------------------------------ fidelity

@pytest.mark.parametrize("content_hw,style_hw", [((64, 96), (80, 48)), ((128, 64), (64, 64)), ((32, 160), (96, 96)),
                                                 ((64, 64), (272, 272))])   # 68² relu3_1 positions > 64²: sampled
def test_engine_equals_the_released_forward_pass(ada, ada_oracle, content_hw, style_hw):
    c, s = smooth_image(*content_hw, seed=1), smooth_image(*style_hw, seed=2)
    want = ref(ada_oracle, c, s)
    assert want.std() > 0.05, "synthetic weights give a near-constant output: the comparison would prove nothing"
    out = ada.stylize_raw(c, [s])
    assert out.shape == want.shape and out.dtype == np.float32
    assert dev(out, want) <= 1e-4
    assert ada.last_info["model"] == "adaattn"


@pytest.mark.parametrize("content_hw,style_hw,alpha", [((64, 96), (80, 48), 1.0), ((64, 64), (272, 272), 1.0),
                                                       ((64, 64), (48, 64), 0.0), ((48, 80), (64, 64), 0.3)])
def test_the_equations_are_the_releases(ada64, ada_oracle, content_hw, style_hw, alpha):
    c, s = smooth_image(*content_hw, seed=33), smooth_image(*style_hw, seed=34)
    assert dev(ada64.stylize_raw(c, [s], alpha=alpha), ref(ada_oracle, c, s, alpha=alpha)) <= EXACT


def test_relu4_1_and_relu5_1_subsampling_equal_the_release(ada64, ada_oracle, monkeypatch):
    """The release samples relu4_1/5_1 keys only above 256² positions (a >2048² style): same code path, lower caps."""
    monkeypatch.setitem(adaattn.SAMPLE_CAP, 4, 40)
    monkeypatch.setitem(adaattn.SAMPLE_CAP, 5, 9)
    monkeypatch.setitem(ada_oracle.max_sample, 3, 40)
    monkeypatch.setitem(ada_oracle.max_sample, 4, 9)
    ada64.clear_cache()
    c, s = smooth_image(64, 64, seed=3), smooth_image(96, 80, seed=4)
    out = ada64.stylize_raw(c, [s])
    ada64.clear_cache()
    assert dev(out, ref(ada_oracle, c, s)) <= EXACT
    assert dev(out, ref(ada_oracle, c, s, subsample=False)) > 1e-3, "the subsampling must make a difference here"


def test_all_style_keys_is_full_attention(ada, ada64, ada_oracle):
    c, s = smooth_image(64, 64, seed=5), smooth_image(272, 272, seed=6)
    assert dev(ada64.stylize_raw(c, [s], style_keys="all"), ref(ada_oracle, c, s, subsample=False)) <= EXACT
    full = ada.stylize_raw(c, [s], style_keys="all")
    assert dev(full, ada.stylize_raw(c, [s])) > 1e-2                 # the default samples relu3_1 keys


def test_sampling_uses_a_local_generator_equal_to_the_release():
    torch.manual_seed(1)
    state = torch.get_rng_state()
    idx = adaattn.sample_index(5000, 4096)
    assert torch.equal(torch.get_rng_state(), state), "the global random state must not move"
    torch.manual_seed(6666)
    assert torch.equal(idx, torch.randperm(5000)[:4096])             # what the release draws on the global seed
    assert adaattn.sample_index(4096, 4096) is None and adaattn.sample_index(10, None) is None


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.75])
def test_alpha_mixes_transformer_output_and_skip(ada, ada_oracle, alpha):
    c, s = smooth_image(64, 64, seed=7), smooth_image(48, 64, seed=8)
    assert dev(ada.stylize_raw(c, [s], alpha=alpha), ref(ada_oracle, c, s, alpha=alpha)) <= 1e-4


def test_style_interpolation_and_regions_mix_both_decoder_inputs(ada64, ada_oracle):
    """Σ_k c_k X(c, s_k) + rest · X(c, c) for X = transformer output (relu4_1 grid) and skip (relu3_1 grid)."""
    c, s1, s2 = smooth_image(64, 64, seed=9), smooth_image(64, 64, seed=10), smooth_image(48, 80, seed=11)
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1.0
    mask[:, 28:36] = np.linspace(1, 0, 8)
    a = 0.8
    o = ada_oracle
    with torch.no_grad():
        cf = o.encode(to_tensor(c).double())
        parts = [o.decoder_inputs(cf, o.encode(to_tensor(x).double())) for x in (s1, s2, c)]

        def area(m, n):
            return F.interpolate(torch.from_numpy(m).double()[None, None], size=(n, n), mode="area")
        coeff = [(a * area(mask, 8), a * area(mask, 16)), (a * area(1 - mask, 8), a * area(1 - mask, 16)),
                 ((1 - a) * torch.ones(1, 1, 8, 8), (1 - a) * torch.ones(1, 1, 16, 16))]
        cs = sum(k[0] * p[0] for k, p in zip(coeff, parts))
        skip = sum(k[1] * p[1] for k, p in zip(coeff, parts))
        want = o.decode(cs, skip)[0].permute(1, 2, 0).numpy()
    out = ada64.stylize_raw(c, [Style(s1, region=mask), Style(s2, region=1 - mask)], alpha=a)
    assert dev(out, want) <= EXACT
    weighted = ada64.stylize_raw(c, [Style(s1, 0.7), Style(s2, 0.3)])
    with torch.no_grad():
        want = o.decode(0.7 * parts[0][0] + 0.3 * parts[1][0], 0.7 * parts[0][1] + 0.3 * parts[1][1])
    assert dev(weighted, want[0].permute(1, 2, 0).numpy()) <= EXACT


# ------------------------------------------------------------------------------------------------ runtime

def test_tiled_equals_whole_with_every_control(ada, monkeypatch):
    """α < 1 (T(c, c)), two styles with regions, a soft selection, colour preservation, uint16 out; tiles of 64 px
    with kept maps and with re-encoded maps; the content larger than the style cap (T(c, c) from the downscaled
    content in both runs)."""
    h, w = 200, 264
    rng = np.random.default_rng(5)
    c = (smooth_image(h, w, seed=12) * 65535).astype(np.uint16)
    s1, s2 = smooth_image(96, 128, seed=13), smooth_image(128, 96, seed=14)
    ramp = np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))
    sel = np.clip(rng.random((h, w), dtype=np.float32) * 1.5 - 0.25, 0, 1)
    kw = dict(alpha=0.6, preserve_color=True, selection=sel, style_max_side=256)
    styles = [Style(s1, region=ramp), Style(s2, region=1 - ramp)]
    whole = ada.stylize(c, styles, **kw)
    raw_whole = ada.stylize_raw(c, styles, alpha=0.5, style_max_side=200)
    assert not ada.last_plan.tiled
    real = planner.make_plan
    for keep in (True, False):
        monkeypatch.setattr(planner, "make_plan", lambda *a, **k: planner.Plan(
            True, 64, keep, None, 1 << 30, 0, real(*a, **k).costs))
        out = ada.stylize(c, styles, **kw)
        assert ada.last_plan.tiled and ada.last_plan.tile == 64 and ada.last_plan.keep_features == keep
        assert out.dtype == np.uint16 and out.shape == c.shape
        assert np.abs(out.astype(np.int64) - whole.astype(np.int64)).max() <= 2
        assert np.array_equal(out[sel <= 0], c[sel <= 0])
        assert dev(ada.stylize_raw(c, styles, alpha=0.5, style_max_side=200), raw_whole) <= 1e-4


@pytest.mark.slow
def test_2048x1536_tiled_vs_whole_within_1e3_of_range(adaattn_weights):
    big = Stylizer(adaattn_weights, device="cpu", model="adaattn", memory_budget=12 * planner.GIB)
    c, s = smooth_image(1536, 2048, seed=15), smooth_image(256, 256, seed=16)
    whole = big.stylize_raw(c, [s])
    assert not big.last_plan.tiled
    big.memory_budget = planner.budget_for_tile(512, 1536, 2048, costs=adaattn.MODEL.costs)
    out = big.stylize_raw(c, [s])
    assert big.last_plan.tiled
    assert dev(out, whole) <= 1e-3


def test_any_size_format_preview_selection_progress_cancel(ada):
    style = (smooth_image(40, 40, seed=17) * 255).astype(np.uint8)
    for hw in [(1, 1), (17, 33), (45, 61), (3, 200)]:
        img = (smooth_image(*hw, seed=hw[0] + hw[1], channels=4) * 255).astype(np.uint8)
        out = ada.stylize(img, [style])
        assert out.shape == img.shape and out.dtype == np.uint8 and np.array_equal(out[:, :, 3], img[:, :, 3])
    big = smooth_image(300, 700, seed=18)
    sel = np.zeros((300, 700), np.float32)
    sel[:, 350:] = 1
    seen = []
    out = ada.stylize(big, [style], preview=True, selection=sel, progress=lambda f, st: seen.append((f, st)))
    assert out.shape == big.shape and np.array_equal(out[:, :350], big[:, :350])
    assert seen[-1] == (1.0, "done") and [f for f, _ in seen] == sorted(f for f, _ in seen)
    checks = []
    with pytest.raises(Cancelled):
        ada.stylize(big, [style], cancel_check=lambda: checks.append(1) or len(checks) > 2)


def test_cached_style_features_skip_the_encoder(ada, monkeypatch):
    c, s = smooth_image(48, 48, seed=19), smooth_image(64, 64, seed=20)
    feats = ada.encode_style(s)
    assert feats.model == "adaattn" and ada.encode_style(s.copy()) is feats
    expected = ada.stylize_raw(c, [s])
    ada.content_cache.clear()          # the content's features would be reused across calls too (test_loop.py)
    calls = []
    real = vgg.encode
    monkeypatch.setattr(vgg, "encode", lambda stages, x, levels: calls.append(levels) or real(stages, x, levels))
    assert np.array_equal(ada.stylize_raw(c, [feats]), expected)
    assert len(calls) == 1                                  # the content only
    assert ada.encode_style(s, style_keys="all") is not feats


def test_one_stylizer_serves_both_models(adaattn_weights, stylizer):
    both = Stylizer(adaattn_weights, device="cpu")          # SANet by default, AdaAttN loaded on first use
    assert both.available_models() == ["sanet", "adaattn"]
    c, s = smooth_image(48, 64, seed=21), smooth_image(48, 48, seed=22)
    assert np.array_equal(both.stylize_raw(c, [s]), stylizer.stylize_raw(c, [s]))
    a = both.stylize_raw(c, [s], model="adaattn")
    assert both.last_info["model"] == "adaattn" and dev(a, both.stylize_raw(c, [s])) > 1e-2


# ------------------------------------------------------------------------------------------------ files

def test_missing_files_are_one_error_naming_them_and_the_folder(synthetic_weights, tmp_path):
    with pytest.raises(WeightsError) as exc:
        Stylizer(synthetic_weights, device="cpu", model="adaattn")   # SANet's folder: no AdaAttN files
    msg = str(exc.value)
    assert "\n" not in msg and str(synthetic_weights) in msg
    assert all(f in msg for f in ("latest_net_transformer.pth", "latest_net_decoder.pth", "latest_net_adaattn_3.pth"))
    sanet_only = Stylizer(synthetic_weights, device="cpu")
    assert sanet_only.available_models() == ["sanet"]
    with pytest.raises(WeightsError, match="latest_net_decoder.pth"):
        sanet_only.stylize(smooth_image(32, 32, seed=1), [smooth_image(32, 32, seed=2)], model="adaattn")


def test_mixed_and_malformed_files_name_the_file_and_the_mismatch(adaattn_weights, tmp_path):
    for f in adaattn_weights.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    # SANet's decoder where AdaAttN's belongs
    (tmp_path / "latest_net_decoder.pth").write_bytes((adaattn_weights / "decoder_iter_500000.pth").read_bytes())
    with pytest.raises(WeightsError) as exc:
        Stylizer(tmp_path, device="cpu", model="adaattn")
    assert str(exc.value).startswith(str(tmp_path / "latest_net_decoder.pth"))
    assert "the file holds SANet's decoder_iter_500000.pth" in str(exc.value)
    (tmp_path / "latest_net_decoder.pth").write_bytes((adaattn_weights / "latest_net_decoder.pth").read_bytes())
    state = torch.load(tmp_path / "latest_net_adaattn_3.pth", weights_only=True)
    state["f.weight"] = state["f.weight"][:, :256]
    torch.save(state, tmp_path / "latest_net_adaattn_3.pth", _use_new_zipfile_serialization=False)
    with pytest.raises(WeightsError, match=r"latest_net_adaattn_3.pth: key 'f.weight' has shape \[448, 256, 1, 1\], "
                                           r"expected \[448, 448, 1, 1\]"):
        Stylizer(tmp_path, device="cpu", model="adaattn")


def test_released_layout_keys_and_shapes():
    layout = {name: {k: tuple(v.shape) for k, v in m.state_dict().items()}
              for name, m in adaattn.MODEL.build().items()}
    t, d, a3 = layout["transformer"], layout["decoder"], layout["adaattn_3"]
    assert t["attn_adain_4_1.f.weight"] == (960, 960, 1, 1) and t["attn_adain_4_1.h.weight"] == (512, 512, 1, 1)
    assert t["attn_adain_5_1.g.weight"] == (1472, 1472, 1, 1) and t["merge_conv.weight"] == (512, 512, 3, 3)
    assert a3["f.weight"] == (448, 448, 1, 1) and a3["h.weight"] == (256, 256, 1, 1)
    assert d["decoder_layer_1.1.weight"] == (256, 512, 3, 3)
    convs = {int(k.split(".")[1]): v for k, v in d.items() if k.startswith("decoder_layer_2") and k.endswith("weight")}
    assert {i: v[:2] for i, v in convs.items()} == {1: (256, 512), 4: (256, 256), 7: (256, 256), 10: (128, 256),
                                                    14: (128, 128), 17: (64, 128), 21: (64, 64), 24: (3, 64)}
    assert all(k.replace("weight", "bias") in layer for layer in layout.values() for k in layer if k.endswith("weight"))


def test_synthetic_files_are_legacy_pickles(adaattn_weights):
    for name in ("latest_net_transformer.pth", "latest_net_decoder.pth", "latest_net_adaattn_3.pth"):
        assert (adaattn_weights / name).read_bytes()[:2] == b"\x80\x02"


# ------------------------------------------------------------------------------------------------ SCSA

PALETTE = [(40, 160, 220), (200, 30, 30), (30, 200, 60)]


def grid(ids, step):
    return torch.from_numpy(np.ascontiguousarray(ids[step // 2::step, step // 2::step])).reshape(-1)


def literal_scsa_adaattn(module, content, style, ckey, skey, lc, ls, t1, t2):
    """The module-doc equations with an explicit N×N label mask; rows whose label the style lacks: plain AdaAttN."""
    b, _, h, w = content.shape
    q = module.f(ckey).view(b, -1, h * w).permute(0, 2, 1)
    k = module.g(skey).flatten(2)
    v = module.h(style).flatten(2).transpose(1, 2)
    scores = torch.bmm(q, k)
    same = (lc.view(-1, 1) == ls.view(1, -1))[None]
    soft = torch.softmax(scores.masked_fill(~same, -1e30), dim=-1)
    hard = F.one_hot(scores.masked_fill(~same, -1e30).argmax(-1), scores.shape[-1]).to(scores.dtype)
    p = torch.where(same.any(-1, keepdim=True), (t1 * soft + t2 * hard) / (t1 + t2), torch.softmax(scores, dim=-1))
    mean = torch.bmm(p, v)
    std = torch.sqrt(torch.relu(torch.bmm(p, v ** 2) - mean ** 2))
    to_map = lambda x: x.view(b, h, w, -1).permute(0, 3, 1, 2)  # noqa: E731
    return to_map(std) * mvn(content) + to_map(mean)


def literal_scsa_image(o, content, style, cl, sl, t1, t2):
    c, s = o.encode(to_tensor(content).double()), o.encode(to_tensor(style).double())
    t = o.transformer
    lvl = lambda m, i, step: literal_scsa_adaattn(m, c[i], s[i], get_key(c, i), get_key(s, i),  # noqa: E731
                                                   grid(cl, step), grid(sl, step), t1, t2)
    skip = lvl(o.adaattn_3, 2, 4)
    cs = t.merge_conv(t.merge_conv_pad(lvl(t.attn_adain_4_1, 3, 8) + t.upsample5_1(lvl(t.attn_adain_5_1, 4, 16))))
    return o.decode(cs, skip)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("t1,t2", [(0.7, 0.3), (0.2, 1.1)])
def test_scsa_equals_the_masked_literal_form(ada, ada64, ada_oracle, t1, t2):
    """Three content labels (one the style lacks: plain-AdaAttN fallback), style labels laid out differently."""
    cl = np.zeros((64, 80), int)
    cl[:, 40:] = 1
    cl[16:32, :48] = 2
    sl = np.zeros((64, 64), int)
    sl[32:, :] = 1
    c, s = smooth_image(64, 80, seed=23), smooth_image(64, 64, seed=24)
    with torch.no_grad():
        want = literal_scsa_image(ada_oracle, c, s, cl, sl, t1, t2)
    out = ada64.stylize_raw(c, [Style(s, labels=sl)], content_labels=cl, scsa_weights=(t1, t2))
    assert dev(out, want) <= EXACT
    out = ada.stylize_raw(c, [Style(s, labels=sl)], content_labels=cl, scsa_weights=(t1, t2))
    assert dev(out, want) <= 1e-4
    assert dev(out, ada.stylize_raw(c, [s])) > 1e-2, "labels must change the result"


def test_scsa_continuous_only_one_label_is_plain_adaattn(ada):
    c, s = smooth_image(48, 64, seed=25), smooth_image(64, 64, seed=26)
    one = ada.stylize_raw(c, [Style(s, labels=np.zeros((64, 64), int))], content_labels=np.zeros((48, 64), int),
                          scsa_weights=(1.0, 0.0))
    assert dev(one, ada.stylize_raw(c, [s])) <= 1e-5
    missing = ada.stylize_raw(c, [Style(s, labels=np.zeros((64, 64), int))], content_labels=np.full((48, 64), 4))
    assert dev(missing, ada.stylize_raw(c, [s])) <= 1e-5          # a label the style lacks: plain AdaAttN


def test_scsa_attention_never_crosses_labels(ada):
    """Change the style's keys and values only at label-B positions: content region A must not see it."""
    from sanet.functional import mean_std
    from sanet.models import scsa
    from sanet.models.sanet import AttentionMemory
    module = ada.networks()["transformer"].attn_adain_4_1
    g = torch.Generator().manual_seed(5)
    key_c = torch.relu(torch.randn(1, 960, 10, 12, generator=g)) * 20
    key_s = torch.relu(torch.randn(1, 960, 9, 14, generator=g)) * 20
    lc = torch.zeros(10, 12, dtype=torch.long)
    lc[:, 6:] = 1                                   # content: A left, B right
    ls = torch.zeros(9, 14, dtype=torch.long)
    ls[5:, :] = 1                                   # style: A top, B bottom
    in_a, style_b = lc.reshape(-1) == 0, ls.reshape(-1) == 1
    with torch.no_grad():
        mem, _ = adaattn.style_level(module, key_s, *mean_std(key_s), 512, None)
        k2, v2 = mem.keys.clone(), mem.values.clone()
        k2[:, style_b], v2[:, style_b] = mem.keys[:, style_b].flip(1), mem.values[:, style_b].flip(1) * 1.5
        changed = AttentionMemory(k2, v2)

        def run(m, labelled=True):
            if labelled:
                m = scsa.semantic_moments_level(m.keys, m.values, ls.reshape(-1))
            return adaattn.adaattn(module, key_c, *mean_std(key_c), 512, [m], labels=lc,
                                   scsa_weights=(0.7, 0.3))[0].flatten(2)[0].numpy()

        before, after = run(mem), run(changed)
        assert dev(after[:, in_a.numpy()], before[:, in_a.numpy()]) <= 1e-6      # region A saw no B position
        assert dev(after[:, ~in_a.numpy()], before[:, ~in_a.numpy()]) > 1e-3     # region B did change
        plain = run(changed, False), run(mem, False)                             # without labels it reaches A
        assert dev(plain[0][:, in_a.numpy()], plain[1][:, in_a.numpy()]) > 1e-3


def test_scsa_tiled_equals_whole(ada, monkeypatch):
    h, w = 150, 200
    cl = np.zeros((h, w), int)
    cl[:, 120:] = 1
    cl[60:100, 30:90] = 2
    sl = np.zeros((96, 80), int)
    sl[50:, :] = 1
    c, s1, s2 = smooth_image(h, w, seed=29), smooth_image(96, 80, seed=30), smooth_image(64, 64, seed=31)
    styles = [Style(s1, labels=colour(sl)), Style(s2, weight=0.5)]
    whole = ada.stylize_raw(c, styles, content_labels=colour(cl), alpha=0.8)
    real = planner.make_plan
    monkeypatch.setattr(planner, "make_plan", lambda *a, **k: planner.Plan(True, 64, True, None, 1 << 30, 0,
                                                                             real(*a, **k).costs))
    tiled = ada.stylize_raw(c, styles, content_labels=colour(cl), alpha=0.8)
    assert ada.last_plan.tiled
    assert dev(tiled, whole) <= 1e-4


def colour(ids):
    return np.asarray(PALETTE, dtype=np.uint8)[ids]


@pytest.mark.parametrize("kwargs,style_labels,message", [
    (dict(content_labels=np.zeros((30, 40), int)), np.zeros((40, 40), int), "content label map: size 40×30"),
    (dict(content_labels=np.zeros((40, 40), int)), np.zeros((41, 40), int), "style 1 label map: size 40×41"),
    (dict(content_labels=np.zeros((40, 40), int), scsa_weights=(0.0, 0.0)), np.zeros((40, 40), int),
     "t1 \\+ t2 > 0"),
])
def test_scsa_bad_input_is_one_clear_message(ada, kwargs, style_labels, message):
    img = smooth_image(40, 40, seed=32)
    with pytest.raises(InputError, match=message):
        ada.stylize(img, [Style(img, labels=style_labels)], **kwargs)


def test_moments_fit_fp16_where_the_squares_would_overflow():
    """v² overflows fp16 above 256; the moments are taken about the values' mean in units of their spread."""
    from sanet.functional import attention_moments
    g = torch.Generator().manual_seed(9)
    q, k = torch.randn(1, 50, 64, generator=g), torch.randn(1, 70, 64, generator=g)
    v = 1000 + 300 * torch.randn(1, 70, 32, generator=g)
    mean, std = attention_moments(q.double(), k.double(), v.double())
    h_mean, h_std = attention_moments(q.half(), k.half(), v.half())
    assert torch.isfinite(h_mean).all() and torch.isfinite(h_std).all()
    spread = float(v.max() - v.min())               # fp16 has 11 bits: the mean to ~1e-3 of it, the std (a square
    assert float((h_mean.double() - mean).abs().max()) <= 1e-3 * spread              # root of a difference) to ~1e-2
    assert float((h_std.double() - std).abs().max()) <= 1e-2 * spread
    assert not torch.isfinite((v.half() * v.half())).all(), "the released form would overflow here"
