"""The I/O thread: one ROUTER socket, authentication, request dispatch, event routing, leases.

All socket I/O happens here. Other threads (worker, library helper) hand finished, signed messages
to the Outbox, which wakes this loop through an inproc socket.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import zmq

import sanet
from sanet_client import protocol as P

from . import __version__, pixels
from .jobs import DONE, Job, JobQueue, JobTable
from .library import StyleLibrary

log = logging.getLogger("sanetd.server")

PERIODIC_S = 0.25
SHUTDOWN_GRACE_S = 7.0     # SIGTERM → exit well within 10 s even if the engine is slow to notice the cancel
PENDING_RETRY_S = 30.0     # how long a terminal event waits for a client whose queue is full


class Outbox:
    """Thread-safe hand-over of signed messages to the I/O thread."""

    def __init__(self, ctx: zmq.Context, key: bytes):
        self.key = key
        self.ctx = ctx
        self.address = f"inproc://sanetd-outbox-{uuid.uuid4().hex}"
        self.pull = ctx.socket(zmq.PULL)
        self.pull.bind(self.address)
        self.items: queue.SimpleQueue = queue.SimpleQueue()
        self._local = threading.local()
        self._sockets = []
        self._lock = threading.Lock()

    def post(self, session: str, header: dict, buffers=(), job: Job | None = None, terminal: bool = False):
        frames = P.build_message(self.key, header, buffers)  # signed on the posting thread
        self.items.put((session, frames, job, terminal))
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
    __slots__ = ("identity", "last_seen")

    def __init__(self, identity: bytes):
        self.identity = identity
        self.last_seen = time.monotonic()


class Server:
    def __init__(self, settings, key: str, limits: P.Limits, ctx: zmq.Context, jobs: JobQueue, worker,
                 library: StyleLibrary, outbox: Outbox):
        self.settings = settings
        self.key = bytes.fromhex(key)
        self.limits = limits
        self.ctx = ctx
        self.queue = jobs
        self.worker = worker
        self.library = library
        self.outbox = outbox
        self.table = JobTable()
        self.sessions: dict[str, Session] = {}
        self.auth = P.Authenticator(self.key, limits.max_frames, limits.max_header_bytes)
        self.pending: list = []  # terminal messages waiting for a client that was not reading
        self.shutting_down = False
        self.started = time.monotonic()
        self.dropped = 0
        self.helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sanetd-library")
        self.router = None

    # ------------------------------------------------------------ socket

    def bind(self, endpoint: str, curve: bool) -> tuple[str, bytes | None]:
        r = self.ctx.socket(zmq.ROUTER)
        r.setsockopt(zmq.ROUTER_MANDATORY, 1)            # unknown peer → error, not a silent drop
        r.setsockopt(zmq.MAXMSGSIZE, self.limits.max_frame_bytes)  # per frame, checked before allocating
        r.setsockopt(zmq.RCVHWM, 64)
        r.setsockopt(zmq.SNDHWM, 1000)
        r.setsockopt(zmq.LINGER, 0)
        public = None
        if curve:
            public, secret = zmq.curve_keypair()
            r.curve_server = True
            r.curve_secretkey = secret
        r.bind(endpoint)
        self.router = r
        return r.getsockopt_string(zmq.LAST_ENDPOINT), public

    def _send(self, identity: bytes, frames: list, terminal: bool = False, expiry: float | None = None) -> None:
        try:
            self.router.send_multipart([identity, *frames], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            if terminal:  # the client is not reading right now; keep its result (for a while), drop progress
                self.pending.append((identity, frames, expiry or time.monotonic() + PENDING_RETRY_S))
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                log.debug("peer %s is gone; event dropped", identity.hex()[:8])
            else:
                log.warning("send to %s failed: %s", identity.hex()[:8], exc)

    def _reply(self, identity: bytes, kind: str, reply_to: str | None, buffers=(), **fields) -> None:
        header = P.envelope(kind, reply_to=reply_to, **fields)
        self._send(identity, P.build_message(self.key, header, buffers), terminal=True)

    def _error(self, identity: bytes, code: str, message: str, reply_to=None, job_id=None, field=None) -> None:
        # P.envelope gives every error its "protocols" list (job errors from the worker too)
        self._reply(identity, "error", reply_to, code=code, message=message, job_id=job_id, field=field)

    # ------------------------------------------------------------ loop

    def serve(self, stop: threading.Event) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.outbox.pull, zmq.POLLIN)
        next_periodic = 0.0
        deadline = None
        while True:
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + SHUTDOWN_GRACE_S
                self._begin_shutdown()
            if deadline is not None and (not self.worker.is_alive() or time.monotonic() > deadline):
                break
            events = dict(poller.poll(100))
            if self.outbox.pull in events:
                self._drain_outbox()
            if self.router in events:
                for _ in range(256):  # bounded so the outbox is served between bursts
                    try:
                        frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._handle(frames)
            now = time.monotonic()
            if now >= next_periodic:
                next_periodic = now + PERIODIC_S
                self._periodic(now)
        self._finish_shutdown()

    def _begin_shutdown(self) -> None:
        log.info("shutting down: no new jobs; cancelling %d waiting and the running job",
                 len(self.queue.waiting()))
        self.shutting_down = True
        for job in self.queue.close():
            job.cancel_code = "shutting_down"
            self._job_terminal(job, P.envelope("error", job_id=job.job_id, code="shutting_down",
                                               message="sanetd is shutting down; the job was not run"))
        running = self.queue.running
        if running is not None:
            running.cancel_code = "shutting_down"
            running.cancel.set()

    def _finish_shutdown(self) -> None:
        self._drain_outbox()
        running = self.queue.running
        if running is not None and running.state != DONE and running.outcome is None and self.worker.is_alive():
            # the engine did not reach a cancellation point within the grace: the job ends here (sanetd exits)
            self._job_terminal(running, P.envelope("error", job_id=running.job_id, code="shutting_down",
                                                   message="sanetd is shutting down; the job was cancelled"))
        end = time.monotonic() + 0.5
        while self.pending and time.monotonic() < end:
            self._retry_pending()
            time.sleep(0.02)
        self.helper.shutdown(wait=False, cancel_futures=True)
        # give libzmq a moment to flush the last events (errors for cancelled jobs) to connected clients
        self.router.close(linger=500)

    def _drain_outbox(self) -> None:
        while True:
            try:
                self.outbox.pull.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
        while True:
            try:
                session, frames, job, terminal = self.outbox.items.get_nowait()
            except queue.Empty:
                break
            if job is not None and terminal:
                self.table.finish(job, frames)
            s = self.sessions.get(session)
            if s is not None:
                self._send(s.identity, frames, terminal)

    def _job_terminal(self, job: Job, header: dict) -> None:
        frames = P.build_message(self.key, header)
        self.table.finish(job, frames)
        s = self.sessions.get(job.session)
        if s is not None:
            self._send(s.identity, frames, terminal=True)

    def _periodic(self, now: float) -> None:
        self._retry_pending()
        lease = self.settings.lease
        active = set()
        for job in self.table.active():
            s = self.sessions.get(job.session)
            active.add(job.session)
            if (s is None or now - s.last_seen > lease) and not job.cancel.is_set():
                log.warning("client session %s silent for more than %g s: cancelling job %s",
                            job.session, lease, job.job_id)
                job.cancel_code = "lease_expired"
                job.cancel.set()
                if self.queue.remove(job):
                    self._job_terminal(job, P.envelope("error", job_id=job.job_id, code="cancelled",
                                                       message="the client stopped answering; job cancelled"))
        forget = max(4 * lease, 60.0)
        for sid in [k for k, s in self.sessions.items() if now - s.last_seen > forget and k not in active]:
            del self.sessions[sid]
        self.table.prune()

    def _retry_pending(self) -> None:
        if not self.pending:
            return
        items, self.pending = self.pending, []
        now = time.monotonic()
        for identity, frames, expiry in items:
            if now < expiry:
                self._send(identity, frames, terminal=True, expiry=expiry)
            else:
                log.warning("peer %s did not read its result for %g s; dropped", identity.hex()[:8], PENDING_RETRY_S)

    # ------------------------------------------------------------ requests

    def _handle(self, frames) -> None:
        identity = frames[0].bytes
        try:
            header, buffers = self.auth.open(frames[1:])
        except P.AuthError as exc:
            self.dropped += 1
            log.warning("dropped a message from peer %s: %s", identity.hex()[:8], exc)
            return
        except P.ProtocolError as exc:  # signed, so a genuine client: tell it
            mid = (exc.header or {}).get("msg_id")
            self._error(identity, exc.code, str(exc), field=exc.field,
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
            log.info("rejected a %r request: %s", header.get("type"), exc)
            self._error(identity, exc.code, str(exc), reply_to=msg_id, job_id=job_id, field=exc.field)
            return
        s = self.sessions.get(req["session"])
        if s is None:
            s = self.sessions[req["session"]] = Session(identity)
        s.identity, s.last_seen = identity, time.monotonic()  # events follow the client's latest socket
        handler = getattr(self, "_on_" + req["type"].replace(".", "_"))
        try:
            handler(identity, req, buffers)
        except Exception as exc:  # noqa: BLE001  a bug answers one request with an error, never kills the loop
            log.exception("handling %s failed", req["type"])
            self._error(identity, "internal", f"internal error in sanetd: {type(exc).__name__}: {exc}",
                        reply_to=req["msg_id"], job_id=req.get("job_id"))

    def _on_ping(self, identity, req, buffers):
        self._reply(identity, "pong", req["msg_id"])

    def _on_hello(self, identity, req, buffers):
        limits = self.limits.as_dict()
        limits.update(max_queue=self.settings.max_queue, lease_s=self.settings.lease)
        self._reply(identity, "hello.reply", req["msg_id"], daemon="sanetd", version=__version__,
                    engine=sanet.__version__, protocol=P.PROTOCOL_VERSION, protocols=[P.PROTOCOL_VERSION],
                    device=self.worker.device_name, precision=self.worker.precision,
                    model={"name": "SANet (Park & Lee, CVPR 2019)", "loaded": self.worker.loaded,
                           "weights": str(self.worker.weights_dir)},
                    capabilities={"formats": list(P.LAYER_FORMATS), "mask_formats": list(P.MASK_FORMATS),
                                  "precisions": list(P.PRECISIONS), "style_library": True, "regions": True,
                                  "preview": True, "cancel": True, "progress": True,
                                  "label_formats": list(P.LABEL_FORMATS)},
                    features=list(P.FEATURES), limits=limits,
                    defaults=P.defaults_dict(self.settings.precision), session=req["session"])

    def _on_status(self, identity, req, buffers):
        mine = [{"job_id": j.job_id, "state": j.state, "position": self.queue.position(j)}
                for j in self.table.active() if j.session == req["session"]]
        self._reply(identity, "status.reply", req["msg_id"], device=self.worker.device_name,
                    model_loaded=self.worker.loaded, queue={"waiting": len(self.queue.waiting()),
                                                            "running": self.queue.running is not None,
                                                            "max": self.settings.max_queue},
                    jobs=mine, sessions=len(self.sessions), jobs_done=self.worker.jobs_done,
                    dropped_messages=self.dropped, uptime_s=round(time.monotonic() - self.started, 3),
                    shutting_down=self.shutting_down)

    def _on_stylize(self, identity, req, buffers):
        job = self.table.get(req["session"], req["job_id"])
        if job is not None:  # a retry of a known job id: re-attach, never run twice
            if job.state != DONE:
                self._reply(identity, "accepted", req["msg_id"], job_id=job.job_id,
                            position=self.queue.position(job), reattached=True)
            elif job.outcome is not None:  # re-signed with a fresh id and time, so it is not a replay
                header = P.unpack_header(P._buf(job.outcome[1]), self.limits.max_reply_header_bytes)
                header.update(msg_id=P.new_id(), time=time.time(), reply_to=req["msg_id"], resent=True)
                self._send(identity, P.build_message(self.key, header, job.outcome[2:]), terminal=True)
            else:
                self._error(identity, "duplicate_job", f"job {job.job_id} already ran and its result is no longer "
                            "held; submit it with a new job id", reply_to=req["msg_id"], job_id=job.job_id,
                            field="job_id")
            return
        if self.shutting_down:
            self._error(identity, "shutting_down", "sanetd is shutting down and takes no new jobs",
                        reply_to=req["msg_id"], job_id=req["job_id"])
            return
        layer = req["layer"]
        if layer.ref is not None and not self._resolve_layer(identity, req, buffers):
            return
        for i, s in enumerate(req["styles"]):
            if "id" in s and not self.library.exists(s["id"]):
                self._error(identity, "unknown_style", f"style {s['id']!r} is not in the style library; "
                            "see styles.list", reply_to=req["msg_id"], job_id=req["job_id"], field=f"styles[{i}].id")
                return
            if "id" in s and s["labels"] is not None and not self._library_labels_fit(identity, req, i):
                return
        job = Job(req["session"], req["job_id"], req, buffers)
        position = self.queue.try_put(job)
        if position is None:
            self._error(identity, "busy", f"sanetd is busy: {len(self.queue.waiting())} jobs are waiting "
                        f"(limit max_queue = {self.settings.max_queue}); try again when one finishes",
                        reply_to=req["msg_id"], job_id=req["job_id"], field="max_queue")
            return
        self.table.add(job)
        self._reply(identity, "accepted", req["msg_id"], job_id=job.job_id, position=position, reattached=False)

    def _resolve_layer(self, identity, req, buffers: list) -> bool:
        """A layer named by `ref` (feature "layer_ref"): its kept buffer joins the job's buffers now, so an eviction
        while the job waits cannot take it away."""
        layer = req["layer"]
        kept = self.worker.layers.get(layer.ref)
        if kept is None:
            self._error(identity, "unknown_layer", f"layer {layer.ref} is no longer kept by sanetd; send its pixels",
                        reply_to=req["msg_id"], job_id=req["job_id"], field="layer.ref")
            return False
        fmt, width, height, data = kept
        if (fmt, width, height) != (layer.format, layer.width, layer.height):
            self._error(identity, "bad_request", f"field 'layer' is {layer.width}x{layer.height} {layer.format} but "
                        f"layer {layer.ref} is {width}x{height} {fmt}", reply_to=req["msg_id"],
                        job_id=req["job_id"], field="layer")
            return False
        buffers.append(data)
        layer.buf = len(buffers) - 1
        return True

    def _library_labels_fit(self, identity, req, i: int) -> bool:
        """A library style's label map must have the stored image's size (the request cannot say it)."""
        s, meta = req["styles"][i], self.library.meta(req["styles"][i]["id"])
        size = None if meta is None else (meta.get("width"), meta.get("height"))
        if size is None or (s["labels"].width, s["labels"].height) == size:
            return True   # an unreadable entry fails later, in the worker, with unknown_style
        field = f"styles[{i}].labels"
        self._error(identity, "bad_request", f"field '{field}' is {s['labels'].width}x{s['labels'].height}; a label "
                    f"map must have the size of library style {s['id']}, {size[0]}x{size[1]}",
                    reply_to=req["msg_id"], job_id=req["job_id"], field=field)
        return False

    def _on_cancel(self, identity, req, buffers):
        job = self.table.get(req["session"], req["job_id"])
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
        self._reply(identity, "cancel.reply", req["msg_id"], job_id=req["job_id"], state=state)

    def _on_styles_list(self, identity, req, buffers):
        self._reply(identity, "styles.list.reply", req["msg_id"], styles=self.library.list())

    def _on_styles_remove(self, identity, req, buffers):
        if not self.library.remove(req["style_id"]):
            self._error(identity, "unknown_style", f"style {req['style_id']!r} is not in the style library",
                        reply_to=req["msg_id"], field="style_id")
            return
        self._reply(identity, "styles.remove.reply", req["msg_id"], style_id=req["style_id"])

    def _on_styles_add(self, identity, req, buffers):
        ref = req["pixels"]
        session, msg_id = req["session"], req["msg_id"]
        data = buffers[ref.buf]

        def work():  # PNG encoding can take a while: off the I/O thread
            try:
                meta = self.library.add(req["name"], pixels.layer_array(ref, data))
                meta = dict(meta, thumbnail=(self.library.root / meta["id"] / "thumb.png").read_bytes())
                self.outbox.post(session, P.envelope("styles.add.reply", reply_to=msg_id, style=meta))
            except Exception as exc:  # noqa: BLE001
                log.exception("styles.add failed")
                self.outbox.post(session, P.envelope("error", reply_to=msg_id, code="internal",
                                                     message=f"could not store the style: {exc}"))
        self.helper.submit(work)
