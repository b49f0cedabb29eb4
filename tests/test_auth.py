"""Authentication against the live server: ZC2-HMAC-SHA256 access keys (spec §3.1, Q1-Q3) and
bearer tokens (§3.2), through hand-made requests and the official SDK."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant
from tests.test_protocol import (
    REQUEST_ID,
    assert_error,
    assert_success,
    hmac_headers,
    key_of,
    post,
)

SIGNATURE_FAILURE = "AUTHFAILURE_SIGNATURE_FAILURE"
INVALID_AUTHORIZATION = "AUTHFAILURE_INVALID_AUTHORIZATION"
SIGNATURE_EXPIRED = "AUTHFAILURE_SIGNATURE_EXPIRED"
SDK_BODY = json.dumps({"zoneId": "SEL-A", "instanceChargeType": "PREPAID"}).encode()


def zones_request() -> Any:
    from zenlayercloud.bmc.v20260201 import models

    return models.DescribeZonesRequest()


def sdk_error(call: Any) -> ZenlayerCloudSdkException:
    with pytest.raises(ZenlayerCloudSdkException) as raised:
        call()
    assert REQUEST_ID.fullmatch(raised.value.request_id)
    return raised.value


def bearer(stack: Stack, token: str, body: bytes = b"{}") -> requests.Response:
    headers = {
        "Content-Type": "application/json",
        "X-ZC-Action": "DescribeZones",
        "X-ZC-Version": V2026,
        "Authorization": f"Bearer {token}",
    }
    return post(stack, headers, body)


# --- HMAC: what passes -------------------------------------------------------------------------


def test_sdk_signed_requests_pass(tenant: Tenant, version: str) -> None:
    zones = tenant.client(version).DescribeZones(zones_request()).zoneSet
    assert {zone.zoneId for zone in zones} >= {"SEL-A", "HKG-A", "FRA-A", "LAX-A"}


def test_correct_signature_passes(stack: Stack, tenant: Tenant) -> None:
    # Exactly what the Python SDK sends: json.dumps with spaces, Content-Type application/json.
    assert b'", "' in SDK_BODY
    headers = hmac_headers(
        key_of(tenant), SDK_BODY, host=stack.host, action="DescribeAvailableResources"
    )
    resources = assert_success(post(stack, headers, SDK_BODY))["availableResources"]
    assert {item["zoneId"] for item in resources} == {"SEL-A"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"zoneId":"SEL-A","instanceChargeType":"PREPAID"}', "application/json"),
        (SDK_BODY, "application/json; charset=utf-8"),
        (b'{"zoneId":"SEL-A","instanceChargeType":"PREPAID"}', "application/json;charset=UTF-8"),
        (b'\n{ "zoneId" : "SEL-A" ,\n  "instanceChargeType" : "PREPAID" }\n', "application/json"),
    ],
    ids=["compact", "charset", "compact-charset", "pretty"],
)
def test_other_body_styles_and_content_types_pass(
    stack: Stack, tenant: Tenant, body: bytes, content_type: str
) -> None:
    headers = hmac_headers(
        key_of(tenant),
        body,
        host=stack.host,
        content_type=content_type,
        action="DescribeAvailableResources",
    )
    resources = assert_success(post(stack, headers, body))["availableResources"]
    assert {item["zoneId"] for item in resources} == {"SEL-A"}


@pytest.mark.parametrize("skew", [-250, 250])
def test_timestamp_inside_the_window_passes(stack: Stack, tenant: Tenant, skew: int) -> None:
    response = stack.raw({}, key=key_of(tenant), timestamp=int(time.time()) + skew)
    assert assert_success(response)["zoneSet"]


# --- HMAC: what fails --------------------------------------------------------------------------


def test_wrong_secret_is_a_signature_failure(stack: Stack, tenant: Tenant, version: str) -> None:
    wrong = (tenant.access_key_id, tenant.access_key_password + "x")
    error = sdk_error(lambda: stack.client(*wrong, version).DescribeZones(zones_request()))
    assert error.code == SIGNATURE_FAILURE
    assert_error(stack.raw({}, key=wrong, version=version), 401, SIGNATURE_FAILURE)


def test_another_tenants_secret_is_a_signature_failure(stack: Stack, tenant: Tenant) -> None:
    other = stack.tenant()
    mixed = (tenant.access_key_id, other.access_key_password)
    assert_error(stack.raw({}, key=mixed), 401, SIGNATURE_FAILURE)


@pytest.mark.parametrize("signature", ["0" * 64, "", "not-hex"])
def test_forged_signature_is_rejected(stack: Stack, tenant: Tenant, signature: str) -> None:
    headers = hmac_headers(key_of(tenant), b"{}", host=stack.host)
    headers["Authorization"] = (
        f"ZC2-HMAC-SHA256 Credential={tenant.access_key_id}, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )
    expected = INVALID_AUTHORIZATION if not signature else SIGNATURE_FAILURE
    assert_error(post(stack, headers, b"{}"), 401, expected)


def test_upper_case_signature_is_rejected(stack: Stack, tenant: Tenant) -> None:
    # The SDKs send lower-case hex; the comparison is exact.
    headers = hmac_headers(key_of(tenant), b"{}", host=stack.host)
    prefix, _, signature = headers["Authorization"].rpartition("Signature=")
    headers["Authorization"] = f"{prefix}Signature={signature.upper()}"
    assert_error(post(stack, headers, b"{}"), 401, SIGNATURE_FAILURE)


@pytest.mark.parametrize(
    "sent",
    [
        b'{"zoneId":"SEL-A","instanceChargeType":"PREPAID"}',
        SDK_BODY + b" ",
        SDK_BODY.replace(b"SEL-A", b"HKG-A"),
        b'{"instanceChargeType": "PREPAID"}',
    ],
    ids=["compacted", "trailing-space", "other-value", "key-dropped"],
)
def test_body_changed_after_signing(stack: Stack, tenant: Tenant, sent: bytes) -> None:
    headers = hmac_headers(
        key_of(tenant), SDK_BODY, host=stack.host, action="DescribeAvailableResources"
    )
    assert_error(post(stack, headers, sent), 401, SIGNATURE_FAILURE)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Host", "localhost:{port}"),
        ("Host", "127.0.0.1"),
        ("Host", "console.zenlayer.com"),
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Type", "Application/JSON"),
        ("Content-Type", "text/plain"),
        ("X-ZC-Timestamp", "{timestamp_plus_one}"),
    ],
)
def test_signed_header_changed_after_signing(
    stack: Stack, tenant: Tenant, header: str, value: str
) -> None:
    headers = hmac_headers(key_of(tenant), b"{}", host=stack.host)
    timestamp_plus_one = str(int(headers["X-ZC-Timestamp"]) + 1)
    headers[header] = value.format(port=stack.port, timestamp_plus_one=timestamp_plus_one)
    assert_error(post(stack, headers, b"{}"), 401, SIGNATURE_FAILURE)


def test_missing_authorization(stack: Stack, tenant: Tenant) -> None:
    headers = hmac_headers(key_of(tenant), b"{}", host=stack.host)
    del headers["Authorization"]
    message = assert_error(post(stack, headers, b"{}"), 401, INVALID_AUTHORIZATION)
    assert "Authorization" in message
    assert_error(stack.raw({}), 401, INVALID_AUTHORIZATION)


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "ZC2-HMAC-SHA256",
        "ZC2-HMAC-SHA256 {key}",
        "ZC2-HMAC-SHA256 Credential={key}",
        "ZC2-HMAC-SHA256 Credential={key}, SignedHeaders=content-type;host",
        "ZC2-HMAC-SHA256 Credential={key}, SignedHeaders=host, Signature={sig}",
        "ZC2-HMAC-SHA256 SignedHeaders=content-type;host, Signature={sig}",
        "HMAC-SHA256 Credential={key}, SignedHeaders=content-type;host, Signature={sig}",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Bearer",
        "Bearer ",
        "{sig}",
    ],
)
def test_malformed_authorization(stack: Stack, tenant: Tenant, authorization: str) -> None:
    headers = hmac_headers(key_of(tenant), b"{}", host=stack.host)
    signature = headers["Authorization"].rpartition("Signature=")[2]
    headers["Authorization"] = authorization.format(key=tenant.access_key_id, sig=signature)
    assert_error(post(stack, headers, b"{}"), 401, INVALID_AUTHORIZATION)


def test_unknown_key_id(stack: Stack, tenant: Tenant, version: str) -> None:
    unknown = ("AKIDNOSUCHKEY0000000", tenant.access_key_password)
    error = sdk_error(lambda: stack.client(*unknown, version).DescribeZones(zones_request()))
    assert error.code == INVALID_AUTHORIZATION
    assert_error(stack.raw({}, key=unknown), 401, INVALID_AUTHORIZATION)


@pytest.mark.parametrize("skew", [-301 - 60, 301 + 60, -86400, 10**9])
def test_timestamp_outside_the_window(stack: Stack, tenant: Tenant, skew: int) -> None:
    response = stack.raw({}, key=key_of(tenant), timestamp=int(time.time()) + skew)
    message = assert_error(response, 401, SIGNATURE_EXPIRED)
    assert "300" in message


@pytest.mark.parametrize(
    "timestamp",
    ["", "abc", "1.7e9", "{now}.0", "-{now}", "{now}x", "0x6400", "{now}{now}"],
)
def test_malformed_timestamp(stack: Stack, tenant: Tenant, timestamp: str) -> None:
    value = timestamp.format(now=int(time.time()))
    headers = hmac_headers(key_of(tenant), b"{}", host=stack.host, timestamp=value)
    assert_error(post(stack, headers, b"{}"), 401, INVALID_AUTHORIZATION)


def test_missing_timestamp(stack: Stack, tenant: Tenant) -> None:
    headers = hmac_headers(key_of(tenant), b"{}", host=stack.host)
    del headers["X-ZC-Timestamp"]
    assert_error(post(stack, headers, b"{}"), 401, INVALID_AUTHORIZATION)


# --- access key lifecycle ----------------------------------------------------------------------


def test_revoked_key_fails_while_a_second_key_works(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    second = stack.admin.json("key", "create", tenant.tenant_id)
    assert second["tenantId"] == tenant.tenant_id
    second_key = (second["accessKeyId"], second["accessKeyPassword"])
    assert second_key[0] != tenant.access_key_id
    instance_id = tenant.instance()

    stack.admin.run("key", "revoke", tenant.access_key_id)

    error = sdk_error(lambda: tenant.client(version).DescribeZones(zones_request()))
    assert error.code == INVALID_AUTHORIZATION
    assert_error(stack.raw({}, key=key_of(tenant), version=version), 401, INVALID_AUTHORIZATION)

    from zenlayercloud.bmc.v20260201 import models

    request = models.DescribeInstancesRequest()
    result = stack.client(*second_key, version).DescribeInstances(request)
    assert [item.instanceId for item in result.dataSet] == [instance_id]
    assert stack.admin.fails("key", "revoke", tenant.access_key_id)


# --- bearer tokens -----------------------------------------------------------------------------


def _token(stack: Stack, tenant: Tenant, *options: str) -> str:
    created = stack.admin.json("token", "create", tenant.tenant_id, *options)
    assert created["tokenId"]
    return str(created["token"])


@pytest.mark.parametrize("options", [(), ("--days", "7")], ids=["no-expiry", "7-days"])
def test_token_works_through_the_sdk(
    stack: Stack, tenant: Tenant, version: str, options: tuple[str, ...]
) -> None:
    from zenlayercloud.bmc.v20260201 import models

    instance_id = tenant.instance()
    stack.tenant().instance()  # another tenant's instance must stay invisible
    client = stack.token_client(_token(stack, tenant, *options), version)
    assert {zone.zoneId for zone in client.DescribeZones(zones_request()).zoneSet} >= {"SEL-A"}
    result = client.DescribeInstances(models.DescribeInstancesRequest())
    assert [item.instanceId for item in result.dataSet] == [instance_id]


def test_token_request_has_no_timestamp_or_signature(stack: Stack, tenant: Tenant) -> None:
    # Bearer requests carry neither X-ZC-Timestamp nor X-ZC-Signature-Method (spec §3.2).
    response = bearer(stack, _token(stack, tenant))
    assert assert_success(response)["zoneSet"]


@pytest.mark.parametrize("revoke_by", ["token", "tokenId"])
def test_revoked_token_fails(stack: Stack, tenant: Tenant, version: str, revoke_by: str) -> None:
    created = stack.admin.json("token", "create", tenant.tenant_id)
    kept = _token(stack, tenant)
    client = stack.token_client(created["token"], version)
    assert client.DescribeZones(zones_request()).zoneSet

    stack.admin.run("token", "revoke", created[revoke_by])

    error = sdk_error(lambda: client.DescribeZones(zones_request()))
    assert error.code == INVALID_AUTHORIZATION
    assert_error(bearer(stack, created["token"]), 401, INVALID_AUTHORIZATION)
    assert stack.token_client(kept, version).DescribeZones(zones_request()).zoneSet


@pytest.mark.parametrize("token", ["zbmc_no-such-token", "x", "{secret}"])
def test_unknown_token_fails(stack: Stack, tenant: Tenant, version: str, token: str) -> None:
    # An access key password is not a token.
    value = token.format(secret=tenant.access_key_password)
    error = sdk_error(lambda: stack.token_client(value, version).DescribeZones(zones_request()))
    assert error.code == INVALID_AUTHORIZATION
    assert_error(bearer(stack, value), 401, INVALID_AUTHORIZATION)


def test_tokens_and_keys_act_for_the_same_tenant(stack: Stack, tenant: Tenant) -> None:
    from zenlayercloud.bmc.v20260201 import models

    request = models.ModifyInstanceBandwidthRequest()
    request.instanceId = tenant.instance(bandwidth=100)
    request.bandwidthOutMbps = 150
    order = stack.token_client(_token(stack, tenant), V2022).ModifyInstanceBandwidth(request)
    assert [item["orderNumber"] for item in tenant.orders()] == [order.orderNumber]


def test_token_lifetime_is_on_the_wall_clock(make_stack: StackFactory, version: str) -> None:
    """Issue 16: after `clock advance 30d`, `token create --days 1` lasts one real day (it was
    stored on the billing clock and checked on the wall clock: 31 real days)."""
    from sqlalchemy import select

    from zbmc.db.tables import tokens

    stack = make_stack()
    stack.admin.run("clock", "simulate")
    stack.admin.run("clock", "advance", "30d")
    tenant = stack.tenant()
    before = int(time.time())
    created = stack.admin.json("token", "create", tenant.tenant_id, "--days", "1")
    after = int(time.time())
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(tokens.c.created_at, tokens.c.expires_at).where(
                    tokens.c.token_id == created["tokenId"]
                )
            ).one()
    finally:
        engine.dispose()
    assert before <= row.created_at <= after
    assert before + 86400 <= row.expires_at <= after + 86400
    # Valid now, and moving the billing clock on does not expire it: only real time does.
    client = stack.token_client(created["token"], version)
    assert client.DescribeZones(zones_request()).zoneSet
    stack.admin.run("clock", "advance", "2d")
    assert client.DescribeZones(zones_request()).zoneSet


@pytest.mark.parametrize("days", ["0", "36501", "99999999999999999999"])
def test_token_lifetime_out_of_range(stack: Stack, tenant: Tenant, days: str) -> None:
    assert "36500" in stack.admin.fails("token", "create", tenant.tenant_id, "--days", days)
