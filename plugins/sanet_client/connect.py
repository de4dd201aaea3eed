"""The connection file: the one module that knows where it lives, writes it, reads it and judges it stale.

sanetd writes it (``write_connection_file`` / ``remove_connection_file``), clients read it
(``read_connection_file``), and anyone else who needs it (the daemon's "already running" message, tests,
installers) goes through here too — there is no other parser of this file. The format is in docs/protocol.md §1.

Stdlib only (it runs inside GIMP's and Krita's Python; no platformdirs there). The runtime folder is
platformdirs' ``user_runtime_dir("sanet-style")`` in the common cases.

Where things go:

* ``SANETD_CONNECTION_FILE=/dir/NAME.json`` set: the connection file is that path, and the daemon's lock and
  ipc socket go next to it, ``/dir/NAME.lock`` and ``/dir/NAME.sock``;
* else the runtime folder (``SANETD_RUNTIME_DIR``, else the platform's per-user runtime folder) holds
  ``sanetd.json``, ``sanetd.lock`` and ``sanetd.sock``.

A second kind of connection file is the one ``sanetd invite NAME -o FILE`` writes for another computer: the
daemon's networked endpoint (tcp), its CURVE public key, the client's own CURVE key pair and HMAC key, and the
client's name (``write_invite_file``; ``ConnectionInfo.remote`` is True for it). The artist gives that file to the
editor ("Server: a connection file") or to ``sanet-client --connection FILE``.
"""
from __future__ import annotations

import json
import os
import socket
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import DaemonNotRunning, ProtocolMismatch
from .protocol import PROTOCOL_VERSION, SIGNATURE_SCHEME

APP_NAME = "sanet-style"
CONNECTION_FILE_NAME = "sanetd.json"
START_HINT = "start it with `sanetd` (add `--device cuda` for an NVIDIA GPU) and try again"
ENV_CONNECTION_FILE = "SANETD_CONNECTION_FILE"
ENV_RUNTIME_DIR = "SANETD_RUNTIME_DIR"


# ------------------------------------------------------------------------------------------------ where

def runtime_dir() -> Path:
    """The per-user 0700 folder holding the connection file, the lock and the ipc socket."""
    explicit = os.environ.get(ENV_RUNTIME_DIR)
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
    explicit = os.environ.get(ENV_CONNECTION_FILE)
    if explicit:
        return Path(explicit).expanduser()
    return runtime_dir() / CONNECTION_FILE_NAME


@dataclass(frozen=True)
class DaemonPaths:
    """Where one daemon instance keeps its files (see the module docstring)."""

    folder: Path            # holds all three; created 0700 by the daemon
    connection_file: Path
    lock: Path              # flock'ed for the daemon's whole life; never unlinked
    socket: Path            # the ipc endpoint (a private mkdtemp folder instead when this path is too long)
    explicit: bool          # True when SANETD_CONNECTION_FILE chose them


def daemon_paths(folder: str | os.PathLike | None = None) -> DaemonPaths:
    """The daemon's files: in ``folder`` when given, else as the environment says (module docstring)."""
    explicit = os.environ.get(ENV_CONNECTION_FILE) if folder is None else None
    if explicit:
        conn = Path(explicit).expanduser().absolute()
        stem = conn.stem if conn.suffix else conn.name
        return DaemonPaths(conn.parent, conn, conn.parent / f"{stem}.lock", conn.parent / f"{stem}.sock", True)
    folder = Path(folder) if folder is not None else runtime_dir()
    return DaemonPaths(folder, folder / CONNECTION_FILE_NAME, folder / "sanetd.lock", folder / "sanetd.sock", False)


# ------------------------------------------------------------------------------------------------ liveness

def _own_pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def _proc_stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat after the command name (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:].split()
    except (OSError, ValueError):
        return None


def _process_start(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux /proc), to tell a reused pid from the daemon."""
    fields = _proc_stat(pid)
    try:
        return int(fields[19]) if fields else None
    except (ValueError, IndexError):
        return None


def process_identity() -> dict:
    """What a daemon records about itself so that a client can tell at once whether it still runs."""
    ident = {"pid": os.getpid(), "host": socket.gethostname()}
    ns = _own_pid_namespace()
    if ns is not None:
        ident["pid_namespace"] = ns
    start = _process_start(os.getpid())
    if start is not None:
        ident["pid_start"] = start
    return ident


# ------------------------------------------------------------------------------------------------ reading

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
    started: float | None = None
    host: str | None = None
    pid_namespace: int | None = None
    pid_start: int | None = None
    client_name: str | None = None          # an invite's client name (networked connection files only)
    curve_public_key: bytes | None = None   # the client's own CURVE key pair (networked connection files only)
    curve_secret_key: bytes | None = None
    server_name: str | None = None          # the server's host name, for messages
    listen: str | None = None               # the daemon's own file: its networked endpoint, when it has one

    @property
    def remote(self) -> bool:
        """True for a connection file made by `sanetd invite` (a daemon on another computer, or at least reached
        over the network): its process cannot be looked at from here."""
        return self.client_name is not None

    def where(self) -> str:
        """The daemon as an artist would name it in a message."""
        if self.remote:
            return f"the shared sanetd at {self.endpoint}" + (f" ({self.server_name})" if self.server_name else "")
        return f"sanetd at {self.endpoint}"

    def process_state(self) -> str:
        """"alive", "gone" (the daemon process has exited: the file is stale) or "unknown" (cannot tell from here:
        another host, another pid namespace such as a Flatpak sandbox, Windows). Costs a syscall or two."""
        pid = self.pid
        if self.remote:
            return "unknown"
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or sys.platform == "win32":
            return "unknown"
        if self.host is not None and self.host != socket.gethostname():
            return "unknown"
        ours = _own_pid_namespace()
        if self.pid_namespace is not None and ours != self.pid_namespace:
            return "unknown"      # the pid means another process here (sandboxed editor)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "gone"
        except PermissionError:
            pass                  # exists, but belongs to someone else: a reused pid, or not ours to judge
        except OSError:
            return "unknown"
        fields = _proc_stat(pid)
        if fields:
            if fields[0] in (b"Z", b"X"):
                return "gone"     # exited, not yet reaped by its parent
            try:
                if self.pid_start is not None and int(fields[19]) != self.pid_start:
                    return "gone"     # the pid was reused by another process after the daemon exited
            except (ValueError, IndexError):
                pass
        return "alive"


def _parse(path: Path, text: str) -> ConnectionInfo:
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
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

    def opt_int(name):
        v = data.get(name)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def opt_str(name):
        v = data.get(name)
        return v if isinstance(v, str) and v else None

    def z85_key(name):
        v = data.get(name)
        if v is None:
            return None
        if not isinstance(v, str) or len(v) != 40:
            raise DaemonNotRunning(f"the sanetd connection file {path} is unreadable (field {name!r} must be a "
                                   f"40-character Z85 CURVE key); ask for a new connection file")
        return v.encode("ascii")

    curve = z85_key("curve_server_key")
    started = data.get("started")
    client = opt_str("client")
    info = ConnectionInfo(path=path, endpoint=endpoint, key=key, protocol=protocol, pid=opt_int("pid"),
                          transport=str(data.get("transport", "ipc")), curve_server_key=curve,
                          version=str(data.get("version", "")),
                          started=float(started) if isinstance(started, (int, float)) else None,
                          host=opt_str("host"), pid_namespace=opt_int("pid_namespace"), pid_start=opt_int("pid_start"),
                          client_name=client, curve_public_key=z85_key("curve_public_key"),
                          curve_secret_key=z85_key("curve_secret_key"), server_name=opt_str("server"),
                          listen=opt_str("listen"))
    if client is not None:
        missing = [n for n, v in (("curve_server_key", info.curve_server_key), ("curve_public_key",
                   info.curve_public_key), ("curve_secret_key", info.curve_secret_key)) if v is None]
        if missing or not endpoint.startswith("tcp://"):
            what = f"has no {', '.join(missing)}" if missing else f"has endpoint {endpoint!r}, not tcp://HOST:PORT"
            raise DaemonNotRunning(f"the connection file {path} (client {client!r}) {what}; ask whoever runs the "
                                   f"server for a new one (`sanetd invite {client} -o FILE`)")
    return info


def read_connection_file(path: str | os.PathLike | None = None) -> ConnectionInfo:
    """Parse the connection file; DaemonNotRunning if it is missing or unreadable, ProtocolMismatch if it is of
    another protocol version. It does not judge staleness: ask ``info.process_state()``."""
    path = Path(path) if path is not None else connection_file_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DaemonNotRunning(f"sanetd is not running (no connection file at {path}); {START_HINT}") from None
    except OSError as exc:
        raise DaemonNotRunning(f"cannot read the sanetd connection file {path}: {exc.strerror}") from None
    return _parse(path, text)


def server_label(path: str | os.PathLike | None) -> str:
    """How an editor names the server a connection file leads to ("Server: …"): "this computer" for None, "the
    shared sanetd at tcp://gpu:5555 (gpu-box), as alice" for an invite's file, "the sanetd of FILE" for another local
    daemon's file. DaemonNotRunning/ProtocolMismatch when the file cannot be used (the message says why)."""
    if not path:
        return "this computer"
    info = read_connection_file(path)
    if info.remote:
        return f"{info.where()}, as {info.client_name}"
    return f"the sanetd of {info.path}"


def describe(path: str | os.PathLike) -> str:
    """A short description of the daemon a connection file names ("pid 123, endpoint ipc://..."), for messages."""
    try:
        info = read_connection_file(path)
    except (DaemonNotRunning, ProtocolMismatch):
        return "still starting up, or its connection file is unreadable"
    return f"pid {info.pid}, endpoint {info.endpoint}"


# ------------------------------------------------------------------------------------------------ writing

def write_private_file(path: Path, text: str) -> None:
    """Write atomically (temp file + rename) with mode 0600 from the first byte on."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if sys.platform != "win32" and stat.S_IMODE(os.stat(tmp).st_mode) != 0o600:
            raise OSError(f"{tmp} did not get mode 0600")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_connection_file(path: Path, endpoint: str, key: str, curve_public: bytes | None = None,
                          version: str = "", listen: str | None = None) -> str:
    """The daemon's side: write the file (0600, atomic) and return its exact text (for remove_connection_file).
    ``listen``: the networked endpoint the daemon also serves (informational; `sanetd invite` reads it)."""
    data = {"protocol": PROTOCOL_VERSION, "signature_scheme": SIGNATURE_SCHEME, "endpoint": endpoint,
            "transport": endpoint.split("://", 1)[0], "key": key, **process_identity(),
            "version": version, "started": time.time()}
    if curve_public:
        data["curve_server_key"] = curve_public.decode("ascii")
    if listen:
        data["listen"] = listen
    text = json.dumps(data, indent=1)
    write_private_file(Path(path), text)
    return text


def write_invite_file(path: Path, *, endpoint: str, key: str, server_public: bytes, client_public: bytes,
                      client_secret: bytes, client: str, server: str = "", version: str = "") -> None:
    """`sanetd invite`: the networked connection file for one client (0600, atomic). It holds the client's secret
    CURVE key and its HMAC key: whoever has the file is that client."""
    data = {"protocol": PROTOCOL_VERSION, "signature_scheme": SIGNATURE_SCHEME, "endpoint": endpoint,
            "transport": "tcp", "key": key, "curve_server_key": server_public.decode("ascii"),
            "curve_public_key": client_public.decode("ascii"), "curve_secret_key": client_secret.decode("ascii"),
            "client": client, "server": server, "version": version, "invited": time.time()}
    write_private_file(Path(path), json.dumps(data, indent=1))


def remove_connection_file(path: Path, written: str) -> None:
    """Remove the file if it is still the one we wrote (a newer daemon's file is left alone)."""
    try:
        if Path(path).read_text(encoding="utf-8") == written:
            Path(path).unlink()
    except OSError:
        pass


__all__ = ["APP_NAME", "CONNECTION_FILE_NAME", "START_HINT", "ConnectionInfo", "DaemonPaths", "runtime_dir",
           "connection_file_path", "daemon_paths", "read_connection_file", "describe", "server_label", "write_connection_file",
           "remove_connection_file", "write_private_file", "write_invite_file", "process_identity"]
