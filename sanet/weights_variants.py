"""Installing a training run as a model variant (`sanet weights install RUN_DIR`), listing and removing variants.

    sanet weights install runs/my-style                      the run's latest checkpoint → sanet:my-style
    sanet weights install runs/my-style/decoder_iter_3000.pth   that iteration's checkpoint
    sanet weights install runs/my-style --name watercolour --iteration 2000
    sanet weights remove sanet:my-style

The files are checked (keys, shapes: the model's public layout), copied into a staging folder beside the variant's
(WEIGHTS/variants/<model>/.<name>.*), fsynced, then renamed into place: a variant is never half installed under its
name, and re-installing one replaces it whole. When the weights folder has no vgg_normalised.pth yet, the run's VGG
is installed too (every model and variant reads the folder's own; a different one is kept and said).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from . import variants
from . import weights as W
from .errors import WeightsError
from .train import checkpoint as ck


def training_run_of(src: str) -> tuple[Path, int | None] | None:
    """(run folder, iteration or None for the latest) when `src` is a training run's folder or one of its checkpoint
    files (decoder_iter_N.pth, N_net_ROLE.pth; latest_net_ROLE.pth = the latest); None otherwise."""
    p = Path(src).expanduser()
    if p.is_dir() and (p / ck.RUN_FILE).is_file():
        return p, None
    if p.is_file() and (p.parent / ck.RUN_FILE).is_file():
        m = re.match(r"^(?:(?:decoder|transformer)_iter_(\d+)|(\d+)_net_(?:transformer|decoder|adaattn_3))\.pth$",
                     p.name)
        if m:
            return p.parent, int(m.group(1) or m.group(2))
        if re.match(r"^latest_net_(?:transformer|decoder|adaattn_3)\.pth$", p.name):
            return p.parent, None
        raise WeightsError(f"{p}: not a checkpoint file of the training run in {p.parent} (install the run folder, "
                           f"or one of its decoder_iter_N.pth / N_net_*.pth files)")
    return None


def _read_run(run_dir: Path) -> dict:
    try:
        run = ck.read_json(run_dir / ck.RUN_FILE)
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{run_dir / ck.RUN_FILE}: cannot be read ({exc})") from None
    if not isinstance(run, dict) or run.get("format") != ck.RUN_FORMAT or run.get("model") not in W.MODELS:
        raise WeightsError(f"{run_dir / ck.RUN_FILE}: not a training run of this program")
    return run


def install_run(run_dir: Path, target: Path, iteration: int | None = None, name: str | None = None,
                say=print) -> variants.Variant:
    """Install checkpoint `iteration` (default: the latest complete one) of a training run as variant MODEL:NAME
    (default name: the run's) in the weights folder `target`."""
    from .models import get_model
    run_dir = Path(run_dir)
    run = _read_run(run_dir)
    model = get_model(run["model"])
    name = name or run.get("name") or variants.slug(run_dir.resolve().name)
    problem = variants.name_problem(name)
    if problem:
        raise WeightsError(f"--name {name!r}: {problem}")
    done = ck.iterations_on_disk(run_dir, model.name)
    if not done:
        raise WeightsError(f"{run_dir}: this training run has no complete checkpoint yet (its first one is written "
                           f"after --save-every iterations)")
    if iteration is None:
        iteration = done[-1]
    elif iteration not in done:
        raise WeightsError(f"{run_dir}: no complete checkpoint of iteration {iteration} (there are: "
                           f"{', '.join(map(str, done))})")
    sources = {role: run_dir / n for role, n in ck.checkpoint_names(model.name, iteration).items()}
    target = W.prepare_target(target)
    vid = variants.join(model.name, name)
    with W._InstallLock(target):
        _ensure_vgg(run, target, say)
        parent = target / variants.VARIANTS_DIR / model.name
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent))
        try:
            digests = {}
            for role, src in sources.items():
                dest = stage / model.files[role]
                W.check_checkpoint(model.files[role], src, str(src))
                shutil.copyfile(src, dest)
                with open(dest, "rb") as f:
                    os.fsync(f.fileno())
                os.chmod(dest, 0o644)
                digests[model.files[role]] = W.file_digests(dest).sha256
            info = {"format": variants.INFO_FORMAT, "id": vid, "model": model.name, "name": name,
                    "source": str(run_dir.resolve()), "iteration": iteration, "init": run.get("init"),
                    "vgg_sha256": run.get("vgg_sha256"), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "files": digests}
            (stage / variants.INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", "utf-8")
            os.chmod(stage, 0o755)
            final = parent / name
            old = None
            if final.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=parent))
                os.replace(final, old / name)
            os.replace(stage, final)
            W.fsync_dir(parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    say(f"{vid}: installed iteration {iteration} of {run_dir} into {final} "
        f"({', '.join(model.files.values())}); select it as the model {vid}")
    return variants.Variant(model.name, name, final, info)


def _ensure_vgg(run: dict, target: Path, say) -> None:
    """The variant reads the folder's vgg_normalised.pth: install the run's when there is none; say so when the
    folder's differs from the one the run trained with."""
    vgg = target / W.VGG_FILE
    if vgg.is_file():
        if run.get("vgg_sha256") and W.file_digests(vgg).sha256 != run["vgg_sha256"]:
            say(f"note: {vgg} is not the VGG file this run was trained with ({run.get('vgg')}); the variant will "
                f"read {vgg}")
        return
    src = Path(run.get("vgg") or "")
    if not src.is_file():
        raise WeightsError(f"{vgg}: missing, and the run's VGG file {src} is gone: install it first "
                           f"(`sanet weights install`)")
    W.install_sources([W.Source(str(src), W.VGG_FILE)], target, W.FetchOptions(progress=False))
    say(f"{W.VGG_FILE}: installed from {src} (the VGG the run trained with)")


def remove(target: Path, vid: str, say=print) -> None:
    base, name = variants.split(vid)
    if name is None or base not in W.MODELS:
        raise WeightsError(f"{vid!r}: expected a model variant MODEL{variants.SEPARATOR}NAME (e.g. sanet:my-style);"
                           f" the released weights are not removed by this command")
    folder = variants.folder(target, base, name)
    if not folder.is_dir():
        have = [v.id for v in variants.installed(target)]
        raise WeightsError(f"{folder}: no variant {vid} is installed ({'installed: ' + ', '.join(have) if have else 'none is installed'})")
    with W._InstallLock(Path(target)):
        trash = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=folder.parent))
        os.replace(folder, trash / name)
        shutil.rmtree(trash, ignore_errors=True)
    say(f"{vid}: removed from {target}")


def variant_files() -> dict[str, tuple[str, ...]]:
    """model → the file names a variant of it holds (the model's own files, the VGG excepted)."""
    return {m: tuple(f for f in files if f != W.VGG_FILE) for m, files in W.MODELS.items()}


def status(target: Path) -> list[dict]:
    """Every installed variant with its files' states (checked like the released files)."""
    out = []
    files = variant_files()
    for v in variants.installed(target):
        states = [W.file_status(v.path, f) for f in files.get(v.model, ())]
        out.append({**v.as_dict(), "path": str(v.path), "usable": all(s.usable for s in states)
                    and (Path(target) / W.VGG_FILE).is_file(), "files": [s.as_dict() for s in states]})
    return out
