"""Peak memory and time of one full-resolution stylization (planner + tiles), and tiled-vs-whole agreement.

Memory (run it under GNU time; the "Maximum resident set size" line is the figure to record):
    /usr/bin/time -v python bench/bench_memory.py --size 3840x2160      # target ≤ 2.5 GB peak RSS
    /usr/bin/time -v python bench/bench_memory.py --size 7680x4320      # target ≤ 4 GB peak RSS
The content is an 8-bit RGBA layer (what GIMP/Krita hand over), the style a 512² image; the script also prints
its own ru_maxrss and the plan. --budget GIB overrides the engine's default memory budget.

Agreement (the issue's ≤ 1e-3 of the output range, and the seam check):
    python bench/bench_memory.py --agreement [--size 2048x1536] [--tile 512]
runs the same layer whole (12 GiB budget) and in tiles, prints the max deviation relative to the output range and
the gradient-energy ratio at tile boundaries (1.0 = like any other boundary of the same 8-px phase).

--model adaattn measures AdaAttN instead of SANet (same commands).

Without --weights, synthetic checkpoints of both models (same layout and cost as the real ones) are made once in
~/.cache/sanet-style/bench-weights by a child process, so they do not count in this process's peak.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

GIB = 1024 ** 3


def weights_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    folder = Path.home() / ".cache" / "sanet-style" / "bench-weights"
    if not (folder / "latest_net_adaattn_3.pth").is_file():
        code = f"import sys; sys.path[:0]={[str(ROOT), str(ROOT / 'tests')]!r}; " \
               f"from synthetic import make_synthetic_weights, make_synthetic_adaattn_weights; " \
               f"w = make_synthetic_weights({str(folder)!r}); " \
               f"make_synthetic_adaattn_weights(w, w / 'vgg_normalised.pth')"
        subprocess.run([sys.executable, "-c", code], check=True)
    return folder


def smooth_u8(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """Low-frequency random 8-bit image made without float temporaries at full size (keeps the peak honest)."""
    import cv2
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, size=(max(2, h // 16), max(2, w // 16), channels), dtype=np.uint8)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)


def rgba_layer(h: int, w: int, seed: int) -> np.ndarray:
    img = np.empty((h, w, 4), np.uint8)
    img[:, :, :3] = smooth_u8(h, w, seed)
    img[:, :, 3] = 255
    img[: h // 10, : w // 10, 3] = 128   # some partial alpha: it must come back bit-exact
    return img


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(h), int(w)


def seam_ratio(img: np.ndarray, tile: int) -> float:
    """Max over tile boundaries of (difference energy across it) / (mean over same-phase non-tile boundaries)."""
    from sanet.runtime.padding import spans
    ratios = []
    for axis in (0, 1):
        cuts = [b for _, b in spans(img.shape[axis], tile)[:-1]]
        d = np.diff(img, axis=axis).astype(np.float64) ** 2
        energy = d.mean(axis=(1, 2)) if axis == 0 else d.mean(axis=(0, 2))
        for cut in cuts:
            others = [j for j in range((cut - 1) % 8, len(energy), 8) if j + 1 not in cuts]
            ratios.append(energy[cut - 1] / np.mean(energy[others]))
    return max(ratios) if ratios else 1.0


def run_memory(args) -> None:
    from sanet import Stylizer
    h, w = parse_size(args.size)
    st = Stylizer(weights_dir(args.weights), device=args.device, model=args.model,
                  memory_budget=int(args.budget * GIB) if args.budget else None)
    style = smooth_u8(512, 512, 2)
    content = rgba_layer(h, w, 1)
    base = peak_rss_mb()
    stages = []
    t = time.perf_counter()
    out = st.stylize(content, [style], alpha=args.alpha,
                     progress=lambda f, s: stages.append(s) if "tile 1/" in s or "tile" not in s else None)
    dt = time.perf_counter() - t
    assert out.shape == content.shape and np.array_equal(out[:, :, 3], content[:, :, 3])
    print(json.dumps({"model": args.model, "size": f"{w}x{h}", "plan": st.last_plan.describe(),
                      "seconds": round(dt, 1),
                      "peak_rss_mb": round(peak_rss_mb()), "rss_before_stylize_mb": round(base),
                      "alpha": args.alpha, "device": str(st.device), "torch_threads": __import__("torch").get_num_threads(),
                      "out_mean": float(out[:, :, :3].mean())}))


def run_agreement(args) -> None:
    from sanet import Stylizer
    from sanet.models import get_model
    from sanet.runtime import planner
    h, w = parse_size(args.size)
    st = Stylizer(weights_dir(args.weights), device=args.device, model=args.model, memory_budget=12 * GIB)
    style = smooth_u8(256, 256, 2)
    content = smooth_u8(h, w, 1).astype(np.float32) / 255
    t = time.perf_counter()
    whole = st.stylize_raw(content, [style], alpha=args.alpha)
    t_whole = time.perf_counter() - t
    assert not st.last_plan.tiled, st.last_plan.describe()
    st.memory_budget = planner.budget_for_tile(args.tile, h, w, costs=get_model(args.model).costs)
    t = time.perf_counter()
    tiled = st.stylize_raw(content, [style], alpha=args.alpha)
    t_tiled = time.perf_counter() - t
    rng = float(whole.max() - whole.min())
    print(json.dumps({"model": args.model, "size": f"{w}x{h}", "tiled_plan": st.last_plan.describe(),
                      "max_dev_over_range": float(np.abs(tiled - whole).max() / rng),
                      "seam_ratio_tiled": round(seam_ratio(tiled, args.tile), 3),
                      "seam_ratio_whole_same_cuts": round(seam_ratio(whole, args.tile), 3),
                      "seconds_whole": round(t_whole, 1), "seconds_tiled": round(t_tiled, 1),
                      "peak_rss_mb": round(peak_rss_mb())}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default=None, help="WxH (default 3840x2160; 2048x1536 with --agreement)")
    ap.add_argument("--weights")
    ap.add_argument("--model", default="sanet", choices=("sanet", "adaattn"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--budget", type=float, help="memory budget in GiB (default: the engine's)")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--agreement", action="store_true")
    ap.add_argument("--tile", type=int, default=512, help="tile side for --agreement")
    args = ap.parse_args()
    if args.agreement:
        args.size = args.size or "2048x1536"
        run_agreement(args)
    else:
        args.size = args.size or "3840x2160"
        run_memory(args)


if __name__ == "__main__":
    main()
