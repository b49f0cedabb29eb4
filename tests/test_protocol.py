"""The wire protocol around every action: paths, methods, headers, versions, bodies, field types,
size limits, envelopes and internal errors (spec §1, §2, §4, §5, Q4-Q7)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import text
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant, wait_until
from zbmc.signature import sign

REQUEST_ID = re.compile(r"T[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
MIB = 1024 * 1024


# --- envelope checks and hand-made requests (shared with test_auth) ----------------------------


def assert_error(response: requests.Response, status: int, code: str) -> str:
    """Check the error envelope exactly; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert set(body) == {"requestId", "code", "message"}, body
    assert REQUEST_ID.fullmatch(body["requestId"]), body
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert response.headers["x-zc-request-id"] == body["requestId"]
    return str(body["message"])


def assert_success(response: requests.Response) -> dict[str, Any]:
    """Check the success envelope exactly; return the inner response object."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json(parse_float=Decimal)
    assert isinstance(body, dict)
    assert set(body) == {"requestId", "response"}, body
    assert REQUEST_ID.fullmatch(body["requestId"]), body
    inner = body["response"]
    assert isinstance(inner, dict)
    assert inner["requestId"] == body["requestId"]
    assert response.headers["x-zc-request-id"] == body["requestId"]
    return inner


def hmac_headers(
    key: tuple[str, str],
    body: bytes,
    *,
    host: str,
    content_type: str = "application/json",
    timestamp: str | None = None,
    action: str = "DescribeZones",
    version: str = V2026,
) -> dict[str, str]:
    """The headers the SDK would send for ``body``, signed with ``key``."""
    ts = str(int(time.time())) if timestamp is None else timestamp
    signature = sign(key[1], content_type, host, ts, body)
    return {
        "Host": host,
        "Content-Type": content_type,
        "X-ZC-Action": action,
        "X-ZC-Version": version,
        "X-ZC-Timestamp": ts,
        "X-ZC-Signature-Method": "ZC2-HMAC-SHA256",
        "Authorization": f"ZC2-HMAC-SHA256 Credential={key[0]}, "
        f"SignedHeaders=content-type;host, Signature={signature}",
    }


def post(stack: Stack, headers: dict[str, str], body: bytes | Iterator[bytes]) -> requests.Response:
    return requests.post(stack.url, data=body, headers=headers, timeout=30)


def key_of(tenant: Tenant) -> tuple[str, str]:
    return tenant.access_key_id, tenant.access_key_password


def internet_status(tenant: Tenant, instance_id: str) -> dict[str, Any]:
    from zenlayercloud.bmc.v20260201 import models

    request = models.DescribeInstanceInternetStatusRequest()
    request.instanceId = instance_id
    result = tenant.client().DescribeInstanceInternetStatus(request)
    return {
        name: getattr(result, name)
        for name in (
            "internetMaxBandwidthOut",
            "modifiedInternetMaxBandwidthOut",
            "modifiedBandwidthStatus",
            "trafficPackageSize",
            "modifiedTrafficPackageSize",
            "modifiedTrafficPackageStatus",
        )
    }


# --- paths and methods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v2/nope", "/api/v2/", "/api/v2/bmcx", "/api/v2/bmc/A/B", "/api/v2/bmc/", "/foo", "/"],
)
def test_unknown_path_is_404(stack: Stack, tenant: Tenant, path: str) -> None:
    response = stack.raw({}, key=key_of(tenant), path=path)
    assert_error(response, 404, "INVALID_PATH")


def test_unknown_path_with_get_is_404(stack: Stack) -> None:
    assert_error(stack.raw({}, path="/foo", method="GET"), 404, "INVALID_PATH")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405(stack: Stack, tenant: Tenant, method: str) -> None:
    response = stack.raw({}, key=key_of(tenant), method=method)
    assert_error(response, 405, "INVALID_HTTP_METHOD")


# --- action and version headers ----------------------------------------------------------------


@pytest.mark.parametrize("action", ["NoSuchAction", "describeZones", "ModifyLoadBalancerBandwidth"])
def test_unknown_action_is_invalid_action(stack: Stack, tenant: Tenant, action: str) -> None:
    response = stack.raw({}, key=key_of(tenant), action=action)
    assert action in assert_error(response, 400, "INVALID_ACTION")


@pytest.mark.parametrize("action", [None, ""])
def test_missing_action_header(stack: Stack, tenant: Tenant, action: str | None) -> None:
    response = stack.raw({}, key=key_of(tenant), action=action)
    assert "X-ZC-Action" in assert_error(response, 400, "MISSING_PARAMETER")


@pytest.mark.parametrize("version", ["2099-01-01", "2022-11-21", "v2026-02-01", "latest"])
def test_unknown_version_is_invalid_version(stack: Stack, tenant: Tenant, version: str) -> None:
    response = stack.raw({}, key=key_of(tenant), version=version)
    assert version in assert_error(response, 400, "INVALID_VERSION")


def test_missing_version_is_served_as_2022_11_20(stack: Stack, tenant: Tenant) -> None:
    older = assert_success(stack.raw({}, key=key_of(tenant), version=None))
    newer = assert_success(stack.raw({}, key=key_of(tenant), version=V2026))
    explicit = assert_success(stack.raw({}, key=key_of(tenant), version=V2022))
    assert older["zoneSet"]
    # isByoipEnabled exists only in 2026-02-01 (spec §8), so it tells the versions apart.
    assert all("isByoipEnabled" in zone for zone in newer["zoneSet"])
    assert not any("isByoipEnabled" in zone for zone in older["zoneSet"])
    assert older["zoneSet"] == explicit["zoneSet"]


def test_request_ids_are_unique(stack: Stack, tenant: Tenant) -> None:
    ids = {assert_success(stack.raw({}, key=key_of(tenant)))["requestId"] for _ in range(5)}
    ids |= {
        json.loads(stack.raw({}, key=key_of(tenant), action="Nope").text)["requestId"]
        for _ in range(5)
    }
    assert len(ids) == 10


# --- bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b"{'zoneId': 'SEL-A'}",
        b'{"zoneId": "SEL-A",}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1}{"b": 2}',
        b"\xff\xfe{\x00}\x00",
        b'{"zoneId": "\xff"}',
    ],
    ids=[
        "truncated",
        "text",
        "single-quotes",
        "trailing-comma",
        "nan",
        "infinity",
        "two-objects",
        "utf16",
        "bad-utf8",
    ],
)
def test_body_that_is_not_json(stack: Stack, tenant: Tenant, body: bytes) -> None:
    response = stack.raw(body, key=key_of(tenant))
    assert_error(response, 400, "INVALID_PARAMETER")


@pytest.mark.parametrize(
    "body", [b"[]", b"[{}]", b'"text"', b"42", b"1.5", b"true", b"null", b"{}[]"]
)
def test_json_that_is_not_an_object(stack: Stack, tenant: Tenant, body: bytes) -> None:
    response = stack.raw(body, key=key_of(tenant))
    assert_error(response, 400, "INVALID_PARAMETER")


@pytest.mark.parametrize("body", [b"", b"  \r\n\t "], ids=["empty", "whitespace"])
def test_empty_body_means_an_empty_object(stack: Stack, tenant: Tenant, body: bytes) -> None:
    response = assert_success(stack.raw(body, key=key_of(tenant)))
    reference = assert_success(stack.raw(b"{}", key=key_of(tenant)))
    assert response["zoneSet"]
    assert response["zoneSet"] == reference["zoneSet"]


def test_required_field_in_an_empty_body_is_missing(stack: Stack, tenant: Tenant) -> None:
    response = stack.raw(b"", key=key_of(tenant), action="DescribeAvailableResources")
    assert "instanceChargeType" in assert_error(response, 400, "MISSING_PARAMETER")


@pytest.mark.parametrize(
    "body",
    [
        b'{"instanceId": "\\ud800", "bandwidthOutMbps": 200}',
        b'{"instanceId": "x\\uDC00y", "bandwidthOutMbps": 200}',
        b'{"instanceId": "INSTANCE", "bandwidthOutMbps": 200, "note": ["\\ude00\\ud83d"]}',
        b'{"instanceId": "INSTANCE", "bandwidthOutMbps": 200, "\\ud800": 1}',
        b'{"instanceId": "\xed\xa0\x80", "bandwidthOutMbps": 200}',
    ],
    ids=["high", "low", "reversed-pair-in-ignored-key", "in-a-key", "utf8-encoded"],
)
def test_unpaired_surrogates_are_invalid(stack: Stack, tenant: Tenant, body: bytes) -> None:
    instance_id = tenant.instance()
    payload = body.replace(b"INSTANCE", instance_id.encode())
    response = stack.raw(payload, key=key_of(tenant), action="ModifyInstanceBandwidth")
    assert_error(response, 400, "INVALID_PARAMETER")
    assert tenant.orders() == []


def test_escaped_surrogate_pairs_are_text(stack: Stack, tenant: Tenant) -> None:
    # \ud83d\ude00 is one character (U+1F600): valid, so an unknown instance, not a bad body.
    body = b'{"instanceId": "\\ud83d\\ude00", "bandwidthOutMbps": 200}'
    response = stack.raw(body, key=key_of(tenant), action="ModifyInstanceBandwidth")
    assert "\U0001f600" in assert_error(response, 404, "INVALID_INSTANCE_NOT_FOUND")
    literal = b'{"acceptLanguage": "\\\\ud800"}'  # a backslash followed by "ud800"
    assert assert_success(stack.raw(literal, key=key_of(tenant)))["zoneSet"]


# --- field types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["200", True, False, Decimal("1.5"), Decimal("200.0"), [200], {"mbps": 200}],
    ids=["string", "true", "false", "fraction", "integral-float", "list", "object"],
)
def test_integer_field_rejects_other_json_types(stack: Stack, tenant: Tenant, value: Any) -> None:
    instance_id = tenant.instance()
    body = json.dumps({"instanceId": instance_id, "bandwidthOutMbps": _jsonable(value)})
    response = stack.raw(body, key=key_of(tenant), action="ModifyInstanceBandwidth")
    assert "bandwidthOutMbps" in assert_error(response, 400, "INVALID_PARAMETER")


@pytest.mark.parametrize(
    "value", ["1.5", "1", True, [1], {"tb": 1}], ids=["string", "int-string", "true", "list", "obj"]
)
def test_float_field_rejects_other_json_types(stack: Stack, tenant: Tenant, value: Any) -> None:
    instance_id = tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="1")
    body = json.dumps({"instanceId": instance_id, "trafficPackageSize": value})
    response = stack.raw(body, key=key_of(tenant), action="ModifyInstanceTrafficPackage")
    assert "trafficPackageSize" in assert_error(response, 400, "INVALID_PARAMETER")


def test_string_field_rejects_a_number(stack: Stack, tenant: Tenant) -> None:
    body = json.dumps({"instanceId": 12345, "bandwidthOutMbps": 200})
    response = stack.raw(body, key=key_of(tenant), action="ModifyInstanceBandwidth")
    assert "instanceId" in assert_error(response, 400, "INVALID_PARAMETER")


def test_wrong_type_through_the_sdk(stack: Stack, tenant: Tenant, version: str) -> None:
    from zenlayercloud.bmc.v20260201 import models

    request = models.ModifyInstanceBandwidthRequest()
    request.instanceId = tenant.instance()
    request.bandwidthOutMbps = "200"
    with pytest.raises(ZenlayerCloudSdkException) as raised:
        tenant.client(version).ModifyInstanceBandwidth(request)
    assert raised.value.code == "INVALID_PARAMETER"
    assert REQUEST_ID.fullmatch(raised.value.request_id)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bandwidthOutMbps": 200}, "instanceId"),
        ({"instanceId": "INSTANCE"}, "bandwidthOutMbps"),
        ({"instanceId": None, "bandwidthOutMbps": 200}, "instanceId"),
        ({"instanceId": "INSTANCE", "bandwidthOutMbps": None}, "bandwidthOutMbps"),
        ({"instanceId": "", "bandwidthOutMbps": 200}, "instanceId"),
        ({}, "instanceId"),
    ],
    ids=["no-instance", "no-bandwidth", "null-instance", "null-bandwidth", "empty-id", "empty"],
)
def test_missing_required_field_names_it(
    stack: Stack, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    instance_id = tenant.instance()
    payload = {k: instance_id if v == "INSTANCE" else v for k, v in body.items()}
    response = stack.raw(payload, key=key_of(tenant), action="ModifyInstanceBandwidth")
    message = assert_error(response, 400, "MISSING_PARAMETER")
    assert f"`{field}`" in message


def test_unknown_keys_are_ignored(stack: Stack, tenant: Tenant) -> None:
    extra = {"sshKeys": ["ssh-ed25519 AAAA test"], "fooBar": {"x": [1, None]}, "": 1}
    zones = assert_success(stack.raw(extra, key=key_of(tenant), version=V2022))
    assert {zone["zoneId"] for zone in zones["zoneSet"]} >= {"SEL-A", "HKG-A"}
    instance_id = tenant.instance()
    body = {"instanceId": instance_id, "bandwidthOutMbps": 200, **extra}
    changed = assert_success(
        stack.raw(body, key=key_of(tenant), action="ModifyInstanceBandwidth", version=V2022)
    )
    assert changed["orderNumber"]
    wait_until(lambda: internet_status(tenant, instance_id)["internetMaxBandwidthOut"] == 200)


def _jsonable(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


# --- size limit --------------------------------------------------------------------------------


def _padded(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (an ignored key carries the padding)."""
    shell = b'{"padding": ""}'
    body = shell[:-2] + b"x" * (size - len(shell)) + shell[-2:]
    assert len(body) == size
    return body


def test_body_of_exactly_one_mib_is_accepted(stack: Stack, tenant: Tenant) -> None:
    response = stack.raw(_padded(MIB), key=key_of(tenant))
    assert assert_success(response)["zoneSet"]


def test_body_over_one_mib_is_413(stack: Stack, tenant: Tenant) -> None:
    response = stack.raw(_padded(MIB + 1), key=key_of(tenant))
    assert_error(response, 413, "INVALID_PARAMETER_BODY_TOO_LARGE")


def test_chunked_body_over_one_mib_is_413(stack: Stack, tenant: Tenant) -> None:
    body = _padded(MIB + 1)
    headers = hmac_headers(key_of(tenant), body, host=stack.host)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = post(stack, headers, chunks())
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(response, 413, "INVALID_PARAMETER_BODY_TOO_LARGE")


def test_chunked_body_of_exactly_one_mib_is_accepted(stack: Stack, tenant: Tenant) -> None:
    body = _padded(MIB)
    headers = hmac_headers(key_of(tenant), body, host=stack.host)
    response = post(stack, headers, iter([body[: MIB // 2], body[MIB // 2 :]]))
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert assert_success(response)["zoneSet"]


# --- headers -----------------------------------------------------------------------------------


def test_header_names_are_case_insensitive(stack: Stack, tenant: Tenant) -> None:
    body = b'{"instanceChargeType": "PREPAID", "zoneId": "SEL-A"}'
    signed = hmac_headers(
        key_of(tenant), body, host=stack.host, action="DescribeAvailableResources"
    )
    for spelling in (str.lower, str.upper, _alternating):
        response = post(stack, {spelling(name): value for name, value in signed.items()}, body)
        resources = assert_success(response)["availableResources"]
        assert {item["zoneId"] for item in resources} == {"SEL-A"}


def _alternating(name: str) -> str:
    return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(name))


def test_unknown_headers_are_ignored(stack: Stack, tenant: Tenant) -> None:
    body = b"{}"
    headers = hmac_headers(key_of(tenant), body, host=stack.host)
    headers |= {
        "X-ZC-Service": "bmc",
        "X-ZC-SDK-Version": "SDK_PYTHON_2.0.077",
        "X-ZC-SDK-Lang": "Python",
        "X-ZC-Request-Client": "zeno",
        "X-ZC-Signature-Version": "v2",
        "X-Something-Else": "whatever",
        "Accept-Language": "zh-CN",
    }
    assert assert_success(post(stack, headers, body))["zoneSet"]


# --- a rejected request changes nothing --------------------------------------------------------


def _observe(tenant: Tenant, instance_id: str) -> tuple[Any, ...]:
    return (
        tenant.balance(),
        tenant.orders(),
        tenant.ledger(),
        internet_status(tenant, instance_id),
    )


def test_rejected_requests_change_nothing(stack: Stack, tenant: Tenant) -> None:
    instance_id = tenant.instance(bandwidth=100)
    before = _observe(tenant, instance_id)
    good = json.dumps({"instanceId": instance_id, "bandwidthOutMbps": 200}).encode()
    modify = "ModifyInstanceBandwidth"

    wrong_key = (tenant.access_key_id, tenant.access_key_password + "x")
    response = post(stack, hmac_headers(wrong_key, good, host=stack.host, action=modify), good)
    assert_error(response, 401, "AUTHFAILURE_SIGNATURE_FAILURE")

    signed_other = hmac_headers(key_of(tenant), b"{}", host=stack.host, action=modify)
    assert_error(post(stack, signed_other, good), 401, "AUTHFAILURE_SIGNATURE_FAILURE")

    unsigned = {"Content-Type": "application/json", "X-ZC-Action": modify}
    assert_error(post(stack, unsigned, good), 401, "AUTHFAILURE_INVALID_AUTHORIZATION")

    bad_field = json.dumps({"instanceId": instance_id, "bandwidthOutMbps": "200"}).encode()
    response = post(
        stack, hmac_headers(key_of(tenant), bad_field, host=stack.host, action=modify), bad_field
    )
    assert_error(response, 400, "INVALID_PARAMETER")

    too_big = json.dumps({"instanceId": instance_id, "bandwidthOutMbps": 10**6}).encode()
    response = post(
        stack, hmac_headers(key_of(tenant), too_big, host=stack.host, action=modify), too_big
    )
    assert_error(response, 400, "INVALID_PARAMETER_BANDWIDTH_EXCEED")

    assert _observe(tenant, instance_id) == before

    # The same request, correctly signed, does change what was observed.
    response = post(stack, hmac_headers(key_of(tenant), good, host=stack.host, action=modify), good)
    assert assert_success(response)["orderNumber"]
    assert _observe(tenant, instance_id) != before


# --- internal errors ---------------------------------------------------------------------------


def test_internal_error_is_a_clean_500_and_logged(make_stack: StackFactory) -> None:
    stack = make_stack()
    tenant = stack.tenant()
    engine = stack.engine()
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE offerings"))
    finally:
        engine.dispose()
    body = b'{"instanceChargeType": "PREPAID"}'
    response = stack.raw(body, key=key_of(tenant), action="DescribeAvailableResources")
    message = assert_error(response, 500, "INTERNAL_SERVER_ERROR")
    for leak in ("Traceback", "offerings", "sqlalchemy", "File ", "Error:"):
        assert leak not in response.text
    assert "offerings" not in message
    request_id = response.json()["requestId"]

    from zenlayercloud.bmc.v20260201 import models

    request = models.DescribeAvailableResourcesRequest()
    request.instanceChargeType = "PREPAID"
    with pytest.raises(ZenlayerCloudSdkException) as raised:
        tenant.client().DescribeAvailableResources(request)
    assert raised.value.code == "INTERNAL_SERVER_ERROR"

    assert stack.log_path is not None
    log = stack.log_path.read_text()
    assert request_id in log
    assert raised.value.request_id in log
    assert "Traceback" in log
    # The server keeps serving what does not need the missing table.
    assert assert_success(stack.raw({}, key=key_of(tenant)))["zoneSet"]
