"""`sanet-client stylize` on real files against a real daemon equals the engine in-process."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

import sanet
from sanetd_process import running_sanetd


def run_cli(env, *args):
    return subprocess.run([sys.executable, "-m", "sanet_client.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=180)


def test_cli_stylize_with_selection_equals_engine(tmp_path, synthetic_weights):
    rng = np.random.default_rng(5)
    content = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    style = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
    sel = np.zeros((24, 32), np.uint8)
    sel[5:20, 6:25] = 255
    Image.fromarray(content, "RGBA").save(tmp_path / "in.png")
    Image.fromarray(style, "RGBA").save(tmp_path / "style.png")
    Image.fromarray(sel, "L").save(tmp_path / "sel.png")
    with running_sanetd(tmp_path, synthetic_weights) as d:
        p = run_cli(d.env, "stylize", tmp_path / "in.png", "--style", tmp_path / "style.png", "-o", tmp_path / "out.png",
                    "--selection", tmp_path / "sel.png", "--alpha", "0.7", "--progress")
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["selection"] is True and "100.0% done" in p.stderr
        got = np.asarray(Image.open(tmp_path / "out.png"))
        want = sanet.Stylizer(synthetic_weights, device="cpu").stylize(
            content, [sanet.Style(style)], alpha=0.7, selection=sel.astype(np.float32) / 255)
        np.testing.assert_array_equal(got, want)
        # library round trip through the CLI
        p = run_cli(d.env, "styles", "add", "noise", tmp_path / "style.png")
        assert p.returncode == 0, p.stderr
        sid = p.stdout.strip()
        assert sid in run_cli(d.env, "styles", "list").stdout
        p = run_cli(d.env, "stylize", tmp_path / "in.png", "--style", f"id:{sid}", "--style", tmp_path / "style.png",
                    "--style-weights", "1,3", "-o", tmp_path / "out2.png")
        assert p.returncode == 0, p.stderr
        # errors are one line naming the problem
        p = run_cli(d.env, "stylize", tmp_path / "missing.png", "--style", tmp_path / "style.png", "-o", tmp_path / "x.png")
        assert p.returncode == 2 and p.stderr.strip() == f"sanet-client: error: {tmp_path / 'missing.png'}: file not found"
        p = run_cli(d.env, "stylize", tmp_path / "in.png", "--style", "id:nope", "-o", tmp_path / "x.png")
        assert p.returncode == 2 and "not in the style library" in p.stderr


def test_cli_without_daemon_says_how_to_start_it(tmp_path):
    import os
    env = dict(os.environ, SANETD_CONNECTION_FILE=str(tmp_path / "none.json"),
               PYTHONPATH=os.pathsep.join(__import__("sanetd_process").PYTHONPATH))
    p = run_cli(env, "hello")
    assert p.returncode == 1 and "start it with `sanetd`" in p.stderr
