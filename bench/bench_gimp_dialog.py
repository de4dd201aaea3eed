"""The GIMP dialog's responsiveness as an artist feels it, measured in a real GIMP 3.0.4 under Xvfb by the GUI
tests (tests/gimp/test_gimp_e2e.py and test_gimp_daemon_state.py) through the plug-in's event log: preview times,
a strength change to the new picture, Cancel of a 1920x1080 run from the dialog and from GIMP's status bar, Start.

    .venv/bin/python bench/bench_gimp_dialog.py            # runs the GUI tests once and prints the figures

Needs what the tests need (root, the cached GIMP chroot). Synthetic weights, sanetd on CPU; the preview's debounce
(300 ms after the last change) is part of "strength change → picture".
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "gimp"))

from gimp_runner import log_times, read_events  # noqa: E402

TESTS = ["tests/gimp/test_gimp_e2e.py", "tests/gimp/test_gimp_daemon_state.py"]
SELECT = "gimp_gui or cancel or preview or daemon or recovers or launches"


def main():
    base = Path(tempfile.mkdtemp(prefix="bench-gimp-"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--basetemp", str(base),
           "-k", SELECT, *[str(ROOT / t) for t in TESTS]]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    gui = next(base.glob("gimp-e2e*/gui"), None)
    nod = next(base.glob("gimp-no-daemon*/out"), None)
    if gui is None or not (gui / "events.jsonl").exists():
        sys.exit("the GUI tests wrote no event log:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
    results = json.loads((gui / "results.json").read_text())
    events = gui / "events.jsonl"
    log = (next(base.glob("gui-daemon*/state/sanetd-*.out")).read_text())

    previews = [e for e in read_events(events, "preview") if e["event"] == "preview"]
    strength = results["preview"]["driver"]["marks"]["strength"]
    after = [e for e in previews if e["time"] > strength]
    rows = [("live preview of a 480x360 layer, s (request → picture)", ", ".join("%.2f" % e["seconds"] for e in previews)),
            ("Strength changed → new picture, s (debounce 0.3 s included)", "%.2f" % (after[0]["time"] - strength))]
    full_hd = [e for e in read_events(events, "progress_cancel") if e["event"] == "preview"]
    if full_hd:
        rows.append(("first preview of a 1920x1080 layer (512x288), s", "%.2f" % full_hd[0]["seconds"]))
    pc = read_events(events, "progress_cancel")
    escape = results["progress_cancel"]["driver"]["marks"]["escape"]
    job = [e for e in pc if e["event"] == "run-started"][0]["job_id"]
    back = [e for e in pc if e["event"] == "run-cancelled"][0]["time"]
    ended = log_times(log, f"job {job} cancelled")
    rows += [("dialog Cancel of a 1920x1080 run: dialog back after, s", "%.2f" % (back - escape)),
             ("dialog Cancel of a 1920x1080 run: sanetd job ended after, s", "%.2f" % (ended[0] - escape))]
    kc = read_events(events, "kill_cancel")
    click = results["kill_cancel"]["driver"]["marks"]["cancel"]
    job = [e for e in kc if e["event"] == "run-started"][0]["job_id"]
    wlog = (gui.parent / "profile" / "sanet-style" / "watchdog.log").read_text()
    acked = [float(line.split("(t=")[1].split(")")[0]) for line in wlog.splitlines() if job in line]
    ended = log_times(log, f"job {job} cancelled")
    rows += [("status-bar Cancel (GIMP kills the plug-in): sanetd acknowledged the watchdog's cancel after, s",
              "%.2f" % (acked[0] - click)),
             ("status-bar Cancel: sanetd job ended after, s", "%.2f" % (ended[0] - click))]
    if nod is not None:
        st = read_events(nod / "events.jsonl", "start")
        pressed = [e for e in st if e["event"] == "start-pressed"][0]["time"]
        running = [e for e in st if e["event"] == "daemon" and e["state"] == "running" and e["at"] > pressed]
        preview = [e for e in st if e["event"] == "preview" and e["time"] > pressed]
        if running and preview:
            rows += [("Start pressed → sanetd ready (dialog says so), s", "%.2f" % (running[0]["at"] - pressed)),
                     ("Start pressed → first preview, s", "%.2f" % (preview[0]["time"] - pressed))]
    print("GUI tests %s in %.0f s; %s; load average %.1f %.1f %.1f" % (
        "passed" if proc.returncode == 0 else "FAILED", time.monotonic() - started, time.strftime("%F"),
        *os.getloadavg()))
    print("| what | figure |\n|---|---|")
    for what, fig in rows:
        print("| %s | %s |" % (what, fig))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
