"""Single instance, private runtime folder, endpoint choice and the connection file."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import zmq

from sanet_client.discovery import CONNECTION_FILE_NAME, runtime_dir
from sanet_client.protocol import PROTOCOL_VERSION, SIGNATURE_SCHEME

from . import __version__

LOCK_NAME = "sanetd.lock"
SOCKET_NAME = "sanetd.sock"
IPC_PATH_MAX = 100  # libzmq's limit is 107 characters; keep a margin


class InstanceError(Exception):
    """Startup cannot go on (another instance, unsafe folder, bad endpoint); the message says why."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` as a 0700 folder owned by us, or refuse one that others can enter."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if sys.platform == "win32":
        return path
    st = path.stat()
    if st.st_uid != os.getuid():
        raise InstanceError(f"runtime folder {path} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}); "
                            f"set SANETD_RUNTIME_DIR to a folder of your own")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def write_private_file(path: Path, text: str) -> None:
    """Write atomically (temp file + rename) with mode 0600 from the first byte on."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if sys.platform != "win32" and stat.S_IMODE(os.stat(tmp).st_mode) != 0o600:
            raise InstanceError(f"{tmp} did not get mode 0600")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Instance:
    """Owns the lock, the socket folder and the connection file for the daemon's lifetime."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else runtime_dir()
        self.connection_file = self.folder / CONNECTION_FILE_NAME
        self._lock_fd = None
        self._socket_dir: Path | None = None   # a private temp folder when the runtime path is too long
        self._socket_path: Path | None = None
        self._written: str | None = None

    # -------------------------------------------------------------- lock

    def acquire(self) -> None:
        """Take the single-instance lock (before binding anything); InstanceError names the running one."""
        ensure_private_dir(self.folder)
        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform == "win32":
                import msvcrt
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InstanceError(self._describe_running()) from None
        # the lock file is never unlinked: unlinking a flock'ed file lets two daemons lock two inodes
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _describe_running(self) -> str:
        try:
            data = json.loads(self.connection_file.read_text(encoding="utf-8"))
            where = f"pid {data.get('pid')}, endpoint {data.get('endpoint')}"
        except (OSError, ValueError):
            where = "still starting up"
        return (f"sanetd is already running ({where}; connection file {self.connection_file}); "
                f"stop it first, or set SANETD_RUNTIME_DIR to run a separate instance")

    # -------------------------------------------------------------- endpoint

    def choose_endpoint(self, requested: str | None, curve: bool) -> tuple[str, bool]:
        """(endpoint to bind, whether CURVE is required). Loopback only unless asked, and then CURVE."""
        if requested is None:
            if sys.platform == "win32" or not zmq.has("ipc"):
                return "tcp://127.0.0.1:*", curve
            path = self.folder / SOCKET_NAME
            if len(str(path)) > IPC_PATH_MAX:
                self._socket_dir = Path(tempfile.mkdtemp(prefix="sanetd-"))  # mkdtemp: 0700
                path = self._socket_dir / "s"
            self._socket_path = path
            return f"ipc://{path}", curve
        parts = urlsplit(requested)
        if parts.scheme == "ipc":
            if not zmq.has("ipc"):
                raise InstanceError(f"--endpoint {requested}: this pyzmq has no ipc transport; use tcp://127.0.0.1:PORT")
            path = Path(requested[len("ipc://"):])
            if len(str(path)) > 107:
                raise InstanceError(f"--endpoint {requested}: ipc paths are limited to 107 characters")
            ensure_private_dir(path.parent)
            self._socket_path = path
            return requested, curve
        if parts.scheme == "tcp":
            host = parts.hostname or ""
            try:
                loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
            except ValueError:
                raise InstanceError(f"--endpoint {requested}: give an IP address (e.g. tcp://127.0.0.1:5555)") from None
            if not loopback:
                if not zmq.has("curve"):
                    raise InstanceError(f"--endpoint {requested} is not a loopback address and this libzmq has no "
                                        "CURVE support; refusing to listen unencrypted on the network")
                return requested, True
            return requested, curve
        raise InstanceError(f"--endpoint {requested}: expected ipc://PATH or tcp://HOST:PORT")

    # -------------------------------------------------------------- connection file

    def write_connection_file(self, endpoint: str, key: str, curve_public: bytes | None) -> None:
        data = {"protocol": PROTOCOL_VERSION, "signature_scheme": SIGNATURE_SCHEME, "endpoint": endpoint,
                "transport": endpoint.split("://", 1)[0], "key": key, "pid": os.getpid(),
                "version": __version__, "started": time.time()}
        if curve_public:
            data["curve_server_key"] = curve_public.decode("ascii")
        text = json.dumps(data, indent=1)
        write_private_file(self.connection_file, text)
        self._written = text

    def release(self) -> None:
        """Remove the connection file (if still ours), the socket, and drop the lock."""
        if self._written is not None:
            try:
                if self.connection_file.read_text(encoding="utf-8") == self._written:
                    self.connection_file.unlink()
            except OSError:
                pass
            self._written = None
        if self._socket_path is not None:
            try:
                self._socket_path.unlink()
            except OSError:
                pass
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
