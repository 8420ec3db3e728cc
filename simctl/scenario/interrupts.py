"""SIGINT and SIGTERM as exceptions, so that a run is rolled back instead of cut short.

Python turns SIGINT into KeyboardInterrupt but, by default, SIGTERM just ends the process:
``finally`` blocks never run and faults would outlive the run. Inside
``signals_as_exceptions()`` both signals raise ``Interrupted`` (a KeyboardInterrupt, so
code that handles Ctrl-C handles both) in the main thread, between two steps of
whatever it is doing. Inside ``deferred()`` (rollback, residue check) a signal is only
recorded; ``pending()`` tells the caller afterwards, so a second Ctrl-C cannot interrupt
the clean-up of the first. Once a block has raised ``Interrupted``, further signals are
only recorded until the outermost block ends, and ``hold()`` keeps it so until the
process exits (``simctl verify`` after an interruption exits 130 or 143 whatever
follows).

Exit codes: 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run received ``signum``; ``result`` is the (rolled back) run, when there was one."""

    def __init__(self, signum: int, result: Any = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.result = result

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


_defer_depth = 0
_pending: list[int] = []
_depth = 0  # nesting of signals_as_exceptions
_raised = False  # one Interrupted raised in the current outermost block: the rest wait
_held = False  # after hold(): signals are only recorded, until the process ends


def _handler(signum: int, frame: Any) -> None:
    global _raised
    if _defer_depth or _raised or _held:
        _pending.append(signum)
        return
    _raised = True
    raise Interrupted(signum)


def _record(signum: int, frame: Any) -> None:
    _pending.append(signum)


def hold() -> None:
    """From now on SIGINT and SIGTERM are only recorded (``pending``), also after the
    blocks end: for a process that was interrupted and is cleaning up to exit, so that
    an impatient second Ctrl-C can neither cut the clean-up short nor turn the exit
    status into an uncaught KeyboardInterrupt."""
    global _held
    _held = True
    if in_main_thread():
        for s in HANDLED:
            signal.signal(s, _record)


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` inside the block (main thread only; a
    no-op elsewhere, where Python cannot receive signals anyway). Nests; the previous
    handlers are restored on exit."""
    global _depth, _raised
    if not in_main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, _handler)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _raised = False  # the next block may be interrupted again
        for s, handler in previous.items():
            if _held:
                handler = _record
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


@contextmanager
def deferred() -> Iterator[None]:
    """Signals received inside the block are recorded, not raised (see ``pending``)."""
    global _defer_depth
    _defer_depth += 1
    try:
        yield
    finally:
        _defer_depth -= 1


def pending() -> int | None:
    """The first signal deferred since the last call (and forget them all), or None."""
    if not _pending:
        return None
    first = _pending[0]
    _pending.clear()
    return first


def exit_code_for(exc: BaseException) -> int:
    """130 for Ctrl-C (a plain KeyboardInterrupt), 128 + N for ``Interrupted``."""
    if isinstance(exc, Interrupted):
        return exc.exit_code
    return 128 + signal.SIGINT
