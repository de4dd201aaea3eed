"""The shared server's keys and allow-list, kept in the daemon's config folder (``<config dir>/network``, 0700).

Files (all 0600):

* ``server.key_secret`` / ``server.key`` — the daemon's CURVE key pair, made on first use with pyzmq's
  ``zmq.auth.create_certificates``; the secret never leaves this folder (an invite copies only the public key).
* ``clients.json`` — the allow-list, written only by ``sanetd invite`` / ``sanetd revoke`` (under ``network.lock``):
  per client its name, CURVE public key, HMAC key, per-client queue limit and when it was invited. The clients'
  secret keys are not kept here; they exist only in the connection files handed out.
* ``clients-seen.json`` — written only by the running daemon: when and from where each client was last seen, how
  many connections it has, and which allow-list it applied (``sanetd invite``/``revoke`` wait for that, so they can
  say the change took effect).

The running daemon watches ``clients.json`` (a stat every 0.25 s) and applies a change at once: a new client can
connect, a revoked one is refused and its connections are dropped.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from sanet_client import connect

from .config import config_file_path
from .instance import UnsafeFolder, ensure_private_dir

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
LOCAL_CLIENT = "local"      # the name of everybody on this computer (the local endpoint); never an invite's name
ALLOW_LIST_VERSION = 1


class AllowListError(Exception):
    """The allow-list or the keys cannot be read or written; the message names the file."""


def network_dir() -> Path:
    """``SANETD_NETWORK_DIR``, else ``network/`` next to the config file (``SANETD_CONFIG``, else the platform's
    config folder: ``~/.config/sanet-style/network`` on Linux)."""
    explicit = os.environ.get("SANETD_NETWORK_DIR")
    if explicit:
        return Path(explicit)
    return config_file_path().parent / "network"


def fingerprint(public_key: bytes | str) -> str:
    """A short, stable name for a CURVE public key (Z85) in logs and `sanetd clients`: SHA-256, 16 hex digits."""
    key = public_key.encode("ascii") if isinstance(public_key, str) else bytes(public_key)
    return hashlib.sha256(key).hexdigest()[:16]


@dataclass(frozen=True)
class Invitee:
    name: str
    public_key: bytes        # Z85, 40 characters
    key: str                 # HMAC key, 64 hex digits
    max_queued: int | None
    invited: float
    endpoint: str = ""

    def as_json(self) -> dict:
        return {"public_key": self.public_key.decode("ascii"), "key": self.key, "max_queued": self.max_queued,
                "invited": self.invited, "endpoint": self.endpoint}


class NetworkFolder:
    """The folder and its files; every write takes ``network.lock`` (flock) first."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else network_dir()
        self.server_public_file = self.folder / "server.key"
        self.server_secret_file = self.folder / "server.key_secret"
        self.clients_file = self.folder / "clients.json"
        self.seen_file = self.folder / "clients-seen.json"
        self.lock_file = self.folder / "network.lock"

    # -------------------------------------------------------------- folder and lock

    def ensure(self) -> None:
        try:
            ensure_private_dir(self.folder)
        except UnsafeFolder as exc:
            raise AllowListError(str(exc)) from None
        except OSError as exc:
            raise AllowListError(f"cannot create the folder {self.folder}: {exc.strerror}") from None

    @contextlib.contextmanager
    def locked(self):
        self.ensure()
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform == "win32":
                import msvcrt
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
            else:
                import fcntl
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)   # releases the lock; the lock file is never unlinked

    # -------------------------------------------------------------- server keys

    def server_keys(self, create: bool = True) -> tuple[bytes, bytes]:
        """(public, secret) Z85 keys of the daemon, made on first use (0600); AllowListError if the secret file is
        readable by others (it is refused, like ssh refuses a loose private key) or unreadable."""
        with self.locked():
            if not self.server_secret_file.exists():
                if not create:
                    raise AllowListError(f"no server key yet in {self.folder}")
                old = os.umask(0o077)
                try:
                    zmq.auth.create_certificates(str(self.folder), "server")
                finally:
                    os.umask(old)
                for f in (self.server_secret_file, self.server_public_file):
                    os.chmod(f, 0o600)
            self._check_private(self.server_secret_file)
            try:
                public, secret = zmq.auth.load_certificate(str(self.server_secret_file))
            except (OSError, ValueError) as exc:
                raise AllowListError(f"cannot read the server key {self.server_secret_file}: {exc}") from None
            if not public or not secret:
                raise AllowListError(f"{self.server_secret_file} holds no CURVE key pair")
            return public, secret

    def server_public_key(self) -> bytes:
        return self.server_keys(create=True)[0]

    @staticmethod
    def _check_private(path: Path) -> None:
        if sys.platform == "win32":
            return
        st = path.stat()
        if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
            raise AllowListError(f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}, uid "
                                 f"{st.st_uid}); sanetd refuses to use a server key others can read: "
                                 f"`chmod 600 {path}` if it is yours")

    # -------------------------------------------------------------- allow-list

    def read_clients_text(self) -> bytes | None:
        try:
            return self.clients_file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AllowListError(f"cannot read the allow-list {self.clients_file}: {exc.strerror}") from None

    def parse_clients(self, raw: bytes | None) -> dict[str, Invitee]:
        if raw is None:
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
            entries = data["clients"]
            if not isinstance(entries, dict):
                raise ValueError("'clients' is not an object")
            out = {}
            for name, e in entries.items():
                if not NAME_PATTERN.match(name) or name == LOCAL_CLIENT:
                    raise ValueError(f"client name {name!r} is not allowed")
                pub, key = e["public_key"], e["key"]
                if not isinstance(pub, str) or len(pub) != 40 or len(bytes.fromhex(key)) != 32:
                    raise ValueError(f"client {name!r} has a malformed key")
                mq = e.get("max_queued")
                if mq is not None and (not isinstance(mq, int) or isinstance(mq, bool) or mq < 0):
                    raise ValueError(f"client {name!r}: max_queued must be a number of jobs")
                out[name] = Invitee(name, pub.encode("ascii"), key, mq, float(e.get("invited") or 0.0),
                                    str(e.get("endpoint") or ""))
            return out
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise AllowListError(f"the allow-list {self.clients_file} is not valid ({exc})") from None

    def clients(self) -> dict[str, Invitee]:
        return self.parse_clients(self.read_clients_text())

    def _write_clients(self, clients: dict[str, Invitee]) -> None:
        data = {"version": ALLOW_LIST_VERSION, "clients": {n: c.as_json() for n, c in sorted(clients.items())}}
        connect.write_private_file(self.clients_file, json.dumps(data, indent=1))

    def add(self, invitee: Invitee) -> None:
        with self.locked():
            clients = self.clients()
            if invitee.name in clients:
                raise AllowListError(f"client {invitee.name!r} is already invited; `sanetd revoke {invitee.name}` "
                                     f"first, or choose another name")
            clients[invitee.name] = invitee
            self._write_clients(clients)

    def remove(self, name: str) -> Invitee:
        with self.locked():
            clients = self.clients()
            if name not in clients:
                known = ", ".join(sorted(clients)) or "none"
                raise AllowListError(f"no client named {name!r} is invited (invited: {known})")
            gone = clients.pop(name)
            self._write_clients(clients)
            return gone

    @staticmethod
    def digest(raw: bytes | None) -> str:
        """What the daemon reports as applied (clients-seen.json "allow_list") for this allow-list content."""
        return hashlib.sha256(raw or b"").hexdigest()

    # -------------------------------------------------------------- last use (the daemon's side)

    def read_seen(self) -> dict:
        try:
            data = json.loads(self.seen_file.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def write_seen(self, data: dict) -> None:
        try:
            self.ensure()
            connect.write_private_file(self.seen_file, json.dumps(data, indent=1))
        except (OSError, AllowListError):
            pass   # last-use bookkeeping never stops the daemon


def new_invitee(name: str, max_queued: int | None, endpoint: str) -> tuple[Invitee, bytes]:
    """A fresh client: (its allow-list entry, its secret CURVE key — for the connection file only)."""
    if not NAME_PATTERN.match(name) or name == LOCAL_CLIENT:
        raise AllowListError(f"client name {name!r}: use 1-64 letters, digits and _ . @ - (starting with a letter "
                             f"or digit); {LOCAL_CLIENT!r} is reserved for this computer")
    public, secret = zmq.curve_keypair()
    return Invitee(name, public, os.urandom(32).hex(), max_queued, time.time(), endpoint), secret
