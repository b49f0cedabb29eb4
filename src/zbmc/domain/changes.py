"""The rules of ModifyInstanceBandwidth and ModifyInstanceTrafficPackage (seed pages, spec
internet.md §2 and §5), as pure functions over the facts of one instance. Checks run in the order
the spec tables give; the first failing one decides the error."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import NamedTuple

from zbmc import errors
from zbmc.domain.sizes import GB_PER_TB, is_valid_package_size

RUNNING, STOPPED = "RUNNING", "STOPPED"
PREPAID, POSTPAID = "PREPAID", "POSTPAID"
BY_BANDWIDTH, BY_TRAFFIC_PACKAGE = "ByBandwidth", "ByTrafficPackage"
INTERNET_CHARGE_TYPES = (
    BY_BANDWIDTH,
    BY_TRAFFIC_PACKAGE,
    "ByInstanceBandwidth95",
    "ByClusterBandwidth95",
    "ByBandwidthCluster",
)

# Change statuses exactly as the provider spells them.
ENABLE, PROCESSING, WAIT_TO_ENABLE = "Enable", "Processing", "WaitToEnable"


class Plan(enum.Enum):
    NOTHING = "nothing"  # target equals current: success, no order (spec Q-N7)
    NOW_FREE = "now_free"  # takes effect at once (Processing -> Enable), no charge
    NOW_CHARGED = "now_charged"  # prepaid upgrade: charge the prorated price, then Processing
    NEXT_CYCLE = "next_cycle"  # prepaid downgrade: WaitToEnable until the period ends


class InstanceFacts(NamedTuple):
    instance_id: str
    status: str
    instance_charge_type: str
    internet_charge_type: str
    is_ha: bool
    bandwidth: int
    maximum_bandwidth: int
    free_bandwidth: int
    bw_status: str
    package_gb: int | None
    default_package_gb: int
    maximum_package_gb: int
    tp_status: str | None


def plan_bandwidth(facts: InstanceFacts, target: int) -> Plan:
    if facts.is_ha:
        raise errors.HaModelNoBandwidth()
    if facts.status != RUNNING:
        raise errors.InstanceNotRunning(instance_id=facts.instance_id)
    if not 1 <= target <= facts.maximum_bandwidth:
        raise errors.BandwidthExceed(maximum=facts.maximum_bandwidth, value=target)
    # A scheduled downgrade blocks a new change just like one in progress (spec Q-N1).
    if facts.bw_status in (PROCESSING, WAIT_TO_ENABLE):
        raise errors.BandwidthProcessing(instance_id=facts.instance_id)
    if target == facts.bandwidth:
        return Plan.NOTHING
    if facts.bandwidth <= facts.free_bandwidth and target <= facts.free_bandwidth:
        return Plan.NOW_FREE
    if facts.internet_charge_type == BY_BANDWIDTH and facts.instance_charge_type == PREPAID:
        return Plan.NOW_CHARGED if target > facts.bandwidth else Plan.NEXT_CYCLE
    return Plan.NOW_FREE  # POSTPAID (metered hourly) and other internet charge types


def initial_package_gb(instance_charge_type: str, default_package_gb: int) -> int:
    """The package of a new ByTrafficPackage instance when none is asked for: a prepaid one
    gets the offering's free package; a postpaid one buys none (0 TB) and pays its traffic by
    the GB above the free allowance (docs/billing.md)."""
    return default_package_gb if instance_charge_type == PREPAID else 0


def traffic_allowance_gb(package_gb: int, default_package_gb: int) -> int:
    """Outbound traffic a package cycle includes: the package, and never less than the free
    allowance (a prepaid package is never below it; a postpaid one may be 0)."""
    return max(package_gb, default_package_gb)


def check_package_size(facts: InstanceFacts, size_tb: Decimal) -> int:
    """Validate a requested package size; return it in GB."""
    if not is_valid_package_size(size_tb):
        raise errors.TrafficPackageError(value=size_tb)
    default_tb = Decimal(facts.default_package_gb) / GB_PER_TB
    # The free package is the floor of a prepaid package; a postpaid instance may buy none.
    if facts.instance_charge_type == PREPAID and size_tb < default_tb:
        raise errors.TrafficPackageLess(minimum=default_tb.normalize())
    maximum_tb = Decimal(facts.maximum_package_gb) / GB_PER_TB
    if size_tb > maximum_tb:
        raise errors.TrafficPackageExceed(maximum=maximum_tb.normalize())
    return int(size_tb * GB_PER_TB)


def require_traffic_package(facts: InstanceFacts) -> int:
    if facts.internet_charge_type != BY_TRAFFIC_PACKAGE:
        raise errors.InternetChargeTypeNotSupport(
            required=BY_TRAFFIC_PACKAGE, actual=facts.internet_charge_type
        )
    if facts.package_gb is None:
        raise errors.NoTrafficPackage(instance_id=facts.instance_id)
    return facts.package_gb


def plan_traffic_package(facts: InstanceFacts, size_tb: Decimal) -> tuple[Plan, int]:
    if facts.status not in (RUNNING, STOPPED):
        raise errors.InstanceStatusNotSupport(status=facts.status)
    current = require_traffic_package(facts)
    target = check_package_size(facts, size_tb)
    if facts.tp_status == PROCESSING:
        raise errors.TrafficPackageProcessing(instance_id=facts.instance_id)
    if facts.tp_status == WAIT_TO_ENABLE:
        raise errors.PlanTrafficPackageExists(instance_id=facts.instance_id)
    if target == current:
        return Plan.NOTHING, target
    if facts.instance_charge_type == PREPAID:
        return (Plan.NOW_CHARGED if target > current else Plan.NEXT_CYCLE), target
    return Plan.NOW_FREE, target  # POSTPAID: immediate (spec Q-N8)
