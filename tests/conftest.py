"""Fixtures: one live stack per database backend for the session, fresh stacks on demand.

Backends: SQLite always; PostgreSQL when reachable at ZBMC_TEST_POSTGRES_URL (default
postgresql+psycopg://root@127.0.0.1:5432/test). Unreachable PostgreSQL skips those tests with
the reason, unless ZBMC_TEST_REQUIRE_POSTGRES=1 (as in CI), which makes it an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.harness import Stack, Tenant, database, free_port, postgres_reachable
from zbmc.db.engine import create_db_engine
from zbmc.db.migrate import upgrade

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _check_backend(backend: str) -> None:
    if backend != "postgres":
        return
    reason = postgres_reachable()
    if reason is None:
        return
    if os.environ.get("ZBMC_TEST_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (ZBMC_TEST_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


StackFactory = Callable[..., Stack]


def _make_stack_factory(
    backend: str, tmp_factory: pytest.TempPathFactory, resources: ExitStack
) -> StackFactory:
    def make(start: bool = True, **env: str) -> Stack:
        tmp = tmp_factory.mktemp(f"stack-{backend}")
        url = resources.enter_context(database(backend, tmp))
        stack = Stack(backend=backend, database_url=url, port=free_port())
        stack.admin.run("db", "upgrade")
        stack.admin.run("catalogue", "load", "--demo")
        if start:
            stack.start(tmp / "server.log", **env)
        resources.callback(stack.stop)
        return stack

    return make


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name = str(request.param)
    _check_backend(name)
    return name


@pytest.fixture(params=BACKENDS)
def migrated_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a new database of each backend, at the migrations' head (no server)."""
    _check_backend(str(request.param))
    with database(str(request.param), tmp_path) as url:
        engine = create_db_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture(scope="session")
def stack(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared server of the session for this backend (system clock)."""
    with ExitStack() as resources:
        yield _make_stack_factory(backend, tmp_path_factory, resources)()


@pytest.fixture
def make_stack(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """Fresh stacks (own database and server) for tests that move the clock or kill servers."""
    with ExitStack() as resources:
        yield _make_stack_factory(backend, tmp_path_factory, resources)


@pytest.fixture
def tenant(stack: Stack) -> Tenant:
    return stack.tenant()


@pytest.fixture(params=["2022-11-20", "2026-02-01"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_report_header(config: pytest.Config) -> str:
    reason = postgres_reachable()
    return "postgres: " + ("available" if reason is None else f"not available ({reason})")
