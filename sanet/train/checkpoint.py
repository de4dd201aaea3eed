"""A training run's folder: checkpoints in the public layouts, the training state, the run settings; atomic writes.

RUN_DIR/
    run.json                        settings of the run (format sanet-train-run/1): what --resume continues
    data.json                       the image lists the run samples from (relative to their folders, in order)
    decoder_iter_N.pth, transformer_iter_N.pth                      SANet, as the circulated reproduction names them
    N_net_transformer.pth, N_net_decoder.pth, N_net_adaattn_3.pth   AdaAttN, as its release names them,
    latest_net_*.pth                                                and the latest ones (hard links when possible)
    training_state.pt               iteration, optimizer (+ fp16 scaler), RNG states of the LATEST complete checkpoint
    log.jsonl                       one line per iteration: its losses and learning rate
    previews/preview_iter_N.png     content | style | result of fixed validation pairs
    losses.png                      `sanet train --report RUN_DIR`

Every file is written to a temporary name in RUN_DIR, fsynced, then renamed over its final name, so a crash or a full
disk never leaves a half-written checkpoint under a final name. A checkpoint's network files are written first and
training_state.pt last: the state always names an iteration whose files are complete. When a save fails, the files
it had already written for that iteration are removed and every earlier checkpoint stays as it was.
"""
from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from pathlib import Path

from ..weights import fsync_dir

RUN_FILE = "run.json"
DATA_FILE = "data.json"
STATE_FILE = "training_state.pt"
LOG_FILE = "log.jsonl"
PREVIEW_DIR = "previews"
REPORT_FILE = "losses.png"
RUN_FORMAT = "sanet-train-run/1"
STATE_FORMAT = "sanet-train-state/1"
_TMP_PREFIX = ".sanet-train-"


class SaveFailed(Exception):
    """A write into the run folder failed (full disk, permissions); str() is the user's one line."""


# --------------------------------------------------------------------------------------------- names

def checkpoint_names(model: str, iteration: int) -> dict[str, str]:
    """role → file name of the checkpoint of `iteration` in the model's public layout."""
    if model == "sanet":
        return {"decoder": f"decoder_iter_{iteration}.pth", "transformer": f"transformer_iter_{iteration}.pth"}
    if model == "adaattn":
        return {role: f"{iteration}_net_{role}.pth" for role in ("transformer", "decoder", "adaattn_3")}
    raise ValueError(f"no checkpoint layout for model {model!r}")


def latest_names(model: str) -> dict[str, str]:
    """AdaAttN's latest_net_*.pth (the names its release loads); nothing for SANet."""
    if model == "adaattn":
        return {role: f"latest_net_{role}.pth" for role in ("transformer", "decoder", "adaattn_3")}
    return {}


_PATTERNS = {"sanet": re.compile(r"^(decoder|transformer)_iter_(\d+)\.pth$"),
             "adaattn": re.compile(r"^(\d+)_net_(transformer|decoder|adaattn_3)\.pth$")}


def iterations_on_disk(run_dir: Path, model: str) -> list[int]:
    """Iterations with a complete set of network files in run_dir, ascending."""
    seen: dict[int, set[str]] = {}
    pat = _PATTERNS[model]
    for p in Path(run_dir).iterdir():
        m = pat.match(p.name)
        if m:
            it, role = (int(m.group(2)), m.group(1)) if model == "sanet" else (int(m.group(1)), m.group(2))
            seen.setdefault(it, set()).add(role)
    need = set(checkpoint_names(model, 0))
    return sorted(it for it, roles in seen.items() if roles >= need)


# --------------------------------------------------------------------------------------------- writing

def describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    return exc.strerror or str(exc)


def atomic_write(path: Path, write) -> None:
    """write(file object) into a temporary file next to `path`, fsync, rename over `path`. On any failure the
    temporary file is removed and `path` is untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def save_torch(obj, path: Path) -> None:
    """torch.save through atomic_write. Serialised in memory first: torch's own writer turns a failed write (a full
    disk) into a RuntimeError about stream positions; a plain file write raises the OSError (ENOSPC) that it is."""
    import io
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    view = buf.getbuffer()
    try:
        atomic_write(path, lambda f: f.write(view))
    finally:
        view.release()


def save_json(obj, path: Path) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=1) + "\n").encode("utf-8")))


def link_or_copy(src: Path, dest: Path) -> None:
    """dest becomes the same bytes as src, atomically: a hard link renamed into place, else a copy."""
    tmp = dest.with_name(f"{_TMP_PREFIX}{dest.name}.link.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(src, tmp)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except OSError:
        tmp.unlink(missing_ok=True)
        data = Path(src).read_bytes()
        atomic_write(dest, lambda f: f.write(data))


def remove_stale_temporaries(run_dir: Path) -> int:
    """Temporary files a killed run left behind (never under a final name): removed; how many."""
    n = 0
    for p in Path(run_dir).glob(_TMP_PREFIX + "*"):
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n


def cpu_state(module) -> dict:
    """A module's state_dict as fp32 CPU tensors, cloned (what goes into a public checkpoint file)."""
    return {k: v.detach().to("cpu", copy=True).float().contiguous() for k, v in module.state_dict().items()}


def save_checkpoint(run_dir: Path, model: str, iteration: int, nets: dict, state: dict,
                    previous: int | None) -> list[str]:
    """Write the public-layout files of `iteration`, then the training state. On failure: SaveFailed with one line,
    this iteration's files removed, earlier ones intact. Returns the names written."""
    run_dir = Path(run_dir)
    names = checkpoint_names(model, iteration)
    written: list[Path] = []
    current = None
    try:
        for role, name in names.items():
            current = name
            save_torch(cpu_state(nets[role]), run_dir / name)
            written.append(run_dir / name)
        for role, name in latest_names(model).items():
            current = name
            link_or_copy(run_dir / names[role], run_dir / name)
        current = STATE_FILE
        save_torch(state, run_dir / STATE_FILE)
    except OSError as exc:
        for p in written:
            p.unlink(missing_ok=True)
        if previous:
            kept = ", ".join(checkpoint_names(model, previous).values())
            intact = f"the checkpoint of iteration {previous} ({kept}) is intact"
            if latest_names(model):   # latest_net_* may point at the failed iteration's files: point them back
                try:
                    for role, name in latest_names(model).items():
                        link_or_copy(run_dir / checkpoint_names(model, previous)[role], run_dir / name)
                except OSError:
                    intact += f" (latest_net_*.pth may be incomplete: use {previous}_net_*.pth)"
        else:
            intact = "no earlier checkpoint was written"
        raise SaveFailed(f"{run_dir}: {describe_os_error(exc)} while writing {current} (iteration {iteration}); "
                         f"{intact}; free some space and continue with `sanet train --resume --out {run_dir}`"
                         ) from None
    return list(names.values())


def load_state(run_dir: Path) -> dict:
    import torch
    path = Path(run_dir) / STATE_FILE
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: not a training state of this program ({STATE_FORMAT})")
    return state


def read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
