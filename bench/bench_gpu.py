"""Latency and peak device memory of Stylizer.stylize over sizes × precisions (GPU; CPU with small sizes).

    python bench/bench_gpu.py                                   # CUDA: 512², 2048², 3840×2160, 7680×4320 × fp32/fp16/bf16
                                                                #       × SANet and AdaAttN (--models)
    python bench/bench_gpu.py --device cpu --sizes 256x256,512x384 --precisions fp32 --repeat 1
Each cell: median wall time of --repeat runs after one warm-up (cuda synchronised), the style given as pre-encoded
StyleFeatures (a dialog re-runs with the same style; encoding it once is timed separately), the content an 8-bit
RGB numpy array (host→device and back included: what the daemon pays). Peak VRAM: torch.cuda.max_memory_allocated
over the timed runs (CPU: process peak RSS). The plan column says whether the planner tiled. Targets on an H100:
512² ≤ 5 ms; 3840×2160 ≤ 0.5 s with ≤ 8 GB peak VRAM. Prints JSON lines, then a markdown table.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from bench_memory import parse_size, smooth_u8, weights_dir  # noqa: E402

GIB = 1024 ** 3


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(st, content, feats, repeat: int) -> dict:
    dev = st.device
    st.stylize(content, [feats])                      # warm-up: kernels, cudnn autotune, allocator
    sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        st.stylize(content, [feats])
        sync(dev)
        times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated(dev) / GIB if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)
    return {"ms": round(statistics.median(times) * 1000, 2), "peak_gib": round(peak, 3),
            "plan": st.last_plan.describe()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--sizes", default="512x512,2048x2048,3840x2160,7680x4320")
    ap.add_argument("--precisions", default="fp32,fp16,bf16")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--style-size", type=int, default=512)
    ap.add_argument("--budget", type=float, help="memory budget in GiB (default: the engine's)")
    ap.add_argument("--weights")
    ap.add_argument("--models", default="sanet,adaattn", help="models to measure (weights of each needed)")
    args = ap.parse_args()
    from sanet import SanetError, Stylizer
    if args.device == "cpu":
        torch.set_flush_denormal(True)
    torch.backends.cudnn.benchmark = True
    wdir = weights_dir(args.weights)
    style = smooth_u8(args.style_size, args.style_size, 2)
    rows = []
    for model in args.models.split(","):
        for prec in args.precisions.split(","):
            try:
                st = Stylizer(wdir, device=args.device, precision=prec, model=model,
                              memory_budget=int(args.budget * GIB) if args.budget else None)
            except SanetError as exc:
                print(json.dumps({"model": model, "precision": prec, "skipped": str(exc)}))
                continue
            t = time.perf_counter()
            feats = st.encode_style(style)
            sync(st.device)
            enc_ms = (time.perf_counter() - t) * 1000
            for size in args.sizes.split(","):
                h, w = parse_size(size)
                content = smooth_u8(h, w, 1)
                try:
                    r = measure(st, content, feats, args.repeat)
                except SanetError as exc:   # e.g. out of memory even at the smallest tile: a result, not a crash
                    r = {"error": str(exc)}
                row = {"model": model,
                       "device": torch.cuda.get_device_name(st.device) if st.device.type == "cuda" else "cpu",
                       "precision": prec, "size": f"{w}x{h}", "style_encode_ms_first": round(enc_ms, 1), **r}
                print(json.dumps(row), flush=True)
                rows.append(row)
                del content
                if st.device.type == "cuda":
                    torch.cuda.empty_cache()
            st.unload()
    print("\n| model | device | precision | size | latency (ms) | peak (GiB) | plan |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['device']} | {r['precision']} | {r['size']} | {r.get('ms', '-')} | "
              f"{r.get('peak_gib', '-')} | {r.get('plan', r.get('error', ''))} |")


if __name__ == "__main__":
    main()
