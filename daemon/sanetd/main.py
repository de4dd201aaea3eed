"""`sanetd`: start-up order matters — settings, device check, lock, model, bind, connection file."""
from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import sys
import threading
from pathlib import Path

import zmq

from sanet_client import protocol as P

from . import __version__
from .config import ConfigError, load_settings
from .instance import Instance, InstanceError, UnsafeFolder
from .jobs import JobQueue
from .library import StyleLibrary

log = logging.getLogger("sanetd")


def setup_logging(level: str, log_dir: Path) -> Path | None:
    """stderr plus a rotating file in the log dir (5 MiB × 3)."""
    root = logging.getLogger("sanetd")
    root.setLevel(level.upper())
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(fmt)
    root.addHandler(err)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / "sanetd.log"
        fh = logging.handlers.RotatingFileHandler(path, maxBytes=5 << 20, backupCount=3, encoding="utf-8")
        fh.setFormatter(fmt)
        root.addHandler(fh)
        return path
    except OSError as exc:
        log.warning("cannot write logs to %s (%s); logging to stderr only", log_dir, exc)
        return None


def _fail(message: str, code: int) -> int:
    print(f"sanetd: {message}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    log_path = setup_logging(settings.log_level, settings.resolved_log_dir())

    import sanet
    from sanet.devices import resolve_device
    try:  # fail at once, before any loading, when the device cannot be had
        resolve_device(settings.device)
    except sanet.SanetError as exc:
        return _fail(str(exc), 2)

    instance = Instance()
    try:
        instance.acquire()
    except InstanceError as exc:   # 1: another sanetd holds the lock; 2: the folder cannot be used safely
        return _fail(str(exc), 2 if isinstance(exc, UnsafeFolder) else 1)

    from .server import Outbox, Server
    from .worker import Worker

    ctx = zmq.Context()
    outbox = None
    stuck = False      # the worker outlived the shutdown grace inside the engine
    try:
        try:
            endpoint, curve = instance.choose_endpoint(settings.endpoint, settings.curve)
        except InstanceError as exc:
            return _fail(str(exc), 2)
        key = P.new_key()
        limits = P.Limits(max_pixels=settings.max_pixels)
        outbox = Outbox(ctx, bytes.fromhex(key))
        jobs = JobQueue(settings.max_queue)
        library = StyleLibrary(settings.resolved_data_dir() / "styles")
        worker = Worker(settings, jobs, outbox, library)
        worker.start()
        worker.ready.wait()
        if worker.startup_error is not None:
            return _fail(str(worker.startup_error).splitlines()[0], 2)
        server = Server(settings, key, limits, ctx, jobs, worker, library, outbox)
        try:
            bound, curve_public = server.bind(endpoint, curve)
        except zmq.ZMQError as exc:
            return _fail(f"cannot listen on {endpoint}: {exc}", 2)
        instance.write_connection_file(bound, key, curve_public)

        stop = threading.Event()

        def on_signal(signum, frame):
            stop.set()
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info("sanetd %s ready on %s (device %s, protocol v%d); connection file %s; log %s", __version__,
                 bound, worker.device_name, P.PROTOCOL_VERSION, instance.connection_file, log_path)
        server.serve(stop)
        worker.join(timeout=1.0)
        stuck = worker.is_alive()
        log.info("sanetd stopped")
        return 0
    finally:
        instance.release()
        if outbox is not None:
            outbox.close()
        ctx.destroy(linger=0)
        if stuck:
            _exit_now()


def _exit_now() -> None:
    """Leave without finalizing the interpreter while the worker thread is still inside an engine call (one that
    outlasted the shutdown grace: a model load, a native op with no cancellation point). Finalizing would abort the
    process: when that call returns, the daemon thread finds the interpreter finalizing and is ended with
    pthread_exit, whose forced unwinding through torch's noexcept C++ frames (the GIL re-acquisition after a native op)
    calls std::terminate -- "terminate called without an active exception", exit status -6 (SIGABRT). Everything a
    clean exit does is done by now: connection file and socket removed, lock released, clients told."""
    log.warning("the engine did not stop within the shutdown grace (worker still busy); exiting without waiting")
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)
