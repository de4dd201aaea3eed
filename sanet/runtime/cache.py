"""The one style-feature cache: encoded styles (attention memories) by model, pixels, size cap, label map, options
and dtype; least-recently-used out first, bounded in entries AND bytes. Library styles of the daemon, styles given as
pixels and labelled (SCSA) styles all land here; Stylizer.clear_cache() empties it (the out-of-memory chain does).
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict

import numpy as np
import torch

DEFAULT_ENTRIES = 8
DEFAULT_BYTES = 1 << 30


def image_key(arr: np.ndarray) -> str:
    """Digest of an image's pixels, shape and dtype."""
    arr = np.asarray(arr)
    h = hashlib.blake2b(np.ascontiguousarray(arr).data, digest_size=16)
    h.update(f"{arr.shape}{arr.dtype}".encode())
    return h.hexdigest()


def tensor_bytes(obj) -> int:
    """Bytes of all tensors reachable through dataclass fields, tuples, lists and dicts."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(tensor_bytes(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    if isinstance(obj, (tuple, list)):
        return sum(tensor_bytes(x) for x in obj)
    if isinstance(obj, dict):
        return sum(tensor_bytes(x) for x in obj.values())
    return 0


class FeatureCache:
    def __init__(self, max_entries: int = DEFAULT_ENTRIES, max_bytes: int = DEFAULT_BYTES):
        self.max_entries = max(0, int(max_entries))
        self.max_bytes = max(0, int(max_bytes))
        self._items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        return key in self._items

    def get(self, key):
        hit = self._items.get(key)
        if hit is None:
            return None
        self._items.move_to_end(key)
        return hit[0]

    def put(self, key, value, nbytes: int | None = None) -> None:
        nbytes = tensor_bytes(value) if nbytes is None else int(nbytes)
        if key in self._items:
            self.nbytes -= self._items.pop(key)[1]
        if nbytes > self.max_bytes or self.max_entries == 0:
            return                                     # larger than the whole cache: used once, not kept
        self._items[key] = (value, nbytes)
        self.nbytes += nbytes
        while len(self._items) > self.max_entries or self.nbytes > self.max_bytes:
            _, (_, b) = self._items.popitem(last=False)
            self.nbytes -= b

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0
