"""AdaAttN in fp32: how far from the exact released equations, and what computing the attention moments in fp64
costs and buys.

    python bench/bench_adaattn_precision.py [--weights DIR] [--configs 24] [--sizes 512,1024] [--repeat 2]
                                            [--explain] [--pairs I,J]

Accuracy: for `--configs` content/style pairs (sizes 32..272 px, smooth random images, the synthetic checkpoints'
peaked attention), the max deviation of the fp32 engine from the same engine in fp64 (its reference precision,
equal to the literal oracle within 1e-6 of the range: tests/engine/test_adaattn.py), relative to the output
range — once as the engine is (moments in fp32, about the values' mean in units of their spread), once with the
moments computed in fp64 (q, k and the values cast to float64 for the one attention call, then back), and, for
scale, the released forward pass itself run in fp32 (tests/oracle_adaattn.py, the literal form), and SANet's fp32
engine against its own fp64 run on the same images (the same measure for the other model). --explain adds the fp64
AdaAttN engine with only its VGG encoder run in fp32 (where the fp32 error comes from): once the engine's prepared
encoder (channels_last), once the released code's plain (contiguous) fp32 encoder. --pairs 13,17 runs only those
pairs (indices into the list); --sizes "" skips the timing.
Time: AdaAttN at the given content sizes with a 512² style, cached (StyleFeatures) and fresh, both ways, alternating
in one process (best of --repeat; CPU seconds are the fairer figure on a shared machine).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "engine"), str(ROOT / "bench")]


@contextlib.contextmanager
def fp32_encoder(stages32):
    """sanet.vgg.encode run by fp32 copies of the encoder stages (the features handed on in the caller's dtype)."""
    from sanet import vgg
    real = vgg.encode

    def encode(stages, x, levels):
        return {k: v.to(x.dtype) for k, v in real(stages32, x.float(), levels).items()}
    vgg.encode = encode
    try:
        yield
    finally:
        vgg.encode = real


@contextlib.contextmanager
def fp64_moments():
    """functional.attention_moments computed in float64 (the result cast back to the inputs' dtype)."""
    import sanet.functional as fn
    real = fn.attention_moments

    def moments(q, k, v, chunk=None):
        mean, std = real(q.double(), k.double(), v.double(), chunk)
        return mean.to(q.dtype), std.to(q.dtype)
    fn.attention_moments = moments
    try:
        yield
    finally:
        fn.attention_moments = real


def configs(n: int):
    """(content h, w), (style h, w), seed: the test suite's fidelity sizes first, then a spread of others."""
    import numpy as np
    fixed = [((64, 96), (80, 48)), ((128, 64), (64, 64)), ((32, 160), (96, 96)), ((64, 64), (272, 272)),
             ((48, 80), (64, 64)), ((64, 64), (48, 64)), ((208, 256), (128, 96)), ((256, 256), (256, 256))]
    rng = np.random.default_rng(7)
    out = [(c, s, 1 + i) for i, (c, s) in enumerate(fixed)]
    while len(out) < n:
        c = tuple(int(x) for x in rng.integers(2, 17, 2) * 16)
        s = tuple(int(x) for x in rng.integers(2, 18, 2) * 16)
        out.append((c, s, 100 + len(out)))
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights")
    ap.add_argument("--configs", type=int, default=24)
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--explain", action="store_true", help="add the fp64 engine with an fp32 encoder")
    ap.add_argument("--pairs", default="", help="only these content/style pairs (indices, e.g. 13,17)")
    args = ap.parse_args()
    import numpy as np
    import torch
    from bench_memory import weights_dir
    from bench_models import smooth, timed
    from engine_helpers import smooth_image
    from sanet import Stylizer
    from engine_helpers import to_tensor
    from oracle_adaattn import AdaAttnOracle
    from sanet.checkpoints import load_checkpoints
    weights = weights_dir(args.weights)
    released = AdaAttnOracle(load_checkpoints(weights, "adaattn"))
    ada32 = Stylizer(weights, device="cpu", model="adaattn")
    ada64 = Stylizer(weights, device="cpu", model="adaattn", precision="fp64")
    sanet32 = Stylizer(weights, device="cpu")
    sanet64 = Stylizer(weights, device="cpu", precision="fp64")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}, load average "
          f"{os.getloadavg()[0]:.1f}")
    print("\nMax deviation from the exact equations (fp64), relative to the output range:\n")
    print("| content | style | AdaAttN fp32 engine | fp32, moments in fp64 | released code in fp32 | SANet fp32 engine |"
          + (" fp64, engine's encoder in fp32 | fp64, contiguous encoder in fp32 |" if args.explain else "")
          + "\n|---|---|---|---|---|---|" + ("---|---|" if args.explain else ""))
    worst = [0.0] * (6 if args.explain else 4)
    pairs = list(enumerate(configs(args.configs)))
    if args.pairs:
        pairs = [pairs[int(i)] for i in args.pairs.split(",")]
    stages32 = ada32.networks()["encoder"]
    for _, ((ch, cw), (sh, sw), seed) in pairs:
        c, s = smooth_image(ch, cw, seed=seed), smooth_image(sh, sw, seed=seed + 1000)
        ref = ada64.stylize_raw(c, [s])
        span = float(ref.max() - ref.min())
        devs = []
        for variant in (contextlib.nullcontext, fp64_moments):
            ada32.clear_cache()
            with variant():
                devs.append(float(np.abs(ada32.stylize_raw(c, [s]) - ref).max()) / span)
        out = released.stylize(to_tensor(c), to_tensor(s))[0].permute(1, 2, 0).numpy()
        devs.append(float(np.abs(out - ref).max()) / span)
        sref = sanet64.stylize_raw(c, [s])
        devs.append(float(np.abs(sanet32.stylize_raw(c, [s]) - sref).max()) / float(sref.max() - sref.min()))
        if args.explain:
            ada64.clear_cache()
            for enc in (stages32, released.slices):
                with fp32_encoder(enc):
                    devs.append(float(np.abs(ada64.stylize_raw(c, [s]) - ref).max()) / span)
                ada64.clear_cache()
        worst = [max(w, d) for w, d in zip(worst, devs)]
        print(f"| {cw}×{ch} | {sw}×{sh} | " + " | ".join(f"{d:.1e}" for d in devs) + " |", flush=True)
    print("| **max** | | " + " | ".join(f"**{d:.1e}**" for d in worst) + " |")

    sizes = [int(x) for x in args.sizes.split(",") if x]
    if not sizes:
        return
    style = smooth(512, 512, 1)
    ada32.stylize(smooth(64, 64, 2), [smooth(64, 64, 3)])     # warm-up
    print("\n| content | moments | fresh wall s | fresh CPU s | cached wall s | cached CPU s |\n|---|---|---|---|---|---|")
    for size in sizes:
        content = smooth(size, size, size)
        row = {}
        for name, variant in (("fp32", contextlib.nullcontext), ("fp64", fp64_moments), ("fp32 ", contextlib.nullcontext),
                              ("fp64 ", fp64_moments)):
            with variant():
                def fresh():
                    ada32.clear_cache()
                    ada32.stylize(content, [style])
                f = timed(fresh, args.repeat)
                feats = ada32.encode_style(style)
                c = timed(lambda: ada32.stylize(content, [feats]), args.repeat)
            key = name.strip()
            old = row.get(key)
            row[key] = (f, c) if old is None else (min(old[0], f), min(old[1], c))
        for key in ("fp32", "fp64"):
            f, c = row[key]
            print(f"| {size}² | {key} | {f[0]:.2f} | {f[1]:.1f} | {c[0]:.2f} | {c[1]:.1f} |", flush=True)
        (f32, c32), (f64, c64) = row["fp32"], row["fp64"]
        print(f"| {size}² | fp64 / fp32 | {f64[0] / f32[0]:.2f}× | {f64[1] / f32[1]:.2f}× | {c64[0] / c32[0]:.2f}× | "
              f"{c64[1] / c32[1]:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
