"""The artist's loop in the engine: feature reuse across calls (sanet.runtime.cache.ContentCache), selection-sized
work (only the selection's box is transformed and decoded; statistics of the whole layer), and cancellation inside
stages (sanet.interrupt).

Reuse must not change a result: every reused call is compared with a Stylizer that reuses nothing (bit-equal).
Selection-sized results are compared with the whole-layer run inside the selection (≤ 1e-3 of the range; here they
are bit-equal too). Speed is measured by bench/bench_loop.py, not here.
"""
import dataclasses

import numpy as np
import pytest
import torch

from engine_helpers import smooth_image
from sanet import Cancelled, Style, Stylizer
from sanet import functional, interrupt
from sanet.models import ADAATTN, SANET
from sanet.runtime import planner

MODELS = ["sanet", "adaattn"]


@pytest.fixture(scope="module")
def cached(adaattn_weights):
    return Stylizer(adaattn_weights, device="cpu")


@pytest.fixture(scope="module")
def fresh(adaattn_weights):
    """Reuses nothing: the reference for every cached call."""
    return Stylizer(adaattn_weights, device="cpu", content_cache_bytes=0)


@pytest.fixture
def force_tiles(monkeypatch):
    real = planner.make_plan

    def force(tile, keep=True):
        monkeypatch.setattr(planner, "make_plan", lambda *a, **k: dataclasses.replace(
            real(*a, **k), tiled=True, tile=tile, keep_features=keep))
    return force


def dev(a, b):
    return float(np.abs(a - b).max() / (b.max() - b.min()))


C = smooth_image(136, 200, seed=31)
S1, S2 = smooth_image(96, 96, seed=32), smooth_image(64, 96, seed=33)
REGION = np.zeros((136, 200), np.float32)
REGION[:, 100:] = 1.0


# ----------------------------------------------------------------------------------------------- feature reuse

@pytest.mark.parametrize("model", MODELS)
def test_changing_controls_reuses_features_and_equals_a_fresh_run(cached, fresh, model):
    cached.clear_cache()
    sel = np.zeros((136, 200), np.float32)
    sel[20:90, 30:150] = 1.0
    sel[20:30, 30:150] = 0.5
    steps = [   # (kwargs, styles, what must have been reused)
        (dict(alpha=1.0), [S1], dict(features=False, styles=[False], own=None)),
        (dict(alpha=0.4), [S1], dict(features=True, styles=[True], own=False)),
        (dict(alpha=0.4, preserve_color=True), [S1], dict(features=True, styles=[True], own=True)),
        (dict(alpha=0.7), [Style(S1, 0.3), Style(S2, 0.7)], dict(features=True, styles=[True, False], own=True)),
        (dict(alpha=1.0), [Style(S1, 0.9), Style(S2, 0.1)], dict(features=True, styles=[True, True], own=None)),
        (dict(alpha=1.0), [Style(S2, region=REGION)], dict(features=True, styles=[True], own=True)),
        (dict(alpha=0.8, selection=sel), [S1, S2], dict(features=True, styles=[True, True], own=True)),
    ]
    for kwargs, styles, reused in steps:
        got = cached.stylize_raw(C, styles, model=model, **kwargs)
        assert cached.last_info["reused"] == reused, (kwargs, cached.last_info["reused"])
        want = fresh.stylize_raw(C, styles, model=model, **kwargs)
        assert np.array_equal(got, want), (kwargs, dev(got, want))
        img = cached.stylize((C * 255).astype(np.uint8), styles, model=model, **kwargs)   # image output too
        assert np.array_equal(img, fresh.stylize((C * 255).astype(np.uint8), styles, model=model, **kwargs))


def test_anything_that_changes_the_features_is_not_reused(cached):
    cached.clear_cache()
    cached.stylize_raw(C, [S1], alpha=0.5)
    other = C.copy()
    other[5, 5, 0] += 0.01
    cached.stylize_raw(other, [S1], alpha=0.5)                                   # other pixels
    assert cached.last_info["reused"]["features"] is False
    cached.stylize_raw(C, [S1], alpha=0.5, model="adaattn")                     # other model
    assert cached.last_info["reused"]["features"] is False
    cached.stylize_raw(C, [S1], alpha=0.5, preview=True, style_max_side=64)     # other style size: new T only
    assert cached.last_info["reused"] == dict(features=True, styles=[False], own=False)   # (T(c, c) is capped too)
    big = smooth_image(600, 520, seed=34)
    cached.stylize_raw(big, [S1], preview=True)
    cached.stylize_raw(big, [S1])                                               # preview size ≠ full size
    assert cached.last_info["reused"]["features"] is False
    cached.stylize_raw(C, [S1], alpha=0.5, precision="fp64")                    # other precision
    assert cached.last_info["reused"]["features"] is False
    again = cached.stylize_raw(C, [S1], alpha=0.5, precision="fp64")
    assert cached.last_info["reused"] == dict(features=True, styles=[True], own=True) and again.dtype == np.float32


@pytest.mark.parametrize("model", MODELS)
def test_scsa_label_maps_are_part_of_the_key(cached, fresh, model):
    cached.clear_cache()
    cl = np.zeros((136, 200), int)
    cl[:, 100:] = 1
    sl = np.zeros((96, 96), int)
    sl[48:] = 1
    style = Style(S1, labels=sl)
    runs = [
        (dict(content_labels=cl, alpha=0.6), dict(features=False, styles=[False], own=False)),
        (dict(content_labels=cl, alpha=0.9), dict(features=True, styles=[True], own=True)),
        (dict(content_labels=cl, alpha=0.9, scsa_weights=(0.5, 0.5)), dict(features=True, styles=[False], own=True)),
        (dict(content_labels=1 - cl, alpha=0.9), dict(features=False, styles=[False], own=False)),
    ]
    for kwargs, reused in runs:
        got = cached.stylize_raw(C, [style], model=model, **kwargs)
        assert cached.last_info["reused"] == reused, (kwargs, cached.last_info["reused"])
        assert np.array_equal(got, fresh.stylize_raw(C, [style], model=model, **kwargs))


@pytest.mark.parametrize("model", MODELS)
def test_tiled_plans_reuse_per_tile_and_equal_a_fresh_tiled_run(cached, fresh, model, force_tiles):
    force_tiles(96)
    cached.clear_cache()
    cached.stylize_raw(C, [S1], model=model, alpha=0.9)
    assert cached.last_plan.tiled
    got = cached.stylize_raw(C, [S1, S2], model=model, alpha=0.6)
    assert cached.last_info["reused"] == dict(features=True, styles=[True, False], own=True)
    assert np.array_equal(got, fresh.stylize_raw(C, [S1, S2], model=model, alpha=0.6))


def test_the_cache_is_bounded_in_bytes(adaattn_weights):
    probe = Stylizer(adaattn_weights, device="cpu")
    probe.stylize_raw(smooth_image(136, 200, seed=40), [S1], alpha=0.5)
    per_content = probe.content_cache.nbytes            # maps + T(c, s) + T(c, c) of one content
    limit = int(per_content * 2.5)
    st = Stylizer(adaattn_weights, device="cpu", content_cache_bytes=limit)
    for seed in range(4):
        st.stylize_raw(smooth_image(136, 200, seed=40 + seed), [S1], alpha=0.5)
        assert 0 < st.content_cache.nbytes <= limit
    st.stylize_raw(smooth_image(136, 200, seed=43), [S1], alpha=0.3)             # the latest is still there
    assert st.last_info["reused"]["features"] is True
    st.stylize_raw(smooth_image(136, 200, seed=40), [S1], alpha=0.3)             # the oldest was evicted
    assert st.last_info["reused"]["features"] is False
    tiny = Stylizer(adaattn_weights, device="cpu", content_cache_bytes=1 << 10)  # too small for anything
    out = tiny.stylize_raw(C, [S1], alpha=0.5)
    assert tiny.content_cache.nbytes == 0 and np.isfinite(out).all()
    st.clear_cache()
    assert st.content_cache.nbytes == 0 and len(st.content_cache) == 0


def test_a_layer_too_large_for_all_its_ts_keeps_its_features(adaattn_weights, fresh, force_tiles):
    """When a layer's maps and all its Ts do not fit (a 4K layer in fp32), the Ts never push out the layer's own
    features: the next call skips the encoder and reuses the Ts that fitted beside them; the result is unchanged."""
    force_tiles(96)
    probe = Stylizer(adaattn_weights, device="cpu")
    probe.stylize_raw(C, [S1], model="sanet")
    maps = probe.content_cache.features(next(k[1] for k in probe.content_cache._lru._items if k[0] == "features"))
    feature_bytes = sum(x.numel() * x.element_size() for x in maps[0].values()) + 4096
    ts = sorted(b for k, (_, b) in probe.content_cache._lru._items.items() if k[0] == "t")
    all_ts = len(ts)
    st = Stylizer(adaattn_weights, device="cpu", content_cache_bytes=feature_bytes + ts[-1] + ts[0] // 2)
    st.stylize_raw(C, [S1], model="sanet")
    kinds = [k[0] for k in st.content_cache._lru._items]
    assert kinds.count("features") == 1 and 0 < kinds.count("t") < all_ts
    got = st.stylize_raw(C, [S1], model="sanet", alpha=0.7)
    assert st.last_info["reused"]["features"] is True
    assert np.array_equal(got, fresh.stylize_raw(C, [S1], model="sanet", alpha=0.7))


def test_content_cache_never_lets_a_t_push_out_its_own_features():
    from sanet.runtime.cache import ContentCache
    cache = ContentCache(max_bytes=12000)
    cache.put_features("b", {"r4": torch.zeros(10)}, None)                   # another layer's: 40 + 4096 B
    cache.put_features("a", {"r4": torch.zeros(250)}, None)                  # 1000 + 4096 B
    for i in range(8):                                                       # Ts of 1000 B: not all fit
        cache.put_transformed("a", "s", (0, 1, i, i + 1), {"t": torch.zeros(250)})
    assert cache.features("a") is not None and cache.features("b") is None  # the other layer went first
    assert cache.nbytes <= cache.max_bytes
    stored = [i for i in range(8) if cache.transformed("a", "s", (0, 1, i, i + 1), {"t": 8}) is not None]
    assert stored == [0, 1, 2, 3, 4, 5]                                      # then no more Ts: the maps stay


# ----------------------------------------------------------------------------------------------- selection-sized

def decoder_sizes(monkeypatch, model):
    """Record the spatial size of every decoder input (the first decoder input's map)."""
    sizes = []
    real = type(model).decode

    def spy(self, nets, inputs):
        sizes.append(tuple(inputs["t"].shape[-2:]))
        return real(self, nets, inputs)
    monkeypatch.setattr(type(model), "decode", spy)
    return sizes


@pytest.mark.parametrize("model", MODELS)
def test_selection_runs_only_its_box_and_equals_the_whole_layer_run_inside(fresh, model, monkeypatch):
    content = smooth_image(320, 480, seed=35)
    sel = np.zeros((320, 480), np.float32)
    sel[200:290, 300:450] = 1.0                         # ~9 % of the area, feathered edge
    sel[200:210, 300:450] = np.linspace(0, 1, 10, dtype=np.float32)[:, None]
    whole = fresh.stylize_raw(content, [S1], model=model, alpha=0.8)
    sizes = decoder_sizes(monkeypatch, {"sanet": SANET, "adaattn": ADAATTN}[model])
    out = fresh.stylize_raw(content, [S1], model=model, alpha=0.8, selection=sel)
    y0, y1, x0, x1 = fresh.last_info["region"]
    assert (y0, y1, x0, x1) == (192, 304, 288, 464)      # the box, on the 16-px grid
    # attention and decoder ran over the box plus its halo (10 relu4_1 cells), not over the layer (40×60 cells)
    assert sizes == [(min(40, y1 // 8 + 10) - (y0 // 8 - 10), min(60, x1 // 8 + 10) - (x0 // 8 - 10))]
    inside = sel == 1.0
    span = whole.max() - whole.min()
    assert np.abs(out[inside] - whole[inside]).max() <= 1e-3 * span
    outside = sel == 0
    assert np.array_equal(out[outside], content[outside])
    edge = (sel > 0) & (sel < 1)
    s = sel[edge][:, None]
    np.testing.assert_allclose(out[edge], s * whole[edge] + (1 - s) * content[edge], atol=1e-3 * span)


@pytest.mark.parametrize("model", MODELS)
def test_selection_box_with_scsa_tiles_and_preview(fresh, model, force_tiles):
    content = smooth_image(320, 480, seed=36)
    sel = np.zeros((320, 480), np.float32)
    sel[40:150, 60:260] = 1.0
    cl = np.zeros((320, 480), int)
    cl[:, 240:] = 1
    sl = np.zeros((96, 96), int)
    sl[:, 48:] = 1
    big = smooth_image(560, 640, seed=41)                # preview: runs at 448×512, the box mapped to that size
    big_sel = np.zeros((560, 640), np.float32)
    big_sel[300:420, 100:330] = 1.0
    cases = [(content, sel, dict()), (content, sel, dict(content_labels=cl, styles=[Style(S1, labels=sl)])),
             (big, big_sel, dict(preview=True))]
    for image, mask, case in cases:
        styles = case.pop("styles", [S1])
        whole = fresh.stylize_raw(image, styles, model=model, alpha=0.7, **case)
        out = fresh.stylize_raw(image, styles, model=model, alpha=0.7, selection=mask, **case)
        assert "region" in fresh.last_info
        inside = mask == 1
        assert np.abs(out[inside] - whole[inside]).max() <= 1e-3 * (whole.max() - whole.min()), case
        assert np.array_equal(out[mask == 0], image[mask == 0])
    force_tiles(128)                                      # tiled: only the tiles that meet the box, clipped to it
    whole = fresh.stylize_raw(content, [S1], model=model, alpha=0.7)
    progress = []
    out = fresh.stylize_raw(content, [S1], model=model, alpha=0.7, selection=sel,
                            progress=lambda f, s: progress.append(s))
    assert fresh.last_plan.tiled
    stylized = {s for s in progress if s.startswith("stylize")}
    encoded = {s for s in progress if s.startswith("encode content")}
    assert len(stylized) < len(encoded), (stylized, encoded)   # every tile encoded (statistics), fewer stylized
    assert np.abs(out[sel == 1] - whole[sel == 1]).max() <= 1e-3 * (whole.max() - whole.min())


def test_image_output_blends_the_clamped_stylized_values(fresh):
    """sel·clamp(s) + (1 − sel)·c: what an editor shows when it composites the clamped result over the original.
    Raw (.npy) output blends the unclamped values."""
    content = np.full((96, 128, 4), 255, np.uint8)          # an 8-px checkerboard: high contrast
    content[..., :3] = 255 * (np.indices((96, 128)).sum(0) // 8 % 2).astype(np.uint8)[..., None]
    noise = np.random.default_rng(37).random((96, 96, 3)).astype(np.float32)
    sel = np.tile(np.linspace(0, 1, 128, dtype=np.float32), (96, 1))
    raw = fresh.stylize_raw(content, [noise], alpha=0.6)
    assert raw.min() < -0.02 or raw.max() > 1.02, "the synthetic decoder overshoots [0, 1] somewhere"
    out = fresh.stylize(content, [noise], alpha=0.6, selection=sel)
    c = content[..., :3].astype(np.float32) / 255
    want = np.rint((sel[..., None] * np.clip(raw, 0, 1) + (1 - sel[..., None]) * c) * 255)
    assert np.abs(out[..., :3].astype(np.float32) - want).max() <= 1
    old = np.rint(np.clip(sel[..., None] * raw + (1 - sel[..., None]) * c, 0, 1) * 255)
    assert np.abs(old - want).max() >= 2, "the test content must tell the two orders apart"
    raw_sel = fresh.stylize_raw(content, [noise], alpha=0.6, selection=sel)
    np.testing.assert_allclose(raw_sel, sel[..., None] * raw + (1 - sel[..., None]) * c, atol=1e-5)


def test_an_empty_selection_returns_the_content_without_encoding(fresh, monkeypatch):
    content = smooth_image(64, 64, seed=38)
    fresh.encode_style(S1)                                  # the style is encoded already: only content work is left
    calls = []
    monkeypatch.setattr(type(SANET), "features", lambda self, enc, label_enc=None: calls.append(1) or {})
    out = fresh.stylize_raw(content, [S1], selection=np.zeros((64, 64), np.float32))
    assert np.array_equal(out, content) and calls == []


# ----------------------------------------------------------------------------------------------- cancellation

class CancelAt:
    """A cancel_check that turns True once `trigger` has been called; counts the checks made after that."""

    def __init__(self):
        self.flag = False

    def trigger(self, *args, **kwargs):
        self.flag = True

    def __call__(self):
        return self.flag


def hook_nth_conv(module, n, fn):
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    return convs[n].register_forward_hook(lambda *a: fn())


@pytest.mark.parametrize("where", ["encoder", "decoder"])
def test_cancel_stops_inside_the_encoder_and_the_decoder(synthetic_weights, where):
    """Cancelled during one conv of a network: the very next layer does not run (a check before every layer). In
    the encoder both convs are inside one stage (conv1_2 and conv2_1 lie between relu1_1 and relu2_1), so the check
    must be inside the stage, not only between stages."""
    st = Stylizer(synthetic_weights, device="cpu")
    nets = st.networks()
    module = torch.nn.Sequential(*nets["encoder"]) if where == "encoder" else nets["decoder"]
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    first = 2 if where == "encoder" else 3
    cancel, ran_after = CancelAt(), []
    hooks = [convs[first].register_forward_hook(lambda *a: cancel.trigger()),
             convs[first + 1].register_forward_hook(lambda *a: ran_after.append(1))]
    try:
        with pytest.raises(Cancelled):
            st.stylize_raw(smooth_image(96, 96, seed=39), [S1], cancel_check=cancel)
    finally:
        for h in hooks:
            h.remove()
    assert cancel.flag and ran_after == []


def test_large_convs_run_in_bands_with_a_check_between_them(synthetic_weights, monkeypatch):
    """A full-resolution conv of a big layer is split into row bands (bit-equal to one call); a cancel during the
    first band stops before the second."""
    st = Stylizer(synthetic_weights, device="cpu")
    conv = st.networks()["decoder"][-1]                      # 64 → 3, full resolution
    x = torch.rand(1, 64, 130, 90)
    whole = conv(x)
    monkeypatch.setattr(interrupt, "CONV_STEP_MACS", 64 * 3 * 9 * 88 * 16)
    with interrupt.checking(lambda: None):
        bands = interrupt.conv_bands(conv, x)
    assert len(bands) == 8 and all(b.shape[2] % 2 == 0 for b in bands[:-1])
    assert torch.equal(torch.cat(bands, 2), whole)
    calls = []

    def check():
        calls.append(1)
        if len(calls) > 1:
            raise Cancelled("cancelled")
    with interrupt.checking(check), pytest.raises(Cancelled):
        interrupt.conv_bands(conv, x)
    assert len(calls) == 2
    assert interrupt.conv_bands(conv, x) is not None          # no check installed: one plain call


def test_attention_runs_in_bounded_chunks_with_a_check_between_them(monkeypatch):
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 1000, 32, generator=g), torch.randn(1, 300, 32, generator=g),
               torch.randn(1, 300, 32, generator=g))
    whole = functional.attention(q, k, v)
    monkeypatch.setattr(functional, "ATTENTION_STEP_MACS", 300 * 64 * 100)    # 100 queries per call
    seen = []
    with interrupt.checking(lambda: seen.append(1)):
        chunked = functional.attention(q, k, v)
    assert len(seen) == 10 and torch.allclose(chunked, whole, rtol=0, atol=1e-6)
    with interrupt.checking(lambda: (_ for _ in ()).throw(Cancelled("cancelled"))), pytest.raises(Cancelled):
        functional.attention(q, k, v)
