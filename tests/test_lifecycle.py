"""The state machine of spec instances.md §14, cell by cell: first the table function against the
spec's table (written out again here, as the spec prints it), then every reachable cell through
the official SDK in both API versions against a live server, with instances brought into each
status the way a user would (the host delay keeps transitional statuses until the clock moves)."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.conftest import _make_stack_factory
from tests.harness import V2022, V2026, Stack, Tenant, wait_until
from zbmc.domain import lifecycle
from zbmc.errors import ApiError

# spec instances.md §14 (Terminate split by charge type: POSTPAID is the spec's column, PREPAID
# follows README C2/Q8). Denials by the spec's abbreviation of OPERATION_DENIED_INSTANCE_<X>:
# NS NOT_STOPPED, NR NOT_RUNNING, ST STATUS, CR CREATING, SI STATUS_INSTALLING, NRC NOT_RECYCLED,
# RC RECYCLED. "->X" moves to X; "=unsub" keeps the status with autoRenew off; "del" releases,
# "del+refund" too after refunding the creation.
SPEC = """
status         | Start    | Stop       | Reboot   | Reinstall    | Term POST  | Term PRE   | Release
PENDING        | NS       | NR         | ST       | CR           | CR         | CR         | NRC
CREATING       | NS       | NR         | ST       | CR           | CR         | CR         | NRC
CREATE_FAILED  | NS       | NR         | ST       | ST           | del+refund | del+refund | NRC
RUNNING        | NS       | ->STOPPING | ->BOOTING| ->INSTALLING | ->RECYCLE  | =unsub     | NRC
STOPPED        | ->BOOTING| NR         | ->BOOTING| ->INSTALLING | ->RECYCLE  | =unsub     | NRC
BOOTING        | NS       | NR         | ST       | ST           | ->RECYCLE  | =unsub     | NRC
STOPPING       | NS       | NR         | ST       | ST           | ->RECYCLE  | =unsub     | NRC
INSTALLING     | NS       | NR         | ST       | SI           | SI         | SI         | NRC
INSTALL_FAILED | NS       | NR         | ST       | ->INSTALLING | ->RECYCLE  | =unsub     | NRC
RECYCLE        | RC       | RC         | RC       | RC           | RC         | RC         | del
"""
COLUMNS = {"Term POST": lifecycle.TERMINATE_POSTPAID, "Term PRE": lifecycle.TERMINATE_PREPAID}


def _spec_cells() -> dict[tuple[str, str], str]:
    lines = SPEC.strip().splitlines()
    header = [COLUMNS.get(cell.strip(), cell.strip()) for cell in lines[0].split("|")][1:]
    cells = {}
    for line in lines[1:]:
        status, *row = (cell.strip() for cell in line.split("|"))
        for action, cell in zip(header, row, strict=True):
            cells[(action, status)] = cell
    return cells


CELLS = _spec_cells()
CODE = {
    "NS": "OPERATION_DENIED_INSTANCE_NOT_STOPPED",
    "NR": "OPERATION_DENIED_INSTANCE_NOT_RUNNING",
    "ST": "OPERATION_DENIED_INSTANCE_STATUS",
    "CR": "OPERATION_DENIED_INSTANCE_CREATING",
    "SI": "OPERATION_DENIED_INSTANCE_STATUS_INSTALLING",
    "NRC": "OPERATION_DENIED_INSTANCE_NOT_RECYCLED",
    "RC": "OPERATION_DENIED_INSTANCE_RECYCLED",
}
EFFECTS = {
    "del+refund": lifecycle.Move(None, None, lifecycle.REFUNDED_DELETED),
    "del": lifecycle.Move(None, None, lifecycle.DELETED),
    "->RECYCLE": lifecycle.Move(lifecycle.RECYCLE, None, lifecycle.RECYCLED),
    "=unsub": lifecycle.Move(None, None, lifecycle.UNSUBSCRIBED),
}


def test_the_table_has_every_cell_once() -> None:
    assert set(CELLS) == set(lifecycle.TABLE)
    assert len(lifecycle.TABLE) == len(lifecycle.ACTIONS) * len(lifecycle.STATUSES)


@pytest.mark.parametrize(("action", "status"), sorted(CELLS))
def test_cell(action: str, status: str) -> None:
    expected = CELLS[(action, status)]
    if expected in CODE:
        with pytest.raises(ApiError) as denied:
            lifecycle.decide(action, "i-1", status)
        assert (denied.value.code, denied.value.status) == (CODE[expected], 403)
        assert "i-1" in denied.value.message
        return
    move = lifecycle.decide(action, "i-1", status)
    if expected in EFFECTS:
        assert move == EFFECTS[expected]
    else:
        target = expected.removeprefix("->")
        assert move.status == target
        assert move.effect is None
        assert move.host_op is not None
        # the operation ends where the spec says: BOOTING -> RUNNING, STOPPING -> STOPPED ...
        final = {lifecycle.BOOTING: "RUNNING", "STOPPING": "STOPPED", "INSTALLING": "RUNNING"}
        assert lifecycle.HOST_OP_RESULTS[move.host_op][0] == final[target]


# --- the same cells through the SDK -----------------------------------------------------------

HOUR = 3600
REACHABLE = [status for status in lifecycle.STATUSES if status != lifecycle.PENDING]
VERSIONS = (V2022, V2026)


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return importlib.import_module(f"zenlayercloud.bmc.{module}.models")


# (access key, action, body) -> the second it was last sent: see ``call``
_SENT: dict[tuple[str, str, str], int] = {}


def call(tenant: Tenant, version: str, action: str, **fields: Any) -> Any:
    """One SDK call. The same request sent twice within one second carries the same signature
    (the version header is not signed), which the replay guard refuses once the first was
    applied (zbmc.replay); a client like Terraform is seconds apart, so the second waits for
    the next second here, as the SDK then signs it afresh."""
    request = getattr(models(version), f"{action}Request")()
    for key, value in fields.items():
        setattr(request, key, value)
    sent = (tenant.access_key_id, action, json.dumps(fields, sort_keys=True, default=str))
    while _SENT.get(sent, -1) >= int(time.time()):
        time.sleep(0.05)
    try:
        return getattr(tenant.client(version), action)(request)
    finally:  # signed at this second or before
        _SENT[sent] = int(time.time())


def describe(tenant: Tenant, instance_id: str) -> Any:
    answer = call(tenant, V2026, "DescribeInstances", instanceIds=[instance_id])
    return answer.dataSet[0] if answer.totalCount else None


def status_of(tenant: Tenant, instance_id: str) -> str | None:
    info = describe(tenant, instance_id)
    return None if info is None else str(info.instanceStatus)


def act(tenant: Tenant, version: str, action: str, instance_id: str) -> None:
    """One action of the table on one instance, as a client calls it."""
    if action == lifecycle.START:
        call(tenant, version, "StartInstances", instanceIds=[instance_id])
    elif action == lifecycle.STOP:
        call(tenant, version, "StopInstances", instanceIds=[instance_id])
    elif action == lifecycle.REBOOT:
        call(tenant, version, "RebootInstances", instanceIds=[instance_id])
    elif action == lifecycle.REINSTALL:
        call(tenant, version, "ReinstallInstance", instanceId=instance_id)
    elif action == lifecycle.RELEASE:
        call(tenant, version, "ReleaseInstances", instanceIds=[instance_id])
    else:
        call(tenant, version, "TerminateInstance", instanceId=instance_id)


class Pool:
    """Instances of one tenant in every reachable status, one per cell and API version."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.tenant = stack.tenant(balance="100000.00")
        self.free: dict[tuple[str, str], list[str]] = {}

    def new(self, charge: str, status: str = "RUNNING") -> str:
        options: dict[str, Any] = {"instance_charge_type": charge, "status": status}
        if charge == "PREPAID":
            options["charge"] = True
        return self.tenant.instance(**options)

    def add(self, status: str, charge: str, instance_id: str) -> None:
        self.free.setdefault((status, charge), []).append(instance_id)

    def take(self, status: str, charge: str) -> str:
        return self.free[(status, charge)].pop()


def fault(stack: Stack, instance_id: str, operation: str) -> None:
    stack.admin.run("fault", "add", "--instance", instance_id, "--operation", operation)


def _charge_for(action: str) -> str:
    return "PREPAID" if action == lifecycle.TERMINATE_PREPAID else "POSTPAID"


@pytest.fixture(scope="module")
def pool(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    with ExitStack() as resources:
        make = _make_stack_factory(backend, tmp_path_factory, resources)
        stack = make(start=False)
        stack.admin.run("clock", "simulate")
        stack.start(
            tmp_path_factory.mktemp("lifecycle") / "server.log",
            ZBMC_HOST_DELAY_SECONDS=str(HOUR),
            ZBMC_RELEASE_AFTER_SECONDS=str(10 * 365 * 86400),
        )
        pool = Pool(stack)
        tenant = pool.tenant
        wanted = {
            (status, _charge_for(action)) for status in REACHABLE for action in lifecycle.ACTIONS
        }
        per = len(VERSIONS) * 2  # Terminate (POSTPAID) and the other five share POSTPAID ones
        count = {key: per * (6 if key[1] == "POSTPAID" else 1) for key in wanted}
        # First what needs the clock to move: failed creations and installs, expired prepaid.
        failing: list[tuple[str, str, str]] = []
        for (status, charge), n in count.items():
            for _ in range(n):
                if status == "CREATE_FAILED":
                    instance_id = pool.new(charge, "CREATING")
                    fault(stack, instance_id, "CREATE")
                elif status == "INSTALL_FAILED":
                    instance_id = pool.new(charge)
                    fault(stack, instance_id, "INSTALL")
                    call(tenant, V2026, "ReinstallInstance", instanceId=instance_id)
                elif status == "RECYCLE" and charge == "PREPAID":
                    instance_id = tenant.instance(
                        instance_charge_type="PREPAID", no_auto_renew=True
                    )
                else:
                    continue
                failing.append((status, charge, instance_id))
        stack.admin.run("clock", "advance", "32d")
        for status, charge, instance_id in failing:
            wait_until(lambda i=instance_id, s=status: status_of(tenant, i) == s, timeout=30)
            pool.add(status, charge, instance_id)
        # Then the statuses that last while the clock stands still.
        for (status, charge), n in count.items():
            for _ in range(n):
                if status in ("RUNNING", "STOPPED", "CREATING"):
                    pool.add(status, charge, pool.new(charge, status))
                elif status in ("BOOTING", "STOPPING", "INSTALLING"):
                    start = "STOPPED" if status == "BOOTING" else "RUNNING"
                    instance_id = pool.new(charge, start)
                    verb = {"BOOTING": "StartInstances", "STOPPING": "StopInstances"}.get(status)
                    if verb is None:
                        call(tenant, V2026, "ReinstallInstance", instanceId=instance_id)
                    else:
                        call(tenant, V2026, verb, instanceIds=[instance_id])
                    pool.add(status, charge, instance_id)
                elif status == "RECYCLE" and charge == "POSTPAID":
                    instance_id = pool.new(charge)
                    call(tenant, V2026, "TerminateInstance", instanceId=instance_id)
                    pool.add(status, charge, instance_id)
        for (status, _charge), ids in pool.free.items():
            for instance_id in ids:
                assert status_of(tenant, instance_id) == status
        yield pool


SDK_CELLS = [
    (action, status, version)
    for status in REACHABLE
    for action in lifecycle.ACTIONS
    for version in VERSIONS
]


@pytest.mark.parametrize(("action", "status", "version"), SDK_CELLS)
def test_cell_through_the_sdk(pool: Pool, action: str, status: str, version: str) -> None:
    tenant = pool.tenant
    instance_id = pool.take(status, _charge_for(action))
    expected = CELLS[(action, status)]
    balance = tenant.balance()
    if expected in CODE:
        with pytest.raises(ZenlayerCloudSdkException) as denied:
            act(tenant, version, action, instance_id)
        assert denied.value.code == CODE[expected], denied.value.message
        assert instance_id in denied.value.message
        assert status_of(tenant, instance_id) == status
        assert tenant.balance() == balance
        return
    act(tenant, version, action, instance_id)
    info = describe(tenant, instance_id)
    if expected.startswith("del"):
        assert info is None
        if expected == "del+refund" and _charge_for(action) == "PREPAID":
            assert tenant.balance() > balance  # the first period came back
    elif expected == "=unsub":
        assert (info.instanceStatus, info.autoRenew) == (status, False)
    else:
        assert info.instanceStatus == expected.removeprefix("->")
