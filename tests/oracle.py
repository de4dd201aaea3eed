"""A deliberately literal, slow implementation of the SANet paper's equations: the oracle for the engine.

It follows the reference inference step by step (explicit score matrix, softmax, batched matmuls) and shares
nothing with the engine (sanet.runtime, sanet.functional, sanet.models' functions) except the nn.Module containers
that hold the weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from sanet.models.sanet import Transform, build_decoder
from sanet.vgg import ENCODER_SLICES, build_encoder


def calc_mean_std(feat, eps=1e-5):
    n, c = feat.size()[:2]
    feat_var = feat.view(n, c, -1).var(dim=2) + eps          # unbiased, eps inside the sqrt
    feat_std = feat_var.sqrt().view(n, c, 1, 1)
    feat_mean = feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1)
    return feat_mean, feat_std


def mean_variance_norm(feat):
    mean, std = calc_mean_std(feat)
    return (feat - mean.expand(feat.size())) / std.expand(feat.size())


def literal_sanet(module, content, style):
    fq = module.f(mean_variance_norm(content))
    gk = module.g(mean_variance_norm(style))
    b, c, h, w = fq.size()
    fq = fq.view(b, -1, w * h).permute(0, 2, 1)                 # b × Nc × C
    b, c, hs, ws = gk.size()
    gk = gk.view(b, -1, ws * hs)                                # b × C × Ns
    scores = torch.bmm(fq, gk)                                  # no 1/sqrt(d)
    attn = torch.softmax(scores, dim=-1)                        # over style positions
    hv = module.h(style).view(b, -1, ws * hs)                   # V from the UN-normalised style
    o = torch.bmm(hv, attn.permute(0, 2, 1)).view(b, c, h, w)
    return content + module.out_conv(o)


class Oracle:
    def __init__(self, states):
        self.encoder = build_encoder().eval()
        self.encoder.load_state_dict(states["vgg_normalised.pth"])
        self.decoder = build_decoder().eval()
        self.decoder.load_state_dict(states["decoder_iter_500000.pth"])
        self.transform = Transform().eval()
        self.transform.load_state_dict(states["transformer_iter_500000.pth"])
        kids = list(self.encoder.children())
        self.slices = [torch.nn.Sequential(*kids[a:b]) for a, b in ENCODER_SLICES]

    def encode(self, x):
        feats = []
        for s in self.slices:
            x = s(x)
            feats.append(x)
        return feats

    def transform_features(self, c4, c5, s4, s5):
        t = self.transform
        return t.merge_conv(t.merge_conv_pad(
            literal_sanet(t.sanet4_1, c4, s4) + F.interpolate(literal_sanet(t.sanet5_1, c5, s5), scale_factor=2, mode="nearest")))

    @torch.no_grad()
    def stylize(self, content, style, alpha=1.0):
        """content/style: 1×3×H×W float in [0,1] (sides multiples of 16). Returns the unclamped decoder output."""
        c = self.encode(content)
        s = self.encode(style)
        feat = self.transform_features(c[3], c[4], s[3], s[4])
        if alpha < 1.0:
            feat_cc = self.transform_features(c[3], c[4], c[3], c[4])
            feat = alpha * feat + (1 - alpha) * feat_cc
        return self.decoder(feat)
