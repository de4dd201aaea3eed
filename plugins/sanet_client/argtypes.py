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
