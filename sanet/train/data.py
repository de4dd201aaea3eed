"""Training data: image folders searched recursively, and batches that are a pure function of (seed, iteration).

Batch i holds content draws i·B … i·B + B − 1 and as many style draws. Each stream (content, style) is an infinite
sampler like the released InfiniteSamplerWrapper: a fresh permutation of its files every epoch — here the
permutation of epoch e is drawn from numpy's generator seeded (seed, stream, e), and the crop offsets and flips of
draw t from one seeded (seed, stream, t). Nothing depends on a generator's running state, so a resumed run (or a
loader worker, in any order) produces exactly the batches of an uninterrupted one.

Each image is read with Pillow, converted to RGB, resized to size×size (bilinear, as the released transforms'
Resize((512, 512)); the aspect ratio is not kept), randomly cropped to crop×crop, optionally flipped, scaled to [0, 1].
A file that cannot be read is skipped with one warning line, never a crash: the folder scan opens every file's
header; a file that fails later to decode (e.g. truncated) is replaced by the next file of its stream, the same
way every time.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
CONTENT, STYLE = 0, 1          # stream ids
_CROPS = 2                     # crop/flip streams are stream + _CROPS
PREVIEW_STREAM = 7


def warn(text: str) -> None:
    print(f"sanet: warning: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- folders

@dataclass
class ImageList:
    """The readable images of one folder (paths relative to root, sorted), and how many files were skipped."""
    root: Path
    files: list[str]
    skipped: int = 0

    def path(self, i: int) -> Path:
        return self.root / self.files[i]

    def as_dict(self) -> dict:
        return {"root": str(self.root), "files": self.files, "skipped": self.skipped}

    @classmethod
    def from_dict(cls, d: dict) -> "ImageList":
        return cls(Path(d["root"]), list(d["files"]), int(d.get("skipped", 0)))


def candidate_files(root: Path) -> list[Path]:
    """Files with an image extension under root, recursively (hidden folders skipped), sorted for a stable order."""
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(folder) / n for n in sorted(names)
                if n.lower().endswith(EXTENSIONS) and not n.startswith(".")]
    return out


def _readable(path: Path) -> str | None:
    """None if Pillow can open the file's header and the image is not empty; else why not."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            w, h = im.size
        if w < 1 or h < 1:
            return f"empty image ({w}×{h})"
        return None
    except Exception as exc:  # noqa: BLE001  any failure of a third-party decoder is the file's problem
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def scan_folder(folder: str | os.PathLike, option: str, say=warn) -> ImageList:
    """The readable images under `folder` (for `option`, e.g. "--content"); one warning per unreadable file.
    A missing folder, a file instead of a folder, no image at all or none readable: one InputError."""
    root = Path(folder).expanduser().absolute()
    if not root.exists():
        raise InputError(f"{option} {folder}: no such folder")
    if not root.is_dir():
        raise InputError(f"{option} {folder}: not a folder (give the folder that holds the images)")
    if not os.access(root, os.R_OK | os.X_OK):
        raise InputError(f"{option} {folder}: folder cannot be read (permission denied)")
    found = candidate_files(root)
    if not found:
        raise InputError(f"{option} {folder}: no images found (searched recursively for "
                         f"{', '.join(e[1:] for e in EXTENSIONS)})")
    files, skipped = [], 0
    for p in found:
        why = _readable(p)
        if why is None:
            files.append(p.relative_to(root).as_posix())
        else:
            skipped += 1
            say(f"{p}: unreadable image, skipped ({why})")
    if not files:
        raise InputError(f"{option} {folder}: none of its {len(found)} image file(s) can be read")
    return ImageList(root, files, skipped)


# --------------------------------------------------------------------------------------------- sampling

@lru_cache(maxsize=8)
def _permutation(seed: int, stream: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, stream, epoch]).permutation(n)


def draw(seed: int, stream: int, t: int, n: int) -> int:
    """File index of the t-th draw of `stream` (an infinite sampler: a new permutation every epoch)."""
    epoch, pos = divmod(t, n)
    return int(_permutation(seed, stream, epoch, n)[pos])


def crop_params(seed: int, stream: int, t: int, room: int, flip: bool) -> tuple[int, int, bool]:
    """(top, left, flipped) of the t-th draw of `stream`: offsets in [0, room], a coin for the flip."""
    rng = np.random.default_rng([seed, stream + _CROPS, t])
    top, left = (int(v) for v in rng.integers(0, room + 1, size=2))
    return top, left, bool(flip and rng.random() < 0.5)


# --------------------------------------------------------------------------------------------- pixels

def load_rgb(path: Path, size: int):
    """The image as an RGB Pillow image resized to size×size (bilinear, antialiased like the released Resize)."""
    from PIL import Image
    with Image.open(path) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):    # 16-bit / float gray: scale, don't clip to white
            a = np.asarray(im, dtype=np.float32)
            peak = 65535.0 if im.mode != "F" and a.max() > 255 else 255.0 if im.mode != "F" else max(1.0, a.max())
            im = Image.fromarray(np.clip(a / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
        rgb = im.convert("RGB")
    return rgb.resize((size, size), Image.BILINEAR)


def to_array(img) -> np.ndarray:
    """Pillow RGB → float32 3×H×W in [0, 1] (ToTensor)."""
    return np.ascontiguousarray(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0)


def crop_array(img, top: int, left: int, crop: int, flipped: bool) -> np.ndarray:
    from PIL import Image
    part = img.crop((left, top, left + crop, top + crop))
    if flipped:
        part = part.transpose(Image.FLIP_LEFT_RIGHT)
    return to_array(part)


class Batches:
    """Map-style dataset: item i is iteration i's batch {"content", "style"}: float32 B×3×crop×crop tensors.
    Works in DataLoader workers in any order (every item is a pure function of the seed and i)."""

    def __init__(self, content: ImageList, style: ImageList, batch: int, size: int, crop: int, flip: bool,
                 seed: int, length: int):
        self.lists = {CONTENT: content, STYLE: style}
        self.batch, self.size, self.crop, self.flip, self.seed = batch, size, crop, flip, seed
        self.length = length
        self._bad: set[tuple[int, int]] = set()

    def __len__(self) -> int:
        return self.length

    def image(self, stream: int, t: int) -> np.ndarray:
        files = self.lists[stream]
        n = len(files.files)
        idx = draw(self.seed, stream, t, n)
        for step in range(n):       # a file that fails to decode: the next one of the list, the same every time
            j = (idx + step) % n
            if (stream, j) in self._bad:
                continue
            try:
                img = load_rgb(files.path(j), self.size)
            except Exception as exc:  # noqa: BLE001
                self._bad.add((stream, j))
                warn(f"{files.path(j)}: unreadable image, skipped ({str(exc).splitlines()[0] if str(exc) else exc})")
                continue
            top, left, flipped = crop_params(self.seed, stream, t, self.size - self.crop, self.flip)
            return crop_array(img, top, left, self.crop, flipped)
        raise InputError(f"{files.root}: none of its images can be decoded")

    def __getitem__(self, i: int):
        import torch
        b = self.batch
        return {name: torch.from_numpy(np.stack([self.image(stream, i * b + j) for j in range(b)]))
                for name, stream in (("content", CONTENT), ("style", STYLE))}


def _worker_init(worker_id: int) -> None:
    """Loader workers: one thread each (the training step owns the cores), seeded from their id (nothing here
    draws from them: the batches are pure functions of the seed, this is for any library that does)."""
    import random
    import signal
    import torch
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl+C is the training loop's: it saves, then stops us
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    base = info.seed if info is not None else worker_id
    random.seed(base)
    np.random.seed(base % (1 << 32))


def loader(batches: Batches, start: int, stop: int, workers: int, pin: bool = False):
    """Batches start … stop − 1 in order, read ahead by `workers` processes (0: in this process)."""
    import torch
    from torch.utils.data import DataLoader
    g = torch.Generator().manual_seed(batches.seed)   # DataLoader's own base seed for workers: fixed, not global
    return DataLoader(batches, batch_size=None, sampler=range(start, stop), num_workers=workers,
                      worker_init_fn=_worker_init if workers else None, pin_memory=pin, generator=g,
                      prefetch_factor=2 if workers else None, persistent_workers=False)


def preview_pairs(content: ImageList, style: ImageList, count: int, size: int, crop: int, seed: int):
    """Fixed validation pairs for the preview grid: `count` content and style images picked with the seed, resized
    and centre-cropped like the training crops. Returns (content, style) float32 K×3×crop×crop arrays."""
    rng = np.random.default_rng([seed, PREVIEW_STREAM])
    out = []
    for files in (content, style):
        order = rng.permutation(len(files.files))
        arrays = []
        for j in order:
            try:
                img = load_rgb(files.path(int(j)), size)
            except Exception:  # noqa: BLE001  reported by the training loader when it meets the file
                continue
            off = (size - crop) // 2
            arrays.append(crop_array(img, off, off, crop, False))
            if len(arrays) == count:
                break
        out.append(arrays)
    k = min(len(out[0]), len(out[1]))
    return np.stack(out[0][:k]), np.stack(out[1][:k])
