"""ModifyInstanceTrafficPackage, InquiryPriceInstanceTrafficPackage,
CancelInstanceTrafficPackageDowngrade."""

from __future__ import annotations

from pydantic import Field

from zbmc import errors
from zbmc.billing import changes
from zbmc.context import Context
from zbmc.domain.changes import (
    BY_TRAFFIC_PACKAGE,
    POSTPAID,
    WAIT_TO_ENABLE,
    check_package_size,
    plan_traffic_package,
    require_traffic_package,
)
from zbmc.registry import action
from zbmc.services.bmc.prices import PriceItem, hourly_item, overage_item, prepaid_item
from zbmc.services.bmc.shapes import EmptyResponse, InstanceIdRequest, OrderResponse
from zbmc.store import instances as store
from zbmc.wire import RequiredStr, WireFloat, WireModel


class ModifyInstanceTrafficPackageRequest(WireModel):
    instance_id: RequiredStr
    traffic_package_size: WireFloat


class InquiryPriceInstanceTrafficPackageResponse(WireModel):
    traffic_package_price: list[PriceItem] = Field(default_factory=list)


@action(
    "ModifyInstanceTrafficPackage",
    request=ModifyInstanceTrafficPackageRequest,
    response=OrderResponse,
    write=True,
    direct=True,
    prefetch=store.prefetch_requests,
)
def modify_instance_traffic_package(
    ctx: Context, req: ModifyInstanceTrafficPackageRequest
) -> OrderResponse:
    """Change the traffic package size (seed: ModifyInstanceTrafficPackage)."""
    row = store.load_for_change(ctx.tx, ctx.tenant_id, req.instance_id)
    facts = store.facts(row)
    plan, target = plan_traffic_package(facts, req.traffic_package_size)
    current = facts.package_gb or 0
    number = changes.execute(ctx, changes.TRAFFIC_PACKAGE, row, facts, plan, current, target)
    return OrderResponse(order_number=number)


@action(
    "InquiryPriceInstanceTrafficPackage",
    request=ModifyInstanceTrafficPackageRequest,
    response=InquiryPriceInstanceTrafficPackageResponse,
    write=False,
    direct=True,
)
def inquiry_price_instance_traffic_package(
    ctx: Context, req: ModifyInstanceTrafficPackageRequest
) -> InquiryPriceInstanceTrafficPackageResponse:
    """The package price ModifyInstanceTrafficPackage would charge, and the overage price."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=False)
    facts = store.facts(row)
    current = require_traffic_package(facts)
    prices = store.price_list(row)
    target = check_package_size(facts, req.traffic_package_size)
    if facts.instance_charge_type == POSTPAID:
        rate = changes.hourly_rate(changes.TRAFFIC_PACKAGE, prices, facts, target)
        package = hourly_item(prices, rate, "TB")
    else:
        quote = changes.upgrade_quote(
            changes.TRAFFIC_PACKAGE, prices, row, facts, current, target, ctx.now
        )
        package = prepaid_item(prices, quote, "TB")
    return InquiryPriceInstanceTrafficPackageResponse(
        traffic_package_price=[package, overage_item(prices)]
    )


@action(
    "CancelInstanceTrafficPackageDowngrade",
    request=InstanceIdRequest,
    response=EmptyResponse,
    write=True,
    direct=True,
)
def cancel_instance_traffic_package_downgrade(
    ctx: Context, req: InstanceIdRequest
) -> EmptyResponse:
    """Withdraw a traffic-package downgrade waiting for the next billing cycle."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=True)
    if row.internet_charge_type != BY_TRAFFIC_PACKAGE:
        raise errors.InternetChargeTypeNotSupport(
            required=BY_TRAFFIC_PACKAGE, actual=row.internet_charge_type
        )
    if row.tp_status != WAIT_TO_ENABLE:
        raise errors.DowngradeNotExist(instance_id=req.instance_id, what="traffic package")
    changes.cancel_downgrade(ctx, changes.TRAFFIC_PACKAGE, row)
    return EmptyResponse()
