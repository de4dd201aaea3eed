"""OpenVINO on SANet's exported graph vs the engine's PyTorch paths on this CPU, at 512² (issue 16's comparison row).

    pip install openvino                     # not a dependency of sanet-style: this script asks for it
    python bench/bench_openvino.py           # 512² content and style, best of 5, SANet, calibrated synthetic weights
    python bench/bench_openvino.py --json out.json --repeat 5 --threads 2

Rows, each in its own child process (its own threads, its own peak RSS):
    torch fp32            Stylizer(precision="fp32"): the exact path (the reference of every PSNR)
    torch bf16 (split)    Stylizer(precision="bf16"): what Quality: Fast runs on a CPU (Model.cpu_bf16)
    torch bf16-all        every part in bf16 (below the quality bar; for comparison)
    openvino f32 / bf16   the same SANet forward (both VGG encoders to relu5_1, attention at relu4_1 and relu5_1, merge,
                          decoder) traced from the engine's own modules (ModuleStore) into one graph, converted with
                          openvino.convert_model, compiled for CPU with INFERENCE_PRECISION_HINT f32 / bf16
    openvino default      no precision hint: what OpenVINO picks on this CPU (printed)
    openvino split        the engine's bf16 split in OpenVINO: two graphs, both encoders to relu4_1 compiled f32, the
                          rest (relu5_1 stage, attention, merge, decoder) compiled bf16
Every row is a fresh call: both images encoded (the engine's caches are cleared before each call; the OpenVINO graph
has none). Times are wall seconds of the best call; "prepare" is the conversion + compilation time (OpenVINO) or the
weights load + warm-up (torch). PSNR and mean/max |Δ| are on 8-bit output against the torch fp32 row. The traced
graph itself is checked against the engine's fp32 output before it is converted (its max |Δ| is printed).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "plugins"), str(Path(__file__).resolve().parent)]

MODES = ("torch-fp32", "torch-bf16", "torch-bf16-all", "openvino-f32", "openvino-bf16", "openvino-default",
         "openvino-split")


def images(size: int):
    from bench_memory import smooth_u8
    return (smooth_u8(size, size, 1).astype(np.float32) / 255.0, smooth_u8(size, size, 2).astype(np.float32) / 255.0)


def whole_graph(weights):
    """SANet's forward as one traceable module built from the engine's loaded fp32 modules (explicit softmax: the
    fused SDPA call has no OpenVINO conversion; the math is the same)."""
    import torch
    from torch import nn
    from sanet import functional as fn
    from sanet.models.sanet import MODEL
    from sanet.runtime.modules import ModuleStore

    store = ModuleStore(Path(weights), torch.device("cpu"))
    nets = store.nets(MODEL, torch.float32)
    stages = store.encoder(torch.float32)

    def level(m, fc, fs):
        h, w = fc.shape[-2:]
        q = fn.tokens(m.f(fn.mean_variance_norm(fc)))
        k = fn.tokens(m.g(fn.mean_variance_norm(fs)))
        v = fn.tokens(m.h(fs))
        a = torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v
        return fc + m.out_conv(fn.untokens(a, h, w))

    class Whole(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.ModuleList(stages)
            self.t = nets["transformer"]
            self.decoder = nets["decoder"]

        def encode(self, x):
            out = []
            for stage in self.stages:
                x = stage(x)
                out.append(x)
            return out[3], out[4]

        def forward(self, c, s):
            c4, c5 = self.encode(c)
            s4, s5 = self.encode(s)
            return self.rest(c4, c5, s4, s5)

        def rest(self, c4, c5, s4, s5):
            t = self.t
            merged = fn.merge_levels(t.merge_conv_pad, t.merge_conv, level(t.sanet4_1, c4, s4),
                                     level(t.sanet5_1, c5, s5))
            return self.decoder(merged)

    class Front(nn.Module):          # the split's fp32 part: both images to relu4_1
        def __init__(self, whole):
            super().__init__()
            self.stages = nn.ModuleList(list(whole.stages)[:4])

        def forward(self, c, s):
            for stage in self.stages:
                c, s = stage(c), stage(s)
            return c, s

    class Back(nn.Module):           # the split's bf16 part: relu5_1, attention, merge, decoder
        def __init__(self, whole):
            super().__init__()
            self.whole = whole

        def forward(self, c4, s4):
            last = self.whole.stages[4]
            return self.whole.rest(c4, last(c4), s4, last(s4))

    whole = Whole().eval()
    return whole, Front(whole).eval(), Back(whole).eval()


def child(args) -> None:
    import torch
    torch.set_num_threads(args.threads)
    from bench_memory import weights_dir
    weights = weights_dir(args.weights)
    content, style = images(args.size)
    row = {"mode": args.mode, "threads": args.threads}
    times = []
    t0 = time.perf_counter()
    if args.mode.startswith("torch"):
        from sanet import Style, Stylizer
        from sanet.models import MODELS
        from sanet.models.base import LowPrecision
        if args.mode == "torch-bf16-all":
            MODELS["sanet"].cpu_bf16 = LowPrecision()
        st = Stylizer(weights, device="cpu", precision="fp32" if args.mode == "torch-fp32" else "bf16")
        st.stylize_raw(*images(256)[:1], [Style(images(256)[1])])
        row["prepare_s"] = round(time.perf_counter() - t0, 2)
        for _ in range(args.repeat):
            st.clear_cache()
            t = time.perf_counter()
            out = st.stylize_raw(content, [Style(style)])
            times.append(time.perf_counter() - t)
    else:
        import openvino as ov
        to = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)[None]))  # noqa: E731
        c, s = to(content), to(style)
        graph, front, back = whole_graph(weights)
        with torch.inference_mode():
            traced_out = graph(c, s)[0].permute(1, 2, 0).numpy()
        if args.check is not None:
            row["graph_vs_engine_max_abs"] = float(np.abs(traced_out - np.load(args.check)).max())
        config = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"}
        core = ov.Core()
        if args.mode == "openvino-split":
            with torch.no_grad():
                c4, s4 = front(c, s)
                first = core.compile_model(ov.convert_model(front, example_input=(c, s)), "CPU",
                                           dict(config, INFERENCE_PRECISION_HINT="f32"))
                second = core.compile_model(ov.convert_model(back, example_input=(c4, s4)), "CPU",
                                            dict(config, INFERENCE_PRECISION_HINT="bf16"))

            def compiled(inputs):
                mid = first(inputs)
                return second([mid[0], mid[1]])
            row["ov_precision"] = "f32 to relu4_1, then bf16"
        else:
            with torch.no_grad():
                model = ov.convert_model(graph, example_input=(c, s))
            if args.mode != "openvino-default":
                config["INFERENCE_PRECISION_HINT"] = args.mode.split("-")[1]
            compiled = core.compile_model(model, "CPU", config)
            row["ov_precision"] = str(compiled.get_property("INFERENCE_PRECISION_HINT")).replace("<Type: ", "")[:-1]
        row["openvino"] = ov.__version__.split("-")[0]
        cn, sn = c.numpy(), s.numpy()
        compiled([cn, sn])
        row["prepare_s"] = round(time.perf_counter() - t0, 2)
        for _ in range(args.repeat):
            t = time.perf_counter()
            res = compiled([cn, sn])[0]
            times.append(time.perf_counter() - t)
        out = res[0].transpose(1, 2, 0)
    row["best_s"] = round(min(times), 3)
    row["median_s"] = round(float(np.median(times)), 3)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    np.save(args.out_npy, np.asarray(out, np.float32))
    print(json.dumps(row), flush=True)


def to8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.int16)


def compare(a: np.ndarray, ref: np.ndarray) -> dict:
    from bench_cpu import compare as compare_8bit     # one PSNR / mean / max on 8-bit output for both CPU benches
    return compare_8bit(to8(a), to8(ref))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="default: torch's (all physical cores)")
    p.add_argument("--weights", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--out-npy", help=argparse.SUPPRESS)
    p.add_argument("--check", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"unknown mode(s) {', '.join(bad)}; expected some of {', '.join(MODES)}")
    if any(m.startswith("openvino") for m in modes):
        try:
            import openvino  # noqa: F401
        except ImportError:
            print("OpenVINO is not installed: `pip install openvino` (into this environment), then run again",
                  file=sys.stderr)
            return 2
    import torch
    from bench_cpu import header
    threads = args.threads or torch.get_num_threads()
    print(header(), file=sys.stderr)
    print(f"{threads} threads, {args.size}² content and style, best of {args.repeat}", file=sys.stderr)
    if "torch-fp32" in modes:
        modes = ["torch-fp32"] + [m for m in modes if m != "torch-fp32"]
    rows, ref = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            npy = Path(tmp) / f"{mode}.npy"
            cmd = [sys.executable, __file__, "--child", "--mode", mode, "--out-npy", str(npy), "--size",
                   str(args.size), "--repeat", str(args.repeat), "--threads", str(threads)]
            if args.weights:
                cmd += ["--weights", args.weights]
            if ref is not None and mode.startswith("openvino"):
                cmd += ["--check", str(Path(tmp) / "torch-fp32.npy")]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{mode}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            out = np.load(npy)
            if mode == "torch-fp32":
                ref = out
            if ref is not None:
                row.update(compare(out, ref))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    base = next((r["best_s"] for r in rows if r["mode"] == "torch-fp32"), None)
    print("| mode | best s | × torch fp32 | prepare s | peak RSS MB | PSNR dB | mean / max \\|Δ\\| (of 255) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['best_s'] / base:.2f}×" if base else "–"
        name = r["mode"] + (f" ({r['ov_precision']})" if "ov_precision" in r else "")
        quality = (f"{r['psnr_db']} | {r['mean_abs']} / {r['max_abs']}" if r["mode"] != "torch-fp32" and "psnr_db" in r
                   else "– | –")
        print(f"| {name} | {r['best_s']} | {ratio} | {r['prepare_s']} | {r['peak_rss_mb']} | {quality} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
