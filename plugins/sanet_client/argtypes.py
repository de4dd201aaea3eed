"""argparse value types and checks shared by `sanet stylize` and `sanet-client stylize` (same options, same
messages), and what both CLIs do when their output pipe closes. Stdlib only."""
from __future__ import annotations

import argparse
import os
import sys

from . import protocol as P


def floats(text: str) -> list[float]:
    """'0.7,0.3' → [0.7, 0.3]"""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers") from None


def unit_float(text: str) -> float:
    """A number in [0, 1] (alpha)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{v} is out of range: expected a value in [0, 1]")
    return v


def model_value(text: str) -> str:
    """A --model value: a released model or a variant MODEL:NAME (sanet_client.protocol.model_problem)."""
    base, name = P.split_model(str(text).strip())
    value = base.lower() if name is None else f"{base.lower()}{P.VARIANT_SEPARATOR}{name}"
    problem = P.model_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def add_stylize_controls(s: argparse.ArgumentParser) -> None:
    """The engine controls `sanet stylize` and `sanet-client stylize` share (one definition, same names and help)."""
    names = ", ".join(f"{k} ({v})" for k, v in P.MODELS.items())
    s.add_argument("--model", type=model_value, default=None, metavar="MODEL",
                   help=f"the method: {names}; default {P.DEFAULT_MODEL}. A fine-tuned variant installed with "
                        f"`sanet weights install RUN_DIR` is MODEL{P.VARIANT_SEPARATOR}NAME (e.g. "
                        f"sanet{P.VARIANT_SEPARATOR}my-style; `sanet weights status` lists them)")
    s.add_argument("--style-keys", choices=list(P.STYLE_KEYS), default=None,
                   help=f"AdaAttN's style keys: 'sampled' (the released behaviour: a large style attends over a "
                        f"fixed random subset of its positions) or 'all' (full attention: a quality option, slower "
                        f"on large styles); default {P.DEFAULT_STYLE_KEYS}. SANet always uses every position")
    s.add_argument("--style-weights", type=floats, metavar="W1,W2", help="one weight per style (default: equal)")
    s.add_argument("--region", action="append", metavar="M", help="one mask per style for spatial control")
    s.add_argument("--selection", metavar="SEL", help="stylize only inside this soft mask; outside stays as it is")
    s.add_argument("--alpha", type=unit_float, default=1.0, help="content–style trade-off in [0,1] (default 1)")
    s.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    s.add_argument("--preview", action="store_true", help="fast low-resolution run (long side ~512), upscaled")
    s.add_argument("--style-max-side", type=int, default=None, metavar="PX",
                   help=f"resize larger styles (default {P.DEFAULT_STYLE_MAX_SIDE})")
    s.add_argument("--content-labels", metavar="L", help="SCSA semantic transfer: the content's label map (integer "
                   "labels, or a colour-coded image); needs --style-labels")
    s.add_argument("--style-labels", action="append", metavar="L", help="label map of each style, in --style order "
                   "(repeat; 'none' for a style without one: plain SANet for it)")
    s.add_argument("--scsa-weights", type=floats, default=None, metavar="T1,T2", help="SCSA: weights of semantic "
                   "continuous / sparse attention (default %g,%g)" % P.DEFAULT_SCSA_WEIGHTS)


def check_stylize_args(args, error) -> None:
    """The checks on counts and ranges both commands make before reading any file (raise ``error(message)``)."""
    n = len(args.style)
    if args.style_weights is not None and len(args.style_weights) != n:
        raise error(f"--style-weights has {len(args.style_weights)} value(s) for {n} style(s)")
    if args.style_weights is not None and any(not 0 <= w <= P.STYLE_WEIGHT_MAX for w in args.style_weights):
        raise error(f"--style-weights {','.join(f'{w:g}' for w in args.style_weights)}: each weight must lie in "
                    f"[0, {P.STYLE_WEIGHT_MAX:g}]")
    if args.style_labels is not None and len(args.style_labels) != n:
        raise error(f"--style-labels given {len(args.style_labels)} time(s) for {n} style(s): give one label "
                    f"map per style ('none' for a style without one)")
    if args.scsa_weights is not None and len(args.scsa_weights) != 2:
        raise error(f"--scsa-weights has {len(args.scsa_weights)} value(s): expected two (T1,T2)")
    if args.scsa_weights is not None and any(not 0 <= t <= P.SCSA_WEIGHT_MAX for t in args.scsa_weights):
        raise error(f"--scsa-weights: each of T1, T2 must lie in [0, {P.SCSA_WEIGHT_MAX:g}]")
    if args.region is not None and len(args.region) != n:
        raise error(f"--region given {len(args.region)} time(s) for {n} style(s): give one mask per style")
    if getattr(args, "memory_budget", None) is not None and not args.memory_budget > 0:
        raise error(f"--memory-budget {args.memory_budget}: expected a positive number of GiB")
    if args.style_max_side is not None and not P.STYLE_MAX_SIDE_MIN <= args.style_max_side <= P.STYLE_MAX_SIDE_MAX:
        raise error(f"--style-max-side {args.style_max_side}: expected {P.STYLE_MAX_SIDE_MIN}..{P.STYLE_MAX_SIDE_MAX}"
                    f" px")


def stdout_closed() -> int:
    """The reader of a CLI's output went away (`sanet train --report RUN | head`): stop quietly, as the Python docs
    advise (note on SIGPIPE): point stdout at devnull so that the interpreter's final flush cannot fail again.
    Returns the exit code (1)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 1


def run_cli(main, argv=None) -> int:
    """main(argv) → exit code, for a CLI whose output may go to a pipe whose reader goes away (`sanet train
    --report RUN | head`, `sanet-client hello | head`): a closed stdout ends it quietly (stdout_closed)."""
    try:
        code = main(argv)
        sys.stdout.flush()    # a closed pipe shows here, not in the interpreter's final flush
        return code
    except SystemExit:        # --help, --version: their output may meet a closed pipe too
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            stdout_closed()
        raise
    except BrokenPipeError:
        return stdout_closed()
