"""Fixtures for the Krita tests: one real sanetd (CPU, synthetic weights) and the in-process engine
that serves as the oracle for what the plug-in must put in the new layer."""
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Helpers live next to the tests; put this folder on sys.path even under --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import kritatools as kt
from sanetd_process import running_sanetd


@pytest.fixture(scope="module", autouse=True)
def _krita_installed(request):
    """Krita modules fail at once (or skip with SANET_SKIP_EDITORS=1) before a daemon is started."""
    if request.node.get_closest_marker("krita"):
        kt.require_krita()


@pytest.fixture(scope="module")
def engine(synthetic_weights):
    import sanet
    return sanet.Stylizer(synthetic_weights, device="cpu")


@pytest.fixture(scope="module")
def sanetd(tmp_path_factory, synthetic_weights):
    with running_sanetd(tmp_path_factory.mktemp("sanetd"), synthetic_weights) as d:
        yield d


@pytest.fixture(scope="module")
def style_png(tmp_path_factory):
    """An RGB style image on disk (the docker's File… source); returns (path, RGBA uint8 array)."""
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:36, 0:40]
    rgb = np.stack([(np.sin(xx / 3.0) + 1) * 120, (np.cos(yy / 4.0) + 1) * 110,
                    rng.integers(0, 60, (36, 40))], -1).astype(np.uint8)
    path = tmp_path_factory.mktemp("style") / "style.png"
    Image.fromarray(rgb, "RGB").save(path)
    rgba = np.concatenate([rgb, np.full((36, 40, 1), 255, np.uint8)], -1)
    return path, rgba
