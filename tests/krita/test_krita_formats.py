"""Fast tests (no Krita) of the plug-in's pure byte helpers: BGRA<->RGBA, F16<->F32, alpha, crops.

numpy is the independent oracle here; the plug-in itself uses only the standard library.
"""
import ast
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "krita"))
from sanet_style import formats  # noqa: E402

rng = np.random.default_rng(7)


def _bgra(depth, h=5, w=7):
    if depth == "U8":
        return rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    if depth == "U16":
        return rng.integers(0, 65536, (h, w, 4), dtype=np.uint16)
    if depth == "F16":
        return rng.random((h, w, 4)).astype(np.float16)
    return rng.random((h, w, 4)).astype(np.float32)


@pytest.mark.parametrize("depth", ["U8", "U16"])
def test_integer_depths_swap_blue_and_red(depth):
    bgra = _bgra(depth)
    fmt, data = formats.krita_to_client(bgra.tobytes(), depth)
    assert fmt == {"U8": "rgba8", "U16": "rgba16"}[depth]
    rgba = np.frombuffer(data, dtype=bgra.dtype.newbyteorder("<")).reshape(bgra.shape)
    np.testing.assert_array_equal(rgba, bgra[..., [2, 1, 0, 3]])
    assert formats.client_to_krita(data, depth) == bgra.tobytes()


def test_f16_travels_as_f32_and_comes_back_exactly():
    half = _bgra("F16")
    fmt, data = formats.krita_to_client(half.tobytes(), "F16")
    assert fmt == "rgbaf32"
    as32 = np.frombuffer(data, dtype="<f4").reshape(half.shape)
    np.testing.assert_array_equal(as32, half.astype(np.float32))   # float order is RGBA: no swap
    assert formats.client_to_krita(data, "F16") == half.tobytes()


def test_f16_specials_and_out_of_range_values_clamp():
    vals = np.array([0.0, -0.0, 1.0, 65504.0, 1e6, -1e6, 6e-8, 0.5], dtype="<f4")
    back = np.frombuffer(formats.float32_to_half(vals.tobytes()), dtype=np.float16)
    np.testing.assert_array_equal(back, np.array([0, 0, 1, 65504, 65504, -65504, 6e-8, 0.5], np.float16))


def test_f32_is_passed_through():
    f = _bgra("F32")
    fmt, data = formats.krita_to_client(f.tobytes(), "F32")
    assert fmt == "rgbaf32" and data == f.tobytes()
    assert formats.client_to_krita(data, "F32") == f.tobytes()


def test_big_buffers_convert_in_chunks():
    n = formats._CHUNK * 2 + 3
    half = rng.random(n).astype(np.float16)
    out = np.frombuffer(formats.half_to_float32(half.tobytes()), dtype="<f4")
    np.testing.assert_array_equal(out, half.astype(np.float32))


@pytest.mark.parametrize("fmt,dtype,scale", [("rgba8", "<u1", 255), ("rgba16", "<u2", 65535),
                                             ("rgbaf32", "<f4", 1.0)])
def test_multiply_alpha_scales_alpha_only(fmt, dtype, scale):
    n = 300
    px = (rng.random((n, 4)) * scale).astype(dtype)
    sel = rng.integers(0, 256, n, dtype=np.uint8)
    out = np.frombuffer(formats.multiply_alpha(px.tobytes(), fmt, sel.tobytes()), dtype=dtype).reshape(n, 4)
    np.testing.assert_array_equal(out[:, :3], px[:, :3])
    want = px[:, 3].astype(np.float64) * sel / 255.0
    if fmt == "rgbaf32":
        np.testing.assert_allclose(out[:, 3], want, rtol=1e-6, atol=1e-7)
    else:
        assert np.abs(out[:, 3] - want).max() <= 0.5 + 1e-9   # rounded, never off by more than half a step


def test_multiply_alpha_opaque_fast_path_is_the_selection():
    n = 64
    px = rng.integers(0, 256, (n, 4), dtype=np.uint8)
    px[:, 3] = 255
    sel = rng.integers(0, 256, n, dtype=np.uint8)
    out = np.frombuffer(formats.multiply_alpha(px.tobytes(), "rgba8", sel.tobytes()), np.uint8).reshape(n, 4)
    np.testing.assert_array_equal(out[:, 3], sel)
    np.testing.assert_array_equal(out[:, :3], px[:, :3])


def test_crop_and_mask_bounds():
    mask = np.zeros((10, 12), np.uint8)
    assert formats.mask_bounds(mask.tobytes(), 12, 10) is None
    mask[3:7, 2:9] = 40
    mask[5, 10] = 1
    assert formats.mask_bounds(mask.tobytes(), 12, 10) == (2, 3, 9, 4)
    img = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    sub = formats.crop(img.tobytes(), 12, 10, 4, 2, 3, 9, 4)
    assert sub == img[3:7, 2:11].tobytes()
    with pytest.raises(formats.FormatError):
        formats.crop(img.tobytes(), 12, 10, 4, 5, 5, 9, 9)


def test_full_selection_counts_as_none():
    assert formats.is_full(b"\xff" * 20)
    assert not formats.is_full(b"\xff" * 19 + b"\xfe")


def test_bad_inputs_give_clear_messages():
    with pytest.raises(formats.FormatError, match="CMYKA"):
        formats.check_depth("CMYKA", "U8")
    with pytest.raises(formats.FormatError, match="F64"):
        formats.check_depth("RGBA", "F64")
    with pytest.raises(formats.FormatError, match="expected 16"):
        formats.expect_size(b"123", 2, 2, 4, "layer")
    with pytest.raises(formats.FormatError, match="odd"):
        formats.half_to_float32(b"abc")


def _imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_plugin_imports_no_numpy_or_torch_and_formats_only_stdlib():
    package = Path(formats.__file__).parent
    for path in package.glob("*.py"):
        assert not _imports(path) & {"numpy", "torch", "sanet", "platformdirs"}, path.name
    assert _imports(package / "formats.py") <= {"array", "struct", "sys"}
    assert struct.calcsize("e") == 2


def test_selection_as_client_mask_keeps_feathered_values_and_offset():
    from sanet_client import Mask
    from sanet_style import document
    sel = np.zeros((10, 12), np.uint8)
    sel[2:6, 3:8] = [[10, 128, 255, 128, 10]] * 4
    mask = document.selection_as_mask(sel.tobytes(), 12, 10, Mask)
    assert (mask.x, mask.y, mask.width, mask.height, mask.format) == (3, 2, 5, 4, "u8")
    assert bytes(mask.data) == sel[2:6, 3:8].tobytes()
    assert document.selection_as_mask(bytes(120), 12, 10, Mask) is None
