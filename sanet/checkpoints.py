"""Loading checkpoint files safely (weights_only=True), with errors that name the file and the mismatch.

Every model's files live flat in one weights folder; vgg_normalised.pth is shared by SANet and AdaAttN:
    SANet    vgg_normalised.pth, decoder_iter_500000.pth, transformer_iter_500000.pth
    AdaAttN  vgg_normalised.pth, latest_net_transformer.pth, latest_net_decoder.pth, latest_net_adaattn_3.pth
The expected keys and shapes come from the models' own nn.Modules (sanet.models), so they cannot drift apart.
"""
from __future__ import annotations

import pickle
import zipfile
from functools import lru_cache
from pathlib import Path

import torch

from . import variants
from .errors import WeightsError
from .models import MODELS, get_model
from .models.sanet import DECODER_FILE, TRANSFORMER_FILE
from .vgg import ENCODER_DEPTH, VGG_FILE, build_encoder, build_vgg_full

CHECKPOINT_FILES = (VGG_FILE, DECODER_FILE, TRANSFORMER_FILE)   # SANet's three (what `sanet weights` manages)


def model_files(model=None) -> tuple[str, ...]:
    """The files a model needs, the shared VGG first."""
    return (VGG_FILE,) + tuple(get_model(model).files.values())


@lru_cache(maxsize=1)
def _layouts() -> dict[str, tuple[str, dict[str, tuple[int, ...]]]]:
    """file name → (owner, {key: shape}) for every known file; owner names the model ('SANet', 'AdaAttN', 'VGG')."""
    out = {VGG_FILE: ("VGG", {k: tuple(v.shape) for k, v in build_encoder().state_dict().items()})}
    for model in MODELS.values():
        owner = model.title.split(" ")[0]
        for role, module in model.build().items():
            out[model.files[role]] = (owner, {k: tuple(v.shape) for k, v in module.state_dict().items()})
    return out


def expected_layout() -> dict[str, dict[str, tuple[int, ...]]]:
    """file name → {key: shape} that a file must hold (VGG: only the layers inference runs)."""
    return {name: dict(layout) for name, (_, layout) in _layouts().items()}


def _tolerated_extra_keys(name: str) -> set[str]:
    # The circulated VGG file goes on to relu5_4; those layers are accepted and never run.
    if name == VGG_FILE:
        return set(build_vgg_full().state_dict())
    return set()


def _identify(state: dict[str, torch.Tensor], name: str) -> str:
    """' (the file holds AdaAttN's latest_net_decoder.pth)' when `state` is another known file exactly, else ''."""
    for other, (owner, layout) in _layouts().items():
        if other != name and set(layout) <= set(state) and all(tuple(state[k].shape) == s for k, s in layout.items()) \
                and not (set(state) - set(layout) - _tolerated_extra_keys(other)):
            return f"; the file holds {owner}'s {other}"
    return ""


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
    """Keys, shapes, dtypes of `state` against file `name`'s layout (a variant's file: its base name's)."""
    where = path or name
    layouts = _layouts()
    if name not in layouts and Path(name).name in layouts:
        name = Path(name).name
    if name not in layouts:
        raise WeightsError(f"{where}: '{name}' is not a checkpoint file of any model ({', '.join(layouts)})")
    owner, expected = layouts[name]
    missing = [k for k in expected if k not in state]
    if missing:
        raise WeightsError(f"{where}: missing key(s) {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"
                           f" (expected the {name} layout{_identify(state, name)})")
    extra = [k for k in state if k not in expected and k not in _tolerated_extra_keys(name)]
    if extra:
        raise WeightsError(f"{where}: unexpected key(s) {', '.join(sorted(extra)[:5])} (expected the {name} layout"
                           f"{_identify(state, name)})")
    for key, shape in expected.items():
        got = tuple(state[key].shape)
        if got != shape:
            raise WeightsError(f"{where}: key '{key}' has shape {list(got)}, expected {list(shape)}")
        if not torch.is_floating_point(state[key]):
            raise WeightsError(f"{where}: key '{key}' has dtype {state[key].dtype}, expected floating point")


def missing_files(folder: Path, model=None) -> list[str]:
    folder = Path(folder)
    return [n for n in model_files(model) if not (folder / n).is_file()]


def installed_variants(folder: Path) -> list[variants.Variant]:
    """The installed variants MODEL:NAME (sanet.variants) whose checkpoint files are all there; none while the
    folder has no VGG file (every variant reads the folder's own)."""
    folder = Path(folder)
    if not (folder / VGG_FILE).is_file():
        return []
    own = {name: tuple(Path(f).name for f in m.files.values() if Path(f).name != VGG_FILE)
           for name, m in MODELS.items()}
    return variants.installed(folder, own)


def installed_models(folder: Path) -> list[str]:
    """Models whose files are all in the folder (present, not validated), in MODELS order, then the installed
    variants whose files are all there (a half-copied variant folder is not listed)."""
    return [n for n in MODELS if not missing_files(folder, n)] + [v.id for v in installed_variants(folder)]


def load_checkpoints(folder: Path, model=None) -> dict[str, dict[str, torch.Tensor]]:
    """Read and validate a model's files in `folder` (default SANet); VGG keys beyond relu5_1 are dropped.
    Missing files: one WeightsError naming all of them and the folder."""
    folder = Path(folder)
    m = get_model(model)
    absent = missing_files(folder, m)
    if absent and m.base:
        base, name = variants.split(m.name)
        here = variants.folder(folder, base, name)
        if not (here / variants.INFO_FILE).is_file():
            have = [v.id for v in variants.installed(folder) if v.model == base]
            raise WeightsError(f"{here}: no variant '{m.name}' is installed in {folder} ("
                               + (f"installed: {', '.join(have)}" if have else f"no variant of {base} is installed")
                               + "); install a training run's result with `sanet weights install RUN_DIR`")
    if absent:
        more = f", and so are {', '.join(absent[1:])}" if absent[1:] else ""
        raise WeightsError(f"{folder / absent[0]}: checkpoint file is missing{more} ({m.title.split(' ')[0]} needs "
                           f"{', '.join(model_files(m))} in {folder}); install them with `sanet weights install "
                           f"--model {m.name}` (or `--from FOLDER|ZIP`), or point --weights / SANET_WEIGHTS at "
                           f"their folder")
    out = {}
    for name in model_files(m):
        state = read_state_dict(folder / name)
        validate_state_dict(name, state, folder / name)
        if name == VGG_FILE:
            keep = expected_layout()[VGG_FILE]
            state = {k: v for k, v in state.items() if k in keep}
        out[name] = state
    return out


__all__ = ["CHECKPOINT_FILES", "VGG_FILE", "DECODER_FILE", "TRANSFORMER_FILE", "ENCODER_DEPTH", "model_files",
           "expected_layout", "read_state_dict", "validate_state_dict", "missing_files", "load_checkpoints"]
