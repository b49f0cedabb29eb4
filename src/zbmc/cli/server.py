"""``zbmc serve`` and ``zbmc worker``: the server's commands (loaded only when one of them runs)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from zbmc import logs
from zbmc.cli.common import data_dir_option, require_head, settings_from
from zbmc.cli.output import emit
from zbmc.db.engine import MissingDriver, unit_of_work
from zbmc.db.migrate import upgrade
from zbmc.settings import Settings

if TYPE_CHECKING:
    from zbmc.app import Runtime
    from zbmc.worker import TickReport


def runtime_of(settings: Settings) -> Runtime:
    """The runtime, or a one-line error (exit 1) when the database driver is missing."""
    from zbmc.app import build_runtime

    try:
        return build_runtime(settings)
    except MissingDriver as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@data_dir_option
@click.option(
    "--host", default=None, help="Address to listen on (env ZBMC_HOST, default 127.0.0.1)."
)
@click.option("--port", type=int, default=None, help="Port (env ZBMC_PORT, default 8080).")
@click.option("--demo", is_flag=True, help="Set up the demo catalogue, tenant and instances.")
@click.option("--migrate", is_flag=True, help="Upgrade the database schema before starting.")
@click.option(
    "--no-worker",
    is_flag=True,
    help="Run no background worker in the API processes (run `zbmc worker` separately).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Number of API processes sharing the port (env ZBMC_WORKERS, default 1).",
)
@click.option("--log-level", default=None, help="debug, info, warning or error.")
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Serve HTTPS with this PEM certificate chain (env ZBMC_TLS_CERT); needs --tls-key.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The PEM private key of --tls-cert (env ZBMC_TLS_KEY).",
)
@click.option(
    "--tls-dev",
    is_flag=True,
    help="Serve HTTPS with a certificate from a local development CA kept under "
    "DATA_DIR/tls (created on first use; env ZBMC_TLS_DEV=1). Prints how to trust it.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True, max=3600),
    default=None,
    help="Seconds a request (headers and body) may take to arrive; slower connections are "
    "closed (env ZBMC_REQUEST_READ_TIMEOUT_SECONDS, default 10).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1, max=1_000_000),
    default=None,
    help="Open connections per API process; beyond it the longest-waiting idle or unfinished "
    "one is closed (env ZBMC_MAX_CONNECTIONS, default 1000).",
)
@click.option(
    "--keep-alive",
    type=click.IntRange(min=1, max=3600),
    default=None,
    help="Seconds an idle keep-alive connection stays open (env ZBMC_KEEP_ALIVE_SECONDS, "
    "default 5).",
)
def serve(
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    demo: bool,
    migrate: bool,
    no_worker: bool,
    workers: int | None,
    log_level: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_dev: bool,
    request_timeout: float | None,
    max_connections: int | None,
    keep_alive: int | None,
) -> None:
    """Serve the API on POST /api/v2/bmc (with a background worker unless --no-worker)."""
    import uvicorn

    from zbmc.protocol import ZbmcHttpProtocol
    from zbmc.ratelimit import parse_policy

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    settings = settings_from(
        data_dir,
        host=host,
        port=port,
        log_level=log_level,
        tls_cert=tls_cert,
        tls_key=tls_key,
        request_read_timeout_seconds=request_timeout,
        max_connections=max_connections,
        keep_alive_seconds=keep_alive,
    )
    if no_worker:
        settings = settings.with_overrides(run_worker=False)
    if tls_dev:
        settings = settings.with_overrides(tls_dev=True)
    tls = _tls_files(settings)
    logs.configure(settings.log_format, settings.log_level)
    try:
        parse_policy(settings.rate_limit, settings.rate_limit_actions)
        processes = workers or int(os.environ.get("ZBMC_WORKERS") or 1)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    runtime = runtime_of(settings)
    if demo or migrate:
        upgrade(runtime.engine)
    require_head(runtime.engine)
    if demo:
        _announce_demo(runtime, tls is not None)
    runtime.engine.dispose()
    # Each API process builds its app from the environment (the factory), so flags go there too.
    os.environ.update(
        ZBMC_DATA_DIR=str(settings.data_dir.resolve()),
        ZBMC_HOST=settings.host,
        ZBMC_PORT=str(settings.port),
        ZBMC_LOG_LEVEL=settings.log_level,
        ZBMC_RUN_WORKER="1" if settings.run_worker else "0",
        ZBMC_REQUEST_READ_TIMEOUT_SECONDS=str(settings.request_read_timeout_seconds),
        ZBMC_MAX_CONNECTIONS=str(settings.max_connections),
        ZBMC_KEEP_ALIVE_SECONDS=str(settings.keep_alive_seconds),
    )
    with _metrics_dir(processes):
        uvicorn.run(
            "zbmc.app:from_environment",
            factory=True,
            workers=processes,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            log_config=None,
            access_log=False,
            server_header=False,  # no `server: uvicorn` on every response
            http=ZbmcHttpProtocol,  # held writes, slow-client limits, the direct lane
            timeout_graceful_shutdown=30,
            # Slow clients: uvicorn closes idle keep-alive connections; the protocol adds a
            # deadline for reading a request and a connection cap (zbmc.connections).
            timeout_keep_alive=settings.keep_alive_seconds,
            backlog=2048,
            ssl_certfile=None if tls is None else str(tls[0]),
            ssl_keyfile=None if tls is None else str(tls[1]),
        )


def _tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """(certificate chain, key) to serve HTTPS with, or None for plain HTTP."""
    from zbmc import certificates

    if settings.tls_dev and settings.tls_cert is not None:
        raise click.UsageError("--tls-dev issues its own certificate: drop --tls-cert/--tls-key")
    try:
        if settings.tls_cert is not None and settings.tls_key is not None:
            certificates.check_pair(settings.tls_cert, settings.tls_key)
            return settings.tls_cert, settings.tls_key
        if not settings.tls_dev:
            return None
        dev = certificates.ensure_dev_certificates(
            certificates.default_directory(settings.data_dir), settings.host
        )
        certificates.check_pair(dev.cert, dev.key)
    except certificates.CertificateError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(
        ("issued " if dev.issued else "reusing ")
        + f"{dev.cert}\n"
        + certificates.trust_hint(dev.ca, settings.host, settings.port)
    )
    return dev.cert, dev.key


@contextlib.contextmanager
def _metrics_dir(processes: int) -> Iterator[None]:
    """Several processes share their Prometheus values through files in one directory."""
    from zbmc.metrics import MULTIPROC_ENV, reset_multiprocess_dir

    if processes == 1:
        yield
        return
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        reset_multiprocess_dir(given)
        yield
        return
    with tempfile.TemporaryDirectory(prefix="zbmc-metrics-") as path:
        os.environ[MULTIPROC_ENV] = path
        try:
            yield
        finally:
            os.environ.pop(MULTIPROC_ENV, None)


def _announce_demo(runtime: Runtime, https: bool) -> None:
    from zbmc.demo import ensure_demo, snippet

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
        "(`zbmc admin clock advance 31d` moves it)\n"
        f"  web console:         {'https' if https else 'http'}://"
        f"{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:"
        f"{settings.port}/console (sign in with the key above)\n\n"
        "Try it with the official SDK (pip install zenlayercloud-sdk-python):\n\n"
        + snippet(key, settings.host, settings.port, https)
        + "\n"
    )


@click.command()
@data_dir_option
@click.option("--once", is_flag=True, help="Run one tick (catching up on everything due) and exit.")
@click.option("--interval", type=float, default=None, help="Seconds between ticks.")
@click.option("--json", "as_json", is_flag=True, help="Print tick reports as JSON.")
@click.option(
    "--metrics-port", type=int, default=None, help="Serve Prometheus /metrics on this port."
)
def worker(
    data_dir: Path | None,
    once: bool,
    interval: float | None,
    as_json: bool,
    metrics_port: int | None,
) -> None:
    """Apply due changes, finish Processing changes, renew and meter."""
    from zbmc.metrics import scrape_registry

    settings = settings_from(data_dir, worker_interval_seconds=interval)
    logs.configure(settings.log_format, settings.log_level)
    runtime = runtime_of(settings)
    require_head(runtime.engine)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        registry = scrape_registry(runtime.engine, runtime.clock)
        start_http_server(metrics_port, addr=settings.host, registry=registry)
    try:
        while True:
            report = runtime.worker.catch_up()
            if once or any(v for k, v in report.as_dict().items() if k != "now"):
                _print_report(report, as_json)
            if once:
                return
            time.sleep(settings.worker_interval_seconds)
    finally:
        if runtime.turns is not None:
            runtime.turns.close()
        runtime.engine.dispose()


def _print_report(report: TickReport, as_json: bool) -> None:
    emit(report.as_dict(), as_json)
    sys.stdout.flush()
