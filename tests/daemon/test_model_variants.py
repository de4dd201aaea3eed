"""A fine-tuned model variant (MODEL:NAME, installed by `sanet weights install RUN_DIR`) is selectable everywhere: a
real sanetd lists it in hello (base model, display name) and runs it exactly as the library does; `sanet stylize
--model sanet:NAME` and `sanet-client stylize --model sanet:NAME` write the library's result; the editors' model row
(sanet_client.naming, built from hello) shows it; a variant that is missing or broken is one `model_unavailable`
error naming the files, and the daemon keeps serving."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import sanet
from daemon_kit import RawPeer, array_of, layer_of, raw_stylize, rgba, style_of
from sanet_client import Client, JobFailed, naming
from sanet_client import protocol as P
from sanetd_process import PYTHONPATH, running_sanetd
from synthetic import weights_with_variants

SIZE = (48, 40)


def run(module, *args, env=None, cwd=None):
    env = dict(env or os.environ, PYTHONPATH=os.pathsep.join(PYTHONPATH))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def weights(tmp_path_factory, adaattn_weights):
    """Both released models plus sanet:ink and adaattn:wash, installed from synthetic training runs by the CLI."""
    return weights_with_variants(tmp_path_factory.mktemp("variant_weights"), adaattn_weights,
                                 [("sanet", "ink", 77), ("adaattn", "wash", 78)])


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, weights):
    with running_sanetd(tmp_path_factory.mktemp("sanetd_variants"), weights) as d:
        yield d


@pytest.fixture
def client(daemon):
    c = Client(connection_file=daemon.connection_file, timeout=60.0)
    yield c
    c.close()


def test_hello_lists_the_variants_and_the_model_row_shows_them(client):
    listed = P.hello_models(client.hello())
    assert [m["name"] for m in listed] == ["sanet", "adaattn", "adaattn:wash", "sanet:ink"]
    ink = {m["name"]: m for m in listed}["sanet:ink"]
    assert ink["base"] == "sanet" and ink["display"] == "SANet · ink" and ink["variant"] == "ink"
    assert ink["title"] == "SANet (Park & Lee, CVPR 2019) — ink" and ink["loaded"] is False
    # the GIMP dialog's and Krita docker's Model row: sanet_client.naming from hello's names
    rows = naming.model_choices([m["name"] for m in listed])
    assert ("sanet:ink", "sampled", "SANet · ink") in rows
    assert ("adaattn:wash", "sampled", "AdaAttN · wash") in rows
    assert ("adaattn:wash", "all", "AdaAttN · wash full attention") in rows
    assert not any(text.endswith(naming.NOT_INSTALLED) for _, _, text in rows)
    assert naming.model_choice("sanet:ink", "all") == ("sanet:ink", "sampled")   # SANet's ignore style keys


@pytest.mark.parametrize("model", ["sanet:ink", "adaattn:wash"])
def test_a_variant_through_sanetd_equals_the_library(client, weights, model):
    content, style = rgba(*SIZE, 1), rgba(40, 40, 2)
    stages = []
    result = client.stylize(layer_of(content), [style_of(style)], model=model, alpha=0.9,
                            on_progress=lambda f, s: stages.append(s))
    assert stages[0] == "loading model" and result.info["model"] == model
    st = sanet.Stylizer(weights, device="cpu", model=model)
    want = st.stylize(content, [sanet.Style(style)], alpha=0.9)
    np.testing.assert_array_equal(array_of(result, np.uint8), want)
    base = sanet.Stylizer(weights, device="cpu", model=P.split_model(model)[0])
    assert not np.array_equal(want, base.stylize(content, [sanet.Style(style)], alpha=0.9))   # really another net
    assert {m["name"]: m for m in P.hello_models(client.hello())}[model]["loaded"] is True


def test_the_clis_take_a_variant(daemon, weights, tmp_path):
    rng = np.random.default_rng(5)
    sanet.save_image(tmp_path / "c.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    sanet.save_image(tmp_path / "s.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    r = run("sanet.cli", "stylize", "c.png", "--style", "s.png", "--model", "sanet:ink", "--weights", weights,
            "--device", "cpu", "-o", "lib.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "SANet · ink on cpu" in r.stderr
    r = run("sanet_client.cli", "stylize", "c.png", "--style", "s.png", "--model", "sanet:ink", "-o", "client.png",
            env=daemon.env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    want = sanet.Stylizer(weights, device="cpu", model="sanet:ink").stylize(
        sanet.load_image(tmp_path / "c.png"), [sanet.Style(sanet.load_image(tmp_path / "s.png"))])
    np.testing.assert_array_equal(sanet.load_image(tmp_path / "lib.png"), want)
    np.testing.assert_array_equal(sanet.load_image(tmp_path / "client.png"), want)
    for module, extra in (("sanet.cli", ["--weights", weights]), ("sanet_client.cli", [])):
        r = run(module, "stylize", "c.png", "--style", "s.png", "--model", "sanet:nope", *extra, "-o", "x.png",
                env=daemon.env, cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        lines = r.stderr.strip().splitlines()
        assert "sanet:nope" in lines[-1] and "installed" in lines[-1] and "sanet:ink" in lines[-1], r.stderr
        assert not (tmp_path / "x.png").exists()


def test_a_missing_variant_is_one_model_unavailable_naming_its_files(client, daemon, weights):
    with pytest.raises(JobFailed) as exc:
        client.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))], model="sanet:nope")
    e = exc.value
    assert e.code == "model_unavailable" and e.field == "model" and "\n" not in str(e)
    assert str(weights / "variants" / "sanet" / "nope") in str(e)
    assert "installed variants: adaattn:wash, sanet:ink" in str(e) and "sanet weights install RUN_DIR" in str(e)
    peer = RawPeer(daemon.connection_file)
    try:
        h = raw_stylize(peer, "raw-nope", rgba(16, 16, 1), rgba(16, 16, 2), model="sanet:nope")
        header, _ = peer.recv_until(lambda x: x.get("reply_to") == h["msg_id"])
        assert header["code"] == "model_unavailable" and header["missing"] == [
            "variants/sanet/nope/variant.json", "variants/sanet/nope/decoder_iter_500000.pth",
            "variants/sanet/nope/transformer_iter_500000.pth"]
        for bad in ("sanet:Ink", "adain:ink", "sanet:" + "x" * 65):   # not a model value: the protocol's check
            h = raw_stylize(peer, f"bad-{len(bad)}-{bad[:9]}", rgba(16, 16, 1), rgba(16, 16, 2), model=bad)
            header, _ = peer.recv_until(lambda x: x.get("reply_to") == h["msg_id"])
            assert header["code"] == "bad_request" and header["field"] == "model", header
            assert P.model_problem(bad) in header["message"]
    finally:
        peer.close()


def test_a_broken_variant_names_its_file_and_the_daemon_keeps_serving(client, weights, tmp_path):
    folder = weights / "variants" / "sanet" / "cut"
    folder.mkdir()
    (folder / "variant.json").write_text('{"format": "sanet-model-variant/1", "model": "sanet", "name": "cut"}')
    whole = (weights / "variants" / "sanet" / "ink" / "decoder_iter_500000.pth").read_bytes()
    (folder / "decoder_iter_500000.pth").write_bytes(whole[: len(whole) // 3])      # a cut copy
    try:
        # half there: not listed, and refused naming the absent file
        assert "sanet:cut" not in [m["name"] for m in P.hello_models(client.hello())]
        with pytest.raises(JobFailed) as exc:
            client.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))], model="sanet:cut")
        assert exc.value.code == "model_unavailable" and "variants/sanet/cut/transformer_iter_500000.pth" in str(
            exc.value) and "\n" not in str(exc.value)
        os.link(weights / "variants" / "sanet" / "ink" / "transformer_iter_500000.pth",
                folder / "transformer_iter_500000.pth")
        # all there, one truncated: listed; the load names the file
        assert "sanet:cut" in [m["name"] for m in P.hello_models(client.hello())]
        with pytest.raises(JobFailed, match="not a readable checkpoint") as exc:
            client.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))], model="sanet:cut")
        assert exc.value.code == "model_unavailable" and exc.value.field == "model"
        assert str(folder / "decoder_iter_500000.pth") in str(exc.value)
        assert client.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))],
                              model="sanet:ink").info["model"] == "sanet:ink"
    finally:
        import shutil
        shutil.rmtree(folder)
