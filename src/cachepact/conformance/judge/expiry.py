"""Time inside races, as the judge follows it: a lease or a claim that ran out in the store.

A lease the store gave with an expiry (``cachepact.leases``' ``PX``, env.cache's on Redis) can run
out while its reader still holds the token, when the kit moves the clock inside a race: the store
then refuses that token's fill, as a delete would have made it. The model's reader holds a token
exactly while no delete has voided it, so the token is voided here too; otherwise a write's later
delete, finding no lease left to void, would look like a write that never invalidated.
"""

from __future__ import annotations

from typing import Any

from ...model._system import KEY, OPS, TOKEN, OpState, _new, _with_op


def lease_ran_out(judge: Any, value_key: Any) -> None:
    """The lease on the entry under cache key ``value_key`` expired in the store: every token on its
    key is void (what ``Judge.evicted`` does for an entry, this does for its lease)."""
    k = judge.cache_keys.get(value_key)
    if k is None:
        return
    ref = judge.refinement
    s = ref.state
    for n, o in enumerate(s[OPS]):
        if o[TOKEN] and o[KEY] == k:
            s = _with_op(s, n, _new(OpState, (*o[:TOKEN], False, *o[TOKEN + 1 :])))
    ref.state = s


def claim_ran_out(judge: Any, ck: Any) -> None:
    """A claim an operation stored with a time to live (its own Lua lease, a lock key) expired while
    it was in flight: a conditional fill refused from now on has that reason, not a guard the wrong
    way round. Called before ``Judge.evicted``, which forgets the claim."""
    held = judge._claims.get(ck)
    i = judge.op_index.get(held[0]) if held is not None else None
    if i is None:
        return
    op = judge.refinement.ops[i]
    op.refusal_reason = op.refusal_reason or f"its claim on {ck} ran out"
