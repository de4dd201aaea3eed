"""Jobs, the fair queue in front of the workers, and the table that makes job ids idempotent.

The queue serves clients round-robin: each client (one invited connection file, or everybody on this computer)
has its own FIFO, and the workers take one job from each client in turn, so one artist's 20 jobs do not starve
another's one. Limits: ``max_waiting`` jobs in all (busy, field ``max_queue``) and a per-client limit on waiting
jobs (busy, field ``max_queued``). Several workers (one per device) take jobs from the same queue.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

QUEUED, RUNNING, DONE = "queued", "running", "done"


@dataclass
class Job:
    client: object              # the ClientInfo that submitted it (server.py): name, signing key, ...
    session: str
    job_id: str
    request: dict               # validated stylize request (PixelRefs)
    buffers: list               # the message's buffers (zmq frame views), kept alive with the job
    codec: str | None = None    # compression negotiated by the session (results are sent with it)
    state: str = QUEUED
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_code: str = "cancelled"   # or "shutting_down" / "lease_expired" (error code sent on cancel)
    submitted: float = field(default_factory=time.monotonic)
    outcome: list | None = None      # the signed terminal message (frames), kept for a resubmission
    outcome_bytes: int = 0
    skipped: str | None = None       # why the engine was not needed (e.g. an empty selection)
    layer_ref: str | None = None     # the layer's digest (sanetd.layers): result.info.layer_ref, the engine's key
    sequence: int = 0                # the n-th job started by this daemon (1-based), set when a worker takes it
    worker: int | None = None        # index of the worker (device) running it

    @property
    def client_name(self) -> str:
        return self.client.name

    @property
    def owner(self) -> tuple[str, str]:
        """(client name, session id): where the job's events go."""
        return self.client.name, self.session

    @property
    def key(self) -> tuple[str, str, str]:
        return self.client.name, self.session, self.job_id


class QueueFull(Exception):
    """try_put refused the job: ``field`` names the limit (max_queue or max_queued), ``limit`` its value."""

    def __init__(self, field: str, limit: int, waiting: int):
        super().__init__(field)
        self.field, self.limit, self.waiting = field, limit, waiting


class JobQueue:
    """Per-client FIFOs served round-robin, with hard limits; the workers block on it."""

    def __init__(self, max_waiting: int, workers: int = 1):
        self.max_waiting = max_waiting
        self.workers = max(1, workers)
        self._by_client: dict[str, collections.deque[Job]] = {}
        self._turns: collections.deque[str] = collections.deque()   # clients with waiting jobs, next first
        self._cond = threading.Condition()
        self._running: dict[int, Job] = {}   # worker index -> job
        self._started = 0
        self.closed = False

    # ------------------------------------------------------------ intake

    def try_put(self, job: Job, client_limit: int | None = None) -> int:
        """Queue the job and return its position; QueueFull when a limit is reached.

        ``client_limit``: how many jobs this job's client may have waiting (None: only the total limit)."""
        with self._cond:
            total = sum(len(q) for q in self._by_client.values())
            idle = len(self._running) < self.workers and total == 0   # runs at once even with a limit of 0
            mine = len(self._by_client.get(job.client_name, ()))
            if not idle:
                if client_limit is not None and mine >= client_limit:
                    raise QueueFull("max_queued", client_limit, mine)
                if total >= self.max_waiting:
                    raise QueueFull("max_queue", self.max_waiting, total)
            q = self._by_client.get(job.client_name)
            if q is None:
                q = self._by_client[job.client_name] = collections.deque()
            if not q:
                self._turns.append(job.client_name)
            q.append(job)
            self._cond.notify()
            return self._position_locked(job)

    def get(self, worker: int, timeout: float | None) -> Job | None:
        """The next job in round-robin order (now marked running on ``worker``), or None after ``timeout``
        seconds or when closed."""
        with self._cond:
            end = None if timeout is None else time.monotonic() + timeout
            while not self._turns and not self.closed:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            if not self._turns:
                return None
            client = self._turns.popleft()
            q = self._by_client[client]
            job = q.popleft()
            if q:
                self._turns.append(client)     # its next job waits for everybody else's turn
            else:
                del self._by_client[client]
            job.state = RUNNING
            job.worker = worker
            self._started += 1
            job.sequence = self._started
            self._running[worker] = job
            return job

    def finished(self, job: Job) -> None:
        with self._cond:
            job.state = DONE
            if job.worker is not None and self._running.get(job.worker) is job:
                del self._running[job.worker]

    def remove(self, job: Job) -> bool:
        """Take a waiting job out of the queue; False if a worker already took it."""
        with self._cond:
            q = self._by_client.get(job.client_name)
            if q is None:
                return False
            try:
                q.remove(job)
            except ValueError:
                return False
            if not q:
                del self._by_client[job.client_name]
                self._turns.remove(job.client_name)
            job.state = DONE
            return True

    # ------------------------------------------------------------ views

    def _order_locked(self) -> list[Job]:
        """The waiting jobs in the order the workers will take them."""
        queues = {c: collections.deque(q) for c, q in self._by_client.items()}
        turns = collections.deque(self._turns)
        out = []
        while turns:
            c = turns.popleft()
            out.append(queues[c].popleft())
            if queues[c]:
                turns.append(c)
        return out

    def _position_locked(self, job: Job) -> int:
        if job.state != QUEUED:
            return 0
        try:
            ahead = self._order_locked().index(job)
        except ValueError:
            return 0
        # jobs that must start (or finish) before this one: the ones ahead of it and the running ones, less
        # the devices that will be free for it. 0 = it starts as soon as a device is free now
        return max(0, ahead + len(self._running) - (self.workers - 1))

    def position(self, job: Job) -> int:
        with self._cond:
            return self._position_locked(job)

    def waiting(self) -> list[Job]:
        """Waiting jobs in serving order."""
        with self._cond:
            return self._order_locked()

    def running(self) -> list[Job]:
        with self._cond:
            return list(self._running.values())

    def counts(self) -> dict[str, dict[str, int]]:
        """{client name: {"queued": n, "running": m}} for every client with waiting or running jobs."""
        with self._cond:
            out: dict[str, dict[str, int]] = {}
            for c, q in self._by_client.items():
                out.setdefault(c, {"queued": 0, "running": 0})["queued"] = len(q)
            for j in self._running.values():
                out.setdefault(j.client_name, {"queued": 0, "running": 0})["running"] += 1
            return out

    def close(self) -> list[Job]:
        """Stop intake; returns the jobs that were still waiting (now removed)."""
        with self._cond:
            self.closed = True
            left = self._order_locked()
            self._by_client.clear()
            self._turns.clear()
            for j in left:
                j.state = DONE
            self._cond.notify_all()
            return left


class JobTable:
    """(client, session, job_id) -> Job, so a resubmitted id re-attaches instead of running twice.

    Finished jobs are remembered for ``keep_s`` seconds; their outcome messages only while the total
    stays under ``max_outcome_bytes`` (older outcomes are dropped first, the id is still remembered)."""

    def __init__(self, keep_s: float = 600.0, max_jobs: int = 10000, max_outcome_bytes: int = 256 << 20):
        self.keep_s = keep_s
        self.max_jobs = max_jobs
        self.max_outcome_bytes = max_outcome_bytes
        self._jobs: collections.OrderedDict[tuple[str, str, str], Job] = collections.OrderedDict()
        self._done_at: dict[tuple[str, str, str], float] = {}
        self._outcome_total = 0

    def get(self, client: str, session: str, job_id: str) -> Job | None:
        return self._jobs.get((client, session, job_id))

    def add(self, job: Job) -> None:
        self._jobs[job.key] = job
        self.prune()

    def active(self):
        return [j for j in self._jobs.values() if j.state != DONE]

    def finish(self, job: Job, outcome: list | None) -> None:
        """Remember the terminal message of a job (and release its input buffers)."""
        job.buffers = []
        job.request = {"type": "stylize"}
        if outcome is not None and job.key in self._jobs:
            job.outcome = outcome
            job.outcome_bytes = sum(memoryview(getattr(f, "buffer", f)).nbytes for f in outcome)
            self._outcome_total += job.outcome_bytes
        if job.key in self._jobs:
            self._done_at[job.key] = time.monotonic()
        self.prune()

    def forget_client(self, client: str) -> None:
        """Drop everything known about a client's jobs (it was revoked)."""
        for key in [k for k in self._jobs if k[0] == client]:
            self._drop_outcome(self._jobs.pop(key))
            self._done_at.pop(key, None)

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
