"""Model variants: a model's networks fine-tuned by `sanet train`, installed beside the released weights and selected
as MODEL:NAME (e.g. `sanet:my-style`) wherever a model is chosen (the CLI, sanetd's requests, the plug-ins).

A variant has the same architecture and the same public file layout as its model; only the files differ:

    WEIGHTS/variants/<model>/<name>/variant.json             format, model, name, where it came from
    WEIGHTS/variants/<model>/<name>/decoder_iter_500000.pth  (SANet: + transformer_iter_500000.pth;
                                                              AdaAttN: latest_net_{transformer,decoder,adaattn_3}.pth)

The VGG is the weights folder's own vgg_normalised.pth (training never changes it). `sanet weights install RUN_DIR`
installs a training run's checkpoint here (sanet.weights.install_run). Names: 1–64 lower-case ASCII letters, digits,
'-', '_', '.', not starting with '-' or '.' (sanet_client.protocol's rule). No torch: the daemon lists variants
without loading it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sanet_client import protocol as P

from .errors import InputError

VARIANTS_DIR = "variants"
SEPARATOR = P.VARIANT_SEPARATOR       # the name rule is the protocol's (one definition): sanet_client.protocol
INFO_FILE = "variant.json"
INFO_FORMAT = "sanet-model-variant/1"
MAX_NAME = P.VARIANT_NAME_MAX
name_problem = P.variant_name_problem   # why a name cannot be a variant name, or None


def slug(text: str) -> str:
    """A folder name made into a valid variant name (other characters become '-')."""
    out = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "-" for ch in text.lower())
    return out.strip("-.")[:MAX_NAME].strip("-.") or "my-style"


def split(model: str) -> tuple[str, str | None]:
    """'sanet:my-style' → ('sanet', 'my-style'); 'sanet' → ('sanet', None). Names are checked (InputError)."""
    base, sep, variant = str(model).partition(SEPARATOR)
    if not sep:
        return base, None
    problem = name_problem(variant)
    if problem:
        raise InputError(f"model '{model}': {problem}")
    return base, variant


def join(model: str, name: str) -> str:
    return f"{model}{SEPARATOR}{name}"


def folder(weights_dir: Path, model: str, name: str) -> Path:
    return Path(weights_dir) / VARIANTS_DIR / model / name


def relative_file(model: str, name: str, file: str) -> str:
    """A variant's checkpoint file relative to the weights folder (what Model.files holds for a variant)."""
    return f"{VARIANTS_DIR}/{model}/{name}/{file}"


@dataclass
class Variant:
    model: str              # the base model
    name: str
    path: Path              # its folder
    info: dict              # variant.json ({} when unreadable)

    @property
    def id(self) -> str:
        return join(self.model, self.name)

    def as_dict(self) -> dict:
        keep = {k: self.info[k] for k in ("source", "iteration", "created", "init", "title") if k in self.info}
        return {"id": self.id, "model": self.model, "name": self.name, **keep}


def installed(weights_dir: Path, files: dict[str, tuple[str, ...]] | None = None) -> list[Variant]:
    """The variants in a weights folder, sorted by id. `files` (model → its file names) keeps only the variants whose
    files are all there (a half-copied folder is not offered)."""
    root = Path(weights_dir) / VARIANTS_DIR
    out = []
    if not root.is_dir():
        return out
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for d in sorted(p for p in model_dir.iterdir() if p.is_dir()):
            if name_problem(d.name) or not (d / INFO_FILE).is_file():
                continue
            if files is not None and (model_dir.name not in files
                                      or not all((d / f).is_file() for f in files[model_dir.name])):
                continue
            try:
                info = json.loads((d / INFO_FILE).read_text("utf-8"))
                info = info if isinstance(info, dict) else {}
            except (OSError, ValueError):
                info = {}
            out.append(Variant(model_dir.name, d.name, d, info))
    return out
