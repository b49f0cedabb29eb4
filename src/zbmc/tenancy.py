"""Tenants, their access keys and bearer tokens, and top-ups: what operators administer."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from zbmc.auth import token_digest
from zbmc.billing import ledger
from zbmc.db.tables import access_keys, tenants, tokens
from zbmc.domain.pricing import from_cents, to_cents

_KEY_ALPHABET = string.ascii_uppercase + string.digits


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class AccessKey:
    tenant_id: str
    access_key_id: str
    access_key_password: str


# Operators' amounts (top-ups, opening balances). Balances are 64-bit integer cents in the
# database; these bounds keep any realistic sum of them far inside it.
MAX_AMOUNT = Decimal("1000000000000.00")
MAX_BALANCE_CENTS = 10**16  # 1e14 (100 trillion) in currency units


def amount_to_cents(amount: Decimal) -> int:
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"the amount must be a positive number, 0.01 to {MAX_AMOUNT}")
    if amount > MAX_AMOUNT:
        raise ValueError(f"the amount {amount} is out of range: 0.01 to {MAX_AMOUNT}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("the amount has more than two decimals")
    return to_cents(amount)


def require_tenant(conn: Connection, tenant_id: str) -> None:
    if (
        conn.execute(select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)).first()
        is None
    ):
        raise NotFound(f"tenant {tenant_id!r} does not exist")


def create_tenant(
    conn: Connection, name: str, balance: Decimal, now: int, currency: str = "USD"
) -> AccessKey:
    tenant_id = "tnt-" + secrets.token_hex(6)
    conn.execute(
        insert(tenants).values(
            tenant_id=tenant_id, name=name, currency=currency, balance=0, created_at=now
        )
    )
    if balance > 0:
        top_up(conn, tenant_id, balance, now, "initial balance")
    return create_key(conn, tenant_id, now)


def top_up(
    conn: Connection, tenant_id: str, amount: Decimal, now: int, note: str = "top-up"
) -> int:
    require_tenant(conn, tenant_id)
    entry = ledger.Entry(kind=ledger.TOPUP, amount=amount_to_cents(amount), description=note)
    balance = ledger.credit(conn, tenant_id, entry, now)
    if balance > MAX_BALANCE_CENTS:  # the caller's transaction rolls the credit back
        raise ValueError(f"the balance would exceed {from_cents(MAX_BALANCE_CENTS)}")
    return balance


def create_key(conn: Connection, tenant_id: str, now: int) -> AccessKey:
    require_tenant(conn, tenant_id)
    key = AccessKey(
        tenant_id=tenant_id,
        access_key_id="".join(secrets.choice(_KEY_ALPHABET) for _ in range(20)),
        access_key_password=secrets.token_urlsafe(24),
    )
    conn.execute(
        insert(access_keys).values(
            key_id=key.access_key_id,
            tenant_id=tenant_id,
            secret=key.access_key_password,
            created_at=now,
        )
    )
    return key


def revoke_key(conn: Connection, key_id: str, now: int) -> None:
    result = conn.execute(
        update(access_keys)
        .where(access_keys.c.key_id == key_id, access_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if result.rowcount == 0:
        raise NotFound(f"access key {key_id!r} does not exist or is already revoked")


def create_token(
    conn: Connection, tenant_id: str, now: int, lifetime_days: int | None = None
) -> tuple[str, str]:
    """Return (token id, token). Only the token's SHA-256 is stored. ``now`` is wall-clock
    time, which authentication checks the expiry against (never the billing clock)."""
    require_tenant(conn, tenant_id)
    token_id = "tok-" + secrets.token_hex(6)
    token = "zbmc_" + secrets.token_urlsafe(32)
    conn.execute(
        insert(tokens).values(
            token_id=token_id,
            token_sha256=token_digest(token),
            tenant_id=tenant_id,
            created_at=now,
            expires_at=None if lifetime_days is None else now + lifetime_days * 86400,
        )
    )
    return token_id, token


def revoke_token(conn: Connection, token_or_id: str, now: int) -> None:
    result = conn.execute(
        update(tokens)
        .where(
            (tokens.c.token_id == token_or_id)
            | (tokens.c.token_sha256 == token_digest(token_or_id)),
            tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    if result.rowcount == 0:
        raise NotFound("token does not exist or is already revoked")
