"""A `sanetd` executable for the plug-in's Start button in tests: a shell script on a private PATH that runs this
checkout's sanetd on CPU with synthetic weights, as the installer's venv `sanetd` would run the real one.

The plug-in starts it detached (sanet_client.launch), so the test stops it through the pid in its connection file.
"""
import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_wrapper(folder, weights_dir, runtime_dir, state_dir):
    """Write folder/sanetd; returns the folder (put it first on PATH)."""
    folder, state_dir = Path(folder), Path(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    pythonpath = os.pathsep.join(str(p) for p in (ROOT, ROOT / "daemon", ROOT / "plugins"))
    script = folder / "sanetd"
    script.write_text(
        "#!/bin/sh\n"
        f"export PYTHONPATH='{pythonpath}'\n"
        f"export SANETD_RUNTIME_DIR='{runtime_dir}' SANETD_CONNECTION_FILE='{Path(runtime_dir) / 'sanetd.json'}'\n"
        f"export SANETD_DATA_DIR='{state_dir / 'data'}' SANETD_LOG_DIR='{state_dir / 'log'}'\n"
        f"export SANETD_CONFIG='{state_dir / 'sanetd.conf'}'\n"
        f"exec '{sys.executable}' -m sanetd --device cpu --weights '{weights_dir}' \"$@\" "
        f">'{state_dir / 'started.out'}' 2>&1\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def stop_started(connection_file, timeout=15.0):
    """Stop a sanetd the plug-in started (SIGTERM to the pid in its connection file); True if one was running."""
    path = Path(connection_file)
    try:
        pid = json.loads(path.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:    # our own child (started in this process): reap it
                return True
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def kill_started(connection_file, sig=signal.SIGKILL):
    """Send ``sig`` to the sanetd named in a connection file (a crash, for the test); returns its pid or None."""
    try:
        pid = json.loads(Path(connection_file).read_text())["pid"]
        os.kill(pid, sig)
        return pid
    except (OSError, ValueError, KeyError):
        return None
