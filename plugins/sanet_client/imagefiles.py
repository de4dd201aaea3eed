"""Image files for the command-line tools: the one definition of what `sanet stylize` and `sanet-client
stylize` read, which output format an extension means, and how every pixel is kept.

CLI only: this module needs numpy, and OpenCV (PNG, JPEG, WebP, BMP) or tifffile (TIFF) for those formats,
imported when a file of that kind is read or written. The editors never import it (they hand the client raw
pixels); ``import sanet_client`` does not load it.

What a stylized file holds (both commands, same table):

===============  ======================================  ===========================  ==========================
content          ``.png``                                ``.tif`` / ``.tiff``         ``.npy``
===============  ======================================  ===========================  ==========================
8-bit            8-bit, same channels                    8-bit, same channels         float32 H×W×3, unclamped
16-bit           16-bit, same channels                   16-bit, same channels        (the decoder output with
float            16-bit, same channels (PNG has no float) same float type, same ch.    the controls applied)
===============  ======================================  ===========================  ==========================

"Same channels": gray stays gray (the luma of the stylized RGB), gray+alpha, RGB and RGBA keep their layout,
and alpha is copied bit-exactly. Anything else as the output extension is refused before any work is done.

Every function that can fail takes ``error``: the exception class to raise (``ImageFileError`` here;
sanet passes its own InputError), with a one-line message naming the file and the problem.
"""
from __future__ import annotations

from pathlib import Path

OUTPUT_KINDS = {".png": "png", ".tif": "tif", ".tiff": "tif", ".npy": "npy"}
OUTPUT_SUFFIXES = tuple(OUTPUT_KINDS)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)   # BT.601, as in YCbCr: a gray layer's value from stylized RGB


class ImageFileError(ValueError):
    """A file that cannot be read or written as asked; str() is the one line to show."""


# ------------------------------------------------------------------------------------------------ output paths

def check_output_path(path, error=ImageFileError) -> str:
    """Before any work: the output kind ("png", "tif", "npy") of ``path``, and its folder must exist."""
    path = Path(path)
    kind = OUTPUT_KINDS.get(path.suffix.lower())
    if kind is None:
        raise error(f"{path}: unsupported output format '{path.suffix}': expected .png, .tif, .tiff or .npy")
    parent = path.parent
    if not parent.exists():
        raise error(f"{parent}: output folder does not exist")
    if not parent.is_dir():
        raise error(f"{parent}: not a folder (output {path})")
    if path.is_dir():
        raise error(f"{path}: is a folder, not an output file")
    return kind


# ------------------------------------------------------------------------------------------------ pixels

def _np():
    import numpy as np
    return np


def luma():
    np = _np()
    return np.array(LUMA_WEIGHTS, dtype=np.float32)


def scale_of(dtype, error=ImageFileError) -> float | None:
    """Full-scale value of an integer sample type (None for float); error for any other type."""
    np = _np()
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return None
    raise error(f"image dtype {dtype} is not supported: expected uint8, uint16 or float")


def to_float(arr, error=ImageFileError):
    """Samples as float32 in [0, 1] nominal (integers scaled, floats as they are)."""
    np = _np()
    scale = scale_of(arr.dtype, error)
    out = arr.astype(np.float32)
    return out / scale if scale else out


def from_float(arr, dtype, error=ImageFileError):
    """float → ``dtype``: clipped to [0, 1], integers rounded to nearest."""
    np = _np()
    scale = scale_of(np.dtype(dtype), error)
    clipped = np.clip(arr, 0.0, 1.0)
    if scale:
        return np.rint(clipped * scale).astype(dtype)
    return clipped.astype(dtype)


def check_image_array(arr, what: str, error=ImageFileError) -> None:
    """H×W or H×W×C (C in 1..4), non-empty, uint8/uint16/float."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise error(f"{what}: shape {arr.shape} is not an image: expected H×W or H×W×C with C in 1..4")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise error(f"{what}: empty image ({arr.shape[1]}×{arr.shape[0]})")
    scale_of(arr.dtype, error)


def check_input_sizes(content, styles, regions, selection, content_labels, style_labels,
                      error=ImageFileError) -> None:
    """Before any work: masks have the content's size, label maps their image's size, and the SCSA pairing rule
    (a content label map if and only if some style has one). The engine says the same things, later."""
    from .protocol import scsa_pairing_problem
    h, w = content.shape[:2]

    def mask(m, what):
        if m.ndim not in (2, 3):
            raise error(f"{what}: shape {m.shape} is not a mask: expected H×W")
        if m.shape[:2] != (h, w):
            raise error(f"{what}: size {m.shape[1]}×{m.shape[0]} does not match the content size {w}×{h}")
    if selection is not None:
        mask(selection, "selection")
    for i, r in enumerate(regions):
        if r is not None:
            mask(r, f"style {i + 1} region")
    problem = scsa_pairing_problem(content_labels is not None, [s is not None for s in style_labels])
    if problem == "content_labels_missing":
        raise error("a style has a label map but the content has none: give a content label map too "
                    "(content_labels, --content-labels) or drop the style label maps")
    if problem == "style_labels_missing":
        raise error("content label map given but no style has a label map: give one for at least one style "
                    "(Style(labels=...), --style-labels)")
    if content_labels is not None and content_labels.shape[:2] != (h, w):
        raise error(f"content label map: size {content_labels.shape[1]}×{content_labels.shape[0]} does not "
                    f"match the content size {w}×{h}")
    for i, (lab, img) in enumerate(zip(style_labels, styles)):
        if lab is not None and img is not None and lab.shape[:2] != img.shape[:2]:
            raise error(f"style {i + 1} label map: size {lab.shape[1]}×{lab.shape[0]} does not match the style "
                        f"image size {img.shape[1]}×{img.shape[0]}")


def mask_plane(mask, error=ImageFileError):
    """A mask file's soft mask as the engine reads it: the first channel, scaled to [0, 1], NaN → 0, clamped."""
    np = _np()
    m = mask[:, :, 0] if mask.ndim == 3 else mask
    out = m.astype(np.float32) if m.dtype == bool else to_float(m, error)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


def content_for_output(content, kind: str):
    """What the engine is given for an output kind: PNG holds float content as 16-bit (rounded to nearest)."""
    np = _np()
    if kind == "png" and content.dtype not in (np.uint8, np.uint16):
        # in float64: float16 content would overflow at 65535
        return (np.clip(np.nan_to_num(content.astype(np.float64), nan=0.0), 0, 1) * 65535 + 0.5).astype(np.uint16)
    return content


# ------------------------------------------------------------------------------------------------ files

def load_image(path, error=ImageFileError):
    """PNG/JPEG/WebP/BMP (8/16-bit, gray, alpha) via OpenCV, TIFF via tifffile, .npy as is. RGB(A) order."""
    np = _np()
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile
            arr = tifffile.imread(path)
        else:
            import cv2
            arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise ValueError("unreadable or unsupported image format")
            if arr.ndim == 3 and arr.shape[2] == 4 and _png_colour_type(path) == 4:
                arr = arr[:, :, [0, 3]]   # a gray+alpha PNG (OpenCV expands it to BGRA): gray stays gray
            elif arr.ndim == 3 and arr.shape[2] == 3:
                arr = arr[:, :, ::-1]
            elif arr.ndim == 3 and arr.shape[2] == 4:
                arr = arr[:, :, [2, 1, 0, 3]]
    except Exception as exc:  # any decoder failure is the file's problem, said in one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise error(f"{path}: cannot read image: {first}") from None
    arr = np.ascontiguousarray(arr)
    if arr.size == 0:
        raise error(f"{path}: empty image")
    check_image_array(arr, str(path), error)
    return arr


def _png_colour_type(path: Path) -> int | None:
    """The colour type byte of a PNG's IHDR (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA), else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return None
    if len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head[25]
    return None


def save_image(path, arr, error=ImageFileError) -> None:
    """Write ``arr`` as the extension says (see the table in the module docstring)."""
    np = _np()
    path = Path(path)
    suffix = path.suffix.lower()
    arr = np.asarray(arr)
    try:
        if suffix == ".npy":
            np.save(path, arr)
        elif suffix in (".tif", ".tiff"):
            import tifffile
            gray = arr.ndim == 2 or arr.shape[2] in (1, 2)
            tifffile.imwrite(path, arr, photometric="minisblack" if gray else "rgb")
        elif suffix == ".png":
            import cv2
            if arr.dtype not in (np.uint8, np.uint16):
                raise error(f"{path}: PNG stores 8- or 16-bit pixels, got {arr.dtype}; use .tif or .npy for float")
            if arr.ndim == 3 and arr.shape[2] == 2:   # gray+alpha: OpenCV cannot write it, Pillow can (8-bit)
                if arr.dtype != np.uint8:
                    raise error(f"{path}: a 16-bit gray+alpha PNG cannot be written here; use .tif (same pixels)")
                from PIL import Image
                Image.fromarray(np.ascontiguousarray(arr), "LA").save(path)
                return
            out = arr
            if arr.ndim == 3 and arr.shape[2] == 3:
                out = arr[:, :, ::-1]
            elif arr.ndim == 3 and arr.shape[2] == 4:
                out = arr[:, :, [2, 1, 0, 3]]
            if not cv2.imwrite(str(path), np.ascontiguousarray(out)):
                raise error(f"{path}: could not write PNG")
        else:
            raise error(f"{path}: unsupported output format '{suffix}': expected .png, .tif, .tiff or .npy")
    except OSError as exc:
        raise error(f"{path}: cannot write: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001  an encoder's own error (e.g. cv2.error): one line naming the file
        if isinstance(exc, error):
            raise
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise error(f"{path}: cannot write image: {first}") from None


# ------------------------------------------------------------------------------------------------ the wire

def layer_format(dtype) -> str:
    """The protocol layer format an image of this sample type travels in (rgba8 / rgba16 / rgbaf32)."""
    np = _np()
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return "rgba8"
    if dtype == np.uint16:
        return "rgba16"
    return "rgbaf32"


def to_rgba(arr):
    """Any accepted image → (format, H×W×4 little-endian array) for the wire: gray repeated into R, G, B; a
    missing alpha is opaque; floats travel as float32."""
    np = _np()
    a = arr[:, :, None] if arr.ndim == 2 else arr
    c = a.shape[2]
    fmt = layer_format(a.dtype)
    dtype = {"rgba8": np.dtype("<u1"), "rgba16": np.dtype("<u2"), "rgbaf32": np.dtype("<f4")}[fmt]
    colour = np.repeat(a[:, :, :1], 3, axis=2) if c in (1, 2) else a[:, :, :3]
    if c in (2, 4):
        alpha = a[:, :, c - 1:]
    else:
        full = {"rgba8": 255, "rgba16": 65535, "rgbaf32": 1.0}[fmt]
        alpha = np.full(a.shape[:2] + (1,), full, dtype=dtype)
    return fmt, np.ascontiguousarray(np.concatenate([colour.astype(dtype), alpha.astype(dtype)], axis=2))


def from_rgba(rgba, like, keep=None):
    """A stylized RGBA result (same size as ``like``, the content as read) → ``like``'s shape and dtype, colour
    from the result, alpha copied from ``like`` bit-exactly, and ``like``'s own pixels where ``keep`` is True
    (outside the selection). For colour content only: gray content is finished from the raw result
    (``gray_from_raw``), as the engine takes its luma from unclamped float RGB."""
    np = _np()
    a = like[:, :, None] if like.ndim == 2 else like
    c = a.shape[2]
    out = np.empty(a.shape, dtype=like.dtype)
    out[:, :, :3] = rgba[:, :, :3].astype(like.dtype)
    if c == 4:
        out[:, :, 3] = a[:, :, 3]
    if keep is not None:
        out[keep] = a[keep]
    return out.reshape(like.shape)


def gray_from_raw(raw, like, keep=None):
    """A gray (or gray+alpha) layer from the raw float RGB result, as the engine makes one: luma of the
    unclamped RGB, then clipped and rounded to ``like``'s sample type; alpha and ``keep`` as in from_rgba."""
    np = _np()
    a = like[:, :, None] if like.ndim == 2 else like
    c = a.shape[2]
    out = np.empty(a.shape, dtype=like.dtype)
    out[:, :, 0] = from_float(raw @ luma(), like.dtype)
    if c == 2:
        out[:, :, 1] = a[:, :, 1]
    if keep is not None:
        out[keep] = a[keep]
    return out.reshape(like.shape)


def is_gray(arr) -> bool:
    return arr.ndim == 2 or arr.shape[2] in (1, 2)
