"""Start sanetd for an editor when it is not running (a plug-in's "Start" button).

Stdlib only. Finds the `sanetd` the installer put in its venv (the install manifest names the venv; then the
default venv; then PATH) and starts it detached from the editor, so it outlives the editor and serves the next
run too. The one home of this search: GIMP's sanet_gimp_daemon.py and Krita's docker both call it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

APP_NAME = "sanet-style"
START_TIMEOUT_S = 90.0   # loading the model can take a while the first time (disk cache cold)
# an editor's own Python settings are not sanetd's (Krita and GIMP bundle their own Python)
EDITOR_PYTHON_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")


def data_dir(env=None, home=None, platform=None) -> str:
    """platformdirs.user_data_dir("sanet-style"): the installer's folder (venv + install manifest)."""
    env = os.environ if env is None else env
    home = os.path.expanduser("~") if home is None else home
    platform = sys.platform if platform is None else platform
    if env.get("XDG_DATA_HOME"):
        return os.path.join(env["XDG_DATA_HOME"], APP_NAME)
    if platform == "win32":
        local = env.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(local, APP_NAME, APP_NAME)
    if platform == "darwin":
        return os.path.join(home, "Library", "Application Support", APP_NAME)
    return os.path.join(home, ".local", "share", APP_NAME)


def _venv_sanetd(venv: str, platform: str) -> str:
    if platform == "win32":
        return os.path.join(venv, "Scripts", "sanetd.exe")
    return os.path.join(venv, "bin", "sanetd")


def sanetd_candidates(env=None, home=None, platform=None) -> list:
    """Where `sanetd` may be, best first: the installer's venv (from its manifest, then the default), PATH."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    base = data_dir(env, home, platform)
    out = []
    try:
        with open(os.path.join(base, "install-manifest.json"), encoding="utf-8") as f:
            venv = (json.load(f).get("venv") or {}).get("path")
        if isinstance(venv, str) and venv:
            out.append(_venv_sanetd(venv, platform))
    except (OSError, ValueError, AttributeError):
        pass
    out.append(_venv_sanetd(os.path.join(base, "venv"), platform))
    on_path = shutil.which("sanetd", path=env.get("PATH"))
    if on_path:
        out.append(on_path)
    return out


def find_sanetd(env=None, home=None, platform=None):
    """The first executable candidate, or None."""
    for path in sanetd_candidates(env, home, platform):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def not_found_message(env=None, home=None, platform=None) -> str:
    where = ", ".join(sanetd_candidates(env, home, platform)[:2])
    return (f"sanetd was not found (looked in {where} and on PATH). Run the sanet-style installer, "
            f"or start sanetd yourself")


def start_sanetd(command: str, env=None) -> subprocess.Popen:
    """Start sanetd detached from the editor: it outlives the plug-in and serves later runs too."""
    env = dict(os.environ if env is None else env)
    for var in EDITOR_PYTHON_VARS:
        env.pop(var, None)
    kwargs = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = 0x00000008 | 0x08000000 | 0x00000200  # DETACHED, NO_WINDOW, NEW_GROUP
    else:
        kwargs["start_new_session"] = True
    return subprocess.Popen([command], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, close_fds=True, **kwargs)
