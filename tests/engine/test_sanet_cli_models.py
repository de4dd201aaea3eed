"""`sanet stylize --model sanet|adaattn --style-keys sampled|all`: the model choice from the command line, against
the library, and every bad input about models as one line with exit code 2 (checked before any work where it can be).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine_helpers import smooth_image
from sanet import Style, Stylizer, load_image, save_image

ROOT = Path(__file__).resolve().parents[2]


def sanet(*args, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    return subprocess.run([sys.executable, "-m", "sanet.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def one_error_line(r, needle):
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln]) == 1, r.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_models")
    save_image(d / "c.png", (smooth_image(48, 80, seed=61, channels=4) * 255).astype(np.uint8))
    save_image(d / "s.png", (smooth_image(64, 64, seed=62) * 255).astype(np.uint8))
    # 272² px: 68² relu3_1 positions > 64², so AdaAttN's released subsampling applies
    save_image(d / "big.png", (smooth_image(272, 272, seed=63) * 255).astype(np.uint8))
    save_image(d / "cl.png", np.where(np.arange(80)[None, :] < 40, 1, 2).astype(np.uint8).repeat(48, 0))
    save_image(d / "sl.png", np.where(np.arange(64)[:, None] < 32, 1, 2).astype(np.uint8).repeat(64, 1))
    save_image(d / "sl_wrong.png", np.ones((40, 64), np.uint8))
    return d


@pytest.fixture(scope="module")
def ada_cli(adaattn_weights):
    return Stylizer(adaattn_weights, device="cpu", model="adaattn")


def test_model_adaattn_equals_the_library(files, adaattn_weights, ada_cli):
    r = sanet("stylize", "c.png", "--style", "s.png", "--model", "adaattn", "--alpha", "0.7", "--device", "cpu",
              "--weights", adaattn_weights, "-o", "ada.png", cwd=files)
    assert r.returncode == 0, r.stderr
    assert "AdaAttN on cpu" in r.stderr
    ref = ada_cli.stylize(load_image(files / "c.png"), [load_image(files / "s.png")], alpha=0.7)
    np.testing.assert_array_equal(load_image(files / "ada.png"), ref)
    # the default model is SANet, even with AdaAttN's files in the folder
    r = sanet("stylize", "c.png", "--style", "s.png", "--weights", adaattn_weights, "-o", "default.npy", cwd=files)
    assert r.returncode == 0, r.stderr
    sanet_ref = Stylizer(adaattn_weights, device="cpu").stylize_raw(load_image(files / "c.png"),
                                                                     [load_image(files / "s.png")])
    np.testing.assert_array_equal(np.load(files / "default.npy"), sanet_ref)


def test_style_keys_all_is_full_attention(files, adaattn_weights, ada_cli):
    outs = {}
    for keys in ("sampled", "all"):
        r = sanet("stylize", "c.png", "--style", "big.png", "--model", "adaattn", "--style-keys", keys,
                  "--weights", adaattn_weights, "-o", f"keys_{keys}.npy", cwd=files)
        assert r.returncode == 0, r.stderr
        outs[keys] = np.load(files / f"keys_{keys}.npy")
        ref = ada_cli.stylize_raw(load_image(files / "c.png"), [load_image(files / "big.png")], style_keys=keys)
        np.testing.assert_array_equal(outs[keys], ref)
    assert np.abs(outs["all"] - outs["sampled"]).max() > 1e-3      # the subsampling made a difference here


def test_semantic_labels_with_adaattn_equal_the_library(files, adaattn_weights, ada_cli):
    r = sanet("stylize", "c.png", "--style", "s.png", "--model", "adaattn", "--content-labels", "cl.png",
              "--style-labels", "sl.png", "--scsa-weights", "0.6,0.4", "--weights", adaattn_weights,
              "-o", "ada_sem.png", cwd=files)
    assert r.returncode == 0, r.stderr
    ref = ada_cli.stylize(load_image(files / "c.png"), [Style(load_image(files / "s.png"),
                                                              labels=load_image(files / "sl.png"))],
                          content_labels=load_image(files / "cl.png"), scsa_weights=(0.6, 0.4))
    np.testing.assert_array_equal(load_image(files / "ada_sem.png"), ref)


@pytest.mark.parametrize("args,needle", [
    (["--model", "adain"], "argument --model: unknown model 'adain': expected one of sanet, adaattn, or a variant"),
    (["--model", "sanet:Bad Name"], "argument --model: model 'sanet:Bad Name': a variant name uses lower-case"),
    (["--style-keys", "some"], "argument --style-keys: invalid choice: 'some'"),
    (["--model", "adaattn", "--content-labels", "cl.png", "--style-labels", "sl_wrong.png"],
     "style 1 label map: size 64×40 does not match"),
])
def test_bad_model_options_are_one_line_exit_2(files, adaattn_weights, args, needle):
    r = sanet("stylize", "c.png", "--style", "s.png", *args, "--weights", adaattn_weights, "-o", "bad.png", cwd=files)
    one_error_line(r, needle)
    assert not (files / "bad.png").exists()


def test_model_not_installed_names_the_missing_files(files, synthetic_weights):
    r = sanet("stylize", "c.png", "--style", "s.png", "--model", "adaattn", "--weights", synthetic_weights,
              "-o", "bad.png", cwd=files)
    one_error_line(r, "latest_net_transformer.pth: checkpoint file is missing, and so are latest_net_decoder.pth, "
                      "latest_net_adaattn_3.pth")
    assert f"in {synthetic_weights}" in r.stderr and "sanet weights install --model adaattn" in r.stderr


def test_mixed_and_truncated_files_name_the_file(files, adaattn_weights, tmp_path):
    for f in adaattn_weights.iterdir():
        os.link(f, tmp_path / f.name)
    mixed = tmp_path / "latest_net_decoder.pth"          # SANet's decoder given as AdaAttN's
    mixed.unlink()
    mixed.write_bytes((adaattn_weights / "decoder_iter_500000.pth").read_bytes())
    r = sanet("stylize", "c.png", "--style", "s.png", "--model", "adaattn", "--weights", tmp_path, "-o", "bad.png",
              cwd=files)
    one_error_line(r, f"{mixed}: missing key(s)")
    assert "the file holds SANet's decoder_iter_500000.pth" in r.stderr
    mixed.unlink()
    whole = (adaattn_weights / "latest_net_decoder.pth").read_bytes()
    mixed.write_bytes(whole[: len(whole) // 2])          # a download cut in half
    r = sanet("stylize", "c.png", "--style", "s.png", "--model", "adaattn", "--weights", tmp_path, "-o", "bad.png",
              cwd=files)
    one_error_line(r, f"{mixed}: not a readable checkpoint (truncated or corrupt?)")
    # SANet from the same folder is unaffected
    r = sanet("stylize", "c.png", "--style", "s.png", "--weights", tmp_path, "-o", "sanet_ok.png", cwd=files)
    assert r.returncode == 0, r.stderr


def test_protocol_and_engine_name_the_same_models():
    from sanet import MODELS
    from sanet.models import DEFAULT_MODEL
    from sanet.models.base import STYLE_KEYS
    from sanet_client import protocol as P
    assert list(MODELS) == list(P.MODELS) and DEFAULT_MODEL == P.DEFAULT_MODEL
    assert all(MODELS[m].title.split(" ")[0] == P.MODELS[m] for m in MODELS)    # "AdaAttN (Liu et al., …)"
    assert STYLE_KEYS is P.STYLE_KEYS
