"""Round-trip overhead of sending a layer through sanetd (ipc) instead of calling the engine in-process.

    .venv/bin/python bench/bench_daemon_roundtrip.py [--weights DIR] [--repeat 10]

Two measurements, printed as a markdown table:

1. Transport overhead for a 3840x2160 RGBA layer (rgba8, rgba16, rgbaf32). The job carries an all-zero
   selection mask, for which the daemon returns the layer without running the network (nothing is
   selected). Such a job takes the daemon's whole path — client signing, ipc transfer, HMAC + replay
   check, field validation, queue, worker thread, mask plane, result signing, transfer back, client
   verification and copy into a ``bytes`` result — and nothing else, so its round-trip time *is* the
   overhead the daemon adds to an engine call (an in-process call does none of these steps).
2. A real engine job on a smaller layer (default 512x512, CPU) in-process vs through sanetd: the
   difference is the same overhead plus noise; on a shared CPU it is only a sanity check.

Without --weights, synthetic weights (random, in the public layout) are generated: transport speed does
not depend on the weight values.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "daemon", ROOT / "plugins", ROOT / "tests"):
    sys.path.insert(0, str(p))

import numpy as np  # noqa: E402

from sanet_client import Client, Layer, Mask, StylePixels  # noqa: E402
from sanet_client import protocol as P  # noqa: E402
from sanetd_process import running_sanetd  # noqa: E402

FORMATS = {"rgba8": np.uint8, "rgba16": np.uint16, "rgbaf32": np.float32}


def layer_bytes(w: int, h: int, fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    dtype = FORMATS[fmt]
    if dtype == np.float32:
        return rng.random((h, w, 4), dtype=np.float32).tobytes()
    return rng.integers(0, np.iinfo(dtype).max, (h, w, 4), dtype=dtype).tobytes()


def median_ms(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def echo_floor(request_bytes: int, reply_bytes: int, repeat: int) -> tuple[float, float]:
    """The same volume over a bare ipc ROUTER/DEALER pair in another process: the transport floor."""
    import subprocess
    import zmq
    with tempfile.TemporaryDirectory(prefix="sanet-echo-") as tmp:
        endpoint = f"ipc://{tmp}/echo"
        server = subprocess.Popen([sys.executable, "-c", (
            "import sys, zmq\n"
            "s = zmq.Context().socket(zmq.ROUTER); s.bind(sys.argv[1]); reply = bytes(int(sys.argv[2]))\n"
            "while True:\n"
            "    f = s.recv_multipart(copy=False)\n"
            "    if len(f) == 2: break\n"
            "    s.send_multipart([f[0], reply], copy=False)\n"), endpoint, str(reply_bytes)])
        ctx = zmq.Context()
        c = ctx.socket(zmq.DEALER)
        c.connect(endpoint)
        payload = bytes(request_bytes)

        def once():
            c.send_multipart([b"x", payload], copy=False)
            bytes(c.recv_multipart(copy=False)[0].buffer)   # the client copies the result, as Client does
        once()
        result = median_ms(once, repeat)
        c.send(b"stop")
        server.wait(10)
        c.close(0)
        ctx.term()
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="SANet weights folder (default: synthetic weights in a temp dir)")
    ap.add_argument("--width", type=int, default=3840)
    ap.add_argument("--height", type=int, default=2160)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--engine-side", type=int, default=512, help="side of the real-engine comparison (0: skip)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sanet-bench-") as tmp:
        tmp = Path(tmp)
        weights = args.weights
        if weights is None:
            from synthetic import make_synthetic_weights
            weights = make_synthetic_weights(tmp / "weights")
        w, h = args.width, args.height
        style = StylePixels(64, 64, "rgba8", layer_bytes(64, 64, "rgba8"))
        rows = []
        with running_sanetd(tmp / "d", weights) as d, Client(connection_file=d.connection_file, timeout=60) as c:
            hello = c.hello()
            empty = Mask(w, h, "u8", bytes(w * h))
            for fmt in FORMATS:
                data = layer_bytes(w, h, fmt)
                layer = Layer(w, h, fmt, data)
                c.stylize(layer, [style], selection=empty)           # warm-up
                med, best = median_ms(lambda: c.stylize(layer, [style], selection=empty), args.repeat)
                sign, _ = median_ms(lambda: P.compute_signature(b"k" * 32, b"h", [data]), args.repeat)
                rows.append((f"{w}x{h} {fmt} ({len(data) / 2**20:.0f} MiB), transport only", "0 (no call)",
                             f"{med:.1f} (min {best:.1f})", f"**{med:.1f}**", f"{sign:.1f}"))
            floor, fbest = echo_floor(w * h * 4 + w * h, w * h * 4, args.repeat)
            rows.append((f"{w}x{h} rgba8 frames, bare pyzmq ipc echo (no signing, no sanetd)", "-",
                         f"{floor:.1f} (min {fbest:.1f})", f"{floor:.1f} (floor)", "-"))
            if args.engine_side:
                import sanet
                s = args.engine_side
                content = np.frombuffer(layer_bytes(s, s, "rgba8"), np.uint8).reshape(s, s, 4)
                st_arr = np.frombuffer(style.data, np.uint8).reshape(64, 64, 4)
                engine = sanet.Stylizer(weights, device="cpu")
                engine.stylize(content, [sanet.Style(st_arr)])
                inproc, _ = median_ms(lambda: engine.stylize(content, [sanet.Style(st_arr)]), max(3, args.repeat // 3))
                layer = Layer(s, s, "rgba8", content.tobytes())
                c.stylize(layer, [style])
                daemon_ms, _ = median_ms(lambda: c.stylize(layer, [style]), max(3, args.repeat // 3))
                rows.append((f"{s}x{s} rgba8, real engine job on cpu", f"{inproc:.1f}", f"{daemon_ms:.1f}",
                             f"{daemon_ms - inproc:.1f} (noisy)", "-"))
        print(f"sanetd round trip over ipc, {args.repeat} runs, median ms; device {hello['device']}; "
              f"python {sys.version.split()[0]}")
        print()
        print("| case | engine in-process | through sanetd | overhead | HMAC+digests of one layer |")
        print("|---|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
