"""``zbmc admin``: operators' commands, working directly on the database (never through HTTP).

Every command runs in one transaction. Output is a readable table, or JSON with ``--json``;
the JSON shapes are a contract that scripts and test harnesses rely on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from zbmc.cli.common import data_dir_option, json_option, require_head, settings_from
from zbmc.cli.lazy import LazyGroup
from zbmc.cli.output import emit
from zbmc.clock import Clock, iso
from zbmc.db.engine import MissingDriver, create_db_engine, unit_of_work
from zbmc.db.migrate import current_revision, head_revision, upgrade
from zbmc.domain.changes import INTERNET_CHARGE_TYPES
from zbmc.settings import Settings
from zbmc.store import accounts
from zbmc.tenancy import (
    NotFound,
    create_key,
    create_tenant,
    create_token,
    revoke_key,
    revoke_token,
    top_up,
)


class Amount(click.ParamType):  # type: ignore[type-arg]
    name = "amount"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not a decimal amount", param, ctx)
        if not amount.is_finite() or amount < 0:
            self.fail("amounts are finite and not negative", param, ctx)
        return amount


AMOUNT = Amount()


@dataclass(frozen=True)
class Runtime:
    """What admin commands work with: the database and the billing clock. Deliberately not
    ``zbmc.app.Runtime``: importing the server (Starlette, metrics, the worker) would double the
    start-up time of every command (docs/performance.md, "Admin command start-up")."""

    settings: Settings
    engine: Engine
    clock: Clock


def _runtime(ctx: click.Context) -> Runtime:
    runtime = ctx.obj
    assert isinstance(runtime, Runtime)
    return runtime


@contextmanager
def transaction(
    ctx: click.Context, *, check_schema: bool = True
) -> Iterator[tuple[Connection, int]]:
    """One transaction for the command; domain errors become clean CLI errors."""
    runtime = _runtime(ctx)
    if check_schema:
        require_head(runtime.engine)
    try:
        with unit_of_work(runtime.engine) as conn:
            yield conn, runtime.clock.now(conn)
    except (NotFound, ValueError) as exc:  # ProvisioningError, CatalogueError, PoolError too
        raise click.ClickException(str(exc)) from None
    except ArithmeticError as exc:  # a number beyond what a column or Decimal holds
        raise click.ClickException(f"a number is out of range ({exc})") from None


@click.group(
    cls=LazyGroup,
    lazy={
        "fault": "zbmc.cli.faults:fault",
        "network": "zbmc.cli.network:network",
        "pool": "zbmc.cli.fleet:pool",
        "reset": "zbmc.cli.snapshots:reset",
        "resource-group": "zbmc.cli.fleet:resource_group",
        "snapshot": "zbmc.cli.snapshots:snapshot",
    },
)
@data_dir_option
@click.pass_context
def admin(ctx: click.Context, data_dir: Path | None) -> None:
    """Administer tenants, keys, catalogue, instances, orders and the clock."""
    settings = settings_from(data_dir)
    try:
        runtime = Runtime(settings, create_db_engine(settings.effective_database_url), Clock())
    except MissingDriver as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = runtime
    ctx.call_on_close(runtime.engine.dispose)


# --- database ----------------------------------------------------------------------------------


@admin.group()
def db() -> None:
    """Schema migrations."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or upgrade the schema to the latest migration."""
    runtime = _runtime(ctx)
    upgrade(runtime.engine)
    click.echo(f"database at revision {current_revision(runtime.engine)}")


@db.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """Exit non-zero unless the schema is at the latest migration."""
    runtime = _runtime(ctx)
    current, head = current_revision(runtime.engine), head_revision(runtime.engine)
    if current != head:
        raise click.ClickException(f"schema at {current}, code expects {head}")
    click.echo(f"database at revision {current} (head)")


# --- catalogue ---------------------------------------------------------------------------------


@admin.group()
def catalogue() -> None:
    """Zones, instance types, offerings and prices."""


@catalogue.command("load")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False
)
@click.option("--demo", is_flag=True, help="Load the demo catalogue (illustrative prices).")
@json_option
@click.pass_context
def catalogue_load(ctx: click.Context, file: Path | None, demo: bool, as_json: bool) -> None:
    """Load (upsert) a catalogue from a TOML or YAML FILE, or the demo catalogue."""
    if (file is None) == (not demo):
        raise click.UsageError("give either FILE or --demo")
    with transaction(ctx) as (conn, _now):
        from zbmc import catalogue as catalogue_files

        parsed = catalogue_files.demo() if demo else catalogue_files.read_file(file)  # type: ignore[arg-type]
        emit(catalogue_files.load(conn, parsed), as_json)


@catalogue.command("example")
def catalogue_example() -> None:
    """Print the documented example catalogue (the demo one)."""
    from zbmc import catalogue as catalogue_files

    click.echo(catalogue_files.demo_text(), nl=False)


# --- tenants, keys, tokens ---------------------------------------------------------------------


@admin.group()
def tenant() -> None:
    """Tenants and their balance."""


@tenant.command("create")
@click.option("--name", required=True)
@click.option("--balance", type=AMOUNT, default="0", show_default=True)
@click.option("--currency", default="USD", show_default=True)
@json_option
@click.pass_context
def tenant_create(
    ctx: click.Context, name: str, balance: Decimal, currency: str, as_json: bool
) -> None:
    """Create a tenant with a first access key. JSON: {tenantId, accessKeyId, accessKeyPassword}."""
    with transaction(ctx) as (conn, now):
        key = create_tenant(conn, name, balance, now, currency)
    emit(
        {
            "tenantId": key.tenant_id,
            "accessKeyId": key.access_key_id,
            "accessKeyPassword": key.access_key_password,
        },
        as_json,
    )


@tenant.command("topup")
@click.argument("tenant_id")
@click.argument("amount", type=AMOUNT)
@json_option
@click.pass_context
def tenant_topup(ctx: click.Context, tenant_id: str, amount: Decimal, as_json: bool) -> None:
    """Add AMOUNT to the balance of TENANT_ID (a TOPUP ledger entry)."""
    with transaction(ctx) as (conn, now):
        top_up(conn, tenant_id, amount, now)
        report = accounts.balance_report(conn, tenant_id)
    emit(report, as_json)


@tenant.command("list")
@json_option
@click.pass_context
def tenant_list(ctx: click.Context, as_json: bool) -> None:
    """List tenants."""
    with transaction(ctx) as (conn, _now):
        emit(accounts.list_tenants(conn), as_json)


@admin.command("balance")
@click.argument("tenant_id")
@json_option
@click.pass_context
def balance(ctx: click.Context, tenant_id: str, as_json: bool) -> None:
    """Balance of TENANT_ID (and the ledger sum it always equals). JSON: {balance, ...}."""
    with transaction(ctx) as (conn, _now):
        emit(accounts.balance_report(conn, tenant_id), as_json)


@admin.group()
def key() -> None:
    """HMAC access keys."""


@key.command("create")
@click.argument("tenant_id")
@json_option
@click.pass_context
def key_create(ctx: click.Context, tenant_id: str, as_json: bool) -> None:
    """Issue a new access key. JSON: {tenantId, accessKeyId, accessKeyPassword}."""
    with transaction(ctx) as (conn, _now):
        new = create_key(conn, tenant_id, _runtime(ctx).clock.wall())
    emit(
        {
            "tenantId": new.tenant_id,
            "accessKeyId": new.access_key_id,
            "accessKeyPassword": new.access_key_password,
        },
        as_json,
    )


@key.command("revoke")
@click.argument("key_id")
@click.pass_context
def key_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke an access key; requests signed with it fail from now on."""
    with transaction(ctx) as (conn, _now):
        revoke_key(conn, key_id, _runtime(ctx).clock.wall())
    click.echo(f"revoked {key_id}")


@admin.group()
def token() -> None:
    """Bearer tokens."""


@token.command("create")
@click.argument("tenant_id")
@click.option(
    "--days",
    type=click.IntRange(min=1, max=36500),
    default=None,
    help="Lifetime in real (wall-clock) days, 1 to 36500; default: no expiry.",
)
@json_option
@click.pass_context
def token_create(ctx: click.Context, tenant_id: str, days: int | None, as_json: bool) -> None:
    """Issue a bearer token (shown once). JSON: {token, tokenId}."""
    # Credentials live on the wall clock, as their checks do: a simulated billing clock moved
    # 30 days ahead must not make a one-day token last 31 real days.
    with transaction(ctx) as (conn, _now):
        token_id, value = create_token(conn, tenant_id, _runtime(ctx).clock.wall(), days)
    emit({"token": value, "tokenId": token_id}, as_json)


@token.command("revoke")
@click.argument("token_or_id")
@click.pass_context
def token_revoke(ctx: click.Context, token_or_id: str) -> None:
    """Revoke a bearer token, given the token itself or its id."""
    with transaction(ctx) as (conn, _now):
        revoke_token(conn, token_or_id, _runtime(ctx).clock.wall())
    click.echo("revoked")


# --- instances, orders, ledger ------------------------------------------------------------------


@admin.group(cls=LazyGroup, lazy={"import": "zbmc.cli.fleet:instance_import"})
def instance() -> None:
    """Instances the operator provisions or imports (tenants create theirs with CreateInstances)."""


@instance.command("create")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--zone", "zone_id", required=True)
@click.option("--type", "type_id", required=True)
@click.option("--instance-charge-type", type=click.Choice(["PREPAID", "POSTPAID"]), required=True)
@click.option(
    "--internet-charge-type",
    type=click.Choice(list(INTERNET_CHARGE_TYPES)),
    required=True,
)
@click.option("--bandwidth", type=int, required=True, help="Mbps.")
@click.option(
    "--traffic-package",
    default=None,
    help="TB (multiple of 0.05); default: the free package (PREPAID), 0 (POSTPAID); 'none'.",
)
@click.option("--period", type=click.IntRange(min=1), default=1, show_default=True, help="Months.")
@click.option(
    "--status",
    type=click.Choice(["RUNNING", "STOPPED", "CREATING"]),
    default="RUNNING",
    help="CREATING: the worker creates it through the host driver, as for CreateInstances.",
)
@click.option("--name", default="instance", show_default=True)
@click.option("--hostname", default=None, help="Default: the name.")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE; repeatable.")
@click.option("--image", "image_id", default=None)
@click.option("--no-auto-renew", is_flag=True)
@click.option("--charge", is_flag=True, help="Charge the first prepaid period to the balance.")
@json_option
@click.pass_context
def instance_create(
    ctx: click.Context,
    tenant_id: str,
    zone_id: str,
    type_id: str,
    instance_charge_type: str,
    internet_charge_type: str,
    bandwidth: int,
    traffic_package: str | None,
    period: int,
    status: str,
    name: str,
    hostname: str | None,
    tags: tuple[str, ...],
    image_id: str | None,
    no_auto_renew: bool,
    charge: bool,
    as_json: bool,
) -> None:
    """Provision an instance for a tenant. JSON: {instanceId}."""
    package: Decimal | None = None
    if traffic_package not in (None, "none"):
        package = AMOUNT.convert(traffic_package, None, ctx)
    pairs: list[tuple[str, str]] = []
    for text in tags:
        tag_key, sep, tag_value = text.partition("=")
        if not (sep and tag_key and tag_value):
            raise click.BadParameter(f"{text!r}: use KEY=VALUE", param_hint="--tag")
        pairs.append((tag_key, tag_value))
    from zbmc.provisioning import InstanceSpec, provision

    spec = InstanceSpec(
        tenant_id=tenant_id,
        zone_id=zone_id,
        instance_type_id=type_id,
        instance_charge_type=instance_charge_type,
        internet_charge_type=internet_charge_type,
        bandwidth=bandwidth,
        traffic_package_tb=package,
        no_traffic_package=traffic_package == "none",
        period=period,
        status=status,
        name=name,
        hostname=hostname,
        tags=tuple(pairs),
        image_id=image_id,
        auto_renew=not no_auto_renew,
        charge=charge,
    )
    with transaction(ctx) as (conn, now):
        instance_id = provision(conn, spec, now)
    emit({"instanceId": instance_id}, as_json)


def _listing(fetch: Callable[[Connection], list[dict[str, Any]]]) -> Callable[..., None]:
    def run(ctx: click.Context, as_json: bool) -> None:
        with transaction(ctx) as (conn, _now):
            emit(fetch(conn), as_json)

    return run


@admin.command("orders")
@click.argument("tenant_id")
@click.option("--instance", "instance_id", default=None)
@json_option
@click.pass_context
def orders(ctx: click.Context, tenant_id: str, instance_id: str | None, as_json: bool) -> None:
    """Orders of TENANT_ID: orderNumber, instanceId, kind, amount, state, effective time."""
    _listing(lambda conn: accounts.list_orders(conn, tenant_id, instance_id))(ctx, as_json)


@admin.command("order")
@click.argument("order_number")
@json_option
@click.pass_context
def order(ctx: click.Context, order_number: str, as_json: bool) -> None:
    """One order by its number."""
    with transaction(ctx) as (conn, _now):
        emit(accounts.get_order(conn, order_number), as_json)


@admin.command("ledger")
@click.argument("tenant_id")
@json_option
@click.pass_context
def ledger(ctx: click.Context, tenant_id: str, as_json: bool) -> None:
    """Ledger entries of TENANT_ID, oldest first (amounts signed: + credit, - charge)."""
    _listing(lambda conn: accounts.list_ledger(conn, tenant_id))(ctx, as_json)


# --- clock -------------------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    total, rest = 0, text.strip()
    for part in rest.split() if " " in rest else [rest]:
        match = _DURATION.match(part)
        if match is None:
            raise click.BadParameter(f"{text!r}: use e.g. 90s, 15m, 3h, 31d")
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return total


@admin.group()
def clock() -> None:
    """The billing clock (system, or simulated and movable)."""


@clock.command("show")
@json_option
@click.pass_context
def clock_show(ctx: click.Context, as_json: bool) -> None:
    """Print the clock mode and the current billing time."""
    runtime = _runtime(ctx)
    with transaction(ctx) as (conn, now):
        mode, offset = runtime.clock.state(conn)
    emit({"mode": mode, "now": iso(now), "offsetSeconds": offset}, as_json)


@clock.command("simulate")
@click.pass_context
def clock_simulate(ctx: click.Context) -> None:
    """Switch to the simulated clock (wall clock plus an offset that only grows)."""
    runtime = _runtime(ctx)
    with transaction(ctx) as (conn, _now):
        runtime.clock.set_mode(conn, "simulated")
    click.echo("clock: simulated")


@clock.command("advance")
@click.argument("duration")
@json_option
@click.pass_context
def clock_advance(ctx: click.Context, duration: str, as_json: bool) -> None:
    """Move simulated time forward by DURATION (e.g. 90s, 3h, 31d)."""
    seconds = parse_duration(duration)
    runtime = _runtime(ctx)
    with transaction(ctx) as (conn, _now):
        now = runtime.clock.advance(conn, seconds)
    emit({"now": iso(now), "advancedSeconds": seconds}, as_json)


# --- traffic -----------------------------------------------------------------------------------


@admin.group()
def traffic() -> None:
    """Traffic samples reported by network agents."""


def _samples_from_text(text: str) -> Any:
    """A JSON array, a {"samples": [...]} object, or JSON lines (one sample object per line)."""
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            # one decoder for all lines: json.loads with an option builds one per call
            decode = json.JSONDecoder(parse_float=Decimal).decode
            return [decode(line) for line in lines]
        except ValueError as exc:
            raise click.ClickException(f"not a JSON array nor JSON lines: {exc}") from None
    if isinstance(data, dict):
        return data.get("samples", [data])
    return data


@traffic.command("ingest")
@click.argument("file", type=click.File("r"))
@json_option
@click.pass_context
def traffic_ingest(ctx: click.Context, file: Any, as_json: bool) -> None:
    """Store samples from FILE ('-' for stdin): a JSON array or JSON lines. All or nothing;
    resent sampleIds are ignored. JSON: {accepted, duplicates}."""
    from zbmc.store import traffic as traffic_store

    raw = _samples_from_text(file.read())
    with transaction(ctx) as (conn, _now):
        result = traffic_store.ingest(conn, traffic_store.parse_samples(raw))
    emit({"accepted": result.accepted, "duplicates": result.duplicates}, as_json)
