"""The one shape of every checker's answer: ``explore`` (the model), ``check`` and ``prove`` (an
adapter) each give their own detailed result, and each result's ``outcome`` is a ``Verdict``.

So code that gates on any of them reads one thing: whether every invariant held, each invariant's
status, and the counterexample's steps when one failed.
"""

from __future__ import annotations

import attrs

from ._steps import Trace


@attrs.frozen(kw_only=True)
class Verdict:
    """``holds``: True when every invariant checked held, False when one failed, None when there is
    no verdict (interrupted, or a search cut short by its limit). ``checks``: (invariant, status),
    status ``pass``, ``fail``, ``not-run`` or ``interrupted``. ``counterexample``: the failing steps."""

    holds: bool | None
    checks: tuple[tuple[str, str], ...] = ()
    counterexample: Trace | None = None

    @property
    def failed(self) -> tuple[str, ...]:
        """The checks that failed, in order."""
        return tuple(name for name, status in self.checks if status == "fail")

    @property
    def word(self) -> str:
        """``pass``, ``fail``, or ``none`` (no verdict)."""
        return "none" if self.holds is None else "pass" if self.holds else "fail"
