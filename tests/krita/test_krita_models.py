"""The model choice inside a real Krita 5 (kritarunner) against a real sanetd: the plug-in's apply path with
AdaAttN (and its full attention) puts the library's AdaAttN result in the new layer, named after the model; a model
sanetd has no weights for is one clear message and no layer. (The docker's Model row: test_krita_gui.py.)"""

import pytest

import kritatools as kt
from krita_scenarios import H, W
from oracle_checks import ALPHA, check_result_layer
from sanetd_process import running_sanetd

pytestmark = pytest.mark.krita


@pytest.fixture(scope="module")
def both(tmp_path_factory, adaattn_weights):
    """sanetd with SANet's and AdaAttN's weights."""
    with running_sanetd(tmp_path_factory.mktemp("sanetd_models"), adaattn_weights) as d:
        yield d


@pytest.fixture(scope="module")
def ada_engine(adaattn_weights):
    import sanet
    return sanet.Stylizer(adaattn_weights, device="cpu", model="adaattn")


def _run(args, env, tmp_path):
    return kt.run_scenario("apply_scenario", args, env, tmp_path / "out")


@pytest.mark.parametrize("depth,style_keys", [("U8", "sampled"), ("F32", "all")])
def test_adaattn_layer_equals_the_library(tmp_path, both, ada_engine, style_png, depth, style_keys):
    kt.require_krita()
    (tmp_path / "out").mkdir()
    env = kt.krita_env(both.env, kt.shared_home())
    summary = _run([tmp_path / "out", depth, style_png[0], ALPHA, "adaattn", style_keys], env, tmp_path)
    assert summary["layers"] == ["Background", "painting", "Style: style (AdaAttN, α 0.80)"]
    assert summary["new_depth"] == depth
    # the engine's style_keys="all" equals "sampled" for this small style: the check is the plumbing, which the
    # daemon tests cover with a style large enough to be subsampled
    check_result_layer(tmp_path / "out", depth, W, H, ada_engine, style_png[1], ALPHA)


def test_a_model_without_weights_is_one_message_and_no_layer(tmp_path, sanetd, style_png):
    """The module-wide sanetd of conftest has SANet's weights only."""
    kt.require_krita()
    (tmp_path / "out").mkdir()
    env = kt.krita_env(sanetd.env, kt.shared_home())
    summary = _run([tmp_path / "out", "U8", style_png[0], ALPHA, "adaattn"], env, tmp_path)
    failed = summary["failed"]
    assert failed["code"] == "model_unavailable" and failed["field"] == "model"
    assert failed["message"].startswith("model 'adaattn' (AdaAttN) is not installed: latest_net_transformer.pth")
    assert summary["layers"] == ["Background", "painting"]


@pytest.fixture(scope="module")
def with_variant(tmp_path_factory, synthetic_weights):
    """sanetd with SANet and the variant sanet:ink, installed from a synthetic training run by `sanet weights install`."""
    from synthetic import weights_with_variants
    root = tmp_path_factory.mktemp("krita_variant")
    folder = weights_with_variants(root, synthetic_weights, [("sanet", "ink", 77)])
    with running_sanetd(root / "sanetd", folder) as d:
        yield d, folder


def test_a_fine_tuned_variant_layer_equals_the_library(tmp_path, with_variant, style_png):
    """The model "sanet:ink" (a `sanet train` result installed as a variant) through Krita's apply path."""
    import sanet
    kt.require_krita()
    d, folder = with_variant
    (tmp_path / "out").mkdir()
    env = kt.krita_env(d.env, kt.shared_home())
    summary = _run([tmp_path / "out", "U8", style_png[0], ALPHA, "sanet:ink"], env, tmp_path)
    assert summary["layers"] == ["Background", "painting", "Style: style (SANet · ink, α 0.80)"]
    check_result_layer(tmp_path / "out", "U8", W, H, sanet.Stylizer(folder, device="cpu", model="sanet:ink"),
                       style_png[1], ALPHA)
