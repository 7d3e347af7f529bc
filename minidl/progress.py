"""A small text progress bar for long loops (training epochs, downloads, style-transfer steps).

minidl has no tqdm dependency; this is the ~40-line subset it needs. The bar is redrawn in place on a
terminal (carriage return) and printed only at the end when stderr is not a terminal (logs, CI), so logs
stay readable. In a Jupyter notebook (stderr is the kernel's stream) the bar is one output line that is
updated in place (IPython's display with a ``display_id``), so a cell shows one line per bar, not one per
redraw.
"""
import sys
import time


class ProgressBar:
    """``for x in ProgressBar(items, desc="epoch 1"): ...`` or manual ``update(n)`` for byte counts.

    ``postfix`` (a dict or string set by the loop body) is shown after the bar, e.g. the running loss.
    While the loop runs, the bar shows the elapsed time and the time left at the current rate.
    """

    def __init__(self, iterable=None, total=None, desc="", unit="it", file=None, min_interval=0.1, disable=False):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit = desc, unit
        self.file = file if file is not None else sys.stderr
        self.n, self.postfix = 0, ""
        self.start = self._last_draw = time.perf_counter()
        self.min_interval = min_interval
        self.interactive = hasattr(self.file, "isatty") and self.file.isatty()
        self.disable = disable  # count, but print nothing (quiet loops such as a sweep)
        self._display = None  # the notebook output the bar is drawn into, once drawn (see _notebook)
        self.notebook = not disable and _in_notebook(self.file)
        if self.notebook:
            self.interactive = False
            self.min_interval = max(min_interval, 0.5)  # each redraw is a message to the browser

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:  # also on `break` or an exception in the loop body, so the line is ended
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, **values):
        self.postfix = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if (self.interactive or self.notebook) and not self.disable and now - self._last_draw >= self.min_interval:
            self._last_draw = now
            if self.notebook:
                self._show(self._line(now))
                return
            self.file.write("\r" + self._line(now))
            self.file.flush()

    def close(self):
        if self.start is None or self.disable:  # already closed, or silent
            self.start = None
            return
        if self.notebook:
            self._show(self._line(time.perf_counter()))
            self.start = None
            return
        self.file.write(("\r" if self.interactive else "") + self._line(time.perf_counter()) + "\n")
        self.file.flush()
        self.start = None

    def _show(self, line):
        """Draw ``line`` into the bar's notebook output: created on the first draw, replaced afterwards."""
        from IPython.display import display

        bundle = {"text/plain": line}
        if self._display is None:
            self._display = display(bundle, raw=True, display_id=True)
        else:
            self._display.update(bundle, raw=True)

    def _line(self, now):
        elapsed = now - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(self.n / self.total, 1.0)
            filled = int(frac * 30)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {self.n}/{self.total}"
        else:
            bar = f"{self.n}"
        timing = f"{elapsed:.1f}s"
        if self.total and 0 < self.n < self.total and rate > 0:  # still running: what is left at this rate
            timing += f" elapsed, ~{(self.total - self.n) / rate:.0f}s left"
        return f"{self.desc} {bar} {_human(rate)}{self.unit}/s {timing} {self.postfix}".strip()


def _human(x):
    for suffix in ("", "k", "M", "G"):
        if abs(x) < 1000:
            return f"{x:.1f}{suffix}"
        x /= 1000
    return f"{x:.1f}T"


def _in_notebook(file):
    """Whether ``file`` is a Jupyter kernel's output stream (ipykernel's ``OutStream``): then the bar is
    drawn with IPython's display, which a notebook updates in place."""
    return type(file).__module__.split(".")[0] == "ipykernel" and "IPython" in sys.modules
