"""`sanet-client stylize --content-labels/--style-labels` through a real daemon equals the engine in-process."""
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


def test_cli_label_maps_equal_engine(tmp_path, synthetic_weights):
    rng = np.random.default_rng(8)
    content = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    style = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
    other = rng.integers(0, 256, (32, 24, 4), dtype=np.uint8)
    cl = np.zeros((24, 32), np.uint16)
    cl[:, 16:] = 1000                                   # 16-bit integer labels
    sl = np.zeros((32, 32), np.uint16)
    sl[16:, :] = 1000
    ccol = np.zeros((24, 32, 3), np.uint8)
    ccol[:, :] = (250, 10, 10)
    ccol[12:, :] = (10, 10, 250)                        # colour-coded maps
    scol = np.zeros((32, 32, 3), np.uint8)
    scol[:, :] = (250, 10, 10)
    scol[:, 20:] = (10, 10, 250)
    for name, arr, mode in [("in", content, "RGBA"), ("style", style, "RGBA"), ("other", other, "RGBA"),
                            ("ccol", ccol, "RGB"), ("scol", scol, "RGB")]:
        Image.fromarray(arr, mode).save(tmp_path / f"{name}.png")
    Image.fromarray(cl).save(tmp_path / "cl.png")       # mode I;16: a 16-bit gray PNG
    Image.fromarray(sl).save(tmp_path / "sl.png")
    engine = sanet.Stylizer(synthetic_weights, device="cpu")
    with running_sanetd(tmp_path, synthetic_weights) as d:
        sid = run_cli(d.env, "styles", "add", "other", tmp_path / "other.png").stdout.strip()
        # integer labels, a second (library) style without labels, custom SCSA weights
        p = run_cli(d.env, "stylize", tmp_path / "in.png", "--style", tmp_path / "style.png", "--style", f"id:{sid}",
                    "--content-labels", tmp_path / "cl.png", "--style-labels", tmp_path / "sl.png",
                    "--style-labels", "none", "--scsa-weights", "0.6,0.4", "-o", tmp_path / "out.png")
        assert p.returncode == 0, p.stderr
        got = np.asarray(Image.open(tmp_path / "out.png"))
        want = engine.stylize(content, [sanet.Style(style, labels=sl), sanet.Style(other)], content_labels=cl,
                              scsa_weights=(0.6, 0.4))
        np.testing.assert_array_equal(got, want)
        # colour-coded maps (sent as rgba8) with a palette, the labelled style from the library
        p = run_cli(d.env, "stylize", tmp_path / "in.png", "--style", f"id:{sid}", "--content-labels",
                    tmp_path / "ccol.png", "--style-labels", tmp_path / "scol.png",
                    "--label-palette", "#fa0a0a,#0a0afa", "-o", tmp_path / "out2.png")
        assert p.returncode != 0 and "styles[0].labels" in p.stderr and "is 32x32" in p.stderr and "24x32" in p.stderr
        scol2 = np.ascontiguousarray(np.transpose(scol, (1, 0, 2))[:, :24])   # 24 wide, 32 high like `other`
        Image.fromarray(scol2, "RGB").save(tmp_path / "scol2.png")
        p = run_cli(d.env, "stylize", tmp_path / "in.png", "--style", f"id:{sid}", "--content-labels",
                    tmp_path / "ccol.png", "--style-labels", tmp_path / "scol2.png",
                    "--label-palette", "#fa0a0a,#0a0afa", "-o", tmp_path / "out2.png")
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["styles"] == 1
        want = engine.stylize(content, [sanet.Style(other, labels=scol2)], content_labels=ccol,
                              label_palette=[(250, 10, 10), (10, 10, 250)])
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out2.png")), want)
        # mistakes are one line naming the flag or the field
        p = run_cli(d.env, "stylize", tmp_path / "in.png", "--style", tmp_path / "style.png",
                    "--style-labels", tmp_path / "sl.png", "-o", tmp_path / "x.png")
        assert p.returncode == 2 and "--content-labels" in p.stderr
        p = run_cli(d.env, "stylize", tmp_path / "in.png", "--style", tmp_path / "style.png", "--content-labels",
                    tmp_path / "cl.png", "--style-labels", tmp_path / "cl.png", "-o", tmp_path / "x.png")
        assert p.returncode == 2 and "style 1 label map: size 32×24 does not match the style image size 32×32" \
            in p.stderr
        p = run_cli(d.env, "stylize", tmp_path / "in.png", "--style", tmp_path / "style.png", "--content-labels",
                    tmp_path / "cl.png", "--style-labels", tmp_path / "sl.png", "--scsa-weights", "0.5,12",
                    "-o", tmp_path / "x.png")
        assert p.returncode == 2 and "--scsa-weights" in p.stderr and "[0, 10]" in p.stderr
