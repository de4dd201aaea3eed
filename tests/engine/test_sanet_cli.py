"""`sanet stylize` as a user runs it: real files in, real files out, one-line errors with exit code 2."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine_helpers import smooth_image
from sanet import Stylizer, Style, load_image, save_image

ROOT = Path(__file__).resolve().parents[2]


def sanet(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sanet.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    save_image(d / "c.png", (smooth_image(50, 70, seed=51, channels=4) * 255).astype(np.uint8))
    save_image(d / "c16.png", (smooth_image(40, 40, seed=52) * 65535).astype(np.uint16))
    save_image(d / "s1.png", (smooth_image(64, 64, seed=53) * 255).astype(np.uint8))
    save_image(d / "s2.png", (smooth_image(40, 72, seed=54) * 255).astype(np.uint8))
    m = np.zeros((50, 70), np.uint8)
    m[10:40, 20:60] = 255
    save_image(d / "sel.png", m)
    save_image(d / "left.png", np.where(np.arange(70)[None, :] < 35, 255, 0).astype(np.uint8).repeat(50, 0))
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return d


def test_stylize_all_controls_equals_the_library(files, synthetic_weights):
    r = sanet("stylize", "c.png", "--style", "s1.png", "--style", "s2.png", "--style-weights", "0.7,0.3",
              "--region", "left.png", "--region", "sel.png", "--selection", "sel.png", "--alpha", "0.8",
              "--preserve-color", "--device", "cpu", "--weights", synthetic_weights, "--output", "out.png", cwd=files)
    assert r.returncode == 0, r.stderr
    assert "stylized in" in r.stderr and "wrote out.png" in r.stderr
    got = load_image(files / "out.png")
    st = Stylizer(synthetic_weights, device="cpu")
    ref = st.stylize(load_image(files / "c.png"),
                     [Style(load_image(files / "s1.png"), 0.7, load_image(files / "left.png")),
                      Style(load_image(files / "s2.png"), 0.3, load_image(files / "sel.png"))],
                     selection=load_image(files / "sel.png"), alpha=0.8, preserve_color=True)
    assert got.shape == (50, 70, 4) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, ref)


def test_memory_budget_tiles_and_gives_the_same_image(files, synthetic_weights):
    r = sanet("stylize", "c.png", "--style", "s1.png", "--memory-budget", "0.001", "--weights", synthetic_weights,
              "-o", "tiny_budget.png", cwd=files)
    assert r.returncode == 0, r.stderr
    assert "plan: tiles of" in r.stderr
    ref = Stylizer(synthetic_weights, device="cpu").stylize(load_image(files / "c.png"), [load_image(files / "s1.png")])
    assert np.abs(load_image(files / "tiny_budget.png").astype(int) - ref).max() <= 1


def test_output_formats(files, synthetic_weights):
    assert sanet("stylize", "c16.png", "--style", "s1.png", "--weights", synthetic_weights, "-o", "o16.png",
                 cwd=files).returncode == 0
    out16 = load_image(files / "o16.png")
    assert out16.dtype == np.uint16 and out16.shape == (40, 40, 3)
    assert sanet("stylize", "c.png", "--style", "s1.png", "--weights", synthetic_weights, "-o", "o.tif",
                 cwd=files).returncode == 0
    assert load_image(files / "o.tif").shape == (50, 70, 4)
    assert sanet("stylize", "c.png", "--style", "s1.png", "--weights", synthetic_weights, "-o", "raw.npy",
                 cwd=files).returncode == 0
    raw = np.load(files / "raw.npy")
    assert raw.dtype == np.float32 and raw.shape == (50, 70, 3)
    ref = Stylizer(synthetic_weights, device="cpu").stylize_raw(load_image(files / "c.png"), [load_image(files / "s1.png")])
    np.testing.assert_array_equal(raw, ref)


@pytest.mark.parametrize("args,needle", [
    (["missing.png", "--style", "s1.png"], "missing.png: file not found"),
    (["broken.png", "--style", "s1.png"], "broken.png: cannot read image"),
    (["c.png", "--style", "s1.png", "--selection", "c16.png"], "selection: size 40×40 does not match"),
    (["c.png", "--style", "s1.png", "--region", "sel.png", "--region", "sel.png"], "--region given 2 time(s) for 1"),
    (["c.png", "--style", "s1.png", "--style-weights", "1,2"], "--style-weights has 2 value(s) for 1"),
    (["c.png", "--style", "s1.png", "--device", "quantum"], "unknown device 'quantum'"),
    (["c.png", "--style", "s1.png", "--alpha", "2"], "out of range"),
    (["c.png", "--style", "s1.png", "-o", "x.gif"], "unsupported output format"),
    (["c.png", "--style", "s1.png", "--memory-budget", "0"], "--memory-budget 0.0: expected a positive number of GiB"),
])
def test_bad_input_one_line_exit_2(files, synthetic_weights, args, needle):
    if "-o" not in args:
        args = args + ["-o", "out_bad.png"]
    r = sanet("stylize", *args, "--weights", synthetic_weights, cwd=files)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln]) == 1


def test_missing_weights_says_how_to_install(files, tmp_path):
    r = sanet("stylize", "c.png", "--style", "s1.png", "--weights", tmp_path, "-o", "o.png", cwd=files)
    assert r.returncode == 2 and "vgg_normalised.pth: checkpoint file is missing" in r.stderr
    assert "sanet weights install" in r.stderr and "Traceback" not in r.stderr


def test_semantic_labels_from_the_cli_equal_the_library(files, synthetic_weights):
    left = np.where(np.arange(70)[None, :] < 35, 1, 2).astype(np.uint8).repeat(50, 0)
    top = np.where(np.arange(64)[:, None] < 32, 1, 2).astype(np.uint8).repeat(64, 1)
    save_image(files / "cl.png", left)
    save_image(files / "sl.png", top)
    r = sanet("stylize", "c.png", "--style", "s1.png", "--content-labels", "cl.png", "--style-labels", "sl.png",
              "--scsa-weights", "0.6,0.4", "--weights", synthetic_weights, "-o", "sem.png", cwd=files)
    assert r.returncode == 0, r.stderr
    st = Stylizer(synthetic_weights, device="cpu")
    ref = st.stylize(load_image(files / "c.png"), [Style(load_image(files / "s1.png"), labels=top)],
                     content_labels=left, scsa_weights=(0.6, 0.4))
    np.testing.assert_array_equal(load_image(files / "sem.png"), ref)
    bad = sanet("stylize", "c.png", "--style", "s1.png", "--content-labels", "cl.png", "--style-labels", "sl.png",
                "--style-labels", "sl.png", "--weights", synthetic_weights, "-o", "sem.png", cwd=files)
    assert bad.returncode == 2 and "--style-labels given 2 time(s) for 1 style(s)" in bad.stderr


# ------------------------------------------------------------------------------------------- sanet demo

def _demo(tmp_path, *args, weights_home=None, sources=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
               XDG_DATA_HOME=str(weights_home or tmp_path / "data"))
    env.pop("SANET_WEIGHTS", None)
    if sources is not None:
        env["SANET_WEIGHTS_SOURCES"] = str(sources)
    return subprocess.run([sys.executable, "-m", "sanet.cli", "demo", "--device", "cpu", *map(str, args)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_demo_with_weights_where_the_readme_says_ends_in_a_stylized_image(synthetic_weights, tmp_path):
    folder = tmp_path / "data" / "sanet-style" / "weights"        # the default folder on Linux, under XDG_DATA_HOME
    folder.mkdir(parents=True)
    for f in synthetic_weights.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    r = _demo(tmp_path)
    assert r.returncode == 0, r.stderr
    out = load_image(tmp_path / "sanet-demo" / "stylized.png")
    content = load_image(tmp_path / "sanet-demo" / "content.png")
    assert out.shape == content.shape and out.dtype == np.uint8 and out.std() > 1
    assert "$ sanet stylize sanet-demo/content.png --style sanet-demo/style.png -o sanet-demo/stylized.png" in r.stderr
    assert "Open sanet-demo/stylized.png" in r.stdout


def test_demo_without_weights_says_exactly_which_files_go_where(tmp_path):
    sources = tmp_path / "sources.json"   # no network here: a source that cannot be reached
    sources.write_text('{"format": "sanet-weights-sources/1", "models": {"sanet": {"sources": [{"name": "gone", '
                       '"kind": "mirror", "url": "http://127.0.0.1:9/gone/"}]}}}')
    r = _demo(tmp_path, sources=sources)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    folder = tmp_path / "data" / "sanet-style" / "weights"
    assert "[sanet] source 1 failed: http://127.0.0.1:9/gone/" in r.stderr
    for name in ("vgg_normalised.pth", "decoder_iter_500000.pth", "transformer_iter_500000.pth"):
        assert str(folder / name) in r.stderr
    assert r.stderr.rstrip().endswith("then run this command again.")
    assert (tmp_path / "sanet-demo" / "content.png").is_file() and not (tmp_path / "sanet-demo" / "stylized.png").exists()
    r = _demo(tmp_path, "--no-download", sources=sources)
    assert r.returncode == 2 and "source 1" not in r.stderr and str(folder / "vgg_normalised.pth") in r.stderr


def test_npy_progress_ends_at_100(files, synthetic_weights):
    r = sanet("stylize", "c.png", "--style", "s1.png", "--weights", synthetic_weights, "-o", "p.npy", cwd=files)
    assert r.returncode == 0 and "100% done" in r.stderr, r.stderr
