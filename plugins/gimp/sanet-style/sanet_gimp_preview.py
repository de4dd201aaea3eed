"""The dialog's live preview without GTK or GIMP: what to read at which scale, and a worker that runs only the
latest request.

The preview shows the selection's bounding box (or the whole layer) at preview size: the plug-in reads that
area already scaled down (GEGL reads a scaled buffer), sends the small layer to sanetd as an ordinary job, and
shows the result; nothing is added to the image. Pure Python; tested outside GIMP against a real sanetd.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class PreviewGeometry:
    """The layer area a preview shows (layer coordinates) and how it is scaled."""

    x: int
    y: int
    w: int
    h: int
    scale: float     # preview pixels per layer pixel (<= 1: a preview never upscales)
    out_w: int       # the preview's size in pixels
    out_h: int

    @property
    def scaled_rect(self) -> tuple:
        """(x, y, w, h) to read in the scaled coordinates of a GEGL buffer read at ``scale``."""
        return (int(math.floor(self.x * self.scale)), int(math.floor(self.y * self.scale)), self.out_w, self.out_h)


def preview_geometry(layer_w: int, layer_h: int, long_side: int, region=None) -> PreviewGeometry:
    """The preview of ``region`` ((x, y, w, h) inside the layer, e.g. the selection's bounds; None: the whole
    layer) with its long side at most ``long_side``."""
    if region is None:
        x, y, w, h = 0, 0, int(layer_w), int(layer_h)
    else:
        x, y, w, h = (int(v) for v in region)
        # clip to the layer: a selection may reach past it
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(int(layer_w), x + w), min(int(layer_h), y + h)
        x, y, w, h = x0, y0, max(0, x1 - x0), max(0, y1 - y0)
    if w <= 0 or h <= 0:
        raise ValueError(f"the preview area {w}x{h} is empty")
    scale = min(1.0, float(long_side) / max(w, h))
    out_w, out_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    return PreviewGeometry(x, y, w, h, scale, out_w, out_h)


class PreviewWorker:
    """One background thread that runs preview requests, only the latest one mattering.

    ``submit(fn)`` queues ``fn(client, cancel_event) -> result``: it replaces a request still waiting, and
    cancels the one running (the client sends the cancel to sanetd at once), so the daemon works on the newest
    settings as soon as it can. ``on_done(seq, result, error)`` is called from the worker thread for the
    request that is still the newest when it ends (superseded ones are dropped silently). The client comes from
    ``make_client()``, is used only by the worker thread, and is made afresh after a failure.
    """

    def __init__(self, make_client, on_done, on_start=None):
        self._make_client = make_client
        self._on_done = on_done
        self._on_start = on_start
        self._cond = threading.Condition()
        self._pending = None      # (seq, fn) waiting to run
        self._cancel = None       # the running request's cancel event
        self._running = None      # seq of the running request
        self._seq = 0             # newest sequence number handed out
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="sanet-style-preview", daemon=True)
        self._thread.start()

    def submit(self, fn) -> int:
        with self._cond:
            self._seq += 1
            self._pending = (self._seq, fn)
            if self._cancel is not None:
                self._cancel.set()
            self._cond.notify_all()
            return self._seq

    def cancel(self) -> None:
        """Drop the waiting request and cancel the running one; neither reports back."""
        with self._cond:
            self._seq += 1
            self._pending = None
            if self._cancel is not None:
                self._cancel.set()
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._pending is not None or self._running is not None

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing runs or waits (tests; the dialog never blocks)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and self._running is None, timeout)

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._pending = None
            if self._cancel is not None:
                self._cancel.set()
            self._cond.notify_all()
        self._thread.join(timeout)

    def _loop(self):
        client = None
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._pending is not None or self._closed)
                    if self._closed:
                        return
                    (seq, fn), self._pending = self._pending, None
                    cancel = self._cancel = threading.Event()
                    self._running = seq
                if self._on_start is not None:
                    self._on_start(seq)
                result = error = None
                try:
                    if client is None:
                        client = self._make_client()
                    result = fn(client, cancel)
                except Exception as exc:  # reported to the dialog (not running, bad input, cancelled, ...)
                    error = exc
                    if client is not None and not cancel.is_set():
                        _close_quietly(client)   # a failed connection: the next request starts afresh
                        client = None
                with self._cond:
                    self._cancel = self._running = None
                    newest = seq == self._seq and not self._closed
                    self._cond.notify_all()
                if newest:
                    self._on_done(seq, result, error)
        finally:
            if client is not None:
                _close_quietly(client)


def _close_quietly(client):
    try:
        client.close()
    except Exception:  # noqa: BLE001  closing a broken client must not stop the worker
        pass
