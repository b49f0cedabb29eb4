"""DescribeInstanceTraffic arithmetic (spec internet.md §8): the query window, 5-minute buckets and
the burstable-95th statistics, as pure functions over integers.

A bucket is named by the 5-minute boundary ``t`` it ends at and holds every sample whose end
time lies in ``(t - 300, t]``; its rate is the bucket's bytes * 8 / 300, rounded down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from zbmc.errors import IllegalTime

BUCKET_SECONDS = 300
MAX_SPAN_SECONDS = 24 * 3600
RETENTION_SECONDS = 30 * 24 * 3600
_WIRE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def parse_wire_time(name: str, value: str) -> int:
    """``YYYY-MM-DDThh:mm:ssZ`` exactly (strptime alone would accept ``2023-7-1T6:5:3Z``)."""
    if _WIRE_TIME.match(value):
        try:
            return int(
                datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            )
        except ValueError:
            pass
    raise IllegalTime(
        detail=f"{name} `{value}` must be a UTC time in the form YYYY-MM-DDThh:mm:ssZ."
    )


def check_window(start_text: str, end_text: str, now: int) -> tuple[int, int]:
    """The window as Unix seconds, or IllegalTime. ``now`` is the billing clock."""
    start = parse_wire_time("startTime", start_text)
    end = parse_wire_time("endTime", end_text)
    if end < start:
        raise IllegalTime(detail="endTime must not be earlier than startTime.")
    if end - start > MAX_SPAN_SECONDS:
        raise IllegalTime(detail="The time window must not exceed 24 hours.")
    if start < now - RETENTION_SECONDS:
        raise IllegalTime(detail="Only data from the last 30 days can be queried.")
    return start, end


def bucket_of(ts: int) -> int:
    """The 5-minute boundary a sample ending at ``ts`` belongs to (the first one at or after)."""
    return -(-ts // BUCKET_SECONDS) * BUCKET_SECONDS


def bucket_range(start: int, end: int) -> tuple[int, int]:
    """First and last boundary ``t`` with ``start <= t <= end`` (first > last when none)."""
    return bucket_of(start), end // BUCKET_SECONDS * BUCKET_SECONDS


@dataclass(frozen=True)
class Point:
    time: int  # the boundary ending the bucket
    in_bytes: int
    out_bytes: int

    @property
    def rx(self) -> int:
        return self.in_bytes * 8 // BUCKET_SECONDS

    @property
    def tx(self) -> int:
        return self.out_bytes * 8 // BUCKET_SECONDS


def points(samples: Iterable[tuple[int, int, int]], start: int, end: int) -> list[Point]:
    """Aggregate ``(ts, in_bytes, out_bytes)`` samples into the buckets of the window, in time
    order. Buckets without samples are left out rather than shown as zero traffic."""
    first, last = bucket_range(start, end)
    totals: dict[int, tuple[int, int]] = {}
    for ts, in_bytes, out_bytes in samples:
        t = bucket_of(ts)
        if first <= t <= last:
            seen_in, seen_out = totals.get(t, (0, 0))
            totals[t] = (seen_in + in_bytes, seen_out + out_bytes)
    return [Point(t, *totals[t]) for t in sorted(totals)]


@dataclass(frozen=True)
class Direction:
    p95: int
    p95_time: int | None
    avg: int
    max: int
    min: int
    total_bytes: int


def burstable_95th(values: list[tuple[int, int]]) -> tuple[int, int | None]:
    """(value, time) of the 95th percentile: sort descending, discard the top floor(n * 0.05), take
    the next. Equal values keep time order, so the earliest of them is reported."""
    if not values:
        return 0, None
    ranked = sorted(values, key=lambda vt: (-vt[0], vt[1]))
    value, time = ranked[len(values) * 5 // 100]
    return value, time


def direction(rates: list[tuple[int, int]], total_bytes: int) -> Direction:
    """Statistics of one direction from (bps, time) pairs; all zero and no time when empty."""
    if not rates:
        return Direction(0, None, 0, 0, 0, 0)
    p95, p95_time = burstable_95th(rates)
    bps = [value for value, _ in rates]
    return Direction(p95, p95_time, sum(bps) // len(bps), max(bps), min(bps), total_bytes)


@dataclass(frozen=True)
class Summary:
    points: list[Point]
    inbound: Direction
    outbound: Direction

    @property
    def max_95_mbps(self) -> Decimal:
        """max(in95, out95) in Mbps, rounded half-up to 2 decimals."""
        best = Decimal(max(self.inbound.p95, self.outbound.p95)) / 1_000_000
        return best.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def summarize(buckets: list[Point]) -> Summary:
    return Summary(
        buckets,
        direction([(p.rx, p.time) for p in buckets], sum(p.in_bytes for p in buckets)),
        direction([(p.tx, p.time) for p in buckets], sum(p.out_bytes for p in buckets)),
    )
