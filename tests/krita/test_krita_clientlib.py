"""How the plug-in finds sanet_client (no Krita needed): the installer's vendor/ folder, then a clear
message when it is missing. Runs a fresh interpreter on a copy of the plug-in laid out like pykrita/."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
if %(hide)r:
    sys.modules['sanet_client'] = None    # as if it were installed nowhere
sys.path.insert(0, %(pykrita)r)
from sanet_style import clientlib
try:
    mod = clientlib.load()
    print(json.dumps({'file': mod.__file__, 'client': hasattr(mod, 'Client')}))
except clientlib.ClientMissing as exc:
    print(json.dumps({'missing': str(exc)}))
"""


def _pykrita(tmp_path, vendor):
    pykrita = tmp_path / "pykrita"
    shutil.copytree(ROOT / "plugins" / "krita" / "sanet_style", pykrita / "sanet_style",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if vendor:
        shutil.copytree(ROOT / "plugins" / "sanet_client", pykrita / "sanet_style" / "vendor" / "sanet_client",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return pykrita


def _run(pykrita, hide):
    code = PROBE % {"pykrita": str(pykrita), "hide": hide}
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_vendored_client_is_found_first(tmp_path):
    pykrita = _pykrita(tmp_path, vendor=True)
    got = _run(pykrita, hide=False)
    assert got["client"] and got["file"].startswith(str(pykrita / "sanet_style" / "vendor" / "sanet_client"))


def test_missing_client_gives_an_actionable_message(tmp_path):
    pykrita = _pykrita(tmp_path, vendor=False)
    got = _run(pykrita, hide=True)
    assert "sanet_client package was not found" in got["missing"]
    assert "installer" in got["missing"] and "SANET_CLIENT_PATH" in got["missing"]
