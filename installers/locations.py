"""Where things live on each OS, as pure functions of (os_name, home, env).

os_name is "linux", "darwin" or "windows" (see ``current_os``). Nothing here touches the file system,
except ``existing_profiles`` which takes the existence test as an argument, so every OS is testable on Linux.
"""
from __future__ import annotations

import ntpath
import posixpath
import sys
from dataclasses import dataclass
from typing import Callable, Mapping

APP_NAME = "sanet-style"
GIMP_PLUGIN_NAME = "sanet-style"        # GIMP: plug-ins/<name>/<name>.py
KRITA_PLUGIN_NAME = "sanet_style"       # Krita: pykrita/<name>.desktop + pykrita/<name>/
SERVICE_NAME = "sanetd"
LAUNCHD_LABEL = "org.sanet-style.sanetd"

FLATPAK_GIMP = "org.gimp.GIMP"
FLATPAK_KRITA = "org.kde.krita"


def current_os() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


def _path(os_name: str):
    return ntpath if os_name == "windows" else posixpath


def _join(os_name: str, *parts: str) -> str:
    return _path(os_name).join(*parts)


def _env_dir(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key, "").strip()
    return value or None


def _win_folder(env: Mapping[str, str], home: str, key: str, fallback: tuple[str, ...]) -> str:
    return _env_dir(env, key) or ntpath.join(home, *fallback)


# --- the installer's own folders (mirror platformdirs, which the daemon uses for the weights) ---------------

def user_data_dir(os_name: str, home: str, env: Mapping[str, str]) -> str:
    """platformdirs.user_data_dir("sanet-style"): XDG_DATA_HOME wins on every OS (platformdirs >= 4.4)."""
    xdg = _env_dir(env, "XDG_DATA_HOME")
    if xdg:
        return _join(os_name, xdg, APP_NAME)
    if os_name == "windows":
        local = _win_folder(env, home, "LOCALAPPDATA", ("AppData", "Local"))
        return ntpath.join(local, APP_NAME, APP_NAME)   # appauthor defaults to appname
    if os_name == "darwin":
        return posixpath.join(home, "Library", "Application Support", APP_NAME)
    return posixpath.join(home, ".local", "share", APP_NAME)


def user_config_dir(os_name: str, home: str, env: Mapping[str, str]) -> str:
    """platformdirs.user_config_dir: where sanetd.conf lives."""
    xdg = _env_dir(env, "XDG_CONFIG_HOME")
    if xdg:
        return _join(os_name, xdg, APP_NAME)
    if os_name in ("windows", "darwin"):
        return user_data_dir(os_name, home, env)
    return posixpath.join(home, ".config", APP_NAME)


def user_log_dir(os_name: str, home: str, env: Mapping[str, str]) -> str:
    """platformdirs.user_log_dir: the daemon's logs."""
    if os_name == "windows":
        return ntpath.join(user_data_dir(os_name, home, env), "Logs")
    if os_name == "darwin":
        return posixpath.join(home, "Library", "Logs", APP_NAME)
    state = _env_dir(env, "XDG_STATE_HOME") or posixpath.join(home, ".local", "state")
    return posixpath.join(state, APP_NAME, "log")


def user_cache_dir(os_name: str, home: str, env: Mapping[str, str]) -> str:
    """Where downloaded wheels are cached: ~/.cache/sanet-style on Linux (shared with the editor test envs)."""
    xdg = _env_dir(env, "XDG_CACHE_HOME")
    if xdg:
        return _join(os_name, xdg, APP_NAME)
    if os_name == "windows":
        local = _win_folder(env, home, "LOCALAPPDATA", ("AppData", "Local"))
        return ntpath.join(local, APP_NAME, APP_NAME, "Cache")
    if os_name == "darwin":
        return posixpath.join(home, "Library", "Caches", APP_NAME)
    return posixpath.join(home, ".cache", APP_NAME)


def xdg_config_home(home: str, env: Mapping[str, str]) -> str:
    return _env_dir(env, "XDG_CONFIG_HOME") or posixpath.join(home, ".config")


def xdg_data_home(home: str, env: Mapping[str, str]) -> str:
    return _env_dir(env, "XDG_DATA_HOME") or posixpath.join(home, ".local", "share")


# --- editor profiles ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EditorProfile:
    """One place an editor keeps its user profile; the plug-in goes into ``plugin_dir``."""
    editor: str            # "gimp" | "krita"
    variant: str           # "native" | "flatpak" | "snap"
    os_name: str
    profile_dir: str       # exists ⇔ the editor has been run with this profile
    plugin_dir: str        # GIMP: <profile>/plug-ins ; Krita: <data>/pykrita
    kritarc: str | None = None   # Krita only: the settings file that enables Python plug-ins

    @property
    def label(self) -> str:
        name = "GIMP 3" if self.editor == "gimp" else "Krita"
        return name if self.variant == "native" else f"{name} ({self.variant})"


def gimp_profiles(os_name: str, home: str, env: Mapping[str, str]) -> list[EditorProfile]:
    """GIMP 3 profile folders (gimp_directory() in libgimpbase/gimpenv.c), most specific first."""
    out: list[EditorProfile] = []

    def add(variant: str, profile: str) -> None:
        out.append(EditorProfile("gimp", variant, os_name, profile, _join(os_name, profile, "plug-ins")))

    override = _env_dir(env, "GIMP3_DIRECTORY")
    if override:
        add("native", override)
        return out
    if os_name == "windows":
        appdata = _win_folder(env, home, "APPDATA", ("AppData", "Roaming"))
        add("native", ntpath.join(appdata, "GIMP", "3.0"))
    elif os_name == "darwin":
        add("native", posixpath.join(home, "Library", "Application Support", "GIMP", "3.0"))
    else:
        add("native", posixpath.join(xdg_config_home(home, env), "GIMP", "3.0"))
        add("flatpak", posixpath.join(home, ".var", "app", FLATPAK_GIMP, "config", "GIMP", "3.0"))
        add("snap", posixpath.join(home, "snap", "gimp", "current", ".config", "GIMP", "3.0"))
    return out


def krita_profiles(os_name: str, home: str, env: Mapping[str, str]) -> list[EditorProfile]:
    """Krita 5 resource folders (pykrita lives there) and the kritarc next to its settings."""
    out: list[EditorProfile] = []

    def add(variant: str, data: str, kritarc: str) -> None:
        out.append(EditorProfile("krita", variant, os_name, data, _join(os_name, data, "pykrita"), kritarc))

    if os_name == "windows":
        appdata = _win_folder(env, home, "APPDATA", ("AppData", "Roaming"))
        local = _win_folder(env, home, "LOCALAPPDATA", ("AppData", "Local"))
        add("native", ntpath.join(appdata, "krita"), ntpath.join(local, "kritarc"))
    elif os_name == "darwin":
        add("native", posixpath.join(home, "Library", "Application Support", "krita"),
            posixpath.join(home, "Library", "Preferences", "kritarc"))
    else:
        add("native", posixpath.join(xdg_data_home(home, env), "krita"),
            posixpath.join(xdg_config_home(home, env), "kritarc"))
        fp = posixpath.join(home, ".var", "app", FLATPAK_KRITA)
        add("flatpak", posixpath.join(fp, "data", "krita"), posixpath.join(fp, "config", "kritarc"))
        snap = posixpath.join(home, "snap", "krita", "current")
        add("snap", posixpath.join(snap, ".local", "share", "krita"), posixpath.join(snap, ".config", "kritarc"))
    return out


def existing_profiles(candidates: list[EditorProfile], exists: Callable[[str], bool]) -> list[EditorProfile]:
    """The candidates whose profile folder exists (or, for Krita, whose kritarc exists)."""
    return [p for p in candidates if exists(p.profile_dir) or (p.kritarc is not None and exists(p.kritarc))]


# --- autostart ---------------------------------------------------------------------------------------------

def autostart_file(os_name: str, home: str, env: Mapping[str, str]) -> str:
    """systemd user unit / LaunchAgent plist / Startup-folder .cmd."""
    if os_name == "windows":
        appdata = _win_folder(env, home, "APPDATA", ("AppData", "Roaming"))
        return ntpath.join(appdata, "Microsoft", "Windows", "Start Menu", "Programs", "Startup",
                           f"{SERVICE_NAME}.cmd")
    if os_name == "darwin":
        return posixpath.join(home, "Library", "LaunchAgents", f"{LAUNCHD_LABEL}.plist")
    return posixpath.join(xdg_config_home(home, env), "systemd", "user", f"{SERVICE_NAME}.service")


def venv_executable(os_name: str, venv: str, name: str) -> str:
    """bin/<name> on POSIX, Scripts\\<name>.exe on Windows."""
    if os_name == "windows":
        return ntpath.join(venv, "Scripts", name + ".exe")
    return posixpath.join(venv, "bin", name)
