"""Enable a Python plug-in in kritarc (``[python] enable_<name>=true``) without disturbing anything else.

kritarc is a QSettings INI file; configparser would lower-case keys and reflow it, so this edits lines.
Krita rewrites kritarc when it quits: install while Krita is closed.
"""
from __future__ import annotations

SECTION = "[python]"


def _split(text: str) -> list[str]:
    return text.splitlines()


def get_value(text: str, key: str) -> str | None:
    section = None
    for line in _split(text):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s
        elif section == SECTION and "=" in s and s.split("=", 1)[0].strip() == key:
            return s.split("=", 1)[1].strip()
    return None


def set_value(text: str, key: str, value: str | None) -> str:
    """Return ``text`` with ``key`` in [python] set to ``value`` (None removes the key)."""
    lines = _split(text)
    out: list[str] = []
    section = None
    done = False
    section_end = None             # index in out after the last line of [python]
    for line in lines:
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s
            out.append(line)
            if s == SECTION:
                section_end = len(out)
            continue
        if section == SECTION and "=" in s and s.split("=", 1)[0].strip() == key:
            if value is not None and not done:
                out.append(f"{key}={value}")
                done = True
            continue                 # drop duplicates / the removed key
        out.append(line)
        if section == SECTION and s:
            section_end = len(out)
    if value is not None and not done:
        if section_end is None:
            if out and out[-1].strip():
                out.append("")
            out += [SECTION, f"{key}={value}"]
        else:
            out.insert(section_end, f"{key}={value}")
    result = "\n".join(out)
    return result + "\n" if result else ""


def section_is_empty(text: str) -> bool:
    """True when [python] exists but holds no keys (so an uninstall can drop the header it added)."""
    section = None
    has_header = False
    for line in _split(text):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s
            has_header = has_header or s == SECTION
        elif section == SECTION and s:
            return False
    return has_header


def drop_empty_section(text: str) -> str:
    if not section_is_empty(text):
        return text
    out = [line for line in _split(text) if line.strip() != SECTION]
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + "\n" if out else ""
