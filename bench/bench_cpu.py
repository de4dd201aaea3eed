"""CPU table: fp32 vs bf16 vs compiled bf16 — wall time fresh and cached style, peak RSS, PSNR vs fp32.

    nice python bench/bench_cpu.py                                   # 512², 1920×1080, 3840×2160; SANet
    python bench/bench_cpu.py --sizes 512x512 --modes fp32,bf16,bf16-all,compiled-bf16 --model adaattn
    python bench/bench_cpu.py --json out.json                        # the rows as JSON too

Modes (each runs in its own child process, so its peak RSS — ru_maxrss — is its own):
    fp32           the exact path
    bf16           what `--precision bf16` (Quality: fast) runs on a CPU: the model's measured split (Model.cpu_bf16:
                   SANet's VGG up to relu4_1 in fp32, the rest bf16; AdaAttN's decoder in bf16)
    bf16-all       every part in bf16 (fastest; below the quality bar: for comparison only, not offered)
    compiled-bf16  bf16 with torch.compile (freezing) graphs, built before timing (build time reported apart)
Fresh: the style is encoded in the timed call (style cache cleared first); cached: the same style again. Wall and
CPU seconds (the process's, all threads: on a loaded machine the fairer comparison) are both reported.
512²: best of --repeat (3); larger sizes: one run each. Content is a smooth 8-bit RGB image, the style 512².
PSNR and mean/max |Δ| are on 8-bit output against the fp32 run of the same size (same process inputs).
The header prints the CPU (model, ISA, bf16 units), torch, threads. On a shared machine compare ratios of one run.
Weights: --weights DIR, else calibrated synthetic checkpoints (bench_memory.weights_dir, made once).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "plugins"), str(Path(__file__).resolve().parent)]

MODES = ("fp32", "bf16", "bf16-all", "compiled-bf16")
DEFAULT_SIZES = ("512x512", "1920x1080", "3840x2160")


def smooth_rgb(h: int, w: int, seed: int) -> np.ndarray:
    from bench_memory import smooth_u8
    return smooth_u8(h, w, seed).astype(np.float32) / 255.0


def child(args) -> None:
    """One (mode, size) in this process: times, peak RSS, the fp32-comparable output saved as .npy."""
    import torch
    from sanet import Stylizer, Style
    from sanet.models import MODELS
    from sanet.models.base import LowPrecision
    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    content, style = smooth_rgb(h, w, 1), smooth_rgb(512, 512, 2)
    if args.mode == "bf16-all":
        MODELS[args.model].cpu_bf16 = LowPrecision()          # the whole graph in bf16 (below the bar)
    precision = "fp32" if args.mode == "fp32" else "bf16"
    st = Stylizer(args.weights, device="cpu", precision=precision, compile=args.mode.startswith("compiled"))
    styles = [Style(style)]
    row = {"mode": args.mode, "size": args.size, "model": args.model, "threads": torch.get_num_threads()}
    if st.compiler is None:   # load and warm up (the compiled mode's build below warms it at its own size)
        st.stylize_raw(smooth_rgb(256, 256, 3), [Style(smooth_rgb(256, 256, 4))], model=args.model)
    if st.compiler is not None:                              # build the graphs of this size before timing
        t = time.perf_counter()
        st.stylize_raw(content, styles, model=args.model)
        st.compiler.idle.wait()
        st.clear_cache()
        st.stylize_raw(content, styles, model=args.model)   # shapes first seen on the cached path
        st.compiler.idle.wait()
        row["compile_s"] = round(time.perf_counter() - t, 1)
        row["compile"] = st.compiler.status()
    repeat = args.repeat if w * h <= 1024 * 1024 else 1
    fresh, cached, fresh_cpu, cached_cpu, out = [], [], [], [], None
    for _ in range(repeat):
        st.clear_cache()
        t, c = time.perf_counter(), time.process_time()
        out = st.stylize_raw(content, styles, model=args.model)
        fresh.append(time.perf_counter() - t)
        fresh_cpu.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        st.stylize_raw(content, styles, model=args.model)
        cached.append(time.perf_counter() - t)
        cached_cpu.append(time.process_time() - c)
    row.update(fresh_s=round(min(fresh), 3), cached_s=round(min(cached), 3), plan=st.last_info.get("plan"),
               fresh_cpu_s=round(min(fresh_cpu), 2), cached_cpu_s=round(min(cached_cpu), 2),
               precision=st.last_info.get("precision"),
               peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    np.save(args.out_npy, np.round(np.clip(out, 0, 1) * 255).astype(np.uint8))
    print(json.dumps(row))


def header() -> str:
    import torch
    from sanet.devices import cpu_info
    cpu = cpu_info()
    flags = ""
    try:
        from sanet.cpuflags import proc_cpuinfo
        flags = " ".join(sorted(f for f in proc_cpuinfo()[1] if f.startswith(("avx512", "amx", "avx2", "fma"))))
    except Exception:  # noqa: BLE001
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (f"CPU: {cpu.describe()}\nflags: {flags}\ntorch {torch.__version__}, oneDNN "
            f"{torch.backends.mkldnn.is_available()}, load average at start {load[0]:.2f}")


def compare(a: np.ndarray, ref: np.ndarray) -> dict:
    d = a.astype(np.int16) - ref.astype(np.int16)
    mse = float((d.astype(np.float64) ** 2).mean())
    return {"psnr_db": 99.0 if mse == 0 else round(10 * np.log10(255 ** 2 / mse), 1),
            "mean_abs": round(float(np.abs(d).mean()), 2), "max_abs": int(np.abs(d).max())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=",".join(DEFAULT_SIZES))
    p.add_argument("--modes", default="fp32,bf16,bf16-all,compiled-bf16")
    p.add_argument("--compiled-sizes", default="512x512",
                   help="sizes at which compiled modes run (each new tile shape costs minutes of building)")
    p.add_argument("--model", default="sanet", choices=("sanet", "adaattn"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="default: torch's (all physical cores)")
    p.add_argument("--weights", default=None)
    p.add_argument("--json", default=None)
    # child mode
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    p.add_argument("--out-npy", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    from bench_memory import weights_dir
    args.weights = str(weights_dir(args.weights))
    print(header(), flush=True)
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"unknown mode(s) {bad}; expected {', '.join(MODES)}")
    compiled_sizes = set(args.compiled_sizes.split(","))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            ref = None
            for mode in modes:
                if mode.startswith("compiled") and size not in compiled_sizes:
                    continue
                npy = Path(tmp) / f"{mode}-{size}.npy"
                cmd = [sys.executable, __file__, "--child", "--mode", mode, "--size", size, "--model", args.model,
                       "--repeat", str(args.repeat), "--threads", str(args.threads), "--weights", args.weights,
                       "--out-npy", str(npy)]
                t = time.perf_counter()
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"{mode} {size}: failed\n{r.stderr[-2000:]}", flush=True)
                    continue
                row = json.loads(r.stdout.strip().splitlines()[-1])
                row["child_s"] = round(time.perf_counter() - t, 1)
                out = np.load(npy)
                if mode == "fp32":
                    ref = out
                if ref is not None:
                    row.update(compare(out, ref))
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| size | mode | fresh s | cached s | fresh × fp32 | cached × fp32 | fresh CPU s | cached CPU s | "
          "CPU × fp32 (fresh / cached) | peak RSS MB | PSNR dB | mean/max |Δ| |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    base = {(r["size"]): r for r in rows if r["mode"] == "fp32"}
    for r in rows:
        b = base.get(r["size"])
        ratio = (lambda k: f"{r[k] / b[k]:.2f}×" if b else "–")
        q = (f"{r['psnr_db']} | {r['mean_abs']} / {r['max_abs']}" if "psnr_db" in r else "– | –")
        cpu = (f"{r['fresh_cpu_s']} | {r['cached_cpu_s']} | {ratio('fresh_cpu_s')} / {ratio('cached_cpu_s')}"
               if "fresh_cpu_s" in r and b and "fresh_cpu_s" in b else "– | – | –")
        print(f"| {r['size']} | {r['mode']} | {r['fresh_s']} | {r['cached_s']} | {ratio('fresh_s')} | "
              f"{ratio('cached_s')} | {cpu} | {r['peak_rss_mb']:.0f} | {q} |")
    for r in rows:
        if "compile_s" in r:
            print(f"\n{r['mode']} {r['size']}: graphs built in {r['compile_s']} s before timing ({r['compile']})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
