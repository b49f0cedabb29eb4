"""Unit tests of ZC2-HMAC-SHA256 (spec §3.1): the documented test vector, agreement with the
official SDK's own signer, and parsing of the Authorization header."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zbmc.signature import (
    MalformedAuthorization,
    parse_authorization,
    sign,
    sign_headers,
    signature_matches,
    signed_header_names,
    string_to_sign,
    string_to_sign_headers,
)

# The docs' signature page, recomputed in spec §3.1.
VECTOR_SECRET = "Gu5t9xGARNpq86cd98joQYCN3"
VECTOR_CONTENT_TYPE = "application/json; charset=utf-8"
VECTOR_HOST = "console.zenlayer.com"
VECTOR_TIMESTAMP = "1673361177"
VECTOR_BODY = b'{"pageSize":10,"pageNum":1,"zoneId":"HKG-A"}'
VECTOR_SIGNATURE = "efb356c32e55c781e10dc676da59462c22596d82e91c57803666243379555b2f"


def test_spec_test_vector() -> None:
    signature = sign(VECTOR_SECRET, VECTOR_CONTENT_TYPE, VECTOR_HOST, VECTOR_TIMESTAMP, VECTOR_BODY)
    assert signature == VECTOR_SIGNATURE


def test_string_to_sign_follows_the_spec_steps() -> None:
    payload_hash = hashlib.sha256(VECTOR_BODY).hexdigest()
    canonical = (
        "POST\n/\n\n"
        f"content-type:{VECTOR_CONTENT_TYPE}\nhost:{VECTOR_HOST}\n\n"
        f"content-type;host\n{payload_hash}"
    )
    expected = (
        f"ZC2-HMAC-SHA256\n{VECTOR_TIMESTAMP}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    assert (
        string_to_sign(VECTOR_CONTENT_TYPE, VECTOR_HOST, VECTOR_TIMESTAMP, VECTOR_BODY) == expected
    )
    # The password is the HMAC key as is: no key derivation.
    direct = hmac.new(VECTOR_SECRET.encode(), expected.encode(), hashlib.sha256).hexdigest()
    assert direct == VECTOR_SIGNATURE


@pytest.mark.parametrize(
    ("content_type", "host", "timestamp", "body"),
    [
        ("application/json", VECTOR_HOST, VECTOR_TIMESTAMP, VECTOR_BODY),
        (VECTOR_CONTENT_TYPE, "console.zenlayer.com:443", VECTOR_TIMESTAMP, VECTOR_BODY),
        (VECTOR_CONTENT_TYPE, "Console.zenlayer.com", VECTOR_TIMESTAMP, VECTOR_BODY),
        (VECTOR_CONTENT_TYPE, VECTOR_HOST, "1673361178", VECTOR_BODY),
        (
            VECTOR_CONTENT_TYPE,
            VECTOR_HOST,
            VECTOR_TIMESTAMP,
            b'{"pageSize": 10, "pageNum": 1, "zoneId": "HKG-A"}',
        ),
        (VECTOR_CONTENT_TYPE, VECTOR_HOST, VECTOR_TIMESTAMP, VECTOR_BODY + b" "),
    ],
    ids=["content-type", "port", "host-case", "timestamp", "json-spaces", "trailing-space"],
)
def test_every_signed_input_changes_the_signature(
    content_type: str, host: str, timestamp: str, body: bytes
) -> None:
    assert sign(VECTOR_SECRET, content_type, host, timestamp, body) != VECTOR_SIGNATURE


def test_the_secret_changes_the_signature() -> None:
    other = sign(
        VECTOR_SECRET + "x", VECTOR_CONTENT_TYPE, VECTOR_HOST, VECTOR_TIMESTAMP, VECTOR_BODY
    )
    assert other != VECTOR_SIGNATURE


def _sdk_authorization(
    key_id: str, secret: str, content_type: str, host: str, timestamp: str, body: str
) -> str:
    from zenlayercloud.bmc.v20260201.bmc_client import BmcClient
    from zenlayercloud.common.config import Config
    from zenlayercloud.common.credential import Credential
    from zenlayercloud.common.request import BaseRequest

    client = BmcClient(Credential(key_id, secret), Config(scheme="http", domain=host))
    request = BaseRequest(host=host, method="POST", uri="/api/v2/bmc", data=body)
    request.set_host(host)
    request.set_content_type(content_type)
    request.header["x-zc-timestamp"] = timestamp
    return str(client._build_zc2_authorization(request))


_header_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
)


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=40),
    content_type=_header_text,
    host=_header_text,
    timestamp=st.integers(min_value=0, max_value=10**11).map(str),
    body=st.text(max_size=200),
)
def test_agrees_with_the_official_sdk_signer(
    secret: str, content_type: str, host: str, timestamp: str, body: str
) -> None:
    header = _sdk_authorization("AKID", secret, content_type, host, timestamp, body)
    ours = sign(secret, content_type, host, timestamp, body.encode())
    assert header == (
        f"ZC2-HMAC-SHA256 Credential=AKID, SignedHeaders=content-type;host, Signature={ours}"
    )
    parsed = parse_authorization(header)
    assert (parsed.access_key_id, parsed.signature) == ("AKID", ours)


def test_parse_authorization_as_the_sdk_sends_it() -> None:
    parsed = parse_authorization(
        "ZC2-HMAC-SHA256 Credential=0D9UtpyKYcHxms5v, SignedHeaders=content-type;host, "
        f"Signature={VECTOR_SIGNATURE}"
    )
    assert parsed.access_key_id == "0D9UtpyKYcHxms5v"
    assert parsed.signed_headers == "content-type;host"
    assert parsed.signature == VECTOR_SIGNATURE


def test_parse_authorization_tolerates_compact_separators() -> None:
    parsed = parse_authorization(
        "ZC2-HMAC-SHA256 Credential=AK,SignedHeaders=content-type;host,Signature=abc"
    )
    assert (parsed.access_key_id, parsed.signature) == ("AK", "abc")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "ZC2-HMAC-SHA256",
        "ZC2-HMAC-SHA1 Credential=AK, SignedHeaders=content-type;host, Signature=abc",
        "zc2-hmac-sha256 Credential=AK, SignedHeaders=content-type;host, Signature=abc",
        "Basic dXNlcjpwYXNz",
        "ZC2-HMAC-SHA256 Credential=AK, SignedHeaders=content-type;host",
        "ZC2-HMAC-SHA256 SignedHeaders=content-type;host, Signature=abc",
        "ZC2-HMAC-SHA256 Credential=AK, Signature=abc",
        "ZC2-HMAC-SHA256 Credential=, SignedHeaders=content-type;host, Signature=abc",
        "ZC2-HMAC-SHA256 Credential=AK, SignedHeaders=content-type;host, Signature=",
        "ZC2-HMAC-SHA256 Credential=AK, SignedHeaders=host;content-type, Signature=abc",
        "ZC2-HMAC-SHA256 Credential=AK, SignedHeaders=content-type, Signature=abc",
        "ZC2-HMAC-SHA256 Credential=AK, Credential=BK, SignedHeaders=content-type;host, "
        "Signature=abc",
        "ZC2-HMAC-SHA256 Credential AK, SignedHeaders=content-type;host, Signature=abc",
        "ZC2-HMAC-SHA256 =AK, SignedHeaders=content-type;host, Signature=abc",
    ],
)
def test_malformed_authorization_is_rejected(header: str) -> None:
    with pytest.raises(MalformedAuthorization):
        parse_authorization(header)


def test_signature_matches_compares_exactly() -> None:
    assert signature_matches(VECTOR_SIGNATURE, VECTOR_SIGNATURE)
    assert not signature_matches(VECTOR_SIGNATURE, VECTOR_SIGNATURE.upper())
    assert not signature_matches(VECTOR_SIGNATURE, VECTOR_SIGNATURE[:-1])
    assert not signature_matches(VECTOR_SIGNATURE, "")


# --- SignedHeaders beyond content-type;host (issue 16) -----------------------------------------


def test_the_general_form_is_the_sdks_for_content_type_and_host() -> None:
    signed = [("content-type", VECTOR_CONTENT_TYPE), ("host", VECTOR_HOST)]
    assert sign_headers(VECTOR_SECRET, signed, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_more_signed_headers_follow_the_spec_steps() -> None:
    signed = [
        ("content-type", VECTOR_CONTENT_TYPE),
        ("host", VECTOR_HOST),
        ("x-zc-action", "DescribeZones"),
        ("x-zc-version", "2026-02-01"),
    ]
    payload_hash = hashlib.sha256(VECTOR_BODY).hexdigest()
    canonical = (
        "POST\n/\n\n"
        f"content-type:{VECTOR_CONTENT_TYPE}\nhost:{VECTOR_HOST}\n"
        "x-zc-action:DescribeZones\nx-zc-version:2026-02-01\n\n"
        f"content-type;host;x-zc-action;x-zc-version\n{payload_hash}"
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    expected = f"ZC2-HMAC-SHA256\n{VECTOR_TIMESTAMP}\n{digest}"
    assert string_to_sign_headers(signed, VECTOR_TIMESTAMP, VECTOR_BODY) == expected
    signature = sign_headers(VECTOR_SECRET, signed, VECTOR_TIMESTAMP, VECTOR_BODY)
    assert signature == hmac.new(VECTOR_SECRET.encode(), expected.encode(), "sha256").hexdigest()
    assert signature != VECTOR_SIGNATURE


@pytest.mark.parametrize(
    "listed",
    [
        "content-type;host",
        "content-type;host;x-zc-action",
        "content-type;host;x-zc-action;x-zc-version",
        "accept;content-type;host",
    ],
)
def test_signed_header_lists_that_pass(listed: str) -> None:
    assert signed_header_names(listed) == tuple(listed.split(";"))
    header = f"ZC2-HMAC-SHA256 Credential=AK, SignedHeaders={listed}, Signature=ab"
    assert parse_authorization(header).signed_headers == listed


@pytest.mark.parametrize(
    "listed",
    [
        "",
        "host",
        "content-type",
        "content-type;x-zc-action",
        "host;content-type",
        "content-type;host;host",
        "Content-Type;host",
        "content-type;host;",
        "content-type; host",
        "content-type;host;x zc",
        "content-type;host;" + ";".join(f"x-{i:02}" for i in range(19)),
    ],
)
def test_signed_header_lists_that_fail(listed: str) -> None:
    with pytest.raises(MalformedAuthorization):
        signed_header_names(listed)
