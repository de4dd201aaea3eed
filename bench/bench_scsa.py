"""SCSA (sanet/models/scsa.py) vs plain SANet: wall time and peak memory at 1024² with 2, 4 and 8 labels.

CPU seconds (process time, all threads) are reported next to wall time: on a shared machine they vary far less.
Each configuration runs in its own child process so that peak memory is its own: on CPU the peak resident set
(VmHWM, reset via /proc/self/clear_refs after a small warm-up run), on CUDA torch.cuda.max_memory_allocated.
Content labels are vertical bands of uneven widths, style labels horizontal bands, so every region pairs with a
differently shaped region. The style is encoded inside the timed call (as a fresh Stylizer.stylize would).
Usage:  python bench/bench_scsa.py [--weights DIR] [--size 1024] [--style-size 1024] [--labels 2,4,8]
                                   [--device cpu] [--repeat 1]
Without --weights it generates synthetic checkpoints (same layout and cost as the real ones).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def bands(h: int, w: int, k: int, vertical: bool):
    """k bands of uneven widths (ratios 1, 2, 1, 3, ...) covering the image: an integer label image."""
    import numpy as np
    ratios = np.array([1 + (i * 7) % 3 for i in range(k)], dtype=float)
    cuts = np.round(np.concatenate([[0], np.cumsum(ratios)]) / ratios.sum() * (w if vertical else h)).astype(int)
    lab = np.zeros((h, w), dtype=np.int64)
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        if vertical:
            lab[:, a:b] = i
        else:
            lab[a:b, :] = i
    return lab


def smooth(h: int, w: int, seed: int):
    import torch
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, max(1, h // 8), max(1, w // 8), generator=g)
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return x[0].permute(1, 2, 0).numpy()


def _reset_peak(device) -> int:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current RSS (Linux ≥ 4.0)
        f.write("5")
    return _status_kib("VmRSS") * 1024


def _peak(device) -> int:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    return _status_kib("VmHWM") * 1024


def _status_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(args) -> None:
    """One configuration (labels = 0: plain SANet); prints one JSON line."""
    import torch
    from sanet import Style, Stylizer
    st = Stylizer(args.weights, device=args.device)
    n, s = args.size, args.style_size
    content, style = smooth(n, n, 1), smooth(s, s, 2)

    def call(c, sty, k):
        st.clear_cache()            # every timed call encodes its style (and style map) afresh
        if k == 0:
            return st.stylize(c, [sty])
        h, w = c.shape[:2]
        return st.stylize(c, [Style(sty, labels=bands(*sty.shape[:2], k, vertical=False))],
                          content_labels=bands(h, w, k, vertical=True))

    call(smooth(128, 128, 3), smooth(128, 128, 4), args.child)   # warm-up: threads, allocator, kernels
    base = _reset_peak(st.device)
    times, cpu = [], []
    for _ in range(args.repeat):
        t, c0 = time.perf_counter(), time.process_time()
        call(content, style, args.child)
        if st.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c0)
    peak = _peak(st.device)
    print(json.dumps({"labels": args.child, "seconds": min(times), "cpu": min(cpu), "peak": peak, "base": base}),
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--style-size", type=int, default=1024)
    ap.add_argument("--labels", default="2,4,8")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        return child(args)
    if not args.weights:
        from synthetic import make_synthetic_weights
        args.weights = str(make_synthetic_weights(Path(tempfile.mkdtemp()) / "w"))

    import torch
    mib = 1024 ** 2
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}, device {args.device}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"content {args.size}², style {args.style_size}², best of {args.repeat}; peak = "
          f"{'max allocated' if args.device.startswith('cuda') else 'peak RSS (VmHWM)'} during the call")
    print("| labels | wall s | × plain | CPU s | × plain | peak MiB | above idle MiB |")
    print("|---|---|---|---|---|---|---|")
    plain = plain_cpu = None
    for k in [0] + [int(x) for x in args.labels.split(",")]:
        cmd = [sys.executable, __file__, "--weights", args.weights, "--size", str(args.size), "--style-size",
               str(args.style_size), "--device", args.device, "--repeat", str(args.repeat), "--child", str(k)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {k or 'plain'} | failed: {done.stderr.strip().splitlines()[-1:]} | | | | | |", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        plain, plain_cpu = plain or r["seconds"], plain_cpu or r["cpu"]
        print(f"| {k or 'plain SANet'} | {r['seconds']:.2f} | {r['seconds'] / plain:.2f} | {r['cpu']:.1f} | "
              f"{r['cpu'] / plain_cpu:.2f} | {r['peak'] / mib:.0f} | "
              f"{(r['peak'] - r['base']) / mib:.0f} |", flush=True)
    ns = (args.size // 8) ** 2 * (args.style_size // 8) ** 2
    print(f"(not built: the official relu4_1 label mask alone would be {ns / mib:.0f} Mi entries, "
          f"{ns * 4 / 1024 ** 3:.1f} GiB as float32 scores)")


if __name__ == "__main__":
    main()
