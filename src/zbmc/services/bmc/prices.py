"""The price shapes: ``Price`` (2022-11-20) and ``PriceItem`` (2026-02-01, five more keys)."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from zbmc.domain.pricing import PriceList, Quote, round_cents
from zbmc.wire import WireModel

HOUR = "HOUR"
STANDARD = "STANDARD"


class StepPrice(WireModel):
    step_start: float
    step_end: float | None
    unit_price: float
    discount_unit_price: float


class PriceItem(WireModel):
    v2026_only: ClassVar[frozenset[str]] = frozenset(
        {
            "amount_unit",
            "excess_unit_price",
            "excess_discount_unit_price",
            "excess_amount_unit",
            "category",
        }
    )

    discount: float
    discount_price: float | None = None
    original_price: float | None = None
    unit_price: float | None = None
    discount_unit_price: float | None = None
    charge_unit: str | None = None
    step_prices: list[StepPrice] | None = None
    amount_unit: str | None = None
    excess_unit_price: float | None = None
    excess_discount_unit_price: float | None = None
    excess_amount_unit: str | None = None
    category: str | None = None


def prepaid_item(prices: PriceList, amount: Quote, amount_unit: str) -> PriceItem:
    """A one-off amount: originalPrice before, discountPrice after the discount."""
    return PriceItem(
        discount=float(prices.discount),
        original_price=float(amount.original),
        discount_price=float(amount.discounted),
        amount_unit=amount_unit,
        category=STANDARD,
    )


def hourly_item(prices: PriceList, hourly: Decimal, amount_unit: str) -> PriceItem:
    """A postpaid rate per hour for the whole requested amount."""
    return PriceItem(
        discount=float(prices.discount),
        unit_price=float(round_cents(hourly)),
        discount_unit_price=float(round_cents(prices.discounted(hourly))),
        charge_unit=HOUR,
        amount_unit=amount_unit,
        category=STANDARD,
    )


def overage_item(prices: PriceList) -> PriceItem:
    """The per-GB price of traffic above the package (one open-ended step)."""
    unit = float(prices.overage_gb)
    discounted = float(prices.discounted(prices.overage_gb))
    return PriceItem(
        discount=float(prices.discount),
        step_prices=[
            StepPrice(
                step_start=0.0, step_end=None, unit_price=unit, discount_unit_price=discounted
            )
        ],
        excess_unit_price=unit,
        excess_discount_unit_price=discounted,
        excess_amount_unit="GB",
        amount_unit="GB",
        category=STANDARD,
    )
