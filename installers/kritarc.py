"""Enable a Python plug-in in kritarc (``[python] enable_<name>=true``) without disturbing anything else.

kritarc is a QSettings INI file; configparser would lower-case keys and reflow it, so this edits lines.
Krita rewrites kritarc when it quits: install while Krita is closed.
"""
from __future__ import annotations

from . import keyfile

SECTION = "[python]"


def get_value(text: str, key: str) -> str | None:
    return keyfile.get_value(text, SECTION, key)


def set_value(text: str, key: str, value: str | None) -> str:
    """Return ``text`` with ``key`` in [python] set to ``value`` (None removes the key)."""
    return keyfile.set_value(text, SECTION, key, value)


def section_is_empty(text: str) -> bool:
    return keyfile.section_is_empty(text, SECTION)


def drop_empty_section(text: str) -> str:
    return keyfile.drop_empty_section(text, SECTION)
