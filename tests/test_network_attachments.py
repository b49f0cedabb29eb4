"""Network attachments (`zbmc admin network`) and the agents' admin endpoints, without a kernel:
what an agent is told to enforce, and which reports enable an order (docs/drivers.md)."""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import delete
from zenlayercloud.bmc.v20260201 import models

from tests.conftest import StackFactory
from tests.harness import Stack
from zbmc.db.tables import instances

TOKEN = "network-attachments-token"


def post(stack: Stack, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"http://{stack.host}{path}",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )


def test_attachments_tell_each_host_its_caps_and_reports_enable_only_due_orders(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(ZBMC_DRIVER="agent", ZBMC_ADMIN_TOKEN=TOKEN)
    tenant = stack.tenant(balance="100000.00")
    first = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=20)
    second = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=30)
    admin = stack.admin
    admin.run("network", "attach", first, "--host", "edge-1", "--interface", "vlan101")
    assert "not a Linux interface name" in admin.fails(
        "network", "attach", second, "--host", "edge-1", "--interface", "eth 0"
    )
    assert "already serves instance" in admin.fails(
        "network", "attach", second, "--host", "edge-1", "--interface", "vlan101"
    )
    assert "does not exist" in admin.fails(
        "network", "attach", "nope", "--host", "edge-1", "--interface", "vlan102"
    )
    admin.run("network", "attach", second, "--host", "edge-2", "--interface", "vlan101")
    assert admin.json("network", "list", "--host", "edge-2") == [
        {"instanceId": second, "host": "edge-2", "interface": "vlan101"}
    ]

    state = post(stack, "/admin/v1/agent/state", {"host": "edge-1"}).json()
    assert state["instances"] == [
        {
            "instanceId": first,
            "interface": "vlan101",
            "outMbps": 20,
            "inMbps": None,
            "orderNumber": None,
        }
    ]
    request = models.ModifyInstanceBandwidthRequest()
    request.instanceId, request.bandwidthOutMbps = first, 60
    order = tenant.client().ModifyInstanceBandwidth(request).orderNumber
    state = post(stack, "/admin/v1/agent/state", {"host": "edge-1"}).json()
    assert state["instances"][0]["outMbps"] == 60
    assert state["instances"][0]["orderNumber"] == order

    # Reports from the wrong host, with the wrong value or a made-up order change nothing.
    for host, number, mbps in (("edge-2", order, 60), ("edge-1", order, 20), ("edge-1", "1", 60)):
        applied = [{"instanceId": first, "orderNumber": number, "mbps": mbps}]
        answer = post(stack, "/admin/v1/agent/report", {"host": host, "applied": applied})
        assert answer.json() == {"enabled": 0, "failed": 0}
    failed = [{"instanceId": first, "orderNumber": order, "error": "tc refused"}]
    answer = post(stack, "/admin/v1/agent/report", {"host": "edge-1", "failed": failed})
    assert answer.json() == {"enabled": 0, "failed": 1}
    (row,) = [o for o in tenant.orders() if o["orderNumber"] == order]
    assert row["state"] == "PROCESSING"
    applied = [{"instanceId": first, "orderNumber": order, "mbps": 60}]
    answer = post(stack, "/admin/v1/agent/report", {"host": "edge-1", "applied": applied})
    assert answer.json() == {"enabled": 1, "failed": 0}
    answer = post(stack, "/admin/v1/agent/report", {"host": "edge-1", "applied": applied})
    assert answer.json() == {"enabled": 0, "failed": 0}  # a resent report is harmless
    (row,) = [o for o in tenant.orders() if o["orderNumber"] == order]
    assert row["state"] == "ENABLED"

    bad = post(stack, "/admin/v1/agent/report", {"host": "edge-1", "applied": [{"mbps": "x"}]})
    assert bad.status_code == 400
    assert bad.json()["code"] == "INVALID_PARAMETER"
    assert post(stack, "/admin/v1/agent/state", {}).status_code == 400

    # A released instance (its row gone) leaves its host's list and frees its interface.
    engine = stack.engine()
    with engine.begin() as conn:
        conn.execute(delete(instances).where(instances.c.instance_id == second))
    engine.dispose()
    assert post(stack, "/admin/v1/agent/state", {"host": "edge-2"}).json()["instances"] == []
    third = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=10)
    admin.run("network", "attach", third, "--host", "edge-2", "--interface", "vlan101")
    admin.run("network", "detach", third)
    assert "no network attachment" in admin.fails("network", "detach", third)
