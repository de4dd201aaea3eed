"""The `sanet` command: stylize images, manage weights, train models, run the demo. Bad input → one line on stderr, exit code 2.

Fast start: nothing at module level imports torch or numpy. `sanet --help`, `--version`, argument errors and
`sanet weights sources` never load torch, and `sanet stylize` checks the output path, reads every input and checks
every mask and label map against the content before the model is loaded.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sanet_client import imagefiles
from sanet_client import protocol as P
from sanet_client.argtypes import add_stylize_controls, check_stylize_args, run_cli

from . import __version__
from .errors import InputError, SanetError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors are bad input too: one line, exit 2
        self.exit(EXIT_BAD_INPUT, f"sanet: error: {message}\n")


class _Version(argparse.Action):
    """sanet's version, the installed torch's and the CPU's bf16 units — read without importing torch (fast)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from .cpuflags import summary, torch_version
        print(f"sanet {__version__} (torch {torch_version()})\ncpu: {summary()}")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--weights", metavar="DIR", help="weights folder (default: $SANET_WEIGHTS or the user data dir)")
    p = _Parser(prog="sanet", description="Arbitrary style transfer (SANet, CVPR 2019; AdaAttN, ICCV 2021; SCSA, "
                                          "CVPR 2025) on image files. Start with `sanet demo`.")
    p.add_argument("--version", action=_Version, nargs=0, help="show the version, torch's and what the CPU offers")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("stylize", parents=[common], help="stylize an image",
                       description="Stylize CONTENT with one or more styles. Output format follows the extension: "
                                   ".png (8/16-bit like the input), .tif/.tiff, .npy (raw float32 H×W×3, unclamped).")
    s.add_argument("content", metavar="CONTENT")
    s.add_argument("--style", action="append", required=True, metavar="S", help="style image (repeat for several)")
    add_stylize_controls(s)
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
    s.add_argument("--precision", default=P.DEFAULT_PRECISION, choices=list(P.PRECISIONS),
                   help="auto (default): fp32, except --preview in bf16 on CPUs with AVX-512-BF16 or AMX-BF16; "
                        "bf16: faster on such CPUs (and GPUs) at a small, tested quality cost; fp16: GPUs only")
    s.add_argument("--threads", type=int, default=None, metavar="N",
                   help="compute threads on the CPU (default: all physical cores)")
    s.add_argument("--memory-budget", type=float, default=None, metavar="GIB",
                   help="memory the engine may use; larger layers run in tiles (default: on CPU what keeps the process near "
                        "2 GiB, ~1.0 for 3840×2160; half the free GPU memory)")
    s.add_argument("--label-palette", metavar="#RRGGBB,...", help="colours of colour-coded label maps "
                   "(default: their distinct colours)")
    s.add_argument("--output", "-o", required=True, metavar="OUT")

    d = sub.add_parser("demo", parents=[common], help="stylize a generated example image (gets the weights first)",
                       description="Write an example content and style image into DIR, make sure the SANet weights "
                                   "are installed (trying the known sources; if none can be reached, say exactly "
                                   "which files to put where), then run `sanet stylize` on them.")
    d.add_argument("--out", metavar="DIR", default="sanet-demo", help="where the images go (default ./sanet-demo)")
    d.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
    d.add_argument("--no-download", action="store_true", help="do not try the known sources when weights are missing")

    from .weights_cli import add_weights_commands
    add_weights_commands(sub)
    from .train.command import add_train_command
    add_train_command(sub)
    for name, parser in sub.choices.items():  # every subcommand understands --weights DIR
        if not any("--weights" in a.option_strings for a in parser._actions):
            parser.add_argument("--weights", metavar="DIR", help="weights folder")
    return p


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


_bar_open = [False]  # a progress line is on stderr without its newline yet


def _progress_printer():
    last = [-1]

    def show(fraction: float, stage: str) -> None:
        pct = int(fraction * 100)
        if pct != last[0]:
            last[0] = pct
            print(f"\r{pct:3d}% {stage:<16}", end="", file=sys.stderr, flush=True)
            _bar_open[0] = True
    return show


def run_stylize(args) -> int:
    kind = imagefiles.check_output_path(args.output, InputError)   # before anything is read or loaded
    check_stylize_args(args, InputError)
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads {args.threads}: expected 1 or more (leave it out for all physical cores)")
    from .images import load_image, save_image
    out_path = Path(args.output)
    n = len(args.style)
    t0 = time.perf_counter()
    content = load_image(args.content)
    styles_img = [load_image(p) for p in args.style]
    regions = [load_image(p) for p in args.region] if args.region else [None] * n
    selection = load_image(args.selection) if args.selection else None
    content_labels = load_image(args.content_labels) if args.content_labels else None
    style_labels = ([None if p.lower() == "none" else load_image(p) for p in args.style_labels]
                    if args.style_labels else [None] * n)
    imagefiles.check_input_sizes(content, styles_img, regions, selection, content_labels, style_labels, InputError)
    weights = args.style_weights or [1.0] * n
    t1 = time.perf_counter()

    from .runtime import Style, Stylizer   # torch from here on
    if args.threads is not None:
        import torch
        torch.set_num_threads(args.threads)
    budget = None if args.memory_budget is None else int(args.memory_budget * 2**30)
    model = args.model or P.DEFAULT_MODEL
    st = Stylizer(args.weights, device=args.device, precision=args.precision, memory_budget=budget, model=model)
    t2 = time.perf_counter()
    _log(f"loaded {content.shape[1]}×{content.shape[0]} content, {n} style(s) in {t1 - t0:.2f}s; "
         f"{P.model_display(model)} on {st.device} ({st.precision}) in {t2 - t1:.2f}s")
    styles = [Style(img, w, r, labels=lab) for img, w, r, lab in zip(styles_img, weights, regions, style_labels)]
    show = _progress_printer()
    kwargs = dict(alpha=args.alpha, preserve_color=args.preserve_color, selection=selection, preview=args.preview,
                  style_max_side=args.style_max_side or P.DEFAULT_STYLE_MAX_SIDE, progress=show,
                  content_labels=content_labels,
                  label_palette=args.label_palette.split(",") if args.label_palette else None,
                  style_keys=args.style_keys or P.DEFAULT_STYLE_KEYS)
    if args.scsa_weights is not None:
        kwargs["scsa_weights"] = tuple(args.scsa_weights)
    if kind == "npy":
        result = st.stylize_raw(content, styles, **kwargs)
    else:
        result = st.stylize(imagefiles.content_for_output(content, kind), styles, **kwargs)
    show(1.0, "done")   # every output kind ends at 100 %
    t3 = time.perf_counter()
    save_image(out_path, result)
    _bar_open[0] = False
    if st.last_plan is not None:
        _log(f"\rplan: {st.last_plan.describe()}, {st.last_info.get('precision', st.precision)}")
    _log(f"\rstylized in {t3 - t2:.2f}s, wrote {out_path} ({result.shape[1]}×{result.shape[0]}, {result.dtype}) "
         f"in {time.perf_counter() - t3:.2f}s")
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)   # a closed output pipe ends it quietly


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "stylize":
            return run_stylize(args)
        if args.command == "train":
            from .train.command import run_train_command
            return run_train_command(args)
        if args.command == "demo":
            from .demo import run_demo
            return run_demo(args, main)   # demo runs `sanet stylize` through this module's main
        from .weights_cli import run_weights_command
        return run_weights_command(args)
    except SanetError as exc:
        print(f"{chr(10) if _bar_open[0] else ''}sanet: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{chr(10) if _bar_open[0] else ''}sanet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
