"""The I/O thread: the daemon's sockets (doors), authentication, request dispatch, event routing, leases, and the
shared server's clients (allow-list, per-client keys, revocation, per-client counts).

All socket I/O happens here (pyzmq's ZAP authenticator answers handshakes in a thread of its own, doors.py). Other
threads (workers, library helper) hand finished, signed messages to the Outbox, which wakes this loop through an
inproc socket.

Who is who: every message comes from a **client** — ``local`` (anyone holding the local connection file's key, on
the local endpoint) or one invited client of the networked endpoint (its CURVE public key, checked by ZAP, names
it; its own HMAC key signs its messages). Sessions, jobs and the fair queue are per client.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import zmq

import sanet
from sanet_client import protocol as P

from . import __version__, models, pixels
from .allowlist import LOCAL_CLIENT, AllowListError, NetworkFolder, fingerprint
from .doors import ZAP_DOMAIN, Door, Gatekeeper, Throttle, _also
from .jobs import DONE, Job, JobQueue, JobTable, QueueFull
from .library import StyleLibrary

log = logging.getLogger("sanetd.server")

PERIODIC_S = 0.25
SHUTDOWN_GRACE_S = 7.0     # SIGTERM → exit well within 10 s even if the engine is slow to notice the cancel
PENDING_RETRY_S = 30.0     # how long a terminal event waits for a client that is not reading (or reconnecting)
SEEN_WRITE_S = 1.0         # clients-seen.json is rewritten at most this often
NET_HEARTBEAT_IVL_MS, NET_HEARTBEAT_TIMEOUT_MS = 5000, 20000   # ZMTP pings: notice a vanished remote peer


class ClientInfo:
    """One client identity: ``local``, or an invited client of the networked endpoint."""

    def __init__(self, name: str, key: bytes, auth: P.Authenticator, remote: bool, public_key: bytes | None = None,
                 max_queued: int | None = None):
        self.name = name
        self.key = key                  # HMAC key: verifies its messages, signs what it receives
        self.auth = auth                # signature, replay cache and (remote) decompression of its messages
        self.remote = remote
        self.public_key = public_key    # Z85 CURVE public key (remote)
        self.max_queued = max_queued    # its own limit on waiting jobs (None: the daemon's max_queued)
        self.revoked = False
        self.done = 0
        self.last_seen: float | None = None     # Unix time of its last valid message
        self.address: str | None = None


class Outbox:
    """Thread-safe hand-over of signed messages to the I/O thread."""

    def __init__(self, ctx: zmq.Context, key: bytes | None = None):
        self.ctx = ctx
        self.address = f"inproc://sanetd-outbox-{uuid.uuid4().hex}"
        self.pull = ctx.socket(zmq.PULL)
        self.pull.bind(self.address)
        self.items: queue.SimpleQueue = queue.SimpleQueue()
        self._local = threading.local()
        self._sockets = []
        self._lock = threading.Lock()

    def post(self, owner: tuple[str, str], header: dict, buffers=(), job: Job | None = None, terminal: bool = False,
             client: ClientInfo | None = None, codec: str | None = None):
        """Sign (and, for a session that negotiated it, compress) on the posting thread, then wake the I/O thread.
        ``owner``: (client name, session id) the message goes to; ``client``: defaults to the job's."""
        client = client or job.client
        if codec is None and job is not None:
            codec = job.codec
        frames = P.build_message(client.key, header, buffers, codec=codec if buffers else None)
        self.items.put((owner, frames, job, terminal))
        push = getattr(self._local, "push", None)
        if push is None:
            push = self.ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            push.connect(self.address)
            self._local.push = push
            with self._lock:
                self._sockets.append(push)
        try:
            push.send(b"", zmq.NOBLOCK)
        except zmq.Again:
            pass  # the I/O thread is already awake with wake-ups queued

    def close(self):
        self.pull.close(linger=0)
        with self._lock:
            for s in self._sockets:
                s.close(linger=0)


class Session:
    __slots__ = ("door", "identity", "client", "last_seen", "codec")

    def __init__(self, door: Door, identity: bytes, client: ClientInfo):
        self.door, self.identity, self.client = door, identity, client
        self.last_seen = time.monotonic()
        self.codec: str | None = None     # negotiated in hello (networked endpoint only)


class Peer:
    """Where a request came from: the door and routing id to answer on, the client, the session's codec."""
    __slots__ = ("door", "identity", "client", "codec")

    def __init__(self, door: Door, identity: bytes, client: ClientInfo, codec: str | None = None):
        self.door, self.identity, self.client, self.codec = door, identity, client, codec


class Server:
    def __init__(self, settings, key: str, limits: P.Limits, ctx: zmq.Context, jobs: JobQueue, workers,
                 library: StyleLibrary, outbox: Outbox):
        self.settings = settings
        self.key = bytes.fromhex(key)
        self.limits = limits
        self.ctx = ctx
        self.queue = jobs
        self.workers = list(workers) if isinstance(workers, (list, tuple)) else [workers]
        self.layers = self.workers[0].layers   # one LayerStore shared by the workers (main.py)
        self.library = library
        self.outbox = outbox
        self.table = JobTable()
        self.sessions: dict[tuple[str, str], Session] = {}
        self.local = ClientInfo(LOCAL_CLIENT, self.key, P.Authenticator(self.key, limits.max_frames,
                                                                        limits.max_header_bytes), remote=False)
        self.remote: dict[str, ClientInfo] = {}          # invited clients by name
        self.by_key: dict[bytes, ClientInfo] = {}        # ... and by CURVE public key (the ZAP User-Id)
        self.pending: list = []  # terminal messages waiting for a client that was not reading
        self.shutting_down = False
        self.started = time.monotonic()
        self.dropped = 0
        self.helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sanetd-library")
        self.doors: list[Door] = []
        self.net: NetworkFolder | None = None
        self.gate: Gatekeeper | None = None
        self._allow_stat = None
        self._allow_digest = ""
        self._seen: dict = {}
        self._seen_dirty = False
        self._seen_written = 0.0
        self._throttle = Throttle()

    @property
    def router(self):
        """The local endpoint's socket (the first door)."""
        return self.doors[0].sock if self.doors else None

    # ------------------------------------------------------------ sockets

    def _router(self) -> zmq.Socket:
        r = self.ctx.socket(zmq.ROUTER)
        r.setsockopt(zmq.ROUTER_MANDATORY, 1)            # unknown peer → error, not a silent drop
        r.setsockopt(zmq.MAXMSGSIZE, self.limits.max_frame_bytes)  # per frame, checked before allocating
        r.setsockopt(zmq.RCVHWM, 64)
        r.setsockopt(zmq.SNDHWM, 1000)
        r.setsockopt(zmq.LINGER, 0)
        return r

    def bind(self, endpoint: str, curve: bool) -> tuple[str, bytes | None]:
        """The local endpoint (ipc; tcp on loopback, optionally CURVE with a throw-away key: --curve)."""
        r = self._router()
        public = None
        if curve:
            public, secret = zmq.curve_keypair()
            r.curve_server = True
            r.curve_secretkey = secret
        r.bind(endpoint)
        bound = r.getsockopt_string(zmq.LAST_ENDPOINT)
        self.doors.insert(0, Door(r, "local", bound))
        return bound, public

    def listen(self, endpoint: str, net: NetworkFolder) -> str:
        """The networked endpoint: CURVE with the daemon's persistent key pair, ZAP admitting the allow-list.
        Raises AllowListError (keys/allow-list unusable) or zmq.ZMQError (cannot bind)."""
        self.net = net
        public, secret = net.server_keys(create=True)
        seen = net.read_seen().get("clients")
        self._seen = {n: dict(e, jobs_done_before=e.get("jobs_done", 0)) for n, e in seen.items()
                      if isinstance(e, dict)} if isinstance(seen, dict) else {}
        self.gate = Gatekeeper(self.ctx)
        self.gate.start()                  # ZAP must be up before the socket accepts anyone
        self._reload_allow_list(force=True)
        r = self._router()
        r.curve_server = True
        r.curve_secretkey = secret
        r.zap_domain = ZAP_DOMAIN.encode()
        try:   # without a ZAP handler libzmq would admit every CURVE client (RFC 26 "Stonehouse"): never
            r.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        except (zmq.ZMQError, AttributeError):
            pass   # older libzmq: messages of keys not on the allow-list are refused below all the same
        r.setsockopt(zmq.HEARTBEAT_IVL, NET_HEARTBEAT_IVL_MS)
        r.setsockopt(zmq.HEARTBEAT_TIMEOUT, NET_HEARTBEAT_TIMEOUT_MS)
        r.setsockopt(zmq.TCP_KEEPALIVE, 1)
        monitor = r.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                       | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        try:
            r.bind(endpoint)
        except zmq.ZMQError:
            r.disable_monitor()
            monitor.close(0)
            r.close(0)
            raise
        bound = r.getsockopt_string(zmq.LAST_ENDPOINT)
        door = Door(r, "network", bound, monitor)
        door.start_watching()
        self.doors.append(door)
        log.info("serving other computers on %s (CURVE, server key %s; %d client(s) invited; keys and allow-list "
                 "in %s)", bound, fingerprint(public), len(self.remote), net.folder)
        return bound

    def _send(self, door: Door, identity: bytes, frames: list, terminal: bool = False, expiry: float | None = None,
              owner: tuple[str, str] | None = None) -> None:
        try:
            door.sock.send_multipart([identity, *frames], flags=zmq.NOBLOCK, copy=False)
            return
        except zmq.Again:
            pass   # the client is not reading right now
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                log.warning("send to %s failed: %s", identity.hex()[:8], exc)
                return
            if owner is None:
                log.debug("peer %s is gone; message dropped", identity.hex()[:8])
                return
            # the session's socket is gone (a reconnect): its result waits for the session's next socket
        if terminal:  # keep results and replies (for a while); progress is dropped
            self.pending.append((owner, door, identity, frames, expiry or time.monotonic() + PENDING_RETRY_S))

    def _send_to(self, owner: tuple[str, str], frames: list, terminal: bool) -> None:
        s = self.sessions.get(owner)
        if s is not None and not s.client.revoked:
            self._send(s.door, s.identity, frames, terminal, owner=owner)

    def _reply(self, peer: Peer, kind: str, reply_to: str | None, buffers=(), **fields) -> None:
        header = P.envelope(kind, reply_to=reply_to, **fields)
        self._send(peer.door, peer.identity, P.build_message(peer.client.key, header, buffers, codec=peer.codec),
                   terminal=True)

    def _error(self, peer: Peer, code: str, message: str, reply_to=None, job_id=None, field=None) -> None:
        # P.envelope gives every error its "protocols" list (job errors from the worker too)
        self._reply(peer, "error", reply_to, code=code, message=message, job_id=job_id, field=field)

    # ------------------------------------------------------------ loop

    def serve(self, stop: threading.Event) -> None:
        poller = zmq.Poller()
        for door in self.doors:
            poller.register(door.sock, zmq.POLLIN)
        poller.register(self.outbox.pull, zmq.POLLIN)
        next_periodic = 0.0
        deadline = None
        while True:
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + SHUTDOWN_GRACE_S
                self._begin_shutdown()
            if deadline is not None and (not any(w.is_alive() for w in self.workers)
                                         or time.monotonic() > deadline):
                break
            events = dict(poller.poll(100))
            if self.outbox.pull in events:
                self._drain_outbox()
            for door in self.doors:
                if door.sock in events:
                    for _ in range(256):  # bounded so the outbox is served between bursts
                        try:
                            frames = door.sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(door, frames)
            now = time.monotonic()
            if now >= next_periodic:
                next_periodic = now + PERIODIC_S
                self._periodic(now)
        self._finish_shutdown()

    def _begin_shutdown(self) -> None:
        running = self.queue.running()
        log.info("shutting down: no new jobs; cancelling %d waiting and %d running job(s)",
                 len(self.queue.waiting()), len(running))
        self.shutting_down = True
        for job in self.queue.close():
            job.cancel_code = "shutting_down"
            self._job_terminal(job, P.envelope("error", job_id=job.job_id, code="shutting_down",
                                               message="sanetd is shutting down; the job was not run"))
        for job in running:
            job.cancel_code = "shutting_down"
            job.cancel.set()

    def _finish_shutdown(self) -> None:
        self._drain_outbox()
        for running in self.queue.running():
            worker = self.workers[running.worker or 0]
            if running.state != DONE and running.outcome is None and worker.is_alive():
                # the engine did not reach a cancellation point within the grace: the job ends here (sanetd exits)
                self._job_terminal(running, P.envelope("error", job_id=running.job_id, code="shutting_down",
                                                       message="sanetd is shutting down; the job was cancelled"))
        end = time.monotonic() + 0.5
        while self.pending and time.monotonic() < end:
            self._retry_pending()
            time.sleep(0.02)
        self.helper.shutdown(wait=False, cancel_futures=True)
        self._write_seen(force=True)
        if self.gate is not None:
            self.gate.stop()
        # give libzmq a moment to flush the last events (errors for cancelled jobs) to connected clients
        for door in self.doors:
            door.close(linger=500)

    def _finished(self, job: Job, frames: list | None) -> None:
        """A job's terminal message exists: remember it and count it for its client."""
        self.table.finish(job, frames)
        job.client.done += 1
        self._seen_dirty = True
        log.info("job %s of %s finished (%s)", job.job_id, job.client_name, self._counts_text())

    def _drain_outbox(self) -> None:
        while True:
            try:
                self.outbox.pull.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
        while True:
            try:
                owner, frames, job, terminal = self.outbox.items.get_nowait()
            except queue.Empty:
                break
            if job is not None and terminal:
                self._finished(job, frames)
            self._send_to(owner, frames, terminal)

    def _job_terminal(self, job: Job, header: dict) -> None:
        frames = P.build_message(job.client.key, header)
        self._finished(job, frames)
        self._send_to(job.owner, frames, terminal=True)

    def _periodic(self, now: float) -> None:
        self._retry_pending()
        for door in self.doors:
            door.forget_closed()
        if self.net is not None:
            self._reload_allow_list()
        lease = self.settings.lease
        active = set()
        for job in self.table.active():
            s = self.sessions.get(job.owner)
            active.add(job.owner)
            if (s is None or now - s.last_seen > lease) and not job.cancel.is_set():
                log.warning("client %s session %s silent for more than %g s: cancelling job %s",
                            job.client_name, job.session, lease, job.job_id)
                job.cancel_code = "lease_expired"
                job.cancel.set()
                if self.queue.remove(job):
                    self._job_terminal(job, P.envelope("error", job_id=job.job_id, code="cancelled",
                                                       message="the client stopped answering; job cancelled"))
        forget = max(4 * lease, 60.0)
        for sid in [k for k, s in self.sessions.items() if now - s.last_seen > forget and k not in active]:
            del self.sessions[sid]
        self.table.prune()
        if self._seen_dirty and now - self._seen_written >= SEEN_WRITE_S:
            self._write_seen()

    def _retry_pending(self) -> None:
        if not self.pending:
            return
        items, self.pending = self.pending, []
        now = time.monotonic()
        for owner, door, identity, frames, expiry in items:
            if now >= expiry:
                log.warning("client %s did not read a message for %g s; dropped",
                            owner[0] if owner else identity.hex()[:8], PENDING_RETRY_S)
                continue
            if owner is not None:
                s = self.sessions.get(owner)
                if s is None or s.client.revoked:
                    continue
                door, identity = s.door, s.identity    # the session may have reconnected meanwhile
            self._send(door, identity, frames, terminal=True, expiry=expiry, owner=owner)

    # ------------------------------------------------------------ the allow-list (networked endpoint)

    def _reload_allow_list(self, force: bool = False) -> None:
        """Apply clients.json when it changed (a stat per call): new clients get in, revoked ones are dropped."""
        try:
            st = os.stat(self.net.clients_file)
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            sig = None
        except OSError as exc:
            log.error("cannot look at the allow-list %s: %s", self.net.clients_file, exc.strerror)
            return
        if sig == self._allow_stat and not force:
            return
        self._allow_stat = sig
        try:
            raw = self.net.read_clients_text()
            invited = self.net.parse_clients(raw)
        except AllowListError as exc:
            log.error("%s; keeping the clients admitted so far", exc)
            return
        for name, c in list(self.remote.items()):
            inv = invited.get(name)
            if inv is None or inv.public_key != c.public_key or bytes.fromhex(inv.key) != c.key:
                self._revoke(c)
            else:
                c.max_queued = inv.max_queued
        for name, inv in invited.items():
            if name not in self.remote:
                key = bytes.fromhex(inv.key)
                c = ClientInfo(name, key, P.Authenticator(key, self.limits.max_frames, self.limits.max_header_bytes,
                                                          codecs=P.available_codecs(),
                                                          max_frame_bytes=self.limits.max_frame_bytes),
                               remote=True, public_key=inv.public_key, max_queued=inv.max_queued)
                self.remote[name] = c
                self.by_key[inv.public_key] = c
                if not force:
                    log.info("client %s invited (key %s)", name, fingerprint(inv.public_key))
        if self.gate is not None:
            self.gate.set_allowed({c.public_key: c.name for c in self.remote.values()})
        self._allow_digest = NetworkFolder.digest(raw)
        self._write_seen(force=True)    # tells `sanetd invite/revoke` the change took effect

    def _revoke(self, client: ClientInfo) -> None:
        """Take a client off: refuse it from now on, cancel its jobs, drop its sessions and connections."""
        client.revoked = True
        self.remote.pop(client.name, None)
        self.by_key.pop(client.public_key, None)
        if self.gate is not None:      # before the connections drop, so that the reconnect is refused
            self.gate.set_allowed({c.public_key: c.name for c in self.remote.values()})
        cancelled = 0
        for job in self.table.active():
            if job.client is client:
                cancelled += 1
                job.cancel_code = "cancelled"
                if not self.queue.remove(job):
                    job.cancel.set()
        for owner in [k for k in self.sessions if k[0] == client.name]:
            del self.sessions[owner]
        self.pending = [p for p in self.pending if not (p[0] and p[0][0] == client.name)]
        self.table.forget_client(client.name)
        dropped = sum(d.drop_client(client.name) for d in self.doors if d.network)
        log.warning("client %s (key %s) revoked: %d connection(s) dropped, %d job(s) cancelled", client.name,
                    fingerprint(client.public_key), dropped, cancelled)

    def _write_seen(self, force: bool = False) -> None:
        if self.net is None or not (force or self._seen_dirty):
            return
        for c in self.remote.values():
            entry = self._seen.setdefault(c.name, {})
            if c.last_seen is not None:
                entry["last_seen"] = c.last_seen
                entry["address"] = c.address
            entry["jobs_done"] = int(entry.get("jobs_done_before") or 0) + c.done
            entry["connections"] = sum(d.connections_of(c.name) for d in self.doors if d.network)
            entry["key"] = fingerprint(c.public_key)
        clients = {n: {k: v for k, v in e.items() if k != "jobs_done_before"} for n, e in self._seen.items()
                   if n in self.remote}
        self.net.write_seen({"pid": os.getpid(), "allow_list": self._allow_digest, "updated": time.time(),
                             "clients": clients})
        self._seen_written = time.monotonic()
        self._seen_dirty = False

    # ------------------------------------------------------------ counts

    def _counts_text(self) -> str:
        counts = self.queue.counts()
        if not counts:
            return "queue empty"
        return "; ".join(f"{n}: {c['queued']} waiting, {c['running']} running" for n, c in sorted(counts.items()))

    def _client_limit(self, client: ClientInfo) -> int | None:
        return client.max_queued if client.max_queued is not None else self.settings.max_queued

    # ------------------------------------------------------------ requests

    def _refuse_unknown_key(self, door: Door, identity: bytes, frame, user: str | None) -> None:
        """A message over the networked door from a key that is not (or no longer) on the allow-list."""
        self.dropped += 1
        fd = -1
        try:
            fd = frame.get(zmq.SRCFD)
        except (zmq.ZMQError, AttributeError, TypeError):
            pass
        conn = door.conns.get(identity)
        if conn is None and fd >= 0:
            from .doors import Conn, _peername
            conn = door.conns[identity] = Conn("?", fd, _peername(fd))
        address = conn.peer[0] if conn is not None and conn.peer else "?"
        door.drop(identity)
        what = f"key {fingerprint(user)}" if user else "a connection without a CURVE key"
        hidden = self._throttle(("unknown", user))
        if hidden is not None:
            log.warning("refused a message from %s at %s: not (or no longer) invited; connection dropped%s",
                        what, address, _also(hidden))

    def _handle(self, door: Door, frames) -> None:
        identity = frames[0].bytes
        if len(frames) < 2:
            self.dropped += 1
            return
        if door.network:
            try:
                user = frames[1].get("User-Id")
            except (zmq.ZMQError, KeyError):
                user = None
            client = self.by_key.get(user.encode("ascii")) if user else None
            if client is None or client.revoked:
                self._refuse_unknown_key(door, identity, frames[1], user)
                return
            conn = door.track(identity, frames[1], client.name)
            if conn.peer:
                client.address = conn.peer[0]
        else:
            client = self.local
        peer = Peer(door, identity, client)
        try:
            header, buffers = client.auth.open(frames[1:])
        except P.AuthError as exc:
            self.dropped += 1
            log.warning("dropped a message from client %s (peer %s): %s", client.name, identity.hex()[:8], exc)
            return
        except P.ProtocolError as exc:  # signed, so a genuine client: tell it
            mid = (exc.header or {}).get("msg_id")
            self._error(peer, exc.code, str(exc), field=exc.field,
                        reply_to=mid if isinstance(mid, str) and P.ID_PATTERN.match(mid) else None)
            return
        msg_id = header.get("msg_id") if isinstance(header.get("msg_id"), str) else None
        try:
            req = P.validate_request(header, buffers, self.limits)
        except P.ProtocolError as exc:
            job_id = header.get("job_id") if isinstance(header.get("job_id"), str) else None
            if job_id is not None and not P.ID_PATTERN.match(job_id):
                job_id = None
            if msg_id is not None and not P.ID_PATTERN.match(msg_id):
                msg_id = None
            log.info("rejected a %r request of client %s: %s", header.get("type"), client.name, exc)
            self._error(peer, exc.code, str(exc), reply_to=msg_id, job_id=job_id, field=exc.field)
            return
        owner = (client.name, req["session"])
        s = self.sessions.get(owner)
        if s is None:
            s = self.sessions[owner] = Session(door, identity, client)
        s.door, s.identity, s.last_seen = door, identity, time.monotonic()  # events follow the latest socket
        if client.remote:
            client.last_seen = time.time()
            self._seen_dirty = True
        peer.codec = s.codec
        handler = getattr(self, "_on_" + req["type"].replace(".", "_"))
        try:
            handler(peer, req, buffers)
        except Exception as exc:  # noqa: BLE001  a bug answers one request with an error, never kills the loop
            log.exception("handling %s failed", req["type"])
            self._error(peer, "internal", f"internal error in sanetd: {type(exc).__name__}: {exc}",
                        reply_to=req["msg_id"], job_id=req.get("job_id"))

    def _on_ping(self, peer, req, buffers):
        self._reply(peer, "pong", req["msg_id"])

    def _device_names(self) -> str:
        return ",".join(w.device_name for w in self.workers)

    def _on_hello(self, peer, req, buffers):
        # compression: only over the networked endpoint, the first codec of the client's list that we have
        codec = P.choose_codec(req["compression"]) if peer.door.network else None
        s = self.sessions.get((peer.client.name, req["session"]))
        if s is not None:
            s.codec = codec
        limits = self.limits.as_dict()
        limits.update(max_queue=self.settings.max_queue, lease_s=self.settings.lease,
                      max_queued=self._client_limit(peer.client))
        w0 = self.workers[0]
        caps = self._capabilities()
        self._reply(peer, "hello.reply", req["msg_id"], daemon="sanetd", version=__version__,
                    engine=sanet.__version__, protocol=P.PROTOCOL_VERSION, protocols=[P.PROTOCOL_VERSION],
                    device=self._device_names(), devices=[w.device_name for w in self.workers],
                    precision=w0.precision,
                    model={"name": sanet.MODELS[P.DEFAULT_MODEL].title,
                           "loaded": any(w.loaded for w in self.workers),
                           "weights": str(w0.weights_dir)},
                    models=models.describe(w0.weights_dir,
                                           sorted({m for w in self.workers for m in w.loaded_models()})),
                    capabilities={"formats": list(P.LAYER_FORMATS), "mask_formats": list(P.MASK_FORMATS),
                                  "precisions": caps["precisions"], "fast_precision": caps["fast_precision"],
                                  "style_library": True, "regions": True,
                                  "preview": True, "cancel": True, "progress": True,
                                  "label_formats": list(P.LABEL_FORMATS)},
                    features=list(P.FEATURES), limits=limits,
                    defaults=P.defaults_dict(self.settings.precision), session=req["session"],
                    client=peer.client.name, transport="network" if peer.door.network else "local",
                    compression=codec)

    def _on_status(self, peer, req, buffers):
        owner = (peer.client.name, req["session"])
        mine = [{"job_id": j.job_id, "state": j.state, "position": self.queue.position(j)}
                for j in self.table.active() if j.owner == owner]
        counts = self.queue.counts()
        names = set(counts) | {peer.client.name} | {c.name for c in self.remote.values() if c.done}
        if self.local.done:
            names.add(LOCAL_CLIENT)
        clients = []
        for name in sorted(names):
            info = self.local if name == LOCAL_CLIENT else self.remote.get(name)
            if info is None:
                continue
            c = counts.get(name, {"queued": 0, "running": 0})
            clients.append({"name": name, "queued": c["queued"], "running": c["running"], "done": info.done,
                            "max_queued": self._client_limit(info), "you": name == peer.client.name})
        running = self.queue.running()
        self._reply(peer, "status.reply", req["msg_id"], device=self._device_names(),
                    model_loaded=any(w.loaded for w in self.workers),
                    queue={"waiting": len(self.queue.waiting()), "running": bool(running),
                           "max": self.settings.max_queue},
                    jobs=mine, sessions=len(self.sessions), jobs_done=sum(w.jobs_done for w in self.workers),
                    dropped_messages=self.dropped, uptime_s=round(time.monotonic() - self.started, 3),
                    shutting_down=self.shutting_down, client=peer.client.name, clients=clients,
                    devices=[w.describe() for w in self.workers], host_memory={"rss": _host_rss()},
                    precision=self.settings.precision, capabilities=self._status_capabilities())

    def _capabilities(self) -> dict:
        """The first worker's capabilities (sanet.devices.capabilities + the compiler's state), with the precisions
        every worker can run (several devices: their common ones; fast_precision only where all agree)."""
        all_caps = [w.capabilities() for w in self.workers]
        caps = dict(all_caps[0])
        caps["precisions"] = [p for p in caps["precisions"] if all(p in c["precisions"] for c in all_caps)]
        if any(c["fast_precision"] != caps["fast_precision"] for c in all_caps):
            caps["fast_precision"] = None
        return caps

    def _status_capabilities(self) -> dict:
        """What this daemon runs on: the CPU (name, ISA, bf16 units, cores), threads, niceness, torch, the
        devices' precisions and fast precision, the compiler's state."""
        caps = self._capabilities()
        caps["nice"] = os.nice(0) if hasattr(os, "nice") else None
        return caps

    def _on_stylize(self, peer, req, buffers):
        client = peer.client
        job = self.table.get(client.name, req["session"], req["job_id"])
        if job is not None:  # a retry of a known job id: re-attach, never run twice
            if job.state != DONE:
                self._reply(peer, "accepted", req["msg_id"], job_id=job.job_id,
                            position=self.queue.position(job), reattached=True)
            elif job.outcome is not None:  # re-signed with a fresh id and time, so it is not a replay
                header = P.unpack_header(P._buf(job.outcome[1]), self.limits.max_reply_header_bytes)
                header.update(msg_id=P.new_id(), time=time.time(), reply_to=req["msg_id"], resent=True)
                self._send(peer.door, peer.identity, P.build_message(client.key, header, job.outcome[2:]),
                           terminal=True)
            else:
                self._error(peer, "duplicate_job", f"job {job.job_id} already ran and its result is no longer "
                            "held; submit it with a new job id", reply_to=req["msg_id"], job_id=job.job_id,
                            field="job_id")
            return
        if self.shutting_down:
            self._error(peer, "shutting_down", "sanetd is shutting down and takes no new jobs",
                        reply_to=req["msg_id"], job_id=req["job_id"])
            return
        layer = req["layer"]
        if layer.ref is not None and not self._resolve_layer(peer, req, buffers):
            return
        for i, s in enumerate(req["styles"]):
            if "id" in s and not self.library.exists(s["id"]):
                self._error(peer, "unknown_style", f"style {s['id']!r} is not in the style library; "
                            "see styles.list", reply_to=req["msg_id"], job_id=req["job_id"], field=f"styles[{i}].id")
                return
            if "id" in s and s["labels"] is not None and not self._library_labels_fit(peer, req, i):
                return
        try:   # feature "models": its files must be in the weights folder (a broken file: the worker names it)
            models.check_installed(self.workers[0].weights_dir, req["model"])
        except models.Unavailable as exc:
            self._reply(peer, "error", req["msg_id"], code="model_unavailable", message=exc.message,
                        field=models.FIELD, job_id=req["job_id"], missing=exc.missing)
            return
        if req.get("precision") and not self._precision_fits(peer, req):
            return
        job = Job(client, req["session"], req["job_id"], req, buffers, codec=peer.codec)
        try:
            position = self.queue.try_put(job, self._client_limit(client))
        except QueueFull as full:
            if full.field == "max_queued":
                message = (f"sanetd is busy: you ({client.name}) already have {full.waiting} jobs waiting (limit "
                           f"max_queued = {full.limit} per client); try again when one of them starts")
            else:
                message = (f"sanetd is busy: {full.waiting} jobs are waiting (limit max_queue = {full.limit}); "
                           f"try again when one finishes")
            log.info("job %s of %s refused: %s (%s)", req["job_id"], client.name, full.field, self._counts_text())
            self._error(peer, "busy", message, reply_to=req["msg_id"], job_id=req["job_id"], field=full.field)
            return
        self.table.add(job)
        self._reply(peer, "accepted", req["msg_id"], job_id=job.job_id, position=position, reattached=False)
        log.info("job %s of %s accepted at position %d (%s)", job.job_id, client.name, position, self._counts_text())

    def _precision_fits(self, peer, req) -> bool:
        """A precision a device cannot run (bf16 on a CPU without bf16 hardware, fp16 on a CPU) is refused at
        once, in one line naming the field, before the job queues."""
        if req["precision"] in self._capabilities()["precisions"]:
            return True
        from sanet.devices import choose_precision, resolve_device
        message = f"precision {req['precision']!r} is not offered by this sanetd's devices"
        for w in self.workers:
            try:
                choose_precision(req["precision"], resolve_device(w.device))
            except sanet.SanetError as exc:
                message = str(exc)
                break
        self._error(peer, "invalid_input", message, reply_to=req["msg_id"], job_id=req["job_id"],
                    field="precision")
        return False
    def _resolve_layer(self, peer, req, buffers: list) -> bool:
        """A layer named by `ref` (feature "layer_ref"): its kept buffer joins the job's buffers now, so an eviction
        while the job waits cannot take it away."""
        layer = req["layer"]
        kept = self.layers.get(layer.ref)
        if kept is None:
            self._error(peer, "unknown_layer", f"layer {layer.ref} is no longer kept by sanetd; send its pixels",
                        reply_to=req["msg_id"], job_id=req["job_id"], field="layer.ref")
            return False
        fmt, width, height, data = kept
        if (fmt, width, height) != (layer.format, layer.width, layer.height):
            self._error(peer, "bad_request", f"field 'layer' is {layer.width}x{layer.height} {layer.format} but "
                        f"layer {layer.ref} is {width}x{height} {fmt}", reply_to=req["msg_id"],
                        job_id=req["job_id"], field="layer")
            return False
        buffers.append(data)
        layer.buf = len(buffers) - 1
        return True

    def _library_labels_fit(self, peer, req, i: int) -> bool:
        """A library style's label map must have the stored image's size (the request cannot say it)."""
        s, meta = req["styles"][i], self.library.meta(req["styles"][i]["id"])
        size = None if meta is None else (meta.get("width"), meta.get("height"))
        if size is None or (s["labels"].width, s["labels"].height) == size:
            return True   # an unreadable entry fails later, in the worker, with unknown_style
        field = f"styles[{i}].labels"
        self._error(peer, "bad_request", f"field '{field}' is {s['labels'].width}x{s['labels'].height}; a label "
                    f"map must have the size of library style {s['id']}, {size[0]}x{size[1]}",
                    reply_to=req["msg_id"], job_id=req["job_id"], field=field)
        return False

    def _on_cancel(self, peer, req, buffers):
        job = self.table.get(peer.client.name, req["session"], req["job_id"])
        if job is None:
            state = "unknown"
        elif job.state == DONE:
            state = "finished"   # the result (or error) went out first: cancel is a no-op
        elif self.queue.remove(job):
            state = "cancelled"
            self._job_terminal(job, P.envelope("error", job_id=job.job_id, code="cancelled",
                                               message=f"job {job.job_id} was cancelled before it started"))
        else:
            job.cancel.set()     # the worker sees it at the next stage/tile
            state = "cancelling" if job.state != DONE else "finished"
        self._reply(peer, "cancel.reply", req["msg_id"], job_id=req["job_id"], state=state)

    def _on_styles_list(self, peer, req, buffers):
        self._reply(peer, "styles.list.reply", req["msg_id"], styles=self.library.list())

    def _on_styles_remove(self, peer, req, buffers):
        if not self.library.remove(req["style_id"]):
            self._error(peer, "unknown_style", f"style {req['style_id']!r} is not in the style library",
                        reply_to=req["msg_id"], field="style_id")
            return
        self._reply(peer, "styles.remove.reply", req["msg_id"], style_id=req["style_id"])

    def _on_styles_add(self, peer, req, buffers):
        ref = req["pixels"]
        owner, msg_id, client = (peer.client.name, req["session"]), req["msg_id"], peer.client
        data = buffers[ref.buf]

        def work():  # PNG encoding can take a while: off the I/O thread
            try:
                meta = self.library.add(req["name"], pixels.layer_array(ref, data))
                meta = dict(meta, thumbnail=(self.library.root / meta["id"] / "thumb.png").read_bytes())
                self.outbox.post(owner, P.envelope("styles.add.reply", reply_to=msg_id, style=meta), client=client)
            except Exception as exc:  # noqa: BLE001
                log.exception("styles.add failed")
                self.outbox.post(owner, P.envelope("error", reply_to=msg_id, code="internal",
                                                   message=f"could not store the style: {exc}"), client=client)
        self.helper.submit(work)


def _host_rss() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
