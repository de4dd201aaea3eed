"""Which models this sanetd can run: the engine's models (sanet.MODELS) whose checkpoint files are in its weights
folder. hello.reply lists them; a stylize for a model without its files is answered at once with one
`model_unavailable` error naming the missing files. A file that is there but broken (truncated, another model's)
is found when the model loads, and answered with the same code and the engine's message naming the file.
"""
from __future__ import annotations

from pathlib import Path

from sanet.checkpoints import missing_files
from sanet.models import MODELS
from sanet_client import protocol as P

FIELD = "model"   # the request field a model_unavailable error names


class Unavailable(Exception):
    """A model this daemon cannot run; ``missing``: the files absent from the weights folder (may be empty)."""

    def __init__(self, message: str, missing=()):
        super().__init__(message)
        self.message = message
        self.missing = list(missing)


def installed(weights_dir) -> list[str]:
    """Models whose files are all in the folder (present, not yet validated), in sanet.MODELS order."""
    return [m for m in MODELS if not missing_files(Path(weights_dir), m)]


def check_installed(weights_dir, model: str) -> None:
    """Raise Unavailable naming the missing files when `model`'s files are not all in the folder."""
    absent = missing_files(Path(weights_dir), model)
    if absent:
        raise Unavailable(f"model '{model}' ({P.MODELS.get(model, model)}) is not installed: "
                          f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} missing in {weights_dir}; "
                          f"install {'it' if len(absent) == 1 else 'them'} on the daemon's computer with "
                          f"`sanet weights install --model {model}`", absent)


def describe(weights_dir, loaded) -> list[dict]:
    """hello.reply "models": one entry per installed model (name, title, loaded)."""
    loaded = set(loaded or ())
    return [{"name": m, "title": MODELS[m].title, "loaded": m in loaded} for m in installed(weights_dir)]
