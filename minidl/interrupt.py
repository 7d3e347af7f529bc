"""Stopping a long run cleanly: Ctrl-C or SIGTERM hands back the work done so far.

A long loop of the library (``style.style_transfer``, ``training.fit``) turns the ``KeyboardInterrupt`` that
Ctrl-C raises into ``Interrupted``: still a ``KeyboardInterrupt`` (code that does not know it stops as
before), carrying what was finished as ``.result``. A program that saves that work runs inside
``sigterm_as_ctrl_c()``, so that ``kill`` (SIGTERM, e.g. a batch system's time limit) stops it the same way,
catches ``Interrupted``, writes what it can and exits with ``EXIT_STATUS``:

    with sigterm_as_ctrl_c():
        try:
            result = long_run()
        except Interrupted as e:
            save(e.result)
            sys.exit(EXIT_STATUS)
"""
import contextlib
import signal

EXIT_STATUS = 130  # what a shell reports for a program stopped by Ctrl-C (128 + SIGINT's number 2)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, inside ``sigterm_as_ctrl_c``) during a long run: a ``KeyboardInterrupt`` whose
    ``.result`` holds the work finished so far; ``str()`` of it says where the run stopped."""

    def __init__(self, result, message):
        super().__init__(message)
        self.result = result


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does; the previous handler is put
    back afterwards. Call it from the main thread (Python handles signals there only)."""
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
