"""Who is calling: HMAC access keys or bearer tokens, checked against the database."""

from __future__ import annotations

import hashlib
import re
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select

from zbmc import clock
from zbmc.db.direct import Db, Statement, Tx
from zbmc.db.tables import access_keys, tokens
from zbmc.errors import InvalidAuthorization, SignatureExpired, SignatureFailure
from zbmc.signature import MalformedAuthorization, parse_authorization, sign, signature_matches


class Credentials(NamedTuple):
    """The authentication-relevant part of a request, exactly as received."""

    authorization: str | None
    timestamp: str | None
    content_type: str
    host: str
    body: bytes


class Caller(NamedTuple):
    """An authenticated caller, with the billing clock's state read in the same query."""

    tenant_id: str
    clock_mode: str | None
    clock_offset: int | None


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
    db: Db, cred: Credentials, wall_now: int, window: int, keys: KeyMemo | None = None
) -> Caller:
    """Return a valid caller or raise a 401 error. ``keys``: the access keys this transaction
    has read already (filled in here)."""
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
    except MalformedAuthorization as exc:
        raise InvalidAuthorization(detail=str(exc)) from None
    timestamp = (cred.timestamp or "").strip(_OWS)
    if _UNIX_SECONDS.fullmatch(timestamp) is None:
        raise InvalidAuthorization(detail="X-ZC-Timestamp must be Unix seconds (ASCII digits)")
    if not (cred.content_type.isascii() and cred.host.isascii()):
        raise InvalidAuthorization(detail="the signed headers Content-Type and Host must be ASCII")
    if abs(int(timestamp) - wall_now) > window:
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
    expected = sign(key.secret, cred.content_type, cred.host, timestamp, cred.body)
    if not signature_matches(expected, parsed.signature):
        raise SignatureFailure()
    return Caller(str(key.tenant_id), key.clock_mode, key.clock_offset)


def _bearer(tx: Tx, token: str, wall_now: int) -> Caller:
    if not token:
        raise InvalidAuthorization(detail="the bearer token is empty")
    row = tx.first(_TOKEN, {"digest": token_digest(token)})
    if row is None:
        raise InvalidAuthorization(detail="the token is unknown or revoked")
    if row.expires_at is not None and row.expires_at <= wall_now:
        raise InvalidAuthorization(detail="the token has expired")
    return Caller(str(row.tenant_id), row.clock_mode, row.clock_offset)
