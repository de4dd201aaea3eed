"""Runs INSIDE the GIMP chroot, beside a GUI GIMP on Xvfb: answers the filter's windows like an artist.

    python3 dialog_driver.py STEPS_JSON OUT_JSON

STEPS_JSON is a list of steps, done in order:
    {"window": "^Style Transfer$"}      wait for a NEW visible window with that name; later keys go to it
                                        ("optional": true: go on without one after "timeout" seconds)
    {"focus": "Untitled"}               later keys go to the (latest) window of that name, new or not
    {"close": "^Welcome to GIMP"}       press Escape in the windows of that name that are there
    {"click": [x, y], "button": 3}      a mouse click at (x, y) of the current window (3: right button)
    {"click_br": [282, 18]}             a mouse click at (width - 282, height - 18) of the current window
    {"keys_focused": "Down Return"}     key presses to whatever has the focus (a popup menu, a message box)
    {"event": "preview", "count": 2, "where": {...}, "timeout": 120}
                                        wait until the plug-in's event log (SANET_GIMP_EVENT_LOG) holds at least
                                        ``count`` such events since the current case began
    {"keys": "alt+t ctrl+a"}            xdotool key presses in the current window
    {"type": "0.5"}                     xdotool typing
    {"sleep": 1.5}
    {"shot": "/e2e/gui/x.png"}          a PNG of the current window (what the X server shows)
    {"mark": "escape"}                  remember the time (seconds since the epoch) under this name
OUT_JSON gets {"marks": {...}, "error": null | "...", "windows": [...]}; the exit code is 0 when every step
ran, 3 when a wait timed out.
"""
import json
import os
import subprocess
import sys
import time

EVENT_LOG = os.environ.get("SANET_GIMP_EVENT_LOG", "")


def windows(pattern):
    out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", pattern], capture_output=True, text=True,
                         timeout=30).stdout
    return [w for w in out.split() if w.strip()]


def window_names():
    out = subprocess.run("for w in $(xdotool search --onlyvisible --name '.*'); do echo \"$w $(xdotool "
                         "getwindowname $w)\"; done", shell=True, capture_output=True, text=True, timeout=30).stdout
    return out.splitlines()


def events_since_case():
    """The events logged since the latest "case" marker (written by e2e_batch.py before each case)."""
    if not EVENT_LOG or not os.path.exists(EVENT_LOG):
        return []
    events = []
    with open(EVENT_LOG, encoding="utf-8") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "case":
                events = []
            else:
                events.append(e)
    return events


def screenshot(window, path):
    """The window's pixels through GDK (no xwd in the chroot); run in a child so GDK never meets GIMP."""
    code = ("import sys, gi; gi.require_version('Gdk', '3.0'); gi.require_version('GdkX11', '3.0');"
            "from gi.repository import Gdk, GdkX11; Gdk.init([]);"
            "d = Gdk.Display.get_default(); w = GdkX11.X11Window.foreign_new_for_display(d, int(sys.argv[1]));"
            "pb = Gdk.pixbuf_get_from_window(w, 0, 0, w.get_width(), w.get_height());"
            "pb.savev(sys.argv[2], 'png', [], [])")
    subprocess.run([sys.executable, "-c", code, str(window), path], check=True, timeout=60)


def main(steps_path, out_path):
    steps = json.load(open(steps_path))
    seen, current = set(), None
    report = {"marks": {}, "error": None}
    trace = open(os.path.splitext(out_path)[0] + ".trace", "a")
    try:
        for step in steps:
            trace.write(f"{time.time():.3f} {json.dumps(step)}\n")
            trace.flush()
            if "window" in step:
                end = time.monotonic() + step.get("timeout", 120)
                while True:
                    fresh = [w for w in windows(step["window"]) if w not in seen]
                    if fresh:
                        current = fresh[-1]
                        seen.add(current)
                        break
                    if time.monotonic() > end:
                        if step.get("optional"):
                            break
                        raise TimeoutError(f"no new window named {step['window']!r}")
                    time.sleep(0.1)
            elif "focus" in step:   # go back to a window seen before (the latest of that name)
                found = windows(step["focus"])
                if not found:
                    raise TimeoutError(f"no window named {step['focus']!r}")
                current = found[-1]
            elif "close" in step:   # press Escape in every window of that name that is there (e.g. Welcome)
                for w in windows(step["close"]):
                    subprocess.run(["xdotool", "windowfocus", "--sync", w, "key", "--clearmodifiers", "Escape"],
                                   timeout=30)
            elif "click" in step:   # a click at (x, y) of the current window; "button": 3 for a right click
                x, y = step["click"]
                subprocess.run(["xdotool", "mousemove", "--window", current, str(x), str(y), "click",
                                str(step.get("button", 1))], check=True, timeout=30)
            elif "keys_focused" in step:   # keys to whatever has the focus (a menu, a message box)
                subprocess.run(["xdotool", "key", "--clearmodifiers", *step["keys_focused"].split()], check=True,
                               timeout=30)
            elif "click_br" in step:   # a click at (width - dx, height - dy) of the current window
                geometry = subprocess.run(["xdotool", "getwindowgeometry", "--shell", current], capture_output=True,
                                          text=True, timeout=30, check=True).stdout
                size = dict(line.split("=", 1) for line in geometry.split())
                dx, dy = step["click_br"]
                subprocess.run(["xdotool", "mousemove", "--window", current, str(int(size["WIDTH"]) - dx),
                                str(int(size["HEIGHT"]) - dy), "click", "1"], check=True, timeout=30)
            elif "event" in step:
                end = time.monotonic() + step.get("timeout", 180)
                where = step.get("where") or {}
                while True:
                    hits = [e for e in events_since_case() if e.get("event") == step["event"]
                            and all(e.get(k) == v for k, v in where.items())]
                    if len(hits) >= step.get("count", 1):
                        break
                    if time.monotonic() > end:
                        raise TimeoutError(f"fewer than {step.get('count', 1)} {step['event']!r} events "
                                           f"(where {where}); saw {events_since_case()[-5:]}")
                    time.sleep(0.1)
            elif "keys" in step:
                subprocess.run(["xdotool", "windowfocus", "--sync", current, "key", "--clearmodifiers",
                                *step["keys"].split()], check=True, timeout=30)
            elif "type" in step:
                subprocess.run(["xdotool", "windowfocus", "--sync", current, "type", "--delay", "50",
                                step["type"]], check=True, timeout=30)
            elif "sleep" in step:
                time.sleep(step["sleep"])
            elif "shot" in step:
                subprocess.run(["xdotool", "mousemove", "0", "0"], timeout=30)   # no tooltip over the picture
                time.sleep(0.5)
                screenshot(current, step["shot"])
            elif "mark" in step:
                report["marks"][step["mark"]] = time.time()
    except Exception as exc:  # noqa: BLE001  reported to the test
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["windows"] = window_names()
        report["shot"] = os.path.splitext(out_path)[0] + ".failed.png"
        try:
            if current:
                screenshot(current, report["shot"])
        except Exception:  # noqa: BLE001
            pass
        # close what is left open, so that GIMP's procedure call returns and the run ends
        for _ in range(3):
            for w in windows("^Style Transfer$"):
                subprocess.run(["xdotool", "windowfocus", "--sync", w, "key", "--clearmodifiers", "Escape"],
                               timeout=30)
            time.sleep(2)
    with open(out_path, "w") as f:
        json.dump(report, f, indent=1)
    return 3 if report["error"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
