"""Start sanetd for the artist when it is not running (the dialog's Start button, or "Start sanetd when needed").

Pure Python (stdlib): finds the `sanetd` the installer put in its venv (or one on PATH), starts it detached
from GIMP, and waits until it answers; DaemonMonitor tells the dialog whether sanetd is there. Tested outside
GIMP with a real sanetd.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

APP_NAME = "sanet-style"
START_TIMEOUT_S = 90.0   # loading the model can take a while the first time (disk cache cold)


def data_dir(env=None, home=None, platform=None) -> str:
    """platformdirs.user_data_dir("sanet-style"), the installer's folder (venv + install manifest)."""
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
    for path in sanetd_candidates(env, home, platform):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def start_sanetd(command: str, env=None) -> subprocess.Popen:
    """Start sanetd detached from GIMP: it outlives the plug-in and serves later runs too."""
    env = dict(os.environ if env is None else env)
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):  # GIMP's Python settings are not sanetd's
        env.pop(var, None)
    kwargs = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = 0x00000008 | 0x08000000 | 0x00000200  # DETACHED, NO_WINDOW, NEW_GROUP
    else:
        kwargs["start_new_session"] = True
    return subprocess.Popen([command], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, close_fds=True, **kwargs)


def wait_until_answering(hello, proc, timeout=START_TIMEOUT_S, cancel_event=None, poll_s=0.5):
    """Call ``hello()`` until it succeeds; False on timeout, cancel, or when ``proc`` exits first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cancel_event is not None and cancel_event.is_set():
            return False
        try:
            hello()
            return True
        except Exception:  # not up yet (no connection file, socket not bound, model loading)
            pass
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(poll_s)
    return False


# ----------------------------------------------------------------------------------------------- daemon state
# The dialog shows at once whether sanetd is there, offers to start it, and notices when it comes or goes.

RUNNING, NOT_RUNNING, CHECKING, STARTING, FAILED, INCOMPATIBLE = (
    "running", "not_running", "checking", "starting", "failed", "incompatible")

_DEVICE_WORDS = {"cpu": "on the CPU", "cuda": "on the GPU (CUDA)", "mps": "on the GPU (Apple)",
                 "xpu": "on the GPU (Intel)"}


@dataclass(frozen=True)
class DaemonState:
    kind: str                   # one of RUNNING, NOT_RUNNING, CHECKING, STARTING, FAILED, INCOMPATIBLE
    message: str                # for the artist: what it means and what to do
    detail: str = field(default="", compare=False)              # the technical reason (a tooltip)
    hello: dict | None = field(default=None, compare=False)     # the daemon's hello reply when RUNNING
    can_start: bool = False     # a sanetd to start was found

    @property
    def running(self) -> bool:
        return self.kind == RUNNING


def describe_hello(hello: dict) -> str:
    device = str(hello.get("device") or "").lower()
    where = _DEVICE_WORDS.get(device.split(":", 1)[0], f"on {device}" if device else "")
    model = str((hello.get("model") or {}).get("name") or "").split(" (", 1)[0] or "the model"
    return f"sanetd is ready: {model} {where}.".replace(" .", ".")


class DaemonMonitor:
    """Watches in a background thread whether sanetd answers, and starts it on request.

    ``probe()`` returns (RUNNING, hello), (NOT_RUNNING, reason) or (INCOMPATIBLE, reason); it must come back
    within a few seconds. ``on_change(DaemonState)`` is called from the monitor thread whenever the state
    changes. ``start()`` launches the sanetd the installer set up (``find``) and reports STARTING until it
    answers, FAILED when it exits or does not answer within ``start_timeout``.
    """

    def __init__(self, probe, on_change, find=None, start=None, poll_running_s: float = 3.0,
                 poll_down_s: float = 1.0, start_timeout: float = START_TIMEOUT_S):
        self._probe = probe
        self._on_change = on_change
        self._find = find or find_sanetd
        self._start = start or start_sanetd
        self._poll_running_s = poll_running_s
        self._poll_down_s = poll_down_s
        self._start_timeout = start_timeout
        self._wake = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._proc = None            # the sanetd we started, until it answers
        self._started_at = 0.0
        self._start_error = None
        self.state = DaemonState(CHECKING, "Looking for sanetd…")
        self._thread = threading.Thread(target=self._loop, name="sanet-style-daemon-monitor", daemon=True)

    def run(self) -> "DaemonMonitor":
        self._on_change(self.state)
        self._thread.start()
        return self

    def check_now(self) -> None:
        self._wake.set()

    def start_daemon(self, env=None) -> None:
        """Start sanetd (non-blocking); the state follows."""
        command = self._find()
        with self._lock:
            if command is None:
                self._start_error = ("No sanetd was found to start (looked in "
                                     f"{', '.join(sanetd_candidates())}). Run the sanet-style installer, or "
                                     "start sanetd yourself: this dialog connects as soon as it runs.")
            else:
                try:
                    self._proc = self._start(command, env=env)
                    self._started_at = time.monotonic()
                    self._start_error = None
                except OSError as exc:
                    self._start_error = f"Could not start {command}: {exc.strerror or exc}."
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _next_state(self) -> DaemonState:
        kind, payload = self._probe()
        with self._lock:
            proc = self._proc
            if kind == RUNNING:
                self._proc = None
                self._start_error = None
                return DaemonState(RUNNING, describe_hello(payload), hello=payload)
            if kind == INCOMPATIBLE:
                return DaemonState(INCOMPATIBLE, str(payload), detail=str(payload))
            if proc is not None:
                code = proc.poll()
                if code is not None:
                    self._proc = None
                    self._start_error = (f"sanetd stopped right after it started (exit code {code}). Run sanetd "
                                         f"in a terminal to see why.")
                elif time.monotonic() - self._started_at > self._start_timeout:
                    self._proc = None
                    self._start_error = (f"sanetd was started but has not answered for {self._start_timeout:g} s. "
                                         f"Run sanetd in a terminal to see why.")
                else:
                    return DaemonState(STARTING, "Starting sanetd… The first start loads the model, which can "
                                                 "take a minute.", detail=str(payload))
            if self._start_error:
                return DaemonState(FAILED, self._start_error, detail=str(payload),
                                   can_start=self._find() is not None)
        can_start = self._find() is not None
        if can_start:
            message = "sanetd is not running. Press Start to start it: the preview and OK need it."
        else:
            message = ("sanetd is not running, and no sanetd is installed where the sanet-style installer puts "
                       "it. Run the installer, or start sanetd yourself: this dialog connects as soon as it runs.")
        return DaemonState(NOT_RUNNING, message, detail=str(payload), can_start=can_start)

    def _loop(self):
        while not self._closed:
            try:
                state = self._next_state()
            except Exception as exc:  # noqa: BLE001  a broken probe must not end the monitor
                state = DaemonState(NOT_RUNNING, f"Cannot reach sanetd: {exc}", detail=repr(exc))
            if self._closed:
                return
            if state != self.state:
                self.state = state
                self._on_change(state)
            self._wake.wait(self._poll_running_s if state.running else self._poll_down_s)
            self._wake.clear()
