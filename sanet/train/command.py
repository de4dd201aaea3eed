"""`sanet train`: argparse wiring (torch-free: the defaults shown come from recipes.py, torch loads when a run
starts). sanet.cli calls add_train_command(subparsers) and, for args.command == "train", run_train_command(args)."""
from __future__ import annotations

import argparse

from .recipes import RECIPES

_S, _A = RECIPES["sanet"], RECIPES["adaattn"]

DESCRIPTION = f"""\
Train SANet or AdaAttN on your own images, or fine-tune installed weights (--init), into RUN_DIR (--out).
Only the transformer and decoder train (AdaAttN: also adaattn_3); the VGG encoder is frozen. Checkpoints are
written in the public layouts (SANet decoder_iter_N.pth + transformer_iter_N.pth; AdaAttN N_net_*.pth and
latest_net_*.pth), with training_state.pt for --resume, log.jsonl (every loss of every iteration) and
previews/preview_iter_N.png (content | style | result of fixed pairs).

Defaults follow the released training code:
  sanet    Adam lr {_S.lr:g} decayed as lr/(1 + {_S.lr_decay:g}·i), batch {_S.batch}, {_S.iterations} iterations,
           loss {_S.weights['content']:g}·content + {_S.weights['style']:g}·style + {_S.weights['identity_pixel']:g}·identity(pixels) + {_S.weights['identity_feature']:g}·identity(features)
  adaattn  Adam lr {_A.lr:g}, batch {_A.batch}, 5 epochs of the data (2 at the full rate, then ×0.3 each; here in
           fifths of --iterations), loss {_A.weights['global']:g}·global + {_A.weights['local']:g}·local + {_A.weights['content']:g}·content, horizontal flips
  both     images resized to 512×512 (aspect not kept, as released), random 256×256 crops

Examples:
  sanet train --content coco/train2014 --style wikiart --out runs/sanet
  sanet train --model sanet --init ~/.local/share/sanet-style/weights --content coco/train2014 \\
      --style my-paintings --out runs/my-style --iterations 5000 --freeze transformer
  sanet train --resume --out runs/my-style          (after a crash, a kill or Ctrl+C: continues exactly)
  sanet train --report runs/my-style                 (loss curves → runs/my-style/losses.png)
  sanet weights install runs/my-style                (as the model variant sanet:my-style)
"""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def add_train_command(subparsers) -> argparse.ArgumentParser:
    t = subparsers.add_parser("train", help="train or fine-tune SANet / AdaAttN on your images",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--model", choices=list(RECIPES), default=None, help="the model to train (default sanet)")
    t.add_argument("--content", metavar="DIR", help="content images (searched recursively; e.g. MS-COCO train2014)")
    t.add_argument("--style", metavar="DIR", help="style images (searched recursively; e.g. WikiArt)")
    t.add_argument("--out", metavar="RUN_DIR", help="the run folder: checkpoints, state, log, previews")
    t.add_argument("--vgg", metavar="PATH", help="vgg_normalised.pth (default: the weights folder's, else --init's)")
    t.add_argument("--init", metavar="WEIGHTS_DIR", help="fine-tune: start from the model's files in this weights "
                   "folder (e.g. the installed weights) instead of a fresh initialisation")
    t.add_argument("--iterations", type=_int, metavar="N",
                   help=f"iterations (default: sanet {_S.iterations}; adaattn 5 epochs of the data)")
    t.add_argument("--batch", type=_int, metavar="B", help=f"pairs per iteration (default: sanet {_S.batch}, "
                   f"adaattn {_A.batch})")
    t.add_argument("--lr", type=_float, metavar="LR", help=f"Adam learning rate (default: sanet {_S.lr:g}, "
                   f"adaattn {_A.lr:g})")
    t.add_argument("--size", type=_int, metavar="PX", help=f"images are resized to PX×PX (default {_S.size})")
    t.add_argument("--crop", type=_int, metavar="PX", help=f"then randomly cropped to PX×PX, a multiple of 16 "
                   f"(default {_S.crop})")
    flip = t.add_mutually_exclusive_group()
    flip.add_argument("--flip", dest="flip", action="store_true", default=None,
                      help="random horizontal flips (default: adaattn yes, sanet no)")
    flip.add_argument("--no-flip", dest="flip", action="store_false", help="no flips")
    w = t.add_argument_group("loss weights")
    w.add_argument("--content-weight", type=_float, metavar="W",
                   help=f"content loss (default: sanet {_S.weights['content']:g}, adaattn {_A.weights['content']:g})")
    w.add_argument("--style-weight", type=_float, metavar="W", help=f"sanet: style loss (default "
                   f"{_S.weights['style']:g})")
    w.add_argument("--identity-pixel-weight", type=_float, metavar="W",
                   help=f"sanet: identity loss on pixels, |D(T(c,c)) − c|² + |D(T(s,s)) − s|² (default "
                        f"{_S.weights['identity_pixel']:g}, as the released code; the paper's text says 1)")
    w.add_argument("--identity-feature-weight", type=_float, metavar="W",
                   help=f"sanet: identity loss on VGG features relu1_1..relu5_1 (default "
                        f"{_S.weights['identity_feature']:g}, as the released code; the paper's text says 50)")
    w.add_argument("--global-weight", type=_float, metavar="W", help=f"adaattn: global style loss (mean/std at "
                   f"relu2_1..relu5_1; default {_A.weights['global']:g})")
    w.add_argument("--local-weight", type=_float, metavar="W", help=f"adaattn: local feature loss (default "
                   f"{_A.weights['local']:g})")
    t.add_argument("--freeze", action="append", metavar="NETWORK", choices=sorted({r for rec in RECIPES.values()
                                                                                   for r in rec.roles}),
                   help="keep this network as it is (repeat; e.g. --freeze transformer to adapt only the decoder)")
    t.add_argument("--device", default=None, help="auto, cuda, cpu, mps (default auto)")
    t.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=None,
                   help="fp32, or autocast in bf16 (GPUs, and CPUs with AVX-512 bf16 / AMX) or fp16 with loss "
                        "scaling (default fp32)")
    t.add_argument("--seed", type=_int, metavar="S", help="seed of the initialisation and of the data order (default 0)")
    t.add_argument("--save-every", type=_int, metavar="K", help="checkpoint every K iterations, and at the end "
                   "(default 1000)")
    t.add_argument("--preview-every", type=_int, metavar="K", help="preview grid every K iterations (default 500; "
                   "0: none)")
    t.add_argument("--preview-pairs", type=_int, metavar="K", help="pairs in the preview grid (default 4)")
    t.add_argument("--workers", type=_int, metavar="N", help="image loader processes (default min(4, cores − 1))")
    t.add_argument("--name", metavar="NAME", help="the variant name `sanet weights install RUN_DIR` installs the "
                   "result as (MODEL:NAME; default: the run folder's name)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    t.add_argument("--report", metavar="RUN_DIR", help="draw the loss curves of a run to RUN_DIR/losses.png "
                   "(needs matplotlib) and print a summary; nothing is trained")
    return t


_EXPLICIT = {"iterations": "iterations", "batch": "batch", "lr": "lr", "size": "size", "crop": "crop",
             "flip": "flip", "seed": "seed", "freeze": "freeze", "init": "init", "precision": "precision",
             "save_every": "save_every", "preview_every": "preview_every", "content": "content", "style": "style",
             "model": "model"}
_WEIGHT_FLAGS = {"content_weight": "content", "style_weight": "style", "identity_pixel_weight": "identity_pixel",
                 "identity_feature_weight": "identity_feature", "global_weight": "global", "local_weight": "local"}


def run_train_command(args) -> int:
    """Exit codes: 0 done, 2 bad input or a failure (one line), 130 interrupted (after saving)."""
    from ..errors import InputError
    if args.report:
        return _report(args.report)
    if not args.out:
        raise InputError("--out RUN_DIR is required (the run folder)")
    if not args.resume:
        missing = [f"--{k}" for k in ("content", "style") if not getattr(args, k)]
        if missing:
            raise InputError(f"{' and '.join(missing)} DIR {'are' if len(missing) > 1 else 'is'} required "
                             f"(or --resume to continue the run in --out)")
    model = args.model or "sanet"
    if args.resume and not args.model:
        model = _stored_model(args.out) or model
    recipe = RECIPES[model]
    weights = {}
    for flag, term in _WEIGHT_FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if term not in recipe.weights:
            raise InputError(f"--{flag.replace('_', '-')} is a {'sanet' if model == 'adaattn' else 'adaattn'} "
                             f"loss; {model}'s are {', '.join(recipe.weight_flags.values())}")
        weights[term] = value
    from .loop import Settings, train
    s = Settings(model=model, content=args.content, style=args.style, out=args.out, vgg=args.vgg,
                 weights_dir=getattr(args, "weights", None), init=args.init, iterations=args.iterations,
                 batch=args.batch, lr=args.lr, size=args.size, crop=args.crop, flip=args.flip,
                 seed=0 if args.seed is None else args.seed, loss_weights=weights, freeze=tuple(args.freeze or ()),
                 save_every=1000 if args.save_every is None else args.save_every,
                 preview_every=500 if args.preview_every is None else args.preview_every,
                 preview_pairs=4 if args.preview_pairs is None else args.preview_pairs,
                 workers=args.workers, device=args.device or "auto", precision=args.precision or "fp32",
                 name=args.name)
    explicit = {key for attr, key in _EXPLICIT.items() if getattr(args, attr) not in (None, False)}
    if weights:
        explicit.add("weights")
    result = train(s, resume=args.resume, explicit=explicit)
    return 130 if result.get("interrupted") else 0


def _stored_model(out: str) -> str | None:
    from pathlib import Path
    from .checkpoint import RUN_FILE, read_json
    try:
        return read_json(Path(out).expanduser() / RUN_FILE).get("model")
    except (OSError, ValueError):
        return None


def _report(run_dir: str) -> int:
    from .report import NoMatplotlib, draw_report
    try:
        path, text = draw_report(run_dir)
    except NoMatplotlib as exc:
        print(exc.summary)
        raise
    print(text)
    print(f"wrote {path}")
    return 0
