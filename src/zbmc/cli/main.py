"""``zbmc serve``, ``zbmc worker`` and the ``zbmc admin`` group."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click
from sqlalchemy import Engine

from zbmc.app import Runtime, build_runtime, create_app
from zbmc.cli.admin import admin
from zbmc.cli.output import emit
from zbmc.db.engine import unit_of_work
from zbmc.db.migrate import is_at_head, upgrade
from zbmc.demo import ensure_demo, snippet
from zbmc.settings import Settings, load_settings
from zbmc.worker import TickReport


def settings_from(data_dir: Path | None, **overrides: object) -> Settings:
    try:
        settings = load_settings()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return settings.with_overrides(data_dir=data_dir, **overrides)


def require_head(engine: Engine) -> None:
    if not is_at_head(engine):
        raise click.ClickException(
            "the database schema is behind the code; run `zbmc admin db upgrade` first"
        )


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the embedded SQLite database (env ZBMC_DATA_DIR, default ./zbmc-data). "
    "Ignored when ZBMC_DATABASE_URL is set.",
)


@click.group()
@click.version_option(package_name="zbmc")
def main() -> None:
    """zbmc: the Zenlayer Cloud Bare Metal (BMC) API 2.0, self-hosted."""


@main.command()
@data_dir_option
@click.option(
    "--host", default=None, help="Address to listen on (env ZBMC_HOST, default 127.0.0.1)."
)
@click.option("--port", type=int, default=None, help="Port (env ZBMC_PORT, default 8080).")
@click.option("--demo", is_flag=True, help="Set up the demo catalogue, tenant and instances.")
@click.option("--migrate", is_flag=True, help="Upgrade the database schema before starting.")
@click.option("--no-worker", is_flag=True, help="Do not run the background worker in this process.")
@click.option("--log-level", default=None, help="debug, info, warning or error.")
def serve(
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    demo: bool,
    migrate: bool,
    no_worker: bool,
    log_level: str | None,
) -> None:
    """Serve the API on POST /api/v2/bmc (with a background worker unless --no-worker)."""
    import uvicorn

    settings = settings_from(data_dir, host=host, port=port, log_level=log_level)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    runtime = build_runtime(settings)
    if demo or migrate:
        upgrade(runtime.engine)
    require_head(runtime.engine)
    if demo:
        _announce_demo(runtime)
    runtime.engine.dispose()
    app = create_app(settings, run_worker=not no_worker)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=30,
    )


def _announce_demo(runtime: Runtime) -> None:
    with unit_of_work(runtime.engine) as conn:
        setup = ensure_demo(conn, runtime.clock)
    settings = runtime.settings
    key = setup.key
    click.echo(
        "\nzbmc demo ("
        + ("created" if setup.created else "existing data")
        + f", database {settings.effective_database_url})\n"
        f"  tenant:              {key.tenant_id}\n"
        f"  access key id:       {key.access_key_id}\n"
        f"  access key password: {key.access_key_password}\n"
        "  prices are ILLUSTRATIVE; the billing clock is simulated "
        "(`zbmc admin clock advance 31d` moves it)\n\n"
        "Try it with the official SDK (pip install zenlayercloud-sdk-python):\n\n"
        + snippet(key, settings.host, settings.port)
        + "\n"
    )


@main.command()
@data_dir_option
@click.option("--once", is_flag=True, help="Run one tick (catching up on everything due) and exit.")
@click.option("--interval", type=float, default=None, help="Seconds between ticks.")
@click.option("--json", "as_json", is_flag=True, help="Print tick reports as JSON.")
def worker(data_dir: Path | None, once: bool, interval: float | None, as_json: bool) -> None:
    """Apply due changes, finish Processing changes, renew and meter."""
    settings = settings_from(data_dir, worker_interval_seconds=interval)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    runtime = build_runtime(settings)
    require_head(runtime.engine)
    while True:
        report = runtime.worker.tick()
        if once or report.applied or report.retried:
            _print_report(report, as_json)
        if once:
            return
        time.sleep(settings.worker_interval_seconds)


def _print_report(report: TickReport, as_json: bool) -> None:
    emit({"now": report.now, "applied": report.applied, "retried": report.retried}, as_json)
    sys.stdout.flush()


main.add_command(admin)
