"""Installer options and failure paths, run as real processes against a temporary HOME."""
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from install_kit import INSTALL, ROOT, WHEEL_CACHE, _env, run_installer, snapshot

pytestmark = pytest.mark.timeout(600)


def test_launcher_script_runs_the_python_installer(tmp_path):
    (tmp_path / ".config/GIMP/3.0").mkdir(parents=True)
    before = snapshot(tmp_path)
    env = _env(tmp_path)
    env["PYTHON"] = sys.executable
    proc = subprocess.run(["sh", str(ROOT / "installers" / "install.sh"), "--dry-run", "--torch", "existing",
                           "--no-krita"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "[dry-run] create the daemon's venv" in proc.stdout
    assert "[dry-run] install GIMP 3 plug-in" in proc.stdout
    assert snapshot(tmp_path) == before


def test_launcher_refuses_a_python_that_is_too_old(tmp_path):
    env = _env(tmp_path)
    env["PYTHON"] = "/nonexistent/python3"
    proc = subprocess.run(["sh", str(ROOT / "installers" / "install.sh"), "--dry-run"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "no Python >= 3.10" in proc.stderr


def _python_without_torch():
    for cand in sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.1[0-9].*/bin/python3.1[0-9]"))):
        probe = subprocess.run([cand, "-c", "import torch"], capture_output=True)
        if probe.returncode != 0:
            return cand
    return None


def test_existing_torch_mode_needs_a_torch(tmp_path):
    python = _python_without_torch()
    if python is None:
        pytest.skip("no Python >= 3.10 without torch here")
    proc = subprocess.run([python, str(INSTALL), "--torch", "existing", "--dry-run"], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "--torch existing" in proc.stderr and "has no torch" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_dry_run_of_a_cpu_install_shows_the_pytorch_index(tmp_path):
    proc = run_installer(tmp_path, "--dry-run", "--torch", "cpu", "--no-gimp", "--no-krita")
    line = next(l for l in proc.stdout.splitlines() if "install torch (cpu)" in l)
    assert "--index-url https://download.pytorch.org/whl/cpu" in line
    assert not any(tmp_path.iterdir())


def test_unavailable_torch_mode_is_a_clear_error(tmp_path):
    proc = run_installer(tmp_path, "--dry-run", "--torch", "mps", "--no-gimp", "--no-krita", check=False)
    assert proc.returncode == 1 and "--torch mps is not available on linux" in proc.stderr


def test_explicit_profile_and_vendor_never_skip_detection_and_wheels(tmp_path):
    profile = tmp_path / "elsewhere" / "gimp-profile"
    proc = run_installer(tmp_path, "--skip-venv", "--no-krita", "--vendor", "never", "--gimp-dir", str(profile))
    dest = profile / "plug-ins" / "sanet-style"
    assert (dest / "sanet-style.py").stat().st_mode & 0o111
    assert (dest / "sanet_client" / "__init__.py").is_file() and not (dest / "vendor").exists()
    assert "download" not in proc.stdout
    run_installer(tmp_path, "--uninstall")
    assert not (tmp_path / "elsewhere").exists()      # the folders it created are gone too


def test_offline_wheels_from_a_folder(tmp_path):
    profile = tmp_path / "gimp-profile"
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    proc = run_installer(tmp_path, "--skip-venv", "--no-krita", "--vendor", "always", "--gimp-dir", str(profile),
                         "--wheels-from", str(empty), check=False)
    assert proc.returncode == 1 and "--wheels-from" in proc.stderr and "no wheel of pyzmq, msgpack" in proc.stderr
    # an offline folder holding the wheels for the Python a native GIMP runs here (filled once, then cached)
    from installers.editor_python import editor_python
    from installers.locations import EditorProfile
    from installers.wheels import pip_download_command, select_wheels
    target = editor_python(EditorProfile("gimp", "native", "linux", str(profile), str(profile / "plug-ins")),
                           str(tmp_path), {}).target
    cache = WHEEL_CACHE / target.key
    try:
        select_wheels(os.listdir(cache) if cache.is_dir() else [], target)
    except ValueError:
        subprocess.run(pip_download_command(sys.executable, target, str(cache)), check=True, capture_output=True)
    run_installer(tmp_path, "--skip-venv", "--no-krita", "--vendor", "always", "--gimp-dir", str(profile),
                  "--wheels-from", str(cache))
    assert (profile / "plug-ins/sanet-style/vendor/zmq/__init__.py").is_file()


def test_a_failed_step_can_still_be_uninstalled(tmp_path):
    (tmp_path / ".config/GIMP/3.0").mkdir(parents=True)
    before = snapshot(tmp_path)
    proc = run_installer(tmp_path, "--torch", "existing", "--no-deps", "--wheel-cache", str(WHEEL_CACHE),
                         "--weights-from", str(tmp_path / "missing-weights"), check=False)
    assert proc.returncode == 1 and "install the weights failed" in proc.stderr
    manifest = json.loads((tmp_path / ".local/share/sanet-style/install-manifest.json").read_text())
    assert manifest["venv"]["created"] and manifest["paths"]
    run_installer(tmp_path, "--uninstall")
    assert snapshot(tmp_path) == before


def test_a_folder_that_is_not_a_checkout_is_refused(tmp_path):
    proc = run_installer(tmp_path, "--dry-run", "--source", str(tmp_path), check=False)
    assert proc.returncode == 1 and "is not a sanet-style checkout" in proc.stderr


def test_purge_removes_the_daemons_own_files_only_when_asked(tmp_path):
    # What a user's sanetd leaves: a saved style, its settings file and its log.
    styles = tmp_path / ".local/share/sanet-style/styles"
    styles.mkdir(parents=True)
    (styles / "monet.png").write_bytes(b"\x89PNG")
    conf = tmp_path / ".config/sanet-style/sanetd.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[sanetd]\nkeep_alive = 60\n")
    log = tmp_path / ".local/state/sanet-style/log/sanetd.log"
    log.parent.mkdir(parents=True)
    log.write_text("started\n")
    proc = run_installer(tmp_path, "--uninstall")
    assert "kept sanetd's own files" in proc.stdout and (styles / "monet.png").exists() and conf.exists()
    run_installer(tmp_path, "--uninstall", "--purge")
    for gone in (tmp_path / ".local/share/sanet-style", tmp_path / ".config/sanet-style",
                 tmp_path / ".local/state/sanet-style"):
        assert not gone.exists(), gone
