"""The console's read-only endpoints: /account/v1 (a tenant's balance, ledger and orders, with the
API's authentication and envelopes) and the operator's GET /admin/v1/{tenants, catalogue,
worker, events, clock}."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import requests

from tests.conftest import StackFactory
from tests.harness import V2026, Stack, Tenant
from tests.test_bandwidth import call
from zbmc.clock import parse_iso

TOKEN = "account-admin-token"


def account(tenant: Tenant, action: str, body: dict[str, Any] | None = None) -> requests.Response:
    key = (tenant.access_key_id, tenant.access_key_password)
    return tenant.stack.raw(body or {}, action=action, key=key, path="/account/v1")


def response(reply: requests.Response) -> Any:
    assert reply.status_code == 200, reply.text
    data = json.loads(reply.text, parse_float=Decimal)
    assert data["requestId"] == data["response"]["requestId"] == reply.headers["x-zc-request-id"]
    return data["response"]


def test_balance_ledger_and_orders_of_the_caller_only(stack: Stack) -> None:
    tenant = stack.tenant(balance="900.00")
    other = stack.tenant(balance="5.00")
    instance_id = tenant.instance(charge=True)
    call(tenant, V2026, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=150)

    balance = response(account(tenant, "DescribeBalance"))
    assert Decimal(str(balance["balance"])) == tenant.balance()
    assert balance["currency"] == "USD"

    ledger = response(account(tenant, "DescribeLedger", {"pageSize": 1}))
    assert ledger["totalCount"] == len(tenant.ledger()) == 3
    newest = tenant.ledger()[-1]
    assert ledger["dataSet"][0]["entryId"] == newest["entryId"]
    assert ledger["dataSet"][0]["periodEnd"] == newest["periodEnd"]
    second = response(account(tenant, "DescribeLedger", {"pageSize": 1, "pageNum": 2}))
    assert second["dataSet"][0]["entryId"] == tenant.ledger()[-2]["entryId"]

    orders = response(account(tenant, "DescribeOrders", {"instanceId": instance_id}))
    numbers = {o["orderNumber"] for o in tenant.orders()}
    assert {o["orderNumber"] for o in orders["dataSet"]} == numbers
    assert "tenantId" not in orders["dataSet"][0]

    # the other tenant's key sees its own account only
    assert Decimal(str(response(account(other, "DescribeBalance"))["balance"])) == Decimal("5")
    theirs = response(account(other, "DescribeOrders", {"instanceId": instance_id}))
    assert theirs == {"totalCount": 0, "dataSet": [], "requestId": theirs["requestId"]}


def test_same_authentication_and_errors_as_the_api(stack: Stack) -> None:
    tenant = stack.tenant()
    token = stack.admin.json("token", "create", tenant.tenant_id)["token"]
    by_token = requests.post(
        f"http://{stack.host}/account/v1",
        data=b"{}",
        headers={
            "Content-Type": "application/json",
            "X-ZC-Action": "DescribeBalance",
            "Authorization": f"Bearer {token}",
        },
        timeout=10,
    )
    assert response(by_token)["balance"] == 1000
    wrong = stack.raw(
        {}, action="DescribeBalance", key=(tenant.access_key_id, "nope"), path="/account/v1"
    )
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "AUTHFAILURE_SIGNATURE_FAILURE"
    unsigned = stack.raw({}, action="DescribeBalance", path="/account/v1")
    assert unsigned.status_code == 401
    unknown = account(tenant, "DescribeEverything")
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "INVALID_ACTION"
    paging = account(tenant, "DescribeLedger", {"pageSize": 0})
    assert paging.status_code == 400
    assert paging.json()["code"] == "INVALID_PARAMETER"
    garbage = stack.raw(
        b"{not json",
        action="DescribeLedger",
        key=(tenant.access_key_id, tenant.access_key_password),
        path="/account/v1",
    )
    assert garbage.status_code == 400
    assert requests.get(f"http://{stack.host}/account/v1", timeout=10).status_code == 405


def test_operator_reads(make_stack: StackFactory) -> None:
    stack = make_stack(ZBMC_ADMIN_TOKEN=TOKEN)
    stack.admin.run("clock", "simulate")
    tenant = stack.tenant(name="acme")
    instance_id = tenant.instance(charge=True)
    call(tenant, V2026, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=50)

    def get(path: str) -> Any:
        reply = requests.get(
            f"http://{stack.host}/admin/v1/{path}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        return reply.json()

    tenants = get("tenants")["tenants"]
    assert [(t["tenantId"], t["instances"]) for t in tenants] == [(tenant.tenant_id, 1)]
    assert Decimal(tenants[0]["balance"]) == tenant.balance()
    catalogue = get("catalogue")
    assert {z["zone_id"] for z in catalogue["zones"]} == {"SEL-A", "HKG-A", "FRA-A", "LAX-A"}
    assert catalogue["offerings"]
    worker = get("worker")
    assert worker["scheduledOrders"] == 1  # the downgrade waits for the next cycle
    assert worker["lagSeconds"] >= 0
    events = get("events")["events"]
    assert any(e["event"] == "order BANDWIDTH 100 -> 50" for e in events)
    clock = get("clock")
    assert clock["mode"] == "simulated"
    assert abs(parse_iso(clock["now"]) - parse_iso(stack.admin.json("clock", "show")["now"])) < 10
    unauthorised = requests.get(f"http://{stack.host}/admin/v1/tenants", timeout=10)
    assert unauthorised.status_code == 401
