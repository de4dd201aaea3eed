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

    def evicts(self, nbytes: int) -> list:
        """The keys (oldest first) that putting a new item of nbytes would push out."""
        over, out = self.nbytes + nbytes - self.max_bytes, []
        extra = len(self._items) + 1 - self.max_entries
        for key, (_, b) in self._items.items():
            if over <= 0 and extra <= 0:
                break
            out.append(key)
            over, extra = over - b, extra - 1
        return out

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0


DEFAULT_CONTENT_BYTES = 1 << 29   # 512 MiB: a 512² preview's SANet maps are ~10 MiB and each T(c, s) ~8 MiB


class ContentCache:
    """Feature reuse across calls for one content (a layer the artist keeps re-stylizing):

      ("features", content key)                 → the encoder's feature maps (None when a tiled plan re-encodes
                                                  them) and their whole-image statistics (sanet.runtime.stats.Stats)
      ("t", content key, transform key, region) → T(c, s) of one style memory (or T(c, c)) over `region`: the
                                                  decoder inputs (name → map) before the mix

    The content key names everything that changes the maps: model, weights generation, dtype, the content's pixels
    at the size the call runs at, its SCSA label map, the plan's tile side (tiles agree with the whole image only to
    rounding, and a reused result must be bit-equal to a fresh run of the same call). A transform key names everything that changes one T: the
    style memory's own cache key (model, pixels, size cap, label map, key options, dtype), SCSA's (t1, t2), the query
    chunk. Regions are on the relu4_1 grid (ga, gb, gc, gd) = cells ga:gb × gc:gd; a T computed over a region serves
    any region inside it (sliced). Nothing that only the mix or later steps read (α, style weights, region masks,
    colour preservation, the selection) is part of any key. One LRU over all items, bounded in bytes and entries.
    """

    def __init__(self, max_bytes: int = DEFAULT_CONTENT_BYTES, max_entries: int = 256):
        self._lru = FeatureCache(max_entries, max_bytes)
        self._regions: dict[tuple, list[tuple[int, int, int, int]]] = {}

    @property
    def nbytes(self) -> int:
        return self._lru.nbytes

    @property
    def max_bytes(self) -> int:
        return self._lru.max_bytes

    def __len__(self) -> int:
        return len(self._lru)

    def features(self, ckey) -> tuple | None:
        """(maps or None, stats) of a content, or None."""
        return self._lru.get(("features", ckey))

    def put_features(self, ckey, maps: dict | None, stats) -> None:
        self._lru.put(("features", ckey), (maps, stats), tensor_bytes(maps) + 4096)

    def transformed(self, ckey, tkey, region: tuple[int, int, int, int], factors: dict[str, int]) -> dict | None:
        """T over `region` (name → map on the region's grid at factors[name] px per cell), sliced from a cached T
        whose region contains it; None if there is none."""
        ga, gb, gc, gd = region
        regions = self._regions.get((ckey, tkey))
        if not regions:
            return None
        for r in list(regions):
            ra, rb, rc, rd = r
            if not (ra <= ga and gb <= rb and rc <= gc and gd <= rd):
                continue
            hit = self._lru.get(("t", ckey, tkey, r))
            if hit is None:                  # evicted since: forget the region
                regions.remove(r)
                continue
            if r == region:
                return hit
            out = {}
            for name, x in hit.items():
                f = 8 // factors[name] if factors[name] <= 8 else None
                if f is not None:            # finer than relu4_1 (AdaAttN's relu3_1 skip): f cells per relu4_1 cell
                    out[name] = x[:, :, (ga - ra) * f:(gb - ra) * f, (gc - rc) * f:(gd - rc) * f]
                else:
                    d = factors[name] // 8
                    out[name] = x[:, :, (ga - ra) // d:(gb - ra) // d, (gc - rc) // d:(gd - rc) // d]
            return out
        return None

    def put_transformed(self, ckey, tkey, region: tuple[int, int, int, int], outs: dict) -> None:
        """Keep T unless that would push out its own content's features: those save the encoder, the larger cost
        (a 4K layer's maps and Ts do not all fit: its features stay, and the Ts of as many tiles as fit beside)."""
        nbytes = tensor_bytes(outs)
        if ("features", ckey) in self._lru.evicts(nbytes):
            return
        self._lru.put(("t", ckey, tkey, region), outs, nbytes)
        if ("t", ckey, tkey, region) in self._lru:
            regions = self._regions.setdefault((ckey, tkey), [])
            if region not in regions:
                regions.append(region)
        if len(self._regions) > 2 * max(1, self._lru.max_entries):   # forget the regions of evicted items
            for k in list(self._regions):
                self._regions[k] = [r for r in self._regions[k] if ("t", *k, r) in self._lru]
                if not self._regions[k]:
                    del self._regions[k]

    def clear(self) -> None:
        self._lru.clear()
        self._regions.clear()
