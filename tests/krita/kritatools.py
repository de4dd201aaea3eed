"""pytest-side helpers for the Krita tests: locate Krita, run kritarunner, build a throw-away GUI
profile with the plug-in enabled, and read Krita's raw pixel bytes with numpy."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PLUGIN_DIR = ROOT / "plugins" / "krita"
CLIENT_PARENT = ROOT / "plugins"            # holds sanet_client/
INSTALL_HINT = "run tests/krita/krita_env.sh (apt-get install krita python3-pyqt5 python3-zmq python3-msgpack xvfb xauth)"

DTYPES = {"U8": np.dtype("<u1"), "U16": np.dtype("<u2"), "F16": np.dtype("<f2"), "F32": np.dtype("<f4")}


def xvfb_run(screen="1600x1000x24"):
    """Command prefix that runs a program on its own Xvfb display (tests/krita/xvfb_run.sh, race-free)."""
    return ["sh", str(HERE / "xvfb_run.sh"), screen]


def require_krita(*tools):
    """Fail (not skip) when Krita is missing, unless SANET_SKIP_EDITORS=1 asks to skip editor tests."""
    missing = [t for t in ("kritarunner", "krita") + tuple(tools) if shutil.which(t) is None]
    if missing:
        msg = "Krita tests need %s, which is not installed: %s" % (", ".join(missing), INSTALL_HINT)
        if os.environ.get("SANET_SKIP_EDITORS") == "1":
            pytest.skip(msg + " (skipped because SANET_SKIP_EDITORS=1)")
        pytest.fail(msg)
    probe = subprocess.run(["/usr/bin/python3", "-c", "import PyQt5.QtCore, zmq, msgpack"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        msg = "Krita's Python (/usr/bin/python3) lacks PyQt5/zmq/msgpack: %s; %s" % (probe.stderr.strip()[-300:], INSTALL_HINT)
        if os.environ.get("SANET_SKIP_EDITORS") == "1":
            pytest.skip(msg)
        pytest.fail(msg)


def shared_home():
    """A Krita profile reused across runs (~/.cache/sanet-style/krita/home, or $SANET_KRITA_HOME).

    A fresh profile costs ~30 s on first start (Krita builds its resource database); the kritarunner
    tests never change settings, so they share this warmed one.
    """
    home = Path(os.environ.get("SANET_KRITA_HOME")
                or Path.home() / ".cache" / "sanet-style" / "krita" / "home")
    home.mkdir(parents=True, exist_ok=True)
    return home


def seed_resources(home):
    """Copy the shared profile's warmed resource folder (not its plug-ins) into a fresh GUI profile."""
    src = shared_home() / ".local" / "share" / "krita"
    if (src / "resourcecache.sqlite").exists():
        shutil.copytree(src, home / ".local" / "share" / "krita", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("pykrita", "*.lock"))


def krita_env(base_env, home, plugin_source=True):
    """Environment for a Krita process: isolated HOME/XDG dirs, plug-in and client importable.

    plugin_source=False leaves plugins/krita off PYTHONPATH, so Krita loads the copy installed in
    the profile's pykrita folder (the GUI test), as it would for a user.
    """
    env = dict(base_env)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(home / "runtime"),
        QT_QPA_PLATFORM=env.get("QT_QPA_PLATFORM", "offscreen"),
        SANET_CLIENT_PATH=str(CLIENT_PARENT),
        PYTHONPATH=os.pathsep.join([str(HERE)] + ([str(PLUGIN_DIR)] if plugin_source else [])),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("VIRTUAL_ENV", None)
    for d in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
        Path(env[d]).mkdir(parents=True, exist_ok=True, mode=0o700)
    return env


def run_kritarunner(function, args, env, timeout=300):
    """kritarunner -s krita_scenarios -f FUNCTION ARGS...; returns the CompletedProcess (output kept)."""
    cmd = ["kritarunner", "-s", "krita_scenarios", "-f", function] + [str(a) for a in args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def run_scenario(function, args, env, out):
    """run_kritarunner, then the scenario's summary.json from folder `out`, asserting the run and the scenario
    succeeded (the log or the scenario's error in the message otherwise)."""
    proc = run_kritarunner(function, args, env)
    log = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, "kritarunner exited with %d:\n%s" % (proc.returncode, log)
    summary_path = out / "summary.json"
    assert summary_path.exists(), "the scenario wrote no summary:\n" + log
    summary = json.loads(summary_path.read_text())
    assert summary.get("ok"), summary.get("error", summary)
    return summary


def install_gui_profile(home, extra_plugins=()):
    """A fresh Krita profile with sanet_style (and test plug-ins) in pykrita and enabled in kritarc."""
    pykrita = home / ".local" / "share" / "krita" / "pykrita"
    pykrita.mkdir(parents=True, exist_ok=True)
    names = []
    for src in (PLUGIN_DIR,) + tuple(extra_plugins):
        for desktop in Path(src).glob("*.desktop"):
            name = desktop.stem
            shutil.copy(desktop, pykrita / desktop.name)
            shutil.copytree(Path(src) / name, pykrita / name,
                            ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            names.append(name)
    actions = home / ".local" / "share" / "krita" / "actions"       # the optional shortcut file
    actions.mkdir(parents=True, exist_ok=True)
    shutil.copy(PLUGIN_DIR / "sanet_style.action", actions / "sanet_style.action")
    config = home / ".config"
    config.mkdir(parents=True, exist_ok=True)
    lines = ["[python]"] + ["enable_%s=true" % n for n in names]
    # No welcome/news/autosave distractions in a throw-away session.
    lines += ["", "[General]", "autosavefileshistory=false", "showCanvasMessages=false",
              "", "[RecentFiles]"]
    (config / "kritarc").write_text("\n".join(lines) + "\n")
    return pykrita


def pixels(raw, depth, w, h):
    """Krita pixelData bytes -> H x W x 4 array in R,G,B,A order (integer depths are stored B,G,R,A)."""
    arr = np.frombuffer(raw, dtype=DTYPES[depth]).reshape(h, w, 4)
    if depth in ("U8", "U16"):
        arr = arr[..., [2, 1, 0, 3]]
    return arr


def to_unit(arr):
    """Any pixel array -> float64 in [0, 1] nominal."""
    if arr.dtype.kind == "u":
        return arr.astype(np.float64) / np.iinfo(arr.dtype).max
    return arr.astype(np.float64)
