"""The artist's loop (issue 12) measured through a real sanetd and sanet_client, as the plug-ins use them.

    .venv/bin/python bench/bench_loop.py [--weights DIR] [--repeat 3] [--preview 512x384] [--full 1920x1080]

Each loop step is timed next to its cold path (the same request on a layer the daemon has never seen, so nothing of
the layer is reused; styles already encoded stay cached in both, as they did before feature reuse), best of
--repeat, ratios from the same run:

  strength change     preview layer (long side 512), one style: α 0.8 → 0.5            target ≤ 1.5 s
  style-weight change preview layer, two styles: weights 0.7/0.3 → 0.4/0.6             target ≤ 1.5 s
  new style           preview layer: a style never seen (encoded + attention only)      target ≤ 4 s
  selection 20 %      full-size layer, a selection of 20 % of the area vs the whole layer, both cold
                                                                                        target ≤ 0.7×
  cancel              full-size layer: cancel sent during "encode content" / "stylize" until the `cancelled`
                      error arrives (and on the preview layer)                         target ≤ 1 s

The client is the plug-ins' (`Client.stylize`, reuse_layer on: an unchanged layer goes as its layer_ref). Without
--weights, synthetic checkpoints in the public layout are generated (same cost as the real ones). The machine may be
shared: read the ratios, and re-measure the absolute figures on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "daemon", ROOT / "plugins", ROOT / "tests"):
    sys.path.insert(0, str(p))

import numpy as np  # noqa: E402

from sanet_client import Client, JobCancelled, Layer, Mask, StylePixels  # noqa: E402
from sanetd_process import running_sanetd  # noqa: E402


def picture(w: int, h: int, seed: int) -> np.ndarray:
    """A smooth RGBA picture (low-frequency noise, like a photo's large shapes)."""
    rng = np.random.default_rng(seed)
    low = rng.random((h // 16 + 2, w // 16 + 2, 3)).astype(np.float32)
    ys = np.linspace(0, h // 16, h).astype(int)
    xs = np.linspace(0, w // 16, w).astype(int)
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = (low[ys][:, xs] * 255).astype(np.uint8)
    out[..., 3] = 255
    return out


def layer(arr: np.ndarray) -> Layer:
    return Layer(arr.shape[1], arr.shape[0], "rgba8", arr.tobytes())


def style(arr: np.ndarray, weight: float = 1.0) -> StylePixels:
    return StylePixels(arr.shape[1], arr.shape[0], "rgba8", arr.tobytes(), weight)


class Bench:
    def __init__(self, client: Client, repeat: int):
        self.c, self.repeat = client, repeat
        self.seed = 1000

    def fresh_layer(self, w: int, h: int) -> np.ndarray:
        self.seed += 1
        return picture(w, h, self.seed)

    def timed(self, fn) -> tuple[float, dict]:
        t0 = time.perf_counter()
        r = fn()
        return time.perf_counter() - t0, r.info

    def best(self, make) -> tuple[float, dict]:
        """make() → a callable to time (prepared outside the timing); best of `repeat`."""
        runs = [self.timed(make()) for _ in range(self.repeat)]
        return min(runs, key=lambda r: r[0])

    def loop_step(self, size, styles_before, styles_after, alpha_before, alpha_after):
        """(cold s, loop s, loop info): the step after a run on the same layer vs the same request on a new layer."""
        w, h = size

        def cold():
            arr = self.fresh_layer(w, h)
            return lambda: self.c.stylize(layer(arr), styles_after, alpha=alpha_after)

        def warm():
            arr = self.fresh_layer(w, h)
            self.c.stylize(layer(arr), styles_before, alpha=alpha_before)      # the run the artist saw
            return lambda: self.c.stylize(layer(arr), styles_after, alpha=alpha_after)
        cold_s, _ = self.best(cold)
        loop_s, info = self.best(warm)
        return cold_s, loop_s, info

    def cancel_delay(self, arr: np.ndarray, s, stage: str) -> float:
        cancel, marks = threading.Event(), {}

        def progress(fraction, name):
            if name.startswith(stage) and not cancel.is_set():
                marks["t"] = time.perf_counter()
                cancel.set()
        try:
            self.c.stylize(layer(arr), [s], alpha=0.8, on_progress=progress, cancel_event=cancel, reuse_layer=False)
        except JobCancelled:
            return time.perf_counter() - marks["t"]
        raise RuntimeError(f"the job finished before a cancel during {stage!r}")


def reused_text(reused: dict | None) -> str:
    """result.info.reused in a table cell: what the daemon did not recompute."""
    if not reused:
        return ""
    styles = reused.get("styles") or []
    parts = [k for k in ("layer", "features") if reused.get(k)]
    parts.append(f"T(c,s) {sum(bool(v) for v in styles)}/{len(styles)}")
    if reused.get("own") is not None:
        parts.append("T(c,c)" if reused["own"] else "T(c,c) recomputed")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--preview", default="512x384", help="preview layer size (long side ≤ 512, as the plug-ins send)")
    ap.add_argument("--full", default="1920x1080", help="full layer size (selection and cancel)")
    ap.add_argument("--style-size", type=int, default=512)
    args = ap.parse_args()
    pw, ph = (int(v) for v in args.preview.split("x"))
    fw, fh = (int(v) for v in args.full.split("x"))
    weights = args.weights
    if not weights:
        from synthetic import make_synthetic_weights
        weights = make_synthetic_weights(Path(tempfile.mkdtemp()) / "w")

    s1, s2, s3 = (picture(args.style_size, args.style_size, seed) for seed in (1, 2, 3))
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="sanet-bench-loop-") as tmp, running_sanetd(Path(tmp), weights) as d:
        with Client(connection_file=d.connection_file, timeout=120) as c:
            b = Bench(c, args.repeat)
            warmup = b.fresh_layer(pw, ph)
            for s in (s1, s2):                          # styles encoded once, as in any session
                c.stylize(layer(warmup), [style(s)])

            cold, loop, info = b.loop_step((pw, ph), [style(s1)], [style(s1)], 0.8, 0.5)
            rows.append(("strength change α 0.8 → 0.5", f"{pw}×{ph}", cold, loop, "≤ 1.5 s", info["reused"]))
            cold, loop, info = b.loop_step((pw, ph), [style(s1, 0.7), style(s2, 0.3)],
                                           [style(s1, 0.4), style(s2, 0.6)], 0.8, 0.8)
            rows.append(("style weights 0.7/0.3 → 0.4/0.6", f"{pw}×{ph}", cold, loop, "≤ 1.5 s", info["reused"]))

            # a new style: never seen by the daemon, in the loop and in the cold path alike
            def new_style_cold():
                arr, new = b.fresh_layer(pw, ph), picture(args.style_size, args.style_size, b.seed + 7)
                return lambda: c.stylize(layer(arr), [style(new)], alpha=0.8)

            def new_style_loop():
                arr, new = b.fresh_layer(pw, ph), picture(args.style_size, args.style_size, b.seed + 7)
                c.stylize(layer(arr), [style(s1)], alpha=0.8)
                return lambda: c.stylize(layer(arr), [style(new)], alpha=0.8)
            cold, _ = b.best(new_style_cold)
            loop, info = b.best(new_style_loop)
            rows.append(("new style", f"{pw}×{ph}", cold, loop, "≤ 4 s", info["reused"]))

            # selection-sized work: both cold (new layers), whole layer vs a centred selection of 20 % of the area
            sw, sh = int(fw * 0.2 ** 0.5), int(fh * 0.2 ** 0.5)
            mask = np.full((sh, sw), 255, np.uint8)
            sel = Mask(sw, sh, "u8", mask.tobytes(), x=(fw - sw) // 2, y=(fh - sh) // 2)

            def whole():
                arr = b.fresh_layer(fw, fh)
                return lambda: c.stylize(layer(arr), [style(s1)], alpha=0.8, reuse_layer=False)

            def selected():
                arr = b.fresh_layer(fw, fh)
                return lambda: c.stylize(layer(arr), [style(s1)], alpha=0.8, selection=sel, reuse_layer=False)
            whole_s, _ = b.best(whole)
            sel_s, _ = b.best(selected)
            rows.append((f"selection {sw}×{sh} (20 %) vs whole layer", f"{fw}×{fh}", whole_s, sel_s, "≤ 0.7×", None))

            delays = {}
            for size in ((fw, fh), (pw, ph)):
                for stage in ("encode content", "stylize"):
                    delays[(size, stage)] = max(b.cancel_delay(b.fresh_layer(*size), style(s3), stage)
                                                for _ in range(args.repeat))

    print(f"# bench_loop: {platform.node()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, best of {args.repeat}\n")
    print("| step | layer | cold path s | loop s | loop / cold | target | reused |")
    print("|---|---|---|---|---|---|---|")
    for name, size, cold, loop, target, reused in rows:
        print(f"| {name} | {size} | {cold:.2f} | {loop:.2f} | {loop / cold:.2f} | {target} | {reused_text(reused)} |")
    print("\n| cancel during | layer | cancel → `cancelled` s (worst of the repeats) | target |")
    print("|---|---|---|---|")
    for ((w, h), stage), delay in delays.items():
        print(f"| {stage} | {w}×{h} | {delay:.2f} | ≤ 1 s |")
    for n in notes:
        print(n)


if __name__ == "__main__":
    main()
