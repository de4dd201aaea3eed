"""Synthetic checkpoints in exactly the public layout (file names, keys, shapes, legacy pickle format).

Random Kaiming-scaled weights; the first VGG conv folds RGB→BGR·255 − ImageNet mean like the real file, and the
decoder's last conv is rescaled so that outputs land around 0.5 ± 0.2 — a fidelity test on constant or saturated
outputs would prove nothing.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sanet.models.sanet import Transform, build_decoder
from sanet.vgg import build_vgg_full

FILES = ("vgg_normalised.pth", "decoder_iter_500000.pth", "transformer_iter_500000.pth")


def _kaiming(module: nn.Module, gen: torch.Generator) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.01)


def make_modules(seed: int = 1234):
    gen = torch.Generator().manual_seed(seed)
    vgg, decoder, transform = build_vgg_full(), build_decoder(), Transform()
    for m in (vgg, decoder, transform):
        _kaiming(m, gen)
    with torch.no_grad():  # conv 0: RGB in [0,1] → Caffe BGR·255 minus mean, as in vgg_normalised.pth
        w = torch.zeros(3, 3, 1, 1)
        for out_ch, in_ch in enumerate((2, 1, 0)):
            w[out_ch, in_ch] = 255.0
        vgg[0].weight.copy_(w)
        vgg[0].bias.copy_(torch.tensor([-103.939, -116.779, -123.68]))
        for sa in (transform.sanet4_1, transform.sanet5_1):  # attention logits ~N(0, 28²) as measured on the
            sa.f.weight.mul_(0.86)                           # real files' layout: peaked, denormal-prone softmax
            sa.g.weight.mul_(0.86)
    return vgg, decoder, transform


def _calibrate_decoder(vgg, decoder, transform, seed: int) -> None:
    """Rescale the last (linear) decoder conv so a typical output is ~0.5 ± 0.2 instead of huge or constant."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from oracle import Oracle  # literal reference, independent of the engine
    from sanet.vgg import build_encoder

    enc_keys = set(build_encoder().state_dict())
    oracle = Oracle({FILES[0]: {k: v for k, v in vgg.state_dict().items() if k in enc_keys},
                     FILES[1]: decoder.state_dict(), FILES[2]: transform.state_dict()})
    gen = torch.Generator().manual_seed(seed + 1)
    out = oracle.stylize(_smooth_image(gen, 64), _smooth_image(gen, 64))
    scale = 0.2 / max(out.std().item(), 1e-8)
    last = decoder[-1]
    with torch.no_grad():  # out' = scale·out + (0.5 − scale·mean)
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(0.5 - scale * out.mean().item())


def _smooth_image(gen: torch.Generator, size: int) -> torch.Tensor:
    low = torch.rand(1, 3, size // 8, size // 8, generator=gen)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def make_synthetic_weights(folder: Path, seed: int = 1234) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vgg, decoder, transform = make_modules(seed)
    _calibrate_decoder(vgg, decoder, transform, seed)
    for name, module in zip(FILES, (vgg, decoder, transform)):
        state = {k: v.clone() for k, v in module.state_dict().items()}
        torch.save(state, folder / name, _use_new_zipfile_serialization=False)  # legacy (non-zip) pickle
    return folder
