"""Prices and charges, in Decimal; amounts become integer cents only at the ledger.

Formulas (docs/billing.md explains them with examples):

* billable bandwidth = max(0, Mbps - free bandwidth of the zone/type);
  billable package = max(0, TB - default (free) package of the zone/type);
* prepaid upgrade charge = (billable(target) - billable(current)) x price per unit per month
  x period months x remaining seconds of the current period / seconds of the current period,
  then x discount / 100, rounded half-up to the cent;
* prepaid period price = billable units x price per unit per month x period months x discount;
* postpaid hourly rate = billable units x price per unit per hour x discount.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from zbmc.domain.sizes import GB_PER_TB

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def round_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(amount: Decimal) -> int:
    return int(round_cents(amount) * 100)


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


@dataclass(frozen=True)
class PriceList:
    """The prices of one zone/instance-type offering, per unit."""

    discount: Decimal  # percent: 100 = no discount, 95 = 5 % off
    instance_month: Decimal
    instance_hour: Decimal
    bandwidth_month: Decimal  # per Mbps
    bandwidth_hour: Decimal
    traffic_tb_month: Decimal  # per TB
    traffic_tb_hour: Decimal
    overage_gb: Decimal

    @classmethod
    def from_strings(cls, **values: str) -> PriceList:
        """Build from the exact decimal strings the catalogue stores."""
        return cls(**{name: Decimal(text) for name, text in values.items()})

    def discounted(self, amount: Decimal) -> Decimal:
        return amount * self.discount / HUNDRED


@dataclass(frozen=True)
class Quote:
    """An amount before and after discount, both rounded to the cent."""

    original: Decimal
    discounted: Decimal

    @property
    def cents(self) -> int:
        return to_cents(self.discounted)


def quote(prices: PriceList, raw: Decimal) -> Quote:
    return Quote(round_cents(raw), round_cents(prices.discounted(raw)))


def billable_mbps(mbps: int, free_mbps: int) -> int:
    return max(0, mbps - free_mbps)


def billable_tb(package_gb: int, free_gb: int) -> Decimal:
    return Decimal(max(0, package_gb - free_gb)) / GB_PER_TB


def remaining_fraction(now: int, cycle_start: int, cycle_end: int) -> Decimal:
    """Share of the current prepaid period still ahead, clamped to [0, 1]."""
    total = cycle_end - cycle_start
    if total <= 0:
        return Decimal(0)
    left = min(max(cycle_end - now, 0), total)
    return Decimal(left) / Decimal(total)


def prorated_upgrade(
    prices: PriceList,
    units_delta: Decimal,
    unit_month_price: Decimal,
    period_months: int,
    fraction: Decimal,
) -> Quote:
    return quote(prices, units_delta * unit_month_price * period_months * fraction)


def period_price(
    prices: PriceList,
    *,
    months: int,
    billable_bandwidth: int,
    billable_package_tb: Decimal,
) -> Quote:
    """A whole prepaid period: instance + billable bandwidth + billable package, per month."""
    monthly = (
        prices.instance_month
        + billable_bandwidth * prices.bandwidth_month
        + billable_package_tb * prices.traffic_tb_month
    )
    return quote(prices, monthly * months)


def hourly_price(
    prices: PriceList, *, billable_bandwidth: int, billable_package_tb: Decimal
) -> Quote:
    """One postpaid hour: instance + billable bandwidth + billable package, per hour."""
    raw = (
        prices.instance_hour
        + billable_bandwidth * prices.bandwidth_hour
        + billable_package_tb * prices.traffic_tb_hour
    )
    return quote(prices, raw)


GB = 10**9


def overage_gb(used_bytes: int, package_gb: int) -> int:
    """Whole GB above the package; a started GB counts as one (1 GB = 10^9 bytes)."""
    excess = used_bytes - package_gb * GB
    return 0 if excess <= 0 else -(-excess // GB)


@dataclass(frozen=True)
class CreationQuote:
    """What one new instance costs: the instance and its network part (bandwidth above the free
    allowance, or the traffic package above the default one), before discount (``*_raw``) and as
    ``Quote``s. For PREPAID they are totals for the whole first period; for POSTPAID hourly rates.
    A PREPAID creation charges ``cents`` per instance: the sum of the two items exactly as
    InquiryPriceCreateInstance shows them, each rounded to the cent."""

    prepaid: bool
    instance_raw: Decimal
    network_raw: Decimal
    instance: Quote
    network: Quote

    @property
    def cents(self) -> int:
        return self.instance.cents + self.network.cents


def creation_quote(
    prices: PriceList,
    *,
    prepaid: bool,
    months: int,
    billable_bandwidth: int,
    billable_package_tb: Decimal,
) -> CreationQuote:
    """The price of one instance (docs/billing.md, "Creating instances")."""
    if prepaid:
        instance = prices.instance_month * months
        network = (
            billable_bandwidth * prices.bandwidth_month
            + billable_package_tb * prices.traffic_tb_month
        ) * months
    else:
        instance = prices.instance_hour
        network = (
            billable_bandwidth * prices.bandwidth_hour
            + billable_package_tb * prices.traffic_tb_hour
        )
    return CreationQuote(
        prepaid, instance, network, quote(prices, instance), quote(prices, network)
    )
