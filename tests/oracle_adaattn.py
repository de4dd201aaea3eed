"""A deliberately literal implementation of the released AdaAttN forward pass: the oracle for the engine's AdaAttN.

It follows the released code step by step (get_key with nearest resize then mean_variance_norm per map, explicit
score matrix, softmax, bmm for mean and E[v²], the seeded key subsampling on the GLOBAL generator as the release
does it — here inside fork_rng so the caller's random state survives —, the relu3_1 skip concatenated after
decoder_layer_1) and shares nothing with the engine except the nn.Module containers that hold the weights.
α (not in the release) is the product's definition, written out: α·X(c, s) + (1 − α)·X(c, c) for both decoder
inputs X = transformer output and relu3_1 skip.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from oracle import mean_variance_norm
from sanet.models.adaattn import AdaAttN, Decoder, Transformer
from sanet.vgg import ENCODER_SLICES, build_encoder

SEED = 6666
MAX_SAMPLE = {2: 64 * 64, 3: 256 * 256, 4: 256 * 256}    # by encoder index (relu3_1, relu4_1, relu5_1)


def get_key(feats, last_layer_idx):
    results = []
    _, _, h, w = feats[last_layer_idx].shape
    for i in range(last_layer_idx):
        results.append(mean_variance_norm(F.interpolate(feats[i], (h, w))))
    results.append(mean_variance_norm(feats[last_layer_idx]))
    return torch.cat(results, dim=1)


def literal_adaattn(module, content, style, content_key, style_key, seed=SEED, max_sample=None):
    f = module.f(content_key)
    g = module.g(style_key)
    hv = module.h(style)
    b, _, h_g, w_g = g.size()
    g = g.view(b, -1, w_g * h_g).contiguous()
    if max_sample is not None and w_g * h_g > max_sample:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            index = torch.randperm(w_g * h_g).to(content.device)[:max_sample]
        g = g[:, :, index]
        style_flat = hv.view(b, -1, w_g * h_g)[:, :, index].transpose(1, 2).contiguous()
    else:
        style_flat = hv.view(b, -1, w_g * h_g).transpose(1, 2).contiguous()
    b, _, h, w = f.size()
    f = f.view(b, -1, w * h).permute(0, 2, 1)
    s = torch.softmax(torch.bmm(f, g), dim=-1)                 # no scaling
    mean = torch.bmm(s, style_flat)
    std = torch.sqrt(torch.relu(torch.bmm(s, style_flat ** 2) - mean ** 2))
    mean = mean.view(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
    std = std.view(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
    return std * mean_variance_norm(content) + mean


class AdaAttnOracle:
    def __init__(self, states):
        self.encoder = build_encoder().eval()
        self.encoder.load_state_dict(states["vgg_normalised.pth"])
        kids = list(self.encoder.children())
        self.slices = [torch.nn.Sequential(*kids[a:b]) for a, b in ENCODER_SLICES]
        self.transformer = Transformer().eval()
        self.transformer.load_state_dict(states["latest_net_transformer.pth"])
        self.decoder = Decoder().eval()
        self.decoder.load_state_dict(states["latest_net_decoder.pth"])
        self.adaattn_3 = AdaAttN(256, 448).eval()
        self.adaattn_3.load_state_dict(states["latest_net_adaattn_3.pth"])
        self.max_sample = dict(MAX_SAMPLE)      # tests may lower these to reach the relu4_1 / relu5_1 subsampling

    def encode(self, x):
        results = [x]
        for s in self.slices:
            results.append(s(results[-1]))
        return results[1:]

    def decoder_inputs(self, c, s, subsample=True):
        cap = (lambda i: self.max_sample[i]) if subsample else (lambda i: None)
        skip = literal_adaattn(self.adaattn_3, c[2], s[2], get_key(c, 2), get_key(s, 2), SEED, cap(2))
        t = self.transformer
        o4 = literal_adaattn(t.attn_adain_4_1, c[3], s[3], get_key(c, 3), get_key(s, 3), SEED, cap(3))
        o5 = literal_adaattn(t.attn_adain_5_1, c[4], s[4], get_key(c, 4), get_key(s, 4), SEED, cap(4))
        cs = t.merge_conv(t.merge_conv_pad(o4 + t.upsample5_1(o5)))
        return cs, skip

    def decode(self, cs, skip):
        return self.decoder.decoder_layer_2(torch.cat((self.decoder.decoder_layer_1(cs), skip), dim=1))

    @torch.no_grad()
    def stylize(self, content, style, alpha=1.0, subsample=True):
        """content/style: 1×3×H×W float in [0,1] (content sides multiples of 16). Unclamped decoder output."""
        c = self.encode(content)
        cs, skip = self.decoder_inputs(c, self.encode(style), subsample)
        if alpha < 1.0:
            cc, skip_cc = self.decoder_inputs(c, c, subsample)
            cs, skip = alpha * cs + (1 - alpha) * cc, alpha * skip + (1 - alpha) * skip_cc
        return self.decode(cs, skip)
