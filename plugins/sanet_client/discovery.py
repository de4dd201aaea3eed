"""Where the daemon's connection file lives, and reading it. Shared by sanetd and every client.

Stdlib only (no platformdirs inside the editors' Python); the folders are platformdirs'
``user_runtime_dir("sanet-style")`` in the common cases (platformdirs also vets $XDG_RUNTIME_DIR's
owner and mode; here the daemon does that for the folder it creates).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import DaemonNotRunning, ProtocolMismatch
from .protocol import PROTOCOL_VERSION, SIGNATURE_SCHEME

APP_NAME = "sanet-style"
CONNECTION_FILE_NAME = "sanetd.json"
START_HINT = "start it with `sanetd` (add `--device cuda` for an NVIDIA GPU) and try again"


def runtime_dir() -> Path:
    """The per-user 0700 folder holding the connection file, the lock and the ipc socket."""
    explicit = os.environ.get("SANETD_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "Temp" / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "TemporaryItems" / APP_NAME
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / APP_NAME
    run_user = Path(f"/run/user/{os.getuid()}")
    if run_user.is_dir() and os.access(run_user, os.W_OK):
        return run_user / APP_NAME
    # no session runtime dir (containers, ssh without logind): platformdirs' fallback
    return Path(f"/tmp/runtime-{os.getuid()}") / APP_NAME


def connection_file_path() -> Path:
    """SANETD_CONNECTION_FILE if set, else ``<runtime dir>/sanetd.json``."""
    explicit = os.environ.get("SANETD_CONNECTION_FILE")
    if explicit:
        return Path(explicit)
    return runtime_dir() / CONNECTION_FILE_NAME


@dataclass(frozen=True)
class ConnectionInfo:
    path: Path
    endpoint: str
    key: bytes
    protocol: int
    pid: int | None = None
    transport: str = "ipc"
    curve_server_key: bytes | None = None
    version: str = ""


def read_connection_file(path: str | os.PathLike | None = None) -> ConnectionInfo:
    """Parse the connection file; DaemonNotRunning if it is missing, ProtocolMismatch if too new/old."""
    path = Path(path) if path is not None else connection_file_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DaemonNotRunning(f"sanetd is not running (no connection file at {path}); {START_HINT}") from None
    except OSError as exc:
        raise DaemonNotRunning(f"cannot read the sanetd connection file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
        endpoint = data["endpoint"]
        key = bytes.fromhex(data["key"])
        protocol = data["protocol"]
        if not isinstance(endpoint, str) or not isinstance(protocol, int) or not key:
            raise ValueError("wrong field types")
    except (ValueError, KeyError, TypeError) as exc:
        raise DaemonNotRunning(f"the sanetd connection file {path} is unreadable ({exc}); "
                               f"restart sanetd") from None
    if protocol != PROTOCOL_VERSION:
        raise ProtocolMismatch(f"sanetd speaks protocol version {protocol}, this plug-in speaks version "
                               f"{PROTOCOL_VERSION}; install matching versions of sanet-style")
    if data.get("signature_scheme", SIGNATURE_SCHEME) != SIGNATURE_SCHEME:
        raise ProtocolMismatch(f"sanetd signs with {data.get('signature_scheme')!r}; this plug-in only "
                               f"knows {SIGNATURE_SCHEME}")
    curve = data.get("curve_server_key")
    return ConnectionInfo(path=path, endpoint=endpoint, key=key, protocol=protocol, pid=data.get("pid"),
                          transport=data.get("transport", "ipc"),
                          curve_server_key=curve.encode("ascii") if isinstance(curve, str) else None,
                          version=str(data.get("version", "")))
