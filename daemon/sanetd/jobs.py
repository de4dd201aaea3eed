"""Jobs, the bounded queue in front of the worker, and the table that makes job ids idempotent."""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

QUEUED, RUNNING, DONE = "queued", "running", "done"


@dataclass
class Job:
    session: str
    job_id: str
    request: dict               # validated stylize request (PixelRefs)
    buffers: list               # the message's buffers (zmq frame views), kept alive with the job
    state: str = QUEUED
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_code: str = "cancelled"   # or "shutting_down" / "lease_expired" (error code sent on cancel)
    submitted: float = field(default_factory=time.monotonic)
    outcome: list | None = None      # the signed terminal message (frames), kept for a resubmission
    outcome_bytes: int = 0
    skipped: str | None = None       # why the engine was not needed (e.g. an empty selection)
    layer_ref: str | None = None     # the layer's digest (sanetd.layers): result.info.layer_ref, the engine's key

    @property
    def key(self) -> tuple[str, str]:
        return self.session, self.job_id


class JobQueue:
    """FIFO of waiting jobs with a hard size limit; the worker blocks on it."""

    def __init__(self, max_waiting: int):
        self.max_waiting = max_waiting
        self._items: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self.running: Job | None = None
        self.closed = False

    def try_put(self, job: Job) -> int | None:
        """Queue the job; its position (jobs ahead, the running one included), or None when full."""
        with self._cond:
            idle = self.running is None and not self._items  # runs at once even with max_waiting 0
            if len(self._items) >= self.max_waiting and not idle:
                return None
            self._items.append(job)
            self._cond.notify()
            return len(self._items) - 1 + (1 if self.running is not None else 0)

    def get(self, timeout: float | None) -> Job | None:
        """The next job (now marked running), or None after ``timeout`` seconds or when closed."""
        with self._cond:
            end = None if timeout is None else time.monotonic() + timeout
            while not self._items and not self.closed:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            if not self._items:
                return None
            job = self._items.popleft()
            job.state = RUNNING
            self.running = job
            return job

    def finished(self, job: Job) -> None:
        with self._cond:
            job.state = DONE
            if self.running is job:
                self.running = None

    def remove(self, job: Job) -> bool:
        """Take a waiting job out of the queue; False if the worker already took it."""
        with self._cond:
            try:
                self._items.remove(job)
            except ValueError:
                return False
            job.state = DONE
            return True

    def position(self, job: Job) -> int:
        with self._cond:
            if job is self.running or job.state != QUEUED:
                return 0
            try:
                return self._items.index(job) + (1 if self.running is not None else 0)
            except ValueError:
                return 0

    def waiting(self) -> list[Job]:
        with self._cond:
            return list(self._items)

    def close(self) -> list[Job]:
        """Stop intake; returns the jobs that were still waiting (now removed)."""
        with self._cond:
            self.closed = True
            left = list(self._items)
            self._items.clear()
            for j in left:
                j.state = DONE
            self._cond.notify_all()
            return left


class JobTable:
    """(session, job_id) -> Job, so a resubmitted id re-attaches instead of running twice.

    Finished jobs are remembered for ``keep_s`` seconds; their outcome messages only while the total
    stays under ``max_outcome_bytes`` (older outcomes are dropped first, the id is still remembered)."""

    def __init__(self, keep_s: float = 600.0, max_jobs: int = 10000, max_outcome_bytes: int = 256 << 20):
        self.keep_s = keep_s
        self.max_jobs = max_jobs
        self.max_outcome_bytes = max_outcome_bytes
        self._jobs: collections.OrderedDict[tuple[str, str], Job] = collections.OrderedDict()
        self._done_at: dict[tuple[str, str], float] = {}
        self._outcome_total = 0

    def get(self, session: str, job_id: str) -> Job | None:
        return self._jobs.get((session, job_id))

    def add(self, job: Job) -> None:
        self._jobs[job.key] = job
        self.prune()

    def active(self):
        return [j for j in self._jobs.values() if j.state != DONE]

    def finish(self, job: Job, outcome: list | None) -> None:
        """Remember the terminal message of a job (and release its input buffers)."""
        job.buffers = []
        job.request = {"type": "stylize"}
        if outcome is not None:
            job.outcome = outcome
            job.outcome_bytes = sum(memoryview(getattr(f, "buffer", f)).nbytes for f in outcome)
            self._outcome_total += job.outcome_bytes
        self._done_at[job.key] = time.monotonic()
        self.prune()

    def prune(self) -> None:
        now = time.monotonic()
        for key in list(self._done_at):
            if now - self._done_at[key] > self.keep_s or len(self._jobs) > self.max_jobs:
                self._drop_outcome(self._jobs[key])
                del self._jobs[key], self._done_at[key]
            else:
                break
        for key in list(self._done_at):  # oldest first
            if self._outcome_total <= self.max_outcome_bytes:
                break
            self._drop_outcome(self._jobs[key])

    def _drop_outcome(self, job: Job) -> None:
        if job.outcome is not None:
            self._outcome_total -= job.outcome_bytes
            job.outcome, job.outcome_bytes = None, 0
