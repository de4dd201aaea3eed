"""Let a Flatpak editor reach sanetd: the sandbox hides $XDG_RUNTIME_DIR/sanet-style (connection file and ipc
socket) unless the app is granted ``--filesystem=xdg-run/sanet-style``.

That grant is a per-user override keyfile, ``$XDG_DATA_HOME/flatpak/overrides/<app-id>`` (what
``flatpak override --user`` writes). We edit the one ``filesystems`` entry in [Context] ourselves so that
--uninstall can take back exactly our grant and keep the user's own overrides.
"""
from __future__ import annotations

import posixpath
from typing import Mapping

from . import keyfile
from .locations import APP_NAME, FLATPAK_GIMP, FLATPAK_KRITA, xdg_data_home

RUNTIME_GRANT = f"xdg-run/{APP_NAME}"
APP_IDS = {"gimp": FLATPAK_GIMP, "krita": FLATPAK_KRITA}
SECTION = "[Context]"
KEY = "filesystems"


def overrides_file(app_id: str, home: str, env: Mapping[str, str]) -> str:
    user_dir = env.get("FLATPAK_USER_DIR") or posixpath.join(xdg_data_home(home, env), "flatpak")
    return posixpath.join(user_dir, "overrides", app_id)


def _edit(text: str, change) -> str:
    """Apply ``change`` to the list of [Context] filesystems; an emptied entry, then an empty [Context], goes."""
    values = change([v for v in (keyfile.get_value(text, SECTION, KEY) or "").split(";") if v])
    text = keyfile.set_value(text, SECTION, KEY, f"{';'.join(values)};" if values else None)
    return keyfile.drop_empty_section(text, SECTION)


def grant(text: str, token: str = RUNTIME_GRANT) -> str:
    """Add ``token`` to [Context] filesystems; any negated form (``!token``) the user set is replaced."""
    return _edit(text, lambda vals: [v for v in vals if v not in (token, "!" + token)] + [token])


def revoke(text: str, token: str = RUNTIME_GRANT) -> str:
    return _edit(text, lambda vals: [v for v in vals if v != token])


def has_grant(text: str, token: str = RUNTIME_GRANT) -> bool:
    return token in (keyfile.get_value(text, SECTION, KEY) or "").split(";")
