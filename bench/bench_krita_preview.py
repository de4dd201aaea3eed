"""What the Krita docker's live preview costs on the plug-in side, per depth: scaling a full-size layer (and its
selection) down to the preview size on the worker thread, and turning the small result into the image it shows.

Runs on Krita's Python (PyQt5), not the project venv:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 bench/bench_krita_preview.py --size 3840x2160 --repeat 3

The daemon's part (stylizing the small layer) is measured by bench_engine.py / bench_daemon_roundtrip.py; the
read of the layer from Krita (Node.projectionPixelData, a memory copy on the main thread) is not included.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "krita"))

from PyQt5.QtGui import QGuiApplication  # noqa: E402

from sanet_style import formats, preview  # noqa: E402


def _layer(depth, w, h):
    """A smooth layer in Krita's byte layout for ``depth`` (content does not change the cost)."""
    fmt = formats.client_format(depth)
    row = bytes((x * 7) % 251 for x in range(w * 4))
    data8 = row * h
    if fmt == "rgba8":
        client = data8
    elif fmt == "rgba16":
        client = bytes(b for v in data8[:w * 4] for b in (v, v)) * h
    else:
        import array
        client = array.array("f", (v / 255.0 for v in data8[:w * 4])).tobytes() * h
    return formats.client_to_krita(client, depth) if depth != "F16" else \
        formats.float32_to_half(client)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="3840x2160")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--long-side", type=int, default=preview.PREVIEW_LONG_SIDE)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    QGuiApplication(sys.argv[:1])
    pw, ph = preview.preview_size(w, h, args.long_side)
    mask = bytes((x * 3) % 256 for x in range(w)) * h
    print("layer %dx%d -> preview %dx%d, median of %d runs, %s" % (w, h, pw, ph, args.repeat, time.strftime("%F")))
    print("| depth | scale layer ms | scale selection ms | result -> image ms | total ms |")
    print("|---|---|---|---|---|")
    for depth in ("U8", "U16", "F16", "F32"):
        raw = _layer(depth, w, h)
        times = {"layer": [], "mask": [], "show": []}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fmt, small = preview.scale_layer(raw, w, h, depth, pw, ph)
            t1 = time.perf_counter()
            preview.scale_mask(mask, w, h, pw, ph)
            t2 = time.perf_counter()
            preview.rgba8_image(fmt, small, pw, ph)
            t3 = time.perf_counter()
            times["layer"].append((t1 - t0) * 1000)
            times["mask"].append((t2 - t1) * 1000)
            times["show"].append((t3 - t2) * 1000)
        med = {k: statistics.median(v) for k, v in times.items()}
        print("| %s | %.0f | %.0f | %.0f | %.0f |" % (depth, med["layer"], med["mask"], med["show"], sum(med.values())))
    print("load average: %.1f %.1f %.1f" % os.getloadavg())


if __name__ == "__main__":
    main()
