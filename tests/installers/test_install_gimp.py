"""The installer's GIMP plug-in in a real GIMP 3 (the cached Debian trixie chroot of tests/gimp/):
GIMP registers the procedure from the installed folder, and GIMP's own Python loads sanet_client with the
pyzmq + msgpack wheels the installer vendored for it (ahead of the distribution's older python3-zmq)."""
import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest

from install_kit import ROOT, WHEEL_CACHE, run_installer

sys.path.insert(0, str(ROOT / "tests" / "gimp"))
from gimp_runner import ENV_SCRIPT, ensure_chroot  # noqa: E402

pytestmark = [pytest.mark.gimp, pytest.mark.timeout(900)]

CHECK = r'''
import json, sys
from gi.repository import Gimp
out = {"procedure": Gimp.get_pdb().procedure_exists("python-fu-sanet-style-transfer")}
plugin = "/e2e/profile/plug-ins/sanet-style"
sys.path.insert(0, plugin)
try:
    import sanet_gimp_job
    client = sanet_gimp_job.import_client()
    import zmq, msgpack
    out.update(client=client.__file__, zmq=zmq.__file__, pyzmq=zmq.pyzmq_version(), msgpack=msgpack.__file__,
               python=list(sys.version_info[:2]))
except Exception as e:
    out["error"] = repr(e)
with open("/e2e/result.json", "w") as fh:
    json.dump(out, fh)
'''


def test_installed_plugin_registers_and_loads_vendored_wheels_in_real_gimp(tmp_path):
    chroot = ensure_chroot()
    pythons = sorted(glob.glob(str(chroot / "usr" / "lib" / "python3.[0-9]*")))
    version = Path(pythons[-1]).name.replace("python", "")          # GIMP's Python there, e.g. 3.13
    profile = tmp_path / "profile"
    home = tmp_path / "installer-home"
    home.mkdir()
    proc = run_installer(home, "--skip-venv", "--no-krita", "--gimp-dir", str(profile), "--gimp-python", version,
                         "--vendor", "always", "--wheel-cache", str(WHEEL_CACHE))
    assert f"Python {version}" in proc.stdout
    (tmp_path / "home").mkdir()
    (tmp_path / "check.py").write_text(CHECK)
    inner = ["/usr/bin/env", "-i", "HOME=/e2e/home", "PATH=/usr/bin:/bin", "LANG=C.UTF-8",
             "GIMP3_DIRECTORY=/e2e/profile", "PYTHONDONTWRITEBYTECODE=1", "sh", "-c",
             "gimp-console-3.0 -idf --batch-interpreter python-fu-eval -b - --quit < /e2e/check.py"]
    run = subprocess.run(["sh", str(ENV_SCRIPT), "run", "-b", f"{tmp_path}:/e2e", "--", *inner],
                         capture_output=True, text=True, timeout=600)
    result_file = tmp_path / "result.json"
    assert result_file.exists(), f"GIMP exited {run.returncode}:\n{(run.stdout + run.stderr)[-4000:]}"
    result = json.loads(result_file.read_text())
    assert "error" not in result, result
    assert result["procedure"] is True
    assert result["python"] == [int(x) for x in version.split(".")]
    plugin = "/e2e/profile/plug-ins/sanet-style"
    assert result["client"].startswith(plugin + "/sanet_client/")
    assert result["zmq"].startswith(plugin + "/vendor/") and result["msgpack"].startswith(plugin + "/vendor/")
