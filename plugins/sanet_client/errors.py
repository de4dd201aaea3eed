"""Exceptions raised by the client. Each message tells an artist what happened and what to do."""
from __future__ import annotations


class SanetClientError(Exception):
    """Base class; ``str(e)`` is a message for the user."""


class DaemonNotRunning(SanetClientError):
    """No connection file, or the daemon does not answer (after retries)."""


class NotAdmitted(SanetClientError):
    """A shared (networked) sanetd refused this connection file: the client was revoked or never invited there, or
    the file holds another server's key. Starting a daemon does not help; a new connection file does."""


class Busy(SanetClientError):
    """The daemon's queue is full; try again later."""


class ProtocolMismatch(SanetClientError):
    """The daemon and this client speak different protocol versions."""


class JobFailed(SanetClientError):
    """The daemon refused or could not finish a job. ``code`` and ``field`` say why."""

    def __init__(self, message: str, code: str = "internal", field: str | None = None, job_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.job_id = job_id


class JobCancelled(SanetClientError):
    """The job was cancelled (by this client, or because the daemon is shutting down)."""
