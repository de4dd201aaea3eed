"""Finding the editor's Python: real interpreters probed, application layouts read from real folders."""
import os
import sys

from installers.editor_python import (bundled_python_version, deps_ok, editor_python, flatpak_runtime_python,
                                      probe_interpreter)
from installers.locations import gimp_profiles, krita_profiles


def test_probe_sees_version_platform_and_missing_packages():
    # -I -S: an interpreter without site-packages, like a bare editor Python: no zmq/msgpack.
    info = probe_interpreter([sys.executable, "-I", "-S"])
    assert info["version"] == list(sys.version_info[:2])
    assert info["deps"] is None and not deps_ok(info["deps"])
    full = probe_interpreter([sys.executable])          # the project venv has both
    assert deps_ok(full["deps"])


def test_probe_of_a_missing_interpreter_is_none(tmp_path):
    assert probe_interpreter([str(tmp_path / "no-python")]) is None


def test_version_floors():
    assert deps_ok(["27.3.0", "1.2.4"])
    assert not deps_ok(["24.0.1", "1.0.3"])      # Debian bookworm's python3-zmq / python3-msgpack
    assert not deps_ok(["26.0.0", "1.2.0"])


def test_bundled_versions_in_application_folders(tmp_path):
    win_gimp = tmp_path / "GIMP 3" / "bin"
    win_gimp.mkdir(parents=True)
    (win_gimp / "python312.dll").write_bytes(b"")
    (win_gimp / "python3.dll").write_bytes(b"")        # the stable-ABI shim must not be mistaken for 3.x
    assert bundled_python_version(str(tmp_path / "GIMP 3")) == (3, 12)
    mac_krita = tmp_path / "krita.app" / "Contents" / "Frameworks" / "Python.framework" / "Versions" / "3.10"
    mac_krita.mkdir(parents=True)
    assert bundled_python_version(str(tmp_path / "krita.app")) == (3, 10)
    assert bundled_python_version(str(tmp_path / "nothing-here")) is None


def test_flatpak_runtime_python_from_metadata(tmp_path):
    root = tmp_path / "flatpak"
    app = root / "app" / "org.gimp.GIMP" / "current" / "active"
    app.mkdir(parents=True)
    (app / "metadata").write_text("[Application]\nname=org.gimp.GIMP\nruntime=org.gnome.Platform/x86_64/48\n")
    (root / "runtime" / "org.gnome.Platform" / "x86_64" / "48" / "active" / "files" / "lib" / "python3.12").mkdir(
        parents=True)
    assert flatpak_runtime_python("org.gimp.GIMP", str(tmp_path / "home"), (str(root),)) == \
        ((3, 12), "org.gnome.Platform/x86_64/48")
    assert flatpak_runtime_python("org.kde.krita", str(tmp_path / "home"), (str(root),)) is None


def test_windows_and_macos_targets_default_to_the_documented_bundles():
    env = {"ProgramFiles": "/nonexistent", "LOCALAPPDATA": "/nonexistent"}
    gimp = editor_python(gimp_profiles("windows", "/nonexistent", env)[0], "/nonexistent", env)
    assert gimp.target.version == (3, 12) and gimp.target.platforms[0].startswith("win")
    assert gimp.has_deps is False and gimp.guessed      # → the vendor folder serves 3.10-3.13
    krita = editor_python(krita_profiles("darwin", "/nonexistent", {})[0], "/nonexistent", {})
    assert krita.target.version == (3, 10) and "universal2" in " ".join(krita.target.platforms)


def test_linux_native_probes_the_system_python():
    ep = editor_python(gimp_profiles("linux", "/nonexistent", {})[0], "/nonexistent", {})
    system = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None
    if system:
        assert ep.executable == system
        assert ep.target.version == tuple(probe_interpreter([system])["version"])
    assert ep.target.platforms[0].startswith("manylinux_2_")
    assert ep.guessed is (system is None)


def test_snap_and_flatpak_without_a_runtime_to_read_are_guesses():
    for profile in gimp_profiles("linux", "/nonexistent", {})[1:]:
        assert editor_python(profile, "/nonexistent", {}).guessed, profile.variant
