"""Ctrl-C that is never lost: a check notes every interrupt and raises it again where it is safe.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when the signal arrives.
Some of those places swallow it: a ``gc`` callback (Hypothesis keeps one to time collections), a
``__del__``, a weakref callback, an adapter's ``except BaseException``. Python prints "Exception
ignored in ..." and carries on, and a check of 100,000 examples then runs to its end with Ctrl-C
pressed. So while a check runs, the interrupt handlers do what they did before, and an interrupt
they raise is noted here; the drivers ask ``raise_if_pending`` after every run, which raises it
again outside anything that could swallow it. Where Python would print the swallowed interrupt ("Exception
ignored in: <function gc_callback ...>" and a traceback), the latch keeps quiet: the interrupt is
not lost, and Ctrl-C ends a check with one line.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]

# SIGINT, and SIGTERM where the caller (the CLI) turned it into KeyboardInterrupt too. A signal whose
# handler is SIG_DFL or SIG_IGN is left alone: the process dies, or ignores it, as its owner chose.
WATCHED = (signal.SIGINT, signal.SIGTERM)


class InterruptLatch:
    """Entered for a check's duration in the main thread: wraps each Python-level handler of
    ``WATCHED`` so that an interrupt is remembered (``pending``) even where its exception is
    swallowed; restores the handlers on exit. Outside the main thread it does nothing (signals are
    the main thread's)."""

    __slots__ = ("_installed", "_previous", "_unraisable", "pending")

    def __init__(self) -> None:
        self.pending = False
        self._previous: dict[int, Handler] = {}
        self._installed: dict[int, Handler] = {}
        self._unraisable: Callable[[Any], Any] | None = None

    def raise_if_pending(self) -> None:
        """Raise ``KeyboardInterrupt`` if an interrupt arrived since the check began. It stays
        pending: if this raise is swallowed too, the next call raises again."""
        if self.pending:
            raise KeyboardInterrupt

    def __enter__(self) -> InterruptLatch:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in WATCHED:
            previous = signal.getsignal(signum)
            if callable(previous):
                self._previous[signum] = previous
                self._installed[signum] = self._noted(previous)
                signal.signal(signum, self._installed[signum])
        if self._previous:
            self._unraisable = sys.unraisablehook
            sys.unraisablehook = self._quiet
        return self

    def __exit__(self, *exc: object) -> None:
        # What the check installed goes; what someone installed meanwhile (the adapter) stays theirs.
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) is self._installed[signum]:
                signal.signal(signum, previous)
        self._previous.clear()
        self._installed.clear()
        if self._unraisable is not None:
            if sys.unraisablehook == self._quiet:
                sys.unraisablehook = self._unraisable
            self._unraisable = None

    def _quiet(self, unraisable: Any) -> None:
        """An interrupt swallowed where Python cannot raise it is noted already: nothing to print.
        Anything else is the previous hook's to show."""
        if self.pending and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return
        if self._unraisable is not None:
            self._unraisable(unraisable)

    def _noted(self, previous: Handler) -> Handler:
        """``previous``, noting the interrupt it raises: a handler of the caller's that does not raise
        (a graceful shutdown, a count of presses) stays the caller's to decide."""

        def handler(signum: int, frame: FrameType | None) -> Any:
            try:
                return previous(signum, frame)
            except KeyboardInterrupt:
                self.pending = True
                raise

        return handler
