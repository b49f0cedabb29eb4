"""ZC2-HMAC-SHA256: parsing the Authorization header and computing the signature (spec §3.1).

Pure functions over bytes and strings; the database lookup of the key lives in ``auth``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NamedTuple

ALGORITHM = "ZC2-HMAC-SHA256"
SIGNED_HEADERS = "content-type;host"


class HmacAuthorization(NamedTuple):
    access_key_id: str
    signed_headers: str
    signature: str


class MalformedAuthorization(ValueError):
    """The Authorization header cannot be parsed."""


def parse_authorization(value: str) -> HmacAuthorization:
    """Parse ``ZC2-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
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
    if auth.signed_headers != SIGNED_HEADERS:
        raise MalformedAuthorization(f"SignedHeaders must be {SIGNED_HEADERS}")
    return auth


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


def sign(secret: str, content_type: str, host: str, timestamp: str, body: bytes) -> str:
    message = string_to_sign(content_type, host, timestamp, body)
    # hmac.digest: the one-shot form, computed in OpenSSL without hmac.HMAC's Python layer
    return hmac.digest(secret.encode(), message.encode(), "sha256").hex()


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
