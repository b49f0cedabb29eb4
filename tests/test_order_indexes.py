"""How an instance's orders are found, on both backends, now that no index of the orders is keyed
by instance (migration 0014): metering's history of applied changes by the chain of
``previous_order``, one primary-key read per change; a release's withdrawal of waiting
downgrades by the pending orders the instance row names; the listing of one instance's orders
through the tenant's. Each statement
these run is explained: a query whose WHERE clause lost the predicate's exact term would fall
back to ix_orders_due or a scan of every order ever made, and only the plan shows it."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Engine, event, insert, select, text
from sqlalchemy.engine import Connection

from zbmc.billing import changes, metering, terminations
from zbmc.billing import orders as order_states
from zbmc.db.tables import orders
from zbmc.store import accounts
from zbmc.tenancy import create_tenant

NOW = 1_800_000_000


def _order(tenant: str, instance: str, n: int, state: str) -> dict[str, Any]:
    enabled = [m for m in range(n) if m < 200 or m % 4 == 0]  # as _seed makes them
    return {
        "previous_order": f"{instance}-{enabled[-1]:04d}" if enabled else None,
        "order_number": f"{instance}-{n:04d}",
        "tenant_id": tenant,
        "instance_id": instance,
        "kind": order_states.BANDWIDTH,
        "from_value": n,
        "to_value": n + 1,
        "amount": 0,
        "state": state,
        "created_at": NOW + n,
        "effective_at": NOW + n,
        "applied_at": NOW + n if state == order_states.ENABLED else None,
        "attempts": 0,
    }


STATES = (
    order_states.ENABLED,
    order_states.PROCESSING,
    order_states.WAIT_TO_ENABLE,
    order_states.CANCELLED,
)


def _seed(conn: Connection) -> str:
    tenant = create_tenant(conn, "plans", Decimal(0), NOW).tenant_id
    rows = [
        _order(tenant, instance, n, STATES[n % 4] if n >= 200 else order_states.ENABLED)
        for instance in ("i-a", "i-b")
        for n in range(204)
    ]
    conn.execute(insert(orders), rows)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE orders")  # as autovacuum would: one tenant, two instances
    return tenant


def _explained(conn: Connection, statement: str, parameters: Any) -> str:
    if conn.dialect.name == "sqlite":
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        return "\n".join(str(row[-1]) for row in plan)
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table: ask for its index
    plan = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
    return "\n".join(str(row[0]) for row in plan)


def _statements(engine: Engine, run: Any) -> tuple[Any, list[str]]:
    """What ``run(conn, tenant)`` returns, and the plans of the statements on orders it ran."""
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("UPDATE orders") or "FROM orders" in statement:
            seen.append((statement, parameters))

    with engine.begin() as conn:
        tenant = _seed(conn)
        event.listen(engine, "before_cursor_execute", capture)
        try:
            result = run(conn, tenant)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        plans = [_explained(conn, statement, parameters) for statement, parameters in seen]
        conn.rollback()
    assert seen
    return result, plans


def test_metering_history_walks_the_chain_by_the_primary_key(migrated_engine: Engine) -> None:
    instance = SimpleNamespace(bw_applied_order="i-a-0200", bandwidth=201)
    with migrated_engine.begin() as conn:
        _seed(conn)
        found = metering.history(conn, cast(Any, instance), changes.BANDWIDTH, NOW + 190)
        walk = metering._WALK.compiled(conn.dialect)  # its one statement (direct lane)
        plan = _explained(conn, walk.sql, walk.args({"head": "i-a-0199", "since": NOW + 190}))
        conn.rollback()
    # the applied changes after NOW + 190: orders 191-199, then every fourth from 200 on
    assert [at - NOW for at, _from, _to in found.changes] == [*range(191, 200), 200]
    assert found.changes[-1] == (NOW + 200, 200, 201)
    assert found.current == 201
    # both steps read an order by its key; none reads the table
    assert plan.count("sqlite_autoindex_orders_1") + plan.count("pk_orders") == 2, plan
    assert "SCAN orders" not in plan, plan
    assert "Seq Scan on orders" not in plan, plan


def test_an_instance_without_applied_changes_has_no_history(migrated_engine: Engine) -> None:
    instance = SimpleNamespace(tp_applied_order=None, traffic_package_gb=None)
    with migrated_engine.connect() as conn:
        found = metering.history(conn, cast(Any, instance), changes.TRAFFIC_PACKAGE, 0)
    assert found.changes == []
    assert found.current is None


def _instance(conn: Connection, tenant: str, instance: str, bw_order: str) -> None:
    conn.execute(
        text(
            "INSERT INTO instances (instance_id, tenant_id, zone_id, instance_type_id,"
            " instance_name, hostname, instance_charge_type, internet_charge_type, status,"
            " bandwidth, auto_renew, create_time, bw_status, bw_order, tags)"
            " VALUES (:i, :t, 'z', 't', :i, :i, 'PREPAID', 'ByBandwidth', 'RUNNING', 10, false,"
            " :now, 'WaitToEnable', :o, '[]')"
        ),
        {"i": instance, "t": tenant, "now": NOW, "o": bw_order},
    )


def test_a_release_withdraws_waiting_downgrades_by_the_primary_key(
    migrated_engine: Engine,
) -> None:
    def withdraw(conn: Connection, tenant: str) -> list[tuple[str, str, int | None]]:
        for instance in ("i-a", "i-b"):  # each names its waiting downgrade
            _instance(conn, tenant, instance, f"{instance}-0202")
        terminations.withdraw_downgrades(conn, "i-a", NOW + 500)
        rows = conn.execute(
            select(orders.c.order_number, orders.c.state, orders.c.cancelled_at).where(
                orders.c.created_at >= NOW + 200
            )
        ).all()
        return sorted((number, state, cancelled) for number, state, cancelled in rows)

    found, plans = _statements(migrated_engine, withdraw)
    assert ("i-a-0202", order_states.CANCELLED, NOW + 500) in found  # was WAIT_TO_ENABLE
    assert ("i-b-0202", order_states.WAIT_TO_ENABLE, None) in found  # another instance's
    assert ("i-a-0201", order_states.PROCESSING, None) in found
    assert "sqlite_autoindex_orders_1" in plans[0] or "pk_orders" in plans[0], plans


def test_one_instances_orders_are_listed_through_the_tenants_orders(
    migrated_engine: Engine,
) -> None:
    listed, plans = _statements(
        migrated_engine, lambda conn, tenant: accounts.list_orders(conn, tenant, "i-b")
    )
    assert [o["orderNumber"] for o in listed] == [f"i-b-{n:04d}" for n in range(204)]
    assert [o["state"] for o in listed][-4:] == list(STATES)
    assert "ix_orders_tenant_id" in plans[0], plans


def test_the_orders_have_no_index_by_instance(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            found = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders'"
        else:
            found = "SELECT indexname FROM pg_indexes WHERE tablename = 'orders'"
        names = sorted(str(name) for (name,) in conn.exec_driver_sql(found))
    assert not [name for name in names if "instance" in name], names
    assert "ix_orders_due" in names
