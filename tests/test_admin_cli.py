"""The ``zbmc admin`` contract: JSON keys that scripts rely on, readable tables, clean errors,
catalogue loading (YAML and TOML, demo idempotent) and the schema check.

Most commands run in-process through click (as ``stack.admin`` does); some run as a real
``python -m zbmc admin ...`` subprocess, configured by ZBMC_DATABASE_URL, --data-dir or
ZBMC_DATA_DIR, exactly as an operator would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.harness import V2022, V2026, Stack
from zbmc.cli.main import main as cli_main
from zbmc.db.tables import address_pools, images, instance_types, offerings, zones

StackFactory = Callable[..., Stack]
CREDENTIAL_KEYS = {"tenantId", "accessKeyId", "accessKeyPassword"}
ORDER_KEYS = {"orderNumber", "instanceId", "kind", "amount", "state", "effectiveAt"}
LEDGER_KEYS = {"entryId", "time", "kind", "amount", "balanceAfter", "orderNumber", "instanceId"}
DEMO_COUNTS = {
    "zones": 4,
    "images": 11,
    "instance_types": 4,
    "offerings": 11,
    "address_pools": 6,
}


def invoke(stack: Stack, *args: str) -> Result:
    return CliRunner().invoke(cli_main, ["admin", *args], env=stack.admin.env)


def fails_cleanly(stack: Stack, *args: str) -> str:
    """The command exits non-zero through click's error path (no unexpected exception)."""
    result = invoke(stack, *args)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZBMC_")}
    return {**env, **extra}


def zbmc(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zbmc", "admin", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def fresh(make_stack: StackFactory) -> Stack:
    """A database of its own (migrated, demo catalogue), no server."""
    return make_stack(start=False)


def new_tenant(stack: Stack, balance: str = "1000.00") -> str:
    data = stack.admin.json("tenant", "create", "--name", "cli", "--balance", balance)
    return str(data["tenantId"])


def charged_instance(stack: Stack, tenant_id: str) -> str:
    data = stack.admin.json(
        "instance",
        "create",
        *("--tenant", tenant_id, "--zone", "SEL-A", "--type", "M6C"),
        *("--instance-charge-type", "PREPAID", "--internet-charge-type", "ByBandwidth"),
        *("--bandwidth", "100", "--charge"),
    )
    assert set(data) == {"instanceId"}
    return str(data["instanceId"])


# --- JSON contract -----------------------------------------------------------------------------


def test_tenant_create_json(fresh: Stack) -> None:
    data = fresh.admin.json("tenant", "create", "--name", "acme")
    assert set(data) == CREDENTIAL_KEYS
    assert data["tenantId"].startswith("tnt-")
    assert data["accessKeyId"]
    assert data["accessKeyPassword"]
    assert fresh.admin.balance(data["tenantId"]) == 0
    listed = fresh.admin.json("tenant", "list")
    assert [(t["tenantId"], t["name"]) for t in listed] == [(data["tenantId"], "acme")]


def test_keys_and_tokens_work_with_the_sdk(stack: Stack) -> None:
    from zenlayercloud.bmc.v20260201 import models

    tenant_id = new_tenant(stack)
    key = stack.admin.json("key", "create", tenant_id)
    assert set(key) == CREDENTIAL_KEYS
    assert key["tenantId"] == tenant_id
    client = stack.client(key["accessKeyId"], key["accessKeyPassword"], V2022)
    assert client.DescribeZones(models.DescribeZonesRequest()).zoneSet

    token = stack.admin.json("token", "create", tenant_id, "--days", "7")
    assert set(token) == {"token", "tokenId"}
    token_client = stack.token_client(token["token"], V2026)
    assert token_client.DescribeInstances(models.DescribeInstancesRequest()).totalCount == 0

    stack.admin.run("key", "revoke", key["accessKeyId"])
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        client.DescribeZones(models.DescribeZonesRequest())
    assert caught.value.code.startswith("AUTHFAILURE")
    stack.admin.run("token", "revoke", token["tokenId"])
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        token_client.DescribeZones(models.DescribeZonesRequest())
    assert caught.value.code.startswith("AUTHFAILURE")


def test_instance_balance_orders_ledger_json(fresh: Stack) -> None:
    tenant_id = new_tenant(fresh)
    instance_id = charged_instance(fresh, tenant_id)
    # M6C in SEL-A: 300.00 a month plus (100 - 10 free) Mbps x 2.00
    charge = Decimal("480.00")

    report = fresh.admin.json("balance", tenant_id)
    assert {"tenantId", "balance"} <= set(report)
    assert Decimal(str(report["balance"])) == Decimal("1000.00") - charge
    assert Decimal(str(report["ledgerSum"])) == Decimal(str(report["balance"]))

    [order] = fresh.admin.json("orders", tenant_id)
    assert set(order) >= ORDER_KEYS
    assert (order["instanceId"], order["kind"]) == (instance_id, "CREATE")
    assert Decimal(str(order["amount"])) == charge
    assert order["orderNumber"]
    assert order["effectiveAt"].endswith("Z")
    assert fresh.admin.json("orders", tenant_id, "--instance", instance_id) == [order]
    assert fresh.admin.json("order", order["orderNumber"]) == order

    topup, spend = fresh.admin.json("ledger", tenant_id)
    assert set(topup) >= LEDGER_KEYS
    assert (topup["kind"], Decimal(str(topup["amount"]))) == ("TOPUP", Decimal("1000.00"))
    assert (spend["kind"], Decimal(str(spend["amount"]))) == ("CHARGE", -charge)
    assert spend["orderNumber"] == order["orderNumber"]
    assert spend["instanceId"] == instance_id
    assert Decimal(str(spend["balanceAfter"])) == Decimal("1000.00") - charge


def test_tenant_topup(fresh: Stack) -> None:
    tenant_id = new_tenant(fresh, "10.00")
    report = fresh.admin.json("tenant", "topup", tenant_id, "25.50")
    assert {"tenantId", "balance"} <= set(report)
    assert Decimal(str(report["balance"])) == Decimal("35.50")
    assert fresh.admin.balance(tenant_id) == Decimal("35.50")
    last = fresh.admin.json("ledger", tenant_id)[-1]
    assert (last["kind"], Decimal(str(last["amount"]))) == ("TOPUP", Decimal("25.50"))
    assert Decimal(str(last["balanceAfter"])) == Decimal("35.50")


# --- tables ------------------------------------------------------------------------------------


def test_table_output_is_readable(fresh: Stack) -> None:
    tenant_id = new_tenant(fresh)
    assert fresh.admin.run("orders", tenant_id).strip() == "(none)"
    instance_id = charged_instance(fresh, tenant_id)

    lines = fresh.admin.run("balance", tenant_id).splitlines()
    assert any(line.split() == ["balance", "520.00"] for line in lines), lines

    header, rule, row = fresh.admin.run("orders", tenant_id).splitlines()
    assert header.split()[:4] == ["orderNumber", "tenantId", "instanceId", "kind"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert instance_id in row.split()
    assert "480.00" in row.split()

    ledger = fresh.admin.run("ledger", tenant_id).splitlines()
    assert "balanceAfter" in ledger[0].split()
    assert len(ledger) == 4  # header, rule, TOPUP, CHARGE

    tenant = fresh.admin.run("tenant", "create", "--name", "plain").splitlines()
    assert [line.split()[0] for line in tenant] == ["tenantId", "accessKeyId", "accessKeyPassword"]
    assert not fresh.admin.run("tenant", "list").lstrip().startswith("[")


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("balance", "tnt-nope"),
        ("tenant", "topup", "tnt-nope", "5"),
        ("orders", "tnt-nope"),
        ("ledger", "tnt-nope"),
        ("key", "create", "tnt-nope"),
        ("token", "create", "tnt-nope"),
        (
            "instance",
            "create",
            *("--tenant", "tnt-nope", "--zone", "SEL-A", "--type", "M6C"),
            *("--instance-charge-type", "PREPAID", "--internet-charge-type", "ByBandwidth"),
            *("--bandwidth", "100"),
        ),
    ],
)
def test_unknown_tenant(fresh: Stack, command: tuple[str, ...]) -> None:
    output = fails_cleanly(fresh, *command)
    assert "tenant 'tnt-nope' does not exist" in output


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "is not a decimal amount"),
        ("-5", "not negative"),
        ("nan", "finite"),
        ("1.001", "more than two decimals"),
        ("0", "positive"),
    ],
)
def test_bad_amount(fresh: Stack, amount: str, message: str) -> None:
    tenant_id = new_tenant(fresh, "10.00")
    output = fails_cleanly(fresh, "tenant", "topup", tenant_id, "--", amount)
    assert message in output
    assert fresh.admin.balance(tenant_id) == Decimal("10.00")
    assert len(fresh.admin.json("ledger", tenant_id)) == 1


def test_failed_tenant_create_leaves_nothing(fresh: Stack) -> None:
    assert "more than two decimals" in fails_cleanly(
        fresh, "tenant", "create", "--name", "x", "--balance", "1.001"
    )
    assert fresh.admin.json("tenant", "list") == []


BAD_CATALOGUES = [
    ("broken.toml", "zones = [", "cannot parse the catalogue"),
    ("broken.yaml", "zones: [unclosed", "cannot parse the catalogue"),
    ("extra.yaml", "zones:\n  - {id: X-A, name: X, city: X, area: X, colour: red}\n", "colour"),
    ("list.yaml", "- 1\n- 2\n", "invalid catalogue"),
    (
        "offering.toml",
        '[[offerings]]\nzones = ["NOWHERE-A"]\ninstance_types = ["M6C"]\n'
        'internet_charge_types = ["ByBandwidth"]\ndefault_bandwidth_out = 1\nqty = 1\n'
        "[offerings.prices]\n"
        + "".join(
            f'{name} = "1"\n'
            for name in (
                "instance_month",
                "instance_hour",
                "bandwidth_month",
                "bandwidth_hour",
                "traffic_tb_month",
                "traffic_tb_hour",
                "overage_gb",
            )
        ),
        "unknown",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_CATALOGUES)
def test_bad_catalogue_file(
    fresh: Stack, tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    output = fails_cleanly(fresh, "catalogue", "load", str(path))
    assert message in output


def test_missing_catalogue_file_and_usage(fresh: Stack, tmp_path: Path) -> None:
    assert "does not exist" in fails_cleanly(fresh, "catalogue", "load", str(tmp_path / "no.toml"))
    assert "give either FILE or --demo" in fails_cleanly(fresh, "catalogue", "load")


def test_errors_in_a_real_process_have_no_traceback(fresh: Stack, tmp_path: Path) -> None:
    env = subprocess_env(ZBMC_DATABASE_URL=fresh.database_url)
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: [unclosed")
    for args, message in (
        (("tenant", "topup", "tnt-nope", "5"), "does not exist"),
        (("catalogue", "load", str(bad)), "cannot parse the catalogue"),
    ):
        done = zbmc(*args, env=env)
        assert done.returncode != 0, done.stdout
        assert message in done.stderr
        assert "Traceback" not in done.stderr + done.stdout


# --- catalogue loading -------------------------------------------------------------------------

YAML_CATALOGUE = """
currency: USD
zones:
  - {id: TST-A, name: Test A, city: Testville, area: Nowhere, cloud_router: false, byoip: true}
images:
  - {id: img-test, name: Test OS, catalog: debian, os_type: linux}
instance_types:
  - id: T1
    description: Tiny test machine
    cpu_core_count: 1
    cpu_detail: Test CPU x 1
    cpu_cores: 4
    cpu_threads: 8
    base_frequency: 1.0 GHz
    memory_size: 8
    maximum_bandwidth: 1000
    support_raids: [0]
    total_disk_size: 200
    disk_description: 240 GB SSD x 1
    disks: [{size: 240, count: 1}]
    images: [img-test]
offerings:
  - zones: [TST-A]
    instance_types: [T1]
    instance_charge_types: [POSTPAID]
    internet_charge_types: [ByTrafficPackage]
    default_bandwidth_out: 3
    default_traffic_package: "0.25"
    qty: 7
    prices:
      instance_month: "10"
      instance_hour: "0.02"
      bandwidth_month: "1"
      bandwidth_hour: "0.001"
      traffic_tb_month: "2"
      traffic_tb_hour: "0.01"
      traffic_tb_hour_extra_ignored: "1"
"""


def test_catalogue_load_yaml(make_stack: StackFactory, tmp_path: Path) -> None:
    from zenlayercloud.bmc.v20260201 import models

    stack = make_stack()
    path = tmp_path / "catalogue.yaml"
    path.write_text(YAML_CATALOGUE)
    # an unknown price key is refused, not ignored
    assert "traffic_tb_hour_extra_ignored" in fails_cleanly(stack, "catalogue", "load", str(path))
    path.write_text(
        YAML_CATALOGUE.replace('traffic_tb_hour_extra_ignored: "1"', 'overage_gb: "0.001"')
    )
    counts = stack.admin.json("catalogue", "load", str(path))
    assert counts == {"zones": 1, "images": 1, "instance_types": 1, "offerings": 1}

    client = stack.tenant().client(V2026)
    zone_set = client.DescribeZones(models.DescribeZonesRequest()).zoneSet
    test_zone = {z.zoneId: z for z in zone_set}["TST-A"]
    assert (test_zone.zoneName, test_zone.cityName, test_zone.isByoipEnabled) == (
        "Test A",
        "Testville",
        True,
    )
    request = models.DescribeInstanceTypesRequest()
    request.imageId = "img-test"
    [tiny] = client.DescribeInstanceTypes(request).instanceTypes
    assert (tiny.instanceTypeId, tiny.memorySize, tiny.imageIds) == ("T1", 8, ["img-test"])

    request = models.DescribeAvailableResourcesRequest()
    request.instanceChargeType = "POSTPAID"
    request.zoneId = "TST-A"
    [offer] = client.DescribeAvailableResources(request).availableResources
    assert (offer.instanceTypeId, offer.qty, offer.sellStatus) == ("T1", 7, "SELL_SHORTAGE")
    assert (offer.defaultBandwidthOut, offer.defaultTrafficPackageSize) == (3, 0.25)
    assert offer.internetChargeTypes == ["ByTrafficPackage"]
    request.instanceChargeType = "PREPAID"
    assert client.DescribeAvailableResources(request).availableResources == []


def test_catalogue_load_toml_upserts(make_stack: StackFactory, tmp_path: Path) -> None:
    from zenlayercloud.bmc.v20221120 import models

    stack = make_stack()
    path = tmp_path / "catalogue.toml"
    path.write_text(
        '[[zones]]\nid = "SEL-A"\nname = "Seoul Renamed"\ncity = "Seoul"\narea = "Asia"\n'
        "cloud_router = false\n\n"
        '[[zones]]\nid = "NEW-A"\nname = "New A"\ncity = "Newtown"\narea = "Asia"\n'
    )
    assert stack.admin.json("catalogue", "load", str(path)) == {
        "zones": 2,
        "images": 0,
        "instance_types": 0,
        "offerings": 0,
    }
    client = stack.tenant().client(V2022)
    by_id = {z.zoneId: z for z in client.DescribeZones(models.DescribeZonesRequest()).zoneSet}
    assert set(by_id) == {"SEL-A", "HKG-A", "FRA-A", "LAX-A", "NEW-A"}
    assert (by_id["SEL-A"].zoneName, by_id["SEL-A"].isCloudRouterAvailable) == (
        "Seoul Renamed",
        False,
    )
    # the offerings of the renamed zone are untouched
    request = models.DescribeAvailableResourcesRequest()
    request.instanceChargeType = "PREPAID"
    request.zoneId = "SEL-A"
    assert len(client.DescribeAvailableResources(request).availableResources) == 4


def _catalogue_rows(stack: Stack) -> dict[str, list[Any]]:
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            # row_version is DescribeInstances' cache key, not content: an update may renew it
            return {
                table.name: [
                    tuple(row)
                    for row in conn.execute(
                        select(*(c for c in table.c if c.name != "row_version")).order_by(
                            *table.primary_key
                        )
                    )
                ]
                for table in (zones, images, instance_types, offerings, address_pools)
            }
    finally:
        engine.dispose()


def test_demo_catalogue_load_is_idempotent(fresh: Stack) -> None:
    before = _catalogue_rows(fresh)  # the fixture has loaded the demo once already
    assert {name: len(rows) for name, rows in before.items()} == {
        "zones": 4,
        "images": 11,
        "instance_types": 4,
        "offerings": 11,
        "address_pools": 6,
    }
    assert fresh.admin.json("catalogue", "load", "--demo") == DEMO_COUNTS
    assert fresh.admin.json("catalogue", "load", "--demo") == DEMO_COUNTS
    assert _catalogue_rows(fresh) == before
    table = fresh.admin.run("catalogue", "load", "--demo").splitlines()
    assert ["offerings", "11"] in [line.split() for line in table]


def test_catalogue_example_is_loadable(fresh: Stack, tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    path.write_text(fresh.admin.run("catalogue", "example"))
    assert fresh.admin.json("catalogue", "load", str(path)) == DEMO_COUNTS


# --- schema ------------------------------------------------------------------------------------


def test_db_check(fresh: Stack, tmp_path: Path) -> None:
    assert "(head)" in fresh.admin.run("db", "check")

    empty = tmp_path / "empty"
    env: Any = {"ZBMC_DATABASE_URL": None, "ZBMC_DATA_DIR": str(empty)}
    runner = CliRunner()
    result = runner.invoke(cli_main, ["admin", "db", "check"], env=env)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "schema at None" in result.output
    result = runner.invoke(cli_main, ["admin", "tenant", "list"], env=env)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "run `zbmc admin db upgrade` first" in result.output
    result = runner.invoke(cli_main, ["admin", "db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert "(head)" in runner.invoke(cli_main, ["admin", "db", "check"], env=env).output


# --- real processes ----------------------------------------------------------------------------


def test_subprocess_with_database_url(fresh: Stack, tmp_path: Path) -> None:
    env = subprocess_env(ZBMC_DATABASE_URL=fresh.database_url)
    done = zbmc("tenant", "create", "--name", "proc", "--balance", "12.34", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == CREDENTIAL_KEYS
    # the same database, seen in-process
    assert fresh.admin.balance(data["tenantId"]) == Decimal("12.34")
    done = zbmc("balance", data["tenantId"], "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["balance"] == 12.34
    assert not (tmp_path / "zbmc-data").exists()  # the URL wins over the default data dir


# What `zbmc admin instance create` must not import: the server, the agent, snapshots, faults,
# fleet import and the traffic store are loaded only by the commands that use them.
NOT_FOR_INSTANCE_CREATE = (
    "zbmc.app",
    "zbmc.cli.server",
    "zbmc.cli.agent",
    "zbmc.agent",
    "zbmc.snapshots",
    "zbmc.faults",
    "zbmc.fleet",
    "zbmc.store.traffic",
    "starlette",
    "uvicorn",
    "pydantic",
    "alembic",
    "prometheus_client",
)

LOADED_MODULES = """
import sys
from zbmc.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
loaded = sorted(sys.modules)
import gc, json
print(json.dumps({"modules": loaded, "gc": gc.isenabled()}), file=sys.stderr)
"""


def loaded_by(env: dict[str, str], *args: str) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED_MODULES, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    probe = json.loads(done.stderr.strip().splitlines()[-1])
    assert probe["gc"], "the garbage collector stays paused after a command's import"
    return done.stdout, set(probe["modules"])


def test_instance_create_loads_only_what_it_uses(fresh: Stack) -> None:
    env = subprocess_env(ZBMC_DATABASE_URL=fresh.database_url)
    tenant_id = new_tenant(fresh)
    out, modules = loaded_by(
        env,
        *("admin", "instance", "create", "--tenant", tenant_id, "--zone", "SEL-A"),
        *("--type", "M6C", "--instance-charge-type", "POSTPAID"),
        *("--internet-charge-type", "ByBandwidth", "--bandwidth", "10", "--json"),
    )
    assert set(json.loads(out)) == {"instanceId"}
    unwanted = {
        m for m in modules for p in NOT_FOR_INSTANCE_CREATE if m == p or m.startswith(p + ".")
    }
    assert not unwanted
    assert "zbmc.provisioning" in modules  # the probe sees what the command did import
    postgres = "sqlalchemy.dialects.postgresql" in modules
    assert postgres == fresh.database_url.startswith("postgresql")  # loaded only if used


def test_help_lists_the_lazily_loaded_commands() -> None:
    out, modules = loaded_by(subprocess_env(), "admin", "--help")
    for name in ("fault", "network", "pool", "reset", "resource-group", "snapshot", "instance"):
        assert f"\n  {name} " in out, name
    assert "zbmc.cli.faults" in modules  # listing a command's help needs its module
    out, _ = loaded_by(subprocess_env(), "--help")
    for name in ("serve", "worker", "admin", "agent"):
        assert f"\n  {name} " in out, name
    out, _ = loaded_by(subprocess_env(), "admin", "instance", "--help")
    assert "\n  import " in out
    assert "\n  create " in out


def test_subprocess_with_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    env = subprocess_env()
    done = zbmc("--data-dir", str(data_dir), "db", "upgrade", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (data_dir / "zbmc.sqlite3").is_file()
    done = zbmc("--data-dir", str(data_dir), "tenant", "create", "--name", "dd", "--json", env=env)
    assert done.returncode == 0, done.stderr
    tenant_id = json.loads(done.stdout)["tenantId"]

    done = zbmc("tenant", "list", "--json", env=subprocess_env(ZBMC_DATA_DIR=str(data_dir)))
    assert done.returncode == 0, done.stderr
    assert [t["tenantId"] for t in json.loads(done.stdout)] == [tenant_id]
    assert not (tmp_path / "zbmc-data").exists()


def test_catalogue_offering_may_name_a_type_already_loaded(fresh: Stack, tmp_path: Path) -> None:
    path = tmp_path / "restock.toml"
    path.write_text(
        """
[[offerings]]
zones = ["FRA-A"]
instance_types = ["L6G"]
internet_charge_types = ["ByBandwidth"]
default_bandwidth_out = 30
qty = 7
[offerings.prices]
instance_month = "1700"
instance_hour = "2.5"
bandwidth_month = "1.25"
bandwidth_hour = "0.0025"
traffic_tb_month = "8"
traffic_tb_hour = "0.015"
overage_gb = "0.008"
""",
        encoding="utf-8",
    )
    assert fresh.admin.json("catalogue", "load", str(path))["offerings"] == 1
    engine = fresh.engine()
    with engine.connect() as conn:
        row = conn.execute(
            select(offerings).where(
                offerings.c.zone_id == "FRA-A", offerings.c.instance_type_id == "L6G"
            )
        ).one()
    engine.dispose()
    assert (row.qty, row.default_bandwidth_out, row.maximum_bandwidth_out) == (7, 30, 20000)
    assert row.bandwidth_month == "1.25"


# --- numbers out of range (issue 16): a clear error with the allowed range, no traceback ------


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("clock", "advance", "106751991167300d"), "315360000"),
        (("clock", "advance", "99999999999999999999999s"), "315360000"),
        (("tenant", "topup", "{tenant}", "1e30"), "1000000000000.00"),
        (("tenant", "topup", "{tenant}", "1e400"), "1000000000000.00"),
        (("tenant", "create", "--name", "x", "--balance", "1e30"), "1000000000000.00"),
    ],
    ids=["advance-2**63s", "advance-1e23s", "topup-1e30", "topup-1e400", "create-1e30"],
)
def test_numbers_out_of_range(
    fresh: Stack, tmp_path: Path, args: tuple[str, ...], mentions: str
) -> None:
    fresh.admin.run("clock", "simulate")
    tenant_id = new_tenant(fresh, "10.00")
    argv = [arg.format(tenant=tenant_id) for arg in args]
    assert mentions in fails_cleanly(fresh, *argv)
    # the same in a real process: one line on stderr, no traceback
    done = zbmc(*argv, env=subprocess_env(ZBMC_DATABASE_URL=fresh.database_url))
    assert done.returncode != 0
    assert mentions in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert fresh.admin.balance(tenant_id) == Decimal("10.00")
    assert fresh.admin.json("clock", "show")["offsetSeconds"] == 0


# --- a database driver that is not installed (issue 16) -----------------------------------------

_NO_PSYCOPG = '''
import importlib.abc
import sys


class _Missing(importlib.abc.MetaPathFinder):
    """psycopg as if the postgres extra were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("psycopg", "psycopg2", "psycopg_binary"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Missing())
'''


@pytest.mark.parametrize(
    "command",
    [("admin", "db", "upgrade"), ("admin", "db", "check"), ("serve",), ("worker", "--once")],
    ids=["db-upgrade", "db-check", "serve", "worker"],
)
def test_missing_postgres_driver_is_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_NO_PSYCOPG)
    env = subprocess_env(
        ZBMC_DATABASE_URL="postgresql+psycopg://root@127.0.0.1:5432/test", PYTHONPATH=str(shim)
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "zbmc",
            *command,
            *(["--port", "1"] if command == ("serve",) else []),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "pip install 'zbmc[postgres]'" in lines[0]
    assert "psycopg" in lines[0]
