"""The daemon's two doors: the local endpoint (ipc, HMAC key file; unchanged) and the networked one (``--listen``).

The networked door is a ROUTER with ZeroMQ CURVE (``curve_server``) and ZAP (RFC 27): pyzmq's
``zmq.auth.thread.ThreadAuthenticator`` answers the ZAP requests in its own thread, and admits a client only when
its CURVE public key is on the allow-list (``Gatekeeper``). A plaintext client, or one that encrypts to another
server key, fails the CURVE handshake before ZAP is asked; those refusals are logged from the socket monitor
(peer address and reason). No refused connection ever delivers a message. libzmq closes such a connection within
microseconds, often before its address can be read from the descriptor; the monitor thread then names the peer
from the kernel's list of connections this port just closed (Linux ``/proc/net/tcp``), or says it could not.

ZAP runs only at the handshake. To drop an established connection (``sanetd revoke``), the door remembers, for
each routing id, the client it belongs to (the ZAP User-Id, i.e. the public key, carried by every message) and its
TCP connection (ZMQ_SRCFD + the peer address); revoking shuts that TCP connection down (``shutdown(2)`` on a
duplicate of libzmq's descriptor, after checking it is still the same peer). libzmq then closes it; the client's
reconnect is refused by ZAP. Messages from a key that is no longer allowed are refused too.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import parse_monitor_message

from .allowlist import fingerprint

log = logging.getLogger("sanetd.network")

ZAP_DOMAIN = "sanetd"
REFUSAL_LOG_INTERVAL_S = 60.0   # a refused peer reconnects every 100 ms or so: one log line per minute per cause


class Throttle:
    """At most one log line per key per interval; the next one says how many were left out."""

    def __init__(self, interval: float = REFUSAL_LOG_INTERVAL_S):
        self.interval = interval
        self._last: dict = {}
        self._lock = threading.Lock()

    def __call__(self, key) -> int | None:
        """None: stay quiet; else the number of occurrences left out since the last line."""
        now = time.monotonic()
        with self._lock:
            last, hidden = self._last.get(key, (None, 0))
            if last is not None and now - last < self.interval:
                self._last[key] = (last, hidden + 1)
                return None
            self._last[key] = (now, 0)
            if len(self._last) > 10000:
                self._last.clear()
            return hidden


def _also(hidden: int) -> str:
    return f" ({hidden} more since the last report)" if hidden else ""


class Gatekeeper(ThreadAuthenticator):
    """ZAP handler of the networked door: CURVE keys on the allow-list get in, with User-Id = their public key.

    ``allowed`` is replaced as a whole (``set_allowed``) by the I/O thread when the allow-list file changes; the ZAP
    thread only reads it."""

    def __init__(self, ctx: zmq.Context):
        super().__init__(ctx, log=logging.getLogger("sanetd.zap"))
        self._keys: dict[bytes, str] = {}     # Z85 public key -> client name (not zmq.auth's IP list)
        self._address = "?"
        self._throttle = Throttle()
        self.refused = 0

    def start(self) -> None:
        super().start()
        self.configure_curve_callback(ZAP_DOMAIN, self)

    def set_allowed(self, keys: dict[bytes, str]) -> None:
        self._keys = dict(keys)

    async def handle_zap_message(self, msg):
        # RFC 27: version, request id, domain, address, identity, mechanism, credentials...
        self._address = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"
        if len(msg) > 5 and msg[5] != b"CURVE":   # never NULL or PLAIN here (zmq.auth would admit NULL)
            self._refuse(f"mechanism {msg[5].decode('ascii', 'replace')} (only CURVE is accepted)", msg[5])
            self._send_zap_reply(msg[1], b"400", b"only CURVE is accepted")
            return
        await super().handle_zap_message(msg)

    def callback(self, domain: str, key: bytes) -> bool:
        """The credentials provider of ``configure_curve_callback``: ``key`` is the client's Z85 public key."""
        name = self._keys.get(bytes(key))
        if name is None:
            self._refuse(f"key {fingerprint(key)} is not invited", key)
            return False
        log.debug("admitted client %s (key %s) from %s", name, fingerprint(key), self._address)
        return True

    def _refuse(self, why: str, what) -> None:
        self.refused += 1
        hidden = self._throttle((self._address, bytes(what)))
        if hidden is not None:
            log.warning("refused a connection from %s: %s%s", self._address, why, _also(hidden))


@dataclass
class Conn:
    """One established TCP connection of an admitted client, as the door knows it from its messages."""
    client: str
    fd: int
    peer: tuple | None          # (ip, port) from getpeername when first seen
    since: float = field(default_factory=time.time)


def _peername(fd: int):
    try:
        s = socket.socket(fileno=_dup(fd))
    except OSError:
        return None
    try:
        return s.getpeername()
    except OSError:
        return None
    finally:
        s.close()


def _dup(fd: int) -> int:
    return os.dup(fd)


# TCP states of a connection this side has just closed (include/net/tcp_states.h): FIN_WAIT1, FIN_WAIT2,
# TIME_WAIT, CLOSE, LAST_ACK, CLOSING
_CLOSING_STATES = {"04", "05", "06", "07", "09", "0B"}


def _hex_ip(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    ip = socket.inet_ntop(socket.AF_INET6, words)
    return ip[7:] if ip.startswith("::ffff:") else ip


def closed_peers(port: int) -> set[tuple[str, int]]:
    """(address, port) of the peers of connections on local ``port`` that are closing or just closed (Linux; an
    empty set elsewhere)."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 4 or parts[3] not in _CLOSING_STATES:
                continue
            try:
                local_port = int(parts[1].rsplit(":", 1)[1], 16)
                if local_port != port:
                    continue
                rip, rport = parts[2].rsplit(":", 1)
                out.add((_hex_ip(rip), int(rport, 16)))
            except (ValueError, IndexError, OSError):
                continue
    return out


def _shutdown(fd: int, expected_peer) -> bool:
    """Shut a TCP connection down through a duplicate of its descriptor (libzmq keeps and closes the original), but
    only if it still belongs to ``expected_peer`` (the number may have been reused for another connection)."""
    try:
        s = socket.socket(fileno=_dup(fd))
    except OSError:
        return False
    try:
        if expected_peer is None or s.getpeername() != expected_peer:
            return False
        s.shutdown(socket.SHUT_RDWR)
        return True
    except OSError:
        return False
    finally:
        s.close()


class Door:
    """One ROUTER socket of the daemon. ``network``: the CURVE/ZAP door (with a monitor and connection tracking)."""

    def __init__(self, sock: zmq.Socket, kind: str, endpoint: str, monitor: zmq.Socket | None = None):
        self.sock = sock
        self.kind = kind                 # "local" or "network"
        self.endpoint = endpoint
        self.monitor = monitor
        self.conns: dict[bytes, Conn] = {}        # routing id -> connection (network door; I/O thread only)
        self._throttle = Throttle()
        self._watcher = None

    @property
    def network(self) -> bool:
        return self.kind == "network"

    # -------------------------------------------------------------- connections

    def track(self, identity: bytes, frame, client: str) -> Conn:
        """Remember which client and which TCP connection a routing id belongs to (first message only)."""
        conn = self.conns.get(identity)
        if conn is None or conn.client != client:
            fd = -1
            try:
                fd = frame.get(zmq.SRCFD)
            except (zmq.ZMQError, AttributeError, TypeError):
                pass
            conn = self.conns[identity] = Conn(client, fd, _peername(fd) if fd >= 0 else None)
        return conn

    def address(self, identity: bytes) -> str | None:
        conn = self.conns.get(identity)
        return conn.peer[0] if conn is not None and conn.peer else None

    def connections_of(self, client: str) -> int:
        return sum(1 for c in self.conns.values() if c.client == client)

    def drop(self, identity: bytes) -> bool:
        """Close the TCP connection behind one routing id; True if it was closed now."""
        conn = self.conns.pop(identity, None)
        return conn is not None and conn.fd >= 0 and _shutdown(conn.fd, conn.peer)

    def drop_client(self, client: str) -> int:
        """Close every connection of a client; the number closed."""
        return sum(self.drop(ident) for ident, c in list(self.conns.items()) if c.client == client)

    # -------------------------------------------------------------- monitor

    def start_watching(self) -> None:
        """Read the monitor in a thread of its own (it must read a refused peer's address at once)."""
        if self.monitor is None:
            return
        self._stop = threading.Event()
        self._closed: queue.SimpleQueue = queue.SimpleQueue()
        try:
            self._port = int(self.endpoint.rsplit(":", 1)[1])
        except (ValueError, IndexError):
            self._port = None
        self._known_closed = closed_peers(self._port) if self._port else set()
        self._watcher = threading.Thread(target=self._watch, name="sanetd-door-monitor", daemon=True)
        self._watcher.start()

    def forget_closed(self) -> None:
        """I/O thread: forget the routing ids of connections the monitor saw close."""
        if self.monitor is None:
            return
        fds = set()
        while True:
            try:
                fds.add(self._closed.get_nowait())
            except queue.Empty:
                break
        if fds:
            for ident in [i for i, c in self.conns.items() if c.fd in fds]:
                del self.conns[ident]

    def _watch(self) -> None:
        accepted: dict[int, tuple | None] = {}
        failure = None
        while not self._stop.is_set():
            try:
                if not self.monitor.poll(200):
                    continue
                ev = parse_monitor_message(self.monitor.recv_multipart())
            except zmq.ZMQError:
                return
            except Exception:  # noqa: BLE001  a malformed event is skipped
                continue
            event, value = ev["event"], ev["value"]
            log.debug("monitor: %s %s", zmq.Event(event).name, value)
            if event == zmq.EVENT_ACCEPTED:
                accepted[value] = _peername(value)
                if len(accepted) > 4096:
                    accepted.clear()
            elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                failure = _protocol_failure(value)
            elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                # e.g. a plaintext client that saw our CURVE greeting first and hung up
                failure = ("the ZeroMQ handshake failed before authentication (a plaintext client, one with another "
                           "server key, or one that hung up)")
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                failure = None      # ZAP refused it and said so already
            elif event == zmq.EVENT_DISCONNECTED:
                peer = accepted.pop(value, None)
                self._closed.put(value)
                if failure is not None:
                    self._log_refusal(peer, failure)
                    failure = None

    def _log_refusal(self, peer, failure: str) -> None:
        address = peer[0] if peer else None
        if address is None and self._port:
            time.sleep(0.005)            # libzmq closes the descriptor right after the event
            now = closed_peers(self._port)
            fresh = {ip for ip, _ in now - self._known_closed}
            self._known_closed = now
            if len(fresh) == 1:
                address = fresh.pop()
        address = address or "an address that was gone before it could be read"
        hidden = self._throttle((address, failure))
        if hidden is not None:
            log.warning("refused a connection from %s: %s%s", address, failure, _also(hidden))

    def close(self, linger: int = 0) -> None:
        if self.monitor is not None:
            if getattr(self, "_watcher", None) is not None:
                self._stop.set()
                self._watcher.join(2.0)
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self.monitor.close(linger=0)
        self.sock.close(linger=linger)


def _protocol_failure(code: int) -> str:
    if code == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "not encrypted (a plaintext ZeroMQ client; this endpoint only speaks CURVE)"
    if code == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "the CURVE handshake failed (the client uses another server key: an old or foreign connection file)"
    return f"the ZeroMQ handshake failed (protocol error 0x{code:x})"
