"""Background work without freezing Krita: a plain thread does the blocking client call and puts
events on a queue; the UI drains the queue from a QTimer on the main thread (Krita objects and
widgets are only touched there).

Each task creates and closes its own Client: ZeroMQ sockets must not be shared between threads, and
a fresh connection per job is what lets the plug-in carry on after sanetd restarts.
"""
import queue
import threading
import uuid


class Task:
    """Run fn(client_module, client, report, cancel_event) on a thread; poll() returns finished events.

    Events: ("progress", fraction, stage), ("done", value), ("error", message, exc),
    ("cancelled", message).
    """

    def __init__(self, client_module, fn, timeout=10.0, expected=(), retries=3, connection_file=None):
        self.client_module = client_module
        self.connection_file = connection_file   # the Server (None: this computer)
        self.retries = retries
        self.expected = tuple(expected)   # exception types whose str() is already an artist message
        self.fn = fn
        self.timeout = timeout
        self.cancel_event = threading.Event()
        self.job_id = uuid.uuid4().hex
        self.events = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="sanet-style-task", daemon=True)
        self.finished = False
        self.abandoned = False
        self.last_progress = None   # (fraction, stage) of the latest progress event from sanetd
        self.outcome = None      # set when the thread ends: done, cancelled (sanetd confirmed), error,
                                 # or "finished despite cancel" (the result came before the cancel took effect)

    def start(self):
        self.thread.start()
        return self

    def cancel(self):
        self.cancel_event.set()

    def abandon(self):
        """Cancel and stop listening at once: the UI treats the task as over now.

        The thread still tells sanetd to cancel the job (the client sends `cancel` within 0.1 s) and then ends
        on its own; whatever it reports after this is dropped, so a result that arrives late is never used.
        This is what makes Cancel (and a superseded preview) take effect immediately in the docker, however
        long the daemon needs to stop the running stage.
        """
        self.cancel_event.set()
        self.abandoned = True
        self.finished = True

    def _report(self, fraction, stage=""):
        self.last_progress = (float(fraction), str(stage))
        self.events.put(("progress", float(fraction), str(stage)))

    def _run(self):
        mod = self.client_module
        client = None
        try:
            client = mod.Client(connection_file=self.connection_file, timeout=self.timeout, retries=self.retries)
            value = self.fn(mod, client, self._report, self.cancel_event)
            if self.cancel_event.is_set():
                self.outcome = "finished despite cancel"
                self.events.put(("cancelled", "Cancelled."))
            else:
                self.outcome = "done"
                self.events.put(("done", value))
        except mod.JobCancelled as exc:
            self.outcome = "cancelled"
            self.events.put(("cancelled", str(exc) or "Cancelled."))
        except mod.SanetClientError as exc:
            self.outcome = "error"
            self.events.put(("error", str(exc), exc))
        except self.expected as exc:
            self.outcome = "error"
            self.events.put(("error", str(exc), exc))
        except Exception as exc:  # a bug must reach the artist, not vanish in a thread
            self.outcome = "error"
            self.events.put(("error", "%s: %s" % (type(exc).__name__, exc), exc))
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass

    def poll(self):
        if self.abandoned:
            return []
        out = []
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return out
            if event[0] in ("done", "error", "cancelled"):
                self.finished = True
            out.append(event)
