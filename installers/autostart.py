"""Start sanetd at login: a systemd user unit, a launchd LaunchAgent or a Windows Startup-folder .cmd.

Rendering is pure (template text in, file text out) so all three are testable on Linux.
"""
from __future__ import annotations

import ntpath
import os
import shutil
import string
from xml.sax.saxutils import escape

from .locations import LAUNCHD_LABEL, SERVICE_NAME

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
TEMPLATE_FILES = {"linux": "sanetd.service", "darwin": f"{LAUNCHD_LABEL}.plist", "windows": "sanetd-startup.cmd"}


def _template(os_name: str) -> string.Template:
    with open(os.path.join(TEMPLATES, TEMPLATE_FILES[os_name]), encoding="utf-8", newline="") as fh:
        return string.Template(fh.read())


def systemd_quote(path: str) -> str:
    """One ExecStart word: '%' is a specifier in unit files, spaces need double quotes."""
    word = path.replace("%", "%%")
    if any(c in word for c in ' \t"\\\''):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def render(os_name: str, venv_sanetd: str, log_file: str | None = None) -> str:
    """The autostart file for ``os_name``; ``venv_sanetd`` is <venv>/bin/sanetd or <venv>\\Scripts\\sanetd.exe."""
    if os_name == "linux":
        return _template("linux").substitute(exec_start=systemd_quote(venv_sanetd))
    if os_name == "darwin":
        return _template("darwin").substitute(label=escape(LAUNCHD_LABEL), program=escape(venv_sanetd),
                                              log_file=escape(log_file or "/dev/null"))
    if os_name == "windows":
        pythonw = ntpath.join(ntpath.dirname(venv_sanetd), "pythonw.exe")
        if '"' in pythonw or "%" in pythonw:
            raise ValueError(f"cannot write a Startup entry for a venv path containing '\"' or '%': {pythonw}")
        return _template("windows").substitute(pythonw=pythonw)
    raise ValueError(f"unknown OS {os_name!r}")


def enable_commands(os_name: str, unit_path: str, uid: int | None = None) -> list[tuple[list[str], bool]]:
    """(command, must succeed) pairs that (re)load the autostart entry now; empty where the file is enough."""
    if os_name == "linux":
        return [(["systemctl", "--user", "daemon-reload"], True),
                (["systemctl", "--user", "enable", f"{SERVICE_NAME}.service"], True),
                (["systemctl", "--user", "restart", f"{SERVICE_NAME}.service"], True)]  # restart: re-runs upgrade
    if os_name == "darwin":
        return [(["launchctl", "bootout", f"gui/{uid}/{LAUNCHD_LABEL}"], False),      # not loaded on first run
                (["launchctl", "bootstrap", f"gui/{uid}", unit_path], True)]
    return []


def disable_commands(os_name: str, uid: int | None = None) -> list[tuple[list[str], bool]]:
    if os_name == "linux":
        return [(["systemctl", "--user", "disable", "--now", f"{SERVICE_NAME}.service"], True),
                (["systemctl", "--user", "daemon-reload"], False)]
    if os_name == "darwin":
        return [(["launchctl", "bootout", f"gui/{uid}/{LAUNCHD_LABEL}"], True)]
    return []


def service_manager_available(os_name: str, env: dict) -> bool:
    """systemctl --user needs the user's session bus; launchctl is always there on macOS."""
    if os_name == "linux":
        runtime = env.get("XDG_RUNTIME_DIR", "")
        has_bus = bool(env.get("DBUS_SESSION_BUS_ADDRESS")) or (runtime and os.path.exists(
            os.path.join(runtime, "bus")))
        return bool(shutil.which("systemctl")) and bool(has_bus)
    if os_name == "darwin":
        return bool(shutil.which("launchctl"))
    return False
