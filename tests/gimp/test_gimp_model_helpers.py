"""Fast tests (no GIMP) of the GIMP plug-in's model choice: the procedure's model / style-keys arguments, the
dialog's model row, result names, remembered values, and the daemon line that says which models sanetd has."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "gimp" / "sanet-style"
sys.path.insert(0, str(PLUGIN))

import sanet_gimp_daemon as dm  # noqa: E402
import sanet_gimp_settings as st  # noqa: E402
from sanet_client import protocol as P  # noqa: E402


def test_the_model_arguments_default_to_sanet_and_are_checked():
    s = st.build_settings(style_file="/a.png")
    assert (s.model, s.style_keys) == ("sanet", "sampled")
    s = st.build_settings(style_file="/a.png", model=" AdaAttN ", style_keys="ALL")
    assert (s.model, s.style_keys) == ("adaattn", "all")
    assert st.build_settings(style_file="/a.png", model="", style_keys="").model == "sanet"   # empty: default
    with pytest.raises(st.SettingsError, match=r"^model: 'adain' is not a model; expected one of sanet, adaattn, "
                       r"or an installed variant MODEL:NAME \(e\.g\. sanet:my-style\)$"):
        st.build_settings(style_file="/a.png", model="adain")
    with pytest.raises(st.SettingsError, match=r"^style-keys: 'most'; expected one of sampled, all"):
        st.build_settings(style_file="/a.png", model="adaattn", style_keys="most")
    assert st.MODELS is P.MODELS and st.STYLE_KEYS is P.STYLE_KEYS      # one definition: the protocol's


def test_the_model_row_maps_to_the_arguments_and_back():
    ids = [cid for cid, _ in st.MODEL_CHOICES]
    assert ids == ["sanet:sampled", "adaattn:sampled", "adaattn:all"]
    assert [text for _, text in st.MODEL_CHOICES] == ["SANet", "AdaAttN", "AdaAttN full attention"]
    for cid in ids:
        args = st.model_args(cid)
        assert st.model_choice(args["model"], args["style-keys"]) == cid
    assert st.model_choice("sanet", "all") == "sanet:sampled"        # SANet has no subsampling: one entry
    assert st.model_choice("", "") == "sanet:sampled"
    assert st.model_args("adaattn:all") == {"model": "adaattn", "style-keys": "all"}
    with pytest.raises(st.SettingsError):
        st.model_args("adain:sampled")


def test_models_sanetd_lacks_are_marked_in_the_row():
    assert [t for _, t in st.model_choices(None)] == [t for _, t in st.MODEL_CHOICES]     # not known yet
    texts = dict(st.model_choices(["sanet"]))
    assert texts["sanet:sampled"] == "SANet"
    assert texts["adaattn:sampled"] == "AdaAttN (not installed)"
    assert texts["adaattn:all"] == "AdaAttN full attention (not installed)"
    assert dict(st.model_choices(["sanet", "adaattn"])) == dict(st.MODEL_CHOICES)


def test_result_layers_are_named_after_the_model():
    from sanet_client.naming import result_name
    s = st.build_settings(style_file="/x/Starry Night.jpg", model="adaattn", alpha=0.5)
    assert st.result_layer_name(s, result_name) == "Style: Starry Night (AdaAttN, α 0.50)"
    s = st.build_settings(style_file="/x/Starry Night.jpg", model="adaattn", style_keys="all")
    assert st.result_layer_name(s, result_name) == "Style: Starry Night (AdaAttN)"


def test_the_model_is_remembered_with_the_last_values(tmp_path):
    path = str(tmp_path / "last.json")
    st.save_last_values(path, {"style-file": "/a.png", "model": "adaattn", "style-keys": "all", "alpha": 0.4})
    assert st.load_last_values(path) == {"style-file": "/a.png", "model": "adaattn", "style-keys": "all",
                                         "alpha": 0.4}
    assert "model" not in st.clean_last_values({"model": 3})


def test_the_daemon_line_names_the_installed_models():
    two = {"device": "cpu", "models": [{"name": "sanet", "title": "SANet (Park & Lee, CVPR 2019)", "loaded": True},
                                       {"name": "adaattn", "title": "AdaAttN (Liu et al., ICCV 2021)",
                                        "loaded": False}]}
    assert dm.describe_hello(two) == "sanetd is ready: SANet and AdaAttN on the CPU."
    assert dm.installed_models(two) == ["sanet", "adaattn"]
    one = dict(two, models=two["models"][1:])
    assert dm.describe_hello(one) == "sanetd is ready: AdaAttN on the CPU."
    older = {"device": "cpu", "model": {"name": "SANet (Park & Lee, CVPR 2019)", "loaded": True}}
    assert dm.describe_hello(older) == "sanetd is ready: SANet on the CPU."
    assert dm.installed_models(older) == ["sanet"] and dm.installed_models(None) is None


def test_installed_variants_join_the_row_and_map_back():
    """A fine-tuned variant (MODEL:NAME) sanetd lists in hello: its own entries in the row (an AdaAttN variant with
    full attention too), the row id keeps the variant's ':' apart from the style keys, result layers name it."""
    hello = {"device": "cpu", "features": ["models"], "models": [
        {"name": "sanet", "title": "SANet (Park & Lee, CVPR 2019)", "loaded": True},
        {"name": "adaattn:wash", "title": "AdaAttN (Liu et al., ICCV 2021) — wash", "loaded": False,
         "base": "adaattn", "display": "AdaAttN · wash"},
        {"name": "sanet:ink", "title": "SANet (Park & Lee, CVPR 2019) — ink", "loaded": False, "base": "sanet",
         "display": "SANet · ink"}]}
    installed = dm.installed_models(hello)
    assert installed == ["sanet", "adaattn:wash", "sanet:ink"]
    rows = st.model_choices(installed)
    assert rows[3:] == [("adaattn:wash:sampled", "AdaAttN · wash"), ("adaattn:wash:all", "AdaAttN · wash full attention"),
                        ("sanet:ink:sampled", "SANet · ink")]
    assert dict(rows)["adaattn:sampled"] == "AdaAttN (not installed)"
    for cid, _ in rows:
        args = st.model_args(cid)
        assert st.model_choice(args["model"], args["style-keys"]) == cid
    assert st.model_args("sanet:ink:sampled") == {"model": "sanet:ink", "style-keys": "sampled"}
    assert st.model_choice("sanet:ink", "all") == "sanet:ink:sampled"
    assert dm.describe_hello(hello) == "sanetd is ready: SANet, AdaAttN · wash and SANet · ink on the CPU."
    from sanet_client.naming import result_name
    s = st.build_settings(style_file="/x/Starry Night.jpg", model="sanet:ink")
    assert (s.model, st.result_layer_name(s, result_name)) == ("sanet:ink", "Style: Starry Night (SANet · ink)")
    with pytest.raises(st.SettingsError, match="a variant name uses lower-case"):
        st.build_settings(style_file="/a.png", model="sanet:Ink")
