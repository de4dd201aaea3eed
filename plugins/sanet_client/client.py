"""A blocking client for sanetd: DEALER socket, signed messages, heartbeats, Lazy Pirate retries.

Not thread-safe: use one Client per thread. Another thread cancels a running ``stylize`` through the
``cancel_event`` it was given.

A daemon that dies is noticed at once, not after the timeout: a ZeroMQ socket monitor reports the dropped
connection, and every heartbeat asks ``kill(pid, 0)`` about the pid in the connection file (see
ConnectionInfo.process_state). Then the connection file is read again: a restarted daemon gets the job
resubmitted; otherwise DaemonNotRunning says the daemon stopped.

Layers sent again are not resent (feature "layer_ref", on by default): the client remembers, per daemon, the
``result.info.layer_ref`` of the layers it sent (by a digest of their bytes, in this process, across Client
instances) and names an unchanged layer by it; a daemon that no longer keeps it answers ``unknown_layer`` and the
pixels go out after all. The daemon reuses the layer's encoded features either way (it keys them by the layer's
digest); the ref saves sending and hashing the pixels again.

A networked connection file (``sanetd invite``) connects over tcp with CURVE, using the client key pair and the
server key it holds. There the daemon's process cannot be looked at: a dropped connection is answered by
reconnecting at once and resubmitting (the same job id re-attaches, or runs on a restarted daemon), and if the
server does not answer within the timeout DaemonNotRunning says the connection was lost. A server that refuses
the handshake (a revoked or unknown client, another server key) raises NotAdmitted at once. Pixel buffers are
compressed (zstd, else zlib) when the daemon agrees in hello.
"""
from __future__ import annotations

import collections
import hashlib
import logging
import threading
import time

import zmq

from . import protocol as P
from .connect import START_HINT, read_connection_file
from .errors import Busy, DaemonNotRunning, JobCancelled, JobFailed, NotAdmitted, ProtocolMismatch, SanetClientError
from .payloads import Labels, Layer, Mask, Result, StylePixels, StyleRef

log = logging.getLogger("sanet_client")

# events may be large (a result layer, a style list with thumbnails) but never have many frames
_MAX_EVENT_FRAMES = 8


_MAX_RECONNECTS = 20   # connection losses survived by one request (each must come back within the timeout)


class _DaemonGone(Exception):
    """Internal: the daemon process of the current connection has exited (socket monitor + kill(pid, 0))."""


class _UnknownLayer(Exception):
    """Internal: the daemon no longer keeps the layer a request named by its ref."""


class _LayerRefs:
    """Per daemon (its connection key), the layer_ref of each layer sent to it, by a digest of the layer's bytes:
    process-wide, so a plug-in that makes a Client per preview still names an unchanged layer instead of resending
    it. A few entries per daemon, least recently used out first."""

    PER_DAEMON = 32

    def __init__(self):
        self._lock = threading.Lock()
        self._by_daemon: dict[bytes, collections.OrderedDict] = {}

    @staticmethod
    def fingerprint(layer: Layer) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{layer.format}:{layer.width}x{layer.height}:".encode())
        h.update(memoryview(layer.data).cast("B"))
        return h.hexdigest()

    def get(self, daemon: bytes, fingerprint: str) -> str | None:
        with self._lock:
            refs = self._by_daemon.get(daemon)
            if refs is None or fingerprint not in refs:
                return None
            refs.move_to_end(fingerprint)
            return refs[fingerprint]

    def put(self, daemon: bytes, fingerprint: str, ref: str) -> None:
        with self._lock:
            refs = self._by_daemon.setdefault(daemon, collections.OrderedDict())
            refs[fingerprint] = ref
            refs.move_to_end(fingerprint)
            while len(refs) > self.PER_DAEMON:
                refs.popitem(last=False)
            while len(self._by_daemon) > 8:          # daemons restarted long ago
                self._by_daemon.pop(next(iter(self._by_daemon)))

    def forget(self, daemon: bytes, fingerprint: str) -> None:
        with self._lock:
            self._by_daemon.get(daemon, {}).pop(fingerprint, None)


_layer_refs = _LayerRefs()


class _ConnectionLost(Exception):
    """Internal: the tcp connection to a networked daemon dropped (its process cannot be looked at from here)."""


def _raise_for_error(h: dict):
    code, msg = h.get("code", "internal"), h.get("message", "unknown error")
    if code == "busy":
        raise Busy(msg)
    if code in ("cancelled", "shutting_down"):
        raise JobCancelled(msg)
    if code == "version_mismatch":
        raise ProtocolMismatch(msg)
    raise JobFailed(msg, code=code, field=h.get("field"), job_id=h.get("job_id"))


class Client:
    """Talks to one sanetd. ``connection_file=None`` finds it (SANETD_CONNECTION_FILE, runtime dir).

    ``timeout``: seconds without any message from the daemon before a retry (the daemon answers
    heartbeats even while the GPU is busy, so long jobs do not time out). ``retries``: reconnect
    attempts (Lazy Pirate) before DaemonNotRunning is raised. ``compression`` (networked connection files only):
    "auto" offers every codec this Python has (zstd, zlib), a codec name only that one, None none.
    """

    def __init__(self, connection_file=None, timeout: float = 10.0, retries: int = 3, heartbeat: float = 1.0,
                 compression: str | None = "auto"):
        self.connection_file = connection_file
        self.timeout = float(timeout)
        self.retries = max(1, int(retries))
        self.heartbeat = float(heartbeat)
        if compression == "auto":
            self._offer = list(P.available_codecs())
        elif compression is None:
            self._offer = []
        elif compression in P.available_codecs():
            self._offer = [compression]
        else:
            raise ValueError(f"compression={compression!r}: expected 'auto', None or one of "
                             f"{', '.join(P.available_codecs())}")
        self.session = P.new_id()
        self._ctx = zmq.Context()
        self._sock = None
        self._info = None
        self._auth = None
        self._last_endpoint = None
        self._monitor = None
        self._last_info = None
        self._codec = None          # compression agreed in hello (networked endpoints only)
        self._negotiated = False
        self._handshake_failures = 0

    @property
    def remote(self) -> bool:
        """True when connected through a networked connection file (`sanetd invite`)."""
        return self._last_info is not None and self._last_info.remote

    @property
    def compression(self) -> str | None:
        """The codec pixel buffers travel with (None: uncompressed)."""
        return self._codec

    # ------------------------------------------------------------ connection

    def _connect(self):
        self._disconnect()
        info = read_connection_file(self.connection_file)
        if info.process_state() == "gone":
            raise DaemonNotRunning(f"sanetd is not running (its connection file {info.path} is left over from "
                                   f"process {info.pid}, which has exited); {START_HINT}")
        if self._last_info is not None and (info.endpoint, info.key) != (self._last_info.endpoint,
                                                                         self._last_info.key):
            self._codec, self._negotiated = None, False     # another daemon: agree on compression again
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        events = zmq.EVENT_DISCONNECTED
        try:
            if info.remote:   # the key pair of the connection file: the server's allow-list knows its public half
                sock.curve_serverkey = info.curve_server_key
                sock.curve_publickey = info.curve_public_key
                sock.curve_secretkey = info.curve_secret_key
                events |= (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                           | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
                sock.setsockopt(zmq.HEARTBEAT_IVL, int(max(1.0, self.heartbeat) * 1000))
                sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(max(3.0, self.timeout) * 1000))
            elif info.curve_server_key:
                public, secret = zmq.curve_keypair()
                sock.curve_serverkey = info.curve_server_key
                sock.curve_publickey = public
                sock.curve_secretkey = secret
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise DaemonNotRunning(f"the connection file {info.path} holds a key this ZeroMQ cannot use ({exc}); "
                                   f"ask for a new connection file") from None
        try:   # a dropped connection is reported at once (then kill(pid, 0) says whether the daemon is gone)
            self._monitor = sock.get_monitor_socket(events)
        except zmq.ZMQError:
            self._monitor = None
        sock.connect(info.endpoint)
        self._sock, self._info = sock, info
        self._last_endpoint = info.endpoint
        self._last_info = info
        self._auth = P.Authenticator(info.key, max_frames=_MAX_EVENT_FRAMES,
                                     max_header_bytes=P.Limits().max_reply_header_bytes,
                                     codecs=tuple(self._offer) if info.remote else (),
                                     max_frame_bytes=P.Limits().max_frame_bytes)

    def _disconnect(self):
        if self._sock is not None:
            if self._monitor is not None:
                try:
                    self._sock.disable_monitor()
                except zmq.ZMQError:
                    pass
                self._monitor.close(linger=0)
            self._sock.close(linger=0)
        self._sock = self._info = self._auth = self._monitor = None

    def _check_alive(self) -> None:
        """Raise _DaemonGone when the daemon process behind this connection has exited."""
        if self._info is not None and self._info.process_state() == "gone":
            raise _DaemonGone(self._info.pid)

    def _ensure(self):
        if self._sock is None:
            self._connect()

    def close(self):
        self._disconnect()
        self._ctx.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, kind: str, buffers=(), **fields) -> str:
        if kind == "hello" and self._info.remote:
            fields["compression"] = list(self._offer)   # what we can decode, preferred first
        header = P.envelope(kind, session=self.session, **fields)
        codec = self._codec if buffers and self._info.remote else None
        frames = P.build_message(self._info.key, header, buffers, codec=codec)
        try:   # never blocks: a DEALER whose connection was dropped (and refused again) has nowhere to queue
            self._sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            if self._monitor is not None and self._monitor.poll(0):
                self._monitor_event()        # raises NotAdmitted when the server refused us
            raise _ConnectionLost() from None
        return header["msg_id"]

    def _negotiate(self) -> None:
        """Networked endpoints: agree on compression once (hello) before the first pixels go out."""
        if self._negotiated:
            return
        if self._info is None:
            try:
                self._ensure()
            except DaemonNotRunning:
                return      # the request itself will report it
        if self._info is not None and self._info.remote:
            self.hello()
        self._negotiated = True

    def _monitor_event(self) -> bool:
        """Read the socket monitor: True when the connection dropped; NotAdmitted when a networked daemon refused
        the handshake."""
        from zmq.utils.monitor import parse_monitor_message
        lost = False
        while self._monitor.poll(0):
            try:
                ev = parse_monitor_message(self._monitor.recv_multipart())
            except Exception:  # noqa: BLE001
                continue
            event = ev["event"]
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                raise NotAdmitted(f"{self._info.where()} refused this connection file (client "
                                  f"{self._info.client_name!r} is not on its allow-list: revoked, or invited by "
                                  f"another server); ask whoever runs the server for a new connection file")
            if event in (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
                self._handshake_failures += 1
                if self._handshake_failures >= 2:   # twice in a row: not a server that went away mid-handshake
                    raise NotAdmitted(f"the encrypted handshake with {self._info.where()} failed: the server's key "
                                      f"does not match the connection file {self._info.path} (the server was "
                                      f"set up again, or the file is for another server); ask for a new one")
            elif event == zmq.EVENT_DISCONNECTED:
                lost = True
        return lost

    def _recv(self, until: float):
        """The next authentic event before ``until`` (monotonic), or None on timeout. _DaemonGone when the
        socket monitor reported a dropped connection, nothing is left to read and the daemon's process has exited
        (messages the daemon sent before it went, such as a shutting_down error, are still delivered first)."""
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        suspect = False   # the connection dropped: look at the process until a message shows it is back
        while True:
            if suspect and not self._sock.poll(0):
                if self._info.remote:
                    raise _ConnectionLost()   # what it sent before is read first
                self._check_alive()   # an exiting process may linger a moment: asked again every 0.25 s
            left = until - time.monotonic()
            if left <= 0:
                return None
            ready = dict(poller.poll(max(1, int(min(left, 0.25 if suspect else left) * 1000))))
            if not ready:
                if time.monotonic() >= until:
                    return None
                continue
            if self._monitor is not None and self._monitor in ready:
                if self._monitor_event():
                    suspect = True
                continue
            suspect = False
            frames = self._sock.recv_multipart(copy=False)
            try:
                header, buffers = self._auth.open(frames)
                P.validate_event(header, buffers, P.Limits())
            except P.AuthError as exc:
                log.warning("dropped a message from sanetd: %s", exc)
                continue
            except P.ProtocolError as exc:
                if exc.code == "version_mismatch":
                    raise ProtocolMismatch(f"sanetd answered in another protocol version ({exc}); install "
                                           f"matching versions of sanet-style") from None
                log.warning("dropped a malformed message from sanetd: %s", exc)
                continue
            self._handshake_failures = 0    # the handshake worked: earlier failures were a server going away
            return header, buffers

    def _not_answering(self, what: str) -> DaemonNotRunning:
        if self.remote:
            return DaemonNotRunning(f"{self._last_info.where()} did not answer {what} within {self.timeout:g} s "
                                    f"({self.retries} tries): is the server running, and reachable from this computer "
                                    f"(network, firewall, port)? Ask whoever runs it")
        where = self._last_endpoint or "its endpoint"
        return DaemonNotRunning(f"sanetd did not answer {what} at {where} within {self.timeout:g} s "
                                f"({self.retries} tries); is it running? {START_HINT}")

    def _lost(self, what: str) -> DaemonNotRunning:
        return DaemonNotRunning(f"lost the connection to {self._last_info.where()} while {what}, and it did not "
                                f"come back within {self.timeout:g} s: the server stopped, restarted or is "
                                f"unreachable (network, firewall); try again, or ask whoever runs it")

    # ------------------------------------------------------------ simple requests

    def _try_connect(self, attempt: int) -> DaemonNotRunning | None:
        """Connect (re-reading the connection file); on failure back off a little more each attempt and say why."""
        try:
            self._ensure()
            return None
        except DaemonNotRunning as exc:
            time.sleep(min(0.5 * (attempt + 1), self.timeout))
            return exc

    def _request(self, kind: str, buffers=(), **fields) -> dict:
        if buffers:
            self._negotiate()
        last_error = stopped = None
        lost_at = None      # a networked connection dropped: it must come back within the timeout
        attempt = reconnects = 0
        while attempt < self.retries:
            failure = self._try_connect(attempt)
            if failure is not None:
                last_error = failure
                attempt += 1
                continue
            until = time.monotonic() + self.timeout if lost_at is None else lost_at + self.timeout
            try:
                msg_id = self._send(kind, buffers, **fields)
                while True:
                    got = self._recv(until)
                    if got is None:
                        if lost_at is not None:
                            raise self._lost(f"waiting for the answer to {kind}")
                        break
                    h, _ = got
                    if h.get("reply_to") != msg_id:
                        continue  # a late answer to an earlier request
                    if h["type"] == "error":
                        _raise_for_error(h)
                    return h
            except _DaemonGone as gone:
                stopped = self._stopped(f"answering {kind}", gone)
            except _ConnectionLost:
                self._disconnect()     # reconnect at once on a fresh socket and ask again
                reconnects += 1
                if lost_at is None:
                    lost_at = time.monotonic()
                if reconnects <= _MAX_RECONNECTS:
                    time.sleep(0.05 * min(reconnects, 10))
                    continue
            self._disconnect()  # Lazy Pirate: drop the socket, re-read the connection file, resend
            attempt += 1
        if stopped is not None:
            raise stopped
        raise last_error if last_error is not None and self._last_endpoint is None else self._not_answering(kind)

    def _stopped(self, what: str, gone: _DaemonGone) -> DaemonNotRunning:
        return DaemonNotRunning(f"sanetd stopped while {what} (process {gone.args[0]} has exited); {START_HINT}")

    def hello(self) -> dict:
        h = self._request("hello", client=f"sanet_client/{P.PROTOCOL_VERSION}")
        if self._last_info is not None and self._last_info.remote:
            codec = h.get("compression")
            self._codec = codec if codec in self._offer else None    # what this daemon session agreed to
            self._negotiated = True
        return h

    def status(self) -> dict:
        return self._request("status")

    def ping(self) -> dict:
        return self._request("ping")

    def styles_list(self) -> list:
        return self._request("styles.list")["styles"]

    def styles_add(self, name: str, style: StylePixels) -> dict:
        h = self._request("styles.add", [style.data], name=name,
                          pixels=P.pixels_field(style.width, style.height, style.format, 0))
        return h["style"]

    def styles_remove(self, style_id: str) -> None:
        self._request("styles.remove", style_id=style_id)

    def cancel(self, job_id: str) -> str:
        """Cancel a job of this client; returns its state: cancelled, cancelling, finished or unknown."""
        return self._request("cancel", job_id=job_id)["state"]

    # ------------------------------------------------------------ stylize

    def _stylize_message(self, layer: Layer, styles, selection, content_labels=None, layer_ref=None, **controls):
        buffers = [] if layer_ref else [layer.data]

        def add(obj, with_offset=True):
            buffers.append(obj.data)
            if with_offset:
                return P.pixels_field(obj.width, obj.height, obj.format, len(buffers) - 1, obj.x, obj.y)
            return P.pixels_field(obj.width, obj.height, obj.format, len(buffers) - 1)

        if layer_ref:
            fields = {"layer": P.layer_ref_field(layer.width, layer.height, layer.format, layer_ref)}
        else:
            fields = {"layer": P.pixels_field(layer.width, layer.height, layer.format, 0)}
        if selection is not None:
            if not isinstance(selection, Mask):
                raise TypeError("selection must be a sanet_client.Mask")
            fields["selection"] = add(selection)
        entries = []
        for i, s in enumerate(styles):
            if isinstance(s, StyleRef):
                e = {"id": s.style_id, "weight": float(s.weight)}
            elif isinstance(s, StylePixels):
                e = {"pixels": add(s, with_offset=False), "weight": float(s.weight)}
            else:
                raise TypeError(f"styles[{i}] must be a StyleRef or StylePixels, not {type(s).__name__}")
            if s.region is not None:
                e["region"] = add(s.region)
            if getattr(s, "labels", None) is not None:
                if not isinstance(s.labels, Labels):
                    raise TypeError(f"styles[{i}].labels must be a sanet_client.Labels")
                e["labels"] = add(s.labels, with_offset=False)
            entries.append(e)
        if not entries:
            raise ValueError("give at least one style")
        fields["styles"] = entries
        if content_labels is not None:
            if not isinstance(content_labels, Labels):
                raise TypeError("content_labels must be a sanet_client.Labels")
            if (content_labels.width, content_labels.height) != (layer.width, layer.height):
                raise ValueError(f"content label map is {content_labels.width}x{content_labels.height}; it must "
                                 f"have the layer's size, {layer.width}x{layer.height}")
            fields["content_labels"] = add(content_labels, with_offset=False)
        fields.update({k: v for k, v in controls.items() if v is not None})
        return fields, buffers

    def stylize(self, layer: Layer, styles, *, selection: Mask | None = None, alpha: float = 1.0,
                preserve_color: bool = False, preview: bool = False, style_max_side: int | None = None,
                precision: str | None = None, job_id: str | None = None, on_progress=None,
                cancel_event=None, content_labels: Labels | None = None, label_palette=None,
                scsa_weights=None, raw: bool = False, model: str | None = None,
                style_keys: str | None = None, reuse_layer: bool = True) -> Result:
        """Run one job and block until its result. Raises Busy, JobCancelled, JobFailed, DaemonNotRunning.

        model: "sanet" | "adaattn" (protocol.MODELS), or an installed variant "sanet:NAME" / "adaattn:NAME" (a
        fine-tuned model, protocol section 6b; None: the daemon's default, SANet); style_keys: AdaAttN's
        "sampled" | "all" (None: "sampled"). A model whose weights the daemon lacks is JobFailed with code
        "model_unavailable" (field "model"); hello()["models"] lists the installed ones.

        SCSA semantic transfer: content_labels (Labels at the layer size) plus ``labels`` on at least one style;
        label_palette: [(r, g, b), ...] 0..255 for rgba8 maps; scsa_weights: (t1, t2), default (0.7, 0.3).
        raw=True: the result is the engine's unclamped float32 RGB (format "rgbf32", 12 bytes per pixel, no alpha),
        what `sanet stylize -o out.npy` writes. reuse_layer: a layer this process already sent to this daemon is
        named by its ref instead of being sent again (feature "layer_ref"; module doc). ``Result.info["reused"]``
        says what the daemon reused (the layer, its encoded features, each style's transformed features)."""
        job_id = job_id or P.new_id()
        controls = dict(alpha=float(alpha), preserve_color=bool(preserve_color),
                        preview=bool(preview), style_max_side=style_max_side, precision=precision,
                        label_palette=None if label_palette is None else [[int(v) for v in c] for c in label_palette],
                        scsa_weights=None if scsa_weights is None else [float(v) for v in scsa_weights],
                        raw=True if raw else None, model=model, style_keys=style_keys)
        styles = list(styles)
        fields, buffers = self._stylize_message(layer, styles, selection, content_labels, **controls)
        fields["job_id"] = job_id
        # a daemon without a feature would ignore its fields (unknown fields are ignored): ask first. A daemon
        # without "models" runs SANet with the released behaviour, so asking for exactly that needs no feature
        other_model = (model not in (None, P.DEFAULT_MODEL)) or (style_keys not in (None, P.DEFAULT_STYLE_KEYS))
        needed = [f for f, used in (("scsa", content_labels is not None), ("raw", raw), ("models", other_model))
                  if used]
        if needed:
            have = self.hello().get("features") or []
            for feature in needed:
                if feature not in have:
                    what = {"scsa": "SCSA label maps", "raw": "raw float results",
                            "models": "the choice of model (AdaAttN)"}[feature]
                    raise ProtocolMismatch(f"this sanetd does not support {what} (its hello lists no '{feature}' "
                                           f"feature); install matching versions of sanet-style")
        # refs come only from results of this daemon (a daemon that reports layer_ref takes it back): no extra hello
        if reuse_layer and self._info is None:
            try:
                self._ensure()            # to know which daemon this is; failing here is reported below
            except DaemonNotRunning:
                pass
        daemon = self._info.key if self._info is not None else None
        fingerprint = ref = None
        if reuse_layer and daemon is not None:
            fingerprint = _layer_refs.fingerprint(layer)
            ref = _layer_refs.get(daemon, fingerprint)
        if ref is not None:
            by_ref, ref_buffers = self._stylize_message(layer, styles, selection, content_labels, layer_ref=ref,
                                                        **controls)
            by_ref["job_id"] = job_id
            try:
                result = self._stylize(layer, by_ref, ref_buffers, job_id, raw, on_progress, cancel_event)
            except _UnknownLayer:       # evicted by the daemon (or a restarted one): send the pixels after all
                _layer_refs.forget(daemon, fingerprint)
            else:
                return result
        result = self._stylize(layer, fields, buffers, job_id, raw, on_progress, cancel_event)
        kept = result.info.get("layer_ref")
        if fingerprint is not None and isinstance(kept, str) and P.LAYER_REF_PATTERN.match(kept) \
                and self._info is not None:
            _layer_refs.put(self._info.key, fingerprint, kept)
        return result

    def _stylize(self, layer: Layer, fields: dict, buffers: list, job_id: str, raw: bool, on_progress,
                 cancel_event) -> Result:
        """Submit one stylize message (Lazy Pirate: resubmitted with the same job id on silence) until its result."""
        want_format = P.RAW_FORMAT if raw else layer.format
        self._negotiate()
        cancel_sent = False
        last_error = stopped = None
        lost_at = None      # a networked connection dropped: it must come back within the timeout
        attempt = reconnects = 0
        while attempt < self.retries:
            failure = self._try_connect(attempt)
            if failure is not None:
                last_error = failure
                attempt += 1
                continue
            quiet_until = time.monotonic() + self.timeout if lost_at is None else lost_at + self.timeout
            next_ping = time.monotonic() + self.heartbeat
            try:
                # a resubmission with the same job id re-attaches to the job; it never runs twice
                msg_id = self._send("stylize", buffers, **fields)
                while True:
                    if cancel_event is not None and cancel_event.is_set() and not cancel_sent:
                        self._send("cancel", job_id=job_id)
                        cancel_sent = True
                    now = time.monotonic()
                    if now >= next_ping:
                        self._check_alive()   # kill(pid, 0) once per heartbeat
                        self._send("ping")
                        next_ping = now + self.heartbeat
                    got = self._recv(min(quiet_until, next_ping, now + 0.1))
                    if got is None:
                        if time.monotonic() >= quiet_until:
                            if lost_at is not None:
                                raise self._lost(f"job {job_id} was running")
                            break  # the daemon went quiet: reconnect and resubmit
                        continue
                    h, bufs = got
                    lost_at = None      # it answers (again)
                    quiet_until = time.monotonic() + self.timeout
                    kind = h["type"]
                    if kind == "error" and (h.get("job_id") == job_id or h.get("reply_to") == msg_id):
                        if h.get("code") == "unknown_layer" and "ref" in fields["layer"]:
                            raise _UnknownLayer(h.get("message"))
                        _raise_for_error(h)
                    if h.get("job_id") != job_id:
                        continue
                    if kind == "progress" and on_progress is not None:
                        try:
                            on_progress(h["fraction"], h["stage"])
                        except BaseException:
                            try:
                                self._send("cancel", job_id=job_id)
                            except _ConnectionLost:
                                pass
                            raise
                    elif kind == "result":
                        ref = h["layer"]
                        if (ref.width, ref.height, ref.format) != (layer.width, layer.height, want_format):
                            raise SanetClientError(f"sanetd returned a {ref.width}x{ref.height} {ref.format} "
                                                   f"result for a {layer.width}x{layer.height} {want_format} one")
                        return Result(ref.width, ref.height, ref.format, bytes(bufs[ref.buf]), h.get("info") or {})
            except _DaemonGone as gone:
                # the job died with the daemon. Noticed within a heartbeat, not after the timeout; the next
                # attempts re-read the connection file, so a restarted daemon gets the job again
                log.warning("sanetd (process %s) stopped during job %s", gone.args[0], job_id)
                stopped = self._stopped(f"job {job_id} was running", gone)
            except _ConnectionLost:
                # networked: reconnect at once and resubmit; the same job id re-attaches to the running job (or
                # runs on a restarted server). It must answer within the timeout from the loss
                log.warning("lost the connection to %s during job %s; reconnecting", self._last_info.where(), job_id)
                self._disconnect()
                reconnects += 1
                if lost_at is None:
                    lost_at = time.monotonic()
                if reconnects <= _MAX_RECONNECTS:
                    time.sleep(0.05 * min(reconnects, 10))    # a server that refuses at once is not hammered
                    continue
            self._disconnect()
            attempt += 1
        if stopped is not None:
            raise stopped
        if last_error is not None and self._last_endpoint is None:
            raise last_error
        raise self._not_answering(f"job {job_id}")
