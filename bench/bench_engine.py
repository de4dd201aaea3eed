"""Engine vs the literal oracle (tests/oracle.py) on CPU: 256², 512², 1024² content with a 512² style.

Measures, in one run and one process, the wall time of
  oracle        : the literal reference pipeline (explicit score matrix, encodes the style every time)
  engine fresh  : Stylizer.stylize with a style it has never seen (style encoder runs)
  engine cached : Stylizer.stylize with the style given as StyleFeatures (style encoder skipped)
and prints a markdown table with the ratios. Targets on a 2-core CPU: fresh ≤ 0.5×, cached ≤ 0.3× the oracle
at 512². Usage:  python bench/bench_engine.py [--weights DIR] [--sizes 256,512,1024] [--repeat 1]
Without --weights it generates synthetic checkpoints (same layout and cost as the real ones).
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from oracle import Oracle  # noqa: E402
from sanet import Stylizer  # noqa: E402
from sanet.checkpoints import load_checkpoints  # noqa: E402


def smooth(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights")
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--style-size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    weights = args.weights
    if not weights:
        from synthetic import make_synthetic_weights
        weights = make_synthetic_weights(Path(tempfile.mkdtemp()) / "w")
    oracle = Oracle(load_checkpoints(weights))
    st = Stylizer(weights, device="cpu")
    style_t = smooth(args.style_size, args.style_size, 1)
    style = style_t[0].permute(1, 2, 0).numpy()

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"| content | style | oracle s | engine fresh s | engine cached s | fresh/oracle | cached/oracle |")
    print(f"|---|---|---|---|---|---|---|")
    for size in [int(s) for s in args.sizes.split(",")]:
        content_t = smooth(size, size, size)
        content = content_t[0].permute(1, 2, 0).numpy()
        torch.set_flush_denormal(False)  # the plain reference as people run it (the engine turns this on itself)
        with torch.no_grad():
            t_oracle = best_of(lambda: oracle.stylize(content_t, style_t), args.repeat)

        def fresh():
            st.clear_cache()
            st.stylize(content, [style])
        t_fresh = best_of(fresh, args.repeat)
        feats = st.encode_style(style)
        t_cached = best_of(lambda: st.stylize(content, [feats]), args.repeat)
        print(f"| {size}² | {args.style_size}² | {t_oracle:.2f} | {t_fresh:.2f} | {t_cached:.2f} | "
              f"{t_fresh / t_oracle:.3f} | {t_cached / t_oracle:.3f} |", flush=True)


if __name__ == "__main__":
    main()
