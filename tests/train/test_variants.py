"""Fine-tuning (--init, --freeze) and the result as a model variant: `sanet weights install RUN_DIR` → MODEL:NAME that
Stylizer loads (the same images as the run's files installed flat), listed, replaced whole, removed; one clear line for
what cannot be installed."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from train_helpers import FAST, sanet, smooth_batch, weights_args


@pytest.fixture(scope="module")
def installed(runs, tmp_path_factory):
    """A weights folder with nothing but the two runs installed as variants (the VGG comes with the first)."""
    folder = tmp_path_factory.mktemp("variants_weights")
    for model in ("sanet", "adaattn"):
        run, _ = runs[model]
        r = sanet("weights", "install", run, "--weights", folder, cwd=run.parent)
        assert r.returncode == 0, r.stderr
        assert f"{model}:run_{model}: installed iteration" in r.stdout
    return folder


def image(seed, h, w):
    return smooth_batch(1, max(h, w), seed)[0, :, :h, :w].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("model", ["sanet", "adaattn"])
def test_an_installed_run_stylizes_as_model_variant(installed, runs, tmp_path, model):
    from sanet import Stylizer
    from sanet.models import get_model
    from sanet.train.checkpoint import checkpoint_names
    run, _ = runs[model]
    vid = f"{model}:run_{model}"
    folder = installed / "variants" / model / f"run_{model}"
    info = json.loads((folder / "variant.json").read_text())
    assert info["model"] == model and info["name"] == f"run_{model}" and info["iteration"] == (4 if model == "sanet"
                                                                                             else 5)
    # the same files, flat, as the released model: the reference
    flat = tmp_path / "flat"
    flat.mkdir()
    os.link(installed / "vgg_normalised.pth", flat / "vgg_normalised.pth")
    base = get_model(model)
    for role, name in checkpoint_names(model, info["iteration"]).items():
        shutil.copyfile(run / name, flat / base.files[role])
        assert (folder / base.files[role]).read_bytes() == (run / name).read_bytes()
    c, s = image(1, 40, 56), image(2, 48, 48)
    st = Stylizer(installed, device="cpu", model=vid)
    assert st.model.name == vid
    got = st.stylize_raw(c, [s])
    want = Stylizer(flat, device="cpu", model=model).stylize_raw(c, [s])
    np.testing.assert_array_equal(got, want)
    assert {"sanet:run_sanet", "adaattn:run_adaattn"} <= set(st.available_models())
    assert st.last_info["model"] == vid


def test_install_a_checkpoint_file_replace_remove_and_status(installed, runs):
    run, _ = runs["sanet"]
    r = sanet("weights", "install", run / "decoder_iter_2.pth", "--name", "early", "--weights", installed,
              cwd=run.parent)
    assert r.returncode == 0, r.stderr
    early = installed / "variants" / "sanet" / "early"
    assert (early / "transformer_iter_500000.pth").read_bytes() == (run / "transformer_iter_2.pth").read_bytes()
    # again with another iteration: replaced whole, no staging folder left behind
    r = sanet("weights", "install", run, "--name", "early", "--iteration", "4", "--weights", installed, cwd=run.parent)
    assert r.returncode == 0, r.stderr
    assert (early / "decoder_iter_500000.pth").read_bytes() == (run / "decoder_iter_4.pth").read_bytes()
    assert json.loads((early / "variant.json").read_text())["iteration"] == 4
    assert sorted(p.name for p in early.parent.iterdir()) == ["early", "run_sanet"]
    r = sanet("weights", "status", "--json", "--weights", installed, cwd=run.parent)
    ids = {v["id"]: v for v in json.loads(r.stdout)["variants"]}
    assert {"sanet:early", "sanet:run_sanet", "adaattn:run_adaattn"} <= set(ids) and ids["sanet:early"]["usable"]
    r = sanet("weights", "status", "--weights", installed, cwd=run.parent)
    assert "variant sanet:early: usable, iteration 4 of" in r.stdout
    r = sanet("weights", "remove", "sanet:early", "--weights", installed, cwd=run.parent)
    assert r.returncode == 0 and not early.exists()
    from sanet import Stylizer
    from sanet.errors import WeightsError
    with pytest.raises(WeightsError) as exc:
        Stylizer(installed, device="cpu", model="sanet:early")
    assert "no variant 'sanet:early' is installed" in str(exc.value) and "sanet:run_sanet" in str(exc.value)


@pytest.mark.parametrize("args,needle", [
    (["RUN", "--iteration", "3"], "no complete checkpoint of iteration 3 (there are: 2, 4)"),
    (["RUN", "--name", "Bad Name"], "a variant name uses lower-case letters"),
    (["RUN", "--model", "adaattn"], "is not of --model adaattn"),
    (["RUN/run.json"], "not a checkpoint file of the training run"),
])
def test_what_cannot_be_installed_gives_one_line(installed, runs, args, needle, tmp_path):
    run, _ = runs["sanet"]
    (tmp_path / "w").mkdir()
    args = [str(a).replace("RUN", str(run)) for a in args]
    r = sanet("weights", "install", *args, "--weights", tmp_path / "w", cwd=run.parent)
    errors = [line for line in r.stderr.splitlines() if line.startswith("sanet: error:")]
    assert r.returncode == 2 and len(errors) == 1 and needle in errors[0], r.stderr
    assert not (tmp_path / "w" / "variants").exists() or not any((tmp_path / "w" / "variants").rglob("*.pth"))


def test_fine_tune_from_installed_weights_with_a_frozen_transformer(data, adaattn_weights):
    """--init starts from the installed files (the first logged loss is theirs on batch 0), --freeze keeps the
    transformer bit for bit while the decoder changes; the result installs and selects as sanet:my-style."""
    out = data / "finetune"
    r = sanet("train", *weights_args("sanet", adaattn_weights), "--init", adaattn_weights, "--freeze", "transformer",
              "--content", "content", "--style", "style", "--out", out, "--iterations", 2, "--save-every", 2,
              "--preview-every", 0, "--name", "my-style", *FAST, cwd=data)
    assert r.returncode == 0, r.stderr
    assert "networks trained: decoder (frozen: transformer)" in r.stderr
    init_t = torch.load(adaattn_weights / "transformer_iter_500000.pth", weights_only=True)
    init_d = torch.load(adaattn_weights / "decoder_iter_500000.pth", weights_only=True)
    t = torch.load(out / "transformer_iter_2.pth", weights_only=True)
    d = torch.load(out / "decoder_iter_2.pth", weights_only=True)
    assert all(torch.equal(t[k], init_t[k]) for k in init_t)
    assert any(not torch.equal(d[k], init_d[k]) for k in init_d)
    # the first loss is the installed networks' on batch 0
    from sanet.models import losses as L
    from sanet.train import data as D
    from train_helpers import engine_networks
    lists = json.loads((out / "data.json").read_text())
    batch = D.Batches(D.ImageList.from_dict(lists["content"]), D.ImageList.from_dict(lists["style"]), 1, 48, 32,
                      False, 3, 2)[0]
    model, nets, stages = engine_networks(adaattn_weights, "sanet")
    with torch.no_grad():
        parts, _ = L.sanet_losses(model, nets, stages, batch["content"], batch["style"])
    first = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    for k, v in parts.items():
        assert first[k] == pytest.approx(float(v), rel=1e-4), k
    # installs as the named variant, usable at once
    folder = data / "finetune_weights"
    r = sanet("weights", "install", out, "--weights", folder, cwd=data)
    assert r.returncode == 0 and "select it as the model sanet:my-style" in r.stdout, r.stderr
    from sanet import Stylizer
    img = Stylizer(folder, device="cpu", model="sanet:my-style").stylize(image(3, 32, 48), [image(4, 32, 32)])
    assert img.shape == (32, 48, 3)
