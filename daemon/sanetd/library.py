"""The style library: named style images kept in <data dir>/styles/<id>/ as PNG + thumbnail + JSON.

An id is derived from the pixels, so adding the same image twice gives the same entry (idempotent).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

import sanet

THUMB_SIDE = 128


def _thumbnail_png(rgba: np.ndarray) -> bytes:
    if rgba.dtype == np.uint16:
        rgba8 = (rgba >> 8).astype(np.uint8)
    elif rgba.dtype != np.uint8:
        rgba8 = np.rint(np.clip(np.nan_to_num(rgba, nan=0.0), 0.0, 1.0) * 255).astype(np.uint8)
    else:
        rgba8 = rgba
    img = Image.fromarray(np.ascontiguousarray(rgba8), "RGBA")
    img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


class StyleLibrary:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()  # add/remove run on a helper thread, list/load elsewhere

    def _dir(self, style_id: str) -> Path:
        return self.root / style_id

    def exists(self, style_id: str) -> bool:
        return (self._dir(style_id) / "meta.json").is_file()

    def meta(self, style_id: str) -> dict | None:
        """A style's metadata (id, name, width, height, bits, added), or None when it is not (readably) there."""
        try:
            return json.loads((self._dir(style_id) / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def add(self, name: str, rgba: np.ndarray) -> dict:
        """Store an H×W×4 uint8/uint16/float32 image; returns its metadata."""
        digest = hashlib.sha256(f"{rgba.shape}{rgba.dtype.str}".encode())
        digest.update(np.ascontiguousarray(rgba).data)
        style_id = digest.hexdigest()[:16]
        if rgba.dtype not in (np.uint8, np.uint16):  # float styles are kept as 16-bit PNG
            rgba = np.rint(np.clip(np.nan_to_num(rgba, nan=0.0), 0.0, 1.0) * 65535).astype(np.uint16)
        meta = {"id": style_id, "name": name, "width": int(rgba.shape[1]), "height": int(rgba.shape[0]),
                "bits": 8 * rgba.dtype.itemsize, "added": time.time()}
        with self._lock:
            final = self._dir(style_id)
            if final.is_dir() and (final / "meta.json").is_file():
                old = json.loads((final / "meta.json").read_text(encoding="utf-8"))
                if old.get("name") != name:  # same pixels under a new name: rename only
                    old["name"] = name
                    self._write_json(final / "meta.json", old)
                return old
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".add-", dir=self.root))
            try:
                sanet.save_image(tmp / "style.png", rgba)
                (tmp / "thumb.png").write_bytes(_thumbnail_png(rgba))
                self._write_json(tmp / "meta.json", meta)
                if final.exists():  # a half-written entry from a crash
                    shutil.rmtree(final)
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return meta

    @staticmethod
    def _write_json(path: Path, data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def list(self) -> list[dict]:
        """Every style's metadata with its PNG thumbnail bytes, oldest first."""
        out = []
        if not self.root.is_dir():
            return out
        for d in self.root.iterdir():
            if d.name.startswith("."):
                continue
            try:
                meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
                meta["thumbnail"] = (d / "thumb.png").read_bytes()
            except (OSError, ValueError):
                continue  # an unreadable entry is skipped, not fatal
            out.append(meta)
        return sorted(out, key=lambda m: (m.get("added", 0), m.get("id", "")))

    def remove(self, style_id: str) -> bool:
        with self._lock:
            d = self._dir(style_id)
            if not d.is_dir():
                return False
            shutil.rmtree(d)
            return True

    def load(self, style_id: str) -> np.ndarray:
        return sanet.load_image(self._dir(style_id) / "style.png")
