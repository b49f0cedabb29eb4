"""Turning a planned bandwidth or traffic-package change into money, an order and instance state.

Shared by ModifyInstanceBandwidth and ModifyInstanceTrafficPackage, their price inquiries (which
must quote exactly what the modification would charge) and their cancellations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from zbmc.billing import ledger, orders
from zbmc.clock import iso
from zbmc.context import Context
from zbmc.db import bulk
from zbmc.db.direct import Db, NewRowVersion
from zbmc.db.tables import instances as instance_rows
from zbmc.db.tables import orders as order_rows
from zbmc.domain.changes import ENABLE, PROCESSING, WAIT_TO_ENABLE, InstanceFacts, Plan
from zbmc.domain.periods import months_between_anchor
from zbmc.domain.pricing import (
    PriceList,
    Quote,
    billable_mbps,
    billable_tb,
    prorated_upgrade,
    remaining_fraction,
)
from zbmc.domain.sizes import gb_to_tb_text
from zbmc.errors import BalanceInsufficient
from zbmc.store import instances as store


@dataclass(frozen=True)
class Change:
    """One kind of change: which instance columns it uses and how its units are priced."""

    kind: str  # orders.BANDWIDTH or orders.TRAFFIC_PACKAGE
    value_column: str
    status_column: str
    pending_column: str
    order_column: str  # the pending order
    applied_column: str  # the last applied order (orders.previous_order's chain)
    unit: str

    def label(self, value: int) -> str:
        if self.kind == orders.BANDWIDTH:
            return f"{value} Mbps"
        return f"{gb_to_tb_text(value)} TB"

    def billable(self, facts: InstanceFacts, value: int) -> Decimal:
        if self.kind == orders.BANDWIDTH:
            return Decimal(billable_mbps(value, facts.free_bandwidth))
        return billable_tb(value, facts.default_package_gb)

    def month_price(self, prices: PriceList) -> Decimal:
        return prices.bandwidth_month if self.kind == orders.BANDWIDTH else prices.traffic_tb_month

    def hour_price(self, prices: PriceList) -> Decimal:
        return prices.bandwidth_hour if self.kind == orders.BANDWIDTH else prices.traffic_tb_hour


BANDWIDTH = Change(
    orders.BANDWIDTH,
    "bandwidth",
    "bw_status",
    "bw_pending",
    "bw_order",
    "bw_applied_order",
    "Mbps",
)
TRAFFIC_PACKAGE = Change(
    orders.TRAFFIC_PACKAGE,
    "traffic_package_gb",
    "tp_status",
    "tp_pending_gb",
    "tp_order",
    "tp_applied_order",
    "TB",
)
CHANGES = {change.kind: change for change in (BANDWIDTH, TRAFFIC_PACKAGE)}


def _applier(change: Change) -> bulk.Updater:
    # Only if the instance still waits for this very order (a cancelled one must not apply).
    return bulk.Updater(
        instance_rows,
        keys={"instance_id": "target_instance_id", change.order_column: "applied_order"},
        # the applied order becomes the head of the instance's chain (orders.previous_order)
        values={change.value_column: "new_value", change.applied_column: "applied_head"},
        fixed={
            change.status_column: ENABLE,
            change.pending_column: None,
            change.order_column: None,
            "row_version": NewRowVersion(),
        },
    )


# Precompiled batch statements (zbmc.db.bulk): with the worker thread of ``zbmc serve``
# finishing every change the API accepts, their per-row cost is per-request cost.
_APPLY = {kind: _applier(change) for kind, change in CHANGES.items()}
_ENABLE = bulk.Updater(
    order_rows,
    keys={"order_number": "applied_order"},
    values={"applied_at": "when"},
    fixed={"state": orders.ENABLED},
)


def application(
    instance_id: str, order_number: str, to_value: int | None, now: int
) -> dict[str, Any]:
    """One row for ``apply``: the order that now holds on the network."""
    return {
        "target_instance_id": instance_id,
        "applied_order": order_number,
        "new_value": to_value,
        "applied_head": order_number,  # the same value, a parameter of its own (bulk.Updater)
        "when": now,
    }


def apply(db: Db, kind: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Put orders of one kind into effect (``application`` rows; one per instance): each
    instance that still waits for its order takes the new value and Enable, and the order is
    ENABLED at ``when``. The worker applies what the network driver enforced; the network
    agents confirm what the kernel has (zbmc.store.attachments)."""
    _APPLY[kind].update(db, rows)
    _ENABLE.update(db, rows)


def upgrade_quote(
    change: Change,
    prices: PriceList,
    row: Any,
    facts: InstanceFacts,
    current: int,
    target: int,
    now: int,
) -> Quote:
    """The prorated price of raising ``current`` to ``target`` for the rest of the period."""
    delta = change.billable(facts, target) - change.billable(facts, current)
    if delta <= 0 or row.expired_time is None or row.period_start is None:
        return Quote(Decimal("0.00"), Decimal("0.00"))
    # The paid span may hold several periods after an early RenewInstance: count its months.
    months = max(1, months_between_anchor(row.period_start, row.expired_time))
    fraction = remaining_fraction(now, row.period_start, row.expired_time)
    return prorated_upgrade(prices, delta, change.month_price(prices), months, fraction)


def hourly_rate(change: Change, prices: PriceList, facts: InstanceFacts, value: int) -> Decimal:
    return change.billable(facts, value) * change.hour_price(prices)


def execute(
    ctx: Context,
    change: Change,
    row: Any,
    facts: InstanceFacts,
    plan: Plan,
    current: int,
    target: int,
) -> str | None:
    """Carry out an accepted plan in the caller's transaction; return the order number."""
    if plan is Plan.NOTHING:
        return None
    number = orders.new_order_number()
    amount = 0
    if plan is Plan.NOW_CHARGED:
        prices = store.offering_prices(ctx.tx, row)
        amount = upgrade_quote(change, prices, row, facts, current, target, ctx.now).cents
        if amount > 0:
            entry = ledger.Entry(
                kind=ledger.CHARGE,
                amount=amount,
                description=(
                    f"{change.kind.replace('_', ' ').lower()} upgrade {change.label(current)}"
                    f" -> {change.label(target)},"
                    f" prorated {iso(ctx.now)} .. {iso(row.expired_time)}"
                ),
                order_number=number,
                instance_id=facts.instance_id,
                period_start=ctx.now,
                period_end=row.expired_time,
            )
            if ledger.try_charge(ctx.tx, ctx.tenant_id, entry, ctx.now) is None:
                balance = ledger.balance(ctx.tx, ctx.tenant_id) or 0
                raise BalanceInsufficient(balance=balance / 100, amount=amount / 100)
    if plan is Plan.NEXT_CYCLE:
        state, status, effective = orders.WAIT_TO_ENABLE, WAIT_TO_ENABLE, row.expired_time
    else:
        delay = math.ceil(ctx.settings.driver_delay_seconds)
        state, status, effective = orders.PROCESSING, PROCESSING, ctx.now + delay
    orders.create(
        ctx.tx,
        order_number=number,
        tenant_id=ctx.tenant_id,
        instance_id=facts.instance_id,
        kind=change.kind,
        from_value=current,
        to_value=target,
        amount=amount,
        state=state,
        now=ctx.now,
        effective_at=effective,
        # the only pending order of its kind: the last applied one is still this when it applies
        previous_order=getattr(row, change.applied_column),
    )
    store.set_values(
        ctx.tx,
        facts.instance_id,
        **{
            change.status_column: status,
            change.pending_column: target,
            change.order_column: number,
        },
    )
    return number


def cancel_downgrade(ctx: Context, change: Change, row: Any) -> None:
    """Withdraw a waiting downgrade: the order is cancelled, the instance keeps its value."""
    orders.cancel(ctx.tx, getattr(row, change.order_column), ctx.now)
    store.set_values(
        ctx.tx,
        row.instance_id,
        **{change.status_column: ENABLE, change.pending_column: None, change.order_column: None},
    )
