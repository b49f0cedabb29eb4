"""What InquiryPriceCreateInstance and CreateInstances share: finding the zone/model offering,
the sellability checks, the network settings of a new instance and its quote (one function, so
a PREPAID creation charges exactly what the inquiry quoted)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from zbmc import errors
from zbmc.db.tables import instance_types, offerings, zones
from zbmc.domain.changes import (
    BY_BANDWIDTH,
    BY_TRAFFIC_PACKAGE,
    INTERNET_CHARGE_TYPES,
    POSTPAID,
    PREPAID,
    initial_package_gb,
)
from zbmc.domain.pricing import (
    CreationQuote,
    PriceList,
    billable_mbps,
    billable_tb,
    creation_quote,
)
from zbmc.domain.sizes import gb_to_tb_text, is_valid_package_size, tb_to_gb
from zbmc.wire import WireModel

MAX_PERIOD = 36  # months
_PRICE_NAMES = (
    "discount",
    "instance_month",
    "instance_hour",
    "bandwidth_month",
    "bandwidth_hour",
    "traffic_tb_month",
    "traffic_tb_hour",
    "overage_gb",
)


class ChargePrepaid(WireModel):
    period: int | None = None


@dataclass(frozen=True)
class Offer:
    zone_id: str
    model: Any  # the instance_types row
    row: Any  # the offerings row, None when the model is not sold in the zone

    @property
    def prices(self) -> PriceList:
        return PriceList.from_strings(**{name: getattr(self.row, name) for name in _PRICE_NAMES})


def find(conn: Connection, zone_id: str, instance_type_id: str) -> Offer:
    """The zone and model (404 when unknown) and their offering, if any."""
    if conn.execute(select(zones.c.zone_id).where(zones.c.zone_id == zone_id)).first() is None:
        raise errors.ZoneNotFound(zone_id=zone_id)
    model = conn.execute(
        select(instance_types).where(instance_types.c.instance_type_id == instance_type_id)
    ).first()
    if model is None:
        raise errors.InstanceTypeNotFound(instance_type_id=instance_type_id)
    row = conn.execute(
        select(offerings).where(
            offerings.c.zone_id == zone_id, offerings.c.instance_type_id == instance_type_id
        )
    ).first()
    return Offer(zone_id, model, row)


def check_sellable(
    offer: Offer,
    instance_charge_type: str,
    internet_charge_type: str,
    prepaid: ChargePrepaid | None,
) -> int:
    """The capability checks (spec Q14: after not-found, before formats); returns the period
    in months (0 for POSTPAID)."""
    type_id = offer.model.instance_type_id
    if offer.row is None:
        raise errors.InstanceTypeZoneNoSell(instance_type_id=type_id, zone_id=offer.zone_id)
    if instance_charge_type not in (PREPAID, POSTPAID):
        raise errors.InvalidParameter(
            detail="invalid parameter `instanceChargeType`: must be PREPAID or POSTPAID"
        )
    if instance_charge_type not in offer.row.instance_charge_types:
        raise errors.ChargeTypeNotSupport(charge_type=instance_charge_type)
    if internet_charge_type not in INTERNET_CHARGE_TYPES:
        raise errors.InvalidParameter(
            detail="invalid parameter `internetChargeType`: must be one of "
            + ", ".join(INTERNET_CHARGE_TYPES)
        )
    if internet_charge_type not in offer.row.internet_charge_types:
        raise errors.BandwidthZoneNoSell(
            internet_charge_type=internet_charge_type,
            instance_type_id=type_id,
            zone_id=offer.zone_id,
        )
    if instance_charge_type == POSTPAID:
        return 0
    if prepaid is None or prepaid.period is None:
        raise errors.MissingParameter(name="instanceChargePrepaid.period")
    if not 1 <= prepaid.period <= MAX_PERIOD:
        raise errors.InvalidParameter(
            detail=f"invalid parameter `instanceChargePrepaid.period`: must be 1..{MAX_PERIOD}"
        )
    return prepaid.period


@dataclass(frozen=True)
class Network:
    bandwidth: int
    package_gb: int | None  # ByTrafficPackage only, never None for it


def network(
    offer: Offer,
    instance_charge_type: str,
    internet_charge_type: str,
    bandwidth: int | None,
    package_tb: Decimal | None,
) -> Network:
    row = offer.row
    mbps = 1 if bandwidth is None else bandwidth
    if not 1 <= mbps <= row.maximum_bandwidth_out:
        raise errors.BandwidthValueExceedMaximum(maximum=row.maximum_bandwidth_out, value=mbps)
    if internet_charge_type != BY_TRAFFIC_PACKAGE:
        return Network(mbps, None)  # spec Q-I9: the size is ignored for other charge types
    if package_tb is None:  # PREPAID: the free package; POSTPAID buys none (docs/billing.md)
        return Network(
            mbps, initial_package_gb(instance_charge_type, row.default_traffic_package_gb)
        )
    if instance_charge_type == POSTPAID or not is_valid_package_size(package_tb):
        # spec Q-I9: a POSTPAID package is always the default one
        raise errors.TrafficPackageError(value=package_tb)
    package_gb = tb_to_gb(package_tb)
    if package_gb < row.default_traffic_package_gb:
        raise errors.TrafficPackageLess(minimum=gb_to_tb_text(row.default_traffic_package_gb))
    if package_gb > row.maximum_traffic_package_gb:
        raise errors.TrafficPackageExceed(maximum=gb_to_tb_text(row.maximum_traffic_package_gb))
    return Network(mbps, package_gb)


def quote(offer: Offer, internet_charge_type: str, period: int, net: Network) -> CreationQuote:
    """The price of one instance: PREPAID for ``period`` months, POSTPAID per hour."""
    row = offer.row
    billable_bw = (
        billable_mbps(net.bandwidth, row.default_bandwidth_out)
        if internet_charge_type == BY_BANDWIDTH
        else 0
    )
    billable_package = (
        billable_tb(net.package_gb, row.default_traffic_package_gb)
        if net.package_gb is not None
        else Decimal(0)
    )
    return creation_quote(
        offer.prices,
        prepaid=period > 0,
        months=max(period, 1),
        billable_bandwidth=billable_bw,
        billable_package_tb=billable_package,
    )
