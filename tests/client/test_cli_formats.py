"""`sanet-client stylize` keeps every pixel as `sanet stylize` does: for every input kind (gray, gray+alpha, RGB,
RGBA; 8-bit, 16-bit, float) and every output kind (.png, .tif, .npy) the two commands write the same file — same
shape, same sample type, same values — against a real sanetd on synthetic weights. Bad output paths and bad inputs
are refused before anything is sent, with sanet's exit code 2."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from sanet import cli as sanet_cli
from sanet_client import cli as client_cli
from sanet_client import imagefiles as F
from sanetd_process import PYTHONPATH, running_sanetd

H, W = 28, 40


def smooth(h, w, c, seed):
    rng = np.random.default_rng(seed)
    low = rng.random((h // 4 + 2, w // 4 + 2, c))
    y = np.linspace(0, low.shape[0] - 1.01, h)
    x = np.linspace(0, low.shape[1] - 1.01, w)
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None, None], (x - x0)[None, :, None]
    a = low[y0][:, x0] * (1 - fx) + low[y0][:, x0 + 1] * fx
    b = low[y0 + 1][:, x0] * (1 - fx) + low[y0 + 1][:, x0 + 1] * fx
    return a * (1 - fy) + b * fy


def as_dtype(img, dtype):
    if dtype == np.uint8:
        return (img * 255 + 0.5).astype(np.uint8)
    if dtype == np.uint16:
        return (img * 65535 + 0.5).astype(np.uint16)
    return img.astype(dtype)


# name → (file name, array): every layout and sample type the commands accept
def inputs():
    out = {}
    for dtype, tag in ((np.uint8, "8"), (np.uint16, "16")):
        out[f"gray{tag}"] = (f"gray{tag}.png", as_dtype(smooth(H, W, 1, 1)[:, :, 0], dtype))
        out[f"rgb{tag}"] = (f"rgb{tag}.png", as_dtype(smooth(H, W, 3, 2), dtype))
        out[f"rgba{tag}"] = (f"rgba{tag}.png", as_dtype(smooth(H, W, 4, 3), dtype))
    out["graya8"] = ("graya8.tif", as_dtype(smooth(H, W, 2, 4), np.uint8))
    out["rgbf32"] = ("rgbf32.tif", smooth(H, W, 3, 5).astype(np.float32) * 1.1 - 0.05)   # a little out of range
    out["rgbaf32"] = ("rgbaf32.tif", smooth(H, W, 4, 6).astype(np.float32))
    out["grayf32"] = ("grayf32.tif", smooth(H, W, 1, 7)[:, :, 0].astype(np.float32))
    out["rgbf64"] = ("rgbf64.npy", smooth(H, W, 3, 8))
    out["rgbaf16"] = ("rgbaf16.npy", smooth(H, W, 4, 9).astype(np.float16))
    return out


INPUTS = inputs()
CASES = [(name, ext) for name in INPUTS for ext in (".png", ".tif")] + \
        [(name, ".npy") for name in ("rgb8", "gray16", "rgbaf32")]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("formats")
    for name, (fname, arr) in INPUTS.items():
        if fname.endswith(".npy"):
            np.save(d / fname, arr)
        else:
            F.save_image(d / fname, arr)
    F.save_image(d / "style.png", as_dtype(smooth(32, 32, 3, 20), np.uint8))
    F.save_image(d / "style16.png", as_dtype(smooth(24, 36, 4, 21), np.uint16))
    sel = np.zeros((H, W), np.uint8)
    sel[4:22, 6:30] = 255
    sel[10:14, 10:20] = 100
    F.save_image(d / "sel.png", sel)
    # a float selection with values outside 0..1, NaN and ±inf: the engine and the daemon clamp the same way
    fsel = smooth(H, W, 1, 22)[:, :, 0].astype(np.float32) * 1.6 - 0.3
    fsel[0, :4] = [np.nan, np.inf, -np.inf, 2.0]
    tifffile.imwrite(d / "fsel.tif", fsel)
    return d


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, synthetic_weights):
    with running_sanetd(tmp_path_factory.mktemp("fmt-sanetd"), synthetic_weights) as d:
        yield d


def _main(fn, argv):
    try:
        return fn(argv)
    except SystemExit as exc:   # argparse's own errors
        return exc.code


def run_sanet(*args):
    """`sanet` in-process: the same main() the console script runs."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = _main(sanet_cli.main, [str(a) for a in args])
    return code, err.getvalue()


def run_client(daemon, *args):
    """`sanet-client` in-process, talking to the real daemon."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = _main(client_cli.main, ["--connection-file", str(daemon.connection_file), "--timeout", "60",
                                       *[str(a) for a in args]])
    return code, out.getvalue(), err.getvalue()


def same_file(a, b):
    x, y = F.load_image(a), F.load_image(b)
    assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, x.dtype, y.shape, y.dtype)
    np.testing.assert_array_equal(x, y)
    return x


@pytest.mark.parametrize("name,ext", CASES)
def test_client_writes_what_sanet_writes(files, daemon, synthetic_weights, name, ext):
    src = files / INPUTS[name][0]
    want, got = files / f"want-{name}{ext}", files / f"got-{name}{ext}"
    extra = ["--selection", files / "sel.png"] if name in ("rgba8", "gray16", "rgbf32") else []
    code, err = run_sanet("stylize", src, "--style", files / "style.png", "--alpha", "0.8", *extra,
                          "--weights", synthetic_weights, "--device", "cpu", "-o", want)
    assert code == 0, err
    code, out, err = run_client(daemon, "stylize", src, "--style", files / "style.png", "--alpha", "0.8", *extra,
                                "--progress", "-o", got)
    assert code == 0, err
    assert "100.0% done" in err                      # every output kind, .npy included, ends at 100 %
    result = same_file(want, got)
    content = F.load_image(src)
    if ext == ".npy":
        assert result.dtype == np.float32 and result.shape == (H, W, 3)
    else:
        channels = 1 if content.ndim == 2 else content.shape[2]
        assert (1 if result.ndim == 2 else result.shape[2]) == channels
        if ext == ".png" and content.dtype.kind == "f":
            assert result.dtype == np.uint16           # PNG holds float content as 16-bit, in both commands
        else:
            assert result.dtype == content.dtype
        if channels in (2, 4) and not (ext == ".png" and content.dtype.kind == "f"):
            np.testing.assert_array_equal(result[..., -1], content[..., -1])   # alpha bit-exact


def test_styles_masks_and_regions_of_every_kind(files, daemon, synthetic_weights):
    """A 16-bit RGBA style, a float selection with NaN/±inf/out-of-range values, and a 16-bit region."""
    F.save_image(files / "region16.png", (np.linspace(0, 65535, W)[None, :].repeat(H, 0)).astype(np.uint16))
    args = ["stylize", files / "rgb8.png", "--style", files / "style16.png", "--style", files / "style.png",
            "--style-weights", "0.3,0.7", "--region", files / "region16.png", "--region", files / "sel.png",
            "--selection", files / "fsel.tif", "--preserve-color"]
    code, err = run_sanet(*args, "--weights", synthetic_weights, "-o", files / "want-mix.png")
    assert code == 0, err
    code, out, err = run_client(daemon, *args, "-o", files / "got-mix.png")
    assert code == 0, err
    same_file(files / "want-mix.png", files / "got-mix.png")


@pytest.mark.parametrize("out_name,words", [
    ("x.jpg", "unsupported output format '.jpg'"),
    ("missing-folder/x.png", "output folder does not exist"),
])
def test_bad_output_path_is_refused_before_anything_is_sent(files, daemon, out_name, words):
    before = daemon_jobs(daemon)
    code, out, err = run_client(daemon, "stylize", files / "rgb8.png", "--style", files / "style.png",
                                "-o", files / out_name)
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert daemon_jobs(daemon) == before            # no job reached the daemon


def test_bad_inputs_exit_2_like_sanet(files, daemon, synthetic_weights):
    F.save_image(files / "small.png", np.zeros((8, 8), np.uint8))
    for args, words in [
        (["stylize", files / "nope.png", "--style", files / "style.png"], "nope.png: file not found"),
        (["stylize", files / "rgb8.png", "--style", files / "style.png", "--selection", files / "small.png"],
         "selection: size 8×8 does not match the content size 40×28"),
        (["stylize", files / "rgb8.png", "--style", files / "style.png", "--style-weights", "1,2"],
         "--style-weights has 2 value(s) for 1 style(s)"),
        (["stylize", files / "rgb8.png", "--style", files / "style.png", "--alpha", "3"], "out of range"),
    ]:
        code_s, err_s = run_sanet(*args, "--weights", synthetic_weights, "-o", files / "bad.png")
        code_c, _, err_c = run_client(daemon, *args, "-o", files / "bad.png")
        assert code_s == code_c == 2, (err_s, err_c)
        assert words in err_s and words in err_c, (err_s, err_c)
    # refused by the daemon as bad input (a library id that does not exist): exit code 2 as well
    code, _, err = run_client(daemon, "stylize", files / "rgb8.png", "--style", "id:0000000000000000",
                              "-o", files / "bad.png")
    assert code == 2 and "not in the style library" in err


def test_bad_input_is_reported_without_a_daemon_and_fast(files, tmp_path):
    """No daemon is needed to find a bad file: the command fails on the input, not on the connection."""
    env = dict(os.environ, SANETD_CONNECTION_FILE=str(tmp_path / "none.json"),
               PYTHONPATH=os.pathsep.join(PYTHONPATH))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "sanet_client.cli", "stylize", str(files / "rgb8.png"), "--style",
                        str(files / "style.png"), "-o", str(tmp_path / "out.gif")], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "unsupported output format '.gif'" in p.stderr
    assert "start it with" not in p.stderr
    assert time.monotonic() - t0 < 30   # generous: only to catch a hang, never a timing claim


def daemon_jobs(daemon) -> int:
    from sanet_client import Client
    with Client(connection_file=daemon.connection_file) as c:
        return c.status()["jobs_done"]
