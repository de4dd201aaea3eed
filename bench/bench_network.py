"""Pixels over a network: 4K round trips to a shared sanetd over loopback tcp (CURVE), with and without compression.

    .venv/bin/python bench/bench_network.py [--repeat 5] [--width 3840 --height 2160]

A real sanetd runs with ``--listen tcp://127.0.0.1:*``; an invited client (``sanetd invite``) sends a layer with an
all-zero selection, so the daemon returns the layer without running the network: the round trip is the transport
alone — client signing (+ compression), CURVE encryption, tcp, ZAP-admitted peer, HMAC check (+ decompression),
validation, queue, worker, result signing (+ compression) and back. Each layer format is sent as a photo-like image
(smooth shading, edges, sensor-like noise of about 1 % of the range: what painters' layers and photos look like to
a byte compressor) and as pure noise (the worst case: nothing to gain).

Loopback has no bandwidth limit, so compression can only cost time here. The last columns estimate a real link:
measured loopback time + bytes on the wire / link rate (both directions), for 1 Gbit/s and 100 Mbit/s. That is a
model (it ignores overlap of compression and transfer, and latency), stated as such in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "daemon", ROOT / "plugins", ROOT / "tests", ROOT / "tests" / "daemon"):
    sys.path.insert(0, str(p))

import numpy as np  # noqa: E402

from sanet_client import Client, Layer, Mask, StylePixels  # noqa: E402
from sanet_client import protocol as P  # noqa: E402
from sanetd_process import running_sanetd  # noqa: E402


def photo_like(w: int, h: int, bits: int, seed: int = 0) -> np.ndarray:
    """Smooth shading with a few hard edges and ~1 % noise, RGBA with opaque alpha, uint8 or uint16."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(x / 300 + c) * np.cos(y / 230 - c) for c in (0.0, 1.3, 2.6)], -1)
    base[(x - w / 3) ** 2 + (y - h / 2) ** 2 < (h / 4) ** 2] *= 0.6        # a disc
    base[:, : w // 5] = base[:, : w // 5] * 0.5 + 0.4                     # a band
    base += rng.normal(0, 0.01, base.shape).astype(np.float32)
    top = (1 << bits) - 1
    rgb = np.clip(base, 0, 1) * top
    a = np.full((h, w, 1), top, np.float32)
    return np.concatenate([rgb, a], -1).round().astype(np.uint8 if bits == 8 else np.uint16)


def noise(w: int, h: int, bits: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    dtype = np.uint8 if bits == 8 else np.uint16
    return rng.integers(0, np.iinfo(dtype).max, (h, w, 4), dtype=dtype)


def wire_bytes(arr: np.ndarray, codec: str | None, mask_bytes: int) -> int:
    """Bytes of pixels that cross the network for one round trip (layer + mask out, layer back)."""
    if codec is None:
        return 2 * arr.nbytes + mask_bytes
    layer = len(P.compress(codec, arr.tobytes()))
    layer = layer if layer <= arr.nbytes * P.COMPRESS_MAX_RATIO else arr.nbytes
    mask = len(P.compress(codec, bytes(mask_bytes)))
    return 2 * layer + mask


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=3840)
    ap.add_argument("--height", type=int, default=2160)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    w, h = args.width, args.height
    modes = [("none", None)] + [(c, c) for c in P.available_codecs()]
    rows, out = [], []
    with tempfile.TemporaryDirectory(prefix="sanet-netbench-") as tmp:
        tmp = Path(tmp)
        from synthetic import make_synthetic_weights
        from daemon_kit import invite
        weights = make_synthetic_weights(tmp / "weights")
        with running_sanetd(tmp / "d", weights, "--listen", "tcp://127.0.0.1:*") as d:
            conn = invite(d, "bench")
            style = StylePixels(64, 64, "rgba8", noise(64, 64, 8).tobytes())
            empty = Mask(w, h, "u8", bytes(w * h))
            for bits, fmt in ((8, "rgba8"), (16, "rgba16")):
                for kind, arr in (("photo-like", photo_like(w, h, bits)), ("noise", noise(w, h, bits))):
                    layer = Layer(w, h, fmt, arr.tobytes())
                    for label, codec in modes:
                        with Client(connection_file=conn, timeout=120, compression=codec) as c:
                            hello = c.hello()
                            assert hello.get("compression") == codec, (hello.get("compression"), codec)
                            r = c.stylize(layer, [style], selection=empty)        # warm-up, and a check
                            assert r.data == layer.data, "the round trip changed pixels"
                            times = []
                            for _ in range(args.repeat):
                                t0 = time.perf_counter()
                                c.stylize(layer, [style], selection=empty)
                                times.append(time.perf_counter() - t0)
                        med = statistics.median(times)
                        wire = wire_bytes(arr, codec, w * h)
                        est = {rate: med + wire * 8 / (rate * 1e6) for rate in (1000, 100)}
                        rows.append((f"{fmt} {kind}", label, f"{arr.nbytes / 2**20:.1f}", f"{wire / 2**20:.1f}",
                                     f"{med * 1000:.0f} (min {min(times) * 1000:.0f})",
                                     f"{est[1000]:.2f}", f"{est[100]:.2f}"))
                        out.append({"format": fmt, "image": kind, "codec": label, "layer_mib": arr.nbytes / 2**20,
                                    "wire_mib": wire / 2**20, "median_s": med, "min_s": min(times),
                                    "est_1gbit_s": est[1000], "est_100mbit_s": est[100]})
    print(f"sanetd round trip over loopback tcp (CURVE), {w}x{h}, {args.repeat} runs, median; python "
          f"{sys.version.split()[0]}; codecs here: {', '.join(P.available_codecs())}")
    print()
    print("| layer | compression | layer MiB | MiB on the wire (both ways) | loopback ms | est. 1 Gbit/s s | "
          "est. 100 Mbit/s s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
