"""Cancel the plug-in's sanetd jobs at once when GIMP kills the plug-in.

GIMP 3 cancels a plug-in's progress (the Cancel button of the status bar or of its "Progress" window) by
closing the plug-in: it writes GP_QUIT, waits 10 ms and sends SIGKILL (app/plug-in/gimpplugin.c,
gimp_plug_in_close; gimpplugin-progress.c, gimp_plug_in_progress_cancel_callback). The plug-in runs no code
after that, so its job would go on in sanetd until the client's lease runs out (15 s by default).

This small helper process, started in its own session so that the kill does not reach it, reads a pipe from
the plug-in. The plug-in tells it each job before submitting it and when the job ends; when the pipe closes
without "bye", the plug-in has died, and the helper sends sanetd a cancel for every unfinished job, with the
plug-in's session id (jobs belong to a session). Pure Python; tested outside GIMP with a real sanetd.

    python sanet_gimp_watchdog.py [FOLDER...]       FOLDERs: where sanet_client (and pyzmq, msgpack) live
    stdin, one JSON object a line: {"job": ID, "session": S, "connection_file": F or null} | {"end": ID}
                                   | {"bye": true}
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

CANCEL_TIMEOUT_S = 3.0


class Watchdog:
    """The plug-in's side: starts the helper and tells it about jobs. Never raises: without a watchdog the
    daemon still cancels an orphaned job when the lease runs out."""

    def __init__(self, client_paths=(), python=None, log_path=None):
        self._paths = [str(p) for p in client_paths]
        self._python = python or sys.executable
        self._log_path = log_path     # where the helper says what it cancelled (default: nowhere)
        self._proc = None

    def start(self) -> bool:
        if self._proc is not None:
            return True
        if not self._python:
            return False
        kwargs = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = 0x08000000 | 0x00000200   # CREATE_NO_WINDOW, CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True                 # GIMP's kill of the plug-in does not reach it
        env = dict(os.environ)
        env.pop("PYTHONSTARTUP", None)
        log = None
        try:
            log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL
            self._proc = subprocess.Popen([self._python, os.path.abspath(__file__), *self._paths],
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
                                          close_fds=True, env=env, **kwargs)
        except OSError:
            self._proc = None
            return False
        finally:
            if log not in (None, subprocess.DEVNULL):
                log.close()
        return True

    @property
    def pid(self):
        return self._proc.pid if self._proc is not None else None

    def _say(self, message: dict) -> None:
        if self._proc is None:
            return
        try:
            self._proc.stdin.write((json.dumps(message) + "\n").encode("utf-8"))
            self._proc.stdin.flush()
        except (OSError, ValueError):
            self._proc = None

    def job(self, job_id: str, session: str, connection_file=None) -> None:
        """Call BEFORE submitting the job: if the plug-in dies right after, the cancel still goes out."""
        self._say({"job": job_id, "session": session,
                   "connection_file": str(connection_file) if connection_file else None})

    def end(self, job_id: str) -> None:
        self._say({"end": job_id})

    def close(self, timeout: float = 2.0) -> None:
        """The plug-in ends normally: the helper exits without cancelling anything."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.write(b'{"bye": true}\n')
            proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def cancel_jobs(jobs, client_module) -> list:
    """Cancel each {job, session, connection_file}; returns [(job id, state or error text)]."""
    done = []
    for job in jobs:
        try:
            with client_module.Client(job.get("connection_file"), timeout=CANCEL_TIMEOUT_S, retries=2) as c:
                c.session = job["session"]      # the daemon lets a session cancel only its own jobs
                done.append((job["job"], c.cancel(job["job"])))
        except Exception as exc:  # noqa: BLE001  the daemon's lease is the fallback
            done.append((job["job"], f"{type(exc).__name__}: {exc}"))
    return done


def main(argv) -> int:
    for folder in reversed(argv[1:]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    jobs = {}
    stdin = sys.stdin.buffer
    for line in stdin:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("bye"):
            return 0
        if "job" in message and "session" in message:
            jobs[message["job"]] = message
        elif "end" in message:
            jobs.pop(message["end"], None)
    # end of input without "bye": the plug-in is gone (killed by GIMP's cancel, or crashed)
    if jobs:
        import time
        import sanet_client
        for job_id, state in cancel_jobs(jobs.values(), sanet_client):
            now = time.time()
            print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))} (t={now:.3f}) sanet-style watchdog: "
                  f"the plug-in is gone; cancel {job_id}: {state}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
