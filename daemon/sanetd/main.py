"""`sanetd`: start-up order matters — settings, device check, lock, models, bind, connection file.

`sanetd invite|revoke|clients` are the shared server's commands (admin.py); everything else runs the daemon."""
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
from .config import ConfigError, device_list, load_settings
from .instance import Instance, InstanceError, UnsafeFolder, check_listen_endpoint
from .jobs import JobQueue
from .layers import LayerStore
from .library import StyleLibrary

log = logging.getLogger("sanetd")


def setup_logging(level: str, log_dir: Path) -> Path | None:
    """stderr plus a rotating file in the log dir (5 MiB × 3), for sanetd's loggers and the engine's ("sanet":
    compiled graphs, fallbacks)."""
    roots = [logging.getLogger("sanetd"), logging.getLogger("sanet")]
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(fmt)
    for root in roots:
        root.setLevel(level.upper())
        root.addHandler(err)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / "sanetd.log"
        fh = logging.handlers.RotatingFileHandler(path, maxBytes=5 << 20, backupCount=3, encoding="utf-8")
        fh.setFormatter(fmt)
        for root in roots:
            root.addHandler(fh)
        return path
    except OSError as exc:
        log.warning("cannot write logs to %s (%s); logging to stderr only", log_dir, exc)
        return None


def apply_priority(settings) -> tuple[int, int | None]:
    """Threads (all physical cores unless --threads) and a lower priority (--nice, default 10) so that the editor
    stays responsive while sanetd computes. Returns (threads, the process's niceness now or None)."""
    import torch
    from sanet.devices import cpu_info
    threads = settings.threads or cpu_info().physical_cores
    torch.set_num_threads(threads)
    niceness = None
    if settings.nice:
        try:
            if hasattr(os, "nice"):
                niceness = os.nice(settings.nice)
            elif sys.platform == "win32":   # BELOW_NORMAL_PRIORITY_CLASS
                import ctypes
                ctypes.windll.kernel32.SetPriorityClass(ctypes.windll.kernel32.GetCurrentProcess(), 0x4000)
        except OSError as exc:
            log.warning("cannot lower sanetd's priority (%s); it runs at the editor's priority", exc)
    elif hasattr(os, "nice"):
        niceness = os.nice(0)
    return threads, niceness


def _fail(message: str, code: int) -> int:
    print(f"sanetd: {message}", file=sys.stderr)
    return code


def expand_devices(spec: str) -> list[str]:
    """One entry per worker: "cuda:all" becomes cuda:0..cuda:N-1 (torch is loaded by now)."""
    out = []
    for item in device_list(spec):
        if item == "cuda:all":
            import torch
            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if n == 0:
                import sanet
                raise sanet.DeviceError("device 'cuda:all': no CUDA GPU was found (torch "
                                        f"{torch.__version__}); use --device cpu or auto")
            out += [f"cuda:{i}" for i in range(n)]
        else:
            out.append(item)
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("invite", "revoke", "clients"):
        from .admin import main as admin_main
        return admin_main(argv)
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    log_path = setup_logging(settings.log_level, settings.resolved_log_dir())

    import sanet
    from sanet.devices import choose_precision, resolve_device
    try:  # fail at once, before any loading, when a device or the precision cannot be had
        devices = expand_devices(settings.device)
        for d in devices:
            choose_precision(settings.precision, resolve_device(d))
    except sanet.SanetError as exc:
        return _fail(str(exc), 2)
    if settings.listen:
        try:
            check_listen_endpoint(settings.listen)
        except InstanceError as exc:
            return _fail(str(exc), 2)
    threads, niceness = apply_priority(settings)
    log.info("compute threads %d, niceness %s", threads, niceness)

    instance = Instance()
    try:
        instance.acquire()
    except InstanceError as exc:   # 1: another sanetd holds the lock; 2: the folder cannot be used safely
        return _fail(str(exc), 2 if isinstance(exc, UnsafeFolder) else 1)

    from .allowlist import AllowListError, NetworkFolder
    from .server import Outbox, Server
    from .worker import Worker

    ctx = zmq.Context()
    outbox = None
    stuck = False      # a worker outlived the shutdown grace inside the engine
    try:
        try:
            endpoint, curve = instance.choose_endpoint(settings.endpoint, settings.curve)
        except InstanceError as exc:
            return _fail(str(exc), 2)
        key = P.new_key()
        limits = P.Limits(max_pixels=settings.max_pixels)
        outbox = Outbox(ctx)
        jobs = JobQueue(settings.max_queue, workers=len(devices))
        library = StyleLibrary(settings.resolved_data_dir() / "styles")
        layers = LayerStore()   # the layers kept for `layer.ref`, whichever worker ran them (feature "layer_ref")
        workers = [Worker(settings, jobs, outbox, library, device=d, index=i, layers=layers)
                   for i, d in enumerate(devices)]
        for w in workers:       # the models load side by side, one per device
            w.start()
        for w in workers:
            w.ready.wait()
        failed = [w for w in workers if w.startup_error is not None]
        if failed:
            jobs.close()
            w = failed[0]
            where = f" (worker {w.index}, device {w.device})" if len(workers) > 1 else ""
            return _fail(str(w.startup_error).splitlines()[0] + where, 2)
        server = Server(settings, key, limits, ctx, jobs, workers, library, outbox)
        try:
            bound, curve_public = server.bind(endpoint, curve)
        except zmq.ZMQError as exc:
            return _fail(f"cannot listen on {endpoint}: {exc}", 2)
        listening = None
        if settings.listen:
            try:
                listening = server.listen(settings.listen, NetworkFolder())
            except AllowListError as exc:
                jobs.close()
                return _fail(str(exc), 2)
            except zmq.ZMQError as exc:
                jobs.close()
                return _fail(f"cannot listen on {settings.listen}: {exc}", 2)
        instance.write_connection_file(bound, key, curve_public, listen=listening)

        stop = threading.Event()

        def on_signal(signum, frame):
            stop.set()
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info("sanetd %s ready on %s%s (device %s, protocol v%d); connection file %s; log %s", __version__,
                 bound, f" and {listening}" if listening else "", ",".join(w.device_name for w in workers),
                 P.PROTOCOL_VERSION, instance.connection_file, log_path)
        server.serve(stop)
        for w in workers:
            w.join(timeout=1.0)
        stuck = any(w.is_alive() for w in workers)
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
