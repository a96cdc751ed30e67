"""What a run is made of, and the replay strings that name a run exactly.

Every run works on the same small universe: three keys that collide, two of them in the DB at the
start and one never written (``INITIAL``). A run is a list of operations, ``(READ|WRITE, key)``, and
moves of the virtual clock, ``("t", seconds)``; a concurrent run adds the operations in flight and the
scheduler's choices. Its replay string is all of that as text, so ``--replay`` reruns it exactly:

* ``seq/r:k1,t:301,w:k1@2,r:k1`` — operations one at a time, the clock moved on 301 s after the
  first, the write on app instance 2 (no ``@``: instance 1);
* ``con/r:k1|r:k1,w:k1@2/0110`` — a sequential prefix, the operations in flight, and the scheduler's
  choices (indices of the threads working for them, one digit each, or dot-separated past 9);
* ``con/|r:k1,w:k1/0.t11.1.1.0`` — the same with the clock moved on 11 s inside the race, before
  the second choice (``t`` tokens are the schedule's clock jumps; a string with one is dot-separated);
* ``seq/r:k1,w:k1!2b,r:k1`` — with faults (``--faults``): the write's second call to the stores
  fails before taking effect (``!2l``: it takes effect and its reply is lost; ``!2b+``: it and every
  later call of the write fail, while the run's budget of faults lasts).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs

from ..._argtypes import MAX_INSTANCES
from ...errors import InvalidArgument
from ...model._participants import READ, WRITE

KEYS = ("k1", "k2", "k3")
MAX_OPS = 6  # operations in flight together: past this, schedules outgrow any useful budget
# k3 starts absent from the DB: reads of a key never written are part of every run.
INITIAL = {"k1": "k1.v0", "k2": "k2.v0"}


class Op(NamedTuple):
    """One operation of a run: a read or a write (``kind``) of a key (``arg``) on an app instance
    (from 0), or the clock moving on (kind ``"t"``, ``arg`` seconds). A tuple, so a replay parsed
    from text and one built in code compare equal."""

    kind: str
    arg: Any
    instance: int = 0


TICK = "t"  # the kind of an Op that moves the clock on
# How far the drivers move the clock: just past the TTLs code usually sets (30 s, 5 min, 1 day).
TICKS = (31, 301, 86401)
MAX_TICK = 10 * 365 * 86400
# Jumps of the clock inside one concurrent run, at most: one lets a lock or a lease run out under its
# holder, a second lets what it guards expire as well.
RACE_JUMPS = 2
# ... each just past an expiry at most this many seconds away: a lock's or a lease's timeout, a short
# TTL. A pause longer than that inside one operation is an outage, not a race.
RACE_HORIZON = 60


@attrs.frozen
class Fault:
    """A call that fails (``--faults``): the ``call``-th call (from 1) an operation makes to the stores
    fails, before taking effect, or having taken it with its reply lost (``took_effect``); with
    ``outage``, every call of the operation from that one on fails too, while the run's budget lasts
    (a store down for a while: what a retry loop meets)."""

    call: int
    took_effect: bool
    outage: bool = False

    def token(self) -> str:
        return f"!{self.call}{'l' if self.took_effect else 'b'}{'+' if self.outage else ''}"


# The faults of a run: the n-th operation of the run (from 0, clock moves not counted) -> its fault.
Faults = dict[int, Fault]
MAX_FAULT_CALL = 99  # a replay's fault names a call at most this far into its operation


def _ops(ops: tuple[Op, ...] | list[Op], faults: Faults | None = None, first: int = 0) -> str:
    tokens, n = [], first
    for kind, arg, instance in ops:
        token = f"{kind}:{arg}" + (f"@{instance + 1}" if instance else "")
        if kind != TICK:
            fault = faults.get(n) if faults else None
            token += fault.token() if fault is not None else ""
            n += 1
        tokens.append(token)
    return ",".join(tokens)


def replay_of_sequence(ops: list[Op], faults: Faults | None = None) -> str:
    return f"seq/{_ops(ops, faults)}"


@attrs.frozen(kw_only=True)
class ConcurrentScenario:
    """A sequential prefix (to set the stage: a filled entry, a written key), then operations in flight."""

    prefix: tuple[Op, ...] = ()
    ops: tuple[Op, ...] = ()
    # Calls that fail (``--faults``): operation number (prefix first, clock moves not counted) -> fault.
    faults: tuple[tuple[int, Fault], ...] = ()

    @property
    def fault_plan(self) -> Faults:
        return dict(self.faults)

    @property
    def operations(self) -> int:
        return sum(kind != TICK for kind, _, _ in self.prefix) + len(self.ops)

    @property
    def instances(self) -> int:
        """App instances the scenario needs."""
        return max((instance for _, _, instance in (*self.prefix, *self.ops)), default=0) + 1

    def describe(self) -> str:
        """The scenario as a report names it: its prefix, then its operations in flight, ``|`` apart
        (``after r:k1: r:k1 | w:k1@2``), faults marked as a replay string marks them."""
        plan, before = self.fault_plan, sum(kind != TICK for kind, _, _ in self.prefix)
        flight = _ops(self.ops, plan, before).replace(",", " | ")
        return f"after {_ops(self.prefix, plan).replace(',', ', ')}: {flight}" if self.prefix else flight

    def replay(self, choices: list[int], jumps: list[tuple[int, int]] | tuple = ()) -> str:
        """The replay string of this scenario run with ``choices``, and the clock ``jumps`` it made:
        (d, seconds) moves the clock on before choice number d."""
        tokens = [str(c) for c in choices]
        for d, seconds in sorted(jumps, key=lambda j: j[0], reverse=True):  # later first: indices stay right
            tokens.insert(d, f"{TICK}{seconds}")
        sep = "" if not jumps and all(c < 10 for c in choices) else "."
        plan, before = self.fault_plan, sum(kind != TICK for kind, _, _ in self.prefix)
        return f"con/{_ops(self.prefix, plan)}|{_ops(self.ops, plan, before)}/{sep.join(tokens)}"


SEQUENCE_FORM = "expected 'seq/r:k1,w:k1,...' as printed by a failing run"
CONCURRENT_FORM = "expected 'con/PREFIX|OPS/CHOICES' as printed by a failing run"


def _bad(text: str, problem: str) -> InvalidArgument:
    return InvalidArgument("replay", text, problem)


def _parse_ops(
    text: str, whole: str, form: str, *, ticks: bool = True, faults: Faults | None = None, first: int = 0
) -> tuple[Op, ...]:
    """The operations of ``text``; the faults marked on them (``!2b``) go into ``faults``, numbered
    from ``first``."""
    ops: list[Op] = []
    for item in filter(None, text.split(",")):
        shown = item
        item, bang, mark = item.partition("!")
        if bang:
            outage = mark.endswith("+")
            mark = mark.removesuffix("+")
            number = mark[:-1]
            if not (
                number.isascii() and number.isdigit() and 1 <= int(number) <= MAX_FAULT_CALL and mark[-1:] in ("b", "l")
            ):
                raise _bad(
                    whole,
                    f"has a bad fault {shown!r} (the operation, then a call number and b or l, as in w:k1@2!2b); "
                    f"{form}",
                )
            if faults is not None:
                n = first + sum(kind != TICK for kind, _, _ in ops)
                faults[n] = Fault(int(mark[:-1]), mark[-1] == "l", outage)
        kind, _, rest = item.partition(":")
        arg, at, instance = rest.partition("@")
        if kind == TICK and ticks and not at and arg.isdigit() and 0 < int(arg) <= MAX_TICK:
            ops.append(Op(TICK, int(arg)))
        elif (
            kind in (READ, WRITE)
            and arg in KEYS
            and (not at or (instance.isdigit() and 2 <= int(instance) <= MAX_INSTANCES))
        ):
            ops.append(Op(kind, arg, int(instance) - 1 if at else 0))
        else:
            raise _bad(whole, f"has a bad operation {item!r}; {form}")
        if bang and ops[-1].kind == TICK:
            raise _bad(whole, f"marks a fault on a clock move {item!r}; {form}")
    return tuple(ops)


def parse_sequence(text: str) -> list[Op]:
    ops = _parse_ops(text[len("seq/") :], text, SEQUENCE_FORM)
    if not ops:
        raise _bad(text, f"{text!r} has no operations; {SEQUENCE_FORM}")
    return list(ops)


def faults_of_sequence(text: str) -> Faults:
    """The faults a sequence's replay string marks (``!2b``), by operation number."""
    faults: Faults = {}
    _parse_ops(text[len("seq/") :], text, SEQUENCE_FORM, faults=faults)
    return faults


def parse_concurrent(text: str) -> tuple[ConcurrentScenario, list[int], list[tuple[int, int]]]:
    """The scenario, the scheduler's choices, and the clock's jumps inside the race ((d, seconds):
    the clock moved on before choice number d)."""
    picks: list[int] = []
    jumps: list[tuple[int, int]] = []
    try:
        _, body, choices = text.split("/")
        prefix, ops = body.split("|")
        for token in choices.split(".") if "." in choices or TICK in choices else choices:
            if token.startswith(TICK):
                seconds = int(token[len(TICK) :])
                if not 0 < seconds <= MAX_TICK:
                    raise ValueError(token)
                jumps.append((len(picks), seconds))
            else:
                picks.append(int(token))
    except ValueError:
        raise _bad(text, f"{text!r} is not a concurrent replay string; {CONCURRENT_FORM}") from None
    faults: Faults = {}
    before = _parse_ops(prefix, text, CONCURRENT_FORM, faults=faults)
    first = sum(kind != TICK for kind, _, _ in before)
    scenario = ConcurrentScenario(
        prefix=before,
        ops=_parse_ops(ops, text, CONCURRENT_FORM, ticks=False, faults=faults, first=first),
        faults=tuple(sorted(faults.items())),
    )
    if not scenario.ops:
        raise _bad(text, f"{text!r} has no operations in flight; {CONCURRENT_FORM}")
    return scenario, picks, jumps


def validate_replay(text: str) -> None:
    """Fail before any run starts when ``text`` is not a replay string."""
    if text.startswith("con/"):
        parse_concurrent(text)
    elif text.startswith("seq/"):
        parse_sequence(text)
    else:
        raise _bad(text, f"{text!r} is not a replay string; {SEQUENCE_FORM}")
