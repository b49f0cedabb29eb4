"""What a handler gets: the open transaction, who is calling, the time, and the API version."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from zbmc.settings import Settings


@dataclass(frozen=True)
class Context:
    conn: Connection
    tenant_id: str
    now: int  # Unix seconds from the (possibly simulated) billing clock
    version: str
    settings: Settings
