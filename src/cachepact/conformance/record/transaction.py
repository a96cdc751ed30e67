"""``env.db.transaction()``: puts that become visible to other operations at commit, never on an
exception.

Inside the block a put is staged: it is recorded (``db.put(k1, k1.v1) in tx1``) and scheduled like
any call, the block's own reads see it, and no other operation does. The normal exit is the commit:
one scheduling point, then every staged put applied at once (on a SQL database in one real
transaction), recorded as one ``commit`` step per key. That step, not the put, is where the judge
takes the write's value to become visible. An exception leaves the block with nothing applied and a
``rollback`` step recorded.

Why puts are staged in the kit rather than sent to the database as they are made: a transaction
that holds a row lock across a scheduling point would block the next writer of that row inside the
database driver, where the kit's scheduler cannot switch threads (the run would hang, not race).
Applying the writes at commit gives every other operation exactly what a real transaction gives it
(nothing before the commit, all of it after), which is all the key-value model can observe.

Blocks nest as savepoints: an exception that leaves an inner block undoes only its puts (and drops
the callbacks given inside it), recorded as ``db.rollback(tx1 to its savepoint)``. Callbacks
given to ``on_commit`` run after the outermost commit, in order, on the committing thread (the shape
of Django's ``transaction.on_commit``), and never after a rollback.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from ...model import show
from .effect import Effect

if TYPE_CHECKING:
    from .env import RecordingDB


class Transaction:
    """One transaction on ``env.db``: ``with env.db.transaction() as tx:``; ``tx.on_commit(fn)``."""

    def __init__(self, db: RecordingDB, name: str) -> None:
        self._db = db
        self.name = name  # tx1, tx2, ...: how tables and diagrams name it
        self.staged: dict[Hashable, Any] = {}
        self._savepoints: list[tuple[dict[Hashable, Any], int]] = []  # staged puts and callbacks at each
        self._callbacks: list[Callable[[], Any]] = []
        self.done = False

    def on_commit(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` once this transaction has committed (after the block, never on a rollback)."""
        if not callable(fn):
            raise TypeError(f"on_commit takes a function to call after the commit, not {fn!r}")
        if self.done:
            raise RuntimeError(
                f"{self.name} has already ended: call on_commit inside its with block (a callback given "
                "after the commit would never run)"
            )
        self._callbacks.append(fn)

    def __repr__(self) -> str:
        return f"<Transaction {self.name}: {', '.join(f'{show(k)}={show(v)}' for k, v in self.staged.items())}>"


class Transactions:
    """The transactions open on one ``env.db``, one per thread at most (a nested block is a savepoint
    of it), and the run's numbering of them."""

    def __init__(self, counter: itertools.count | None = None) -> None:
        self._open: dict[int, Transaction] = {}
        self._numbers = counter if counter is not None else itertools.count(1)

    def current(self) -> Transaction | None:
        """The transaction the calling thread is inside, if any."""
        return self._open.get(threading.get_ident()) if self._open else None

    def block(self, db: RecordingDB) -> _Block:
        return _Block(self, db)


class _Block:
    """One ``with env.db.transaction():`` block: the outermost begins and ends the transaction, an
    inner one is a savepoint."""

    __slots__ = ("_db", "_outer", "_transactions", "_tx")

    def __init__(self, transactions: Transactions, db: RecordingDB) -> None:
        self._transactions = transactions
        self._db = db
        self._tx: Transaction | None = None
        self._outer = False

    def __enter__(self) -> Transaction:
        me = threading.get_ident()
        tx = self._transactions._open.get(me)
        if tx is None:
            tx = Transaction(self._db, f"tx{next(self._transactions._numbers)}")
            self._transactions._open[me] = tx
            self._outer = True
        else:
            tx._savepoints.append((dict(tx.staged), len(tx._callbacks)))
        self._tx = tx
        return tx

    async def __aenter__(self) -> Transaction:  # ``async with env.async_db.transaction():``, the same block
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        self.__exit__(kind, error, tb)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        tx = self._tx
        assert tx is not None
        if not self._outer:
            staged, callbacks = tx._savepoints.pop()
            if kind is not None:
                # Back to the savepoint: its puts undone, and the callbacks given inside it dropped (as
                # Django drops those of a savepoint rolled back). The outer block decides the rest.
                tx.staged = staged
                del tx._callbacks[callbacks:]
                self._db._rollback(tx, savepoint=True)
            return
        del self._transactions._open[threading.get_ident()]
        tx.done = True
        if kind is not None:
            self._db._rollback(tx)
            return  # the exception goes on
        self._db._commit(tx)  # raises DBError if a fault hits it: the block raises, as a failed COMMIT does
        for fn in tx._callbacks:
            fn()


def commit_effects(backend: Any, staged: dict[Hashable, Any]) -> list[tuple[Hashable, Any, Effect]]:
    """Apply ``staged`` to ``backend`` at once; each key with the value committed and what it did."""
    before = {key: backend.get(key) for key in staged}
    backend.put_many(staged)
    return [(key, value, Effect(before[key], backend.get(key))) for key, value in staged.items()]


__all__ = ["Transaction", "Transactions", "commit_effects"]
