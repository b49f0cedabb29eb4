"""Who is calling: HMAC access keys or bearer tokens, checked against the database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from zbmc.db.engine import driver_rows
from zbmc.db.tables import access_keys, tokens
from zbmc.errors import InvalidAuthorization, SignatureExpired, SignatureFailure
from zbmc.signature import MalformedAuthorization, parse_authorization, sign, signature_matches


@dataclass(frozen=True)
class Credentials:
    """The authentication-relevant part of a request, exactly as received."""

    authorization: str | None
    timestamp: str | None
    content_type: str
    host: str
    body: bytes


_KEY_SQL = (
    f"SELECT tenant_id, secret FROM {access_keys.name} WHERE key_id = ? AND revoked_at IS NULL"
)
# Built once: SQLAlchemy then reuses the compiled form instead of re-deriving a cache key per call.
_TOKEN = select(tokens.c.tenant_id, tokens.c.expires_at).where(
    tokens.c.token_sha256 == bindparam("digest"), tokens.c.revoked_at.is_(None)
)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(conn: Connection, cred: Credentials, wall_now: int, window: int) -> str:
    """Return the tenant id of a valid caller or raise a 401 error."""
    header = (cred.authorization or "").strip()
    if not header:
        raise InvalidAuthorization(detail="the Authorization header is missing")
    if header.startswith("Bearer "):
        return _bearer(conn, header.removeprefix("Bearer ").strip(), wall_now)
    try:
        parsed = parse_authorization(header)
    except MalformedAuthorization as exc:
        raise InvalidAuthorization(detail=str(exc)) from None
    timestamp = (cred.timestamp or "").strip()
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise InvalidAuthorization(detail="X-ZC-Timestamp must be Unix seconds")
    if abs(int(timestamp) - wall_now) > window:
        raise SignatureExpired(window=window)
    rows = driver_rows(conn, _KEY_SQL, (parsed.access_key_id,))  # every request: see driver_rows
    if not rows:
        raise InvalidAuthorization(detail="the access key is unknown or revoked")
    tenant_id, secret = rows[0]
    expected = sign(secret, cred.content_type, cred.host, timestamp, cred.body)
    if not signature_matches(expected, parsed.signature):
        raise SignatureFailure()
    return str(tenant_id)


def _bearer(conn: Connection, token: str, wall_now: int) -> str:
    if not token:
        raise InvalidAuthorization(detail="the bearer token is empty")
    row = conn.execute(_TOKEN, {"digest": token_digest(token)}).first()
    if row is None:
        raise InvalidAuthorization(detail="the token is unknown or revoked")
    if row.expires_at is not None and row.expires_at <= wall_now:
        raise InvalidAuthorization(detail="the token has expired")
    return str(row.tenant_id)
