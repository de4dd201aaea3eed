"""The Krita docker's responsiveness as an artist feels it, measured in a real Krita under Xvfb by the GUI test's
probe (tests/krita/test_krita_gui.py): preview time, Cancel, a superseded preview, the heartbeat.

    .venv/bin/python bench/bench_krita_docker.py            # runs the GUI test once and prints the figures

Every figure comes from one run of the probe (tests/krita/gui_probe), on the synthetic weights, with sanetd on CPU.
"""
import json
import subprocess
import sys
import tempfile
import time
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    base = Path(tempfile.mkdtemp(prefix="bench-krita-"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(base),
           str(ROOT / "tests" / "krita" / "test_krita_gui.py")]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    probe = next(base.glob("*/out/probe.json"), None)
    if probe is None:
        sys.exit("the GUI test wrote no probe.json:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
    steps = {s["name"]: s for s in json.loads(probe.read_text())["steps"]}
    shot, cancel, killed, rec = steps["screenshot"], steps["cancelled"], steps["daemon_killed"], steps["recovered"]
    rows = [
        ("live preview of a 480x320 layer (three strengths), s", ", ".join("%.2f" % v for v in shot["preview_seconds"])),
        ("superseded 512x512 preview: outcome in sanetd", steps["superseded"]["old_outcome"]),
        ("Cancel of a 768x768 full run: docker free after, ms", "%.1f" % cancel["freed_ms"]),
        ("Cancel of a 768x768 full run: sanetd confirmed after, s", "%.2f" % cancel["acknowledged_s"]),
        ("sanetd SIGKILLed: 'connected' gone after, s", "%.2f" % killed["left_connected_s"]),
        ("sanetd started again: docker connected after, s", "%.2f" % rec["reconnect_s"]),
        ("768x768 full run: longest event-loop stall, ms", "%.1f" % rec["max_event_loop_gap_ms"]),
        ("768x768 full run, s", "%.2f" % rec["seconds"]),
    ]
    print("GUI test %s in %.0f s; %s; load average %.1f %.1f %.1f" % (
        "passed" if proc.returncode == 0 else "FAILED", time.monotonic() - started, time.strftime("%F"),
        *os.getloadavg()))
    print("| what | figure |\n|---|---|")
    for what, fig in rows:
        print("| %s | %s |" % (what, fig))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
