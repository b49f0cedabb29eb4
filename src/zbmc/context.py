"""What a handler gets: the open transaction, who is calling, the time, and the API version."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy.engine import Connection

from zbmc.db.direct import Tx
from zbmc.settings import Settings


class Context(NamedTuple):
    tx: Tx  # the transaction, for precompiled statements (zbmc.db.direct)
    tenant_id: str
    now: int  # Unix seconds from the (possibly simulated) billing clock
    version: str
    settings: Settings
    sqlalchemy: Connection | None = None  # None for actions registered with direct=True

    @property
    def conn(self) -> Connection:
        """The same transaction as a SQLAlchemy connection, for Core statements built per
        request."""
        if self.sqlalchemy is None:
            raise RuntimeError("this action is registered with direct=True: use ctx.tx")
        return self.sqlalchemy
