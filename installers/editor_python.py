"""Find the Python each editor runs its plug-ins with, and decide whether it needs vendored wheels.

Linux builds use the system python3 (a Flatpak uses its runtime's python3, a Snap its own); GIMP 3 for
Windows bundles 3.12; Krita 5.2 for Windows and macOS bundles 3.10 (docs: shared/facts/editors.md).
We look inside the installed application first and fall back to those documented versions.
"""
from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass

from .locations import FLATPAK_GIMP, FLATPAK_KRITA, EditorProfile
from .wheels import PythonTarget, linux_platforms, macos_platforms, windows_platforms

# Documented bundles; GIMP for macOS is not documented in our facts, 3.12 is its current build's choice.
DEFAULT_BUNDLED = {("gimp", "windows"): (3, 12), ("krita", "windows"): (3, 10),
                   ("krita", "darwin"): (3, 10), ("gimp", "darwin"): (3, 12)}
# When the version is only a default, the vendor folder gets extension modules for all of these: CPython picks
# the one whose suffix matches (_zmq.cpython-310-….so, _zmq.abi3.so, ….cp311-win_amd64.pyd).
GUESS_VERSIONS = ((3, 10), (3, 11), (3, 12), (3, 13))
# Flatpak runtimes (GNOME 47+/KDE 6.x) ship 3.12 and glibc >= 2.38; used only when we cannot look inside.
DEFAULT_FLATPAK = ((3, 12), (2, 38))
SNAP_BASE_GLIBC = {"core22": (2, 35), "core24": (2, 39), "core20": (2, 31)}

_PROBE = (
    "import json, platform, sys\n"
    "try:\n    import zmq, msgpack\n    deps = [zmq.pyzmq_version(), '.'.join(map(str, msgpack.version))]\n"
    "except Exception:\n    deps = None\n"
    "libc = platform.libc_ver()\n"
    "print(json.dumps({'version': list(sys.version_info[:2]), 'machine': platform.machine(),"
    "'libc': libc[0], 'libc_version': libc[1], 'deps': deps}))\n"
)


# Same floors as pyproject.toml: an older system pyzmq/msgpack gets the vendored copy in front of it.
MIN_PYZMQ = (25, 0)
MIN_MSGPACK = (1, 2, 1)


def _num(text: str) -> tuple[int, ...]:
    out = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        out.append(int(digits[0]))
    return tuple(out)


def deps_ok(deps: list[str] | None) -> bool:
    """True when the probed (pyzmq, msgpack) versions meet the floors, so no vendoring is needed."""
    return bool(deps) and _num(deps[0]) >= MIN_PYZMQ and _num(deps[1]) >= MIN_MSGPACK


@dataclass(frozen=True)
class EditorPython:
    """What we know about the interpreter an editor profile runs plug-ins with."""
    target: PythonTarget
    has_deps: bool | None          # True: `import zmq, msgpack` works already → no vendoring
    executable: str | None = None  # set when we could run it

    @property
    def guessed(self) -> bool:
        """The version is a documented default, not seen on this machine (every such source ends "default")."""
        return self.target.source.endswith("default")


def _ver(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a Python version like 3.12")
    return int(m[1]), int(m[2])


def parse_version(text: str) -> tuple[int, int]:
    return _ver(text)


def probe_interpreter(cmd: list[str], timeout: float = 60) -> dict | None:
    """Run the probe in an interpreter (without our PYTHONPATH/PYTHONHOME), or None if it cannot run."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE")}
    try:
        out = subprocess.run(cmd + ["-c", _PROBE], capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _glibc(info: dict) -> tuple[int, int]:
    if info.get("libc") == "glibc":
        try:
            return _ver(".".join(info["libc_version"].split(".")[:2]))
        except (KeyError, ValueError):
            pass
    return (2, 17)


def linux_target_from_probe(info: dict, source: str) -> PythonTarget:
    return PythonTarget(tuple(info["version"]), linux_platforms(info["machine"], _glibc(info)), "linux", source)


def bundled_python_version(app_root: str) -> tuple[int, int] | None:
    """Python X.Y shipped inside an installed application folder (Windows install dir or macOS .app)."""
    patterns = [
        ("python3*.dll", r"python3(\d+)\.dll"),                         # Windows: bin/python312.dll
        ("libpython3.*.dylib", r"libpython3\.(\d+)"),                  # macOS .app Frameworks
        ("python3.*", r"python3\.(\d+)$"),                             # lib/python3.12 folders
        ("Versions/3.*", r"3\.(\d+)$"),                                # Python.framework/Versions/3.10
    ]
    subdirs = ["", "bin", "lib", "python", "Frameworks", "Resources/lib", "Contents/Frameworks",
               "Contents/Resources/lib", "Frameworks/Python.framework", "Contents/Frameworks/Python.framework"]
    for sub in subdirs:
        base = os.path.join(app_root, *sub.split("/")) if sub else app_root
        if not os.path.isdir(base):
            continue
        for pattern, rx in patterns:
            for hit in sorted(glob.glob(os.path.join(base, pattern))):
                m = re.search(rx, os.path.basename(hit) if "Versions" not in pattern else hit)
                if m:
                    return 3, int(m[1])
    return None


def app_roots(editor: str, os_name: str, env: dict, home: str) -> list[str]:
    """Usual install locations of the editor application (not the profile)."""
    if os_name == "windows":
        # os.environ upper-cases its keys on Windows, so look both spellings up.
        get = lambda key: env.get(key) or env.get(key.upper()) or ""  # noqa: E731
        bases = [get("ProgramFiles") or r"C:\Program Files", get("ProgramW6432"),
                 os.path.join(get("LOCALAPPDATA"), "Programs") if get("LOCALAPPDATA") else ""]
        names = ["GIMP 3"] if editor == "gimp" else ["Krita (x64)", "Krita"]
        return [os.path.join(b, n) for b in bases if b for n in names]
    if os_name == "darwin":
        name = "GIMP.app" if editor == "gimp" else "krita.app"
        return [os.path.join("/Applications", name), os.path.join(home, "Applications", name)]
    return []


def flatpak_runtime_python(app_id: str, home: str, roots: tuple[str, ...] = ("/var/lib/flatpak",)) -> \
        tuple[tuple[int, int], str] | None:
    """(python X.Y, runtime ref) from the app's metadata and its runtime's lib/python3.X folder."""
    for root in (os.path.join(home, ".local", "share", "flatpak"),) + roots:
        meta = os.path.join(root, "app", app_id, "current", "active", "metadata")
        try:
            with open(meta, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            continue
        m = re.search(r"^runtime=(.+)$", text, re.M)
        if not m:
            continue
        ref = m[1].strip()
        for rroot in (root,) + roots:
            files = os.path.join(rroot, "runtime", *ref.split("/"), "active", "files", "lib")
            for hit in sorted(glob.glob(os.path.join(files, "python3.*"))):
                mm = re.search(r"python3\.(\d+)$", hit)
                if mm:
                    return (3, int(mm[1])), ref
    return None


def editor_python(profile: EditorProfile, home: str, env: dict, override: tuple[int, int] | None = None) \
        -> EditorPython:
    """Best knowledge of the interpreter behind ``profile``; ``override`` (--gimp-python) wins for the version."""
    os_name = profile.os_name
    if os_name == "linux":
        return _linux_editor_python(profile, home, override)
    machine = platform.machine().lower()
    version = override
    source = "--*-python" if override else ""
    if version is None:
        for root in app_roots(profile.editor, os_name, env, home):
            found = bundled_python_version(root)
            if found:
                version, source = found, f"bundled in {root}"
                break
    if version is None:
        version = DEFAULT_BUNDLED[(profile.editor, os_name)]
        source = f"{profile.label} default"
    if os_name == "windows":
        plats = windows_platforms("arm64" if machine in ("arm64", "aarch64") else "amd64")
    else:
        mac = platform.mac_ver()[0] or "11.0"
        major, minor = (int(x) for x in (mac.split(".") + ["0"])[:2])
        arch = "arm64" if machine in ("arm64", "aarch64") else "x86_64"
        plats = macos_platforms(arch, (major, minor))
    # Bundled interpreters never ship pyzmq: always vendor.
    return EditorPython(PythonTarget(version, plats, os_name, source), has_deps=False)


def _linux_editor_python(profile: EditorProfile, home: str, override: tuple[int, int] | None) -> EditorPython:
    machine = platform.machine()
    if profile.variant == "native":
        exe = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
        info = probe_interpreter([exe]) if exe else None
        if info and (override is None or tuple(info["version"]) == override):
            return EditorPython(linux_target_from_probe(info, f"probed {exe}"), deps_ok(info["deps"]), exe)
        version = override or (3, 12)
        return EditorPython(PythonTarget(version, linux_platforms(machine, (2, 28)), "linux",
                                         "--*-python" if override else "no python3 found: default"), None)
    if profile.variant == "flatpak":
        app_id = FLATPAK_GIMP if profile.editor == "gimp" else FLATPAK_KRITA
        if shutil.which("flatpak") and override is None:
            info = probe_interpreter(["flatpak", "run", "--command=python3", app_id])
            if info:
                return EditorPython(linux_target_from_probe(info, f"probed flatpak {app_id}"),
                                    deps_ok(info["deps"]), None)
        found = flatpak_runtime_python(app_id, home)
        version = override or (found[0] if found else DEFAULT_FLATPAK[0])
        source = "--*-python" if override else (f"runtime {found[1]}" if found else "Flatpak default")
        return EditorPython(PythonTarget(version, linux_platforms(machine, DEFAULT_FLATPAK[1]), "linux", source),
                            None)
    # Snap: the snap ships its own python3 under /snap/<name>/current/usr/lib/python3.X
    name = "gimp" if profile.editor == "gimp" else "krita"
    version, source, glibc = override, "--*-python" if override else "", (2, 35)
    if version is None:
        for hit in sorted(glob.glob(f"/snap/{name}/current/usr/lib/python3.*")):
            m = re.search(r"python3\.(\d+)$", hit)
            if m:
                version, source = (3, int(m[1])), hit
    try:
        with open(f"/snap/{name}/current/meta/snap.yaml", encoding="utf-8") as fh:
            base = re.search(r"^base:\s*(\S+)", fh.read(), re.M)
        glibc = SNAP_BASE_GLIBC.get(base[1], glibc) if base else glibc
    except OSError:
        pass
    if version is None:
        version, source = (3, 10), "core22 Snap default"
    return EditorPython(PythonTarget(version, linux_platforms(machine, glibc), "linux", source), None)
