"""The progress bar in a Jupyter notebook: one output updated in place, nothing written line after line."""
import sys
import types

import pytest

from minidl import progress
from minidl.progress import ProgressBar


def kernel_stream():
    """A stand-in for ipykernel's OutStream: what the bar sees as sys.stderr inside a notebook."""
    cls = type("OutStream", (), {"__module__": "ipykernel.iostream", "text": "",
                                 "write": lambda self, s: setattr(self, "text", self.text + s),
                                 "flush": lambda self: None, "isatty": lambda self: False})
    return cls()


@pytest.fixture
def displays(monkeypatch):
    """Record what the bar hands to IPython's display: [(kind, text)], kind "new" or "update"."""
    pytest.importorskip("IPython")
    import IPython.display

    shown = []

    class Handle:
        def update(self, bundle, raw):
            shown.append(("update", bundle["text/plain"]))

    def display(bundle, raw, display_id):
        assert raw and display_id is True
        shown.append(("new", bundle["text/plain"]))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    return shown


def test_in_a_notebook_the_bar_is_one_display_updated_in_place(displays):
    stream = kernel_stream()
    bar = ProgressBar(total=5, desc="epoch 1/5", file=stream, min_interval=0)
    for _ in range(4):
        bar._last_draw -= 1.0  # as if a second went by: time to redraw
        bar.update(1)
    bar.update(1)
    bar.close()
    assert stream.text == ""  # nothing on the stream itself
    assert [kind for kind, _ in displays] == ["new", "update", "update", "update", "update"]
    assert "1/5" in displays[0][1] and "4/5" in displays[3][1]
    assert displays[-1][1].startswith("epoch 1/5 [") and "5/5" in displays[-1][1] and "left" not in displays[-1][1]
    assert all("\r" not in text and "\n" not in text for _, text in displays)


def test_the_notebook_redraws_at_most_twice_a_second(displays):
    bar = ProgressBar(total=1000, file=kernel_stream(), min_interval=0)
    for _ in range(1000):
        bar.update(1)  # a thousand quick steps: far less than a second
    bar.close()
    assert len(displays) <= 3  # the first draw (maybe), at most one more, and the final line


def test_a_silent_bar_displays_nothing_in_a_notebook(displays):
    for _ in ProgressBar(range(3), file=kernel_stream(), disable=True):
        pass
    assert displays == []


def test_outside_a_kernel_nothing_is_displayed(displays):
    class Log:
        text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    log = Log()
    for _ in ProgressBar(range(3), desc="download", file=log):
        pass
    assert displays == [] and log.text.count("\n") == 1 and "3/3" in log.text
