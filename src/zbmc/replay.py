"""The replay guard: a signed write request is applied once (docs/security.md).

An HMAC signature stays valid for the whole signature window (±300 s), so a captured request
could be sent again. The guard records the signature of every applied write, together with its
action (a 64-bit digest of both, ``digest``), in the request's own transaction: one
``INSERT ... ON CONFLICT DO NOTHING`` after the handler succeeded. Inserting nothing means the
same signed request was applied before (by this process or another: the table is in the shared
database), and the request fails with ``SignatureReplayed``; its transaction rolls back. A
request that fails or rolls back records nothing, so only what was applied burns its signature.

The official SDKs sign every call afresh: a call retried after REQUEST_LIMIT_EXCEEDED is signed
again (the same signature only within the same second, and the refused attempt recorded
nothing). Two identical calls of the same action within one second share a signature and cannot
be told from a replay by their bytes; they can by their time. A legitimate duplicate (parallel
identical creations, a script setting 500, 20, 500 Mbps within a second) is signed and sent at
once, so it arrives within ``GRACE_SECONDS`` of its timestamp, and is applied; a captured request
sent again later than that is refused. Only an attacker on the path, replaying within two
seconds, gets past the guard: TLS is the answer to that one (docs/security.md).

Rows whose timestamp left the window can never match an accepted request again; the worker
deletes them (``prune``), in slices of a bounded size, so no transaction of it holds the database
for long however many writes the last minute applied.
"""

from __future__ import annotations

import functools
import hashlib
import time
from typing import Any

from sqlalchemy import bindparam, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from zbmc.db import bulk
from zbmc.db.direct import Statement, Tx
from zbmc.db.tables import seen_signatures
from zbmc.errors import SignatureReplayed

_VALUES: dict[str, Any] = {"signed_at": bindparam("signed_at"), "digest": bindparam("digest")}
# ON CONFLICT is the same SQL on both databases; each dialect's construct compiles it.
_REMEMBER = {
    "sqlite": Statement(sqlite.insert(seen_signatures).values(_VALUES).on_conflict_do_nothing()),
    "postgresql": Statement(
        postgresql.insert(seen_signatures).values(_VALUES).on_conflict_do_nothing()
    ),
}
# Clocks of the processes sharing a database may differ a little.
MARGIN_SECONDS = 60
# A repeat of an applied signature arriving this close to its timestamp is a legitimate
# duplicate sent in the same second, not a replay (module docstring).
GRACE_SECONDS = 2


@functools.cache
def _action_bits(action: str) -> int:
    return int.from_bytes(hashlib.sha256(action.encode()).digest()[:8], "big", signed=True)


def digest(signature: str, action: str) -> int:
    """64 bits standing for (signature, action): the signature's first 64 bits (an HMAC's
    bits are uniform) mixed with the action's. Two different requests share a digest with a
    chance of about 2^-64 per pair within the same second: a refused request, never a
    replay let through."""
    return int.from_bytes(bytes.fromhex(signature[:16]), "big", signed=True) ^ _action_bits(action)


def remember(tx: Tx, signature: str, signed_at: int, action: str) -> None:
    """Record an applied write; ``SignatureReplayed`` if it was recorded before and this copy
    arrives later than ``GRACE_SECONDS`` after its timestamp."""
    inserted = tx.run(
        _REMEMBER[tx.dialect.name], {"signed_at": signed_at, "digest": digest(signature, action)}
    )
    if inserted != 1 and abs(int(time.time()) - signed_at) > GRACE_SECONDS:
        raise SignatureReplayed(action=action)


# A shared transaction's records at once (``remember_all``): on PostgreSQL one statement with
# an array per column, one round trip for the batch instead of one per request.
_NEW = bulk.NewRows(seen_signatures, ["signed_at", "digest"], key=("signed_at", "digest"))


def remember_all(tx: Tx, seen: list[tuple[int, int]]) -> bool:
    """Record the applied writes of a shared transaction (``(signed_at, digest)`` each) with one
    statement (``bulk.NewRows``); False if any of them was recorded before, in this batch or
    another (its request may be a replay: the caller then runs the transaction's requests one
    by one, each through ``remember``). On PostgreSQL a record that another transaction is
    inserting waits for it, under the shared transaction's lock timeout."""
    if not seen:
        return True
    return _NEW.insert(tx, seen) == len(seen)


def prune(conn: Connection, wall_now: int, window: int, limit: int) -> int:
    """Delete the oldest signatures no request can carry any more, at most ``limit`` of them
    (a slice: the worker runs the next one at its next tick); returns how many."""
    horizon = wall_now - window - MARGIN_SECONDS
    key = tuple_(seen_signatures.c.signed_at, seen_signatures.c.digest)
    oldest = (
        select(seen_signatures.c.signed_at, seen_signatures.c.digest)
        .where(seen_signatures.c.signed_at < horizon)
        .order_by(seen_signatures.c.signed_at, seen_signatures.c.digest)
        .limit(limit)
    )
    result = conn.execute(delete(seen_signatures).where(key.in_(oldest)))
    return int(result.rowcount)
