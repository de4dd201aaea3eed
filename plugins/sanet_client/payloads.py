"""The pixel payloads a client sends and receives: plain bytes plus geometry, no numpy."""
from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import LABEL_FORMATS, LAYER_FORMATS, MASK_FORMATS


def _check(kind: str, width: int, height: int, fmt: str, data, formats: dict) -> None:
    if fmt not in formats:
        raise ValueError(f"{kind} format {fmt!r} is not one of {', '.join(formats)}")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise ValueError(f"{kind} size {width}x{height} is not a positive integer size")
    need = width * height * formats[fmt]
    have = memoryview(data).nbytes
    if have != need:
        raise ValueError(f"{kind} data is {have} bytes; {width}x{height} {fmt} needs {need}")


@dataclass
class Layer:
    """Row-major RGBA pixels: rgba8 (uint8), rgba16 (uint16 LE) or rgbaf32 (float32 LE, 0..1)."""

    width: int
    height: int
    format: str
    data: object  # bytes-like

    def __post_init__(self):
        _check("layer", self.width, self.height, self.format, self.data, LAYER_FORMATS)


@dataclass
class Mask:
    """A selection or region mask: u8 (0..255) or f32 (0..1), placed at (x, y) inside the layer."""

    width: int
    height: int
    format: str
    data: object
    x: int = 0
    y: int = 0

    def __post_init__(self):
        _check("mask", self.width, self.height, self.format, self.data, MASK_FORMATS)


@dataclass
class Labels:
    """An SCSA label map: integer labels u8 / u16 (LE), or a colour-coded rgba8 map (alpha ignored).

    The layer's map has the layer's size; a style's map has that style image's size."""

    width: int
    height: int
    format: str
    data: object

    def __post_init__(self):
        _check("label map", self.width, self.height, self.format, self.data, LABEL_FORMATS)


@dataclass
class StylePixels:
    """A style image sent with the request (any layer format), with its weight and optional region."""

    width: int
    height: int
    format: str
    data: object
    weight: float = 1.0
    region: Mask | None = None
    labels: Labels | None = None   # SCSA: this style's label map, at the style's size

    def __post_init__(self):
        _check("style", self.width, self.height, self.format, self.data, LAYER_FORMATS)


@dataclass
class StyleRef:
    """A style from the daemon's library (``styles_list()`` gives the ids)."""

    style_id: str
    weight: float = 1.0
    region: Mask | None = None
    labels: Labels | None = None   # SCSA: at the library image's size (styles_list() width/height)


@dataclass
class Result:
    """The stylized layer: same size and format as the submitted layer; ``info`` says what was done."""

    width: int
    height: int
    format: str
    data: bytes
    info: dict = field(default_factory=dict)
