"""Calendar and money arithmetic of prepaid periods and metering (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from zbmc.billing.metering import History
from zbmc.billing.renewals import next_expiry
from zbmc.domain.periods import add_months, months_between_anchor
from zbmc.domain.pricing import overage_gb, remaining_fraction


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_month_end_is_clamped() -> None:
    assert add_months(ts("2026-01-31T10:00:00"), 1) == ts("2026-02-28T10:00:00")
    assert add_months(ts("2028-01-31T10:00:00"), 1) == ts("2028-02-29T10:00:00")  # leap year
    assert add_months(ts("2026-03-31T00:00:00"), 1) == ts("2026-04-30T00:00:00")
    assert add_months(ts("2026-12-15T23:59:59"), 1) == ts("2027-01-15T23:59:59")
    assert add_months(ts("2026-11-30T00:00:00"), 15) == ts("2028-02-29T00:00:00")


def test_renewals_count_from_the_anchor_so_month_ends_do_not_drift() -> None:
    anchor = ts("2026-01-31T08:00:00")
    first = next_expiry(anchor, anchor, 1)
    second = next_expiry(anchor, first, 1)
    third = next_expiry(anchor, second, 1)
    assert (first, second, third) == (
        ts("2026-02-28T08:00:00"),
        ts("2026-03-31T08:00:00"),
        ts("2026-04-30T08:00:00"),
    )
    assert next_expiry(anchor, second, 3) == ts("2026-06-30T08:00:00")


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)),
    st.integers(min_value=0, max_value=240),
)
def test_months_between_inverts_add_months(start: datetime, months: int) -> None:
    anchor = int(start.replace(tzinfo=UTC).timestamp())
    assert months_between_anchor(anchor, add_months(anchor, months)) == months


def test_remaining_fraction_is_clamped() -> None:
    assert remaining_fraction(50, 0, 100) == Decimal("0.5")
    assert remaining_fraction(150, 0, 100) == 0
    assert remaining_fraction(-50, 0, 100) == 1


def test_overage_counts_every_started_gigabyte_once() -> None:
    assert overage_gb(10**12, 1000) == 0
    assert overage_gb(10**12 + 1, 1000) == 1
    assert overage_gb(1_200 * 10**9, 1000) == 200
    assert overage_gb(0, 0) == 0


def test_history_charges_the_highest_value_held_in_the_hour() -> None:
    # 100 Mbps until t=5400 (inside hour [3600, 7200)), then 200; then 150 from 9000
    history = History(current=150, changes=[(5400, 100, 200), (9000, 200, 150)])
    assert history.highest(0, 3600) == 100
    assert history.highest(3600, 7200) == 200
    assert history.highest(7200, 10800) == 200
    assert history.highest(10800, 14400) == 150
