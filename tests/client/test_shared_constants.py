"""The numbers the engine, the daemon, the plug-ins and clients share have one home: sanet_client.protocol."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from sanet_client import protocol as P

ROOT = Path(__file__).resolve().parents[2]


def test_engine_uses_the_protocol_constants():
    import sanet
    from sanet.models import scsa
    assert sanet.DEFAULT_STYLE_MAX_SIDE is P.DEFAULT_STYLE_MAX_SIDE and sanet.PREVIEW_LONG_SIDE is P.PREVIEW_LONG_SIDE
    assert (scsa.T1, scsa.T2) == P.DEFAULT_SCSA_WEIGHTS
    assert P.Limits().max_styles == P.MAX_STYLES


def test_gimp_settings_read_them_from_the_protocol():
    sys.path.insert(0, str(ROOT / "plugins" / "gimp" / "sanet-style"))
    import sanet_gimp_settings as st
    assert st.MAX_STYLES is P.MAX_STYLES and st.SCSA_DEFAULT_WEIGHTS is P.DEFAULT_SCSA_WEIGHTS
    assert st.SCSA_WEIGHT_MAX is P.SCSA_WEIGHT_MAX and st.STYLE_MAX_SIDE is P.DEFAULT_STYLE_MAX_SIDE


def test_no_plug_in_keeps_a_copy():
    copies = re.compile(r"^\s*[A-Z_]*(STYLE_MAX_SIDE|MAX_STYLES|SCSA_[A-Z_]*WEIGHT[A-Z_]*)\s*=\s*[\d(]", re.M)
    for f in [*(ROOT / "plugins" / "gimp").rglob("*.py"), *(ROOT / "plugins" / "krita").rglob("*.py")]:
        assert not copies.search(f.read_text()), f"{f} defines its own copy of a protocol constant"


def test_the_scsa_pairing_rule():
    assert P.scsa_pairing_problem(False, [False, False]) is None
    assert P.scsa_pairing_problem(True, [False, True]) is None
    assert P.scsa_pairing_problem(False, [True]) == "content_labels_missing"
    assert P.scsa_pairing_problem(True, [False]) == "style_labels_missing"
