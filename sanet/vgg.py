"""The normalised VGG-19 encoder that SANet and AdaAttN share (one file, vgg_normalised.pth).

Module indices match the checkpoint keys ("0.weight", "2.weight", ...), so the state dict loads without renaming.
The file holds layers up to relu5_4; inference runs children [0:44], up to relu5_1.
"""
from __future__ import annotations

import torch
from torch import nn

from . import interrupt

VGG_FILE = "vgg_normalised.pth"

# Channel plan of the normalised VGG-19, one entry per conv after the 1x1 colour conv; "M" is a max-pool.
_VGG_PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]

# Slices of the encoder Sequential that end at relu1_1 .. relu5_1 (reference inference cuts).
ENCODER_SLICES = [(0, 4), (4, 11), (11, 18), (18, 31), (31, 44)]
ENCODER_DEPTH = 44  # children up to and including relu5_1; the file holds more (up to relu5_4)
CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}   # relu{L}_1 channels
FACTOR = {1: 1, 2: 2, 3: 4, 4: 8, 5: 16}              # image pixels per relu{L}_1 cell (padded sizes)


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


def slices(encoder: nn.Sequential) -> list[nn.Sequential]:
    """The encoder cut at relu1_1 .. relu5_1 (modules shared with `encoder`)."""
    kids = list(encoder.children())
    return [nn.Sequential(*kids[a:b]) for a, b in ENCODER_SLICES]


def encode(stages: list[nn.Module], x: torch.Tensor, levels: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """relu{L}_1 maps of image tensor x for each L in `levels` (1..5); only the stages up to the deepest run (layer by
    layer, with cancellation points: sanet.interrupt)."""
    out = {}
    for level in range(1, max(levels) + 1):
        x = interrupt.sequential(stages[level - 1], x)
        if level in levels:
            out[level] = x
    return out
