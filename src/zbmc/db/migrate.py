"""Alembic, driven from code: upgrade to head and check that a database is at head.

Checking is routine (every start, every admin command) and must stay cheap: it reads the
``alembic_version`` table and the ``revision`` / ``down_revision`` lines of the migration files
without importing Alembic (about a third of an admin command's start-up time). Upgrading imports
Alembic. A test checks that both ways find the same head.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from zbmc.db.engine import unit_of_work

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r'^(down_revision|revision)\s*=\s*(?:"([^"]*)"|None)', re.MULTILINE)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    # Alembic announces each of its autogenerate plugins at INFO when it is imported: noise for
    # an operator (the "Running upgrade" lines stay).
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def head_revision(engine: Engine | None = None) -> str | None:
    return _head()


@functools.cache
def _head() -> str | None:
    # The scripts ship with the package and never change while it runs: read them once. The
    # head is the one revision no other file names as its down_revision.
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text("utf-8")))
        if found.get("revision"):
            revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def alembic_head() -> str | None:
    """The head as Alembic computes it (for the test that keeps ``_head`` honest)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    # A read (SQLite: a plain BEGIN): the check must not wait for a writer's lock.
    with unit_of_work(engine, write=False) as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        found = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if found is None else str(found[0])


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision(engine)
