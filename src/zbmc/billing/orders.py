"""Orders: every accepted change is a row with an effective time (future changes are rows).

States: PROCESSING (being applied by the network driver), WAIT_TO_ENABLE (a prepaid downgrade
waiting for the next billing cycle), ENABLED (in effect), CANCELLED (withdrawn by the client).
"""

from __future__ import annotations

import secrets
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


def new_order_number() -> str:
    # 18 random digits; the primary key turns an (astronomically unlikely) clash into an error
    return str(10**17 + secrets.randbelow(9 * 10**17))


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
    }


def create_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    _INSERT.insert(conn, rows)


def cancel(db: Db, order_number: str, now: int) -> None:
    Tx.of(db).run(_CANCEL, {"target_order": order_number, "when": now})
