"""sanetd on a CPU: precision in hello, status and per request; --threads; lower priority by default; --compile
whose graphs cannot be built (no C++ compiler) never failing a request. Real sanetd processes, real sockets."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from daemon_kit import array_of, layer_of, rgba, style_of
from sanet import devices
from sanet_client import Client, JobFailed
from sanet_client import protocol as P
from sanetd_process import ROOT, PYTHONPATH, running_sanetd

BF16 = devices.cpu_bf16()
needs_bf16 = pytest.mark.skipif(not BF16, reason="this CPU has no AVX-512-BF16 / AMX-BF16")


def smooth_rgba(w: int, h: int, seed: int) -> np.ndarray:
    """A smooth 8-bit image (random noise would put the bf16 rounding on every edge)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    planes = [np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y) + rng.uniform(0, 6))
              for _ in range(3)]
    rgb = (np.stack(planes, -1) * 0.45 + 0.5) * 255
    return np.dstack([rgb, np.full((h, w), 255)]).round().astype(np.uint8)


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def test_hello_and_status_say_what_the_cpu_offers_and_the_daemon_yields_to_the_editor(client, daemon):
    hello = client.hello()
    caps = hello["capabilities"]
    assert hello["device"] == "cpu" and hello["precision"] == "auto"
    assert hello["defaults"]["precision"] == "auto"
    if BF16:
        assert caps["precisions"] == ["auto", "fp32", "bf16"] and caps["fast_precision"] == "bf16"
    else:
        assert caps["precisions"] == ["auto", "fp32"] and caps["fast_precision"] is None
    status = client.status()
    sc = status["capabilities"]
    cpu = devices.cpu_info()
    assert sc["cpu"]["name"] == cpu.name and sc["cpu"]["bf16"] == cpu.bf16
    assert sc["cpu"]["avx512_bf16"] == cpu.avx512_bf16 and sc["cpu"]["amx_bf16"] == cpu.amx_bf16
    assert sc["threads"] == cpu.physical_cores            # all physical cores by default
    expected_nice = min(19, niceness(0) + 10)             # lower priority by default: nice 10 on top of ours
    assert niceness(daemon.proc.pid) == expected_nice and sc["nice"] == expected_nice
    assert status["precision"] == "auto" and sc["compile"] is False
    assert f"compute threads {cpu.physical_cores}" in daemon.log_text()


@needs_bf16
def test_auto_previews_in_bf16_results_in_fp32_and_each_request_may_choose(client):
    layer, style = smooth_rgba(96, 64, 1), smooth_rgba(64, 64, 2)
    runs = {}
    for preview, precision in ((True, None), (False, None), (False, "bf16"), (True, "fp32"), (False, "auto")):
        r = client.stylize(layer_of(layer), [style_of(style)], preview=preview, precision=precision)
        runs[preview, precision] = r
    assert runs[True, None].info["precision"] == "bf16"        # auto: previews fast
    assert runs[False, None].info["precision"] == "fp32"       # auto: the result exact
    assert runs[False, "auto"].info["precision"] == "fp32"
    assert runs[False, "bf16"].info["precision"] == "bf16"     # fast, asked for
    assert runs[True, "fp32"].info["precision"] == "fp32"      # exact preview, asked for
    exact = array_of(runs[False, None], np.uint8).astype(float)
    fast = array_of(runs[False, "bf16"], np.uint8).astype(float)
    assert not np.array_equal(exact, fast)                     # bf16 really ran
    assert np.abs(fast - exact)[..., :3].mean() <= 3.0         # and stays within the quality bar's mean error
    assert np.array_equal(array_of(runs[False, "auto"], np.uint8), array_of(runs[False, None], np.uint8))


def test_a_precision_the_device_cannot_run_is_refused_in_one_line_naming_the_field(client):
    layer, style = rgba(32, 24, 3), rgba(16, 16, 4)
    with pytest.raises(JobFailed) as e:
        client.stylize(layer_of(layer), [style_of(style)], precision="fp16")
    assert e.value.code == "invalid_input" and e.value.field == "precision"
    assert "fp16" in str(e.value) and "GPUs" in str(e.value) and "\n" not in str(e.value)
    # the daemon goes on serving
    assert client.stylize(layer_of(layer), [style_of(style)], precision="fp32").info["precision"] == "fp32"


def test_threads_nice_and_precision_options(tmp_path, synthetic_weights):
    with running_sanetd(tmp_path, synthetic_weights, "--threads", "1", "--nice", "0", "--precision", "fp32") as d:
        with Client(connection_file=d.connection_file, timeout=20.0) as c:
            hello = c.hello()
            assert hello["precision"] == "fp32" and hello["defaults"]["precision"] == "fp32"
            caps = c.status()["capabilities"]
            assert caps["threads"] == 1
            assert caps["nice"] == niceness(0) == niceness(d.proc.pid)      # --nice 0: the editor's priority
            r = c.stylize(layer_of(rgba(32, 24, 5)), [style_of(rgba(16, 16, 6))], preview=True)
            assert r.info["precision"] == "fp32"                              # fp32 daemon: previews fp32 too


@pytest.mark.parametrize("args,expected", [
    (["--threads", "0"], "sanetd: --threads: threads = 0; expected 1 or more"),
    (["--nice", "25"], "sanetd: --nice: nice = 25; expected 0 (normal priority) to 19 (lowest)"),
])
def test_bad_threads_or_nice_stop_sanetd_in_one_line(tmp_path, args, expected):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(PYTHONPATH),
           "SANETD_CONFIG": str(tmp_path / "none.conf"), "SANETD_RUNTIME_DIR": str(tmp_path / "run"),
           "SANETD_LOG_DIR": str(tmp_path / "log"), "SANETD_DATA_DIR": str(tmp_path / "data")}
    p = subprocess.run([sys.executable, "-m", "sanetd", *args], capture_output=True, text=True, env=env, timeout=120,
                       cwd=ROOT)
    assert p.returncode == 2, p.stderr
    assert expected in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_compile_that_cannot_build_never_fails_a_request(tmp_path, synthetic_weights):
    """--compile on a machine without a working C++ compiler (a real inductor failure): the start-up warm-up and
    every request run eager; one log line says so; status shows the failed graphs."""
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "ind")}
    with running_sanetd(tmp_path, synthetic_weights, "--compile", env=env) as d:
        with Client(connection_file=d.connection_file, timeout=60.0) as c:
            layer, style = smooth_rgba(64, 48, 7), smooth_rgba(32, 32, 8)
            first = c.stylize(layer_of(layer), [style_of(style)], preview=True)
            assert first.info["precision"] in ("fp32", "bf16")
            deadline = time.monotonic() + 300                     # building fails in the background, at its pace
            while c.status()["capabilities"]["compile"]["pending"] and time.monotonic() < deadline:
                time.sleep(0.5)
            state = c.status()["capabilities"]["compile"]
            assert state["pending"] == 0 and state["failed"] >= 1 and state["built"] == 0, state
            assert "InvalidCxxCompiler" in state["disabled"], state       # no graph is tried again
            again = c.stylize(layer_of(layer), [style_of(style)], preview=True)
            assert np.array_equal(array_of(again, np.uint8), array_of(first, np.uint8))   # eager, same pixels
            full = c.stylize(layer_of(layer), [style_of(style)])
            assert full.info["precision"] == "fp32"
            assert c.status()["capabilities"]["compile"]["pending"] == 0
        log = d.log_text()
        assert "WARNING sanet.runtime: torch.compile cannot build graphs on this machine (InductorError: InvalidCxxCompiler" in log, log[-3000:]
        assert log.count("cannot build graphs") == 1


def test_sanet_client_quality_maps_to_the_daemons_fast_precision(daemon, tmp_path):
    import json

    from PIL import Image
    Image.fromarray(smooth_rgba(48, 32, 9), "RGBA").save(tmp_path / "in.png")
    Image.fromarray(smooth_rgba(32, 32, 10), "RGBA").save(tmp_path / "s.png")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "sanet_client.cli", "stylize", str(tmp_path / "in.png"),
                               "--style", str(tmp_path / "s.png"), *args], env=daemon.env, capture_output=True,
                              text=True, timeout=180)
    fast = cli("--quality", "fast", "-o", str(tmp_path / "fast.png"))
    exact = cli("--quality", "exact", "-o", str(tmp_path / "exact.png"))
    assert fast.returncode == 0 and exact.returncode == 0, fast.stderr + exact.stderr
    assert json.loads(fast.stdout)["precision"] == ("bf16" if BF16 else "fp32")
    assert json.loads(exact.stdout)["precision"] == "fp32"
    both = cli("--quality", "fast", "--precision", "fp32", "-o", str(tmp_path / "x.png"))
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_quality_choice_helper():
    assert P.precision_for_quality("fast", "bf16") == "bf16"
    assert P.precision_for_quality("fast", None) == P.DEFAULT_PRECISION == "auto"
    assert P.precision_for_quality("exact", "bf16") == "auto"
