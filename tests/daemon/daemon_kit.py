"""Helpers for the daemon tests: tiny images, payload conversion, raw protocol access."""
from __future__ import annotations

import numpy as np
import zmq

from sanet_client import Layer, StylePixels
from sanet_client import protocol as P
from sanet_client.discovery import read_connection_file


def rgba(w: int, h: int, seed: int, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    if dtype == np.uint16:
        return rng.integers(0, 65536, (h, w, 4), dtype=np.uint16)
    return rng.random((h, w, 4), dtype=np.float32)


FORMAT = {np.dtype(np.uint8): "rgba8", np.dtype(np.uint16): "rgba16", np.dtype(np.float32): "rgbaf32"}


def wait_until_idle(client, timeout: float) -> bool:
    """Poll the daemon's status until no job runs (or `timeout` s pass); returns whether one still runs."""
    import time
    end = time.monotonic() + timeout
    while client.status()["queue"]["running"] and time.monotonic() < end:
        time.sleep(0.2)
    return client.status()["queue"]["running"]


def layer_of(arr: np.ndarray) -> Layer:
    return Layer(arr.shape[1], arr.shape[0], FORMAT[arr.dtype], arr.tobytes())


def style_of(arr: np.ndarray, weight=1.0, region=None) -> StylePixels:
    return StylePixels(arr.shape[1], arr.shape[0], FORMAT[arr.dtype], arr.tobytes(), weight, region)


def array_of(result, dtype) -> np.ndarray:
    return np.frombuffer(result.data, dtype=dtype).reshape(result.height, result.width, 4)


class RawPeer:
    """A DEALER speaking the wire protocol directly, for tests that must send what Client never would."""

    def __init__(self, connection_file, key: bytes | None = None, curve: bool = True, monitor: bool = False):
        """A networked connection file (`sanetd invite`) connects with its CURVE keys unless ``curve`` is False
        (a plaintext peer); ``monitor``: watch the socket's connection events (``events()``)."""
        info = read_connection_file(connection_file)
        self.info = info
        self.key = info.key if key is None else key
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if info.remote and curve:
            self.sock.curve_serverkey = info.curve_server_key
            self.sock.curve_publickey = info.curve_public_key
            self.sock.curve_secretkey = info.curve_secret_key
        self.monitor = self.sock.get_monitor_socket() if monitor else None
        self.sock.connect(info.endpoint)
        self.auth = P.Authenticator(info.key, 8, 64 << 20, codecs=P.available_codecs())
        self.session = P.new_id()
        self.backlog: list = []

    def header(self, kind: str, **fields) -> dict:
        return P.envelope(kind, session=self.session, **fields)

    def send(self, header: dict, buffers=()) -> list:
        frames = P.build_message(self.key, header, buffers)
        self.sock.send_multipart(frames)
        return frames

    def send_frames(self, frames) -> None:
        self.sock.send_multipart(frames)

    def recv(self, timeout: float = 5.0):
        """(header, buffers) of the next authentic message, or None on timeout."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        header, buffers = self.auth.open(self.sock.recv_multipart())
        return header, buffers

    def recv_until(self, pred, timeout: float = 30.0, keepalive: bool = False):
        """The first message matching ``pred`` (earlier non-matching ones are kept for later calls). keepalive: ping
        every 2 s while waiting, as a client waiting for its job must (protocol section 11: else the daemon cancels
        the session's jobs after lease_s), and drop the pongs."""
        import time
        for i, got in enumerate(self.backlog):
            if pred(got[0]):
                return self.backlog.pop(i)
        end = time.monotonic() + timeout
        next_ping = time.monotonic()
        while time.monotonic() < end:
            if keepalive and time.monotonic() >= next_ping:
                self.send(self.header("ping"))
                next_ping = time.monotonic() + 2.0
            wait = end - time.monotonic()
            got = self.recv(min(wait, max(0.01, next_ping - time.monotonic())) if keepalive else wait)
            if got is None:
                if keepalive:
                    continue
                return None
            if pred(got[0]):
                return got
            if not (keepalive and got[0]["type"] == "pong"):
                self.backlog.append(got)
        return None

    def events(self, timeout: float = 0.0) -> list[str]:
        """Names of the socket events seen so far (e.g. HANDSHAKE_SUCCEEDED, DISCONNECTED), waiting up to
        ``timeout`` for the first one."""
        from zmq.utils.monitor import recv_monitor_message
        out = []
        if self.monitor is None or not self.monitor.poll(int(timeout * 1000)):
            return out
        while self.monitor.poll(0):
            out.append(zmq.Event(recv_monitor_message(self.monitor)["event"]).name)
        return out

    def wait_event(self, name: str, timeout: float) -> list[str]:
        """All events seen until ``name`` (included) or the timeout."""
        import time
        seen, end = [], time.monotonic() + timeout
        while time.monotonic() < end and name not in seen:
            seen += self.events(min(0.2, max(0.0, end - time.monotonic())))
        return seen

    def close(self):
        if self.monitor is not None:
            self.sock.disable_monitor()
            self.monitor.close(0)
        self.sock.close(0)
        self.ctx.term()




def raw_stylize(peer: RawPeer, job_id: str, content: np.ndarray, style: np.ndarray, **controls) -> dict:
    """Send a stylize request over the raw socket; returns its header."""
    fields = {"job_id": job_id,
              "layer": P.pixels_field(content.shape[1], content.shape[0], FORMAT[content.dtype], 0),
              "styles": [{"pixels": P.pixels_field(style.shape[1], style.shape[0], FORMAT[style.dtype], 1),
                          "weight": 1.0}]}
    fields.update(controls)
    header = peer.header("stylize", **fields)
    peer.send(header, [content.tobytes(), style.tobytes()])
    return header


def terminal_for(job_id: str):
    """A predicate matching the result or error event of one job."""
    return lambda h: h.get("job_id") == job_id and h["type"] in ("result", "error")


def invite(d, name: str, *args, folder=None) -> "Path":
    """`sanetd invite NAME -o FILE [args]` against the running daemon ``d``; returns the connection file."""
    import subprocess
    import sys
    from pathlib import Path
    folder = Path(folder or d.runtime_dir.parent / "invites")
    folder.mkdir(exist_ok=True)
    out = folder / f"{name}.json"
    r = subprocess.run([sys.executable, "-m", "sanetd", "invite", name, "-o", str(out), *map(str, args)],
                       env=d.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "applied it" in r.stdout, r.stdout
    return out


def sanetd_command(d, *args):
    """Run `sanetd ARGS` (invite, revoke, clients) in the daemon's environment; the CompletedProcess."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "sanetd", *map(str, args)], env=d.env, capture_output=True,
                          text=True, timeout=60)
