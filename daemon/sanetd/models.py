"""Which models this sanetd can run: the engine's models (sanet.MODELS) whose checkpoint files are in its weights
folder. hello.reply lists them; a stylize for a model without its files is answered at once with one
`model_unavailable` error naming the missing files. A file that is there but broken (truncated, another model's)
is found when the model loads, and answered with the same code and the engine's message naming the file. Model
variants MODEL:NAME (sanet.variants, installed by `sanet weights install RUN_DIR`) are listed and checked the same
way, after the released models.
"""
from __future__ import annotations

from pathlib import Path

from sanet import variants
from sanet.checkpoints import VGG_FILE, installed_models, installed_variants, missing_files
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
    """Models whose files are all in the folder (present, not yet validated), in sanet.MODELS order, then the
    installed variants MODEL:NAME (sanet.variants; a half-copied variant folder is not listed)."""
    return installed_models(weights_dir)


def _entries(weights_dir) -> list[dict]:
    folder = Path(weights_dir)
    out = [{"name": m, "title": MODELS[m].title, "base": m, "display": P.model_display(m)}
           for m in MODELS if not missing_files(folder, m)]
    for v in installed_variants(folder):
        title = v.info.get("title") if isinstance(v.info.get("title"), str) else None
        out.append({"name": v.id, "title": f"{MODELS[v.model].title} — {title or v.name}", "base": v.model,
                    "variant": v.name, "display": P.model_display(v.id, title)})
    return out


def _variant_files(model: str) -> tuple[str, ...]:
    return tuple(f for f in MODELS[model].files.values() if f != VGG_FILE)


def check_installed(weights_dir, model: str) -> None:
    """Raise Unavailable naming the missing files when `model`'s files are not all in the folder; for a variant
    MODEL:NAME, naming its folder (and the installed variants) when there is none."""
    base, name = P.split_model(model)
    if name is not None:
        folder = variants.folder(Path(weights_dir), base, name)
        if not (folder / variants.INFO_FILE).is_file():
            have = [v.id for v in variants.installed(Path(weights_dir))]
            wanted = [variants.relative_file(base, name, f) for f in (variants.INFO_FILE,) + _variant_files(base)]
            raise Unavailable(f"model '{model}' is not installed: {folder} has no variant "
                              f"({'installed variants: ' + ', '.join(have) if have else 'no variant is installed'}); "
                              f"install a training run as this variant on the daemon's computer with "
                              f"`sanet weights install RUN_DIR --name {name}`",
                              [w for w in wanted if not (Path(weights_dir) / w).is_file()])
    absent = missing_files(Path(weights_dir), model)
    if absent:
        raise Unavailable(f"model '{model}' ({P.model_display(model)}) is not installed: "
                          f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} missing in {weights_dir}; "
                          f"install {'it' if len(absent) == 1 else 'them'} on the daemon's computer with "
                          + (f"`sanet weights install --model {base}`" if name is None else
                             f"`sanet weights install RUN_DIR --name {name}` (a variant's files) or "
                             f"`sanet weights install --model {base}` (the shared {VGG_FILE})"), absent)


def describe(weights_dir, loaded) -> list[dict]:
    """hello.reply "models": one entry per installed model and variant (name, title, base, display, loaded)."""
    loaded = set(loaded or ())
    return [{**e, "loaded": e["name"] in loaded} for e in _entries(weights_dir)]
