"""Let a Flatpak editor reach sanetd: the sandbox hides $XDG_RUNTIME_DIR/sanet-style (connection file and ipc
socket) unless the app is granted ``--filesystem=xdg-run/sanet-style``.

That grant is a per-user override keyfile, ``$XDG_DATA_HOME/flatpak/overrides/<app-id>`` (what
``flatpak override --user`` writes). We edit the one ``filesystems`` entry in [Context] ourselves so that
--uninstall can take back exactly our grant and keep the user's own overrides.
"""
from __future__ import annotations

import posixpath
from typing import Mapping

from .locations import APP_NAME, FLATPAK_GIMP, FLATPAK_KRITA, xdg_data_home

RUNTIME_GRANT = f"xdg-run/{APP_NAME}"
APP_IDS = {"gimp": FLATPAK_GIMP, "krita": FLATPAK_KRITA}
SECTION = "[Context]"
KEY = "filesystems"


def overrides_file(app_id: str, home: str, env: Mapping[str, str]) -> str:
    user_dir = env.get("FLATPAK_USER_DIR") or posixpath.join(xdg_data_home(home, env), "flatpak")
    return posixpath.join(user_dir, "overrides", app_id)


def _edit(text: str, change) -> str:
    lines = text.splitlines()
    out: list[str] = []
    section = None
    seen = False
    insert_at = None
    for line in lines:
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s
            out.append(line)
            if s == SECTION:
                insert_at = len(out)
            continue
        if section == SECTION and "=" in s and s.split("=", 1)[0].strip() == KEY:
            seen = True
            values = change([v for v in s.split("=", 1)[1].split(";") if v])
            if values:
                out.append(f"{KEY}={';'.join(values)};")
            continue
        out.append(line)
    if not seen:
        values = change([])
        if values:
            entry = f"{KEY}={';'.join(values)};"
            if insert_at is None:
                if out and out[-1].strip():
                    out.append("")
                out += [SECTION, entry]
            else:
                out.insert(insert_at, entry)
    # a [Context] header left with nothing under it is dropped
    cleaned: list[str] = []
    for i, line in enumerate(out):
        if line.strip() == SECTION:
            rest = out[i + 1:]
            nxt = next((r.strip() for r in rest if r.strip()), "")
            if not nxt or nxt.startswith("["):
                continue
        cleaned.append(line)
    while cleaned and not cleaned[-1].strip():
        cleaned.pop()
    return "\n".join(cleaned) + "\n" if cleaned else ""


def grant(text: str, token: str = RUNTIME_GRANT) -> str:
    """Add ``token`` to [Context] filesystems; any negated form (``!token``) the user set is replaced."""
    return _edit(text, lambda vals: [v for v in vals if v not in (token, "!" + token)] + [token])


def revoke(text: str, token: str = RUNTIME_GRANT) -> str:
    return _edit(text, lambda vals: [v for v in vals if v != token])


def has_grant(text: str, token: str = RUNTIME_GRANT) -> bool:
    section = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s
        elif section == SECTION and s.split("=", 1)[0].strip() == KEY and "=" in s:
            return token in s.split("=", 1)[1].split(";")
    return False
