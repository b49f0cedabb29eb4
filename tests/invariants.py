"""Invariants that hold after every request, checked from three sides: the admin CLI (what an
operator sees), one database snapshot (what is stored, read in a single transaction so it is
consistent even while the worker runs) and the API (what the tenant sees).

Used by the property test and the concurrency tests; each check raises AssertionError with the
offending rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Row, select

from tests.harness import Tenant
from zbmc.db.tables import instances, ledger, orders, tenants

TOPUP, CHARGE, REFUND = "TOPUP", "CHARGE", "REFUND"
PROCESSING, WAIT_TO_ENABLE = "PROCESSING", "WAIT_TO_ENABLE"
OPEN_STATES = (PROCESSING, WAIT_TO_ENABLE)
# order state -> the change status DescribeInstanceInternetStatus shows while it is open
STATUS_OF_OPEN = {PROCESSING: "Processing", WAIT_TO_ENABLE: "WaitToEnable"}
BANDWIDTH, TRAFFIC_PACKAGE = "BANDWIDTH", "TRAFFIC_PACKAGE"
MODIFICATION_KINDS = (BANDWIDTH, TRAFFIC_PACKAGE)
RENEW = "RENEW"


@dataclass(frozen=True)
class Snapshot:
    """One tenant's money, orders and instances, read in ONE transaction."""

    balance: int
    ledger: list[Row[Any]]
    orders: list[Row[Any]]
    instances: list[Row[Any]]


def snapshot(engine: Engine, tenant_id: str) -> Snapshot:
    with engine.begin() as conn:
        balance = conn.execute(
            select(tenants.c.balance).where(tenants.c.tenant_id == tenant_id)
        ).scalar_one()
        return Snapshot(
            balance=int(balance),
            ledger=list(
                conn.execute(
                    select(ledger)
                    .where(ledger.c.tenant_id == tenant_id)
                    .order_by(ledger.c.entry_id)
                )
            ),
            orders=list(conn.execute(select(orders).where(orders.c.tenant_id == tenant_id))),
            instances=list(
                conn.execute(select(instances).where(instances.c.tenant_id == tenant_id))
            ),
        )


def snapshot_of(tenant: Tenant) -> Snapshot:
    engine = tenant.stack.engine()
    try:
        return snapshot(engine, tenant.tenant_id)
    finally:
        engine.dispose()


def check_snapshot(snap: Snapshot, *, metered: bool = False, arrears: bool = False) -> None:
    """Stored money adds up and every instance's change status matches its open order.

    ``metered``: the worker has metered hours, whose charges carry no order number but name the
    instance and the period they pay for; no hour (or other metered period) is charged twice and
    no prepaid period is renewed twice.
    ``arrears``: metered usage is owed, so it is debited even below zero (docs/billing.md). Then
    the balance may be negative, but only because of metered debits: a purchase (a charge with an
    order: upgrade, renewal) is conditional and never leaves the balance below zero."""
    assert not arrears or metered, "arrears come from metered charges"
    if not arrears:
        assert snap.balance >= 0, f"negative balance {snap.balance} cents"
    kinds = Counter(e.kind for e in snap.ledger)
    assert set(kinds) <= {TOPUP, CHARGE, REFUND}, kinds
    assert snap.balance == sum(e.amount for e in snap.ledger), "balance != ledger sum"
    running = 0
    for entry in snap.ledger:
        assert (entry.amount > 0) == (entry.kind in (TOPUP, REFUND)), entry
        running += entry.amount
        assert entry.balance_after == running, f"balance_after broken at {entry}"
        if not arrears or entry.order_number is not None:
            assert entry.balance_after >= 0, f"ledger went below zero at {entry}"
    if snap.balance < 0:
        assert any(_is_metered(e) for e in snap.ledger), "negative without metered charges"
    if metered:
        _check_charged_once(snap)
    by_number = {o.order_number: o for o in snap.orders}
    charged: dict[str, int] = {}
    for entry in snap.ledger:
        if entry.kind != CHARGE:
            continue
        assert entry.amount < 0, entry
        if metered and entry.order_number is None:
            assert entry.instance_id is not None, f"metered charge without instance: {entry}"
            assert entry.period_start < entry.period_end, f"metered charge period: {entry}"
            continue
        assert entry.order_number in by_number, f"charge without order: {entry}"
        assert entry.order_number not in charged, f"order charged twice: {entry}"
        charged[entry.order_number] = -entry.amount
    for order in snap.orders:
        assert order.amount == charged.get(order.order_number, 0), (
            f"order amount {order.amount} != charged {charged.get(order.order_number, 0)}: {order}"
        )
    for row in snap.instances:
        _check_stored_change(row, snap.orders, BANDWIDTH, "bw_status", "bw_pending", "bw_order")
        _check_stored_change(
            row, snap.orders, TRAFFIC_PACKAGE, "tp_status", "tp_pending_gb", "tp_order"
        )


def _is_metered(entry: Row[Any]) -> bool:
    return bool(entry.kind == CHARGE and entry.order_number is None)


def _check_charged_once(snap: Snapshot) -> None:
    """Each metered period of an instance (a postpaid hour, a stretch of overage; told apart by
    what the description says the charge is for) is charged once; each prepaid period start is
    renewed by one order at most."""
    periods = Counter(
        (e.instance_id, e.period_start, e.description.partition(" of instance")[0])
        for e in snap.ledger
        if _is_metered(e)
    )
    charged_twice = [key for key, count in periods.items() if count > 1]
    assert not charged_twice, f"metered periods charged more than once: {charged_twice}"
    renewals = Counter((o.instance_id, o.from_value) for o in snap.orders if o.kind == RENEW)
    renewed_twice = [key for key, count in renewals.items() if count > 1]
    assert not renewed_twice, f"periods renewed more than once: {renewed_twice}"


def _check_stored_change(
    row: Row[Any], all_orders: Iterable[Row[Any]], kind: str, status: str, pending: str, ref: str
) -> None:
    open_orders = [
        o
        for o in all_orders
        if o.instance_id == row.instance_id and o.kind == kind and o.state in OPEN_STATES
    ]
    assert len(open_orders) <= 1, f"{row.instance_id}: several open {kind} orders {open_orders}"
    value = getattr(row, status)
    if not open_orders:
        assert value in ("Enable", None), f"{row.instance_id}: {status}={value} without an order"
        assert getattr(row, pending) is None, row
        assert getattr(row, ref) is None, row
        return
    order = open_orders[0]
    assert value == STATUS_OF_OPEN[order.state], f"{row.instance_id}: {value} but {order}"
    assert getattr(row, ref) == order.order_number, f"{row.instance_id}: {ref} != {order}"
    assert getattr(row, pending) == order.to_value, f"{row.instance_id}: {pending} != {order}"


def check_admin_money(
    tenant: Tenant,
    entries: list[dict[str, Any]] | None = None,
    report: Mapping[str, Any] | None = None,
    *,
    arrears: bool = False,
) -> Decimal:
    """Balance == top-ups - charges (+ refunds) == ledger sum, as ``zbmc admin`` reports them.

    ``report``: a balance report already printed by another admin command (e.g. a top-up).
    ``arrears``: metered usage may have taken the balance below zero (see ``check_snapshot``)."""
    if report is None:
        report = tenant.stack.admin.json("balance", tenant.tenant_id)
    entries = tenant.ledger() if entries is None else entries
    balance = Decimal(str(report["balance"]))
    by_kind: dict[str, Decimal] = {TOPUP: Decimal(0), CHARGE: Decimal(0), REFUND: Decimal(0)}
    for entry in entries:
        by_kind[entry["kind"]] += Decimal(str(entry["amount"]))
    assert by_kind[TOPUP] >= 0, by_kind
    assert by_kind[CHARGE] <= 0, by_kind
    assert balance == by_kind[TOPUP] + by_kind[CHARGE] + by_kind[REFUND], (balance, by_kind)
    assert balance == Decimal(str(report["ledgerSum"])), report
    assert arrears or balance >= 0, report
    return balance


def check_admin_orders(
    tenant: Tenant,
    returned: Mapping[str, str | None],
    entries: list[dict[str, Any]] | None = None,
    *,
    metered: bool = False,
) -> dict[str, dict[str, Any]]:
    """Every orderNumber the API returned exists exactly once in ``zbmc admin orders``, with the
    amount of its ledger charge (0 when none); modification orders are exactly the returned ones.

    ``returned`` maps orderNumber -> expected state (None: any state).
    ``metered``: charges without an order (metered by the worker) name their instance instead."""
    listed = tenant.orders()
    counts = Counter(o["orderNumber"] for o in listed)
    duplicated = [n for n, c in counts.items() if c > 1]
    assert not duplicated, f"orders listed more than once: {duplicated}"
    by_number = {o["orderNumber"]: o for o in listed}
    charges: dict[str, Decimal] = {}
    for entry in tenant.ledger() if entries is None else entries:
        if entry["kind"] == CHARGE:
            if metered and entry["orderNumber"] is None:
                assert entry["instanceId"] is not None, f"metered charge without instance: {entry}"
                continue
            assert entry["orderNumber"] in by_number, f"charge without order: {entry}"
            charges[entry["orderNumber"]] = -Decimal(str(entry["amount"]))
    for number, state in returned.items():
        assert number in by_number, f"order {number} returned by the API is not listed"
        order = by_number[number]
        assert Decimal(str(order["amount"])) == charges.get(number, Decimal(0)), order
        if state is not None:
            assert order["state"] == state, f"order {number}: {order['state']} != {state}"
    modifications = {n for n, o in by_number.items() if o["kind"] in MODIFICATION_KINDS}
    assert modifications == set(returned), (
        f"orders not returned by the API: {modifications - set(returned)}"
    )
    return by_number


def describe_internet_status(client: Any, instance_id: str) -> Any:
    from zenlayercloud.bmc.v20260201 import models

    request = models.DescribeInstanceInternetStatusRequest()
    request.instanceId = instance_id
    return client.DescribeInstanceInternetStatus(request)


def check_internet_status(
    client: Any, instance_id: str, instance_orders: Iterable[Mapping[str, Any]]
) -> Any:
    """DescribeInstanceInternetStatus agrees with the instance's open orders (call it only when
    no Processing change can finish concurrently, or the two reads may straddle the worker)."""
    status = describe_internet_status(client, instance_id)
    mine = [o for o in instance_orders if o["instanceId"] == instance_id]
    for kind, status_name, pending in (
        (BANDWIDTH, status.modifiedBandwidthStatus, status.modifiedInternetMaxBandwidthOut),
        (TRAFFIC_PACKAGE, status.modifiedTrafficPackageStatus, status.modifiedTrafficPackageSize),
    ):
        open_orders = [o for o in mine if o["kind"] == kind and o["state"] in OPEN_STATES]
        assert len(open_orders) <= 1, open_orders
        if kind == TRAFFIC_PACKAGE and status.trafficPackageSize is None:
            # no package (or not ByTrafficPackage): nothing can be changed or pending
            assert not open_orders, open_orders
            assert status_name in (None, "Enable"), status_name
            assert pending is None, pending
            continue
        if not open_orders:
            assert status_name == "Enable", (instance_id, kind, status_name)
            assert pending is None, (instance_id, kind, pending)
            continue
        order = open_orders[0]
        assert status_name == STATUS_OF_OPEN[order["state"]], (instance_id, status_name, order)
        wire_value = order["toValue"] if kind == BANDWIDTH else Decimal(order["toValue"]) / 1000
        assert pending is not None, order
        assert Decimal(str(pending)) == wire_value, (pending, order)
    return status
