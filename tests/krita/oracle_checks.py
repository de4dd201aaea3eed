"""Checks shared by the kritarunner and GUI tests: is the new layer what the library says it must be?

The plug-in puts the stylized colours in a new layer with alpha = layer alpha x selection; over the
untouched original that composites to sel*stylized + (1-sel)*original, with `stylized` the library's result
for the whole layer (which is what sanetd computed: a full run sends no selection). We check exactly that,
pixel by pixel. The library's own selection blend is the same composite: sel*clamp(stylized) + (1-sel)*original
(until issue 12 it mixed the decoder's UNCLAMPED output, which differed from any layer composite at feathered
pixels by up to 9/255 where the decoder overshoots [0, 1]), so the engine given the selection -- which is
how the daemon blends a preview -- must equal the composite too.
"""
import numpy as np

import kritatools as kt

ALPHA = 0.8   # strength used by the scenarios that pass it


def content_for_library(orig, depth):
    # The plug-in sends F16 documents as float32 (the exact values of the halfs).
    return orig.astype(np.float32) if depth == "F16" else orig


def check_result_layer(out, depth, w, h, engine, style_rgba, alpha, new_file="new_layer.bin", style=None,
                       **engine_kwargs):
    """style: a sanet.Style to use instead of Style(style_rgba); engine_kwargs: e.g. SCSA content_labels."""
    import sanet
    orig = kt.pixels((out / "original_before.bin").read_bytes(), depth, w, h)
    after = (out / "original_after.bin").read_bytes()
    assert after == (out / "original_before.bin").read_bytes(), "the original layer was modified"
    sel_u8 = np.frombuffer((out / "selection.bin").read_bytes(), np.uint8).reshape(h, w)
    assert 0 < (sel_u8 == 255).sum() and 0 < ((sel_u8 > 0) & (sel_u8 < 255)).sum(), "selection not feathered"
    new = kt.pixels((out / new_file).read_bytes(), depth, w, h)

    content = content_for_library(orig, depth)
    sel = sel_u8.astype(np.float32) / 255.0
    full = kt.to_unit(engine.stylize(content, [style or sanet.Style(style_rgba)], alpha=alpha, **engine_kwargs))
    want = full.copy()
    want[..., :3] = sel[..., None] * full[..., :3] + (1 - sel[..., None]) * kt.to_unit(orig)[..., :3]
    o, n = kt.to_unit(orig), kt.to_unit(new)

    # Outside the selection: fully transparent (the original shows through unchanged).
    assert np.all(n[sel_u8 == 0][:, 3] == 0), "new layer not transparent outside the selection"
    # Alpha everywhere: layer alpha x selection (8-bit selection, rounded in the layer's depth).
    step = 1.0 / 65535 if depth == "U16" else (1.0 / 255 if depth == "U8" else 1e-3)
    np.testing.assert_allclose(n[..., 3], o[..., 3] * sel, atol=step * 0.51 + 1e-6)
    # Fully selected pixels: colours are the library's result (exact for integer depths: the daemon
    # returns the engine's bytes and the plug-in only reorders them; F16 loses half-float precision).
    inside = sel_u8 == 255
    tol = {"U8": 0, "U16": 0, "F32": 1e-6, "F16": 2e-3}[depth]
    assert np.abs(n[inside][:, :3] - want[inside][:, :3]).max() <= tol + 1e-12
    # Every opaque pixel: new layer over the original == sel*stylized + (1-sel)*original.
    opaque = o[..., 3] >= 1.0 - 1e-6
    a = n[..., 3:4]
    composite = n[..., :3] * a + o[..., :3] * (1 - a)
    diff = np.abs(composite - want[..., :3])[opaque]
    assert diff.max() <= {"U8": 2.0 / 255, "U16": 2e-4, "F32": 1e-5, "F16": 3e-3}[depth], diff.max()
    # The library's selection blend (what sanetd returns for a preview) is that same composite.
    blended = kt.to_unit(engine.stylize(content, [style or sanet.Style(style_rgba)], alpha=alpha, selection=sel,
                                        **engine_kwargs))
    diff = np.abs(composite - blended[..., :3])[opaque]
    assert diff.max() <= {"U8": 2.0 / 255, "U16": 2e-4, "F32": 1e-5, "F16": 3e-3}[depth], diff.max()
    # And it is not a no-op: the style changed the selected area.
    assert np.abs(n[inside][:, :3] - o[inside][:, :3]).mean() > 0.02
    return new
