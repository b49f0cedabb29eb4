"""What the signature covers (issue 16, docs/security.md): any SignedHeaders a client lists is
verified, so a client that signs X-ZC-Action and X-ZC-Version cannot have them swapped; and
``ZBMC_REQUIRE_SIGNED_ACTION`` refuses requests that do not sign the action.

Driven through the official SDK, extended only in the method that builds the Authorization
header (tests/signing.py), and through its captured requests sent again by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant
from tests.signing import ACTION_SIGNED, capturing_client, signing_client
from tests.test_protocol import assert_error, assert_success
from zbmc.signature import sign_headers

SIGNATURE_FAILURE = "AUTHFAILURE_SIGNATURE_FAILURE"
INVALID_AUTHORIZATION = "AUTHFAILURE_INVALID_AUTHORIZATION"
ACTION_NOT_SIGNED = "AUTHFAILURE_ACTION_NOT_SIGNED"


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return __import__(f"zenlayercloud.bmc.{module}", fromlist=["models"]).models


def bandwidth_request(version: str, action: str, instance_id: str, mbps: int) -> Any:
    request = getattr(models(version), f"{action}Request")()
    request.instanceId = instance_id
    request.bandwidthOutMbps = mbps
    return request


def test_signing_the_action_and_version_works(tenant: Tenant, version: str) -> None:
    client = signing_client(tenant, version)
    assert client.DescribeZones(models(version).DescribeZonesRequest()).zoneSet
    iid = tenant.instance(bandwidth=100)
    order = client.ModifyInstanceBandwidth(
        bandwidth_request(version, "ModifyInstanceBandwidth", iid, 150)
    )
    assert [item["orderNumber"] for item in tenant.orders()] == [order.orderNumber]


@pytest.mark.parametrize(
    "names",
    [
        ("content-type", "host", "x-zc-action"),
        ("content-type", "host", "x-zc-sdk-lang", "x-zc-service", "x-zc-timestamp"),
    ],
    ids=["action", "sdk-headers"],
)
def test_any_listed_headers_are_verified(tenant: Tenant, names: tuple[str, ...]) -> None:
    client, captured = capturing_client(tenant, V2026, names=names)
    assert client.DescribeZones(models(V2026).DescribeZonesRequest()).zoneSet
    headers = {name.lower(): value for name, value in captured.last()[0].items()}
    assert f"SignedHeaders={';'.join(names)}," in headers["authorization"]
    # Each signed header changed after signing breaks the signature.
    for name in names[2:]:
        value = "DescribeInstances" if name == "x-zc-action" else headers[name] + "x"
        if name == "x-zc-timestamp":
            value = str(int(headers[name]) + 1)
        response = captured.resend(tenant.stack, replace={name: value})
        assert_error(response, 401, SIGNATURE_FAILURE)


def test_a_signed_action_cannot_be_swapped(tenant: Tenant, version: str) -> None:
    """The attack of issue 16: a captured price inquiry sent again as the Modify it prices
    (the bodies have the same shape) is refused when the action is signed."""
    iid = tenant.instance(bandwidth=100)
    balance = tenant.balance()
    client, captured = capturing_client(tenant, version, names=ACTION_SIGNED)
    client.InquiryPriceInstanceBandwidth(
        bandwidth_request(version, "InquiryPriceInstanceBandwidth", iid, 400)
    )
    swapped = captured.resend(tenant.stack, replace={"x-zc-action": "ModifyInstanceBandwidth"})
    assert_error(swapped, 401, SIGNATURE_FAILURE)
    other = V2022 if version == V2026 else V2026
    assert_error(
        captured.resend(tenant.stack, replace={"x-zc-version": other}), 401, SIGNATURE_FAILURE
    )
    assert tenant.orders() == []
    assert tenant.balance() == balance


def test_the_sdks_signature_does_not_cover_the_action(tenant: Tenant) -> None:
    """The protocol's reach, as docs/security.md states it: the vendor's SDK signs
    content-type;host only, so on a server without ZBMC_REQUIRE_SIGNED_ACTION a captured
    request can be sent again under another action with the same body shape (within the
    signature window; the replay guard stops only a second use of a write's signature)."""
    iid = tenant.instance(bandwidth=100)
    client, captured = capturing_client(tenant, V2026)
    client.InquiryPriceInstanceBandwidth(
        bandwidth_request(V2026, "InquiryPriceInstanceBandwidth", iid, 400)
    )
    swapped = captured.resend(tenant.stack, replace={"x-zc-action": "ModifyInstanceBandwidth"})
    assert assert_success(swapped)["orderNumber"]
    assert len(tenant.orders()) == 1


def test_require_signed_action(make_stack: StackFactory, version: str) -> None:
    stack = make_stack(ZBMC_REQUIRE_SIGNED_ACTION="1")
    tenant = stack.tenant()
    iid = tenant.instance(bandwidth=100)
    # The vendor's SDK signs content-type;host: refused, with a code and message saying why.
    with pytest.raises(ZenlayerCloudSdkException) as refused:
        tenant.client(version).DescribeZones(models(version).DescribeZonesRequest())
    assert refused.value.code == ACTION_NOT_SIGNED
    assert "x-zc-action" in refused.value.message
    key = (tenant.access_key_id, tenant.access_key_password)
    assert "SignedHeaders" in assert_error(stack.raw({}, key=key), 401, ACTION_NOT_SIGNED)
    # A client that signs the action works, and the swap attack fails.
    client, captured = capturing_client(tenant, version, names=ACTION_SIGNED)
    assert client.DescribeZones(models(version).DescribeZonesRequest()).zoneSet
    client.InquiryPriceInstanceBandwidth(
        bandwidth_request(version, "InquiryPriceInstanceBandwidth", iid, 400)
    )
    swapped = captured.resend(stack, replace={"x-zc-action": "ModifyInstanceBandwidth"})
    assert_error(swapped, 401, SIGNATURE_FAILURE)
    order = client.ModifyInstanceBandwidth(
        bandwidth_request(version, "ModifyInstanceBandwidth", iid, 150)
    )
    assert [item["orderNumber"] for item in tenant.orders()] == [order.orderNumber]
    # Bearer tokens carry no signature; the setting is about HMAC requests.
    token = stack.admin.json("token", "create", tenant.tenant_id)["token"]
    zones = stack.token_client(token, version).DescribeZones(models(version).DescribeZonesRequest())
    assert zones.zoneSet


def _signed(
    stack: Stack, tenant: Tenant, listed: str, names: list[str], extra: dict[str, str]
) -> requests.Response:
    """A DescribeZones whose Authorization lists ``listed`` and signs ``names``."""
    key = (tenant.access_key_id, tenant.access_key_password)
    headers, body = stack.prepared({}, key=key, headers=extra)
    lower = {name.lower(): value for name, value in headers.items()}
    signed = [(name, lower.get(name, "")) for name in names]
    signature = sign_headers(key[1], signed, lower["x-zc-timestamp"], body)
    headers["Authorization"] = (
        f"ZC2-HMAC-SHA256 Credential={key[0]}, SignedHeaders={listed}, Signature={signature}"
    )
    return requests.post(stack.url, data=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("listed", "mentions"),
    [
        ("content-type;x-zc-action", "content-type and host"),
        ("host;x-zc-action", "content-type and host"),
        ("host;content-type", "sorted"),
        ("content-type;host;x-zc-version;x-zc-action", "sorted"),
        ("content-type;host;host", "repeats"),
        ("Content-Type;host", "lower-case"),
        ("content-type;;host", "lower-case"),
        ("content-type;host;x-zc-nothing", "`x-zc-nothing`"),
        ("content-type;host;" + ";".join(f"x-{i:02}" for i in range(20)), "at most 20"),
    ],
    ids=[
        "no-host",
        "no-content-type",
        "unsorted",
        "unsorted-extra",
        "repeat",
        "upper-case",
        "empty-name",
        "absent-header",
        "too-many",
    ],
)
def test_bad_signed_header_lists_are_401(
    stack: Stack, tenant: Tenant, listed: str, mentions: str
) -> None:
    names = [name for name in listed.split(";") if name]
    response = _signed(stack, tenant, listed, names, {})
    assert mentions in assert_error(response, 401, INVALID_AUTHORIZATION)


def test_a_listed_header_may_be_any_present_header(stack: Stack, tenant: Tenant) -> None:
    names = ["content-type", "host", "x-custom", "x-zc-action"]
    response = _signed(stack, tenant, ";".join(names), names, {"X-Custom": "anything"})
    assert assert_success(response)["zoneSet"]
    # a header value is signed byte for byte, as the spec's algorithm signs Content-Type
    key = (tenant.access_key_id, tenant.access_key_password)
    headers, body = stack.prepared({}, key=key, headers={"X-Custom": "a"})
    ts = headers["X-ZC-Timestamp"]
    signed = [("content-type", "application/json"), ("host", stack.host), ("x-custom", "a ")]
    signature = sign_headers(key[1], signed, ts, body)
    headers["Authorization"] = (
        f"ZC2-HMAC-SHA256 Credential={key[0]}, SignedHeaders=content-type;host;x-custom, "
        f"Signature={signature}"
    )
    sent = requests.post(stack.url, data=body, headers=headers, timeout=30)
    assert_error(sent, 401, SIGNATURE_FAILURE)
