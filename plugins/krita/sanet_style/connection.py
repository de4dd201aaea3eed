"""The connection to sanetd as an explicit state machine with a heartbeat (krita-ai-diffusion's
model/connection.py is the model).

    CONNECTING ──hello ok──► CONNECTED ──ping fails──► NOT_RUNNING ──hello ok──► CONNECTED
         │                        ▲                       │  ▲
         └──other failure──► ERROR ┘ (retried)   Start ───┘  └── sanetd exited / did not come up: ERROR

One Monitor per Krita process, shared by the docker and the dialog. A plain thread owns one sanet_client
Client: while connected it pings every HEARTBEAT_S (the daemon answers pings from its I/O thread even while a job
runs), so "connected" never outlives the daemon by more than HEARTBEAT_S + PING_TIMEOUT_S; while not connected it
says hello every RETRY_S and notices the daemon coming back (it re-reads the connection file, so a restarted
daemon with a new key and socket is found). The UI reads immutable Status snapshots (snapshot()) from a
QTimer on the main thread; nothing here touches Qt or Krita, so it is tested outside Krita against a real sanetd.
"""
import threading
import time

from . import messages, server

CONNECTING, CONNECTED, NOT_RUNNING, ERROR = "connecting", "connected", "not running", "error"
STATES = (CONNECTING, CONNECTED, NOT_RUNNING, ERROR)
HEARTBEAT_S = 2.0        # ping interval while connected
RETRY_S = 2.0            # hello interval while not connected
PING_TIMEOUT_S = 2.0     # a ping (or hello) unanswered this long = the daemon is gone
START_POLL_S = 0.5       # hello interval while a sanetd we started is coming up


class Status:
    """One immutable snapshot of the connection, for the UI."""

    def __init__(self, state, detail="", hello=None, library=(), serial=0, library_serial=0, can_start=False,
                 starting=False, retrying=True, start_failed=False, remote=False):
        self.state = state
        self.detail = detail            # the reason (NOT_RUNNING, ERROR) or what is happening (CONNECTING)
        self.hello = hello or {}
        self.library = list(library)    # styles.list entries (with PNG thumbnails)
        self.serial = serial            # changes whenever anything here changes
        self.library_serial = library_serial
        self.can_start = can_start      # a sanetd executable was found (the Start button makes sense)
        self.starting = starting        # we started one and wait for it to answer
        self.retrying = retrying        # the heartbeat keeps trying (False: nothing will change by itself)
        self.start_failed = start_failed  # the ERROR is about a sanetd we started (Start may be tried again)
        self.remote = remote            # the Server is a shared one (a connection file from `sanetd invite`)

    @property
    def offer_start(self):
        """Show Start: nothing answers and a sanetd can be launched (not when one runs but is unusable)."""
        return self.can_start and (self.state == NOT_RUNNING or (self.state == ERROR and self.start_failed))

    @property
    def connected(self):
        return self.state == CONNECTED

    @property
    def device(self):
        return str(self.hello.get("device") or "")

    @property
    def model_name(self):
        model = self.hello.get("model")
        return str(model.get("name") or "") if isinstance(model, dict) else ""

    def headline(self):
        if self.state == CONNECTED and self.hello.get("transport") == "network":
            return "Shared sanetd connected as %s" % self.hello.get("client") + (
                " (%s)" % self.device if self.device else "")
        if self.state == CONNECTED:
            return "sanetd connected" + (" (%s)" % self.device if self.device else "")
        if self.remote and self.state == CONNECTING:
            return "Connecting to the shared sanetd…"
        if self.remote and self.state == NOT_RUNNING:
            return "The shared sanetd does not answer"
        if self.state == CONNECTING:
            return "Starting sanetd…" if self.starting else "Connecting to sanetd…"
        if self.state == NOT_RUNNING:
            return "sanetd is not running"
        return "sanetd cannot be used"

    def text(self):
        """The detail paragraph under the headline: whole sentences, then what happens next."""
        if self.state == CONNECTED:
            return ""
        if self.state == CONNECTING:
            return messages.sentence(self.detail) if self.detail else ""
        tail = "Retrying…" if self.retrying else ""
        if self.state == NOT_RUNNING and self.can_start:
            tail = "Press Start, or start it yourself. " + tail
        return " ".join(t for t in (messages.sentences(self.detail), tail.strip()) if t)


class Monitor:
    """Heartbeat thread + state machine. ``client_module`` is sanet_client; ``launcher`` its launch module
    (None: no Start button)."""

    def __init__(self, client_module, launcher=None, heartbeat=HEARTBEAT_S, retry=RETRY_S,
                 timeout=PING_TIMEOUT_S, env=None, connection_file=None):
        self.mod = client_module
        self.launcher = launcher
        self.connection_file = connection_file or None   # the Server: None = this computer
        self._new_server = threading.Event()
        self.heartbeat, self.retry, self.timeout = float(heartbeat), float(retry), float(timeout)
        self.env = env
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._want_library = threading.Event()
        self._thread = None
        self._proc = None              # a sanetd we started and wait for
        self._start_deadline = 0.0
        self._command = None
        self._start_failure = None     # why the sanetd we started did not come up (shown until the next try)
        self._children = []            # every sanetd we started: polled so that an exited one is reaped
        self._status = Status(CONNECTING, can_start=self._can_start())

    # ---- for the UI (any thread) ---------------------------------------------------------------
    def snapshot(self):
        with self._lock:
            return self._status

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sanet-style-heartbeat", daemon=True)
            self._thread.start()
        return self

    def stop(self, wait=2.0):
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait)

    def check_now(self):
        """Ask the daemon right away (Reconnect, or a job just failed to reach it)."""
        self._wake.set()

    def refresh_library(self):
        """Re-read styles.list at the next check (after a style was added or removed)."""
        self._want_library.set()
        self._wake.set()

    def set_connection_file(self, path):
        """Another Server (None: this computer): the heartbeat drops its client and says hello there."""
        self.connection_file = path or None
        self._new_server.set()
        self._set(CONNECTING)
        self._wake.set()

    def start_daemon(self):
        """Launch sanetd as the installer set it up; returns None, or a message saying why it cannot."""
        if server.is_remote(self.mod, self.connection_file):
            return "The shared sanetd runs on another computer: whoever runs it starts it."
        if self.launcher is None:
            return "This sanet_client cannot start sanetd; start it yourself."
        status = self.snapshot()
        if status.connected or status.starting:
            return None
        command = self.launcher.find_sanetd(self.env)
        if command is None:
            return self.launcher.not_found_message(self.env)
        try:
            proc = self.launcher.start_sanetd(command, self.env)
        except OSError as exc:
            return "Could not start %s: %s" % (command, exc)
        with self._lock:
            self._proc, self._start_deadline = proc, time.monotonic() + self.launcher.START_TIMEOUT_S
            self._command, self._start_failure = command, None
            self._children.append(proc)
        self._set(CONNECTING, "Loading the model can take a while the first time.")
        self._wake.set()
        return None

    # ---- the thread ----------------------------------------------------------------------------
    def _can_start(self):
        if server.is_remote(self.mod, self.connection_file):
            return False
        try:
            return self.launcher is not None and self.launcher.find_sanetd(self.env) is not None
        except Exception:
            return False

    def _set(self, state, detail="", hello=None, library=None):
        with self._lock:
            old = self._status
            if state != CONNECTED:
                hello = {}
            elif hello is None:
                hello = old.hello
            lib_serial = old.library_serial
            if library is None:
                library = old.library
            else:
                lib_serial += 1
            starting = self._proc is not None and state == CONNECTING
            can_start = self._can_start() if state != CONNECTED else old.can_start
            failed = state == ERROR and self._start_failure is not None
            remote = server.is_remote(self.mod, self.connection_file)
            new = Status(state, detail, hello, library, old.serial, lib_serial, can_start, starting,
                         start_failed=failed, remote=remote)
            if (new.state, new.detail, new.hello, new.library_serial, new.can_start, new.starting, failed,
                    remote) != (old.state, old.detail, old.hello, old.library_serial, old.can_start, old.starting,
                                old.start_failed, old.remote):
                new.serial = old.serial + 1
                self._status = new

    def _starting(self):
        """While a sanetd we started may still come up: None; else why it will not (and forget it)."""
        proc = self._proc
        if proc is None:
            return "not started"
        code = proc.poll()
        if code is not None:
            self._proc = None
            self._start_failure = ("sanetd (%s) exited with code %s right after starting; run it in a terminal "
                                   "to see why" % (self._command, code))
        elif time.monotonic() > self._start_deadline:
            self._proc = None
            self._start_failure = "sanetd (%s) did not answer within %d s of starting" % (
                self._command, self.launcher.START_TIMEOUT_S)
        else:
            return None
        return self._start_failure

    def _reap(self):
        """A sanetd we started is our child: once it exits (crash, kill) reap it, or its pid would still look
        alive to sanet_client's stale-connection-file check."""
        self._children = [p for p in self._children if p.poll() is None]

    def _run(self):
        client = None
        while not self._stop.is_set():
            self._reap()
            if self._new_server.is_set():
                self._new_server.clear()
                client = _close(client)
            state = self.snapshot().state
            try:
                if client is None:
                    client = self.mod.Client(connection_file=self.connection_file, timeout=self.timeout, retries=1)
                if state != CONNECTED:
                    hello = client.hello()
                    self._want_library.clear()
                    library = client.styles_list()
                    self._proc = self._start_failure = None
                    self._set(CONNECTED, hello=hello, library=library)
                else:
                    client.ping()
                    if self._want_library.is_set():
                        self._want_library.clear()
                        self._set(CONNECTED, library=client.styles_list())
            except self.mod.DaemonNotRunning as exc:
                client = _close(client)
                why = self._starting()
                if why is None:
                    self._set(CONNECTING, "Loading the model can take a while the first time.")
                elif why == "not started" and self._start_failure is None:
                    self._set(NOT_RUNNING, str(exc))
                else:       # our Start failed: say why until the next Start or until a sanetd answers
                    self._set(ERROR, self._start_failure)
            except self.mod.SanetClientError as exc:
                client = _close(client)
                self._set(ERROR, str(exc))
            except Exception as exc:   # a bug or a broken install must show, not kill the heartbeat
                client = _close(client)
                self._set(ERROR, "%s: %s" % (type(exc).__name__, exc))
            status = self.snapshot()
            wait = self.heartbeat if status.connected else START_POLL_S if status.starting else self.retry
            self._wake.wait(wait)
            self._wake.clear()
        _close(client)


def _close(client):
    if client is not None:
        try:
            client.close()
        except Exception:
            pass
    return None
