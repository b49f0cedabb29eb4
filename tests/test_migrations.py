"""The migrations build exactly the schema that ``zbmc.db.tables`` describes, on both backends:
the code's queries (and the planner's index choices, migration 0012) are written against the
tables module, and a database is built by the migrations. Alembic's autogenerate comparison
finds any table, column, index, unique constraint or foreign key in one and not the other."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from tests.conftest import _check_backend
from tests.harness import database
from zbmc.db.engine import create_db_engine
from zbmc.db.migrate import alembic_config, upgrade
from zbmc.db.tables import metadata
from zbmc.tenancy import create_tenant

NOW = 1_800_000_000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    _check_backend(str(request.param))
    with database(str(request.param), tmp_path) as url:
        engine = create_db_engine(url)
        yield engine
        engine.dispose()


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_migrations_build_the_tables_module(engine: Engine) -> None:
    upgrade(engine)
    assert _differences(engine) == []


def test_the_last_migration_goes_down_and_up_again(engine: Engine) -> None:
    upgrade(engine)
    command.downgrade(alembic_config(engine), "-1")
    assert _differences(engine) != []  # the last migration changed something the module has
    upgrade(engine)
    assert _differences(engine) == []


def test_0014_links_the_applied_changes_that_exist(engine: Engine) -> None:
    """Orders made before 0014: each applied change is linked to the one before it (per
    instance and kind, in the order metering read them), each pending one to the last applied
    one, and the instance names its last applied order of each kind."""
    command.upgrade(alembic_config(engine), "0013")
    with engine.begin() as conn:
        tenant = create_tenant(conn, "chains", Decimal(0), NOW).tenant_id
        for instance in ("i-1", "i-2", "i-3"):
            conn.execute(
                text(
                    "INSERT INTO instances (instance_id, tenant_id, zone_id, instance_type_id,"
                    " instance_name, hostname, instance_charge_type, internet_charge_type,"
                    " status, bandwidth, auto_renew, create_time, bw_status, tags)"
                    " VALUES (:i, :t, 'z', 't', :i, :i, 'POSTPAID', 'ByBandwidth', 'RUNNING',"
                    " 10, false, :now, 'Enable', '{}')"
                ),
                {"i": instance, "t": tenant, "now": NOW},
            )
        made = [  # (number, instance, kind, state, applied at); numbers out of time order
            ("o-9", "i-1", "BANDWIDTH", "ENABLED", NOW + 1),
            ("o-3", "i-1", "BANDWIDTH", "ENABLED", NOW + 5),
            ("o-5", "i-1", "TRAFFIC_PACKAGE", "ENABLED", NOW + 2),
            ("o-1", "i-1", "BANDWIDTH", "ENABLED", NOW + 9),
            ("o-2", "i-1", "BANDWIDTH", "PROCESSING", None),
            ("o-4", "i-2", "BANDWIDTH", "ENABLED", NOW + 3),
            ("o-6", "i-2", "BANDWIDTH", "CANCELLED", None),
            ("o-7", "i-2", "RENEW", "ENABLED", NOW + 4),
            ("o-8", "i-3", "BANDWIDTH", "WAIT_TO_ENABLE", None),
        ]
        for number, instance, kind, state, applied in made:
            conn.execute(
                text(
                    "INSERT INTO orders (order_number, tenant_id, instance_id, kind, amount,"
                    " state, created_at, effective_at, applied_at, attempts)"
                    " VALUES (:n, :t, :i, :k, 0, :s, :c, :c, :a, 0)"
                ),
                {"n": number, "t": tenant, "i": instance, "k": kind, "s": state}
                | {"c": applied or NOW, "a": applied},
            )
    upgrade(engine)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT order_number, previous_order FROM orders")).all()
        links = {str(number): previous for number, previous in found}
        heads = {
            i: (bw, tp)
            for i, bw, tp in conn.execute(
                text("SELECT instance_id, bw_applied_order, tp_applied_order FROM instances")
            )
        }
    assert links == {
        "o-9": None,
        "o-3": "o-9",
        "o-1": "o-3",
        "o-2": "o-1",  # pending: the last applied one
        "o-5": None,
        "o-4": None,
        "o-6": None,  # cancelled: never applied, never linked
        "o-7": None,  # not a change of bandwidth or package
        "o-8": None,  # pending, nothing applied before it
    }
    assert heads == {"i-1": ("o-1", "o-5"), "i-2": ("o-4", None), "i-3": (None, None)}
