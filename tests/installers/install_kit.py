"""Shared by the installer tests: run the real installer as a process against a temporary HOME, and snapshot
a folder tree to prove what changed."""
import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "installers" / "install.py"
WHEEL_CACHE = Path.home() / ".cache" / "sanet-style" / "wheels"


def _env(home: Path) -> dict:
    """This environment with HOME moved and nothing that would point the installer at the real user's folders."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "SANET", "GIMP3_")) and k not in
           ("DBUS_SESSION_BUS_ADDRESS", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["HOME"] = str(home)
    # Keep pip's and rustup's own caches out of the temporary HOME (they are not ours to uninstall).
    env["PIP_CACHE_DIR"] = str(Path.home() / ".cache" / "pip")
    env["RUSTUP_HOME"] = os.environ.get("RUSTUP_HOME", str(Path.home() / ".rustup"))
    return env


def run_installer(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(INSTALL), *args], env=_env(home), capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, f"installer failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def snapshot(home: Path) -> dict:
    """Every path under home with its mode and content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(home):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else None
            out[str(p.relative_to(home))] = (stat.S_IMODE(st.st_mode), digest)
    return out
