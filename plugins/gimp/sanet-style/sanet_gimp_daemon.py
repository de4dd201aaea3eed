"""sanetd for the artist: whether it is there (DaemonMonitor, the dialog's top line), and starting it (the
dialog's Start button, or "Start sanetd when needed" for scripts and Repeat).

Finding and starting the installer's sanetd is sanet_client.launch's (shared with Krita); this module waits for
it and follows its state. Pure Python; tested outside GIMP with a real sanetd.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

def _launch():
    """sanet_client.launch: the one definition of where the installer's sanetd is and how it is started."""
    from sanet_gimp_job import import_client
    import_client()
    from sanet_client import launch
    return launch


START_TIMEOUT_S = _launch().START_TIMEOUT_S   # loading the model can take a while the first time


def find_sanetd():
    return _launch().find_sanetd()


def sanetd_candidates():
    return _launch().sanetd_candidates()


def start_sanetd(command: str, env=None):
    return _launch().start_sanetd(command, env=env)


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
    """"sanetd is ready: SANet and AdaAttN on the CPU." — the models it has weights for (hello "models"; an older
    sanetd names its one model) and where they run; a shared server is named with the client we are."""
    devices = [str(d).lower() for d in (hello.get("devices") or [])] or [str(hello.get("device") or "").lower()]
    device = devices[0]
    where = _DEVICE_WORDS.get(device.split(":", 1)[0], f"on {device}" if device else "")
    if len(devices) > 1 and device.startswith("cuda"):
        where = f"on {len(devices)} GPUs (CUDA)"
    if isinstance(hello.get("models"), list):
        from sanet_gimp_job import import_client
        protocol = import_client().protocol
        names = [m["display"] for m in protocol.hello_models(hello)]
        model = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names) or "no model"
    else:
        model = str((hello.get("model") or {}).get("name") or "").split(" (", 1)[0] or "the model"
    if hello.get("transport") == "network":     # a shared server, through a connection file from `sanetd invite`
        return f"Connected to the shared sanetd as {hello.get('client')}: {model} {where}.".replace(" .", ".")
    return f"sanetd is ready: {model} {where}.".replace(" .", ".")


def installed_models(hello) -> list | None:
    """Names of the models sanetd has weights for (an older sanetd: SANet only); None without a hello."""
    if not hello:
        return None
    from sanet_gimp_job import import_client
    return [m["name"] for m in import_client().protocol.hello_models(hello)]


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
                self._start_error = (f"{_launch().not_found_message()}: this dialog connects as soon as it "
                                     f"runs.")
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
            if kind == FAILED and proc is None:   # e.g. a shared server that refuses us or does not answer:
                return DaemonState(FAILED, str(payload), detail=str(payload))   # nothing to start here
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
