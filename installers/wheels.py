"""Which pyzmq/msgpack wheels an editor's Python can load, how to fetch them, and how to unpack them.

A plug-in cannot pip-install into GIMP's or Krita's own Python, so the installer downloads wheels built for
that interpreter (version + platform) and unpacks them into ``<plug-in>/vendor``; the plug-in puts that folder
on sys.path (see ``VENDOR_PATH_MODULE``). Tag rules follow PEP 425/427/600 as pip applies them.
"""
from __future__ import annotations

import os
import re
import shutil
import zipfile
from dataclasses import dataclass

VENDOR_DIR = "vendor"
# What the plug-ins need; the floors match pyproject.toml (msgpack 1.2.1 fixed a reuse-after-error segfault).
VENDOR_REQUIREMENTS = ("pyzmq>=25", "msgpack>=1.2.1")
VENDOR_PROJECTS = ("pyzmq", "msgpack")


@dataclass(frozen=True)
class PythonTarget:
    """An editor's interpreter as far as wheels care: CPython X.Y and the platform tags it accepts, best first."""
    version: tuple[int, int]
    platforms: tuple[str, ...]
    os_name: str                       # "linux" | "darwin" | "windows"
    source: str = ""                   # how we know (probe, bundle, default): shown in the log

    @property
    def cp(self) -> str:
        return f"cp{self.version[0]}{self.version[1]}"

    @property
    def key(self) -> str:
        """Cache folder name, e.g. cp312-win_amd64 or cp311-manylinux_2_36_x86_64."""
        return f"{self.cp}-{self.platforms[0]}"


# --- platform tags -----------------------------------------------------------------------------------------

def linux_platforms(arch: str, glibc: tuple[int, int]) -> tuple[str, ...]:
    """manylinux tags a glibc X.Y system accepts, newest first, with the legacy aliases pip also emits."""
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    out: list[str] = []
    if glibc[0] != 2:
        return (f"linux_{arch}",)
    for minor in range(glibc[1], 4, -1):
        out.append(f"manylinux_2_{minor}_{arch}")
        if minor in legacy and (minor != 12 and minor != 5 or arch in ("x86_64", "i686")):
            out.append(f"{legacy[minor]}_{arch}")
    return tuple(out)


def macos_platforms(arch: str, macos: tuple[int, int]) -> tuple[str, ...]:
    """macOS tags for an interpreter built for ``arch`` ("arm64", "x86_64" or "universal2") on macOS X.Y.

    Bundled editor Pythons (Krita, GIMP) are universal2 builds, which load arm64, x86_64 and universal2
    extension modules on the matching machine; we list the machine's arch first, then universal2.
    """
    archs = ["arm64", "x86_64"] if arch == "universal2" else [arch]
    archs.append("universal2")
    versions: list[tuple[int, int]] = [(major, 0) for major in range(max(macos[0], 10), 10, -1)]
    if macos[0] == 10:
        versions.append((10, macos[1]))
    versions += [(10, minor) for minor in range(16 if macos[0] > 10 else macos[1] - 1, 8, -1)]
    out: list[str] = []
    for major, minor in versions:
        for a in archs:
            if a == "arm64" and major == 10:
                continue                      # Apple silicon starts at macOS 11
            out.append(f"macosx_{major}_{minor}_{a}")
    return tuple(dict.fromkeys(out))


def windows_platforms(arch: str = "amd64") -> tuple[str, ...]:
    return (f"win_{arch}",) if arch in ("amd64", "arm64") else ("win32",)


# --- wheel file names --------------------------------------------------------------------------------------

_WHEEL_RE = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-(?P<build>\d[^-]*))?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$")


@dataclass(frozen=True)
class WheelName:
    project: str          # normalised (PEP 503)
    version: str
    python_tags: tuple[str, ...]
    abi_tags: tuple[str, ...]
    platform_tags: tuple[str, ...]
    filename: str


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_wheel_name(filename: str) -> WheelName:
    m = _WHEEL_RE.match(os.path.basename(filename))
    if not m:
        raise ValueError(f"{filename!r} is not a wheel file name (name-version-python-abi-platform.whl)")
    return WheelName(normalize(m["name"]), m["version"], tuple(m["py"].split(".")), tuple(m["abi"].split(".")),
                     tuple(m["plat"].split(".")), os.path.basename(filename))


def _tag_rank(wheel: WheelName, target: PythonTarget) -> int | None:
    """Lower is better (pip's order: exact ABI, then abi3, then pure); None = the target cannot load it."""
    major, minor = target.version
    plat_rank = None
    for tag in wheel.platform_tags:
        if tag == "any":
            rank = len(target.platforms)
        elif tag in target.platforms:
            rank = target.platforms.index(tag)
        else:
            continue
        plat_rank = rank if plat_rank is None else min(plat_rank, rank)
    if plat_rank is None:
        return None
    best = None
    for py in wheel.python_tags:
        for abi in wheel.abi_tags:
            kind = None
            if py == target.cp and abi == target.cp:
                kind = 0                                   # built for exactly this CPython
            elif abi == "abi3" and _minor_of(py, "cp", major) is not None and _minor_of(py, "cp", major) <= minor:
                kind = 1                                   # stable ABI, built for this or an older 3.x
            elif abi == "none" and (py in (target.cp, f"py{major}")
                                    or (_minor_of(py, "py", major) or 99) <= minor):
                kind = 2                                   # pure Python
            if kind is not None:
                score = kind * 10000 + plat_rank
                best = score if best is None else min(best, score)
    return best


def _minor_of(tag: str, prefix: str, major: int) -> int | None:
    """"cp312" → 12 for prefix "cp", major 3; None for anything else."""
    head = f"{prefix}{major}"
    rest = tag[len(head):]
    return int(rest) if tag.startswith(head) and rest.isdigit() else None


def wheel_compatible(filename: str, target: PythonTarget) -> bool:
    return _tag_rank(parse_wheel_name(filename), target) is not None


def _version_key(version: str) -> tuple:
    parts = []
    for piece in re.split(r"[.+!-]", version):
        parts.append((0, int(piece), "") if piece.isdigit() else (-1, 0, piece))
    return tuple(parts)


def select_wheels(filenames: list[str], target: PythonTarget,
                  projects: tuple[str, ...] = VENDOR_PROJECTS) -> dict[str, str]:
    """Newest loadable wheel per project (best tag within a version). Raises ValueError naming what is missing."""
    chosen: dict[str, tuple[tuple, int, str]] = {}
    for name in filenames:
        if not name.endswith(".whl"):
            continue
        wheel = parse_wheel_name(name)
        if wheel.project not in {normalize(p) for p in projects}:
            continue
        rank = _tag_rank(wheel, target)
        if rank is None:
            continue
        key = (_version_key(wheel.version), -rank, name)
        if wheel.project not in chosen or key > chosen[wheel.project]:
            chosen[wheel.project] = key
    missing = [p for p in projects if normalize(p) not in chosen]
    if missing:
        raise ValueError(f"no wheel of {', '.join(missing)} for CPython {target.version[0]}.{target.version[1]} "
                         f"on {target.platforms[0]} among {len(filenames)} file(s)")
    return {p: chosen[normalize(p)][2] for p in projects}


# --- pip download and unpacking ----------------------------------------------------------------------------

def pip_download_command(python: str, target: PythonTarget, dest: str,
                         requirements: tuple[str, ...] = VENDOR_REQUIREMENTS) -> list[str]:
    """pip fetches only binary wheels for the target interpreter, never builds, never pulls dependencies."""
    cmd = [python, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
           "--only-binary=:all:", "--implementation", "cp",
           "--python-version", f"{target.version[0]}.{target.version[1]}", "--dest", dest]
    for plat in target.platforms:
        cmd += ["--platform", plat]
    return cmd + list(requirements)


def extract_wheel(wheel_path: str, dest: str) -> list[str]:
    """Unpack a wheel the way an installer would (purelib/platlib at the top); returns top-level names."""
    tops: set[str] = set()
    umask = os.umask(0o022)
    os.umask(umask)
    with zipfile.ZipFile(wheel_path) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = name.split("/")
            if name.startswith("/") or ".." in parts or ":" in parts[0]:
                raise ValueError(f"{wheel_path}: unsafe path {name!r} inside the wheel")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue                  # scripts/headers/data are useless to an embedded interpreter
                parts = parts[2:]
            if not parts or not parts[-1]:
                continue
            target = os.path.join(dest, *parts)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            # Like pip: only the executable bit comes from the archive, the rest from the umask, so a wheel
            # cannot leave group/world-writable files in a folder the editor executes code from.
            executable = (info.external_attr >> 16) & 0o111
            os.chmod(target, (0o777 if executable else 0o666) & ~umask)
            tops.add(parts[0])
    return sorted(tops)
