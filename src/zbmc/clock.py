"""The one source of time for billing. Authentication windows use the wall clock instead, because
clients sign with their real time."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from zbmc.db.direct import Db, Statement, Tx
from zbmc.db.tables import clock_state

_STATE = select(clock_state.c.mode, clock_state.c.offset_seconds)
_STATE_DIRECT = Statement(_STATE)
# The clock state as two scalar subqueries (NULL when the table is empty), for a query that
# reads it along with something else.
SETTING = (
    select(clock_state.c.mode).limit(1).scalar_subquery().label("clock_mode"),
    select(clock_state.c.offset_seconds).limit(1).scalar_subquery().label("clock_offset"),
)

# A simulated clock moves at most ten years per step and a century in all: billing times stay
# valid dates and far inside the 64-bit columns that hold them.
MAX_ADVANCE_SECONDS = 3650 * 86400
MAX_OFFSET_SECONDS = 36500 * 86400

SYSTEM = "system"
SIMULATED = "simulated"


class Clock:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall

    def wall(self) -> int:
        return int(self._wall())

    def now(self, db: Db) -> int:
        state = Tx.of(db).first(_STATE_DIRECT)
        return self.at(None, None) if state is None else self.at(state.mode, state.offset_seconds)

    def at(self, mode: str | None, offset_seconds: int | None) -> int:
        """Billing time from a clock state read elsewhere (the request path reads it in its
        authentication query: ``SETTING``); no state means the system clock."""
        if mode is None or mode == SYSTEM:
            return self.wall()
        return self.wall() + int(offset_seconds or 0)

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
            raise ValueError(
                f"the clock only moves forward: 0 to {MAX_ADVANCE_SECONDS} seconds (3650 days)"
            )
        if seconds > MAX_ADVANCE_SECONDS:
            raise ValueError(
                f"{seconds} seconds is out of range: 0 to {MAX_ADVANCE_SECONDS} (3650 days) "
                "per advance"
            )
        mode, offset = self.state(conn)
        if mode != SIMULATED:
            raise ValueError(
                "the clock is the system clock; switch it with `zbmc admin clock simulate`"
            )
        if offset + seconds > MAX_OFFSET_SECONDS:
            raise ValueError(
                f"the simulated clock would be more than {MAX_OFFSET_SECONDS} seconds "
                f"(36500 days) ahead; it is {offset} seconds ahead now"
            )
        conn.execute(
            update(clock_state).values(offset_seconds=clock_state.c.offset_seconds + seconds)
        )
        return self.now(conn)


def iso(ts: int | None) -> str | None:
    """Wire time format ``YYYY-MM-DDThh:mm:ssZ``."""
    if ts is None:
        return None
    if type(ts) is not int:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The date from a cache, the time of day by arithmetic (Unix time has no leap seconds):
    # a quarter of the cost of strftime, and DescribeInstances writes two per instance.
    day, seconds = divmod(ts, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_iso_date(day)}T{hours:02d}:{minutes:02d}:{seconds:02d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_date(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")


def parse_iso(value: str) -> int:
    return int(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
