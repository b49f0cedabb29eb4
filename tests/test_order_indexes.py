"""An instance's orders are found through the orders' two partial indexes by instance (migration
0013), on both backends: metering's history of applied changes, a release's withdrawal of
waiting downgrades and the listing of one instance's orders. Each statement these run is
explained: a query whose WHERE clause lost the predicate's exact term would fall back to
ix_orders_due or a scan of every order ever made, and only the plan shows it."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Engine, event, insert, select
from sqlalchemy.engine import Connection

from zbmc.billing import metering, terminations
from zbmc.billing import orders as order_states
from zbmc.db.tables import orders
from zbmc.store import accounts
from zbmc.tenancy import create_tenant

NOW = 1_800_000_000


def _order(tenant: str, instance: str, n: int, state: str) -> dict[str, Any]:
    return {
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
        if "orders" in statement and "instance_id" in statement:
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


def test_metering_history_uses_the_applied_index(migrated_engine: Engine) -> None:
    found, plans = _statements(
        migrated_engine,
        lambda conn, _tenant: metering.history(
            conn,
            cast(Any, SimpleNamespace(instance_id="i-a")),
            order_states.BANDWIDTH,
            0,
            NOW + 190,
        ),
    )
    # the applied changes after NOW + 190: orders 191-199, then every fourth from 200 on
    assert [at - NOW for at, _from, _to in found.changes] == [*range(191, 200), 200]
    assert all("ix_orders_instance_applied" in plan for plan in plans), plans


def test_a_release_withdraws_waiting_downgrades_through_the_unapplied_index(
    migrated_engine: Engine,
) -> None:
    def withdraw(conn: Connection, _tenant: str) -> list[tuple[str, str]]:
        terminations.withdraw_downgrades(conn, "i-a")
        rows = conn.execute(
            select(orders.c.order_number, orders.c.state).where(orders.c.created_at >= NOW + 200)
        ).all()
        return sorted((number, state) for number, state in rows)

    found, plans = _statements(migrated_engine, withdraw)
    assert ("i-a-0202", order_states.CANCELLED) in found  # was WAIT_TO_ENABLE
    assert ("i-b-0202", order_states.WAIT_TO_ENABLE) in found  # another instance's
    assert ("i-a-0201", order_states.PROCESSING) in found
    assert "ix_orders_instance_unapplied" in plans[0], plans


def test_one_instances_orders_are_listed_through_both_indexes(migrated_engine: Engine) -> None:
    listed, plans = _statements(
        migrated_engine, lambda conn, tenant: accounts.list_orders(conn, tenant, "i-b")
    )
    assert [o["orderNumber"] for o in listed] == [f"i-b-{n:04d}" for n in range(204)]
    assert [o["state"] for o in listed][-4:] == list(STATES)
    assert "ix_orders_instance_applied" in plans[0], plans
    assert "ix_orders_instance_unapplied" in plans[0], plans


def test_both_indexes_are_partial(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            found = "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
        else:
            found = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'orders'"
        every = {str(name): str(sql) for name, sql in conn.exec_driver_sql(found)}
    definitions = {k: v for k, v in every.items() if k.startswith("ix_orders_instance")}
    assert sorted(definitions) == ["ix_orders_instance_applied", "ix_orders_instance_unapplied"]
    assert "WHERE" in definitions["ix_orders_instance_applied"]
    assert "'ENABLED'" in definitions["ix_orders_instance_applied"].partition("WHERE")[2]
    assert "<>" in definitions["ix_orders_instance_unapplied"].partition("WHERE")[2]
