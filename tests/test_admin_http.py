"""The operators' HTTP endpoints (/admin/v1/*): bearer admin token, traffic ingestion, the
simulated clock and top-ups, against a live server with ZBMC_ADMIN_TOKEN set."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests

from tests.harness import V2026, Stack, database, free_port

TOKEN = "admin-secret-token-for-tests"
ERROR_KEYS = {"requestId", "code", "message"}


@pytest.fixture(scope="module")
def admin_stack(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One server with the admin API enabled and a simulated clock, shared by this module."""
    with ExitStack() as resources:
        tmp = tmp_path_factory.mktemp(f"admin-{backend}")
        url = resources.enter_context(database(backend, tmp))
        stack = Stack(backend=backend, database_url=url, port=free_port())
        stack.admin.run("db", "upgrade")
        stack.admin.run("catalogue", "load", "--demo")
        stack.admin.run("clock", "simulate")
        resources.callback(stack.stop)
        stack.start(tmp / "server.log", ZBMC_ADMIN_TOKEN=TOKEN)
        yield stack


def post(
    stack: Stack,
    path: str,
    body: Any,
    *,
    authorization: str | None = f"Bearer {TOKEN}",
    method: str = "POST",
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    data = body if isinstance(body, bytes) else None
    json_body = None if isinstance(body, bytes) else body
    return requests.request(
        method,
        f"http://{stack.host}{path}",
        data=data,
        json=json_body,
        headers=headers,
        timeout=120,
    )


def assert_error(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["code"] == code
    assert body["requestId"].startswith("T")
    return str(body["message"])


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def boundary_hours_ago(hours: int) -> int:
    return int(time.time()) // 300 * 300 - 3600 * hours


def traffic_of(stack: Stack, key: tuple[str, str], iid: str, start: int, end: int) -> Any:
    from zenlayercloud.bmc.v20260201 import models

    request = models.DescribeInstanceTrafficRequest()
    request.instanceId, request.startTime, request.endTime = iid, iso(start), iso(end)
    return stack.client(*key, V2026).DescribeInstanceTraffic(request)


# --- enabling and authentication --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/v1/traffic", "/admin/v1/clock/advance"])
def test_disabled_without_an_admin_token(stack: Stack, path: str) -> None:
    response = post(stack, path, {"samples": []})
    assert_error(response, 404, "INVALID_PATH")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", TOKEN],
)
def test_requires_the_admin_bearer_token(admin_stack: Stack, authorization: str | None) -> None:
    tenant = admin_stack.tenant()
    iid = tenant.instance()
    sample = {"sampleId": f"{iid}-1", "instanceId": iid, "time": 0, "inBytes": 1, "outBytes": 1}
    response = post(
        admin_stack, "/admin/v1/traffic", {"samples": [sample]}, authorization=authorization
    )
    assert_error(response, 401, "AUTHFAILURE_INVALID_AUTHORIZATION")
    top_up = post(
        admin_stack,
        f"/admin/v1/tenants/{tenant.tenant_id}/topup",
        {"amount": "5"},
        authorization=authorization,
    )
    assert_error(top_up, 401, "AUTHFAILURE_INVALID_AUTHORIZATION")
    assert tenant.balance() == Decimal("1000.00")
    # nothing was stored by the refused request
    accepted = post(admin_stack, "/admin/v1/traffic", {"samples": [sample]})
    assert accepted.json() == {"accepted": 1, "duplicates": 0}


def test_only_post_is_allowed(admin_stack: Stack) -> None:
    response = post(admin_stack, "/admin/v1/traffic", None, method="GET")
    assert_error(response, 405, "INVALID_HTTP_METHOD")


# --- traffic ------------------------------------------------------------------------------------


def test_ingest_then_describe(admin_stack: Stack) -> None:
    tenant = admin_stack.tenant()
    iid = tenant.instance()
    t = boundary_hours_ago(2)
    samples = [
        {"sampleId": f"{iid}-a", "instanceId": iid, "time": iso(t), "inBps": 8000, "outBps": 800},
        {
            "sampleId": f"{iid}-b",
            "instanceId": iid,
            "time": t + 300,
            "intervalSeconds": 300,
            "inBytes": 600_000,
            "outBytes": 30_000,
        },
    ]
    first = post(admin_stack, "/admin/v1/traffic", {"samples": samples})
    assert (first.status_code, first.json()) == (200, {"accepted": 2, "duplicates": 0})
    again = post(admin_stack, "/admin/v1/traffic", {"samples": samples})
    assert (again.status_code, again.json()) == (200, {"accepted": 0, "duplicates": 2})

    key = (tenant.access_key_id, tenant.access_key_password)
    result = traffic_of(admin_stack, key, iid, t, t + 300)
    assert [(d.internetRX, d.internetTX, d.time) for d in result.dataList] == [
        (8000, 800, iso(t)),
        (16000, 800, iso(t + 300)),
    ]
    assert (result.in95, result.in95Time, result.outTotal) == (16000, iso(t + 300), 60_000)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        ({"sample": []}, '{"samples": [...]}'),
        ({"samples": {"sampleId": "x"}}, "JSON array"),
        ({"samples": [7]}, "sample 0: must be a JSON object"),
        (
            {
                "samples": [
                    {"sampleId": "s", "instanceId": "nope", "time": 0, "inBytes": 0, "outBytes": 0}
                ]
            },
            "unknown instanceId: nope",
        ),
    ],
)
def test_malformed_batches_are_400(admin_stack: Stack, body: Any, message: str) -> None:
    response = post(admin_stack, "/admin/v1/traffic", body)
    assert message in assert_error(response, 400, "INVALID_PARAMETER")


def test_a_bad_sample_rejects_the_whole_batch(admin_stack: Stack) -> None:
    tenant = admin_stack.tenant()
    iid = tenant.instance()
    t = boundary_hours_ago(3)
    good = {"sampleId": f"{iid}-good", "instanceId": iid, "time": t, "inBytes": 9, "outBytes": 9}
    bad = {"sampleId": f"{iid}-bad", "instanceId": iid, "time": t, "inBps": 1, "outBps": 8}
    bad["intervalSeconds"] = 1  # 1 bps for 1 s is 1/8 byte
    response = post(admin_stack, "/admin/v1/traffic", {"samples": [good, bad]})
    message = assert_error(response, 400, "INVALID_PARAMETER")
    assert f"sample 1 ({iid}-bad)" in message
    assert "not a whole number" in message
    accepted = post(admin_stack, "/admin/v1/traffic", {"samples": [good]})
    assert accepted.json() == {"accepted": 1, "duplicates": 0}


def test_ten_thousand_samples_in_one_batch(admin_stack: Stack) -> None:
    """Bigger than the API's body limit, and every id checked for duplicates."""
    tenant = admin_stack.tenant()
    iid = tenant.instance()
    t = boundary_hours_ago(20)
    samples = [
        {
            "sampleId": f"{iid}-{i}",
            "instanceId": iid,
            "time": t - 5 * i,
            "intervalSeconds": 5,
            "inBps": 8 * i,
            "outBps": 16,
        }
        for i in range(10_000)
    ]
    first = post(admin_stack, "/admin/v1/traffic", {"samples": samples})
    assert (first.status_code, first.json()) == (200, {"accepted": 10_000, "duplicates": 0})
    again = post(admin_stack, "/admin/v1/traffic", {"samples": samples})
    assert again.json() == {"accepted": 0, "duplicates": 10_000}
    key = (tenant.access_key_id, tenant.access_key_password)
    result = traffic_of(admin_stack, key, iid, t - 300, t)
    # each bucket holds 60 five-second samples of 10 bytes out; the one ending at t holds
    # i = 0..59 with 5 * i bytes in
    assert [(d.internetTX, d.time) for d in result.dataList] == [
        (600 * 8 // 300, iso(t - 300)),
        (600 * 8 // 300, iso(t)),
    ]
    assert result.dataList[1].internetRX == sum(5 * i for i in range(60)) * 8 // 300 == 236


# --- clock --------------------------------------------------------------------------------------


def test_clock_advance(admin_stack: Stack) -> None:
    before = admin_stack.admin.json("clock", "show")
    response = post(admin_stack, "/admin/v1/clock/advance", {"seconds": 3600})
    assert response.status_code == 200
    assert set(response.json()) == {"now"}
    after = admin_stack.admin.json("clock", "show")
    assert after["offsetSeconds"] == before["offsetSeconds"] + 3600
    assert before["now"] < response.json()["now"] <= after["now"]
    moved = datetime.strptime(response.json()["now"], "%Y-%m-%dT%H:%M:%SZ")
    assert (moved - datetime.strptime(before["now"], "%Y-%m-%dT%H:%M:%SZ")).total_seconds() >= 3600


@pytest.mark.parametrize("seconds", [-5, 1.5, "10", True, None])
def test_clock_advance_rejects_bad_seconds(admin_stack: Stack, seconds: Any) -> None:
    before = admin_stack.admin.json("clock", "show")["offsetSeconds"]
    body = {} if seconds is None else {"seconds": seconds}
    response = post(admin_stack, "/admin/v1/clock/advance", body)
    assert_error(response, 400, "INVALID_PARAMETER")
    assert admin_stack.admin.json("clock", "show")["offsetSeconds"] == before


def test_clock_advance_needs_the_simulated_clock(make_stack: Any) -> None:
    stack = make_stack(ZBMC_ADMIN_TOKEN=TOKEN)
    response = post(stack, "/admin/v1/clock/advance", {"seconds": 60})
    assert "simulate" in assert_error(response, 400, "INVALID_PARAMETER")


# --- top-ups ------------------------------------------------------------------------------------


def test_topup(admin_stack: Stack) -> None:
    tenant = admin_stack.tenant()
    response = post(admin_stack, f"/admin/v1/tenants/{tenant.tenant_id}/topup", {"amount": "12.34"})
    assert response.status_code == 200
    assert response.json() == {"tenantId": tenant.tenant_id, "balance": "1012.34"}
    assert tenant.balance() == Decimal("1012.34")
    last = tenant.ledger()[-1]
    assert (last["kind"], Decimal(str(last["amount"]))) == ("TOPUP", Decimal("12.34"))


def test_topup_of_an_unknown_tenant_is_404(admin_stack: Stack) -> None:
    response = post(admin_stack, "/admin/v1/tenants/tnt-nobody/topup", {"amount": "1.00"})
    assert "tnt-nobody" in assert_error(response, 404, "OPERATION_FAILED_RESOURCE_NOT_FOUND")


@pytest.mark.parametrize("amount", ["abc", "-1", "0", "1.234", "NaN", True, None, [1]])
def test_topup_rejects_bad_amounts(admin_stack: Stack, amount: Any) -> None:
    tenant = admin_stack.tenant()
    body = {} if amount is None else {"amount": amount}
    response = post(admin_stack, f"/admin/v1/tenants/{tenant.tenant_id}/topup", body)
    assert_error(response, 400, "INVALID_PARAMETER")
    assert tenant.balance() == Decimal("1000.00")


def test_concurrent_batches_store_each_sample_once(admin_stack: Stack) -> None:
    """Two agents resending overlapping batches at the same time, in opposite orders."""
    tenant = admin_stack.tenant()
    iid = tenant.instance()
    t = boundary_hours_ago(40)
    samples = [
        {
            "sampleId": f"{iid}-{i}",
            "instanceId": iid,
            "time": t - 60 * i,
            "inBytes": i,
            "outBytes": 0,
        }
        for i in range(2000)
    ]
    batches = [samples[:1500], samples[500:][::-1]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda b: post(admin_stack, "/admin/v1/traffic", {"samples": b}), batches)
        )
    assert [r.status_code for r in results] == [200, 200]
    assert sum(r.json()["accepted"] for r in results) == 2000
    assert sum(r.json()["duplicates"] for r in results) == 1000
    again = post(admin_stack, "/admin/v1/traffic", {"samples": samples})
    assert again.json() == {"accepted": 0, "duplicates": 2000}


# --- numbers out of range (issue 16): 400 with the allowed range, never a 500 -----------------


@pytest.mark.parametrize(
    "body",
    [b'{"seconds": 9223372036854775807}', b'{"seconds": 1e400}', b'{"seconds": 100000000000}'],
    ids=["2**63-1", "1e400", "1e11"],
)
def test_clock_advance_out_of_range_is_400(admin_stack: Stack, body: bytes) -> None:
    before = admin_stack.admin.json("clock", "show")["offsetSeconds"]
    message = assert_error(
        post(admin_stack, "/admin/v1/clock/advance", body), 400, "INVALID_PARAMETER"
    )
    assert "315360000" in message  # the allowed range: 0 to 3650 days
    assert admin_stack.admin.json("clock", "show")["offsetSeconds"] == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"amount": "1e30"}',
        b'{"amount": 1e400}',
        b'{"amount": "1E+400"}',
        b'{"amount": 1000000000000000000000000000000}',
        b'{"amount": "1000000000000.01"}',
        b'{"amount": "-1e30"}',
        b'{"amount": "Infinity"}',
        b'{"amount": "sNaN"}',
        b'{"amount": NaN}',
    ],
    ids=["1e30", "1e400", "1E+400-text", "10**30", "max+0.01", "-1e30", "Infinity", "sNaN", "NaN"],
)
def test_topup_out_of_range_is_400(admin_stack: Stack, body: bytes) -> None:
    tenant = admin_stack.tenant()
    response = post(admin_stack, f"/admin/v1/tenants/{tenant.tenant_id}/topup", body)
    assert "1000000000000.00" in assert_error(response, 400, "INVALID_PARAMETER")
    assert tenant.balance() == Decimal("1000.00")


def test_topups_cannot_push_the_balance_beyond_its_bound(admin_stack: Stack) -> None:
    tenant = admin_stack.tenant()
    path = f"/admin/v1/tenants/{tenant.tenant_id}/topup"
    for _ in range(99):
        assert post(admin_stack, path, {"amount": "1000000000000.00"}).status_code == 200
    full = tenant.balance()
    assert "exceed" in assert_error(
        post(admin_stack, path, {"amount": "1000000000000.00"}), 400, "INVALID_PARAMETER"
    )
    assert tenant.balance() == full


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("inBytes", b"18446744073709551616"),
        ("inBytes", b"1e400"),
        ("time", b"9223372036854775808"),
        ("inBps", b"1e400"),
        ("inBps", b"-1e30"),
    ],
)
def test_traffic_numbers_out_of_range_are_400(admin_stack: Stack, field: str, value: bytes) -> None:
    iid = admin_stack.tenant().instance()
    sample = {"sampleId": "big", "instanceId": iid, "time": 0, "inBytes": 0, "outBytes": 0}
    if field == "inBps":
        del sample["inBytes"]
    sample[field] = "@"
    body = ('{"samples": [' + __import__("json").dumps(sample) + "]}").encode()
    body = body.replace(b'"@"', value)
    response = post(admin_stack, "/admin/v1/traffic", body)
    assert "range" in assert_error(response, 400, "INVALID_PARAMETER")
