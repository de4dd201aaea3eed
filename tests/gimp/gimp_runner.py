"""Host side of the GIMP end-to-end tests: the cached chroot, a GIMP profile with the plug-in installed the
way the installer lays it out, and one headless `gimp-console-3.0` batch run."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ENV_SCRIPT = HERE / "gimp_env.sh"
PLUGIN_DIR = ROOT / "plugins" / "gimp" / "sanet-style"
CLIENT_DIR = ROOT / "plugins" / "sanet_client"
BUILD_TIMEOUT_S = 1800
INSIDE = "/e2e"  # where the test's work folder appears inside the chroot


def ensure_chroot() -> Path:
    """Build (first time) or reuse the cached GIMP chroot. Fails loudly; skips only with SANET_SKIP_EDITORS=1."""
    if os.environ.get("SANET_SKIP_EDITORS") == "1":
        pytest.skip("SANET_SKIP_EDITORS=1: the GIMP end-to-end tests are switched off")
    if os.geteuid() != 0:
        pytest.fail("the GIMP end-to-end test needs root (debootstrap/chroot/mount); run it as root in CI "
                    "or set SANET_SKIP_EDITORS=1 to skip the editor tests")
    t0 = time.monotonic()
    proc = subprocess.run(["sh", str(ENV_SCRIPT), "build"], capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        pytest.fail(f"could not build the GIMP chroot with {ENV_SCRIPT} build (exit {proc.returncode}, "
                    f"{time.monotonic() - t0:.0f} s); is a Debian mirror reachable? Set SANET_SKIP_EDITORS=1 "
                    f"to skip the editor tests.\n{proc.stderr[-3000:]}")
    return Path(subprocess.run(["sh", str(ENV_SCRIPT), "path"], capture_output=True, text=True,
                               check=True).stdout.strip())


def install_plugin(profile: Path) -> Path:
    """Lay the plug-in out like the installer: plug-ins/sanet-style/{sanet-style.py, helpers, vendor/sanet_client}
    (the chroot's Python has pyzmq and msgpack from Debian, so no wheels are vendored)."""
    dest = profile / "plug-ins" / "sanet-style"
    if dest.exists():
        shutil.rmtree(dest)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PLUGIN_DIR, dest, ignore=ignore)
    shutil.copytree(CLIENT_DIR, dest / "vendor" / "sanet_client", ignore=ignore)
    (dest / "sanet-style.py").chmod(0o755)
    return dest


def run_gimp(work: Path, spec: dict, binds=(), env=None, timeout=300, out_name="out", gui=False):
    """Run tests/gimp/e2e_batch.py in headless GIMP with ``spec``; returns (results dict, output, seconds).

    ``work`` is bind-mounted at /e2e; paths inside ``spec`` must use /e2e/...; results go to work/out_name.
    ``gui``: the full GIMP (gimp-3.0) on a private Xvfb display instead of gimp-console-3.0.
    ``binds``: extra host folders
    mounted at the same path inside the chroot (e.g. sanetd's runtime dir with the connection file), or
    (host folder, chroot folder) pairs.
    """
    out = work / out_name
    out.mkdir(parents=True, exist_ok=True)
    spec = dict(spec, out=f"{INSIDE}/{out_name}")
    (work / f"spec-{out_name}.json").write_text(json.dumps(spec))
    shutil.copy(HERE / "e2e_batch.py", work / "e2e_batch.py")
    shutil.copy(HERE / "dialog_driver.py", work / "dialog_driver.py")
    profile = work / "profile"
    if not (profile / "plug-ins" / "sanet-style").exists():
        install_plugin(profile)
    (work / "home").mkdir(exist_ok=True)
    inner_env = {"HOME": f"{INSIDE}/home", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                 "GIMP3_DIRECTORY": f"{INSIDE}/profile", "SANET_E2E_SPEC": f"{INSIDE}/spec-{out_name}.json",
                 "PYTHONDONTWRITEBYTECODE": "1"}
    inner_env.update(env or {})
    cmd = ["sh", str(ENV_SCRIPT), "run", "-b", f"{work}:{INSIDE}"]
    for b in binds:
        src, dst = b if isinstance(b, tuple) else (b, b)
        cmd += ["-b", f"{src}:{dst}"]
    batch = f"--batch-interpreter python-fu-eval -b - --quit < {INSIDE}/e2e_batch.py"
    if gui:
        # -displayfd: Xvfb picks a free display (the abstract X socket is shared with the host's network ns)
        script = ("Xvfb -displayfd 5 -screen 0 1280x1400x24 -nolisten tcp 5>/tmp/xdisplay 2>/tmp/xvfb.log & XV=$!; "
                  "for i in $(seq 100); do [ -s /tmp/xdisplay ] && break; sleep 0.1; done; "
                  "export DISPLAY=:$(cat /tmp/xdisplay); "
                  f"gimp-3.0 -df --no-splash {batch}; rc=$?; kill $XV; exit $rc")
    else:
        script = f"gimp-console-3.0 -idf {batch}"
    cmd += ["--", "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in inner_env.items()], "sh", "-c", script]
    t0 = time.monotonic()
    # its own process group: on a hang, GIMP, Xvfb and the plug-ins go too (not only the shell that started them)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"GIMP did not finish within {timeout} s (hang?):\n{(stderr or '')[-3000:]}")
    seconds = time.monotonic() - t0
    output = stdout + stderr
    results_file = out / "results.json"
    if not results_file.exists():
        pytest.fail(f"GIMP exited {proc.returncode} without writing results:\n{output[-4000:]}")
    return json.loads(results_file.read_text()), output, seconds


def read_events(path: Path, case: str) -> list:
    """The plug-in's events (SANET_GIMP_EVENT_LOG, one JSON object a line) of one case of e2e_batch.py."""
    events, current = [], None
    if not path.exists():
        return events
    for line in path.read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "case":
            current = e["name"]
        elif current == case:
            events.append(e)
    return events


def log_times(log: str, pattern: str) -> list:
    """Unix times of the sanetd log lines (asctime, local time) that contain ``pattern``."""
    out = []
    for line in log.splitlines():
        if pattern in line:
            stamp, ms = line[:23].split(",")
            out.append(time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000.0)
    return out
