"""Single instance, private runtime folder and endpoint choice. The connection file itself is written and
removed through sanet_client.connect, its one owner; so are the paths of the lock and the socket."""
from __future__ import annotations

import ipaddress
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import zmq

from sanet_client import connect

from . import __version__

IPC_PATH_MAX = 100  # libzmq's limit is 107 characters; keep a margin


class InstanceError(Exception):
    """Startup cannot go on (another instance, unsafe folder, bad endpoint); the message says why."""


class UnsafeFolder(InstanceError):
    """The folder for the connection file, lock and socket is someone else's or open to others (a setup error)."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` as a 0700 folder owned by us, tighten a looser one, refuse one that is someone else's.

    A shared folder (sticky bit, like /tmp) or the home folder is refused rather than chmod'ed: the daemon's files
    need a folder of their own."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if sys.platform == "win32":
        return path
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFolder(f"{path} is not a folder")
    if st.st_uid != os.getuid():
        raise UnsafeFolder(f"runtime folder {path} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}); "
                           f"set SANETD_RUNTIME_DIR (or SANETD_CONNECTION_FILE) to a folder of your own")
    if stat.S_IMODE(st.st_mode) & 0o077:
        if st.st_mode & stat.S_ISVTX or path.resolve() == Path.home().resolve():
            raise UnsafeFolder(f"{path} is shared (mode {stat.S_IMODE(st.st_mode):04o}); sanetd keeps its connection "
                               f"file, lock and socket in a 0700 folder of their own: point SANETD_CONNECTION_FILE or "
                               f"SANETD_RUNTIME_DIR into one")
        os.chmod(path, 0o700)
    return path


class Instance:
    """Owns the lock, the socket folder and the connection file for the daemon's lifetime."""

    def __init__(self, folder: Path | None = None):
        """folder: keep the files there (default names); None: where sanet_client.connect.daemon_paths() says."""
        self.paths = connect.daemon_paths(folder)
        self.folder = self.paths.folder
        self.connection_file = self.paths.connection_file
        self._lock_fd = None
        self._socket_dir: Path | None = None   # a private temp folder when the socket path is too long
        self._socket_path: Path | None = None
        self._written: str | None = None

    # -------------------------------------------------------------- lock

    def acquire(self) -> None:
        """Take the single-instance lock (before binding anything); InstanceError names the running one."""
        ensure_private_dir(self.folder)
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
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
        return (f"sanetd is already running ({connect.describe(self.connection_file)}; connection file "
                f"{self.connection_file}); stop it first, or set SANETD_CONNECTION_FILE (or SANETD_RUNTIME_DIR) "
                f"to run a separate instance")

    # -------------------------------------------------------------- endpoint

    def choose_endpoint(self, requested: str | None, curve: bool) -> tuple[str, bool]:
        """(endpoint to bind, whether CURVE is required). Loopback only unless asked, and then CURVE."""
        if requested is None:
            if sys.platform == "win32" or not zmq.has("ipc"):
                return "tcp://127.0.0.1:*", curve
            path = self.paths.socket
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
                raise InstanceError(f"--endpoint {requested} is not a loopback address: the local endpoint serves "
                                    f"this computer only; to serve other computers use --listen tcp://HOST:PORT "
                                    f"(encrypted, for clients invited with `sanetd invite`)")
            return requested, curve
        raise InstanceError(f"--endpoint {requested}: expected ipc://PATH or tcp://HOST:PORT")

    # -------------------------------------------------------------- connection file

    def write_connection_file(self, endpoint: str, key: str, curve_public: bytes | None,
                              listen: str | None = None) -> None:
        self._written = connect.write_connection_file(self.connection_file, endpoint, key, curve_public, __version__,
                                                      listen=listen)

    def release(self) -> None:
        """Remove the connection file (if still ours), the socket, and drop the lock."""
        if self._written is not None:
            connect.remove_connection_file(self.connection_file, self._written)
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


def check_listen_endpoint(requested: str) -> str:
    """The --listen value: tcp://HOST:PORT (HOST an address, an interface, or * for all; PORT a number, or * for a
    free one — tests); InstanceError names what is wrong."""
    parts = urlsplit(requested)
    if parts.scheme != "tcp" or not parts.netloc:
        raise InstanceError(f"--listen {requested}: expected tcp://HOST:PORT (e.g. tcp://0.0.0.0:5555)")
    port = parts.netloc.rsplit(":", 1)[-1] if ":" in parts.netloc else ""
    if port != "*" and not (port.isdigit() and 0 < int(port) < 65536):
        raise InstanceError(f"--listen {requested}: give a port, e.g. tcp://0.0.0.0:5555")
    if not zmq.has("curve"):
        raise InstanceError(f"--listen {requested}: this libzmq has no CURVE support; sanetd never serves the network "
                            f"unencrypted")
    return requested
