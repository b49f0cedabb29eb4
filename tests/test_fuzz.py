"""Property-based fuzzing of the parsers in front of every handler.

Each parser has a closed set of outcomes: a value or one documented error. Anything else would
become an INTERNAL_SERVER_ERROR on the wire.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from zenlayercloud.bmc.v20260201 import models
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.harness import Tenant
from zbmc.errors import ApiError, InvalidParameter
from zbmc.pipeline import decode_body, validate
from zbmc.registry import ActionSpec, load_actions
from zbmc.signature import (
    ALGORITHM,
    SIGNED_HEADERS,
    HmacAuthorization,
    MalformedAuthorization,
    parse_authorization,
    parse_general,
    signed_header_names,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- parse_authorization -----------------------------------------------------------------------

_pieces = st.sampled_from(
    [
        ALGORITHM,
        "Bearer",
        " ",
        ",",
        ", ",
        "=",
        "Credential",
        "SignedHeaders",
        "Signature",
        SIGNED_HEADERS,
        "AK",
        "abc",
        "\t",
        "\n",
        "\x00",
        "é",
        "\ud800",
    ]
)
authorization_texts = st.one_of(
    st.text(),
    st.lists(_pieces, max_size=20).map("".join),
    st.builds(
        lambda a, b, c, sep: f"{ALGORITHM} Credential={a}{sep}SignedHeaders={b}{sep}Signature={c}",
        st.text(max_size=10),
        st.one_of(st.just(SIGNED_HEADERS), st.text(max_size=10)),
        st.text(max_size=10),
        st.sampled_from([", ", ",", " , ", ",,"]),
    ),
)


@FUZZ
@given(authorization_texts)
@example(f"{ALGORITHM} Credential=AK, SignedHeaders={SIGNED_HEADERS}, Signature=ab")
@example(f"{ALGORITHM} Credential=AK, Credential=AK, SignedHeaders=x, Signature=ab")
@example(f"{ALGORITHM} ,,,")
@example(f"{ALGORITHM} =")
def test_parse_authorization_only_parses_or_reports_malformed(value: str) -> None:
    try:
        parsed = parse_authorization(value)
    except MalformedAuthorization:
        return
    assert isinstance(parsed, HmacAuthorization)
    assert parsed.access_key_id
    assert parsed.signature
    names = signed_header_names(parsed.signed_headers)
    assert {"content-type", "host"} <= set(names)
    assert list(names) == sorted(set(names))


def _parsed(parse: Any, value: str) -> HmacAuthorization | str:
    try:
        return parse(value)  # type: ignore[no-any-return]
    except MalformedAuthorization as exc:
        return str(exc)


@FUZZ
@given(authorization_texts, st.sampled_from(["", " ", "\t", "\x1f", "\n"]))
@example(f"{ALGORITHM} Credential=A=B, SignedHeaders={SIGNED_HEADERS}, Signature=ab", "")
@example(f"{ALGORITHM} Credential=A\x1fB, SignedHeaders={SIGNED_HEADERS}, Signature=ab", "")
def test_the_sdk_form_parses_as_the_general_parser_does(value: str, pad: str) -> None:
    """The one-match path for the SDKs' header gives what the general parser gives."""
    assert _parsed(parse_authorization, pad + value + pad) == _parsed(
        parse_general, pad + value + pad
    )


def test_parse_authorization_accepts_the_sdk_format() -> None:
    parsed = parse_authorization(
        f"{ALGORITHM} Credential=AKID, SignedHeaders={SIGNED_HEADERS}, Signature=0a1b"
    )
    assert parsed == HmacAuthorization("AKID", SIGNED_HEADERS, "0a1b")


# --- decode_body -------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

_tokens = st.sampled_from(
    [
        b"{",
        b"}",
        b"[",
        b"]",
        b'"',
        b":",
        b",",
        b"1",
        b"-",
        b"e",
        b"E",
        b".",
        b"0",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"null",
        b"true",
        b"\\u",
        b"\\ud800",
        b"\xff",
        b"\xc3",
        b"\x00",
        b" ",
        b"9" * 5000,
        b"1e999999999",
        b'"a"',
    ]
)
body_bytes = st.one_of(
    st.binary(),
    st.lists(_tokens, max_size=30).map(b"".join),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(
        lambda depth, opener, closer: opener * depth + closer * depth,
        st.integers(min_value=0, max_value=200_000),
        st.sampled_from([b"[", b'{"a":']),
        st.sampled_from([b"]", b"}"]),
    ),
)


@FUZZ
@given(body_bytes)
@example(b"[" * 100_000)
@example(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
@example(b'{"n": NaN}')
@example(b'{"n": Infinity}')
@example(b'{"n": -Infinity}')
@example(b'{"n": ' + b"9" * 10_000 + b"}")
@example(b'{"n": 1e999999999999}')
@example(b'{"s": "\xff\xfe"}')
@example(b"\xef\xbb\xbf{}")
@example(b'{"s": "\\ud800"}')
@example(b'{"instanceIds": ["\\u0000"]}')
@example(b'{"a": {"\\u0000": 1}}')
@example("{}".encode("utf-16"))
@example("{}".encode("utf-32"))
def test_decode_body_returns_an_object_or_invalid_parameter(body: bytes) -> None:
    try:
        decoded = decode_body(body)
    except InvalidParameter:
        return
    assert isinstance(decoded, dict)
    assert None not in decoded.values()
    assert not _strings_with(decoded, "\x00")


def _strings_with(value: Any, needle: str) -> list[str]:
    if isinstance(value, str):
        return [value] if needle in value else []
    if isinstance(value, dict):
        return [
            s for k, v in value.items() for s in _strings_with(k, needle) + _strings_with(v, needle)
        ]
    if isinstance(value, list):
        return [s for item in value for s in _strings_with(item, needle)]
    return []


def test_decode_body_keeps_numbers_exact() -> None:
    decoded = decode_body(b'{"size": 0.15, "count": 3, "big": 1e400}')
    assert decoded == {"size": Decimal("0.15"), "count": 3, "big": Decimal("1e400")}
    assert isinstance(decoded["count"], int)


# --- validate, for every registered action ------------------------------------------------------

decoded_scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("1e999999999"), Decimal("-1e-999999999"), 2**64, -(2**63) - 1]),
    st.text(),
    st.just(""),
)
decoded_values = st.recursive(
    st.one_of(st.none(), decoded_scalars),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)

ACTIONS = sorted(load_actions().items())


def _payloads(spec: ActionSpec) -> st.SearchStrategy[dict[str, Any]]:
    aliases = [info.alias or name for name, info in spec.request.model_fields.items()]
    keys = st.sampled_from(aliases) if aliases else st.text(max_size=8)
    return st.dictionaries(st.one_of(keys, st.text(max_size=8)), decoded_values, max_size=6)


@pytest.mark.parametrize(("key", "spec"), ACTIONS, ids=[name for (_, name), _ in ACTIONS])
def test_validate_raises_only_api_errors(key: tuple[str, str], spec: ActionSpec) -> None:
    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_payloads(spec))
    def run(payload: dict[str, Any]) -> None:
        try:
            request: object = validate(spec, payload)
        except ApiError as error:
            request = error
        if isinstance(request, ApiError):
            assert request.status == 400, request
        else:
            assert isinstance(request, spec.request)

    run()


# --- crashes found by the schemathesis run, as regressions against the live server -------------


def _sdk_error(client: Any, action: str, body: dict[str, Any]) -> ZenlayerCloudSdkException:
    request = getattr(models, f"{action}Request")()
    for name, value in body.items():
        setattr(request, name, value)
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        getattr(client, action)(request)
    return caught.value


CRASHES = [
    # PostgreSQL text cannot hold NUL: these queries failed with 500 INTERNAL_SERVER_ERROR.
    ("DescribeInstances", {"instanceName": "\x00x"}, "NUL"),
    ("DescribeInstances", {"instanceIds": ["\x00"]}, "NUL"),
    ("DescribeInstanceInternetStatus", {"instanceId": "\x00"}, "NUL"),
    # 32-bit columns on PostgreSQL: bounds beyond them failed in the query.
    ("DescribeInstanceTypes", {"minimumMemorySize": 2**31}, "minimumMemorySize"),
    ("DescribeInstanceTypes", {"maximumCpuCoreCount": 2**70}, "maximumCpuCoreCount"),
]


@pytest.mark.parametrize(
    ("action", "body", "mentions"), CRASHES, ids=[f"{a}-{m}" for a, _, m in CRASHES]
)
def test_found_crash_is_invalid_parameter(
    tenant: Tenant, action: str, body: dict[str, Any], mentions: str
) -> None:
    error = _sdk_error(tenant.client(), action, body)
    assert error.code == "INVALID_PARAMETER"
    assert mentions.lower() in error.message.lower()
    key = (tenant.access_key_id, tenant.access_key_password)
    response = tenant.stack.raw(body, action=action, key=key)
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_PARAMETER")


@pytest.mark.parametrize("number", [b"10e999999999999999999", b"-1E+9999999999999999999"])
def test_numbers_beyond_any_decimal_are_invalid_parameter(tenant: Tenant, number: bytes) -> None:
    """Found by the decode_body fuzz test: Decimal raised InvalidOperation, a 500."""
    with pytest.raises(InvalidParameter):
        decode_body(b'{"trafficPackageSize": ' + number + b"}")
    body = b'{"instanceId": "x", "trafficPackageSize": ' + number + b"}"
    key = (tenant.access_key_id, tenant.access_key_password)
    response = tenant.stack.raw(body, action="ModifyInstanceTrafficPackage", key=key)
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_PARAMETER")


# --- authentication headers against the live server ---------------------------------------------

header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
).map(str.strip)


def test_arbitrary_authentication_headers_get_a_401_envelope(tenant: Tenant) -> None:
    key_id = tenant.access_key_id

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        authorization=st.one_of(
            header_values,
            header_values.map(lambda v: f"Bearer {v}"),
            header_values.map(lambda v: f"{ALGORITHM} {v}"),
            header_values.map(
                lambda v: (
                    f"{ALGORITHM} Credential={key_id}, SignedHeaders={SIGNED_HEADERS}, "
                    f"Signature={v}"
                )
            ),
        ),
        timestamp=st.one_of(header_values, st.integers().map(str)),
    )
    def run(authorization: str, timestamp: str) -> None:
        response = tenant.stack.raw(
            {}, headers={"Authorization": authorization, "X-ZC-Timestamp": timestamp}
        )
        body = response.json()
        assert response.status_code == 401, body
        assert set(body) == {"requestId", "code", "message"}
        assert body["code"].startswith("AUTHFAILURE_")

    run()


# --- every header zbmc reads, as raw bytes beyond ASCII (issue 16) ------------------------------

# What an HTTP/1.1 parser lets through in a header value: visible ASCII, space, and bytes
# 0x80-0xFF (obs-text), which reach the application as they are; UTF-8 text is a case of it.
_OBS_TEXT = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
raw_header_values = st.one_of(
    st.binary(max_size=60).map(lambda raw: bytes(b for b in raw if b in _OBS_TEXT)),
    st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cc", "Cs")), max_size=30).map(
        str.encode
    ),
    st.sampled_from(["²", "¹²³", "１２３", "١٢٣", "٣", "Ⅻ", "𝟙𝟚𝟛"]).map(str.encode),
).map(bytes.strip)


def test_arbitrary_header_bytes_get_a_4xx_envelope(tenant: Tenant) -> None:
    """No header value, whatever its bytes, makes a 5xx or anything but the JSON envelope."""
    stack = tenant.stack
    key = (tenant.access_key_id, tenant.access_key_password)
    names = ["Authorization", "X-ZC-Timestamp", "X-ZC-Action", "X-ZC-Version", "Content-Type"]
    start = stack.log_path.stat().st_size if stack.log_path else 0

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        replaced=st.dictionaries(st.sampled_from(names), raw_header_values, min_size=1),
        signed=st.booleans(),
        prefix=st.sampled_from(["", f"{ALGORITHM} Credential={key[0]}, ", "Bearer "]),
    )
    @example(replaced={"X-ZC-Timestamp": "²".encode()}, signed=True, prefix="")
    @example(replaced={"X-ZC-Timestamp": "¹²³".encode("latin-1")}, signed=True, prefix="")
    @example(replaced={"Authorization": b"\xb2"}, signed=True, prefix="Bearer ")
    def run(replaced: dict[str, bytes], signed: bool, prefix: str) -> None:
        headers, body = stack.prepared({}, key=key if signed else None)
        sent: dict[str, str | bytes] = {**headers, **replaced}
        if "Authorization" in replaced:
            sent["Authorization"] = prefix.encode() + replaced["Authorization"]
        response = requests.post(stack.url, data=body, headers=sent, timeout=30)
        assert response.status_code < 500, response.text
        if response.status_code != 200:
            data = response.json()
            assert set(data) == {"requestId", "code", "message"}, data
            assert response.status_code in (400, 401), data

    run()
    if stack.log_path is not None:
        with stack.log_path.open("rb") as log:
            log.seek(start)
            assert b"Traceback" not in log.read()
