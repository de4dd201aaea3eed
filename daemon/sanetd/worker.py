"""The worker threads: one per device (``--device cuda:0,cuda:1``), the only threads that touch a model.

Each worker owns its device, its model copy and its caches. It takes jobs from the shared queue, runs the
engine with progress and cancellation, falls back to a smaller plan on GPU out-of-memory, and unloads its
model after the keep-alive idle time.
"""
from __future__ import annotations

import gc
import logging
import os
import threading
import time

import torch

import sanet
from sanet_client import protocol as P

from . import pixels
from .jobs import Job, JobQueue
from .library import StyleLibrary

log = logging.getLogger("sanetd.worker")

OOM_ERRORS = (torch.cuda.OutOfMemoryError,)
PROGRESS_MIN_INTERVAL = 0.1   # seconds between two progress events of one job (stage changes always go)
MAX_CACHED_FEATURES = 16


class JobError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


class Faults:
    """Test hook: SANETD_TEST_FAULTS="oom,ok,oom,oom" scripts the outcome of successive engine attempts, whichever
    worker makes them ("oom" raises torch.cuda.OutOfMemoryError, anything else runs normally; later attempts run
    normally). This machine has no GPU to exhaust; docs/protocol.md lists the hook under testing."""

    def __init__(self, spec: str | None = None):
        spec = os.environ.get("SANETD_TEST_FAULTS", "") if spec is None else spec
        self._items = [t.strip() for t in spec.split(",") if t.strip()]
        self._lock = threading.Lock()

    def next_is_oom(self) -> bool:
        with self._lock:
            return bool(self._items) and self._items.pop(0) == "oom"


class Worker(threading.Thread):
    def __init__(self, settings, queue: JobQueue, outbox, library: StyleLibrary, device: str | None = None,
                 index: int = 0, faults: Faults | None = None):
        super().__init__(name=f"sanetd-worker-{index}", daemon=True)
        self.settings = settings
        self.queue = queue
        self.outbox = outbox
        self.library = library
        self.index = index
        self.device = device or settings.device   # what this worker was asked to use ("cuda:1", "cpu", "auto")
        self.ready = threading.Event()
        self.startup_error: Exception | None = None
        self.stylizer = None
        self.device_name = self.device
        self.precision = settings.precision
        self.weights_dir = settings.weights
        self._features: dict = {}
        self._faults = faults if faults is not None else Faults()
        self.jobs_done = 0
        self.state = "starting"     # starting, loading, idle, running, unloaded, failed, stopped
        self.current: Job | None = None

    def describe(self) -> dict:
        """This device's entry in status.reply "devices": state, the running job's client, memory."""
        d = {"index": self.index, "device": self.device_name, "state": self.state, "model_loaded": self.loaded,
             "precision": self.precision, "jobs_done": self.jobs_done, "memory": self.memory()}
        job = self.current
        if job is not None:
            d["client"] = job.client_name
        return d

    def memory(self) -> dict | None:
        """Device memory in bytes (CUDA: allocated and reserved by this process, free and total on the device);
        None on the CPU, whose memory is the host's (status.reply "host_memory")."""
        st = self.stylizer
        dev = st.device if st is not None else None
        if dev is None:
            try:
                dev = torch.device(self.device_name)
            except (RuntimeError, TypeError):
                return None
        if dev.type != "cuda" or not torch.cuda.is_available():
            return None
        try:
            free, total = torch.cuda.mem_get_info(dev)
            return {"allocated": torch.cuda.memory_allocated(dev), "reserved": torch.cuda.memory_reserved(dev),
                    "free": free, "total": total}
        except Exception:  # noqa: BLE001  a status query never fails because of a driver hiccup
            return None

    # ------------------------------------------------------------ model

    @property
    def loaded(self) -> bool:
        return self.stylizer is not None

    def _load(self, precision: str):
        if self.stylizer is not None and self.stylizer.precision == precision:
            return self.stylizer
        t0 = time.monotonic()
        budget = self.settings.memory_budget
        self.state = "loading"
        st = sanet.Stylizer(self.settings.weights, device=self.device, precision=precision,
                            memory_budget=None if budget is None else int(budget * 2**30))
        if self.stylizer is not None:
            self._unload("precision change")
        self.stylizer = st
        self.device_name = str(st.device)
        self.precision = precision
        self.weights_dir = str(st.weights_dir)
        log.info("model loaded on %s (%s, worker %d) from %s in %.2f s", st.device, precision, self.index,
                 st.weights_dir, time.monotonic() - t0)
        return st

    def _unload(self, why: str) -> None:
        if self.stylizer is None:
            return
        dev = self.stylizer.device
        self.stylizer.unload()
        self.stylizer = None
        self._features.clear()
        gc.collect()
        if dev.type == "cuda":
            with torch.cuda.device(dev):
                torch.cuda.empty_cache()
        log.info("model unloaded (%s) on %s", why, dev)

    def _free_memory(self) -> None:
        self._features.clear()
        cache = getattr(self.stylizer, "_cache", None)  # the engine's style-feature cache holds device memory
        if hasattr(cache, "clear"):
            cache.clear()
        gc.collect()
        dev = getattr(self.stylizer, "device", None)
        if dev is not None and dev.type == "cuda":
            with torch.cuda.device(dev):
                torch.cuda.empty_cache()

    # ------------------------------------------------------------ loop

    def run(self):
        try:
            if self.device.startswith("cuda:"):
                torch.cuda.set_device(torch.device(self.device))   # this thread's default CUDA device
            self._load(self.settings.precision)
        except Exception as exc:  # noqa: BLE001  reported by main as one line
            self.startup_error = exc
            self.state = "failed"
            self.ready.set()
            return
        self.state = "idle"
        self.ready.set()
        keep_alive = self.settings.keep_alive
        idle_since = time.monotonic()
        while True:
            timeout = None
            if self.stylizer is not None and keep_alive >= 0:
                timeout = max(0.0, idle_since + keep_alive - time.monotonic())
            job = self.queue.get(self.index, timeout)
            if job is None:
                if self.queue.closed:
                    break
                if self.stylizer is not None and keep_alive >= 0 and time.monotonic() - idle_since >= keep_alive:
                    self._unload(f"idle for {keep_alive:g} s")
                    self.state = "unloaded"
                continue
            self.current, self.state = job, "running"
            try:
                self._run_job(job)
            finally:
                self.queue.finished(job)
                self.current = None
            idle_since = time.monotonic()
            if keep_alive == 0:
                self._unload("keep-alive 0")
            self.state = "idle" if self.stylizer is not None else "unloaded"
        self._unload("shutdown")
        self.state = "stopped"

    # ------------------------------------------------------------ one job

    def _post_terminal(self, job: Job, header: dict, buffers=()) -> None:
        # done (and counted) before the client can see the outcome, so a cancel racing the result says "finished"
        # and a status request right after the result already counts this job
        self.queue.finished(job)
        self.jobs_done += 1
        self.outbox.post(job.owner, header, buffers, job=job, terminal=True)

    def _post_error(self, job: Job, code: str, message: str, field: str | None = None) -> None:
        self._post_terminal(job, P.envelope("error", job_id=job.job_id, code=code, message=message, field=field))

    def _run_job(self, job: Job) -> None:
        req = job.request
        t0 = time.monotonic()
        try:
            if job.cancel.is_set():
                raise sanet.Cancelled("cancelled before it started")
            out, info = self._run_with_fallback(job)
        except sanet.Cancelled:
            why = {"shutting_down": "sanetd is shutting down; the job was cancelled",
                   "lease_expired": "the client stopped answering; the job was cancelled"}.get(
                job.cancel_code, f"job {job.job_id} was cancelled")
            log.info("job %s cancelled (%s)", job.job_id, job.cancel_code)
            self._post_error(job, job.cancel_code if job.cancel_code != "lease_expired" else "cancelled", why)
            return
        except JobError as exc:
            self._post_error(job, exc.code, exc.message, exc.field)
            return
        except sanet.InputError as exc:
            self._post_error(job, "invalid_input", str(exc))
            return
        except sanet.SanetError as exc:
            self._post_error(job, "engine_error", str(exc))
            return
        except MemoryError:
            self._post_error(job, "out_of_memory", "sanetd ran out of memory on this layer; try preview mode "
                                                   "or a smaller layer")
            return
        except Exception as exc:  # noqa: BLE001  a bug must fail the job, never the daemon
            log.exception("job %s failed", job.job_id)
            self._post_error(job, "internal", f"internal error in sanetd: {type(exc).__name__}: {exc}")
            return
        info["seconds"] = round(time.monotonic() - t0, 4)
        info["worker"], info["sequence"] = self.index, job.sequence
        layer = req["layer"]
        fmt = P.RAW_FORMAT if req.get("raw") else layer.format   # "raw": unclamped float32 RGB (feature "raw")
        header = P.envelope("result", job_id=job.job_id,
                            layer=P.pixels_field(layer.width, layer.height, fmt, 0), info=info)
        self._post_terminal(job, header, [out])
        log.info("job %s: %dx%d %s, %d style(s) in %.2f s on %s (worker %d, client %s)", job.job_id, layer.width,
                 layer.height, layer.format, len(req["styles"]), info["seconds"], self.device_name, self.index,
                 job.client_name)

    def _run_with_fallback(self, job: Job):
        """Run the job; on GPU OOM free memory and retry, then retry in fp16. Never lets OOM escape."""
        precision = job.request["precision"] or self.settings.precision
        plans = [(precision, None), (precision, "retried after freeing GPU memory")]
        if precision == "fp32" and self.stylizer is not None and self.stylizer.device.type == "cuda":
            plans.append(("fp16", "ran in fp16 instead of fp32 to fit in GPU memory"))
        degraded = []
        last = ""
        for plan_precision, note in plans:
            if note:
                degraded.append(note)
            failed = False
            try:
                out = self._attempt(job, plan_precision)
            except OOM_ERRORS as exc:
                failed = True
                last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not failed:
                info = {"device": self.device_name, "precision": plan_precision, "preview": job.request["preview"],
                        "styles": len(job.request["styles"]), "selection": job.request["selection"] is not None,
                        "engine": sanet.__version__}
                if degraded:
                    info["degraded"] = degraded
                if getattr(job, "skipped", None):
                    info["skipped"] = job.skipped
                elif getattr(self.stylizer, "last_plan", None) is not None:
                    info["plan"] = self.stylizer.last_plan.describe()   # whole image or tiles, and the budget
                return out, info
            # outside the except block: the traceback no longer pins the failed attempt's tensors
            log.warning("job %s: out of GPU memory (%s); trying a smaller plan", job.job_id, last)
            self._free_memory()
        raise JobError("out_of_memory", f"the layer does not fit in GPU memory even after freeing caches and "
                                        f"falling back ({last}); try preview mode, a smaller layer or "
                                        f"`sanetd --device cpu`")

    def _attempt(self, job: Job, precision: str):
        req = job.request
        if self.stylizer is None:
            self._progress(job)(0.0, "loading model")
        st = self._load(precision)
        if self._faults.next_is_oom():
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected by SANETD_TEST_FAULTS)")
        layer = req["layer"]
        w, h = layer.width, layer.height
        content = pixels.layer_array(layer, job.buffers[layer.buf])
        selection = None
        sel = req["selection"]
        if sel is not None and not req.get("raw") and pixels.mask_is_empty(sel, job.buffers[sel.buf], w, h):
            # nothing selected: the result is the layer itself; no device time spent
            self._progress(job)(1.0, "done")
            job.skipped = "selection is empty"
            return pixels.as_layer_bytes(content, layer.format)
        if sel is not None:
            selection = pixels.mask_plane(sel, job.buffers[sel.buf], w, h)
        max_side = req["style_max_side"] or sanet.DEFAULT_STYLE_MAX_SIDE
        styles = []
        for i, s in enumerate(req["styles"]):
            region = None
            if s["region"] is not None:
                region = pixels.mask_plane(s["region"], job.buffers[s["region"].buf], w, h)
            labels = None if s["labels"] is None else pixels.label_array(s["labels"], job.buffers[s["labels"].buf])
            if "id" in s and labels is not None:
                # SCSA encodes the style together with its label map: the engine needs the image, not features
                source = self._library_image(s["id"], f"styles[{i}].id")
            elif "id" in s:
                source = self._library_features(st, s["id"], max_side, f"styles[{i}].id")
            else:
                source = pixels.layer_array(s["pixels"], job.buffers[s["pixels"].buf])
            styles.append(sanet.Style(source, weight=s["weight"], region=region, labels=labels))
        semantic = {}
        if req["content_labels"] is not None:
            ref = req["content_labels"]
            semantic["content_labels"] = pixels.label_array(ref, job.buffers[ref.buf])
            semantic["label_palette"] = req["label_palette"]
            if req["scsa_weights"] is not None:
                semantic["scsa_weights"] = req["scsa_weights"]
        progress = self._progress(job)
        run = st.stylize_raw if req.get("raw") else st.stylize
        out = run(content, styles, alpha=req["alpha"], preserve_color=req["preserve_color"],
                  selection=selection, preview=req["preview"], style_max_side=max_side,
                  progress=progress, cancel_check=job.cancel.is_set, **semantic)
        if req.get("raw"):
            progress(1.0, "done")   # stylize_raw stops at "finish"; the job is complete here
            return pixels.as_raw_bytes(out)
        return pixels.as_layer_bytes(out, layer.format)

    def _library_image(self, style_id: str, field: str):
        if not self.library.exists(style_id):
            raise JobError("unknown_style", f"style {style_id!r} is not in the style library "
                                            f"(removed?); see styles.list", field)
        return self.library.load(style_id)

    def _library_features(self, st, style_id: str, max_side: int, field: str):
        key = (style_id, max_side)
        feats = self._features.get(key)
        if feats is None:
            if not self.library.exists(style_id):
                raise JobError("unknown_style", f"style {style_id!r} is not in the style library "
                                                f"(removed?); see styles.list", field)
            feats = st.encode_style(self.library.load(style_id), max_side=max_side)
            if len(self._features) >= MAX_CACHED_FEATURES:
                self._features.pop(next(iter(self._features)))
            self._features[key] = feats
        return feats

    def _progress(self, job: Job):
        last = {"t": 0.0, "stage": None}

        def report(fraction: float, stage: str) -> None:
            now = time.monotonic()
            if stage == last["stage"] and now - last["t"] < PROGRESS_MIN_INTERVAL:
                return
            last["t"], last["stage"] = now, stage
            self.outbox.post(job.owner, P.envelope("progress", job_id=job.job_id,
                                                   fraction=min(1.0, max(0.0, float(fraction))),
                                                   stage=str(stage)[:64]), client=job.client)
        return report
