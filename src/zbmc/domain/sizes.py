"""Traffic-package sizes: exact decimal TB on the wire, integer GB (1 TB = 1000 GB) in storage."""

from __future__ import annotations

from decimal import Decimal

GB_PER_TB = 1000
STEP_GB = 50  # sizes are multiples of 0.05 TB


def is_valid_package_size(value: Decimal) -> bool:
    """True when ``value`` is >= 0 and an exact multiple of 0.05, checked on the decimal digits.

    Works on the digit tuple, so it is exact for any size and never rounds, never uses floats
    (0.15 passes, 0.07 fails) and costs O(digits) even for absurdly long numbers.
    """
    if not value.is_finite() or value < 0:
        return False
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    exponent += 2  # value * 100 must be an integer divisible by 5
    if exponent > 0:
        return True
    if exponent < 0:
        if any(digits[exponent:]):
            return False
        digits = digits[:exponent]
    return not digits or digits[-1] in (0, 5)


def tb_to_gb(value: Decimal) -> int:
    if not is_valid_package_size(value):
        raise ValueError(f"{value} is not a multiple of 0.05 TB")
    return int(value * GB_PER_TB)


def gb_to_tb(gb: int | None) -> float | None:
    """For the wire (Float): exact for multiples of 0.05 TB."""
    return None if gb is None else float(Decimal(gb) / GB_PER_TB)


def gb_to_tb_text(gb: int) -> str:
    return format((Decimal(gb) / GB_PER_TB).normalize(), "f")
