"""Progress of a running study: rows done, markets per second, elapsed time and ETA.

A background thread redraws the line every ``interval`` seconds (on a terminal in place,
elsewhere -- a log file, a notebook, a cluster job's output -- as one new line each time),
so a long batch still shows the clock moving.  The ETA weighs the remaining markets by
the study's ``cost`` (e.g. ``n_buyers``), since a sweep's last, largest grid points take
most of the time.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

__all__ = ["Progress", "format_seconds"]


def format_seconds(sec: float) -> str:
    """``3725.0 -> '1:02:05'``, ``65.0 -> '1:05'``.

    Examples
    --------
    >>> from jaxwalras.experiments.progress import format_seconds
    >>> format_seconds(65.0), format_seconds(3725.0)
    ('1:05', '1:02:05')
    """
    if sec != sec or sec == float("inf"):
        return "?"
    sec = int(round(sec))
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A progress reporter (a no-op when ``enabled`` is False).

    Parameters
    ----------
    label : str
        Printed first (the study name).
    total : int
        Rows to compute in this run.
    total_cost : float
        Their summed cost (for the ETA).
    skipped : int
        Rows already committed (shown, not counted in the rate).
    enabled : bool
    stream : file, optional
        Default ``sys.stderr``.
    interval : float
        Seconds between redraws.
    """

    def __init__(self, label: str, total: int, total_cost: float, *, skipped: int = 0,
                 enabled: bool = True, stream: TextIO | None = None,
                 interval: float = 2.0) -> None:
        self.label, self.total, self.total_cost = label, int(total), float(total_cost)
        self.skipped = int(skipped)
        self.enabled = bool(enabled)
        self.stream = stream if stream is not None else sys.stderr
        self.interval = float(interval)
        self.done = 0
        self.cost_done = 0.0
        self.current = ""
        self.t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._width = 0

    def line(self) -> str:
        """The current progress line."""
        el = time.perf_counter() - self.t0
        with self._lock:
            done, cost_done, cur = self.done, self.cost_done, self.current
        rate = done / el if el > 0 else 0.0
        frac = cost_done / self.total_cost if self.total_cost > 0 else 1.0
        eta = (el * (1 - frac) / frac) if frac > 0 else float("nan")
        if done >= self.total:
            eta = 0.0
        n = 20
        fill = int(round(n * (done / self.total if self.total else 1.0)))
        bar = "#" * fill + "-" * (n - fill)
        all_done = done + self.skipped
        all_total = self.total + self.skipped
        pct = 100.0 * all_done / all_total if all_total else 100.0
        text = (f"{self.label} [{bar}] {all_done}/{all_total} rows ({pct:.0f}%) | "
                f"{rate:.3g} markets/s | elapsed {format_seconds(el)} | "
                f"ETA {format_seconds(eta)}")
        return text + (f" | {cur}" if cur and done < self.total else "")

    def _emit(self, final: bool = False) -> None:
        text = self.line()
        if self._tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._emit()

    def start(self) -> "Progress":
        self.t0 = time.perf_counter()
        if self.enabled:
            self._emit()
            self._thread = threading.Thread(target=self._run, name="jaxwalras-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def working_on(self, text: str) -> None:
        """Say what the current batch is (shown at the end of the line)."""
        with self._lock:
            self.current = text

    def advance(self, rows: int, cost: float) -> None:
        """``rows`` more rows committed, of summed cost ``cost``."""
        with self._lock:
            self.done += int(rows)
            self.cost_done += float(cost)

    def close(self) -> None:
        """Stop the thread and print the final line."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._emit(final=True)

    def __enter__(self) -> "Progress":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
