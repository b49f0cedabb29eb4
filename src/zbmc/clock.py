"""The one source of time for billing. Authentication windows use the wall clock instead, because
clients sign with their real time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from zbmc.db.direct import Db, Statement, Tx
from zbmc.db.tables import clock_state

_STATE = select(clock_state.c.mode, clock_state.c.offset_seconds)
_STATE_DIRECT = Statement(_STATE)  # read on every request

SYSTEM = "system"
SIMULATED = "simulated"


class Clock:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall

    def wall(self) -> int:
        return int(self._wall())

    def now(self, db: Db) -> int:
        state = Tx.of(db).first(_STATE_DIRECT)
        if state is None or state.mode == SYSTEM:
            return self.wall()
        return self.wall() + int(state.offset_seconds)

    def state(self, conn: Connection) -> tuple[str, int]:
        row = conn.execute(_STATE).first()
        return (SYSTEM, 0) if row is None else (str(row.mode), int(row.offset_seconds))

    def set_mode(self, conn: Connection, mode: str) -> None:
        if mode not in (SYSTEM, SIMULATED):
            raise ValueError(f"clock mode must be {SYSTEM!r} or {SIMULATED!r}")
        if conn.execute(select(clock_state.c.clock_id)).first() is None:
            conn.execute(insert(clock_state).values(clock_id=1, mode=mode, offset_seconds=0))
        else:
            conn.execute(update(clock_state).values(mode=mode))

    def advance(self, conn: Connection, seconds: int) -> int:
        """Move simulated time forward; time never moves backwards. Returns the new now."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        mode, _ = self.state(conn)
        if mode != SIMULATED:
            raise ValueError(
                "the clock is the system clock; switch it with `zbmc admin clock simulate`"
            )
        conn.execute(
            update(clock_state).values(offset_seconds=clock_state.c.offset_seconds + seconds)
        )
        return self.now(conn)


def iso(ts: int | None) -> str | None:
    """Wire time format ``YYYY-MM-DDThh:mm:ssZ``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> int:
    return int(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
