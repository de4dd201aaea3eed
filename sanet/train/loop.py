"""The training loop: settings → a run folder of public-layout checkpoints, resumable bit for bit.

    settings = Settings(model="sanet", content="coco/", style="wikiart/", out="runs/a", vgg=".../vgg_normalised.pth")
    train(settings)                      # or train(settings, resume=True) to continue runs/a where it stopped

One iteration (the released training's, on the inference definitions: sanet.models + sanet.models.losses):
    batch i = data.Batches[i]        (a pure function of the seed and i: the same after a resume)
    lr_i    = lr · recipes.lr_factor(i)
    terms   = losses.OBJECTIVES[model](model, nets, vgg stages, content, style)   under autocast (--precision)
    loss    = Σ weight_k · term_k ;  backward ;  Adam step on the trainable roles (the VGG is frozen)
Every --save-every iterations: the public files + training_state.pt (sanet.train.checkpoint); every --preview-every:
previews/preview_iter_N.png. The log gets one JSON line per iteration.

Exactness of --resume: model weights come back from the public fp32 files, Adam's moments and step counts from the
state, the learning rate is a function of the iteration, the data a function of (seed, iteration), the AdaAttN key
subsampling uses a local generator; Python/numpy/torch RNG states are restored too. On the same device, thread count
and precision a resumed run reproduces the uninterrupted one bit for bit (tests/train/test_resume.py).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import variants
from ..errors import InputError, SanetError, WeightsError
from . import checkpoint as ck
from . import data as D
from . import recipes as R
from .progress import Bar, duration

PRECISIONS = ("fp32", "bf16", "fp16")
MIN_CROP = 32
STRICT_ON_RESUME = ("model", "batch", "lr", "size", "crop", "flip", "seed", "weights", "freeze", "init")


class TrainingError(SanetError):
    """Training cannot go on (diverged, full disk, a run that cannot be resumed); str() is the user's line."""


@dataclass
class Settings:
    model: str
    content: str
    style: str
    out: str
    vgg: str | None = None            # path of vgg_normalised.pth (None: the weights folder's)
    weights_dir: str | None = None    # for the default VGG (None: $SANET_WEIGHTS / user data dir)
    init: str | None = None           # a weights folder whose model files start the run (fine-tuning)
    iterations: int | None = None     # None: the recipe's
    batch: int | None = None
    lr: float | None = None
    size: int | None = None
    crop: int | None = None
    flip: bool | None = None
    seed: int = 0
    loss_weights: dict[str, float] = field(default_factory=dict)   # overrides of the recipe's
    freeze: tuple[str, ...] = ()      # trainable roles kept as they are (e.g. adapt only the decoder)
    save_every: int = 1000
    preview_every: int = 500
    preview_pairs: int = 4
    workers: int | None = None        # None: min(4, cores − 1)
    device: str = "auto"
    precision: str = "fp32"
    name: str | None = None           # the variant name `sanet weights install RUN_DIR` gives it (default: folder)


# --------------------------------------------------------------------------------------------- settings

def _positive(value, what: str, kind=int):
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0 \
            or (kind is int and int(value) != value):
        raise InputError(f"{what} {value!r}: expected a positive {'integer' if kind is int else 'number'}")
    return kind(value)


def resolve(s: Settings) -> dict:
    """The run's complete settings (recipe defaults filled in, values checked), as stored in run.json."""
    if s.model not in R.RECIPES:
        raise InputError(f"--model {s.model!r}: expected one of {', '.join(R.RECIPES)}")
    rec = R.RECIPES[s.model]
    batch = _positive(s.batch, "--batch") or rec.batch
    lr = _positive(s.lr, "--lr", float) or rec.lr
    size = _positive(s.size, "--size") or rec.size
    crop = _positive(s.crop, "--crop") or rec.crop
    if crop % 16 or crop < MIN_CROP:
        raise InputError(f"--crop {crop}: expected a multiple of 16, at least {MIN_CROP} (relu5_1 must be half of "
                         f"relu4_1, as in both models' merge)")
    if crop > size:
        raise InputError(f"--crop {crop} is larger than --size {size}: images are resized to size×size, then cropped")
    _positive(s.iterations, "--iterations")
    for what, v in (("--save-every", s.save_every), ("--preview-every", s.preview_every),
                    ("--preview-pairs", s.preview_pairs)):
        if not isinstance(v, int) or v < 0:
            raise InputError(f"{what} {v!r}: expected an integer ≥ 0 (0: never)")
    if s.workers is not None and (not isinstance(s.workers, int) or s.workers < 0):
        raise InputError(f"--workers {s.workers!r}: expected an integer ≥ 0")
    if s.precision not in PRECISIONS:
        raise InputError(f"--precision {s.precision!r}: expected one of {', '.join(PRECISIONS)}")
    weights = dict(rec.weights)
    for term, w in s.loss_weights.items():
        if term not in weights:
            raise InputError(f"loss {term!r} is not one of {s.model}'s ({', '.join(weights)})")
        if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise InputError(f"{rec.weight_flags[term]} {w!r}: expected a number ≥ 0")
        weights[term] = float(w)
    if not any(weights.values()):
        raise InputError("every loss weight is 0: nothing to train")
    for role in s.freeze:
        if role not in rec.roles:
            raise InputError(f"--freeze {role!r}: expected one of {s.model}'s networks ({', '.join(rec.roles)})")
    if set(s.freeze) >= set(rec.roles):
        raise InputError("--freeze names every network: nothing to train")
    if not isinstance(s.seed, int) or isinstance(s.seed, bool) or s.seed < 0:
        raise InputError(f"--seed {s.seed!r}: expected an integer ≥ 0")
    out = Path(s.out).expanduser()
    name = s.name or variants.slug(out.resolve().name)
    problem = variants.name_problem(name)
    if problem:
        raise InputError(f"--name {name!r}: {problem} (the result is selected as {s.model}{variants.SEPARATOR}NAME)")
    return {
        "format": ck.RUN_FORMAT, "model": s.model, "name": name,
        "content": _abs(s.content), "style": _abs(s.style),
        "vgg": None, "vgg_sha256": None, "init": str(Path(s.init).expanduser().resolve()) if s.init else None,
        "iterations": s.iterations, "batch": batch, "lr": lr, "size": size, "crop": crop,
        "flip": rec.flip if s.flip is None else bool(s.flip), "seed": s.seed, "weights": weights,
        "schedule": rec.schedule, "freeze": sorted(set(s.freeze)), "precision": s.precision,
        "save_every": s.save_every, "preview_every": s.preview_every, "preview_pairs": s.preview_pairs,
    }


def _abs(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- networks

def load_vgg(path: Path):
    """The frozen VGG encoder stages from vgg_normalised.pth; a wrong file is one WeightsError naming it."""
    from .. import vgg
    from ..checkpoints import expected_layout, read_state_dict, validate_state_dict
    state = read_state_dict(path)
    validate_state_dict(vgg.VGG_FILE, state, path)
    keep = expected_layout()[vgg.VGG_FILE]
    encoder = vgg.build_encoder()
    encoder.load_state_dict({k: v for k, v in state.items() if k in keep})
    encoder.eval().requires_grad_(False)
    return vgg.slices(encoder)


def load_role_files(model, nets: dict, files: dict[str, Path]) -> None:
    """Load each role's state from `files` (role → path), checked against the model's public layout."""
    from ..checkpoints import read_state_dict, validate_state_dict
    for role, path in files.items():
        state = read_state_dict(path)
        validate_state_dict(model.files[role], state, path)
        nets[role].load_state_dict(state)


def init_files(model, folder: Path) -> dict[str, Path]:
    """role → file of an installed weights folder (--init); missing ones: one WeightsError naming them all."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"--init {folder}: no such folder (expected a weights folder holding "
                           f"{', '.join(model.files.values())})")
    files = {role: folder / name for role, name in model.files.items()}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise WeightsError(f"--init {folder}: missing {', '.join(missing)} ({model.title.split(' ')[0]} needs "
                           f"{', '.join(model.files.values())})")
    return files


def _rng_state() -> dict:
    import torch
    np_state = np.random.get_state()
    out = {"python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
           "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                     "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
           "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_state(st: dict) -> None:
    import torch
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = st["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available() and len(st["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(st["cuda"])


# --------------------------------------------------------------------------------------------- one step

class Step:
    """One optimisation step: Σ weight·term of the model's objective (sanet.models.losses) under autocast, backward
    (through the fp16 loss scaler when enabled), Adam. The loop and bench/bench_train.py both run this."""

    def __init__(self, model, nets: dict, stages, opt, scaler, weights: dict[str, float], device, amp_dtype):
        from ..models import losses as L
        self.model, self.nets, self.stages, self.opt, self.scaler = model, nets, stages, opt, scaler
        self.weights = {k: w for k, w in weights.items() if w}
        self.device, self.amp_dtype = device, amp_dtype
        self.objective = L.OBJECTIVES[model.name]
        self.skipped = False          # fp16: the latest step was skipped (gradients overflowed at the loss scale)

    def autocast(self):
        import torch
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def __call__(self, content, style, lr: float) -> dict[str, float]:
        """{"loss": the weighted total, term: value, ...} as floats; nothing is updated when the loss is not finite."""
        for g in self.opt.param_groups:
            g["lr"] = lr
        c = content.to(self.device, non_blocking=True)
        s = style.to(self.device, non_blocking=True)
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            parts, _ = self.objective(self.model, self.nets, self.stages, c, s, tuple(self.weights))
        loss = sum(self.weights[k] * parts[k] for k in self.weights)
        out = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()}}
        self.skipped = False
        if math.isfinite(out["loss"]):
            scale = self.scaler.get_scale() if self.scaler.is_enabled() else None
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            self.skipped = scale is not None and self.scaler.get_scale() < scale   # the scaler backs off on inf/nan
        return out


# --------------------------------------------------------------------------------------------- the run

class _Interrupt:
    """Ctrl+C: finish the current iteration, save a checkpoint, stop (a second Ctrl+C stops at once)."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:   # not the main thread
            self.previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _device_and_precision(device: str, precision: str):
    import torch
    from ..devices import resolve_device
    dev = resolve_device(device)
    if precision == "bf16" and dev.type == "mps":
        raise InputError("--precision bf16 is not supported on mps: use fp16 or fp32")
    if precision == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("--precision bf16: this GPU has no bf16 support: use fp16 or fp32")
    return dev, {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _workers(n: int | None) -> int:
    if n is not None:
        return n
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores - 1))


def _check_resume(stored: dict, given: dict, explicit: set[str], say) -> dict:
    """The stored settings, with what may change on a resume taken from the command line."""
    for key in STRICT_ON_RESUME:
        if key in explicit and given[key] != stored[key]:
            raise TrainingError(f"--resume: this run was started with {key} = {stored[key]!r}, not {given[key]!r}; "
                                f"a resumed run continues as it was started (drop the option, or start a new run "
                                f"in another --out folder)")
    run = dict(stored)
    for key in ("iterations", "save_every", "preview_every", "precision"):
        if key in explicit and given[key] != stored[key]:
            if key == "iterations" and stored["schedule"] == "fifths":
                say(f"note: the learning-rate schedule of {stored['model']} is in fifths of --iterations: "
                    f"continuing with {given[key]} instead of {stored[key]} changes it from here on")
            if key == "precision":
                say(f"note: the run was started in {stored[key]}; continuing in {given[key]} is not bit-exact")
            run[key] = given[key]
    return run


def train(s: Settings, resume: bool = False, explicit: set[str] | None = None, say=_say) -> dict:
    """Run (or resume) a training; returns a summary dict. Errors: SanetError subclasses with one line."""
    from ..weights import resolve_weights_dir

    explicit = set(explicit or ())
    given = resolve(s)
    out = Path(s.out).expanduser()
    run_file = out / ck.RUN_FILE
    if resume:
        if not run_file.is_file():
            raise TrainingError(f"--resume: {out} is not a training run (no {ck.RUN_FILE}); start one with "
                                f"`sanet train ... --out {out}`")
        try:
            stored = ck.read_json(run_file)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{run_file}: cannot be read ({exc})") from None
        if stored.get("format") != ck.RUN_FORMAT:
            raise TrainingError(f"{run_file}: not a run of this program (format {stored.get('format')!r})")
        if "content" in explicit and given["content"] != stored["content"] or \
                "style" in explicit and given["style"] != stored["style"]:
            raise TrainingError(f"--resume: this run samples from {stored['content']} and {stored['style']}; "
                                f"a resumed run keeps its data (start a new run for other folders)")
        run = _check_resume(stored, given, explicit, say)
    else:
        if run_file.exists():
            raise TrainingError(f"{out} already holds a training run: continue it with `sanet train --resume "
                                f"--out {out}`, or choose another --out")
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out}: exists and is not a folder")
        run = given
    recipe = R.RECIPES[run["model"]]

    # ---- data (the lists are the run's: a resumed run samples exactly the same files)
    data_file = out / ck.DATA_FILE
    if resume and data_file.is_file():
        lists = ck.read_json(data_file)
        content, style = D.ImageList.from_dict(lists["content"]), D.ImageList.from_dict(lists["style"])
        for lst, what in ((content, "content"), (style, "style")):
            if not lst.root.is_dir():
                raise TrainingError(f"--resume: the {what} folder {lst.root} of this run is gone")
    else:
        content = D.scan_folder(s.content if not resume else run["content"], "--content", say_warn(say))
        style = D.scan_folder(s.style if not resume else run["style"], "--style", say_warn(say))
    for lst, what in ((content, "content"), (style, "style")):
        say(f"{what}: {len(lst.files)} image(s) in {lst.root}"
            + (f" ({lst.skipped} unreadable, skipped)" if lst.skipped else ""))

    # ---- the VGG (frozen) and the device
    if resume:   # the run's file, or --vgg if it moved (checked below to be the same file)
        vgg_path = Path(s.vgg).expanduser() if s.vgg else Path(run["vgg"])
    else:
        vgg_path = Path(s.vgg).expanduser() if s.vgg else resolve_weights_dir(s.weights_dir) / "vgg_normalised.pth"
        if not vgg_path.is_file() and s.init and not s.vgg:
            vgg_path = Path(s.init).expanduser() / "vgg_normalised.pth"
    if not vgg_path.is_file():
        raise WeightsError(f"{vgg_path}: VGG encoder file is missing (give --vgg PATH to vgg_normalised.pth, or "
                           f"install the weights with `sanet weights install`)")
    import torch   # from here on (settings, data folders and the VGG's presence are checked without it)
    from ..models import get_model
    from ..models import losses as L
    model = get_model(run["model"])
    dev, amp_dtype = _device_and_precision(s.device, run["precision"])
    stages = [st.to(dev) for st in load_vgg(vgg_path)]
    vgg_sha = sha256_of(vgg_path)
    if resume and run.get("vgg_sha256") and vgg_sha != run["vgg_sha256"]:
        raise TrainingError(f"--resume: {vgg_path} changed since the run started (sha256 {vgg_sha[:12]}…, was "
                            f"{run['vgg_sha256'][:12]}…); the losses would not continue the same")
    run["vgg"], run["vgg_sha256"] = str(vgg_path.resolve()), vgg_sha

    # ---- networks: seeded default initialisation, --init files, or the run's latest checkpoint
    torch.manual_seed(run["seed"])
    nets = model.build()
    start, state = 0, None
    if resume:
        if (out / ck.STATE_FILE).is_file():
            try:
                state = ck.load_state(out)
            except Exception as exc:  # noqa: BLE001
                raise TrainingError(f"{out / ck.STATE_FILE}: cannot be read ({str(exc).splitlines()[0]})") from None
            start = int(state["iteration"])
            names = ck.checkpoint_names(model.name, start)
            load_role_files(model, nets, {r: out / n for r, n in names.items()})
        elif run["init"]:
            load_role_files(model, nets, init_files(model, Path(run["init"])))
    elif run["init"]:
        load_role_files(model, nets, init_files(model, Path(run["init"])))
    trainable = [r for r in recipe.roles if r not in run["freeze"]]
    for role, module in nets.items():
        module.to(dev).train().requires_grad_(role in trainable)
    params = [p for r in trainable for p in nets[r].parameters()]
    opt = torch.optim.Adam(params, lr=run["lr"])
    scaler = torch.amp.GradScaler(dev.type, enabled=run["precision"] == "fp16")

    total = run["iterations"] or R.default_iterations(recipe, len(content.files), len(style.files), run["batch"])
    run["iterations"] = total
    if start >= total:
        raise TrainingError(f"--resume: {out} already reached iteration {start} of {total} (give a larger "
                            f"--iterations to go on)")

    # ---- the run folder
    try:
        out.mkdir(parents=True, exist_ok=True)
        if resume:
            stale = ck.remove_stale_temporaries(out)
            dropped = _truncate_log(out, start)
            say(f"resuming {out} at iteration {start} of {total}"
                + (f" ({dropped} logged iteration(s) after it are redone)" if dropped else "")
                + (f"; {stale} temporary file(s) of the interrupted run removed" if stale else ""))
        else:
            ck.save_json({**content_and_style(content, style)}, out / ck.DATA_FILE)
        ck.save_json({**run, "version": _version(), "created": run.get("created") or _now()}, run_file)
    except OSError as exc:
        raise TrainingError(f"{out}: cannot write the run folder: {ck.describe_os_error(exc)}") from None
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])

    batches = D.Batches(content, style, run["batch"], run["size"], run["crop"], run["flip"], run["seed"], total)
    workers = _workers(s.workers)
    preview = None
    if run["preview_every"] and run["preview_pairs"]:
        pc, ps = D.preview_pairs(content, style, run["preview_pairs"], run["size"], run["crop"], run["seed"])
        preview = (torch.from_numpy(pc), torch.from_numpy(ps))
    weights = {k: w for k, w in run["weights"].items() if w}
    say(f"training {model.title} on {dev} ({run['precision']}): iterations {start + 1}…{total}, batch "
        f"{run['batch']}, crop {run['crop']} of {run['size']}², lr {run['lr']:g}, "
        f"loss {' + '.join(f'{w:g}·{k}' for k, w in weights.items())}; networks trained: {', '.join(trainable)}"
        + (f" (frozen: {', '.join(run['freeze'])})" if run["freeze"] else "") + f"; {workers} loader worker(s)")

    step = Step(model, nets, stages, opt, scaler, weights, dev, amp_dtype)
    autocast = step.autocast

    def write_preview(iteration: int) -> None:
        if preview is None:
            return
        for m in nets.values():
            m.eval()
        with torch.no_grad(), autocast():
            res = L.stylize_images(model, nets, stages, preview[0].to(dev), preview[1].to(dev))
        for r in trainable:
            nets[r].train()
        from .report import grid_image, save_png
        (out / ck.PREVIEW_DIR).mkdir(exist_ok=True)
        save_png(out / ck.PREVIEW_DIR / f"preview_iter_{iteration}.png",
                 grid_image(preview[0].numpy(), preview[1].numpy(), res.float().cpu().numpy()))

    def save(iteration: int, previous: int | None) -> list[str]:
        st = {"format": ck.STATE_FORMAT, "iteration": iteration, "optimizer": opt.state_dict(),
              "scaler": scaler.state_dict() if scaler.is_enabled() else None, "rng": _rng_state(),
              "model": model.name}
        try:
            return ck.save_checkpoint(out, model.name, iteration, nets, st, previous)
        except ck.SaveFailed as exc:
            raise TrainingError(str(exc)) from None

    bar = Bar(start, total)
    last_saved = start or None
    log = None
    i = start
    losses: dict[str, float] = {}
    skipped = 0                      # fp16 steps the loss scaler skipped in this session
    torch.set_flush_denormal(True)   # the unscaled softmax underflows to denormals: ~100× slower arithmetic on x86
    try:
        with _Interrupt() as stop:
            if start == 0 and preview is not None:
                write_preview(0)
            log = open(out / ck.LOG_FILE, "a", encoding="utf-8")
            for batch in D.loader(batches, start, total, workers, pin=dev.type == "cuda"):
                lr = run["lr"] * R.lr_factor(recipe, i, total)
                losses = step(batch["content"], batch["style"], lr)
                value = losses["loss"]
                if not math.isfinite(value):
                    raise TrainingError(f"the loss became {value} at iteration {i + 1}"
                                        + (f"; the checkpoint of iteration {last_saved} is intact"
                                           if last_saved else "")
                                        + " (lower --lr, or train in fp32)")
                i += 1
                record = {"iteration": i, "lr": lr, **losses}
                if step.skipped:
                    skipped += 1
                    record["skipped"] = True
                    if skipped in (10, 100, 1000):
                        bar.say(f"fp16: {skipped} of {i - start} steps skipped so far (the gradients overflow at "
                                f"the loss scale, now {scaler.get_scale():g}); if this goes on, train in bf16 or "
                                f"fp32")
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.update(i, losses)
                at_end = i == total
                if (run["save_every"] and i % run["save_every"] == 0) or at_end or stop.requested:
                    log.flush()
                    os.fsync(log.fileno())
                    names = save(i, last_saved)
                    last_saved = i
                    bar.say(f"iteration {i}: saved {', '.join(names)}")
                if run["preview_every"] and (i % run["preview_every"] == 0 or at_end):
                    write_preview(i)
                if stop.requested and not at_end:
                    bar.close()
                    say(f"interrupted: stopped after iteration {i} (saved); continue with "
                        f"`sanet train --resume --out {out}`")
                    return {"iteration": i, "total": total, "interrupted": True, "run_dir": str(out)}
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else f"{out}: "
        kept = f"the checkpoint of iteration {last_saved} is intact" if last_saved else "no checkpoint was written yet"
        raise TrainingError(f"{where}{ck.describe_os_error(exc)} ({kept}; continue with "
                            f"`sanet train --resume --out {out}`)") from None
    finally:
        torch.set_flush_denormal(False)
        bar.close()
        if log is not None:
            try:
                log.close()
            except OSError:
                pass
    if skipped:
        say(f"fp16: {skipped} of {total - start} steps were skipped (gradient overflow; log.jsonl marks them)")
    say(f"done: {total} iterations in {duration(bar.elapsed())} ({out}); install the result as a model variant "
        f"with `sanet weights install {out}` and select it as the model {model.name}:{run['name']}")
    return {"iteration": total, "total": total, "interrupted": False, "run_dir": str(out), "losses": losses}


def say_warn(say):
    return lambda text: say(f"sanet: warning: {text}")


def content_and_style(content: D.ImageList, style: D.ImageList) -> dict:
    return {"content": content.as_dict(), "style": style.as_dict()}


def _truncate_log(out: Path, iteration: int) -> int:
    from .report import truncate_log
    return truncate_log(out, iteration)


def _version() -> str:
    from .. import __version__
    return __version__


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


__all__ = ["Settings", "Step", "train", "resolve", "TrainingError", "PRECISIONS"]
