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
