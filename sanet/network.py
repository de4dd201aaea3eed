"""The SANet network exactly as the paper and the circulated checkpoints define it.

Module indices match the checkpoint keys ("0.weight", "2.weight", ... for the VGG file, "1.weight", ... for the
decoder file, "sanet4_1.f.weight", ... for the transformer file), so the state dicts load without renaming.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

# Channel plan of the normalised VGG-19, one entry per conv after the 1x1 colour conv; "M" is a max-pool.
_VGG_PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]

# Slices of the encoder Sequential that end at relu1_1 .. relu5_1 (reference inference cuts).
ENCODER_SLICES = [(0, 4), (4, 11), (11, 18), (18, 31), (31, 44)]
ENCODER_DEPTH = 44  # children up to and including relu5_1; the file holds more (up to relu5_4)


def build_vgg_full() -> nn.Sequential:
    """The whole normalised VGG-19 as stored in vgg_normalised.pth (53 children, up to relu5_4)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    in_ch = 3
    for item in _VGG_PLAN:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, item, 3), nn.ReLU()]
            in_ch = item
    return nn.Sequential(*layers)


def build_encoder() -> nn.Sequential:
    """The part of the VGG that inference runs: children [0:44], up to relu5_1."""
    return nn.Sequential(*list(build_vgg_full().children())[:ENCODER_DEPTH])


def build_decoder() -> nn.Sequential:
    """Mirror of the encoder up to relu4_1 (as in AdaIN); the last conv has no ReLU, output is not clamped."""
    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.ReflectionPad2d(1), nn.Conv2d(i, o, 3), nn.ReLU()]

    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    layers = (
        block(512, 256) + [up()]
        + block(256, 256) + block(256, 256) + block(256, 256) + block(256, 128) + [up()]
        + block(128, 128) + block(128, 64) + [up()]
        + block(64, 64) + [nn.ReflectionPad2d(1), nn.Conv2d(64, 3, 3)]
    )
    return nn.Sequential(*layers)


def mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std over positions: UNBIASED variance, eps inside the square root."""
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    var = flat.var(dim=2, unbiased=True) + eps
    return flat.mean(dim=2).reshape(n, c, 1, 1), var.sqrt().reshape(n, c, 1, 1)


def mean_variance_norm(feat: torch.Tensor) -> torch.Tensor:
    mean, std = mean_std(feat)
    return (feat - mean) / std


class SANet(nn.Module):
    """One style-attentional module: O = out_conv(h(Fs) · softmax(f(norm Fc)ᵀ g(norm Fs))ᵀ); returns Fc + O."""

    def __init__(self, in_planes: int = 512):
        super().__init__()
        self.f = nn.Conv2d(in_planes, in_planes, 1)
        self.g = nn.Conv2d(in_planes, in_planes, 1)
        self.h = nn.Conv2d(in_planes, in_planes, 1)
        self.out_conv = nn.Conv2d(in_planes, in_planes, 1)


class Transform(nn.Module):
    """The two SANet modules and the merge conv; the forward math lives in sanet.transform."""

    def __init__(self, in_planes: int = 512):
        super().__init__()
        self.sanet4_1 = SANet(in_planes)
        self.sanet5_1 = SANet(in_planes)
        self.merge_conv_pad = nn.ReflectionPad2d(1)
        self.merge_conv = nn.Conv2d(in_planes, in_planes, 3)


def checkpoint_layout() -> dict[str, dict[str, tuple[int, ...]]]:
    """Expected keys and shapes of the three circulated files, derived from the modules above."""
    return {
        "vgg_normalised.pth": {k: tuple(v.shape) for k, v in build_vgg_full().state_dict().items()},
        "decoder_iter_500000.pth": {k: tuple(v.shape) for k, v in build_decoder().state_dict().items()},
        "transformer_iter_500000.pth": {k: tuple(v.shape) for k, v in Transform().state_dict().items()},
    }


def upsample_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest x2 as in the paper; when the relu5_1 grid is not exactly half (odd sizes), nearest to `size`."""
    h, w = x.shape[-2:]
    if (2 * h, 2 * w) == tuple(size):
        return F.interpolate(x, scale_factor=2, mode="nearest")
    return F.interpolate(x, size=size, mode="nearest")
