import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for p in (str(ROOT), str(ROOT / "daemon"), str(ROOT / "plugins"), str(TESTS)):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture(scope="session")
def synthetic_weights(tmp_path_factory) -> Path:
    """The three checkpoint files in the public layout, random but calibrated, generated once per run."""
    from synthetic import make_synthetic_weights
    return make_synthetic_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def adaattn_weights(synthetic_weights, tmp_path_factory) -> Path:
    """One weights folder with both models, as installed: SANet's three files (hard links to synthetic_weights)
    and AdaAttN's three released files, flat, vgg_normalised.pth shared."""
    import os
    from synthetic import make_synthetic_adaattn_weights
    folder = tmp_path_factory.mktemp("weights_both")
    for f in synthetic_weights.iterdir():
        os.link(f, folder / f.name)
    return make_synthetic_adaattn_weights(folder, synthetic_weights / "vgg_normalised.pth")
