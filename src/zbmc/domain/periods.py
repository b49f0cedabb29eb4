"""Calendar arithmetic for prepaid periods, in whole UTC seconds.

Months are calendar months: adding n months keeps the day of month and the time of day, and a
day that does not exist in the target month is clamped to that month's last day (Jan 31 + 1
month = Feb 28, or Feb 29 in a leap year). Renewals are always computed from the instance's
creation time (the anchor), never chained, so Jan 31 → Feb 28 → Mar 31, not Mar 28.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime


def add_months(ts: int, months: int) -> int:
    moment = datetime.fromtimestamp(ts, UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def months_between_anchor(anchor: int, expiry: int) -> int:
    """How many months after ``anchor`` the boundary ``expiry`` lies (expiry is a boundary)."""
    a = datetime.fromtimestamp(anchor, UTC)
    b = datetime.fromtimestamp(expiry, UTC)
    months = (b.year - a.year) * 12 + (b.month - a.month)
    while add_months(anchor, months) > expiry:
        months -= 1
    while add_months(anchor, months + 1) <= expiry:
        months += 1
    return months
