"""sanetd protocol v1: the one definition, shared by the daemon and every client.

A message is a ZeroMQ multipart message ``[signature, header, buffer_0, ..., buffer_n]``:

* ``signature``: 64 ASCII hex digits, HMAC-SHA256 (key from the connection file) over
  ``u64be(len(header)) || header || digest(buffer_0) || ... || digest(buffer_n)``;
* ``header``: a msgpack map with string keys (see docs/protocol.md for every field);
* ``buffer_i``: raw pixels, referenced from the header by index (``"buf": i``), sent zero-copy.

``digest(buffer)`` is SHA-256 over the concatenated SHA-256 digests of consecutive 4 MiB chunks, so
that large layers hash on several cores. Everything here is stdlib + msgpack: it runs inside GIMP's
and Krita's Python.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import math
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import msgpack

PROTOCOL_VERSION = 1
SIGNATURE_SCHEME = "hmac-sha256"
SIGNATURE_LEN = 64
DIGEST_CHUNK = 4 * 1024 * 1024

# ---------------------------------------------------------------- shared constants
# One definition for the engine (sanet imports these), the daemon (it advertises them in hello.reply
# "defaults" and "limits"), the plug-ins and every client: nobody copies these numbers by hand.

LAYER_FORMATS = {"rgba8": 4, "rgba16": 8, "rgbaf32": 16}  # bytes per pixel, little-endian samples
MASK_FORMATS = {"u8": 1, "f32": 4}
# SCSA label maps (optional, protocol v1 additions): integer labels (u8, u16 LE) or colour-coded rgba8 (alpha ignored)
LABEL_FORMATS = {"u8": 1, "u16": 2, "rgba8": 4}
# the "raw" feature: a result that is the engine's unclamped float32 RGB (what `sanet stylize -o x.npy` stores)
RAW_FORMAT = "rgbf32"
RESULT_FORMATS = {**LAYER_FORMATS, RAW_FORMAT: 12}
_BYTES_PER_PIXEL = {**RESULT_FORMATS, **MASK_FORMATS, **LABEL_FORMATS}   # the shared names agree (u8 1, rgba8 4)
# auto: previews in the device's fast precision where that is a CPU with bf16 hardware, full resolution in fp32;
# bf16 on CPUs runs the parts of each model that keep the quality bar (docs/benchmarks.md) in bf16; fp16: GPUs only
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEFAULT_PRECISION = "auto"
# the plug-ins' "Quality" choice: exact → "auto" (previews fast where the CPU can, the result fp32); fast → the
# device's fast precision, hello.reply capabilities "fast_precision" (None: nothing faster than fp32 there)
QUALITIES = ("exact", "fast")


def precision_for_quality(quality: str, fast_precision: str | None) -> str:
    """The request's precision for a Quality choice, given the daemon's hello capabilities["fast_precision"]."""
    if quality == "fast" and fast_precision:
        return fast_precision
    return DEFAULT_PRECISION


def hello_precision_for_quality(hello: dict | None, quality: str) -> str | None:
    """The full-resolution request's precision for a Quality choice, from a daemon's hello.reply; None (send none:
    the daemon's default) for a daemon older than per-request precisions (no capabilities "precisions")."""
    caps = (hello or {}).get("capabilities")
    if not isinstance(caps, dict) or "precisions" not in caps:
        return None
    return precision_for_quality(quality, caps.get("fast_precision"))


DEFAULT_ALPHA = 1.0                  # content–style trade-off: 1 = full style
DEFAULT_STYLE_MAX_SIDE = 1024        # styles are reduced to this long side (SANet was trained on 512-px styles)
STYLE_MAX_SIDE_MIN, STYLE_MAX_SIDE_MAX = 64, 8192   # the range a request's style_max_side may take
PREVIEW_LONG_SIDE = 512              # a preview runs at this long side and is returned at full size
MAX_STYLES = 8                       # styles mixed in one job (Limits.max_styles)
STYLE_WEIGHT_MAX = 1e6               # each style weight lies in [0, STYLE_WEIGHT_MAX]; weights are normalised
DEFAULT_SCSA_WEIGHTS = (0.7, 0.3)    # SCSA t1 (semantic continuous), t2 (semantic sparse) for SANet
SCSA_WEIGHT_MAX = 10.0               # each of scsa_weights [t1, t2] lies in [0, SCSA_WEIGHT_MAX]
MAX_PALETTE = 64                     # label_palette entries

# Models (optional v1 addition, feature "models"): a stylize request's `model` picks the method. Name → the short
# name selectors and result layers show; the engine's sanet.models.MODELS has the same names (tested).
MODELS = {"sanet": "SANet", "adaattn": "AdaAttN"}
DEFAULT_MODEL = "sanet"              # what a request without `model` means (every v1 request before the addition)
# AdaAttN's style keys: "sampled" = the released behaviour (a style level with more positions than 64² at relu3_1 /
# 256² at relu4_1 and relu5_1 attends over a fixed random subset), "all" = full attention (a quality option). SANet
# always attends over every style position: both values mean the same for it.
STYLE_KEYS = ("sampled", "all")
DEFAULT_STYLE_KEYS = "sampled"

# Model variants (section 6b): a model's networks fine-tuned by `sanet train` and installed with `sanet weights
# install RUN_DIR`, chosen as MODEL:NAME (e.g. "sanet:my-style"). The name rule is defined here only (sanet.variants
# reads it): 1–64 lower-case ASCII letters, digits, '-', '_', '.', not starting with '-' or '.'.
VARIANT_SEPARATOR = ":"
VARIANT_NAME_MAX = 64
VARIANT_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."


def variant_name_problem(name) -> str | None:
    """Why `name` cannot be a variant name, or None."""
    if not isinstance(name, str) or not name:
        return "a variant name must not be empty"
    if len(name) > VARIANT_NAME_MAX:
        return f"a variant name has at most {VARIANT_NAME_MAX} characters"
    if name[0] in "-." or any(c not in VARIANT_NAME_CHARS for c in name):
        return "a variant name uses lower-case letters, digits, '-', '_' and '.', and does not start with '-' or '.'"
    return None


def split_model(model: str) -> tuple:
    """'sanet:my-style' → ('sanet', 'my-style'); 'sanet' → ('sanet', None). No check (see model_problem)."""
    base, sep, name = str(model).partition(VARIANT_SEPARATOR)
    return base, (name if sep else None)


def model_problem(model) -> str | None:
    """Why `model` is not a model value (a base model or MODEL:NAME with a valid name), or None. Whether a variant
    is installed is the daemon's business (model_unavailable)."""
    if not isinstance(model, str):
        return "the model must be a string"
    base, name = split_model(model)
    if base not in MODELS:
        return (f"unknown model {model!r}: expected one of {', '.join(MODELS)}, or a variant "
                f"MODEL{VARIANT_SEPARATOR}NAME (e.g. sanet{VARIANT_SEPARATOR}my-style)")
    problem = None if name is None else variant_name_problem(name)
    return f"model {model!r}: {problem}" if problem else None


def model_display(model: str, title: str | None = None) -> str:
    """The short name editors show for a model value: "SANet", or a variant's "SANet · my-style" (its `title`, from
    variant.json, replaces the name when given)."""
    base, name = split_model(model)
    short = MODELS.get(base, base)
    return short if name is None else f"{short} · {title or name}"


FEATURES = ("scsa", "raw", "models", "layer_ref")   # optional request features this side understands (hello "features")
LAYER_REF_PATTERN = re.compile(r"^[0-9a-f]{32}$")   # result.info.layer_ref: the daemon's digest of a layer it keeps

# ---------------------------------------------------------------- compression (networked endpoints only)
# Pixel frames may travel compressed, losslessly, over a networked (tcp, CURVE) endpoint: negotiated in hello
# (the client offers the codecs it can decode, the daemon picks one; never on ipc). A message with compressed
# buffers names them in its header: "compression": {"codec": "zstd"|"zlib", "sizes": [n | nil per buffer]}, n the
# exact uncompressed size of that buffer, nil a buffer sent as is. The signature covers the frames as sent.
COMPRESS_MIN_BYTES = 64 * 1024       # smaller buffers always go as they are
COMPRESS_MAX_RATIO = 0.9             # a buffer that does not shrink below 90 % goes as it is
ZSTD_LEVEL, ZLIB_LEVEL = 1, 1        # fast levels: the point is to beat the network, not to archive
COMPRESS_SAMPLE_BYTES = 1 << 20      # a large buffer is first tried on a 1 MiB sample from its middle


def _zstd_module():
    """zstd codec: the stdlib's compression.zstd (Python 3.14+), else the optional PyPI package zstandard."""
    try:
        from compression import zstd as mod   # type: ignore[import-not-found]
        return "stdlib", mod
    except ImportError:
        pass
    try:
        import zstandard as mod   # type: ignore[import-not-found]
        return "zstandard", mod
    except ImportError:
        return None, None


def available_codecs() -> tuple[str, ...]:
    """The codecs this Python can use, preferred first: zstd when available, zlib always (stdlib)."""
    return ("zstd", "zlib") if _zstd_module()[1] is not None else ("zlib",)


def choose_codec(offered, available=None) -> str | None:
    """The first codec of the peer's ``offered`` list that this side has (None: no compression)."""
    have = available_codecs() if available is None else tuple(available)
    if not isinstance(offered, list):
        return None
    for c in offered:
        if isinstance(c, str) and c in have:
            return c
    return None


def compress(codec: str, data) -> bytes:
    if codec == "zlib":
        import zlib
        return zlib.compress(data, ZLIB_LEVEL)
    if codec == "zstd":
        kind, mod = _zstd_module()
        if kind == "stdlib":
            return mod.compress(data, level=ZSTD_LEVEL)
        if kind == "zstandard":
            return mod.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
    raise ValueError(f"unknown or unavailable codec {codec!r}")


def decompress(codec: str, data, size: int) -> bytes:
    """Exactly ``size`` bytes out of ``data``; ValueError when the frame holds more, less, or garbage (memory is
    bounded by ``size``, which the caller has checked against its limits)."""
    if codec == "zlib":
        import zlib
        d = zlib.decompressobj()
        out = d.decompress(data, size)
        if len(out) != size or d.unconsumed_tail or not d.eof:
            raise ValueError(f"zlib data does not hold exactly {size} bytes")
        return out
    if codec == "zstd":
        kind, mod = _zstd_module()
        if kind == "stdlib":
            d = mod.ZstdDecompressor()
            out = d.decompress(data, max_length=size)
            if len(out) != size or not d.eof or d.unused_data:
                raise ValueError(f"zstd data does not hold exactly {size} bytes")
            return out
        if kind == "zstandard":
            # read at most size + 1 bytes: a frame header claiming more cannot make us allocate it
            out = bytearray()
            with mod.ZstdDecompressor().stream_reader(data, read_across_frames=True) as r:
                while len(out) <= size:
                    chunk = r.read(min(size + 1 - len(out), 1 << 24))
                    if not chunk:
                        break
                    out += chunk
            if len(out) != size:
                raise ValueError(f"zstd data does not hold exactly {size} bytes")
            return bytes(out)
    raise ValueError(f"unknown or unavailable codec {codec!r}")


def _worth_trying(codec: str, view: memoryview) -> bool:
    """A buffer many times the sample size is compressed only if a sample from its middle shrinks enough (noise
    does not; compressing all of it would cost time for nothing)."""
    n = len(view)
    if n < 4 * COMPRESS_SAMPLE_BYTES:
        return True
    start = (n // 2) & ~15
    sample = view[start:start + COMPRESS_SAMPLE_BYTES]
    return len(compress(codec, sample)) <= len(sample) * COMPRESS_MAX_RATIO


def compress_buffers(codec: str | None, buffers) -> tuple[list, dict | None]:
    """(frames to send, the header's "compressed" field or None). Small or incompressible buffers go as they are."""
    buffers = list(buffers)
    if not codec or not buffers:
        return buffers, None
    out, sizes, any_compressed = [], [], False
    for b in buffers:
        view = _as_bytes_view(b)
        n = len(view)
        if n >= COMPRESS_MIN_BYTES and _worth_trying(codec, view):
            packed = compress(codec, view)
            if len(packed) <= n * COMPRESS_MAX_RATIO:
                out.append(packed)
                sizes.append(n)
                any_compressed = True
                continue
        out.append(b)
        sizes.append(None)
    if not any_compressed:
        return buffers, None
    return out, {"codec": codec, "sizes": sizes}


def bytes_per_pixel(fmt: str) -> int:
    """Bytes per pixel of a layer, result, mask or label-map format (KeyError for an unknown one)."""
    return _BYTES_PER_PIXEL[fmt]


def hello_models(hello: dict) -> list[dict]:
    """The models a daemon's hello.reply says it can run: [{"name", "title", "loaded", "base", "display"}], installed
    ones only, variants (MODEL:NAME) after the released models. A daemon older than the "models" feature runs SANet
    alone (its hello has no "models" list); one older than variants lists no `base`/`display` (filled in here)."""
    if isinstance(hello.get("models"), list):
        out = []
        for m in hello["models"]:
            if not isinstance(m, dict) or not isinstance(m.get("name"), str):
                continue
            if VARIANT_SEPARATOR not in m["name"] or not model_problem(m["name"]):   # a newer daemon's models stay
                out.append({**m, "base": m.get("base") or split_model(m["name"])[0],
                            "display": str(m.get("display") or model_display(m["name"]))})
        return out
    legacy = hello.get("model") if isinstance(hello.get("model"), dict) else {}
    return [{"name": DEFAULT_MODEL, "title": str(legacy.get("name") or MODELS[DEFAULT_MODEL]),
             "loaded": bool(legacy.get("loaded")), "base": DEFAULT_MODEL, "display": MODELS[DEFAULT_MODEL]}]


def scsa_pairing_problem(has_content_labels: bool, style_has_labels) -> str | None:
    """The SCSA pairing rule: a layer label map is given if and only if at least one style has one.

    Returns None when the request is consistent, "content_labels_missing" when a style has labels but the layer
    has none, "style_labels_missing" when the layer has labels but no style does (each UI words it its own way)."""
    any_style = any(bool(x) for x in style_has_labels)
    if any_style and not has_content_labels:
        return "content_labels_missing"
    if has_content_labels and not any_style:
        return "style_labels_missing"
    return None

REQUEST_TYPES = ("hello", "status", "ping", "styles.list", "styles.add", "styles.remove", "stylize", "cancel")
EVENT_TYPES = ("hello.reply", "status.reply", "pong", "styles.list.reply", "styles.add.reply",
               "styles.remove.reply", "cancel.reply", "accepted", "progress", "result", "error")

# Error codes carried by an ``error`` event (docs/protocol.md lists when each is sent).
ERROR_CODES = ("bad_request", "too_large", "version_mismatch", "stale_message", "busy", "unknown_style",
               "duplicate_job", "invalid_input", "cancelled", "out_of_memory", "engine_error",
               "shutting_down", "internal", "model_unavailable", "unknown_layer")

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
REPLAY_WINDOW_S = 300.0
MAX_STYLE_NAME = 200


@dataclass(frozen=True)
class Limits:
    """Size limits the daemon enforces and advertises in ``hello``."""

    max_pixels: int = 8192 * 8192
    max_side: int = 32768
    max_styles: int = MAX_STYLES
    max_header_bytes: int = 64 * 1024
    max_reply_header_bytes: int = 64 * 1024 * 1024  # styles.list carries thumbnails

    @property
    def max_frames(self) -> int:
        # signature + header + layer + selection + content labels + (pixels + region + labels) per style
        return 2 + 3 + 3 * self.max_styles

    @property
    def max_frame_bytes(self) -> int:
        # the largest legal buffer (an rgbaf32 layer at max_pixels) plus 1 MiB slack
        return self.max_pixels * LAYER_FORMATS["rgbaf32"] + (1 << 20)

    def as_dict(self) -> dict:
        """What hello.reply "limits" carries (the daemon adds max_queue and lease_s)."""
        return {"max_pixels": self.max_pixels, "max_side": self.max_side, "max_styles": self.max_styles,
                "max_header_bytes": self.max_header_bytes, "max_frames": self.max_frames,
                "max_frame_bytes": self.max_frame_bytes, "style_max_side": [STYLE_MAX_SIDE_MIN, STYLE_MAX_SIDE_MAX],
                "style_weight_max": STYLE_WEIGHT_MAX, "scsa_weight_max": SCSA_WEIGHT_MAX, "max_palette": MAX_PALETTE}


def defaults_dict(precision: str = DEFAULT_PRECISION) -> dict:
    """What hello.reply "defaults" carries: the value each optional stylize field takes when it is left out."""
    return {"alpha": DEFAULT_ALPHA, "style_max_side": DEFAULT_STYLE_MAX_SIDE, "preview_long_side": PREVIEW_LONG_SIDE,
            "scsa_weights": list(DEFAULT_SCSA_WEIGHTS), "precision": precision, "weight": 1.0,
            "model": DEFAULT_MODEL, "style_keys": DEFAULT_STYLE_KEYS}


class ProtocolError(Exception):
    """A signed message that is not a valid request/event. Answered with an ``error`` event."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        self.header: dict | None = None


class AuthError(Exception):
    """An unsigned, badly signed, replayed or structurally unreadable message: dropped and logged."""


# ---------------------------------------------------------------- signing

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _hash_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2)),
                                       thread_name_prefix="sanet-digest")
        return _pool


def _as_bytes_view(buf) -> memoryview:
    view = memoryview(buf)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _chunk_sha(view: memoryview) -> bytes:
    return hashlib.sha256(view).digest()


def frame_digest(buf) -> bytes:
    """SHA-256 over the SHA-256 digests of the buffer's 4 MiB chunks (no chunk for an empty buffer)."""
    view = _as_bytes_view(buf)
    n = len(view)
    chunks = [view[i:i + DIGEST_CHUNK] for i in range(0, n, DIGEST_CHUNK)]
    if len(chunks) > 2:
        # hashlib releases the GIL on large inputs, so chunks hash on several cores
        digests = list(_hash_pool().map(_chunk_sha, chunks))
    else:
        digests = [_chunk_sha(c) for c in chunks]
    return hashlib.sha256(b"".join(digests)).digest()


def compute_signature(key: bytes, header: bytes, buffers) -> bytes:
    """The 64 hex digit signature frame of a message (see the module docstring)."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(len(header).to_bytes(8, "big"))
    mac.update(header)
    for buf in buffers:
        mac.update(frame_digest(buf))
    return mac.hexdigest().encode("ascii")


def new_key() -> str:
    """A fresh connection key: 32 random bytes, hex encoded (the HMAC key is the decoded bytes)."""
    return os.urandom(32).hex()


def new_id() -> str:
    return uuid.uuid4().hex


class ReplayCache:
    """Remembers signatures seen within the replay window; a repeat is a replay."""

    def __init__(self, window: float = REPLAY_WINDOW_S, max_entries: int = 1 << 16):
        self.window = window
        self.max_entries = max_entries
        self._seen: collections.OrderedDict[bytes, float] = collections.OrderedDict()

    def check_and_add(self, signature: bytes, now: float | None = None) -> bool:
        """True if the signature is new (and now remembered), False for a replay."""
        now = time.monotonic() if now is None else now
        while self._seen:
            sig, expiry = next(iter(self._seen.items()))
            if expiry > now and len(self._seen) < self.max_entries:
                break
            self._seen.popitem(last=False)
        if signature in self._seen:
            return False
        # kept for twice the window: a message is accepted only while its time is within the window
        self._seen[signature] = now + 2 * self.window
        return True


def pack_header(header: dict) -> bytes:
    return msgpack.packb(header, use_bin_type=True)


def unpack_header(raw, max_bytes: int) -> dict:
    """Decode a header with explicit limits; raise ProtocolError naming the problem."""
    if len(raw) > max_bytes:
        raise ProtocolError("too_large", f"header is {len(raw)} bytes; the limit is {max_bytes}", "header")
    try:
        header = msgpack.unpackb(bytes(raw), raw=False, strict_map_key=True, use_list=True,
                                 max_str_len=max_bytes, max_bin_len=max_bytes,
                                 max_array_len=4096, max_map_len=256, max_ext_len=0)
    except Exception as exc:  # every decoder failure is the sender's fault
        raise ProtocolError("bad_request", f"header is not valid msgpack ({type(exc).__name__}: {exc})",
                            "header") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_request", f"header must be a msgpack map, got {type(header).__name__}",
                            "header")
    return header


def build_message(key: bytes, header: dict, buffers=(), codec: str | None = None) -> list:
    """The frames of a signed message, ready for ``send_multipart(..., copy=False)``. ``codec``: compress the
    buffers with it (networked endpoints, after hello negotiated it); the header then names them."""
    buffers, compressed = compress_buffers(codec, buffers)
    if compressed is not None:
        header = dict(header, compressed=compressed)
    raw = pack_header(header)
    return [compute_signature(key, raw, buffers), raw, *buffers]


def decompress_message(header: dict, buffers: list, codecs, max_frame_bytes: int) -> list:
    """Undo the header's "compressed" (if any) on ``buffers``; ProtocolError (field "compressed") when it is
    malformed, names a codec not in ``codecs``, or a buffer does not decompress to exactly its stated size."""
    comp = header.get("compressed")
    if comp is None:
        return buffers
    if not codecs:
        raise ProtocolError("bad_request", "field 'compressed': compressed buffers are only accepted on a "
                            "networked endpoint, after hello", "compressed")
    if not isinstance(comp, dict):
        raise ProtocolError("bad_request", "field 'compressed' must be a map {codec, sizes}", "compressed")
    codec = comp.get("codec")
    if codec not in codecs:
        raise ProtocolError("bad_request", f"field 'compressed.codec' is {codec!r}; this side decodes "
                            f"{', '.join(codecs)}", "compressed.codec")
    sizes = comp.get("sizes")
    if not isinstance(sizes, list) or len(sizes) != len(buffers):
        raise ProtocolError("bad_request", f"field 'compressed.sizes' must list one size (or nil) per buffer "
                            f"({len(buffers)})", "compressed.sizes")
    out = []
    for i, (b, n) in enumerate(zip(buffers, sizes)):
        if n is None:
            out.append(b)
            continue
        name = f"compressed.sizes[{i}]"
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= max_frame_bytes:
            raise ProtocolError("bad_request", f"field '{name}' is {n!r}; expected 0..{max_frame_bytes}", name)
        try:
            out.append(decompress(codec, b, n))
        except Exception as exc:  # noqa: BLE001  every decoder failure is the sender's fault
            raise ProtocolError("bad_request", f"buffer {i} does not decompress ({codec}): {exc}", name) from None
    return out


class Authenticator:
    """Checks signature, replay and framing of incoming messages (both directions)."""

    def __init__(self, key: bytes, max_frames: int, max_header_bytes: int, window: float = REPLAY_WINDOW_S,
                 codecs=(), max_frame_bytes: int = 1 << 62):
        """codecs: the compression codecs accepted in incoming messages (none: compressed buffers are refused);
        max_frame_bytes: the largest size a compressed buffer may state."""
        self.key = key
        self.max_frames = max_frames
        self.max_header_bytes = max_header_bytes
        self.window = window
        self.replay = ReplayCache(window)
        self.codecs = tuple(codecs)
        self.max_frame_bytes = max_frame_bytes

    def open(self, frames) -> tuple[dict, list]:
        """frames (without routing id) -> (header dict, buffers).

        Raises AuthError (drop silently) or ProtocolError (answer; the message was genuine)."""
        if len(frames) < 2:
            raise AuthError(f"{len(frames)} frame(s); a message has at least signature and header")
        if len(frames) > self.max_frames:
            raise AuthError(f"{len(frames)} frames; the limit is {self.max_frames}")
        sig = bytes(_buf(frames[0]))
        raw = _buf(frames[1])
        if len(sig) != SIGNATURE_LEN:
            raise AuthError("unsigned message (signature frame is not 64 hex digits)")
        if len(raw) > self.max_header_bytes:
            raise AuthError(f"header of {len(raw)} bytes; the limit is {self.max_header_bytes}")
        buffers = [_buf(f) for f in frames[2:]]
        expected = compute_signature(self.key, raw, buffers)
        if not hmac.compare_digest(sig, expected):
            raise AuthError("bad signature")
        if not self.replay.check_and_add(sig):
            raise AuthError("replayed message")
        header = unpack_header(raw, self.max_header_bytes)
        sent = header.get("time")
        try:
            if not isinstance(sent, (int, float)) or isinstance(sent, bool) or not math.isfinite(sent):
                raise ProtocolError("bad_request", "field 'time' must be the sender's Unix time in seconds", "time")
            if abs(time.time() - sent) > self.window:
                raise ProtocolError("stale_message", f"message time is more than {self.window:.0f} s away from "
                                    "the receiver's clock (replay window)", "time")
            buffers = decompress_message(header, buffers, self.codecs, self.max_frame_bytes)
        except ProtocolError as exc:
            exc.header = header  # lets the daemon answer with reply_to
            raise
        return header, buffers


def _buf(frame):
    """A bytes-like view of a zmq.Frame or bytes."""
    return getattr(frame, "buffer", frame)


# ---------------------------------------------------------------- field validation

def _where(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _get(h: dict, key: str, path: str, required: bool = True):
    if key not in h or h[key] is None:
        if required:
            raise ProtocolError("bad_request", f"missing field '{_where(path, key)}'", _where(path, key))
        return None
    return h[key]


def get_int(h: dict, key: str, lo: int, hi: int, path: str = "", required: bool = True,
            code: str = "bad_request"):
    v = _get(h, key, path, required)
    if v is None:
        return None
    name = _where(path, key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError("bad_request", f"field '{name}' must be an integer, got {type(v).__name__}", name)
    if v < lo:   # e.g. a size of 0 or less: malformed, never "too large"
        raise ProtocolError("bad_request", f"field '{name}' is {v}; expected {lo}..{hi}", name)
    if v > hi:
        raise ProtocolError(code, f"field '{name}' is {v}; expected {lo}..{hi}", name)
    return v


def get_float(h: dict, key: str, lo: float, hi: float, path: str = "", required: bool = True):
    v = _get(h, key, path, required)
    if v is None:
        return None
    name = _where(path, key)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise ProtocolError("bad_request", f"field '{name}' must be a number, got {type(v).__name__}", name)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ProtocolError("bad_request", f"field '{name}' is {v}; expected a number in [{lo}, {hi}]", name)
    return float(v)


def get_bool(h: dict, key: str, path: str = "", default: bool = False) -> bool:
    v = _get(h, key, path, required=False)
    if v is None:
        return default
    if not isinstance(v, bool):
        name = _where(path, key)
        raise ProtocolError("bad_request", f"field '{name}' must be true or false, got {type(v).__name__}", name)
    return v


def get_str(h: dict, key: str, path: str = "", required: bool = True, max_len: int = 64,
            pattern: re.Pattern | None = None, choices=None):
    v = _get(h, key, path, required)
    if v is None:
        return None
    name = _where(path, key)
    if not isinstance(v, str):
        raise ProtocolError("bad_request", f"field '{name}' must be a string, got {type(v).__name__}", name)
    if choices is not None and v not in choices:
        raise ProtocolError("bad_request", f"field '{name}' is {v!r}; expected one of {', '.join(choices)}", name)
    if len(v) > max_len:
        raise ProtocolError("bad_request", f"field '{name}' is {len(v)} characters; the limit is {max_len}", name)
    if pattern is not None and not pattern.match(v):
        raise ProtocolError("bad_request", f"field '{name}' must match {pattern.pattern}", name)
    return v


def get_map(h: dict, key: str, path: str = "", required: bool = True):
    v = _get(h, key, path, required)
    if v is None:
        return None
    if not isinstance(v, dict):
        name = _where(path, key)
        raise ProtocolError("bad_request", f"field '{name}' must be a map, got {type(v).__name__}", name)
    return v


@dataclass
class PixelRef:
    """A validated image or mask in a message: geometry, format and the buffer that holds it."""

    width: int
    height: int
    format: str
    buf: int
    x: int = 0
    y: int = 0
    ref: str | None = None   # a stylize layer named by result.info.layer_ref instead of a buffer (buf is then -1)

    @property
    def nbytes(self) -> int:
        return self.width * self.height * _BYTES_PER_PIXEL[self.format]


class _Buffers:
    """Tracks that each buffer is referenced exactly once and has the size its header promises."""

    def __init__(self, buffers: list):
        self.sizes = [len(b) for b in buffers]
        self.used: set[int] = set()

    def claim(self, ref: PixelRef, path: str) -> PixelRef:
        name = _where(path, "buf")
        if ref.buf >= len(self.sizes):
            raise ProtocolError("bad_request", f"field '{name}' is {ref.buf} but the message has only "
                                f"{len(self.sizes)} buffer(s)", name)
        if ref.buf in self.used:
            raise ProtocolError("bad_request", f"field '{name}': buffer {ref.buf} is used twice", name)
        self.used.add(ref.buf)
        if self.sizes[ref.buf] != ref.nbytes:
            raise ProtocolError("bad_request", f"buffer {ref.buf} ('{path}') is {self.sizes[ref.buf]} bytes; "
                                f"{ref.width}x{ref.height} {ref.format} needs {ref.nbytes}", path)
        return ref

    def all_used(self):
        unused = sorted(set(range(len(self.sizes))) - self.used)
        if unused:
            name = f"buffers[{unused[0]}]"   # the first buffer (frame index - 2) that no "buf" field names
            raise ProtocolError("bad_request", f"buffer(s) {unused} are not referenced by any 'buf' field of the "
                                f"header", name)


def get_pixels(h: dict, key: str, formats: dict, limits: Limits, bufs: _Buffers, path: str = "",
               required: bool = True, offset: bool = False, size: tuple[int, int] | None = None,
               size_of: str = "", by_ref: bool = False) -> PixelRef | None:
    """A pixel object; ``size`` (width, height): the size it must have, that of ``size_of`` (checked before the
    buffer, so a wrong size is reported as such). ``by_ref``: it may name a kept layer (``ref``) instead of a
    buffer (feature "layer_ref")."""
    m = get_map(h, key, path, required)
    if m is None:
        return None
    p = _where(path, key)
    w = get_int(m, "width", 1, limits.max_side, p, code="too_large")
    ht = get_int(m, "height", 1, limits.max_side, p, code="too_large")
    if w * ht > limits.max_pixels:
        raise ProtocolError("too_large", f"'{p}' is {w}x{ht} = {w * ht} pixels; the limit is "
                            f"{limits.max_pixels}", p)
    if size is not None and (w, ht) != tuple(size):
        raise ProtocolError("bad_request", f"field '{p}' is {w}x{ht}; it must have the size of {size_of}, "
                            f"{size[0]}x{size[1]}", p)
    fmt = get_str(m, "format", p, choices=tuple(formats))
    if by_ref and m.get("ref") is not None:
        if m.get("buf") is not None:
            raise ProtocolError("bad_request", f"'{p}' has both 'ref' and 'buf'; give one", p)
        return PixelRef(w, ht, fmt, -1, ref=get_str(m, "ref", p, pattern=LAYER_REF_PATTERN))
    ref = PixelRef(w, ht, fmt, get_int(m, "buf", 0, limits.max_frames, p))
    if offset:
        ref.x = get_int(m, "x", -limits.max_side, limits.max_side, p, required=False) or 0
        ref.y = get_int(m, "y", -limits.max_side, limits.max_side, p, required=False) or 0
    return bufs.claim(ref, p)


def get_labels(h: dict, key: str, limits: Limits, bufs: _Buffers, path: str, size: tuple[int, int] | None,
               what: str) -> PixelRef | None:
    """An optional SCSA label map; ``size`` (width, height) it must have, when known here."""
    return get_pixels(h, key, LABEL_FORMATS, limits, bufs, path, required=False, size=size, size_of=what)


def get_palette(h: dict, key: str = "label_palette") -> list | None:
    """Optional array of 1..MAX_PALETTE [r, g, b] integer colours 0..255 (for rgba8 label maps)."""
    pal = _get(h, key, "", required=False)
    if pal is None:
        return None
    if not isinstance(pal, list) or not pal:
        raise ProtocolError("bad_request", f"field '{key}' must be a non-empty array of [r, g, b] colours", key)
    if len(pal) > MAX_PALETTE:
        raise ProtocolError("bad_request", f"field '{key}' has {len(pal)} colours; the limit is {MAX_PALETTE}", key)
    out = []
    for i, c in enumerate(pal):
        name = f"{key}[{i}]"
        if (not isinstance(c, list) or len(c) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in c)):
            raise ProtocolError("bad_request", f"field '{name}' is {c!r}; expected [r, g, b] with integers 0..255",
                                name)
        out.append([int(v) for v in c])
    return out


def get_scsa_weights(h: dict, key: str = "scsa_weights") -> tuple[float, float] | None:
    """Optional [t1, t2]: weights of semantic continuous / sparse attention, each in [0, SCSA_WEIGHT_MAX]."""
    w = _get(h, key, "", required=False)
    if w is None:
        return None
    if not isinstance(w, list) or len(w) != 2:
        raise ProtocolError("bad_request", f"field '{key}' must be an array of two numbers [t1, t2]", key)
    out = []
    for i, v in enumerate(w):
        name = f"{key}[{i}]"
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not (
                math.isfinite(v) and 0.0 <= v <= SCSA_WEIGHT_MAX):
            raise ProtocolError("bad_request", f"field '{name}' is {v!r}; expected a number in "
                                f"[0.0, {SCSA_WEIGHT_MAX}]", name)
        out.append(float(v))
    return out[0], out[1]


def check_envelope(header: dict, kinds) -> str:
    """The fields every message has; returns its type. A version mismatch is its own error code."""
    v = header.get("v")
    if v != PROTOCOL_VERSION:
        raise ProtocolError("version_mismatch", f"protocol version {v!r} is not supported; this side speaks "
                            f"version {PROTOCOL_VERSION}", "v")
    kind = get_str(header, "type", max_len=32, choices=kinds)
    get_str(header, "msg_id", pattern=ID_PATTERN)
    return kind


def validate_request(header: dict, buffers: list, limits: Limits) -> dict:
    """Check a request field by field; return a normalized dict (pixel refs as PixelRef).

    Unknown keys are ignored (forward compatibility); every error names the field and the limit."""
    kind = check_envelope(header, REQUEST_TYPES)
    req = {"type": kind, "msg_id": header["msg_id"],
           "session": get_str(header, "session", pattern=ID_PATTERN)}
    bufs = _Buffers(buffers)
    if kind == "stylize":
        req["job_id"] = get_str(header, "job_id", pattern=ID_PATTERN)
        req["layer"] = get_pixels(header, "layer", LAYER_FORMATS, limits, bufs, by_ref=True)
        req["selection"] = get_pixels(header, "selection", MASK_FORMATS, limits, bufs, required=False,
                                      offset=True)
        styles = _get(header, "styles", "")
        if not isinstance(styles, list) or not styles:
            raise ProtocolError("bad_request", "field 'styles' must be a non-empty array", "styles")
        if len(styles) > limits.max_styles:
            raise ProtocolError("too_large", f"field 'styles' has {len(styles)} entries; the limit is "
                                f"{limits.max_styles}", "styles")
        req["styles"] = []
        for i, s in enumerate(styles):
            p = f"styles[{i}]"
            if not isinstance(s, dict):
                raise ProtocolError("bad_request", f"field '{p}' must be a map", p)
            style = {"weight": get_float(s, "weight", 0.0, STYLE_WEIGHT_MAX, p, required=False)}
            if style["weight"] is None:
                style["weight"] = 1.0
            if "id" in s and s["id"] is not None:
                style["id"] = get_str(s, "id", p, pattern=ID_PATTERN)
                if "pixels" in s and s["pixels"] is not None:
                    raise ProtocolError("bad_request", f"'{p}' has both 'id' and 'pixels'; give one", p)
            else:
                style["pixels"] = get_pixels(s, "pixels", LAYER_FORMATS, limits, bufs, p)
            style["region"] = get_pixels(s, "region", MASK_FORMATS, limits, bufs, p, required=False, offset=True)
            # a library style's size is known only to the daemon: it checks those labels itself
            px = style.get("pixels")
            style["labels"] = get_labels(s, "labels", limits, bufs, p, None if px is None else (px.width, px.height),
                                         f"{p}.pixels")
            req["styles"].append(style)
        req["alpha"] = get_float(header, "alpha", 0.0, 1.0, required=False)
        if req["alpha"] is None:
            req["alpha"] = DEFAULT_ALPHA
        req["preserve_color"] = get_bool(header, "preserve_color")
        req["preview"] = get_bool(header, "preview")
        req["style_max_side"] = get_int(header, "style_max_side", STYLE_MAX_SIDE_MIN, STYLE_MAX_SIDE_MAX,
                                        required=False)
        req["precision"] = get_str(header, "precision", required=False, choices=PRECISIONS)
        req["raw"] = get_bool(header, "raw")
        _semantic_fields(header, req, limits, bufs)
        # feature "models": the method, and AdaAttN's style keys (absent: SANet, the released subsampling)
        req["model"] = get_str(header, "model", required=False,
                               max_len=max(map(len, MODELS)) + 1 + VARIANT_NAME_MAX) or DEFAULT_MODEL
        if model_problem(req["model"]):    # a base model or MODEL:NAME (a variant; installed or not: the daemon's)
            raise ProtocolError("bad_request", f"field 'model': {model_problem(req['model'])}", "model")
        req["style_keys"] = get_str(header, "style_keys", required=False, choices=STYLE_KEYS) or DEFAULT_STYLE_KEYS
    elif kind == "hello":
        offers = _get(header, "compression", "", required=False)
        if offers is not None and (not isinstance(offers, list) or len(offers) > 8
                                   or not all(isinstance(c, str) and 0 < len(c) <= 16 for c in offers)):
            raise ProtocolError("bad_request", "field 'compression' must be a list of up to 8 codec names "
                                "(e.g. [\"zstd\", \"zlib\"])", "compression")
        req["compression"] = offers or []
    elif kind == "cancel":
        req["job_id"] = get_str(header, "job_id", pattern=ID_PATTERN)
    elif kind == "styles.add":
        req["name"] = get_str(header, "name", max_len=MAX_STYLE_NAME)
        if not req["name"].strip():
            raise ProtocolError("bad_request", "field 'name' must not be blank", "name")
        req["pixels"] = get_pixels(header, "pixels", LAYER_FORMATS, limits, bufs)
    elif kind == "styles.remove":
        req["style_id"] = get_str(header, "style_id", pattern=ID_PATTERN)
    bufs.all_used()
    return req


def _semantic_fields(header: dict, req: dict, limits: Limits, bufs: _Buffers) -> None:
    """SCSA (optional v1 additions): content_labels, label_palette, scsa_weights, and the pairing with
    styles[i].labels. Palette and weights without any label map are accepted and have no effect."""
    layer = req["layer"]
    req["content_labels"] = get_labels(header, "content_labels", limits, bufs, "", (layer.width, layer.height),
                                       "the layer")
    req["label_palette"] = get_palette(header)
    req["scsa_weights"] = get_scsa_weights(header)
    labelled = [i for i, s in enumerate(req["styles"]) if s["labels"] is not None]
    problem = scsa_pairing_problem(req["content_labels"] is not None, [s["labels"] is not None for s in req["styles"]])
    if problem == "content_labels_missing":
        raise ProtocolError("bad_request", f"missing field 'content_labels': styles[{labelled[0]}] has 'labels', "
                            f"so the layer needs a label map too", "content_labels")
    if problem == "style_labels_missing":
        raise ProtocolError("bad_request", "field 'content_labels' needs at least one style with 'labels' "
                            "(styles[i].labels)", "content_labels")


def validate_event(header: dict, buffers: list, limits: Limits) -> dict:
    """Client side: check the fields a client relies on. Returns the header (result pixels as PixelRef)."""
    kind = check_envelope(header, EVENT_TYPES)
    get_str(header, "reply_to", required=False, pattern=ID_PATTERN)
    bufs = _Buffers(buffers)
    if kind in ("accepted", "progress", "result"):
        get_str(header, "job_id", pattern=ID_PATTERN)
    if kind == "accepted":
        get_int(header, "position", 0, 1 << 31)
        get_bool(header, "reattached")
    elif kind == "progress":
        get_float(header, "fraction", 0.0, 1.0)
        get_str(header, "stage", max_len=64)
    elif kind == "result":
        header["layer"] = get_pixels(header, "layer", RESULT_FORMATS, limits, bufs)
        get_map(header, "info", required=False)
    elif kind == "error":
        get_str(header, "code", max_len=32)
        get_str(header, "message", max_len=4096)
        get_str(header, "job_id", required=False, pattern=ID_PATTERN)
    bufs.all_used()
    return header


def envelope(kind: str, **fields) -> dict:
    """A header with the common fields filled in. Every ``error`` carries ``protocols`` (the versions this side
    speaks), whoever builds it — the I/O thread for a bad request or the worker for a failed job."""
    h = {"v": PROTOCOL_VERSION, "type": kind, "msg_id": new_id(), "time": time.time()}
    if kind == "error":
        h["protocols"] = [PROTOCOL_VERSION]
    h.update({k: v for k, v in fields.items() if v is not None})
    return h


def layer_ref_field(width: int, height: int, fmt: str, ref: str) -> dict:
    """A stylize ``layer`` that names a layer the daemon kept (result.info.layer_ref) instead of sending it."""
    return {"width": width, "height": height, "format": fmt, "ref": ref}


def pixels_field(width: int, height: int, fmt: str, buf: int, x: int | None = None, y: int | None = None) -> dict:
    d = {"width": width, "height": height, "format": fmt, "buf": buf}
    if x is not None:
        d["x"], d["y"] = x, y
    return d
