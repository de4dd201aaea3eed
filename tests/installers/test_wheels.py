"""Vendored wheel selection, checked against what pip really downloads for each editor's Python.

pip download runs for real (PyPI); the wheels are cached in ~/.cache/sanet-style/wheels/<target>, the same
cache the installer uses, so a re-run needs no network.
"""
import os
import subprocess
import sys
import zipfile

import pytest

from installers.wheels import (PythonTarget, extract_wheel, linux_platforms, macos_platforms, parse_wheel_name,
                               pip_download_command, select_wheels, wheel_compatible, windows_platforms)

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "sanet-style", "wheels")

TARGETS = {
    # Krita 5.2 for Windows/macOS bundles 3.10; GIMP 3 for Windows 3.12; Linux editors use the system Python.
    "win-cp310": PythonTarget((3, 10), windows_platforms(), "windows"),
    "win-cp312": PythonTarget((3, 12), windows_platforms(), "windows"),
    "mac-arm-cp310": PythonTarget((3, 10), macos_platforms("arm64", (14, 0)), "darwin"),
    "mac-intel-cp312": PythonTarget((3, 12), macos_platforms("x86_64", (12, 0)), "darwin"),
    "linux-cp310": PythonTarget((3, 10), linux_platforms("x86_64", (2, 35)), "linux"),
    "linux-cp312": PythonTarget((3, 12), linux_platforms("x86_64", (2, 38)), "linux"),
}


@pytest.fixture(scope="module")
def downloaded():
    """{target name: [wheel file names pip chose]} — pip's own answer for each target."""
    out = {}
    for name, target in TARGETS.items():
        folder = os.path.join(CACHE, target.key)
        have = os.listdir(folder) if os.path.isdir(folder) else []
        try:
            select_wheels(have, target)
        except ValueError:
            subprocess.run(pip_download_command(sys.executable, target, folder), check=True,
                           capture_output=True, timeout=600)
        out[name] = sorted(f for f in os.listdir(folder) if f.endswith(".whl"))
    return out


def test_parse_compressed_tags():
    w = parse_wheel_name("msgpack-1.2.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl")
    assert w.project == "msgpack" and w.version == "1.2.4"
    assert w.platform_tags == ("manylinux2014_x86_64", "manylinux_2_17_x86_64")
    with pytest.raises(ValueError, match="not a wheel"):
        parse_wheel_name("pyzmq-27.3.0.tar.gz")


@pytest.mark.parametrize("filename,target,ok", [
    ("pyzmq-27.3.0-cp312-abi3-win_amd64.whl", "win-cp312", True),
    ("pyzmq-27.3.0-cp312-abi3-win_amd64.whl", "win-cp310", False),          # abi3 from 3.12 up only
    ("pyzmq-27.3.0-cp310-cp310-win_amd64.whl", "win-cp312", False),
    ("msgpack-1.2.4-py3-none-any.whl", "mac-arm-cp310", True),
    ("pyzmq-27.3.0-cp310-cp310-macosx_10_15_universal2.whl", "mac-arm-cp310", True),
    ("pyzmq-27.3.0-cp310-cp310-macosx_15_0_arm64.whl", "mac-arm-cp310", False),  # newer than macOS 14
    ("pyzmq-27.3.0-cp312-abi3-manylinux_2_28_x86_64.whl", "linux-cp312", True),
    ("pyzmq-27.3.0-cp312-abi3-manylinux_2_39_x86_64.whl", "linux-cp312", False),  # needs a newer glibc
    ("pyzmq-27.3.0-cp312-abi3-musllinux_1_2_x86_64.whl", "linux-cp312", False),
])
def test_compatibility_rules(filename, target, ok):
    assert wheel_compatible(filename, TARGETS[target]) is ok


def test_pip_downloads_one_loadable_wheel_per_project(downloaded):
    for name, files in downloaded.items():
        target = TARGETS[name]
        assert {parse_wheel_name(f).project for f in files} >= {"pyzmq", "msgpack"}, name
        chosen = select_wheels(files, target)
        for f in chosen.values():
            assert wheel_compatible(f, target), (name, f)


def test_selection_agrees_with_pip_and_rejects_other_targets(downloaded):
    # From the pool of every wheel pip fetched for any target, our selection must land on the very file pip
    # chose for this target, never on one built for another OS or Python.
    pool = sorted({f for files in downloaded.values() for f in files})
    for name, target in TARGETS.items():
        chosen = set(select_wheels(pool, target).values())
        assert chosen == set(select_wheels(downloaded[name], target).values()), name
        for other, files in downloaded.items():
            if TARGETS[other].os_name != target.os_name:
                assert not any(wheel_compatible(f, target) for f in files if "none-any" not in f), (name, other)


def test_extract_wheel_lays_out_packages_at_the_top(downloaded, tmp_path):
    target = TARGETS["win-cp312"]
    folder = os.path.join(CACHE, target.key)
    for f in select_wheels(downloaded["win-cp312"], target).values():
        tops = extract_wheel(os.path.join(folder, f), str(tmp_path))
        assert tops
    assert (tmp_path / "zmq" / "__init__.py").is_file()
    assert (tmp_path / "msgpack" / "__init__.py").is_file()
    assert any(p.suffix == ".pyd" for p in (tmp_path / "zmq" / "backend" / "cython").iterdir())


def test_extract_refuses_paths_outside_the_folder(tmp_path):
    bad = tmp_path / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../escape.py", "x = 1\n")
    with pytest.raises(ValueError, match="unsafe path"):
        extract_wheel(str(bad), str(tmp_path / "out"))
    assert not (tmp_path / "escape.py").exists()
