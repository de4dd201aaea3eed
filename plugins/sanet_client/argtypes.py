"""argparse value types shared by `sanet stylize` and `sanet-client stylize` (same options, same messages)."""
from __future__ import annotations

import argparse


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


def add_stylize_controls(s: argparse.ArgumentParser) -> None:
    """The engine controls `sanet stylize` and `sanet-client stylize` share (one definition, same names and help)."""
    s.add_argument("--style-weights", type=floats, metavar="W1,W2", help="one weight per style (default: equal)")
    s.add_argument("--region", action="append", metavar="M", help="one mask per style for spatial control")
    s.add_argument("--selection", metavar="SEL", help="stylize only inside this soft mask; outside stays as it is")
    s.add_argument("--alpha", type=unit_float, default=1.0, help="content–style trade-off in [0,1] (default 1)")
    s.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    s.add_argument("--preview", action="store_true", help="fast low-resolution run (long side ~512), upscaled")
    s.add_argument("--style-max-side", type=int, default=None, metavar="PX", help="resize larger styles (default 1024)")
    s.add_argument("--content-labels", metavar="L", help="SCSA semantic transfer: the content's label map (integer "
                   "labels, or a colour-coded image); needs --style-labels")
    s.add_argument("--style-labels", action="append", metavar="L", help="label map of each style, in --style order "
                   "(repeat; 'none' for a style without one: plain SANet for it)")
    s.add_argument("--scsa-weights", type=floats, default=None, metavar="T1,T2", help="SCSA: weights of semantic "
                   "continuous / sparse attention (default 0.7,0.3)")
