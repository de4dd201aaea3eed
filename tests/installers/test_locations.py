"""Profile, data and autostart paths per OS, as pure functions of (os, home, env)."""
import os

import platformdirs
import pytest

from installers.locations import (autostart_file, existing_profiles, gimp_profiles, krita_profiles, user_data_dir,
                                  venv_executable)

WIN_HOME = r"C:\Users\ann"
WIN_ENV = {"APPDATA": r"C:\Users\ann\AppData\Roaming", "LOCALAPPDATA": r"C:\Users\ann\AppData\Local"}


def test_windows_paths():
    [gimp] = gimp_profiles("windows", WIN_HOME, WIN_ENV)
    assert gimp.plugin_dir == r"C:\Users\ann\AppData\Roaming\GIMP\3.0\plug-ins"
    [krita] = krita_profiles("windows", WIN_HOME, WIN_ENV)
    assert krita.plugin_dir == r"C:\Users\ann\AppData\Roaming\krita\pykrita"
    assert krita.kritarc == r"C:\Users\ann\AppData\Local\kritarc"
    assert user_data_dir("windows", WIN_HOME, WIN_ENV) == r"C:\Users\ann\AppData\Local\sanet-style\sanet-style"
    assert autostart_file("windows", WIN_HOME, WIN_ENV) == \
        r"C:\Users\ann\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup\sanetd.cmd"
    assert venv_executable("windows", r"C:\v", "sanetd") == r"C:\v\Scripts\sanetd.exe"


def test_windows_without_appdata_falls_back_to_the_profile_folders():
    [gimp] = gimp_profiles("windows", WIN_HOME, {})
    assert gimp.profile_dir == r"C:\Users\ann\AppData\Roaming\GIMP\3.0"


def test_macos_paths():
    home = "/Users/ann"
    [gimp] = gimp_profiles("darwin", home, {})
    assert gimp.plugin_dir == "/Users/ann/Library/Application Support/GIMP/3.0/plug-ins"
    [krita] = krita_profiles("darwin", home, {})
    assert krita.plugin_dir == "/Users/ann/Library/Application Support/krita/pykrita"
    assert krita.kritarc == "/Users/ann/Library/Preferences/kritarc"
    assert user_data_dir("darwin", home, {}) == "/Users/ann/Library/Application Support/sanet-style"
    assert autostart_file("darwin", home, {}) == "/Users/ann/Library/LaunchAgents/org.sanet-style.sanetd.plist"


def test_linux_native_flatpak_and_snap():
    home = "/home/ann"
    gimps = {p.variant: p for p in gimp_profiles("linux", home, {})}
    assert gimps["native"].plugin_dir == "/home/ann/.config/GIMP/3.0/plug-ins"
    assert gimps["flatpak"].plugin_dir == "/home/ann/.var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins"
    assert gimps["snap"].plugin_dir == "/home/ann/snap/gimp/current/.config/GIMP/3.0/plug-ins"
    kritas = {p.variant: p for p in krita_profiles("linux", home, {})}
    assert kritas["native"].plugin_dir == "/home/ann/.local/share/krita/pykrita"
    assert kritas["native"].kritarc == "/home/ann/.config/kritarc"
    assert kritas["flatpak"].plugin_dir == "/home/ann/.var/app/org.kde.krita/data/krita/pykrita"
    assert kritas["flatpak"].kritarc == "/home/ann/.var/app/org.kde.krita/config/kritarc"
    assert autostart_file("linux", home, {}) == "/home/ann/.config/systemd/user/sanetd.service"


def test_linux_xdg_and_gimp3_directory_overrides():
    env = {"XDG_CONFIG_HOME": "/cfg", "XDG_DATA_HOME": "/data"}
    assert gimp_profiles("linux", "/h", env)[0].profile_dir == "/cfg/GIMP/3.0"
    assert krita_profiles("linux", "/h", env)[0].plugin_dir == "/data/krita/pykrita"
    assert autostart_file("linux", "/h", env) == "/cfg/systemd/user/sanetd.service"
    [only] = gimp_profiles("linux", "/h", {"GIMP3_DIRECTORY": "/tmp/gimp-profile"})
    assert only.plugin_dir == "/tmp/gimp-profile/plug-ins"


def test_existing_profiles_keeps_only_what_is_there():
    cands = gimp_profiles("linux", "/home/ann", {}) + krita_profiles("linux", "/home/ann", {})
    present = {"/home/ann/.var/app/org.gimp.GIMP/config/GIMP/3.0", "/home/ann/.config/kritarc"}
    found = existing_profiles(cands, present.__contains__)
    assert [(p.editor, p.variant) for p in found] == [("gimp", "flatpak"), ("krita", "native")]


@pytest.mark.parametrize("env", [{}, {"XDG_DATA_HOME": "/somewhere/data"}])
def test_linux_data_dir_matches_platformdirs(monkeypatch, tmp_path, env):
    # The daemon finds its weights through platformdirs; the installer must agree without importing it.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert user_data_dir("linux", str(tmp_path), dict(os.environ)) == platformdirs.user_data_dir("sanet-style")


@pytest.mark.parametrize("env", [{}, {"XDG_STATE_HOME": "/st", "XDG_CONFIG_HOME": "/cf"}])
def test_linux_log_and_config_dirs_match_platformdirs(monkeypatch, tmp_path, env):
    # --uninstall --purge removes what sanetd writes there, so these must be the daemon's folders.
    from installers.locations import user_config_dir, user_log_dir
    monkeypatch.setenv("HOME", str(tmp_path))
    for k in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    e = dict(os.environ)
    assert user_log_dir("linux", str(tmp_path), e) == platformdirs.user_log_dir("sanet-style")
    assert user_config_dir("linux", str(tmp_path), e) == platformdirs.user_config_dir("sanet-style")


def test_log_and_config_dirs_on_windows_and_macos():
    from installers.locations import user_config_dir, user_log_dir
    assert user_log_dir("windows", WIN_HOME, WIN_ENV) == r"C:\Users\ann\AppData\Local\sanet-style\sanet-style\Logs"
    assert user_config_dir("windows", WIN_HOME, WIN_ENV) == r"C:\Users\ann\AppData\Local\sanet-style\sanet-style"
    assert user_log_dir("darwin", "/Users/ann", {}) == "/Users/ann/Library/Logs/sanet-style"
