"""Tiny synthetic training data and the engine's networks loaded from the synthetic checkpoints."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch


def smooth_batch(n: int, size: int, seed: int) -> torch.Tensor:
    """n×3×size×size images in [0, 1]: smooth random colour fields (bilinear upsampling of an 8×8 grid)."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, size // 8), max(2, size // 8), generator=gen)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def write_images(folder: Path, count: int, seed: int, sizes=((64, 96), (128, 80), (96, 96))) -> list[Path]:
    """`count` PNG/JPEG images of 64–128 px in folder and a subfolder (searched recursively by training)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        h, w = sizes[i % len(sizes)]
        low = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(low).resize((w, h), Image.BILINEAR)
        sub = folder / ("nested/deeper" if i % 3 == 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"img{i:02d}.{'jpg' if i % 2 else 'png'}"
        img.save(path)
        out.append(path)
    return out


def engine_networks(weights: Path, model_name: str):
    """(model, nets, VGG stages) as training builds them, from the synthetic files in `weights`."""
    from sanet.checkpoints import load_checkpoints
    from sanet.models import get_model
    from sanet.train.loop import load_vgg
    model = get_model(model_name)
    states = load_checkpoints(weights, model)
    nets = model.build()
    for role, module in nets.items():
        module.load_state_dict(states[model.files[role]])
    return model, nets, load_vgg(weights / "vgg_normalised.pth")


# ------------------------------------------------------------------------------- `sanet train` as a subprocess

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--size", "48", "--crop", "32", "--batch", "1", "--workers", "1", "--seed", "3"]
ITERATIONS = {"sanet": 4, "adaattn": 5}


def env() -> dict:
    # one thread: with tiny tensors on a loaded 2-core machine, two OpenMP threads spin ~7× slower (measured)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]), "OMP_NUM_THREADS": "1"}


def sanet(*args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "sanet.cli", *map(str, args)], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def weights_args(model, weights):
    return ["--model", model, "--vgg", Path(weights) / "vgg_normalised.pth"]
