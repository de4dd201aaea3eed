"""Run one sanetd job off GIMP's main thread, with progress, cancel and a bounded wait.

libgimp calls (progress bar, pixel writes) must stay on the plug-in's main thread, while the client blocks
until the daemon answers. So the client runs in a worker thread and the main thread polls: it forwards
progress, asks "cancelled?", and keeps the UI alive (``run`` blocks and pumps; the dialog uses ``start`` and
``poll`` from its own main loop). Pure Python; tested outside GIMP against a real sanetd.
"""
from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time

_HERE = os.path.dirname(os.path.abspath(__file__))


EVENT_LOG_ENV = "SANET_GIMP_EVENT_LOG"


def emit_event(name, /, **fields):
    """Testing hook: with SANET_GIMP_EVENT_LOG set, append one JSON line per event (what the dialog showed,
    when a run started, its stages, how it ended). Never fails the caller."""
    path = os.environ.get(EVENT_LOG_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(dict(fields, event=name, time=time.time())) + "\n")
    except (OSError, TypeError, ValueError):
        pass


class PluginError(Exception):
    """A failure to show the artist as is: ``str(e)`` says what happened and what to do."""


def client_search_path() -> list:
    """Where sanet_client (and, when vendored, pyzmq + msgpack) may be, best first.

    SANET_CLIENT_PATH (a folder holding sanet_client/), the installer's <plug-in>/vendor, the plug-in folder
    itself; PYTHONPATH is already on sys.path; a source checkout's plugins/ folder comes last.
    """
    dirs = []
    explicit = os.environ.get("SANET_CLIENT_PATH")
    if explicit:
        dirs.append(explicit)
    dirs += [os.path.join(_HERE, "vendor"), _HERE]
    return [d for d in dirs if os.path.isdir(d)]


def import_client():
    """Import sanet_client lazily (GIMP must be able to list the filter even when it is missing)."""
    for d in reversed(client_search_path()):
        if d in sys.path:
            sys.path.remove(d)
        sys.path.insert(0, d)
    try:
        import sanet_client
        return sanet_client
    except ImportError as first:
        repo_plugins = os.path.normpath(os.path.join(_HERE, "..", ".."))  # plugins/ in a source checkout
        if os.path.isdir(os.path.join(repo_plugins, "sanet_client")) and repo_plugins not in sys.path:
            sys.path.append(repo_plugins)
            try:
                import sanet_client
                return sanet_client
            except ImportError:
                pass
        missing = getattr(first, "name", None) or str(first)
        if missing in ("zmq", "msgpack"):
            raise PluginError(
                f"Style Transfer needs the Python package '{missing}' inside GIMP's Python "
                f"({sys.executable}, Python {sys.version_info[0]}.{sys.version_info[1]}). Re-run the sanet-style "
                f"installer for GIMP (it bundles it in {os.path.join(_HERE, 'vendor')}), or install "
                f"'{'pyzmq' if missing == 'zmq' else missing}' for that Python.") from None
        raise PluginError(
            "Style Transfer cannot find its client library 'sanet_client' (looked in "
            f"{', '.join(client_search_path()) or _HERE} and on PYTHONPATH). Re-run the sanet-style installer "
            f"for GIMP, or set SANET_CLIENT_PATH to the folder that contains sanet_client/. ({first})") from None


class Job:
    """One stylize request running in a worker thread. ``submit(on_progress, cancel_event) -> result``."""

    def __init__(self, submit):
        self._submit = submit
        self._events = queue.Queue()
        self.cancel_event = threading.Event()
        self._thread = threading.Thread(target=self._work, name="sanet-style-job", daemon=True)
        self._result = None
        self._error = None

    def _work(self):
        try:
            self._result = self._submit(lambda f, s: self._events.put((float(f), str(s))), self.cancel_event)
        except BaseException as exc:  # handed to the main thread, which reports it
            self._error = exc

    def start(self) -> "Job":
        """Start the worker without blocking (the dialog polls it from its main loop)."""
        self._thread.start()
        return self

    def poll(self, on_progress=None) -> bool:
        """Forward progress on the calling thread; True once the job has ended (see ``outcome``)."""
        self._drain(on_progress)
        if self._thread.is_alive():
            return False
        self._drain(on_progress)
        return True

    def outcome(self):
        """The ended job's result, or its error raised."""
        if self._error is not None:
            raise self._error
        return self._result

    def run(self, on_progress=None, is_cancelled=None, pump=None, poll_s=0.05, cancel_grace_s=15.0):
        """Block (pumping) until the job ends; returns its result or raises its error.

        ``on_progress(fraction, stage)`` and ``pump()`` run on the calling thread. After a cancel the daemon
        gets ``cancel_grace_s`` to confirm; then the worker is abandoned so that GIMP never hangs.
        """
        self.start()
        cancel_at = None
        while not self.poll(on_progress):
            if cancel_at is None and is_cancelled is not None and is_cancelled():
                self.cancel_event.set()
                cancel_at = time.monotonic()
            if cancel_at is not None and time.monotonic() - cancel_at > cancel_grace_s:
                raise PluginError("Style transfer cancelled (sanetd did not confirm the cancel in time).")
            if pump is not None:
                pump()
            self._thread.join(poll_s)
        return self.outcome()

    def _drain(self, on_progress):
        while True:
            try:
                fraction, stage = self._events.get_nowait()
            except queue.Empty:
                return
            if on_progress is not None:
                on_progress(fraction, stage)
