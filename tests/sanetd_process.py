"""Start a REAL sanetd process on CPU for tests (daemon, client, GIMP and Krita tests use it).

    with running_sanetd(tmp_path, synthetic_weights, "--max-queue", "4") as d:
        client = Client(connection_file=d.connection_file)
        ...
        subprocess.run([...], env=d.env)   # editors/scripts find this daemon through d.env

On entry it waits until the daemon answers ``hello``; on exit it stops it (SIGTERM, then SIGKILL after
10 s) and asserts that it exited cleanly and left no connection file or socket behind — unless the
test killed it itself.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHONPATH = [str(ROOT), str(ROOT / "daemon"), str(ROOT / "plugins")]
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0


def sanetd_env(runtime_dir: Path, state_dir: Path, base: dict | None = None,
               connection_file: Path | None = None) -> dict:
    """An environment that points sanetd and its clients at private folders (never the user's)."""
    env = dict(os.environ if base is None else base)
    env["SANETD_RUNTIME_DIR"] = str(runtime_dir)
    env["SANETD_CONNECTION_FILE"] = str(connection_file or runtime_dir / "sanetd.json")
    env["SANETD_DATA_DIR"] = str(state_dir / "data")
    env["SANETD_LOG_DIR"] = str(state_dir / "log")
    env["SANETD_CONFIG"] = str(state_dir / "sanetd.conf")  # absent unless a test writes it
    env["PYTHONPATH"] = os.pathsep.join(PYTHONPATH + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class SanetdProcess:
    proc: subprocess.Popen
    runtime_dir: Path
    connection_file: Path
    env: dict
    output: Path                      # the daemon's stdout+stderr
    endpoint: str = ""
    killed_by_test: bool = field(default=False)

    def log_text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def socket_path(self) -> Path | None:
        return Path(self.endpoint[len("ipc://"):]) if self.endpoint.startswith("ipc://") else None

    def kill(self, sig=signal.SIGKILL) -> None:
        """Send a signal as a test step (e.g. SIGKILL mid-job); the exit checks are then skipped."""
        self.killed_by_test = True
        self.proc.send_signal(sig)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; SIGKILL if it overstays. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"sanetd did not exit within {timeout} s of SIGTERM\n{self.log_text()[-4000:]}")
        return self.proc.returncode


def wait_ready(d: SanetdProcess, timeout: float = START_TIMEOUT_S) -> None:
    from sanet_client import Client, SanetClientError
    from sanet_client.connect import read_connection_file
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if d.proc.poll() is not None:
            raise AssertionError(f"sanetd exited with {d.proc.returncode} during start-up:\n{d.log_text()[-4000:]}")
        if d.connection_file.exists():
            try:
                with Client(connection_file=d.connection_file, timeout=2.0, retries=1) as c:
                    c.hello()
                d.endpoint = read_connection_file(d.connection_file).endpoint
                return
            except (SanetClientError, ValueError, OSError):
                pass
        time.sleep(0.1)
    d.proc.kill()
    raise AssertionError(f"sanetd did not answer hello within {timeout} s:\n{d.log_text()[-4000:]}")


def start_sanetd(tmp_path: Path, weights_dir, *extra_args, endpoint: str | None = None,
                 runtime_dir: Path | None = None, env: dict | None = None, device: str = "cpu",
                 connection_file: Path | None = None, launcher: list[str] | None = None) -> SanetdProcess:
    """connection_file: SANETD_CONNECTION_FILE (default <runtime_dir>/sanetd.json); launcher: what runs sanetd
    instead of `python -m sanetd` (e.g. [python, tests/sanetd_oom.py])."""
    tmp_path = Path(tmp_path)
    runtime_dir = Path(runtime_dir) if runtime_dir is not None else tmp_path / "run"
    connection_file = Path(connection_file) if connection_file is not None else runtime_dir / "sanetd.json"
    state = tmp_path / "state"
    state.mkdir(parents=True, exist_ok=True)
    full_env = sanetd_env(runtime_dir, state, env, connection_file)
    args = (launcher or [sys.executable, "-m", "sanetd"]) + ["--device", device, "--weights", str(weights_dir),
                                                             "--log-level", "debug"]
    if endpoint:
        args += ["--endpoint", endpoint]
    args += [str(a) for a in extra_args]
    n = len(list(state.glob("sanetd-*.out")))
    output = state / f"sanetd-{n}.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(args, env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=str(tmp_path),
                                start_new_session=True)
    return SanetdProcess(proc, runtime_dir, connection_file, full_env, output)


@contextlib.contextmanager
def running_sanetd(tmp_path, weights_dir, *extra_args, endpoint: str | None = None,
                   runtime_dir: Path | None = None, env: dict | None = None, connection_file: Path | None = None,
                   launcher: list[str] | None = None):
    d = start_sanetd(tmp_path, weights_dir, *extra_args, endpoint=endpoint, runtime_dir=runtime_dir, env=env,
                     connection_file=connection_file, launcher=launcher)
    try:
        wait_ready(d)
        yield d
    finally:
        if d.proc.poll() is None:
            code = d.stop()
            if not d.killed_by_test:
                assert code == 0, f"sanetd exited with {code}:\n{d.log_text()[-4000:]}"
                assert not d.connection_file.exists(), "sanetd left its connection file behind"
                sock = d.socket_path()
                assert sock is None or not sock.exists(), f"sanetd left its socket {sock} behind"
                assert "Traceback" not in d.log_text(), f"sanetd logged a traceback:\n{d.log_text()[-4000:]}"
