"""The model choice through the protocol (feature "models"): a real sanetd with both models' files runs AdaAttN
exactly as the engine does in-process, loads it lazily, keeps a style's cached features per model, lists the
installed models in hello; a model it cannot run is one `model_unavailable` error naming the files, and the daemon
keeps serving."""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

import sanet
from daemon_kit import RawPeer, array_of, layer_of, rgba, style_of, terminal_for, raw_stylize
from sanet_client import Client, JobFailed, Labels, StylePixels, StyleRef
from sanet_client import protocol as P
from sanetd_process import running_sanetd

SIZE = (48, 40)   # content w, h


@pytest.fixture(scope="module")
def both(tmp_path_factory, adaattn_weights):
    """sanetd with SANet's and AdaAttN's files in its weights folder."""
    with running_sanetd(tmp_path_factory.mktemp("sanetd_models"), adaattn_weights) as d:
        yield d


@pytest.fixture
def client(both):
    c = Client(connection_file=both.connection_file, timeout=30.0)
    yield c
    c.close()


@pytest.fixture(scope="module")
def ada(adaattn_weights):
    return sanet.Stylizer(adaattn_weights, device="cpu", model="adaattn")


def models_of(hello):
    return {m["name"]: m for m in P.hello_models(hello)}


def test_hello_lists_the_installed_models_and_adaattn_loads_lazily(client, ada):
    h = client.hello()
    assert "models" in h["features"]
    assert h["defaults"]["model"] == "sanet" and h["defaults"]["style_keys"] == "sampled"
    listed = models_of(h)
    assert list(listed) == ["sanet", "adaattn"]
    assert listed["adaattn"]["title"] == "AdaAttN (Liu et al., ICCV 2021)"
    assert listed["sanet"]["loaded"] is True and listed["adaattn"]["loaded"] is False   # only SANet at start-up
    content, style = rgba(*SIZE, 1), rgba(40, 40, 2)
    stages = []
    result = client.stylize(layer_of(content), [style_of(style)], model="adaattn", alpha=0.8,
                            on_progress=lambda f, s: stages.append(s))
    assert stages[0] == "loading model" and stages[-1] == "done"
    np.testing.assert_array_equal(array_of(result, np.uint8),
                                  ada.stylize(content, [sanet.Style(style)], alpha=0.8))
    assert result.info["model"] == "adaattn"
    assert models_of(client.hello())["adaattn"]["loaded"] is True
    stages.clear()
    client.stylize(layer_of(content), [style_of(style)], model="adaattn", on_progress=lambda f, s: stages.append(s))
    assert "loading model" not in stages                 # loaded once


def test_every_control_and_style_keys_all_equal_the_engine(client, ada):
    content, s1, s2 = rgba(*SIZE, 3, np.uint16), rgba(272, 272, 4), rgba(32, 48, 5)
    region = np.zeros((SIZE[1], SIZE[0]), np.float32)
    region[:, : SIZE[0] // 2] = 1.0
    from sanet_client import Mask
    mask = Mask(SIZE[0], SIZE[1], "f32", region.tobytes())
    inv = Mask(SIZE[0], SIZE[1], "f32", (1 - region).tobytes())
    for keys in ("sampled", "all"):
        result = client.stylize(layer_of(content), [style_of(s1, 2.0, mask), style_of(s2, 1.0, inv)], alpha=0.7,
                                preserve_color=True, model="adaattn", style_keys=keys)
        want = ada.stylize(content, [sanet.Style(s1, 2.0, region), sanet.Style(s2, 1.0, 1 - region)], alpha=0.7,
                           preserve_color=True, style_keys=keys)
        np.testing.assert_array_equal(array_of(result, np.uint16), want)
    assert not np.array_equal(want, ada.stylize(content, [sanet.Style(s1, 2.0, region), sanet.Style(s2, 1.0, 1 - region)],
                                                alpha=0.7, preserve_color=True))   # "all" differs from "sampled"


def test_labels_with_adaattn_equal_the_engine_and_a_wrong_size_is_named(client, ada):
    content, style = rgba(*SIZE, 6), rgba(32, 32, 7)
    cl = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    cl[:, SIZE[0] // 2:] = 1
    sl = np.zeros((32, 32), np.uint8)
    sl[16:] = 1
    sp = StylePixels(32, 32, "rgba8", style.tobytes(), labels=Labels(32, 32, "u8", sl.tobytes()))
    result = client.stylize(layer_of(content), [sp], content_labels=Labels(SIZE[0], SIZE[1], "u8", cl.tobytes()),
                            model="adaattn")
    want = ada.stylize(content, [sanet.Style(style, labels=sl)], content_labels=cl)
    np.testing.assert_array_equal(array_of(result, np.uint8), want)
    bad = StylePixels(32, 32, "rgba8", style.tobytes(), labels=Labels(32, 30, "u8", sl[:30].tobytes()))
    with pytest.raises(JobFailed) as exc:
        client.stylize(layer_of(content), [bad], content_labels=Labels(SIZE[0], SIZE[1], "u8", cl.tobytes()),
                       model="adaattn")
    assert exc.value.code == "bad_request" and exc.value.field == "styles[0].labels"


def test_a_library_style_is_cached_per_model(client, ada, adaattn_weights):
    """The same library style alternately with both models: each result is its own model's (no features of one
    model ever reach the other)."""
    style = rgba(40, 40, 8)
    sid = client.styles_add("both models", style_of(style))["id"]
    content = rgba(*SIZE, 9)
    engine_sanet = sanet.Stylizer(adaattn_weights, device="cpu")
    want = {"sanet": engine_sanet.stylize(content, [sanet.Style(style)]),
            "adaattn": ada.stylize(content, [sanet.Style(style)])}
    assert not np.array_equal(want["sanet"], want["adaattn"])
    for model in ("adaattn", "sanet", "adaattn", "sanet"):
        result = client.stylize(layer_of(content), [StyleRef(sid)], model=model)
        np.testing.assert_array_equal(array_of(result, np.uint8), want[model])
    client.styles_remove(sid)


def test_an_unknown_model_or_style_keys_is_a_bad_request(both):
    peer = RawPeer(both.connection_file)
    try:
        for field, value in (("model", "adain"), ("style_keys", "most"), ("model", 3)):
            h = raw_stylize(peer, f"bad-{field}-{value}", rgba(16, 16, 1), rgba(16, 16, 2), **{field: value})
            header, _ = peer.recv_until(lambda x: x.get("reply_to") == h["msg_id"])
            assert header["type"] == "error" and header["code"] == "bad_request" and header["field"] == field
            assert field in header["message"] and "\n" not in header["message"]
    finally:
        peer.close()


# ----------------------------------------------------------------------------------- models it cannot run

def test_a_model_without_its_files_is_one_error_naming_them(tmp_path, synthetic_weights):
    """SANet's files only: hello lists SANet alone; AdaAttN is refused at once, naming the three missing files;
    the daemon keeps serving SANet."""
    with running_sanetd(tmp_path, synthetic_weights) as d, Client(connection_file=d.connection_file,
                                                                   timeout=30.0) as c:
        assert list(models_of(c.hello())) == ["sanet"]
        with pytest.raises(JobFailed) as exc:
            c.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))], model="adaattn")
        e = exc.value
        assert e.code == "model_unavailable" and e.field == "model"
        for name in ("latest_net_transformer.pth", "latest_net_decoder.pth", "latest_net_adaattn_3.pth"):
            assert name in str(e)
        assert str(synthetic_weights) in str(e) and "sanet weights install --model adaattn" in str(e)
        assert "\n" not in str(e)
        peer = RawPeer(d.connection_file)
        try:
            h = raw_stylize(peer, "raw-ada", rgba(16, 16, 1), rgba(16, 16, 2), model="adaattn")
            header, _ = peer.recv_until(lambda x: x.get("reply_to") == h["msg_id"])
            assert header["code"] == "model_unavailable" and header["missing"] == [
                "latest_net_transformer.pth", "latest_net_decoder.pth", "latest_net_adaattn_3.pth"]
        finally:
            peer.close()
        assert c.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))]).info["model"] == "sanet"


def test_a_daemon_with_only_adaattn_serves_adaattn(tmp_path, adaattn_weights):
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in ("vgg_normalised.pth", "latest_net_transformer.pth", "latest_net_decoder.pth",
                 "latest_net_adaattn_3.pth"):
        os.link(adaattn_weights / name, folder / name)
    with running_sanetd(tmp_path, folder) as d, Client(connection_file=d.connection_file, timeout=30.0) as c:
        listed = models_of(c.hello())
        assert list(listed) == ["adaattn"] and listed["adaattn"]["loaded"] is True
        with pytest.raises(JobFailed) as exc:                # a request without "model" means SANet
            c.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))])
        assert exc.value.code == "model_unavailable" and "decoder_iter_500000.pth" in str(exc.value)
        assert c.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))],
                         model="adaattn").info["model"] == "adaattn"


def test_mixed_and_truncated_files_are_named_and_the_daemon_keeps_serving(tmp_path, adaattn_weights):
    folder = tmp_path / "weights"
    shutil.copytree(adaattn_weights, folder)
    decoder = folder / "latest_net_decoder.pth"
    decoder.write_bytes((adaattn_weights / "decoder_iter_500000.pth").read_bytes())   # SANet's decoder as AdaAttN's
    with running_sanetd(tmp_path, folder) as d, Client(connection_file=d.connection_file, timeout=30.0) as c:
        assert "adaattn" in models_of(c.hello())          # present (a broken file is found when it loads)
        with pytest.raises(JobFailed) as exc:
            c.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))], model="adaattn")
        assert exc.value.code == "model_unavailable" and exc.value.field == "model"
        assert str(decoder) in str(exc.value) and "the file holds SANet's decoder_iter_500000.pth" in str(exc.value)
        whole = (adaattn_weights / "latest_net_decoder.pth").read_bytes()
        decoder.write_bytes(whole[: len(whole) // 3])                                  # a cut download
        with pytest.raises(JobFailed, match="not a readable checkpoint") as exc:
            c.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))], model="adaattn")
        assert exc.value.code == "model_unavailable"
        decoder.write_bytes(whole)                                                     # fixed: runs now
        assert c.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))],
                         model="adaattn").info["model"] == "adaattn"
        assert c.stylize(layer_of(rgba(16, 16, 1)), [style_of(rgba(16, 16, 2))]).info["model"] == "sanet"


def test_after_an_idle_unload_only_the_model_asked_for_loads(tmp_path, adaattn_weights, ada):
    """--keep-alive 0: the models are unloaded after every job; the next job loads just the model it names."""
    with running_sanetd(tmp_path, adaattn_weights, "--keep-alive", "0") as d, \
            Client(connection_file=d.connection_file, timeout=30.0) as c:
        content, style = rgba(24, 16, 11), rgba(32, 32, 12)
        c.stylize(layer_of(content), [style_of(style)])                 # SANet, then unloaded (just after the result)
        end = time.monotonic() + 30
        while any(m["loaded"] for m in P.hello_models(c.hello())) and time.monotonic() < end:
            time.sleep(0.1)
        assert all(not m["loaded"] for m in P.hello_models(c.hello()))
        stages = []
        result = c.stylize(layer_of(content), [style_of(style)], model="adaattn", on_progress=lambda f, s: stages.append(s))
        assert stages[0] == "loading model"
        np.testing.assert_array_equal(array_of(result, np.uint8), ada.stylize(content, [sanet.Style(style)]))
        after = d.log_text().split("model unloaded (keep-alive 0)", 1)[1]   # after the SANet job's unload
        assert "adaattn loaded on cpu" in after and "sanet loaded on cpu" not in after
