"""Who is calling: HMAC access keys or bearer tokens, checked against the database."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select

from zbmc import clock
from zbmc.db.direct import Db, Statement, Tx
from zbmc.db.tables import access_keys, tokens
from zbmc.errors import ActionNotSigned, InvalidAuthorization, SignatureExpired, SignatureFailure
from zbmc.signature import (
    SDK_NAMES,
    MalformedAuthorization,
    parse_authorization,
    sign,
    sign_headers,
    signature_matches,
    signed_header_names,
)


class Credentials(NamedTuple):
    """The authentication-relevant part of a request, exactly as received."""

    authorization: str | None
    timestamp: str | None
    content_type: str
    host: str
    body: bytes
    # Every header (lower-case name → first value), for SignedHeaders beyond content-type;host
    headers: Mapping[bytes, bytes] = {}


class Caller(NamedTuple):
    """An authenticated caller, with the billing clock's state read in the same query."""

    tenant_id: str
    clock_mode: str | None
    clock_offset: int | None
    # HMAC requests: the verified signature and its timestamp, for the replay guard
    # (zbmc.replay); None for bearer tokens.
    signature: str | None = None
    signed_at: int = 0


# Every request runs one of these: precompiled (zbmc.db.direct). Each also reads the clock
# state, one statement less per request.
_KEY = Statement(
    select(access_keys.c.tenant_id, access_keys.c.secret, *clock.SETTING).where(
        access_keys.c.key_id == bindparam("key_id"), access_keys.c.revoked_at.is_(None)
    )
)
_TOKEN = Statement(
    select(tokens.c.tenant_id, tokens.c.expires_at, *clock.SETTING).where(
        tokens.c.token_sha256 == bindparam("digest"), tokens.c.revoked_at.is_(None)
    )
)


_OWS = " \t"  # HTTP's optional whitespace (str.strip would also take Unicode spaces)
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # not \d: it matches other scripts' digits too

# Access key rows (or None: unknown or revoked) already read in the current transaction, by key
# id; see ``Pipeline._shared``.
KeyMemo = dict[str, Any]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(
    db: Db,
    cred: Credentials,
    wall_now: int,
    window: int,
    keys: KeyMemo | None = None,
    require_action: bool = False,
) -> Caller:
    """Return a valid caller or raise a 401 error. ``keys``: the access keys this transaction
    has read already (filled in here); ``require_action``: HMAC requests must sign
    X-ZC-Action (``ZBMC_REQUIRE_SIGNED_ACTION``)."""
    tx = Tx.of(db)
    # HTTP headers are ASCII (bytes beyond it reach here as latin-1 characters): every check
    # below relies on that, e.g. "²".isdigit() is true but int("²") fails.
    header = (cred.authorization or "").strip(_OWS)
    if not header:
        raise InvalidAuthorization(detail="the Authorization header is missing")
    if not header.isascii():
        raise InvalidAuthorization(detail="the Authorization header must be ASCII")
    if header.startswith("Bearer "):
        return _bearer(tx, header.removeprefix("Bearer ").strip(), wall_now)
    try:
        parsed = parse_authorization(header)
        names = signed_header_names(parsed.signed_headers)
    except MalformedAuthorization as exc:
        raise InvalidAuthorization(detail=str(exc)) from None
    if require_action and "x-zc-action" not in names:
        raise ActionNotSigned(signed=parsed.signed_headers)
    timestamp = (cred.timestamp or "").strip(_OWS)
    if _UNIX_SECONDS.fullmatch(timestamp) is None:
        raise InvalidAuthorization(detail="X-ZC-Timestamp must be Unix seconds (ASCII digits)")
    if names is SDK_NAMES:
        if not (cred.content_type.isascii() and cred.host.isascii()):
            raise InvalidAuthorization(
                detail="the signed headers Content-Type and Host must be ASCII"
            )
        signed = None
    else:
        signed = _signed_values(cred, names)
    signed_at = int(timestamp)
    if abs(signed_at - wall_now) > window:
        raise SignatureExpired(window=window)
    key_id = parsed.access_key_id
    if keys is None:
        key = tx.first(_KEY, {"key_id": key_id})
    elif key_id in keys:
        key = keys[key_id]
    else:
        key = keys[key_id] = tx.first(_KEY, {"key_id": key_id})
    if key is None:
        raise InvalidAuthorization(detail="the access key is unknown or revoked")
    if signed is None:
        expected = sign(key.secret, cred.content_type, cred.host, timestamp, cred.body)
    else:
        expected = sign_headers(key.secret, signed, timestamp, cred.body)
    if not signature_matches(expected, parsed.signature):
        raise SignatureFailure()
    return Caller(str(key.tenant_id), key.clock_mode, key.clock_offset, expected, signed_at)


def _signed_values(cred: Credentials, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, value as received) for each name of SignedHeaders; a 401 when one is absent or
    not ASCII."""
    signed = []
    for name in names:
        raw = cred.headers.get(name.encode())
        if raw is None:
            raise InvalidAuthorization(
                detail=f"SignedHeaders names `{name}`, which the request does not carry"
            )
        if not raw.isascii():
            raise InvalidAuthorization(detail=f"the signed header `{name}` must be ASCII")
        signed.append((name, raw.decode("ascii")))
    return signed


def _bearer(tx: Tx, token: str, wall_now: int) -> Caller:
    if not token:
        raise InvalidAuthorization(detail="the bearer token is empty")
    row = tx.first(_TOKEN, {"digest": token_digest(token)})
    if row is None:
        raise InvalidAuthorization(detail="the token is unknown or revoked")
    if row.expires_at is not None and row.expires_at <= wall_now:
        raise InvalidAuthorization(detail="the token has expired")
    return Caller(str(row.tenant_id), row.clock_mode, row.clock_offset)
