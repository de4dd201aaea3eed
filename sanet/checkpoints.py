"""Loading the three circulated checkpoint files safely, with errors that name the file and the mismatch."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from .errors import WeightsError
from .network import ENCODER_DEPTH, build_decoder, build_encoder, build_vgg_full, Transform

VGG_FILE = "vgg_normalised.pth"
DECODER_FILE = "decoder_iter_500000.pth"
TRANSFORMER_FILE = "transformer_iter_500000.pth"
CHECKPOINT_FILES = (VGG_FILE, DECODER_FILE, TRANSFORMER_FILE)


def expected_layout() -> dict[str, dict[str, tuple[int, ...]]]:
    """file name → {key: shape} that a file must hold (VGG: only the layers inference runs)."""
    return {
        VGG_FILE: {k: tuple(v.shape) for k, v in build_encoder().state_dict().items()},
        DECODER_FILE: {k: tuple(v.shape) for k, v in build_decoder().state_dict().items()},
        TRANSFORMER_FILE: {k: tuple(v.shape) for k, v in Transform().state_dict().items()},
    }


def _tolerated_extra_keys(name: str) -> set[str]:
    # The circulated VGG file goes on to relu5_4; those layers are accepted and never run.
    if name == VGG_FILE:
        return set(build_vgg_full().state_dict())
    return set()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """torch.load with weights_only=True; any failure becomes a WeightsError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint file is missing; install the weights with "
                           f"`sanet weights install SRC` (or point --weights / SANET_WEIGHTS at their folder)")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: checkpoint file is empty")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, ValueError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"{path}: not a readable checkpoint (truncated or corrupt?): {msg}") from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors, found {type(obj).__name__}")
    return obj


def validate_state_dict(name: str, state: dict[str, torch.Tensor], path: Path | str | None = None) -> None:
    where = path or name
    expected = expected_layout()[name]
    missing = [k for k in expected if k not in state]
    if missing:
        raise WeightsError(f"{where}: missing key(s) {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"
                           f" (expected the {name} layout)")
    extra = [k for k in state if k not in expected and k not in _tolerated_extra_keys(name)]
    if extra:
        raise WeightsError(f"{where}: unexpected key(s) {', '.join(sorted(extra)[:5])} (expected the {name} layout)")
    for key, shape in expected.items():
        got = tuple(state[key].shape)
        if got != shape:
            raise WeightsError(f"{where}: key '{key}' has shape {list(got)}, expected {list(shape)}")
        if not torch.is_floating_point(state[key]):
            raise WeightsError(f"{where}: key '{key}' has dtype {state[key].dtype}, expected floating point")


def load_checkpoints(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Read and validate the three files in `folder`; VGG keys beyond relu5_1 are dropped."""
    folder = Path(folder)
    out = {}
    for name in CHECKPOINT_FILES:
        state = read_state_dict(folder / name)
        validate_state_dict(name, state, folder / name)
        if name == VGG_FILE:
            keep = expected_layout()[VGG_FILE]
            state = {k: v for k, v in state.items() if k in keep}
        out[name] = state
    return out


__all__ = ["CHECKPOINT_FILES", "VGG_FILE", "DECODER_FILE", "TRANSFORMER_FILE", "ENCODER_DEPTH",
           "expected_layout", "read_state_dict", "validate_state_dict", "load_checkpoints"]
