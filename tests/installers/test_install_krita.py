"""The installer's Krita plug-in in a real Krita 5 GUI (Xvfb): the kritarc line it writes enables the plug-in,
Krita loads it from the profile's pykrita folder with its docker and action, and Krita's Python takes
sanet_client, pyzmq and msgpack from the vendor folder the installer filled."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from install_kit import ROOT, WHEEL_CACHE, run_installer

sys.path.insert(0, str(ROOT / "tests" / "krita"))
import kritatools as kt  # noqa: E402

pytestmark = [pytest.mark.krita, pytest.mark.timeout(900)]
PROBE = Path(__file__).resolve().parent / "krita_probe"
USER_KRITARC = ("[General]\nautosavefileshistory=false\nshowCanvasMessages=false\n\n"
                "[python]\nenable_sanet_install_probe=true\n")


def test_installed_plugin_is_enabled_and_loads_in_real_krita(tmp_path):
    kt.require_krita("Xvfb")
    home = tmp_path / "home"
    kt.seed_resources(home)
    pykrita = home / ".local/share/krita/pykrita"
    pykrita.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROBE / "sanet_install_probe.desktop", pykrita)
    shutil.copytree(PROBE / "sanet_install_probe", pykrita / "sanet_install_probe")
    (home / ".config").mkdir(exist_ok=True)
    (home / ".config/kritarc").write_text(USER_KRITARC)

    proc = run_installer(home, "--skip-venv", "--no-gimp", "--wheel-cache", str(WHEEL_CACHE))
    assert "write Krita setting [python] enable_sanet_style=true" in proc.stdout

    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "SANET", "QT_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700)
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime), SANET_INSTALL_PROBE_OUT=str(out),
               PYTHONDONTWRITEBYTECODE="1")
    log = tmp_path / "krita.log"
    with open(log, "wb") as fh:
        krita = subprocess.Popen([*kt.xvfb_run("1280x800x24"), "krita", "--nosplash"],
                                 env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        end = time.monotonic() + 420
        while not (out / "probe.json").exists() and krita.poll() is None and time.monotonic() < end:
            time.sleep(0.5)
        time.sleep(0.5)                                  # let the probe finish writing
    finally:
        if krita.poll() is None:
            os.killpg(krita.pid, signal.SIGTERM)
            try:
                krita.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(krita.pid, signal.SIGKILL)
    tail = log.read_text(errors="replace")[-3000:]
    assert (out / "probe.json").exists(), f"Krita wrote no probe report (exit {krita.returncode}):\n{tail}"
    res = json.loads((out / "probe.json").read_text())
    assert "error" not in res, res
    assert res["sanet_style_loaded"], res
    assert "sanet_style_docker" in res["dockers"], res["dockers"]
    vendor = str(pykrita / "sanet_style" / "vendor")
    assert res["client"].startswith(vendor + "/sanet_client/")
    # Debian's python3-zmq/msgpack are older than our floors, so the vendored copies must be the ones in use.
    assert res["zmq"].startswith(vendor) and res["msgpack"].startswith(vendor), res
    rc = (home / ".config/kritarc").read_text()
    assert "autosavefileshistory=false" in rc      # Krita and the installer kept the user's settings
