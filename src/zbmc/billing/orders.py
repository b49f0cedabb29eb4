"""Orders: every accepted change is a row with an effective time (future changes are rows).

States: PROCESSING (being applied by the network driver), WAIT_TO_ENABLE (a prepaid downgrade
waiting for the next billing cycle), ENABLED (in effect), CANCELLED (withdrawn by the client).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection

from zbmc.db import bulk
from zbmc.db.direct import Db, Statement, Tx
from zbmc.db.tables import orders

BANDWIDTH, TRAFFIC_PACKAGE, RENEW, CREATE = "BANDWIDTH", "TRAFFIC_PACKAGE", "RENEW", "CREATE"
PROCESSING, WAIT_TO_ENABLE, ENABLED, CANCELLED = (
    "PROCESSING",
    "WAIT_TO_ENABLE",
    "ENABLED",
    "CANCELLED",
)


# One order on the request path, thousands per worker tick (zbmc.db.bulk).
_INSERT = bulk.Inserter(
    orders,
    [c.name for c in orders.c if c.name not in ("last_error", "cancelled_at")],
    row="order_number",
)
# A cancelled order was never applied: it gets a cancelled time and keeps applied_at NULL.
_CANCEL = Statement(
    update(orders)
    .where(orders.c.order_number == bindparam("target_order"))
    .values(state=CANCELLED, cancelled_at=bindparam("when"))
)


class OrderNumbers:
    """Order numbers in the order they were made: 22 digits, the microsecond of creation (16
    digits, strictly increasing within the process) and a random number drawn once per process
    (6 digits).

    New numbers are therefore the largest so far, and every index on them (the orders' primary
    key) grows at its right edge: a batch of changes dirties one leaf page of it instead of one
    per order, and the index's hot part stays one page however many orders there are. With 18
    random digits (before) each order landed on a random leaf: 16 of a batch's ~50 dirty pages,
    and a working set that outgrew the page cache as orders accumulated (docs/performance.md).

    Unique within a process by construction (a second order within one microsecond takes the
    next one); two processes clash only if they drew the same 6 digits and stamped an order
    with the same microsecond, and then the primary key refuses the second one (its request
    fails and its transaction is rolled back: nothing is charged twice).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self.reseed()

    def reseed(self) -> None:
        """A new per-process number (also in a child made by ``fork``, which copies memory)."""
        self._salt = secrets.randbelow(10**6)

    def __call__(self) -> str:
        with self._lock:  # the API and the worker thread make orders
            stamp = self._last = max(time.time_ns() // 1000, self._last + 1)
        return f"{stamp:016d}{self._salt:06d}"


new_order_number = OrderNumbers()
os.register_at_fork(after_in_child=new_order_number.reseed)


def create(
    db: Db,
    *,
    tenant_id: str,
    instance_id: str,
    kind: str,
    from_value: int | None,
    to_value: int | None,
    amount: int,
    state: str,
    now: int,
    effective_at: int,
    order_number: str | None = None,
    previous_order: str | None = None,
) -> str:
    number = order_number or new_order_number()
    # sent with the transaction's next statement where it can (``Tx.later``)
    Tx.of(db).later(
        _INSERT.statement,
        row(
            order_number=number,
            tenant_id=tenant_id,
            instance_id=instance_id,
            kind=kind,
            from_value=from_value,
            to_value=to_value,
            amount=amount,
            state=state,
            now=now,
            effective_at=effective_at,
            previous_order=previous_order,
        ),
    )
    return number


def row(
    *,
    order_number: str,
    tenant_id: str,
    instance_id: str,
    kind: str,
    from_value: int | None,
    to_value: int | None,
    amount: int,
    state: str,
    now: int,
    effective_at: int,
    previous_order: str | None = None,
) -> dict[str, Any]:
    """The insert parameters of one order (``create_many`` takes a list of them)."""
    return {
        "order_number": order_number,
        "tenant_id": tenant_id,
        "instance_id": instance_id,
        "kind": kind,
        "from_value": from_value,
        "to_value": to_value,
        "amount": amount,
        "state": state,
        "created_at": now,
        "effective_at": effective_at,
        "applied_at": now if state == ENABLED else None,
        "attempts": 0,
        "previous_order": previous_order,
    }


def create_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    _INSERT.insert(conn, rows)


def cancel(db: Db, order_number: str, now: int) -> None:
    Tx.of(db).run(_CANCEL, {"target_order": order_number, "when": now})
