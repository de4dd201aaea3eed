"""Fast tests (no GIMP) of the GIMP plug-in's Quality choice (issue 16): the procedure's quality argument, the
dialog's row as sanetd's hello allows it, the full-size run's precision, result names, remembered values; and the
precision a real sanetd runs a Fast request in (its result info, which names the layer)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "gimp" / "sanet-style"
sys.path.insert(0, str(PLUGIN))

import sanet_gimp_settings as st  # noqa: E402
from sanet_client import naming  # noqa: E402
from sanet_client import protocol as P  # noqa: E402

BF16 = {"capabilities": {"precisions": ["auto", "fp32", "bf16"], "fast_precision": "bf16"}}
NO_FAST = {"capabilities": {"precisions": ["auto", "fp32"], "fast_precision": None}}
OLDER = {"capabilities": {"formats": ["rgba8"]}}      # a sanetd that predates per-request precisions


def test_the_quality_argument_defaults_to_exact_and_is_checked():
    assert st.build_settings(style_file="/a.png").quality == "exact"
    assert st.build_settings(style_file="/a.png", quality="").quality == "exact"       # older runs: no argument
    assert st.build_settings(style_file="/a.png", quality=" Fast ").quality == "fast"
    with pytest.raises(st.SettingsError, match=r"^quality: 'quick'; expected one of exact, fast"):
        st.build_settings(style_file="/a.png", quality="quick")
    assert st.QUALITIES is P.QUALITIES and st.DEFAULT_QUALITY == P.QUALITIES[0]   # one definition: the protocol's


def test_the_row_is_offered_only_where_sanetd_has_a_fast_precision():
    assert st.quality_choices(BF16) == [("exact", "Exact", True), ("fast", "Fast", True)]
    assert st.quality_choices(NO_FAST) == [("exact", "Exact", True), ("fast", "Fast", False)]
    assert st.quality_choices(None) == st.quality_choices(OLDER) == [("exact", "Exact", True), ("fast", "Fast", True)]
    assert st.quality_note(BF16).startswith("Fast: bf16 on the CPU's bf16 units; differs from Exact by about 1/255")
    assert st.quality_note(NO_FAST).startswith("Fast is not offered: sanetd's device has no faster precision")
    assert "known once sanetd runs" in st.quality_note(None)
    # the row shows what runs: a remembered "fast" reads Exact where sanetd cannot do it (the argument keeps fast)
    assert st.shown_quality("fast", BF16) == "fast" and st.shown_quality("fast", NO_FAST) == "exact"
    assert st.shown_quality("", BF16) == "exact" and st.shown_quality("quick", BF16) == "exact"
    assert st.fast_precision_of(BF16) == (True, "bf16") and st.fast_precision_of(NO_FAST) == (True, None)
    assert st.fast_precision_of(OLDER) == (False, None) == st.fast_precision_of(None)


def test_every_note_wraps_in_the_dialog():
    # the dialog's notes wrap at 55 characters; no word may be longer than a line (the dialog would widen)
    for hello in (BF16, NO_FAST, None, {"capabilities": {"precisions": ["auto"], "fast_precision": "fp16"}}):
        assert max(len(w) for w in st.quality_note(hello).split()) < 40


def test_the_full_size_run_sends_the_precision_of_the_choice():
    """sanet_gimp_io.precision_fields (it needs GIMP to import) is sanet_client.protocol's rule, checked here."""
    def fields(quality, hello):
        precision = P.hello_precision_for_quality(hello, quality)
        return {} if precision is None else {"precision": precision}
    assert fields("exact", BF16) == {"precision": "auto"}          # auto: the full-size result in fp32
    assert fields("fast", BF16) == {"precision": "bf16"}
    assert fields("fast", NO_FAST) == {"precision": "auto"}        # nothing faster there: exact
    assert fields("fast", OLDER) == {} == fields("exact", OLDER)   # an older sanetd: its default, as before


def test_a_fast_result_says_so_in_its_layer_name():
    s = st.build_settings(style_file="/x/Starry Night.jpg", alpha=0.8, quality="fast")
    assert st.result_layer_name(s, naming.result_name, precision="bf16") == "Style: Starry Night (SANet, α 0.80, fast)"
    assert st.result_layer_name(s, naming.result_name, precision="fp16") == "Style: Starry Night (SANet, α 0.80, fast)"
    assert st.result_layer_name(s, naming.result_name, precision="fp32") == "Style: Starry Night (SANet, α 0.80)"
    assert st.result_layer_name(s, naming.result_name) == "Style: Starry Night (SANet, α 0.80)"   # no info


def test_the_quality_is_remembered_with_the_last_values(tmp_path):
    path = str(tmp_path / "last.json")
    st.save_last_values(path, {"style-file": "/a.png", "quality": "fast"})
    assert st.load_last_values(path) == {"style-file": "/a.png", "quality": "fast"}
    assert "quality" not in st.clean_last_values({"quality": True})


def test_a_real_sanetd_runs_fast_in_its_fast_precision(tmp_path, synthetic_weights):
    """Against a real sanetd: hello's fast_precision decides the request's precision, and the result's info says
    what it ran in (bf16 where this CPU has bf16 units; exact runs fp32)."""
    import sanet_client as sc
    from sanetd_process import running_sanetd
    rgba = bytes([(i * 37) % 256 for i in range(64 * 48 * 4)])
    style = sc.StylePixels(32, 32, "rgba8", bytes([(i * 11) % 256 for i in range(32 * 32 * 4)]))
    with running_sanetd(tmp_path, synthetic_weights) as d, sc.Client(d.connection_file, timeout=60) as c:
        hello = c.hello()
        known, fast = st.fast_precision_of(hello)
        assert known and fast == hello["capabilities"]["fast_precision"]
        infos = {}
        for q in P.QUALITIES:
            precision = P.hello_precision_for_quality(hello, q)
            infos[q] = c.stylize(sc.Layer(64, 48, "rgba8", rgba), [style], precision=precision).info
    assert infos["exact"]["precision"] == "fp32"
    assert infos["fast"]["precision"] == (fast or "fp32")
    assert naming.is_fast(infos["fast"]["precision"]) == bool(fast)
