"""ZC2-HMAC-SHA256: parsing the Authorization header and computing the signature (spec §3.1).

Pure functions over bytes and strings; the database lookup of the key lives in ``auth``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import NamedTuple

ALGORITHM = "ZC2-HMAC-SHA256"
SIGNED_HEADERS = "content-type;host"  # what the official SDKs sign
SDK_NAMES = ("content-type", "host")
# A client may sign more headers (e.g. ``content-type;host;x-zc-action;x-zc-version``): names
# lower-case, sorted, no repeats, content-type and host among them.
MAX_SIGNED_HEADERS = 20
_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")  # an HTTP token, lower-case


class HmacAuthorization(NamedTuple):
    access_key_id: str
    signed_headers: str
    signature: str


class MalformedAuthorization(ValueError):
    """The Authorization header cannot be parsed."""


# The header exactly as the official SDKs write it, parsed in one match (on every request): for
# any value it matches, the general parse below gives the same result (no whitespace or comma
# inside the values, each name once).
_SDK_FORM = re.compile(
    rf"{ALGORITHM} Credential=([^\s,]+), SignedHeaders={SIGNED_HEADERS}, Signature=([^\s,]+)"
)


def parse_authorization(value: str) -> HmacAuthorization:
    """Parse ``ZC2-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
    sdk = _SDK_FORM.fullmatch(value)
    if sdk is not None:
        return HmacAuthorization(sdk[1], SIGNED_HEADERS, sdk[2])
    return parse_general(value)


def parse_general(value: str) -> HmacAuthorization:
    """``parse_authorization`` of any form (names in any order, optional whitespace)."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM or not rest:
        raise MalformedAuthorization(f"the Authorization scheme must be {ALGORITHM} or Bearer")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, content = item.strip().partition("=")
        if not sep or not name or name in parts:
            raise MalformedAuthorization("the Authorization header is malformed")
        parts[name] = content.strip()
    try:
        auth = HmacAuthorization(parts["Credential"], parts["SignedHeaders"], parts["Signature"])
    except KeyError as missing:
        raise MalformedAuthorization(f"the Authorization header lacks {missing.args[0]}") from None
    if not auth.access_key_id or not auth.signature:
        raise MalformedAuthorization(
            "the Authorization header has an empty Credential or Signature"
        )
    signed_header_names(auth.signed_headers)
    return auth


def signed_header_names(signed_headers: str) -> tuple[str, ...]:
    """The header names of a SignedHeaders value, checked; MalformedAuthorization otherwise."""
    if signed_headers == SIGNED_HEADERS:
        return SDK_NAMES
    names = signed_headers.split(";")
    if len(names) > MAX_SIGNED_HEADERS or not all(_NAME.fullmatch(name) for name in names):
        raise MalformedAuthorization(
            f"SignedHeaders must be at most {MAX_SIGNED_HEADERS} lower-case header names "
            "separated by ';'"
        )
    if names != sorted(set(names)):
        raise MalformedAuthorization("SignedHeaders must be sorted, without repeats")
    if "content-type" not in names or "host" not in names:
        raise MalformedAuthorization("SignedHeaders must include content-type and host")
    return tuple(names)


def string_to_sign(content_type: str, host: str, timestamp: str, body: bytes) -> str:
    canonical_request = "\n".join(
        (
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            SIGNED_HEADERS,
            hashlib.sha256(body).hexdigest(),
        )
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{digest}"


def string_to_sign_headers(headers: Sequence[tuple[str, str]], timestamp: str, body: bytes) -> str:
    """The spec's algorithm over any list of signed headers (name, value as sent), in the
    order of SignedHeaders; ``string_to_sign`` is its case for ``content-type;host``."""
    canonical_request = "\n".join(
        (
            "POST",
            "/",
            "",
            "".join(f"{name}:{value}\n" for name, value in headers),
            ";".join(name for name, _ in headers),
            hashlib.sha256(body).hexdigest(),
        )
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{digest}"


def sign(secret: str, content_type: str, host: str, timestamp: str, body: bytes) -> str:
    """The signature the official SDKs send (SignedHeaders ``content-type;host``)."""
    return hmac_hex(secret, string_to_sign(content_type, host, timestamp, body))


def sign_headers(
    secret: str, headers: Sequence[tuple[str, str]], timestamp: str, body: bytes
) -> str:
    return hmac_hex(secret, string_to_sign_headers(headers, timestamp, body))


def hmac_hex(secret: str, message: str) -> str:
    # hmac.digest: the one-shot form, computed in OpenSSL without hmac.HMAC's Python layer
    return hmac.digest(secret.encode(), message.encode(), "sha256").hex()


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
