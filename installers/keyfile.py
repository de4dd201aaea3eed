"""Line-based editing of INI-style key files (kritarc, Flatpak overrides): one key in one section, nothing else
touched. configparser would lower-case keys and reflow the file, which QSettings and Flatpak users would notice."""
from __future__ import annotations


def _is_header(s: str) -> bool:
    return s.startswith("[") and s.endswith("]")


def _key_of(s: str) -> str | None:
    return s.split("=", 1)[0].strip() if "=" in s else None


def get_value(text: str, section: str, key: str) -> str | None:
    current = None
    for line in text.splitlines():
        s = line.strip()
        if _is_header(s):
            current = s
        elif current == section and _key_of(s) == key:
            return s.split("=", 1)[1].strip()
    return None


def set_value(text: str, section: str, key: str, value: str | None) -> str:
    """Return ``text`` with ``key`` in ``section`` set to ``value`` (None removes the key; duplicates are dropped)."""
    out: list[str] = []
    current = None
    done = False
    section_end = None             # index in out after the last non-blank line of the section
    for line in text.splitlines():
        s = line.strip()
        if _is_header(s):
            current = s
            out.append(line)
            if s == section:
                section_end = len(out)
            continue
        if current == section and _key_of(s) == key:
            if value is not None and not done:
                out.append(f"{key}={value}")
                done = True
            continue
        out.append(line)
        if current == section and s:
            section_end = len(out)
    if value is not None and not done:
        if section_end is None:
            if out and out[-1].strip():
                out.append("")
            out += [section, f"{key}={value}"]
        else:
            out.insert(section_end, f"{key}={value}")
    result = "\n".join(out)
    return result + "\n" if result else ""


def section_is_empty(text: str, section: str) -> bool:
    """True when ``section`` exists but holds no keys (so an uninstall can drop the header it added)."""
    current = None
    has_header = False
    for line in text.splitlines():
        s = line.strip()
        if _is_header(s):
            current = s
            has_header = has_header or s == section
        elif current == section and s:
            return False
    return has_header


def drop_empty_section(text: str, section: str) -> str:
    if not section_is_empty(text, section):
        return text
    out = [line for line in text.splitlines() if line.strip() != section]
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + "\n" if out else ""
