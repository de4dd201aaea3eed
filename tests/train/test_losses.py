"""Each training loss equals a literal re-computation (tests/train/literal_training.py, the released code transcribed)
on fixed tensors and fixed weights; their gradients agree too; and 30 Adam iterations lower the loss of a fixed batch.
"""
from __future__ import annotations

import pytest
import torch

from literal_training import AdaAttnTrainingOracle, SanetTrainingOracle, calc_content_loss, calc_style_loss
from oracle import calc_mean_std
from sanet.models import losses as L
from train_helpers import engine_networks, smooth_batch

RTOL = 2e-4


def close(a, b, rtol=RTOL):
    a, b = float(torch.as_tensor(a).detach()), float(torch.as_tensor(b).detach())
    assert abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12), (a, b)


# ---------------------------------------------------------------------------------- the small functions

def test_distances_equal_their_literal_form():
    gen = torch.Generator().manual_seed(3)
    maps = [(torch.randn(2, c, s, s, generator=gen) * 3 + 1, torch.randn(2, c, s, s, generator=gen))
            for c, s in ((64, 16), (128, 8), (512, 4))]
    outs, targets = [m[0] for m in maps], [m[1] for m in maps]
    close(L.mse(outs[0], targets[0]), ((outs[0] - targets[0]) ** 2).mean())
    close(L.content_loss(outs, targets), sum(calc_content_loss(o, t, norm=True) for o, t in maps))
    close(L.style_loss(outs, targets), sum(calc_style_loss(o, t) for o, t in maps))
    close(L.feature_distance(outs, targets), sum(((o - t) ** 2).mean() for o, t in maps))
    # the statistics are per sample and channel, unbiased, eps inside the square root
    m, s = calc_mean_std(outs[1])
    st = L.SampleStats({"x": outs[1]})
    torch.testing.assert_close(st.mean_std("x")[0], m)
    torch.testing.assert_close(st.mean_std("x")[1], s)


@pytest.mark.parametrize("cap", [L.LOCAL_SAMPLE_CAP, 48])
def test_local_target_equals_the_released_parameter_free_adaattn(synthetic_weights, cap):
    """σ·norm(c) + μ of the parameter-free AdaAttN at relu2_1..relu5_1; cap 48 reaches the seeded subsampling
    (at 64 px no level has more than 64·64 positions). Both sides in float64: where the attention is peaked the
    std is sqrt of a variance near 0, which fp32 rounding alone moves by ~1e-3 of the feature scale (and the released
    A·v² − mean² form by ~sqrt(eps) even in float64)."""
    model, nets, stages = engine_networks_sanet_vgg(synthetic_weights)
    c, s = smooth_batch(2, 64, 1), smooth_batch(2, 64, 2)
    from sanet import vgg
    ce, se = vgg.encode(stages, c, L.ALL_LEVELS), vgg.encode(stages, s, L.ALL_LEVELS)
    oracle = AdaAttnTrainingOracle.__new__(AdaAttnTrainingOracle)
    oracle.local_max_sample = cap
    ce, se = {k: v.double() for k, v in ce.items()}, {k: v.double() for k, v in se.items()}
    c64 = [ce[k] for k in L.ALL_LEVELS]
    s64 = [se[k] for k in L.ALL_LEVELS]
    for level in L.ADAATTN_LEVELS:
        got = L.local_target(ce, se, level, cap)
        want = oracle.local_target(c64, s64, level - 1)
        scale = want.abs().max()
        # sqrt of the released form's cancellation residue: up to sqrt(fp64 eps) ≈ 1.5e-8 of the scale, ×2 margin
        assert (got - want).abs().max() <= 1e-7 * scale, (level, float((got - want).abs().max()), float(scale))


def engine_networks_sanet_vgg(weights):
    return engine_networks(weights, "sanet")


# ---------------------------------------------------------------------------------- whole objectives

def test_sanet_losses_and_gradients_equal_the_released_forward(synthetic_weights):
    from sanet.checkpoints import load_checkpoints
    model, nets, stages = engine_networks(synthetic_weights, "sanet")
    oracle = SanetTrainingOracle(load_checkpoints(synthetic_weights))
    for m in (oracle.encoder,):
        m.requires_grad_(False)
    c, s = smooth_batch(2, 64, 11), smooth_batch(2, 64, 12)
    got, g = L.sanet_losses(model, nets, stages, c, s)
    want, g_ref = oracle.losses(c, s)
    torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-4)
    for k in want:
        close(got[k], want[k])
    weights = {"content": 1.0, "style": 3.0, "identity_pixel": 50.0, "identity_feature": 1.0}
    sum(weights[k] * got[k] for k in weights).backward()
    sum(weights[k] * want[k] for k in weights).backward()
    pairs = [(nets["decoder"], oracle.decoder), (nets["transformer"], oracle.transform)]
    for mine, ref in pairs:
        a = torch.cat([p.grad.flatten() for p in mine.parameters()])
        b = torch.cat([q.grad.flatten() for q in ref.parameters()])
        assert float((a - b).norm() / b.norm()) < 1e-3
        # per tensor, against its own scale — or 1e-3 of the module's for tensors whose exact gradient is 0
        # (a key bias g.bias shifts every score of a query equally: the softmax ignores it)
        floor = 1e-3 * b.abs().max()
        for (name, p), (_, q) in zip(mine.named_parameters(), ref.named_parameters()):
            err = (p.grad - q.grad).abs().max() / torch.maximum(q.grad.abs().max(), floor)
            assert err < 2e-3, (name, float(err))


def test_adaattn_losses_equal_the_released_forward(adaattn_weights):
    """In float64 on both sides: the released std = sqrt(A·v² − mean²) cancels catastrophically in fp32 with peaked
    attention (tests/conftest.py ada_oracle), so the comparison is between the exact values of both forms."""
    from sanet.checkpoints import load_checkpoints
    model, nets, stages = engine_networks(adaattn_weights, "adaattn")
    for m in list(nets.values()) + stages:
        m.double()
    oracle = AdaAttnTrainingOracle(load_checkpoints(adaattn_weights, "adaattn"))
    for m in (oracle.encoder, oracle.transformer, oracle.decoder, oracle.adaattn_3):
        m.double()
    c, s = smooth_batch(2, 64, 21).double(), smooth_batch(2, 64, 22).double()
    got, g = L.adaattn_losses(model, nets, stages, c, s)
    want, g_ref = oracle.losses(c, s)
    torch.testing.assert_close(g, g_ref, rtol=1e-7, atol=1e-7)
    for k in want:
        close(got[k], want[k], 1e-7)
    # only the terms asked for are computed (the released content weight is 0)
    part, _ = L.adaattn_losses(model, nets, stages, c, s, terms=("global", "local"))
    assert set(part) == {"global", "local"}


@pytest.mark.parametrize("name", ["sanet", "adaattn"])
def test_thirty_iterations_lower_the_loss_of_a_fixed_batch(synthetic_weights, name):
    """From the default initialisation (what `sanet train` without --init starts from), the released learning rate
    and loss weights, the real (synthetic) VGG: the weighted loss of one fixed batch falls."""
    from sanet.models import get_model
    from sanet.train.loop import load_vgg
    from sanet.train.recipes import RECIPES
    model, recipe = get_model(name), RECIPES[name]
    stages = load_vgg(synthetic_weights / "vgg_normalised.pth")
    torch.manual_seed(0)
    nets = model.build()
    opt = torch.optim.Adam([p for r in recipe.roles for p in nets[r].parameters()], lr=recipe.lr)
    weights = {k: w for k, w in recipe.weights.items() if w}
    c, s = smooth_batch(2, 32, 31), smooth_batch(2, 32, 32)
    history = []
    for _ in range(30):
        parts, _ = L.OBJECTIVES[name](model, nets, stages, c, s, tuple(weights))
        loss = sum(weights[k] * v for k, v in parts.items())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(history)))
    assert history[-1] < 0.5 * history[0], history
    assert sum(history[-5:]) < 0.5 * sum(history[:5]), history
