"""The progress line: steps, steps/s, recent return and ETA, on stderr (rewritten in place on a terminal).

The driver calls :meth:`Progress.update` after every chunk. The first chunks are a single update
each, so the first line appears within seconds of compilation, whatever the budget; after that a line
is printed at most every ``every`` seconds (in place on a terminal, as new lines in a log).
"""
from __future__ import annotations

import math
import sys
import time
from typing import Optional


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "  n/a"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """One status line per update on stderr; ``enabled=False`` prints nothing."""

    def __init__(self, label: str, total: int, enabled: bool = True, stream=None, every: float = 2.0):
        self.label, self.total, self.enabled, self.every = label, total, enabled, every
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last_print = 0.0

    def line(self, done: int, sps: float, ret: Optional[float], note: str = "") -> str:
        pct = 100.0 * done / max(self.total, 1)
        eta = (self.total - done) / sps if sps > 0 else float("nan")
        r = "     n/a" if ret is None or not math.isfinite(ret) else f"{ret:8.2f}"
        return (f"[{self.label}] {done:>12,}/{self.total:,} steps ({pct:5.1f}%) | {sps:>10,.0f} steps/s"
                f" | return {r} | eta {_duration(eta):>6}" + (f" | {note}" if note else ""))

    def update(self, done: int, sps: float, ret: Optional[float], force: bool = False, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.time()
        first = self.last_print == 0.0
        if not (force or first or done >= self.total) and now - self.last_print < (0.2 if self.tty else self.every):
            return
        self.last_print = now
        text = self.line(done, sps, ret, note)
        if self.tty:
            self.stream.write("\r" + text + ("\n" if done >= self.total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.stream.write(("\n" if self.tty else "") + text + "\n")
            self.stream.flush()
