"""Alembic, driven from code: upgrade to head and check that a database is at head."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from zbmc.db.engine import unit_of_work

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")


def head_revision(engine: Engine | None = None) -> str | None:
    return _head()


@functools.cache
def _head() -> str | None:
    # The scripts ship with the package and never change while it runs: read them once.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    # Checking the revision is routine (every start, every admin command): keep Alembic quiet.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    # A read (SQLite: a plain BEGIN): the check must not wait for a writer's lock.
    with unit_of_work(engine, write=False) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision(engine)
