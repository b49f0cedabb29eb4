"""Loading and updating instances, always scoped to their tenant."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, String, and_, any_, bindparam, select

from zbmc.db.direct import Db, NewRowVersion, Statement, Tx
from zbmc.db.tables import instance_types, instances, offerings
from zbmc.domain.changes import InstanceFacts
from zbmc.domain.pricing import PriceList
from zbmc.errors import InstanceNotFound, InstanceTypeZoneNoSell

DEFAULT_MAXIMUM_PACKAGE_GB = 1_000_000  # 1000 TB when no offering says otherwise (spec Q-N3)

# What billing and the change rules read; the JSON columns (tags, the offering's charge-type
# lists) stay out: decoding them for every row was a measurable part of a worker batch.
_UNUSED = ("zone_id", "instance_type_id", "instance_charge_types", "internet_charge_types", "qty")
_OFFERING_COLUMNS = [c.label(f"offer_{c.name}") for c in offerings.c if c.name not in _UNUSED]

_WITH_CATALOGUE = instances.join(
    instance_types, instance_types.c.instance_type_id == instances.c.instance_type_id
).outerjoin(
    offerings,
    and_(
        offerings.c.zone_id == instances.c.zone_id,
        offerings.c.instance_type_id == instances.c.instance_type_id,
    ),
)
# What ``facts`` reads of the instance type and the offering, in every load.
_CATALOGUE_FACTS = (
    instance_types.c.is_ha,
    instance_types.c.maximum_bandwidth.label("type_maximum_bandwidth"),
    offerings.c.zone_id.label("offer_zone_id"),
)
INSTANCE_WITH_CATALOGUE = select(
    *(c for c in instances.c if c.name != "tags"),
    *_CATALOGUE_FACTS,
    *_OFFERING_COLUMNS,
).select_from(_WITH_CATALOGUE)


_PRICE_NAMES = (
    "discount",
    "instance_month",
    "instance_hour",
    "bandwidth_month",
    "bandwidth_hour",
    "traffic_tb_month",
    "traffic_tb_hour",
    "overage_gb",
)
_LIMIT_NAMES = (
    "maximum_bandwidth_out",
    "default_bandwidth_out",
    "default_traffic_package_gb",
    "maximum_traffic_package_gb",
)
# What the change actions (ModifyInstanceBandwidth, ModifyInstanceTrafficPackage) read: the
# instance's state and the limits of ``facts``, without the descriptive columns and the prices.
# On SQLite every column read costs about 0.15 µs, and this is half the columns of the full
# load (6.5 instead of 11.4 µs); a charged upgrade reads its prices with ``offering_prices``.
_CHANGE_NAMES = (
    "instance_id",
    "tenant_id",
    "zone_id",
    "instance_type_id",
    "status",
    "instance_charge_type",
    "internet_charge_type",
    "bandwidth",
    "traffic_package_gb",
    "period_start",
    "expired_time",
    "bw_status",
    "bw_pending",
    "bw_order",
    "tp_status",
    "tp_pending_gb",
    "tp_order",
    "bw_applied_order",
    "tp_applied_order",
)
_FOR_CHANGE = select(
    *(instances.c[name] for name in _CHANGE_NAMES),
    *_CATALOGUE_FACTS,
    *(offerings.c[name].label(f"offer_{name}") for name in _LIMIT_NAMES),
).select_from(_WITH_CATALOGUE)


def _by_id(query: Any) -> Any:
    return query.where(
        instances.c.instance_id == bindparam("instance_id"),
        instances.c.tenant_id == bindparam("tenant_id"),
    )


# The request path's statements, precompiled (zbmc.db.direct).
_LOAD = Statement(_by_id(INSTANCE_WITH_CATALOGUE))
_LOAD_LOCKED = Statement(_by_id(INSTANCE_WITH_CATALOGUE).with_for_update(of=instances))
_LOAD_FOR_CHANGE = Statement(_by_id(_FOR_CHANGE).with_for_update(of=instances))
# PostgreSQL (arrays): the rows of several calls at once, locked in instance id order.
_LOAD_FOR_CHANGE_MANY = Statement(
    _FOR_CHANGE.where(
        instances.c.instance_id == any_(bindparam("instance_ids", type_=ARRAY(String))),
        instances.c.tenant_id == any_(bindparam("tenant_ids", type_=ARRAY(String))),
    )
    .order_by(instances.c.instance_id)
    .with_for_update(of=instances)
)
_PREFETCHED = "load_for_change"  # the key prefix of the rows it keeps in ``Tx.memo``
_PRICES = Statement(
    select(
        offerings.c.zone_id.label("offer_zone_id"),
        *(offerings.c[name].label(f"offer_{name}") for name in _PRICE_NAMES),
    ).where(
        offerings.c.zone_id == bindparam("zone_id"),
        offerings.c.instance_type_id == bindparam("instance_type_id"),
    )
)
_UPDATE = instances.update().where(instances.c.instance_id == bindparam("target_instance_id"))


def load(db: Db, tenant_id: str, instance_id: str, *, lock: bool) -> Any:
    """An instance of this tenant with its type and offering (a row with attribute access);
    other tenants' ids are not found."""
    return _found(db, _LOAD_LOCKED if lock else _LOAD, tenant_id, instance_id)


def load_for_change(db: Db, tenant_id: str, instance_id: str) -> Any:
    """Like ``load(..., lock=True)``, with only what ``facts`` and ``zbmc.billing.changes``
    read (no prices: ``offering_prices``); a row ``prefetch_for_change`` read is used once."""
    tx = Tx.of(db)
    row = tx.memo.pop((_PREFETCHED, instance_id), None)
    if row is not None and row.tenant_id == tenant_id:
        return row
    return _found(tx, _LOAD_FOR_CHANGE, tenant_id, instance_id)


def prefetch_for_change(db: Db, wanted: Sequence[tuple[str, str]]) -> None:
    """PostgreSQL: load and lock in one statement the rows that ``load_for_change`` will be
    asked for ((tenant id, instance id) pairs: the calls of a batch, ``Pipeline._shared``).
    Each is used once; ``set_values`` drops an instance's (the only writer of instances in
    the transactions that prefetch), so a later load of it reads it again."""
    tx = Tx.of(db)
    params = {
        "instance_ids": sorted({instance_id for _, instance_id in wanted}),
        "tenant_ids": sorted({tenant_id for tenant_id, _ in wanted}),
    }
    for row in tx.rows(_LOAD_FOR_CHANGE_MANY, params):
        tx.memo[(_PREFETCHED, row.instance_id)] = row


def prefetch_requests(tx: Tx, calls: list[tuple[str, Any]]) -> None:
    """``ActionSpec.prefetch`` of the actions whose requests name one ``instance_id`` that
    their handler loads with ``load_for_change``."""
    prefetch_for_change(tx, [(tenant_id, request.instance_id) for tenant_id, request in calls])


def _found(db: Db, statement: Statement, tenant_id: str, instance_id: str) -> Any:
    row = Tx.of(db).first(statement, {"instance_id": instance_id, "tenant_id": tenant_id})
    if row is None:
        raise InstanceNotFound(instance_id=instance_id)
    return row


def offering_prices(db: Db, row: Any) -> PriceList:
    """The price list of the instance's offering (``row``: any load of the instance)."""
    params = {"zone_id": row.zone_id, "instance_type_id": row.instance_type_id}
    offering = Tx.of(db).first(_PRICES, params)
    if offering is None:
        raise InstanceTypeZoneNoSell(instance_type_id=row.instance_type_id, zone_id=row.zone_id)
    return price_list(offering)


def facts(row: Any) -> InstanceFacts:
    offered = row.offer_zone_id is not None
    maximum = row.type_maximum_bandwidth
    if offered:
        maximum = min(maximum, row.offer_maximum_bandwidth_out)
    return InstanceFacts(
        instance_id=row.instance_id,
        status=row.status,
        instance_charge_type=row.instance_charge_type,
        internet_charge_type=row.internet_charge_type,
        is_ha=row.is_ha,
        bandwidth=row.bandwidth,
        maximum_bandwidth=maximum,
        free_bandwidth=row.offer_default_bandwidth_out if offered else 0,
        bw_status=row.bw_status,
        package_gb=row.traffic_package_gb,
        default_package_gb=row.offer_default_traffic_package_gb if offered else 0,
        maximum_package_gb=(
            row.offer_maximum_traffic_package_gb if offered else DEFAULT_MAXIMUM_PACKAGE_GB
        ),
        tp_status=row.tp_status,
    )


def price_list(row: Any) -> PriceList:
    if row.offer_zone_id is None:
        raise InstanceTypeZoneNoSell(instance_type_id=row.instance_type_id, zone_id=row.zone_id)
    return PriceList.from_strings(**{name: getattr(row, f"offer_{name}") for name in _PRICE_NAMES})


# The worker's searches, precompiled (zbmc.db.direct): they run on every tick.
_PERIOD_ENDED = and_(
    instances.c.instance_charge_type == "PREPAID",
    instances.c.status != "RECYCLE",
    instances.c.expired_time <= bindparam("now"),
)
_HOUR_TO_METER = and_(
    instances.c.metered_until <= bindparam("hour_ago"), instances.c.status != "RECYCLE"
)
_ANY_ENDED = Statement(select(instances.c.instance_id).where(_PERIOD_ENDED).limit(1))
_ANY_TO_METER = Statement(select(instances.c.instance_id).where(_HOUR_TO_METER).limit(1))
_TO_METER = Statement(
    INSTANCE_WITH_CATALOGUE.where(_HOUR_TO_METER)
    # ordered by the indexed column, so the search never scans the table
    .order_by(instances.c.metered_until, instances.c.instance_id)
    .limit(bindparam("limit"))
    .with_for_update(of=instances, skip_locked=True)
)


def has_ended_periods(db: Db, now: int) -> bool:
    return Tx.of(db).first(_ANY_ENDED, {"now": now}) is not None


def has_hours_to_meter(db: Db, now: int) -> bool:
    return Tx.of(db).first(_ANY_TO_METER, {"hour_ago": now - 3600}) is not None


def due_for_metering(db: Db, now: int, limit: int) -> list[Any]:
    """Instances with at least one whole hour to meter, claimed for this tick."""
    return Tx.of(db).rows(_TO_METER, {"hour_ago": now - 3600, "limit": limit})


def ended_periods(db: Db, now: int, limit: int) -> list[Any]:
    """Prepaid instances whose period has ended, claimed for this tick, oldest boundary first
    (ties in instance id order within the batch)."""
    claimed = Tx.of(db).rows(_ENDED, {"now": now, "limit": limit})
    claimed.sort(key=lambda row: (row.expired_time, row.instance_id))
    return claimed


# Ordered by the indexed column alone, so the scan stops after ``limit`` rows. With the
# instance id as a tie-break the database read and sorted every ended row on every tick: 14 s
# of a 100 000 instance catch-up on PostgreSQL (bench/worker_catchup.py), where all of them
# ended at the same second. The caller orders the ties of a batch instead.
_ENDED = Statement(
    INSTANCE_WITH_CATALOGUE.where(_PERIOD_ENDED)
    .order_by(instances.c.expired_time)
    .limit(bindparam("limit"))
    .with_for_update(of=instances, skip_locked=True)
)


# No host operation: an instance's columns once its operation is finished (zbmc.hosts), or
# abandoned when the instance leaves service (terminated, or recycled at the end of an unpaid
# period): the worker must not finish a stop or a start over RECYCLE.
NO_HOST_OP: dict[str, Any] = {
    "host_op": None,
    "host_op_due": None,
    "host_op_attempts": 0,
    "host_op_error": None,
}


def set_many(db: Db, changes: list[dict[str, Any]]) -> None:
    """Several instances at once (one executemany); each dict has ``target_instance_id`` and the
    same other keys (column names)."""
    if changes:
        columns = sorted(name for name in changes[0] if name != "target_instance_id")
        tx = Tx.of(db)
        for change in changes:
            tx.memo.pop((_PREFETCHED, change["target_instance_id"]), None)
        tx.run_many(_setter(*columns), changes)


def set_values(db: Db, instance_id: str, **values: Any) -> None:
    """(Sent with the transaction's next statement where it can: ``Tx.later``.)"""
    tx = Tx.of(db)
    tx.memo.pop((_PREFETCHED, instance_id), None)
    tx.later(_setter(*sorted(values)), {"target_instance_id": instance_id, **values})


@functools.cache
def _setter(*columns: str) -> Statement:
    """The UPDATE of these columns (precompiled, zbmc.db.direct); its SET parameters are named
    after the columns."""
    return Statement(
        _UPDATE.values(row_version=NewRowVersion()),
        columns=[*columns, "target_instance_id"],
        row="target_instance_id",
    )


# Instances in the recycle bin since before a moment (the worker releases them).
_RECYCLED_BEFORE = and_(
    instances.c.recycled_at <= bindparam("cutoff"), instances.c.status == "RECYCLE"
)
_ANY_RECYCLED = Statement(select(instances.c.instance_id).where(_RECYCLED_BEFORE).limit(1))
_RECYCLED = Statement(
    select(
        instances.c.instance_id,
        instances.c.tenant_id,
        instances.c.zone_id,
        instances.c.instance_type_id,
    )
    .where(_RECYCLED_BEFORE)
    .order_by(instances.c.recycled_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


def has_recycled_before(db: Db, cutoff: int) -> bool:
    return Tx.of(db).first(_ANY_RECYCLED, {"cutoff": cutoff}) is not None


def recycled_before(db: Db, cutoff: int, limit: int) -> list[Any]:
    """Instances in RECYCLE since ``cutoff`` or earlier, claimed for this tick."""
    return Tx.of(db).rows(_RECYCLED, {"cutoff": cutoff, "limit": limit})
