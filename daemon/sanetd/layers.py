"""Layers sanetd keeps after a job, so a client can name one again instead of resending it (feature "layer_ref").

The worker computes each stylize layer's digest (`layer_digest`: BLAKE2b-128 over format, size and pixels), keeps
the layer's buffer under it and reports it as `result.info.layer_ref`; the engine's feature reuse is keyed by the
same digest (sanet.Stylizer.stylize(content_key=...)). A later request may give `layer: {width, height, format,
ref}` without a buffer: the I/O thread resolves it here before the job is queued (`unknown_layer` when the layer is no
longer kept), so a queued job never loses its pixels to an eviction. Least recently used out first, bounded in bytes;
thread-safe (the I/O thread reads, the worker adds).
"""
from __future__ import annotations

import collections
import hashlib
import threading

DEFAULT_BYTES = 256 << 20   # 32 full-HD rgba8 layers, or 256 previews of 512²


def layer_digest(fmt: str, width: int, height: int, buf) -> str:
    """32 hex digits naming a layer's pixels (what result.info.layer_ref carries)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{fmt}:{width}x{height}:".encode())
    h.update(memoryview(getattr(buf, "buffer", buf)).cast("B"))
    return h.hexdigest()


class LayerStore:
    def __init__(self, max_bytes: int = DEFAULT_BYTES):
        self.max_bytes = max(0, int(max_bytes))
        self._items: collections.OrderedDict[str, tuple[str, int, int, object, int]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0

    def put(self, ref: str, fmt: str, width: int, height: int, buf) -> None:
        """Keep `buf` (any bytes-like; kept as is, not copied) under `ref`."""
        size = memoryview(getattr(buf, "buffer", buf)).nbytes
        with self._lock:
            old = self._items.pop(ref, None)
            if old is not None:
                self.nbytes -= old[4]
            if size > self.max_bytes:
                return
            self._items[ref] = (fmt, width, height, buf, size)
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                _, item = self._items.popitem(last=False)
                self.nbytes -= item[4]

    def get(self, ref: str) -> tuple[str, int, int, object] | None:
        """(format, width, height, buffer) of a kept layer, or None."""
        with self._lock:
            item = self._items.get(ref)
            if item is None:
                return None
            self._items.move_to_end(ref)
            return item[:4]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0
