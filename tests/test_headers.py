"""Header values beyond ASCII (issue 16): every header zbmc reads is parsed as ASCII only, and
anything else gets the envelope's 401 or 400, never a 500 nor a traceback in the log.

HTTP carries header values as bytes; ``requests`` sends bytes values as they are, so these are
the requests an attacker would craft (the SDKs only ever send ASCII).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.harness import Stack, Tenant
from tests.test_protocol import assert_error, assert_success

INVALID_AUTHORIZATION = "AUTHFAILURE_INVALID_AUTHORIZATION"


@pytest.fixture
def quiet_log(stack: Stack) -> Iterator[None]:
    """The server logs no traceback (nor any error) while the test runs."""
    assert stack.log_path is not None
    start = stack.log_path.stat().st_size
    yield
    written = _tail(stack.log_path, start)
    assert "Traceback" not in written, written
    assert "internal error" not in written, written


def _tail(path: Path, start: int) -> str:
    with path.open("rb") as log:
        log.seek(start)
        return log.read().decode("utf-8", "replace")


def _send(stack: Stack, tenant: Tenant, replace: dict[str, bytes]) -> requests.Response:
    """A correctly signed DescribeZones with some header values replaced by raw bytes."""
    key = (tenant.access_key_id, tenant.access_key_password)
    headers, body = stack.prepared({}, key=key)
    sent: dict[str, str | bytes] = {**headers, **replace}
    return requests.post(stack.url, data=body, headers=sent, timeout=30)


SUPERSCRIPTS = ["²".encode(), "¹²³".encode(), "²".encode("latin-1"), "¹²³".encode("latin-1")]
OTHER_DIGITS = ["１７００００００００".encode(), "١٧٠٠٠٠٠٠٠٠".encode(), b"17\xa000000000"]


@pytest.mark.usefixtures("quiet_log")
@pytest.mark.parametrize(
    "timestamp",
    SUPERSCRIPTS + OTHER_DIGITS + [b"\xff", b"1e9", b"+1700000000", b"-1", b"0x10"],
    ids=lambda value: value.hex(),
)
def test_non_ascii_timestamp_is_401(stack: Stack, tenant: Tenant, timestamp: bytes) -> None:
    response = _send(stack, tenant, {"X-ZC-Timestamp": timestamp})
    assert "X-ZC-Timestamp" in assert_error(response, 401, INVALID_AUTHORIZATION)


@pytest.mark.usefixtures("quiet_log")
@pytest.mark.parametrize(
    "authorization",
    [
        "ZC2-HMAC-SHA256 Credential=AKé, SignedHeaders=content-type;host, Signature=ab".encode(),
        b"ZC2-HMAC-SHA256 Credential=AK\xe9, SignedHeaders=content-type;host, Signature=ab",
        "ZC2-HMAC-SHA256 Credential=AK, SignedHeaders=content-type;hôst, Signature=ab".encode(),
        "ZC2-HMAC-SHA256 Credential=AK, SignedHeaders=content-type;host, Signature=²".encode(),
        "Bearer zbmc_ťoken".encode(),
        b"Bearer \xff\xfe",
        "ZC2‐HMAC‐SHA256 Credential=AK".encode(),
    ],
    ids=["key-utf8", "key-latin1", "signed-headers", "signature", "bearer", "bearer-ff", "scheme"],
)
def test_non_ascii_authorization_is_401(stack: Stack, tenant: Tenant, authorization: bytes) -> None:
    response = _send(stack, tenant, {"Authorization": authorization})
    assert "ASCII" in assert_error(response, 401, INVALID_AUTHORIZATION)


@pytest.mark.usefixtures("quiet_log")
@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Content-Type", "application/jsön".encode()),
        ("Content-Type", b"application/json; charset=\xff"),
        ("Host", "127.0.0.1:８０".encode()),
    ],
)
def test_non_ascii_signed_header_is_401(
    stack: Stack, tenant: Tenant, header: str, value: bytes
) -> None:
    # Signed as sent (so the signature would match): the ASCII rule refuses it first.
    key = (tenant.access_key_id, tenant.access_key_password)
    headers, body = stack.prepared({}, key=key)
    from zbmc.signature import sign

    text = value.decode("latin-1")
    content_type = text if header == "Content-Type" else headers["Content-Type"]
    host = text if header == "Host" else headers["Host"]
    timestamp = headers["X-ZC-Timestamp"]
    signature = sign(tenant.access_key_password, content_type, host, timestamp, body)
    sent: dict[str, str | bytes] = {
        **headers,
        header: value,
        "Authorization": f"ZC2-HMAC-SHA256 Credential={tenant.access_key_id}, "
        f"SignedHeaders=content-type;host, Signature={signature}",
    }
    response = requests.post(stack.url, data=body, headers=sent, timeout=30)
    assert "ASCII" in assert_error(response, 401, INVALID_AUTHORIZATION)


@pytest.mark.usefixtures("quiet_log")
@pytest.mark.parametrize(
    ("header", "value", "status", "code"),
    [
        ("X-ZC-Version", "２０２６-02-01".encode(), 400, "INVALID_VERSION"),
        ("X-ZC-Version", b"2026-02-01\xa0", 400, "INVALID_VERSION"),
        ("X-ZC-Action", "DescribeZonés".encode(), 400, "INVALID_ACTION"),
        ("X-ZC-Action", b"Describe\xffZones", 400, "INVALID_ACTION"),
    ],
)
def test_non_ascii_protocol_header_is_400(
    stack: Stack, tenant: Tenant, header: str, value: bytes, status: int, code: str
) -> None:
    assert_error(_send(stack, tenant, {header: value}), status, code)


@pytest.mark.usefixtures("quiet_log")
def test_ignored_headers_may_carry_anything(stack: Stack, tenant: Tenant) -> None:
    # Headers zbmc does not read (and that are not signed) are not parsed at all.
    response = _send(stack, tenant, {"X-ZC-SDK-Version": "SDK_PYTHON_²".encode()})
    assert assert_success(response)["zoneSet"]


def test_the_sdk_still_passes(tenant: Tenant, version: str) -> None:
    from zenlayercloud.bmc.v20260201 import models

    assert tenant.client(version).DescribeZones(models.DescribeZonesRequest()).zoneSet
