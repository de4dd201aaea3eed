"""Training data: recursive folder scan, unreadable files skipped with a warning, batches as pure functions of
(seed, iteration), the deterministic fallback for files that fail to decode."""
from __future__ import annotations

import numpy as np
import pytest

from sanet.errors import InputError
from sanet.train import data as D
from train_helpers import write_images


def test_scan_is_recursive_sorted_and_skips_unreadable_files(tmp_path):
    write_images(tmp_path, 6, seed=1)
    (tmp_path / ".hidden").mkdir()
    write_images(tmp_path / ".hidden", 2, seed=2)             # hidden folders are not searched
    (tmp_path / "readme.txt").write_text("not an image")      # not an image extension: not even looked at
    (tmp_path / "broken.webp").write_bytes(b"RIFF....WEBPVP8 ")
    warnings = []
    found = D.scan_folder(tmp_path, "--content", warnings.append)
    assert found.files == D.scan_folder(tmp_path, "--content", lambda _: None).files      # a stable order
    assert len(found.files) == 6 and found.skipped == 1
    assert any(f.startswith("nested/deeper/") for f in found.files)
    assert not any(".hidden" in f for f in found.files)
    assert len(warnings) == 1 and "broken.webp: unreadable image, skipped" in warnings[0]


def test_sampling_is_a_pure_function_of_seed_and_draw():
    n = 7
    first = [D.draw(5, D.CONTENT, t, n) for t in range(3 * n)]
    assert first == [D.draw(5, D.CONTENT, t, n) for t in reversed(range(3 * n))][::-1]   # any order, same draws
    for e in range(3):                                          # every epoch is a permutation of all files
        assert sorted(first[e * n:(e + 1) * n]) == list(range(n))
    assert first[:n] != first[n:2 * n]                          # a new order each epoch
    assert first != [D.draw(6, D.CONTENT, t, n) for t in range(3 * n)]
    assert first != [D.draw(5, D.STYLE, t, n) for t in range(3 * n)]
    tops = {D.crop_params(5, D.CONTENT, t, 16, flip=True) for t in range(200)}
    assert all(0 <= top <= 16 and 0 <= left <= 16 for top, left, _ in tops)
    assert {f for _, _, f in tops} == {True, False}
    assert not any(f for _, _, f in {D.crop_params(5, D.CONTENT, t, 16, flip=False) for t in range(50)})


def test_batches_are_reproducible_and_truncated_files_fall_back(tmp_path, capfd):
    write_images(tmp_path / "c", 4, seed=3)
    write_images(tmp_path / "s", 3, seed=4)
    c, s = D.scan_folder(tmp_path / "c", "--content"), D.scan_folder(tmp_path / "s", "--style")
    b = D.Batches(c, s, batch=2, size=48, crop=32, flip=True, seed=9, length=10)
    item = b[3]
    assert item["content"].shape == (2, 3, 32, 32) and item["style"].shape == (2, 3, 32, 32)
    assert float(item["content"].min()) >= 0 and float(item["content"].max()) <= 1
    again = D.Batches(c, s, batch=2, size=48, crop=32, flip=True, seed=9, length=10)[3]
    assert all(np.array_equal(item[k].numpy(), again[k].numpy()) for k in item)
    # a file whose header reads but whose pixels are cut off: the next file of the list, every time, one warning
    victim = D.draw(9, D.CONTENT, 0, len(c.files))
    path = c.path(victim)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    b2 = D.Batches(c, s, batch=1, size=48, crop=32, flip=False, seed=9, length=10)
    got = b2.image(D.CONTENT, 0)
    b2.image(D.CONTENT, 0)
    err = capfd.readouterr().err
    assert err.count(f"{path}: unreadable image, skipped") == 1
    from PIL import Image
    nxt = D.load_rgb(c.path((victim + 1) % len(c.files)), 48)
    top, left, _ = D.crop_params(9, D.CONTENT, 0, 16, False)
    assert np.array_equal(got, D.crop_array(nxt, top, left, 32, False))
    assert isinstance(nxt, Image.Image)


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    import cv2
    img = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), img)
    rgb = np.asarray(D.load_rgb(tmp_path / "g16.png", 64))
    assert rgb.shape == (64, 64, 3) and 100 < rgb.mean() < 156   # a mid-grey average, not all white


@pytest.mark.parametrize("setup,needle", [
    (lambda p: None, "no such folder"),
    (lambda p: p.write_text("x"), "not a folder"),
    (lambda p: p.mkdir(), "no images found"),
])
def test_folder_errors(tmp_path, setup, needle):
    target = tmp_path / "x"
    setup(target)
    with pytest.raises(InputError) as exc:
        D.scan_folder(target, "--style")
    assert needle in str(exc.value) and str(exc.value).startswith("--style ")
