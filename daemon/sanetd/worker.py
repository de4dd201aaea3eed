"""The worker threads: one per device (``--device cuda:0,cuda:1``), the only threads that touch a model.

Each worker owns its device, its engine (model copies and style-feature cache). It takes jobs from the shared fair
queue, runs the engine with progress and cancellation, and unloads its models after the keep-alive idle time.
Models load lazily: the first installed one at start-up, every other on the first job that
asks for it (progress stage "loading model"); the engine's style cache is keyed by model, so each model has its own
cached style features. Out of memory is handled by the engine's one fallback chain (smaller plans, then fp16 on
GPUs; sanet.runtime.oom); its last word, sanet.OutOfMemory, becomes the protocol's `out_of_memory` error. Styles
from the library reach the engine's one style-feature cache like any other style (keyed by their pixels).

Feature reuse: every layer's digest (sanetd.layers.layer_digest) is the engine's content key, so a layer sent again
(a plug-in's preview after a slider change) reuses its encoded features and the transformed features of the styles
it was already stylized with (sanet.runtime.cache.ContentCache); the layer is kept (sanetd.layers.LayerStore) so the
next request may name it by `result.info.layer_ref`. `result.info.reused` says what was reused.
"""
from __future__ import annotations

import gc
import logging
import threading
import time

import torch

import sanet
from sanet.weights import resolve_weights_dir
from sanet_client import protocol as P

from . import models, pixels
from .jobs import Job, JobQueue
from .layers import LayerStore, layer_digest
from .library import StyleLibrary

log = logging.getLogger("sanetd.worker")

PROGRESS_MIN_INTERVAL = 0.1   # seconds between two progress events of one job (stage changes always go)


class JobError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


class Worker(threading.Thread):
    def __init__(self, settings, queue: JobQueue, outbox, library: StyleLibrary, device: str | None = None,
                 index: int = 0, layers: LayerStore | None = None):
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
        self.weights_dir = str(resolve_weights_dir(settings.weights))
        self.jobs_done = 0
        self._caps: dict | None = None
        # layers kept for `layer.ref`, one store shared by all workers (main.py; the I/O thread resolves refs)
        self.layers = layers if layers is not None else LayerStore()
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

    def loaded_models(self) -> list[str]:
        st = self.stylizer
        return [] if st is None else st.loaded_models()

    def _load(self, model: str | None = None):
        """The engine at the configured precision (jobs may ask for another precision per call; the engine switches
        its modules, no reload of the daemon's state), with `model` loaded — at start-up (None) the first installed
        model, so that a daemon with only AdaAttN's files serves AdaAttN. Other models load on first use."""
        if self.stylizer is not None:
            return self.stylizer
        t0 = time.monotonic()
        budget = self.settings.memory_budget
        self.state = "loading"
        first = model or (models.installed(self.weights_dir) or [P.DEFAULT_MODEL])[0]
        st = sanet.Stylizer(self.settings.weights, device=self.device, precision=self.settings.precision,
                            memory_budget=None if budget is None else int(budget * 2**30), model=first,
                            compile=bool(getattr(self.settings, "compile", False)))
        self.stylizer = st
        self.device_name = str(st.device)
        self.precision = st.precision
        self.weights_dir = str(st.weights_dir)
        log.info("%s loaded on %s (%s, worker %d) from %s in %.2f s", first, st.device, st.precision, self.index,
                 st.weights_dir, time.monotonic() - t0)
        return st

    def capabilities(self) -> dict:
        """The device's precisions, the CPU, threads (sanet.devices.capabilities) and the compiler's state; for
        hello and status. Computed once (the device is known from the settings before the model loads)."""
        if self._caps is None:
            from sanet.devices import capabilities, resolve_device
            self._caps = capabilities(resolve_device(self.device))
        caps = dict(self._caps)
        st = self.stylizer
        caps["compile"] = (st.compiler.status() if st is not None and st.compiler is not None
                           else bool(getattr(self.settings, "compile", False)))
        return caps

    def _warm(self, st) -> None:
        """With --compile: one preview-sized run (eager, ~1 s) so that its shapes are built in the background
        before the artist's first preview comes; never fails the daemon."""
        if st.compiler is None:
            return
        import numpy as np
        try:
            side = sanet.PREVIEW_LONG_SIDE
            img = np.linspace(0, 1, side * side * 3, dtype=np.float32).reshape(side, side, 3)
            st.stylize(img, [img[: side // 2, : side // 2].copy()], preview=True)
            st.clear_cache()
            log.info("compile warm-up queued (%s)", st.compiler.status())
        except Exception as exc:  # noqa: BLE001
            log.warning("compile warm-up failed (%s); jobs run eager", exc)

    def _unload(self, why: str) -> None:
        if self.stylizer is None:
            return
        dev = self.stylizer.device
        self.stylizer.unload()          # models and the style-feature cache
        self.stylizer = None
        gc.collect()
        if dev.type == "cuda":
            with torch.cuda.device(dev):
                torch.cuda.empty_cache()
        log.info("model unloaded (%s) on %s", why, dev)

    # ------------------------------------------------------------ loop

    def run(self):
        try:
            if self.device.startswith("cuda:"):
                torch.cuda.set_device(torch.device(self.device))   # this thread's default CUDA device
            self._load()
        except Exception as exc:  # noqa: BLE001  reported by main as one line
            self.startup_error = exc
            self.state = "failed"
            self.ready.set()
            return
        self.state = "idle"
        self.ready.set()
        if not self.queue.waiting():
            self._warm(self.stylizer)
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
            out, info = self._run(job)
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
        except models.Unavailable as exc:   # its files were removed after the job was accepted
            self._post_terminal(job, P.envelope("error", job_id=job.job_id, code="model_unavailable",
                                                message=exc.message, field=models.FIELD, missing=exc.missing))
            return
        except sanet.WeightsError as exc:  # a model's file is truncated, corrupt or another model's: named
            log.warning("job %s: %s", job.job_id, exc)
            self._post_error(job, "model_unavailable", str(exc), models.FIELD)
            return
        except sanet.OutOfMemory as exc:   # the engine's fallback chain is exhausted
            log.warning("job %s: %s", job.job_id, exc)
            self._post_error(job, "out_of_memory", str(exc))
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

    def _run(self, job: Job):
        """Run the job; result info says how it ran (plan, precision, what the engine's fallbacks degraded)."""
        precision = job.request["precision"] or self.settings.precision
        out = self._stylize(job, precision)
        st = self.stylizer
        info = {"device": self.device_name, "precision": precision, "model": job.request.get("model", P.DEFAULT_MODEL),
                "preview": job.request["preview"],
                "styles": len(job.request["styles"]), "selection": job.request["selection"] is not None,
                "engine": sanet.__version__}
        layer = job.request["layer"]
        info["layer_ref"] = job.layer_ref                # name this layer by it next time (feature "layer_ref")
        if getattr(job, "skipped", None):
            info["skipped"] = job.skipped
        elif st is not None and st.last_info:
            info["precision"] = st.last_info["precision"]
            info["plan"] = st.last_info["plan"]          # whole image or tiles, and the budget
            if st.last_info.get("degraded"):
                info["degraded"] = list(st.last_info["degraded"])
            reused = st.last_info.get("reused") or {"features": False, "styles": [False] * len(job.request["styles"]),
                                                    "own": None}
            info["reused"] = {"layer": layer.ref is not None, **reused}
        return out, info

    def _stylize(self, job: Job, precision: str):
        req = job.request
        model = req.get("model", P.DEFAULT_MODEL)
        if model not in self.loaded_models():
            models.check_installed(self.weights_dir, model)
            self._progress(job)(0.0, "loading model")
        st = self._load(model)
        st.load(model)   # lazily, once; a broken file is one WeightsError naming it
        layer = req["layer"]
        w, h = layer.width, layer.height
        data = job.buffers[layer.buf]
        # named by its ref: the I/O thread put the kept buffer in job.buffers and its digest in layer.ref
        job.layer_ref = layer.ref or layer_digest(layer.format, w, h, data)
        self.layers.put(job.layer_ref, layer.format, w, h, data)
        content = pixels.layer_array(layer, data)
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
            if "id" in s:   # the engine's style cache knows it by its pixels: encoded once per size and model
                source = self._library_image(s["id"], f"styles[{i}].id")
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
                  progress=progress, cancel_check=job.cancel.is_set, precision=precision, model=model,
                  style_keys=req.get("style_keys", P.DEFAULT_STYLE_KEYS), content_key=job.layer_ref, **semantic)
        if req.get("raw"):
            progress(1.0, "done")   # stylize_raw stops at "finish"; the job is complete here
            return pixels.as_raw_bytes(out)
        return pixels.as_layer_bytes(out, layer.format)

    def _library_image(self, style_id: str, field: str):
        if not self.library.exists(style_id):
            raise JobError("unknown_style", f"style {style_id!r} is not in the style library "
                                            f"(removed?); see styles.list", field)
        return self.library.load(style_id)

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
