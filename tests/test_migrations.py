"""The migrations build exactly the schema that ``zbmc.db.tables`` describes, on both backends:
the code's queries (and the planner's index choices, migration 0012) are written against the
tables module, and a database is built by the migrations. Alembic's autogenerate comparison
finds any table, column, index, unique constraint or foreign key in one and not the other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from tests.conftest import _check_backend
from tests.harness import database
from zbmc.db.engine import create_db_engine
from zbmc.db.migrate import alembic_config, upgrade
from zbmc.db.tables import metadata


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
