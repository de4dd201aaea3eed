"""AdaAttN vs SANet on the same engine: wall and CPU time at 512² and 1024² content with a 512² style, with the
style fresh (encoded inside the timed call) and cached (given as StyleFeatures), in one process, side by side.

    python bench/bench_models.py [--weights DIR] [--sizes 512,1024] [--style-size 512] [--repeat 1] [--device cpu]
                                 [--models sanet,adaattn,adaattn:all]

`adaattn:all` is AdaAttN with every style key (style_keys="all", the quality option; a 512² style has 128² relu3_1
positions, of which the released code keeps 64²). Prints a markdown table; the ratio lines compare AdaAttN with SANet
(and full attention with the released sampling) in the same run (the fair figure on a shared
machine; CPU seconds are process time over all threads and vary less than wall time under load). Without --weights
synthetic checkpoints of both models are made (tests/synthetic.py: exact released layouts and cost).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def smooth(h: int, w: int, seed: int):
    import torch
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, max(1, h // 8), max(1, w // 8), generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[0].permute(
        1, 2, 0).numpy()


def timed(fn, repeat: int) -> tuple[float, float]:
    """Best (wall, CPU) seconds over `repeat` calls."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights")
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--style-size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="sanet,adaattn,adaattn:all")
    args = ap.parse_args()
    runs = [(m.split(":")[0], m.split(":")[1] if ":" in m else "sampled") for m in args.models.split(",")]
    weights = args.weights
    if not weights:
        from synthetic import make_synthetic_adaattn_weights, make_synthetic_weights
        w = make_synthetic_weights(Path(tempfile.mkdtemp()) / "w")
        weights = make_synthetic_adaattn_weights(w, w / "vgg_normalised.pth")

    import torch
    from sanet import Stylizer
    st = Stylizer(weights, device=args.device)
    style = smooth(args.style_size, args.style_size, 1)
    for model in dict(runs):                                 # warm-up: load, threads, allocator
        st.stylize(smooth(64, 64, 2), [smooth(64, 64, 3)], model=model)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}, device {args.device}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"style {args.style_size}², best of {args.repeat}; fresh = style encoded in the call, cached = StyleFeatures, content encoded")
    print("| content | style | model | fresh wall s | fresh CPU s | cached wall s | cached CPU s | plan |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for size in [int(s) for s in args.sizes.split(",")]:
        content = smooth(size, size, size)
        row = {}
        for model, keys in runs:
            def fresh():
                st.clear_cache()
                st.stylize(content, [style], model=model, style_keys=keys)
            f = timed(fresh, args.repeat)
            feats = st.encode_style(style, model=model, style_keys=keys)
            def cached():
                st.content_cache.clear()    # the style is cached; the content is encoded (no loop reuse)
                st.stylize(content, [feats], model=model, style_keys=keys)
            c = timed(cached, args.repeat)
            name = model if keys == "sampled" else f"{model}, all keys"
            row[name] = (f, c)
            print(f"| {size}² | {args.style_size}² | {name} | {f[0]:.2f} | {f[1]:.1f} | {c[0]:.2f} | {c[1]:.1f} | "
                  f"{st.last_plan.describe()} |", flush=True)
        for a, b in (("adaattn", "sanet"), ("adaattn, all keys", "adaattn")):
            if a in row and b in row:
                (fb, cb), (fa, ca) = row[b], row[a]
                ratios.append(f"{size}²: {a} / {b} fresh {fa[0] / fb[0]:.2f}× wall ({fa[1] / fb[1]:.2f}× CPU), "
                              f"cached {ca[0] / cb[0]:.2f}× wall ({ca[1] / cb[1]:.2f}× CPU)")
    print()
    for r in ratios:
        print(r)


if __name__ == "__main__":
    main()
