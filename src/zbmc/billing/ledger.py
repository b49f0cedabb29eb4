"""The balance and its append-only ledger. ``tenants.balance`` always equals the sum of the
tenant's ledger amounts: both are written in the same transaction, by these functions only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from zbmc.db import bulk
from zbmc.db.direct import Db, Statement, Tx
from zbmc.db.tables import ledger, tenants

TOPUP, CHARGE, REFUND = "TOPUP", "CHARGE", "REFUND"

# The request path's statements, precompiled (zbmc.db.direct).
_CHARGE_IF_COVERED = Statement(
    update(tenants)
    .where(
        tenants.c.tenant_id == bindparam("target_tenant_id"),
        tenants.c.balance >= bindparam("amount"),
    )
    .values(balance=tenants.c.balance - bindparam("amount"))
    .returning(tenants.c.balance)
)
_BALANCE = Statement(
    select(tenants.c.balance).where(tenants.c.tenant_id == bindparam("target_tenant_id"))
)
_DEBIT = (
    update(tenants)
    .where(tenants.c.tenant_id == bindparam("target_tenant_id"))
    .values(balance=tenants.c.balance - bindparam("amount"))
    .returning(tenants.c.balance)
)
# One entry on the request path, thousands per worker tick (zbmc.db.bulk).
_APPEND = bulk.Inserter(ledger, [c.name for c in ledger.c if c.name != "entry_id"])


@dataclass(frozen=True)
class Entry:
    kind: str
    amount: int  # cents, positive
    description: str
    order_number: str | None = None
    instance_id: str | None = None
    period_start: int | None = None
    period_end: int | None = None


def balance(db: Db, tenant_id: str) -> int | None:
    found = Tx.of(db).first(_BALANCE, {"target_tenant_id": tenant_id})
    return None if found is None else int(found.balance)


def try_charge(db: Db, tenant_id: str, entry: Entry, now: int) -> int | None:
    """Take ``entry.amount`` from the balance if it suffices; return the new balance or None.

    One conditional UPDATE decides and debits atomically, so concurrent charges can never
    overdraw the balance, whatever the database's isolation level.
    """
    if entry.amount < 0:
        raise ValueError("a charge is a positive amount")
    tx = Tx.of(db)
    charged = tx.first(_CHARGE_IF_COVERED, {"target_tenant_id": tenant_id, "amount": entry.amount})
    if charged is None:
        return None
    new_balance = int(charged.balance)
    tx.run(_APPEND.statement, _row(tenant_id, entry, -entry.amount, new_balance, now))
    return new_balance


def credit(conn: Connection, tenant_id: str, entry: Entry, now: int) -> int:
    """Add a positive amount (top-up or refund); return the new balance."""
    if entry.amount <= 0:
        raise ValueError("a credit is a positive amount")
    new_balance = conn.execute(
        update(tenants)
        .where(tenants.c.tenant_id == tenant_id)
        .values(balance=tenants.c.balance + entry.amount)
        .returning(tenants.c.balance)
    ).scalar_one()
    Tx.of(conn).run(_APPEND.statement, _row(tenant_id, entry, entry.amount, int(new_balance), now))
    return int(new_balance)


def _row(tenant_id: str, entry: Entry, signed: int, balance_after: int, now: int) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "created_at": now,
        "kind": entry.kind,
        "amount": signed,
        "balance_after": balance_after,
        "order_number": entry.order_number,
        "instance_id": entry.instance_id,
        "description": entry.description,
        "period_start": entry.period_start,
        "period_end": entry.period_end,
    }


def debit_all(db: Db, tenant_id: str, entries: list[Entry], now: int) -> int:
    """Take charges that are owed whatever the balance (metered postpaid usage, renewals the
    caller already checked): the balance may go below zero (arrears), which blocks prepaid
    purchases until a top-up. One balance update and one executemany, each ledger row with its
    own running balance. Returns the new balance."""
    if any(entry.amount < 0 for entry in entries):
        raise ValueError("a charge is a positive amount")
    total = sum(entry.amount for entry in entries)
    tx = Tx.of(db)
    debited = tx.first(_DEBIT_ALL, {"target_tenant_id": tenant_id, "amount": total})
    if debited is None:
        raise LookupError(f"no tenant {tenant_id}")
    new_balance = int(debited.balance)
    if entries:
        running = new_balance + total
        rows = []
        for entry in entries:
            running -= entry.amount
            rows.append(_row(tenant_id, entry, -entry.amount, running, now))
        _APPEND.insert(tx, rows)
    return new_balance


_DEBIT_ALL = Statement(_DEBIT)


def try_charge_all(db: Db, tenant_id: str, entries: list[Entry], now: int) -> int | None:
    """Take every entry's amount if the balance covers their sum, else nothing; return the new
    balance or None. One conditional UPDATE decides for all of them (as ``try_charge``), then one
    insert writes each ledger row with its own running balance."""
    if any(entry.amount < 0 for entry in entries):
        raise ValueError("a charge is a positive amount")
    total = sum(entry.amount for entry in entries)
    tx = Tx.of(db)
    charged = tx.first(_CHARGE_IF_COVERED, {"target_tenant_id": tenant_id, "amount": total})
    if charged is None:
        return None
    new_balance = int(charged.balance)
    running = new_balance + total
    rows = []
    for entry in entries:
        running -= entry.amount
        rows.append(_row(tenant_id, entry, -entry.amount, running, now))
    _APPEND.insert(tx, rows)
    return new_balance
