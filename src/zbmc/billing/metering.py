"""Hourly metering: postpaid usage and traffic above the package.

Rules (docs/billing.md):
* A postpaid instance pays, for every whole hour since it was created, the instance hourly price
  plus its billable bandwidth (ByBandwidth) or billable package (ByTrafficPackage) at the hourly
  prices in force. Within an hour the HIGHEST value held in that hour is charged. STOPPED does not
  stop billing (the server and its port stay reserved); RECYCLE does. Metered usage is owed: it
  is debited even when the balance goes below zero (arrears; prepaid purchases then fail until a
  top-up).
* A ByTrafficPackage instance consumes its package with outbound bytes (traffic samples) within
  package cycles of one calendar month from its billing anchor; a package below the offering's
  free allowance (a postpaid instance buys none) still includes the free allowance. Every hour
  the bytes of the cycle so far are compared with that; every started GB above it (1 GB = 10^9
  bytes) is charged once at the overage price; the count restarts with each cycle. Samples that
  arrive late are picked up at the next hour of the same cycle.
* Each charge is one ledger entry naming the instance, what it pays for and its period; progress
  (``metered_until``, ``overage_billed_gb``, ``traffic_cycle_start``) is written in the same
  transaction, so re-running the worker never charges twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, literal, select
from sqlalchemy.engine import Connection

from zbmc.billing import changes, ledger
from zbmc.billing.changes import Change
from zbmc.clock import iso
from zbmc.db.direct import Statement, Tx
from zbmc.db.tables import orders, traffic_samples
from zbmc.domain.changes import (
    BY_BANDWIDTH,
    BY_TRAFFIC_PACKAGE,
    POSTPAID,
    traffic_allowance_gb,
)
from zbmc.domain.lifecycle import RECYCLE
from zbmc.domain.periods import add_months, months_between_anchor
from zbmc.domain.pricing import (
    PriceList,
    billable_mbps,
    billable_tb,
    hourly_price,
    overage_gb,
    quote,
)
from zbmc.domain.sizes import gb_to_tb_text
from zbmc.store import instances as store

HOUR = 3600


@dataclass(frozen=True)
class History:
    """Applied changes of one value (bandwidth or package) since metering last ran."""

    current: int | None
    changes: list[tuple[int, int | None, int | None]]  # (applied_at, from, to), by time

    def highest(self, start: int, end: int) -> int | None:
        value = self.current
        for applied_at, from_value, _to in self.changes:
            if applied_at > start:
                value = from_value
                break
        values = [value] + [to for at, _f, to in self.changes if start <= at < end]
        present = [v for v in values if v is not None]
        return max(present) if present else None


def _walk() -> Statement:
    """The changes applied after ``since``, newest first, from the order ``head`` back through
    ``previous_order``: one recursive query, each step a primary-key read, which stops after
    the first change applied at or before ``since`` (dropped by the outer WHERE)."""
    link = (orders.c.applied_at, orders.c.from_value, orders.c.to_value, orders.c.previous_order)
    chain = (
        select(*link, literal(0).label("depth"))
        .where(orders.c.order_number == bindparam("head"))
        .cte("chain", recursive=True)
    )
    chain = chain.union_all(
        select(*link, (chain.c.depth + 1).label("depth"))
        .select_from(orders.join(chain, orders.c.order_number == chain.c.previous_order))
        .where(chain.c.applied_at > bindparam("since"))
    )
    return Statement(
        select(chain.c.applied_at, chain.c.from_value, chain.c.to_value)
        .where(chain.c.applied_at > bindparam("since"))
        .order_by(chain.c.depth.desc())
    )


_WALK = _walk()


def history(conn: Connection, row: Row[Any], change: Change, since: int) -> History:
    """The changes of one kind applied to the instance after ``since``, by time: a walk back
    from its last applied order (``change.applied_column``) through ``orders.previous_order``
    (docs/billing.md)."""
    head = getattr(row, change.applied_column)
    found = [] if head is None else Tx.of(conn).tuples(_WALK, {"head": head, "since": since})
    return History(getattr(row, change.value_column), [(int(a), f, t) for a, f, t in found])


def meter(conn: Connection, row: Row[Any], now: int, until: int | None = None) -> int:
    """Bill every whole hour of ``row`` up to ``until`` (default ``now``); return the number of
    ledger entries."""
    until = now if until is None else until
    start = int(row.metered_until)
    if start + HOUR > until:
        return 0
    facts = store.facts(row)
    prices = store.price_list(row)
    bandwidth = history(conn, row, changes.BANDWIDTH, start)
    package = history(conn, row, changes.TRAFFIC_PACKAGE, start)
    traffic = (
        _TrafficCycle.load(conn, row, now, facts.default_package_gb) if _has_package(row) else None
    )
    entries: list[ledger.Entry] = []
    hour = start
    while hour + HOUR <= until:
        end = hour + HOUR
        if row.instance_charge_type == POSTPAID and row.status != RECYCLE:
            _charge_hour(
                entries,
                row,
                facts.free_bandwidth,
                facts.default_package_gb,
                prices,
                bandwidth,
                package,
                hour,
                end,
            )
        if traffic is not None:
            traffic.bill_until(entries, row, prices, end)
        hour = end
    values: dict[str, Any] = {"metered_until": hour}
    if traffic is not None:
        values |= {"traffic_cycle_start": traffic.start, "overage_billed_gb": traffic.billed_gb}
    store.set_values(conn, row.instance_id, **values)
    if entries:  # one balance update and one multi-row insert for all the hours
        ledger.debit_all(conn, row.tenant_id, entries, now)
    return len(entries)


def _has_package(row: Row[Any]) -> bool:
    return row.internet_charge_type == BY_TRAFFIC_PACKAGE and row.traffic_package_gb is not None


def _charge_hour(
    entries: list[ledger.Entry],
    row: Row[Any],
    free_mbps: int,
    free_gb: int,
    prices: PriceList,
    bandwidth: History,
    package: History,
    start: int,
    end: int,
) -> None:
    mbps = bandwidth.highest(start, end) or 0
    package_gb = package.highest(start, end)
    billable_bw = billable_mbps(mbps, free_mbps) if row.internet_charge_type == BY_BANDWIDTH else 0
    billable_package = (
        billable_tb(package_gb, free_gb)
        if row.internet_charge_type == BY_TRAFFIC_PACKAGE and package_gb is not None
        else Decimal(0)
    )
    amount = hourly_price(
        prices, billable_bandwidth=billable_bw, billable_package_tb=billable_package
    )
    if amount.cents == 0:
        return
    what = (
        f"{mbps} Mbps"
        if row.internet_charge_type == BY_BANDWIDTH
        else (f"{gb_to_tb_text(package_gb or 0)} TB package")
    )
    entries.append(
        ledger.Entry(
            kind=ledger.CHARGE,
            amount=amount.cents,
            description=f"postpaid hour of instance {row.instance_id}: instance + {what}",
            instance_id=row.instance_id,
            period_start=start,
            period_end=end,
        ),
    )


@dataclass
class _TrafficCycle:
    anchor: int
    start: int
    billed_gb: int
    samples: list[tuple[int, int]]  # (ts, out_bytes) after the cycle start, by time
    free_gb: int  # the offering's free allowance

    @classmethod
    def load(cls, conn: Connection, row: Row[Any], now: int, free_gb: int) -> _TrafficCycle:
        anchor = row.billing_anchor if row.billing_anchor is not None else row.create_time
        start = row.traffic_cycle_start if row.traffic_cycle_start is not None else anchor
        samples = conn.execute(
            select(traffic_samples.c.ts, traffic_samples.c.out_bytes)
            .where(
                traffic_samples.c.instance_id == row.instance_id,
                traffic_samples.c.ts > start,
                traffic_samples.c.ts <= now,
            )
            .order_by(traffic_samples.c.ts)
        ).all()
        return cls(
            int(anchor),
            int(start),
            int(row.overage_billed_gb),
            [(int(t), int(b)) for t, b in samples],
            free_gb,
        )

    def _end(self) -> int:
        return add_months(self.anchor, months_between_anchor(self.anchor, self.start) + 1)

    def _used(self, start: int, until: int) -> int:
        return sum(b for ts, b in self.samples if start < ts <= until)

    def bill_until(
        self, entries: list[ledger.Entry], row: Row[Any], prices: PriceList, end: int
    ) -> None:
        cycle_end = self._end()
        if end > cycle_end:  # close the cycle first, then start the next one
            self._charge(entries, row, prices, cycle_end)
            self.start, self.billed_gb = cycle_end, 0
        self._charge(entries, row, prices, end)

    def _charge(
        self, entries: list[ledger.Entry], row: Row[Any], prices: PriceList, until: int
    ) -> None:
        package_gb = int(row.traffic_package_gb)
        allowance_gb = traffic_allowance_gb(package_gb, self.free_gb)
        total = overage_gb(self._used(self.start, until), allowance_gb)
        extra = total - self.billed_gb
        if extra <= 0:
            return
        amount = quote(prices, extra * prices.overage_gb)
        self.billed_gb = total
        what = "package" if package_gb >= allowance_gb else "free allowance"
        if amount.cents == 0:
            return
        entries.append(
            ledger.Entry(
                kind=ledger.CHARGE,
                amount=amount.cents,
                description=(
                    f"traffic overage of instance {row.instance_id}: {extra} GB above the "
                    f"{gb_to_tb_text(allowance_gb)} TB {what} (cycle from {iso(self.start)},"
                    f" {total} GB over so far)"
                ),
                instance_id=row.instance_id,
                period_start=self.start,
                period_end=until,
            ),
        )


def close(conn: Connection, row: Row[Any], at: int) -> int:
    """Metering ends at ``at`` (TerminateInstance): bill the whole hours not yet billed and the
    hour that had started, in full (the hour is the billing unit, docs/billing.md). Returns the
    number of ledger entries; the caller stops metering (``metered_until`` NULL)."""
    if row.metered_until is None or int(row.metered_until) >= at:
        return 0
    start = int(row.metered_until)
    hours = -(-(at - start) // HOUR)  # started hours
    return meter(conn, row, at, until=start + hours * HOUR)
