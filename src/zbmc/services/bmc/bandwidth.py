"""ModifyInstanceBandwidth, InquiryPriceInstanceBandwidth, CancelInstanceBandwidthDowngrade."""

from __future__ import annotations

from pydantic import Field

from zbmc import errors
from zbmc.billing import changes
from zbmc.context import Context
from zbmc.domain.changes import (
    BY_BANDWIDTH,
    POSTPAID,
    WAIT_TO_ENABLE,
    plan_bandwidth,
)
from zbmc.registry import action
from zbmc.services.bmc.prices import PriceItem, hourly_item, prepaid_item
from zbmc.services.bmc.shapes import EmptyResponse, InstanceIdRequest, OrderResponse
from zbmc.store import instances as store
from zbmc.wire import RequiredStr, WireModel


class ModifyInstanceBandwidthRequest(WireModel):
    instance_id: RequiredStr
    bandwidth_out_mbps: int


class InquiryPriceInstanceBandwidthResponse(WireModel):
    bandwidth_price: list[PriceItem] = Field(default_factory=list)


@action(
    "ModifyInstanceBandwidth",
    request=ModifyInstanceBandwidthRequest,
    response=OrderResponse,
    write=True,
    direct=True,
    prefetch=store.prefetch_requests,
)
def modify_instance_bandwidth(ctx: Context, req: ModifyInstanceBandwidthRequest) -> OrderResponse:
    """Change the outbound bandwidth cap (seed: ModifyInstanceBandwidth)."""
    row = store.load_for_change(ctx.tx, ctx.tenant_id, req.instance_id)
    facts = store.facts(row)
    plan = plan_bandwidth(facts, req.bandwidth_out_mbps)
    number = changes.execute(
        ctx, changes.BANDWIDTH, row, facts, plan, facts.bandwidth, req.bandwidth_out_mbps
    )
    return OrderResponse(order_number=number)


@action(
    "InquiryPriceInstanceBandwidth",
    request=ModifyInstanceBandwidthRequest,
    response=InquiryPriceInstanceBandwidthResponse,
    write=False,
    direct=True,
)
def inquiry_price_instance_bandwidth(
    ctx: Context, req: ModifyInstanceBandwidthRequest
) -> InquiryPriceInstanceBandwidthResponse:
    """What ModifyInstanceBandwidth would charge for this target (spec Q-N2)."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=False)
    facts = store.facts(row)
    if facts.internet_charge_type != BY_BANDWIDTH:
        raise errors.InternetChargeTypeNotSupport(
            required=BY_BANDWIDTH, actual=facts.internet_charge_type
        )
    if facts.is_ha:  # the modification would be refused: quote nothing (docs/behaviour.md)
        raise errors.HaModelNoBandwidth()
    prices = store.price_list(row)
    target = req.bandwidth_out_mbps
    if not 1 <= target <= facts.maximum_bandwidth:
        raise errors.BandwidthExceed(maximum=facts.maximum_bandwidth, value=target)
    if target <= facts.free_bandwidth:
        return InquiryPriceInstanceBandwidthResponse(bandwidth_price=[])
    if facts.instance_charge_type == POSTPAID:
        rate = changes.hourly_rate(changes.BANDWIDTH, prices, facts, target)
        return InquiryPriceInstanceBandwidthResponse(
            bandwidth_price=[hourly_item(prices, rate, "Mbps")]
        )
    current = facts.bandwidth
    quote = changes.upgrade_quote(changes.BANDWIDTH, prices, row, facts, current, target, ctx.now)
    return InquiryPriceInstanceBandwidthResponse(
        bandwidth_price=[prepaid_item(prices, quote, "Mbps")]
    )


@action(
    "CancelInstanceBandwidthDowngrade",
    request=InstanceIdRequest,
    response=EmptyResponse,
    write=True,
    direct=True,
)
def cancel_instance_bandwidth_downgrade(ctx: Context, req: InstanceIdRequest) -> EmptyResponse:
    """Withdraw a bandwidth downgrade waiting for the next billing cycle."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=True)
    if row.internet_charge_type != BY_BANDWIDTH:
        raise errors.InternetChargeTypeNotSupport(
            required=BY_BANDWIDTH, actual=row.internet_charge_type
        )
    if row.bw_status != WAIT_TO_ENABLE:
        raise errors.DowngradeNotExist(instance_id=req.instance_id, what="bandwidth")
    changes.cancel_downgrade(ctx, changes.BANDWIDTH, row)
    return EmptyResponse()
