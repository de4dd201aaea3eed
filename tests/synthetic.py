"""Synthetic checkpoints in exactly the public layouts (file names, keys, shapes, legacy pickle format):
SANet's three circulated files and AdaAttN's released three (sharing vgg_normalised.pth).

Random Kaiming-scaled weights; the first VGG conv folds RGB→BGR·255 − ImageNet mean like the real file, and the
decoder's last conv is rescaled so that outputs land around 0.5 ± 0.2 — a fidelity test on constant or saturated
outputs would prove nothing. Attention is made as peaked as the real files': SANet's logits ~N(0, 28²) as measured
on the real layout; AdaAttN's f/g are scaled to the same logit spread at each level (no figure from the released
AdaAttN files is known here; peaked is what matters: it is what makes the softmax underflow and E[v²] − mean²
cancel, the cases a fidelity test must cover).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sanet.models import adaattn
from sanet.models.sanet import Transform, build_decoder
from sanet.vgg import build_vgg_full

FILES = ("vgg_normalised.pth", "decoder_iter_500000.pth", "transformer_iter_500000.pth")
ADAATTN_FILES = ("latest_net_transformer.pth", "latest_net_decoder.pth", "latest_net_adaattn_3.pth")
LOGIT_STD = 28.0


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


# --------------------------------------------------------------------------------------------------- AdaAttN

def make_adaattn_modules(seed: int = 1234):
    gen = torch.Generator().manual_seed(seed + 7)
    transformer, decoder, adaattn_3 = adaattn.Transformer(), adaattn.Decoder(), adaattn.AdaAttN(256, 448)
    for m in (transformer, decoder, adaattn_3):
        _kaiming(m, gen)
    return transformer, decoder, adaattn_3


def _calibrate_adaattn(vgg_state: dict, transformer, decoder, adaattn_3, seed: int) -> None:
    """Scale f and g so each level's attention logits have std LOGIT_STD; then the last decoder conv so a typical
    output is ~0.5 ± 0.2 (measured with the literal oracle, independent of the engine)."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from oracle_adaattn import AdaAttnOracle, get_key

    def oracle():
        return AdaAttnOracle({FILES[0]: vgg_state, ADAATTN_FILES[0]: transformer.state_dict(),
                              ADAATTN_FILES[1]: decoder.state_dict(), ADAATTN_FILES[2]: adaattn_3.state_dict()})

    gen = torch.Generator().manual_seed(seed + 2)
    content, style = _smooth_image(gen, 64), _smooth_image(gen, 64)
    with torch.no_grad():
        o = oracle()
        c, s = o.encode(content), o.encode(style)
        for idx, module in ((2, adaattn_3), (3, transformer.attn_adain_4_1), (4, transformer.attn_adain_5_1)):
            q = module.f(get_key(c, idx)).flatten(2)
            k = module.g(get_key(s, idx)).flatten(2)
            scale = (LOGIT_STD / torch.bmm(q.transpose(1, 2), k).std().item()) ** 0.5
            for conv in (module.f, module.g):
                conv.weight.mul_(scale)
                conv.bias.mul_(scale)
        out = oracle().stylize(content, style)
        scale = 0.2 / max(out.std().item(), 1e-8)
        last = decoder.decoder_layer_2[-1]
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(0.5 - scale * out.mean().item())


def make_synthetic_adaattn_weights(folder: Path, vgg_file: Path, seed: int = 1234) -> Path:
    """AdaAttN's three files in `folder`, calibrated with the VGG in `vgg_file` (a SANet synthetic folder's)."""
    from sanet.vgg import build_encoder
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    enc_keys = set(build_encoder().state_dict())
    vgg_state = {k: v for k, v in torch.load(vgg_file, weights_only=True).items() if k in enc_keys}
    transformer, decoder, adaattn_3 = make_adaattn_modules(seed)
    _calibrate_adaattn(vgg_state, transformer, decoder, adaattn_3, seed)
    for name, module in zip(ADAATTN_FILES, (transformer, decoder, adaattn_3)):
        state = {k: v.clone() for k, v in module.state_dict().items()}
        torch.save(state, folder / name, _use_new_zipfile_serialization=False)  # legacy (non-zip) pickle
    return folder


# --------------------------------------------------------------------------------------------------- variants

def make_synthetic_run(run_dir: Path, model: str, weights_folder: Path, seed: int, iteration: int = 10,
                       name: str | None = None) -> Path:
    """A finished `sanet train` run folder as the trainer leaves it (run.json + the checkpoint of `iteration` in the
    run's public layout: decoder_iter_N.pth … / N_net_ROLE.pth), its networks synthetic ones of another `seed` (as if
    fine-tuned): what `sanet weights install RUN_DIR` installs as the variant MODEL:NAME. The VGG is the
    weights folder's."""
    import json
    import tempfile
    from sanet.train import checkpoint as ck
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    vgg = Path(weights_folder) / FILES[0]
    with tempfile.TemporaryDirectory() as tmp:
        if model == "sanet":
            make_synthetic_weights(Path(tmp), seed)
            released = {"decoder": FILES[1], "transformer": FILES[2]}
        else:
            make_synthetic_adaattn_weights(Path(tmp), vgg, seed)
            released = dict(zip(("transformer", "decoder", "adaattn_3"), ADAATTN_FILES))
        for role, file in ck.checkpoint_names(model, iteration).items():
            (run_dir / file).write_bytes((Path(tmp) / released[role]).read_bytes())
    run = {"format": ck.RUN_FORMAT, "model": model, "vgg": str(vgg)}
    if name:
        run["name"] = name
    (run_dir / ck.RUN_FILE).write_text(json.dumps(run), "utf-8")
    return run_dir


def weights_with_variants(root: Path, base_weights: Path, variants) -> Path:
    """root/weights: the files of base_weights (hard links) plus each (model, name, seed) in `variants` installed from
    a synthetic run (root/runs/NAME) by the real CLI, `sanet weights install RUN --weights FOLDER`; checks its report."""
    import os
    import subprocess
    import sys
    from sanetd_process import PYTHONPATH
    folder = Path(root) / "weights"
    folder.mkdir(parents=True)
    for f in Path(base_weights).iterdir():
        os.link(f, folder / f.name)
    for model, name, seed in variants:
        run = make_synthetic_run(Path(root) / "runs" / name, model, folder, seed)
        r = subprocess.run([sys.executable, "-m", "sanet.cli", "weights", "install", str(run), "--weights",
                            str(folder)], env=dict(os.environ, PYTHONPATH=os.pathsep.join(PYTHONPATH)),
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert f"{model}:{name}: installed iteration 10" in r.stdout, r.stdout
    return folder
