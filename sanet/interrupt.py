"""Cancellation points inside the engine's stages, so a cancel takes effect within a fraction of a second at any size.

The runtime (sanet.runtime.execute.Run) installs a check for the duration of one call (`checking`); code that runs
long on large inputs calls `point()` at places where stopping is cheap and safe:
  - between the layers of the VGG encoder and of the decoders (`sequential`), and between row bands of one large
    3×3 convolution (`conv_bands`: a full-resolution conv of a big layer is otherwise one uninterruptible
    second or more);
  - between attention query chunks (sanet.functional.attention, which also sizes its chunks so that one chunk is
    a small amount of work), between SCSA label groups and top-1 chunks.
`point()` raises whatever the installed check raises (sanet.Cancelled); with no check installed it does nothing, so
models and functional code stay callable on their own. The check is per thread: the daemon's worker thread runs
jobs, other threads (a second Stylizer in tests) are not affected.

Banded convolution is exact: the reflection padding is its own layer before each conv (the convs have padding 0),
so output rows a..b need padded-input rows a..b+k-1 only, and every output element is the same dot product. The
bands flow through the row-local layers that follow (ReLU, 2×2 max-pool, nearest upsampling) and are written into
the next reflection padding's output directly, so banding costs no extra copy of a full-resolution map.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable

import torch
from torch import nn

CONV_STEP_MACS = 1 << 34   # multiply-adds per conv band (1.7e10: ~0.1 s of fp32 on this project's 2-core CPU)

_state = threading.local()


@contextmanager
def checking(check: Callable[[], None] | None):
    """Install `check` (called by every point(); raises to stop) for this thread until the block ends (re-entrant:
    an inner block's check replaces the outer one's and the outer one comes back)."""
    outer = getattr(_state, "check", None)
    _state.check = check
    try:
        yield
    finally:
        _state.check = outer


def point() -> None:
    """A place where the running call may be cancelled: runs the installed check (no-op without one)."""
    check = getattr(_state, "check", None)
    if check is not None:
        check()


def active() -> bool:
    """Whether a check is installed (cancellation points are worth splitting work for)."""
    return getattr(_state, "check", None) is not None


def _bandable(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and not isinstance(conv.padding, str) and conv.stride == (1, 1)
            and tuple(conv.padding) == (0, 0) and conv.dilation == (1, 1) and conv.groups == 1)


def conv_bands(conv: nn.Conv2d, x: torch.Tensor, max_macs: int | None = None) -> list[torch.Tensor]:
    """conv(x) as a list of row bands (concatenated along height they are conv(x) exactly) of about `max_macs`
    multiply-adds each, even heights but the last (so a 2×2 max-pool of each band is the pool of the whole), with a
    cancellation point before each band. A small conv, or one that is not a stride-1 unpadded conv, is one band."""
    max_macs = CONV_STEP_MACS if max_macs is None else max_macs
    kh = conv.kernel_size[0]
    n, _, hin, win = x.shape
    hout, wout = hin - kh + 1, win - conv.kernel_size[1] + 1
    macs = n * hout * wout * conv.in_channels * conv.out_channels * kh * conv.kernel_size[1]
    point()
    if macs <= max_macs or hout < 4 or not _bandable(conv) or not active():
        return [conv(x)]
    bands = min(hout // 2, -(-macs // max_macs))
    rows = 2 * -(-hout // (2 * bands))
    out = []
    for a in range(0, hout, rows):
        if a:
            point()
        out.append(conv(x[:, :, a:min(hout, a + rows) + kh - 1]))
    return out


def _pad_bands(parts: list[torch.Tensor], pad: nn.ReflectionPad2d) -> torch.Tensor:
    """ReflectionPad2d of the concatenation of row bands, written straight into the padded tensor (one copy, as the
    pad itself makes): bit-equal to pad(torch.cat(parts, 2))."""
    left, right, top, bottom = pad.padding
    first = parts[0]
    n, c, _, w = first.shape
    h = sum(p.shape[2] for p in parts)
    if top >= h or bottom >= h or left >= w or right >= w:
        return pad(torch.cat(parts, 2))
    fmt = (torch.channels_last if first.is_contiguous(memory_format=torch.channels_last) and c > 1
           else torch.contiguous_format)
    out = torch.empty((n, c, h + top + bottom, w + left + right), dtype=first.dtype, device=first.device,
                      memory_format=fmt)
    y = top
    for p in parts:
        out[:, :, y:y + p.shape[2], left:left + w] = p
        y += p.shape[2]
    for i in range(top):                     # rows first (inside the columns), then whole columns: corners
        out[:, :, top - 1 - i, left:left + w] = out[:, :, top + 1 + i, left:left + w]
    for i in range(bottom):
        out[:, :, top + h + i, left:left + w] = out[:, :, top + h - 2 - i, left:left + w]
    for j in range(left):
        out[:, :, :, left - 1 - j] = out[:, :, :, left + 1 + j]
    for j in range(right):
        out[:, :, :, left + w + j] = out[:, :, :, left + w - 2 - j]
    return out


_ROW_LOCAL = (nn.ReLU, nn.MaxPool2d, nn.Upsample)   # per band when the bands have even heights (pool 2, up ×2)


def sequential(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) for an nn.Sequential, layer by layer with cancellation points; large 3×3 convs run in row bands
    that flow through the following ReLU / pool / upsample band by band and are joined by the next reflection
    padding (no extra copy). Any other module (e.g. a compiled one) is called whole after one point()."""
    cast = getattr(module, "cast_sequential", None)   # a stage that casts its input first (runtime.modules.AtDtype)
    if cast is not None:
        dtype, inner = cast
        return sequential(inner, x.to(dtype))
    if type(module) is not nn.Sequential:
        point()
        return module(x)
    parts: list[torch.Tensor] | None = None          # the current value as row bands, while it is banded
    for layer in module:
        if parts is not None:
            if isinstance(layer, nn.ReflectionPad2d):
                x, parts = _pad_bands(parts, layer), None
                continue
            if isinstance(layer, _ROW_LOCAL) and _row_local(layer):
                parts = [layer(p) for p in parts]
                continue
            x, parts = torch.cat(parts, 2), None
        if _bandable(layer):
            bands = conv_bands(layer, x)
            if len(bands) > 1:
                parts = bands
            else:
                x = bands[0]
        elif isinstance(layer, nn.Sequential):
            x = sequential(layer, x)
        else:
            x = layer(x)
    return x if parts is None else torch.cat(parts, 2)


def _row_local(layer: nn.Module) -> bool:
    """Applies to row bands independently: pointwise, 2×2/stride-2 pooling, integer nearest upsampling."""
    if isinstance(layer, nn.MaxPool2d):
        return layer.kernel_size in (2, (2, 2)) and layer.stride in (2, (2, 2)) and layer.padding in (0, (0, 0))
    if isinstance(layer, nn.Upsample):
        return layer.mode == "nearest" and layer.size is None
    return True
