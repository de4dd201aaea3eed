"""The training progress bar on stderr: iteration, losses, it/s and ETA. One redrawn line on a terminal; one line
per minute (and at every checkpoint) otherwise, so a log file stays readable. No torch here."""
from __future__ import annotations

import sys
import time

SHORT = {"loss": "loss", "content": "c", "style": "s", "identity_pixel": "id_px", "identity_feature": "id_f",
         "global": "glob", "local": "loc"}


def duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h:02d}h"
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s:02d}s" if m else f"{s}s"


class Bar:
    def __init__(self, start: int, total: int, stream=None, width: int = 20, period: float = 60.0):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start, self.total, self.width, self.period = start, total, width, period
        self.t0 = time.perf_counter()
        self.rate = None            # iterations per second, smoothed
        self.last_t, self.last_i = self.t0, start
        self.last_draw = 0.0
        self.open = False           # a redrawn line is on the terminal without its newline

    def _rate(self, i: int, now: float) -> float | None:
        if i > self.last_i and now > self.last_t:
            inst = (i - self.last_i) / (now - self.last_t)
            self.rate = inst if self.rate is None else 0.8 * self.rate + 0.2 * inst
            self.last_t, self.last_i = now, i
        return self.rate

    def text(self, i: int, losses: dict[str, float]) -> str:
        rate = self.rate
        frac = i / self.total if self.total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        parts = " ".join(f"{SHORT.get(k, k)} {v:.4g}" for k, v in losses.items())
        speed = f"{rate:.2f} it/s" if rate and rate >= 0.1 else f"{1 / rate:.1f} s/it" if rate else "… it/s"
        eta = duration((self.total - i) / rate) if rate else "?"
        return f"{i}/{self.total} [{bar}] {parts} | {speed} ETA {eta}"

    def update(self, i: int, losses: dict[str, float], force: bool = False) -> None:
        now = time.perf_counter()
        self._rate(i, now)
        if self.tty:
            if force or now - self.last_draw >= 0.25 or i == self.total:
                self.stream.write("\r\033[K" + self.text(i, losses))
                self.stream.flush()
                self.open = True
                self.last_draw = now
        elif force or now - self.last_draw >= self.period or i == self.total or i == self.start + 1:
            self.stream.write(self.text(i, losses) + "\n")
            self.stream.flush()
            self.last_draw = now

    def say(self, text: str) -> None:
        """A message line that does not garble the bar."""
        if self.open:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last_draw = 0.0 if self.tty else self.last_draw

    def close(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0
