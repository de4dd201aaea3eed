"""`sanet train` speed: iterations/s of the training step (sanet.train.loop.Step: forward, losses, backward, Adam)
for SANet at batch 5 and AdaAttN at batch 8 (their released batches; --batches to add others), crop 256, in fp32 and
bf16 autocast, with peak memory; plus the image loader's throughput (decode + resize to 512² + crop, one process).

    python bench/bench_train.py [--device cpu|cuda] [--models sanet,adaattn] [--precisions fp32,bf16]
                                [--batches default|5,8] [--crop 256] [--iterations 3] [--warmup 1]
    python bench/bench_train.py --flops [--models ...] [--crop 256]

--flops counts the floating-point operations of one step per training pair (torch.utils.flop_counter: convolutions
and matrix products, forward and backward) instead of timing: with a GPU's sustained rate it gives the time per
1000 iterations where no GPU is at hand (an estimate; README "Training").

Every configuration runs in a fresh subprocess (clean peak RSS; CUDA: torch.cuda.max_memory_allocated). Networks are
built with the default initialisation and the VGG with random weights: the speed of a step does not depend on the
values (denormals aside: training flushes them to zero, as here). Prints a markdown table and the time per 1000
iterations. On a shared machine the wall figures vary with the load: the CPU-seconds column varies less.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BATCH = {"sanet": 5, "adaattn": 8}


def one(model: str, batch: int, crop: int, precision: str, device: str, iterations: int, warmup: int) -> dict:
    """Time `iterations` steps after `warmup` in this process."""
    import torch
    from sanet import vgg
    from sanet.models import get_model
    from sanet.train.loop import Step, _device_and_precision
    from sanet.train.recipes import RECIPES
    dev, amp = _device_and_precision(device, precision)
    torch.manual_seed(0)
    encoder = vgg.build_encoder().eval().requires_grad_(False).to(dev)
    stages = vgg.slices(encoder)
    m = get_model(model)
    nets = {k: v.to(dev).train() for k, v in m.build().items()}
    rec = RECIPES[model]
    opt = torch.optim.Adam([p for r in rec.roles for p in nets[r].parameters()], lr=rec.lr)
    scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")
    step = Step(m, nets, stages, opt, scaler, rec.weights, dev, amp)
    gen = torch.Generator().manual_seed(1)
    low = torch.rand(2 * batch, 3, crop // 16, crop // 16, generator=gen)
    images = torch.nn.functional.interpolate(low, size=(crop, crop), mode="bilinear", align_corners=False)
    c, s = images[:batch], images[batch:]
    torch.set_flush_denormal(True)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step(c, s, rec.lr)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t, cpu = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        losses = step(c, s, rec.lr)
    sync()
    wall, cpu = (time.perf_counter() - t) / iterations, (time.process_time() - cpu) / iterations
    peak = (torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return {"model": model, "batch": batch, "crop": crop, "precision": precision, "device": str(dev),
            "s_per_it": wall, "cpu_s_per_it": cpu, "peak_gib": peak, "threads": torch.get_num_threads(),
            "finite": all(v == v for v in losses.values())}


def step_flops(model: str, crop: int) -> float:
    """FLOPs of one training step on ONE pair at crop×crop (a step on B pairs costs B times this)."""
    import torch
    import torch.utils.flop_counter as fc
    from torch.utils.flop_counter import FlopCounterMode
    from sanet import vgg
    from sanet.models import get_model
    from sanet.train.loop import Step
    from sanet.train.recipes import RECIPES
    torch.manual_seed(0)
    stages = vgg.slices(vgg.build_encoder().eval().requires_grad_(False))
    m = get_model(model)
    nets = {k: v.train() for k, v in m.build().items()}
    rec = RECIPES[model]
    opt = torch.optim.Adam([p for r in rec.roles for p in nets[r].parameters()], lr=rec.lr)
    step = Step(m, nets, stages, opt, torch.amp.GradScaler("cpu", enabled=False), rec.weights, torch.device("cpu"),
                None)
    x = torch.rand(2, 3, crop, crop, generator=torch.Generator().manual_seed(1))
    # the CPU's fused attention kernels are not in the counter's table: count them with its own SDPA formulas
    aten = torch.ops.aten
    sdpa = {aten._scaled_dot_product_flash_attention_for_cpu:
            lambda q, k, v, *a, out_shape=None, **kw: fc.sdpa_flop_count(q, k, v),   # (the counter passes shapes)
            aten._scaled_dot_product_flash_attention_for_cpu_backward:
            lambda g, q, k, v, *a, out_shape=None, **kw: fc.sdpa_backward_flop_count(g, q, k, v)}
    with FlopCounterMode(display=False, custom_mapping=sdpa) as counter:
        step(x[:1], x[1:], rec.lr)
    return float(counter.get_total_flops())


def loader_rate(batch: int, count: int = 3) -> float:
    """Images per second through sanet.train.data.Batches (640×480 JPEGs → 512² → random 256 crops), one process."""
    import numpy as np
    from PIL import Image
    from sanet.train import data as D
    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    for name in ("c", "s"):
        (tmp / name).mkdir()
        for i in range(2 * batch):
            low = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
            Image.fromarray(low).resize((640, 480), Image.BICUBIC).save(tmp / name / f"{i}.jpg", quality=90)
    b = D.Batches(D.scan_folder(tmp / "c", "--content"), D.scan_folder(tmp / "s", "--style"), batch, 512, 256,
                  True, 0, count)
    t = time.perf_counter()
    for i in range(count):
        b[i]
    return 2 * batch * count / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="sanet,adaattn")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--batches", default="default", help="'default' (sanet 5, adaattn 8) or a list, e.g. 5,8")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--flops", action="store_true", help="count FLOPs per pair instead of timing")
    ap.add_argument("--one", help=argparse.SUPPRESS)     # internal: one configuration as JSON, in a subprocess
    args = ap.parse_args()
    if args.one:
        cfg = json.loads(args.one)
        print(json.dumps(one(**cfg)))
        return
    if args.flops:
        print("| model | crop | GFLOP per pair per step (forward + backward) |\n|---|---|---|")
        for model in args.models.split(","):
            print(f"| {model} | {args.crop} | {step_flops(model, args.crop) / 1e9:.0f} |", flush=True)
        return
    rows = []
    for model in args.models.split(","):
        batches = [DEFAULT_BATCH[model]] if args.batches == "default" else [int(b) for b in args.batches.split(",")]
        for batch in batches:
            for precision in args.precisions.split(","):
                cfg = dict(model=model, batch=batch, crop=args.crop, precision=precision, device=args.device,
                           iterations=args.iterations, warmup=args.warmup)
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
                r = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)], env=env,
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"{model} batch {batch} {precision}: failed: {r.stderr.strip().splitlines()[-1:]}",
                          file=sys.stderr)
                    continue
                rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
                print(f"done: {rows[-1]}", file=sys.stderr, flush=True)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| model | batch | crop | precision | device | threads | s/it | it/s | CPU s/it | 1k iterations | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['crop']} | {r['precision']} | {r['device']} | {r['threads']} | "
              f"{r['s_per_it']:.2f} | {1 / r['s_per_it']:.3f} | {r['cpu_s_per_it']:.1f} | "
              f"{r['s_per_it'] * 1000 / 3600:.1f} h | {r['peak_gib']:.2f} |")
    print(f"\nloader: {loader_rate(5):.1f} images/s per process (640×480 JPEG → 512² → 256 crop); a batch of 5 "
          f"pairs needs 10 images")


if __name__ == "__main__":
    main()
