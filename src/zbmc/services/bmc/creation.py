"""InquiryPriceCreateInstance and CreateInstances (spec instances.md §0, §5, §6).

Checks run in the order of spec Q14: unknown ids (404) → what is sold where (zone/model, charge
types) → formats → state (stock, balance). Then one transaction takes the stock, charges a
PREPAID request's first periods, writes one order, allocates addresses and inserts the
instances as CREATING for the worker to bring up (docs/behaviour.md, "Creating instances").
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pydantic import Field
from sqlalchemy import select

from zbmc import errors, offers
from zbmc.billing.purchases import Purchase, purchase
from zbmc.context import Context
from zbmc.db.tables import images
from zbmc.domain import creation
from zbmc.domain.changes import BY_BANDWIDTH, BY_TRAFFIC_PACKAGE, PREPAID
from zbmc.domain.pricing import CreationQuote, PriceList, Quote
from zbmc.registry import action
from zbmc.services.bmc.instances import Tag
from zbmc.services.bmc.prices import HOUR, STANDARD, PriceItem, overage_item
from zbmc.store import resource_groups
from zbmc.wire import RequiredStr, WireFloat, WireModel

BY_BANDWIDTH_CLUSTER = "ByBandwidthCluster"
MAX_USER_DATA = 32 * 1024
IPXE_URL = re.compile(r"^(netboot|https?://\S+)$")


class InquiryPriceCreateInstanceRequest(WireModel):
    zone_id: RequiredStr
    instance_type_id: RequiredStr
    instance_charge_type: RequiredStr
    internet_charge_type: RequiredStr
    instance_charge_prepaid: offers.ChargePrepaid | None = None
    traffic_package_size: WireFloat | None = None
    internet_max_bandwidth_out: int | None = None


class InquiryPriceCreateInstanceResponse(WireModel):
    instance_price: PriceItem | None = None
    bandwidth_price: list[PriceItem] = Field(default_factory=list)
    primary_ip_price: PriceItem | None = None


def _item(prices: PriceList, quote: CreationQuote, raw: Quote, unit: str | None) -> PriceItem:
    """One part of a creation quote: a PREPAID total, or a POSTPAID hourly rate."""
    if quote.prepaid:
        return PriceItem(
            discount=float(prices.discount),
            original_price=float(raw.original),
            discount_price=float(raw.discounted),
            amount_unit=unit,
            category=STANDARD,
        )
    return PriceItem(
        discount=float(prices.discount),
        unit_price=float(raw.original),
        discount_unit_price=float(raw.discounted),
        charge_unit=HOUR,
        amount_unit=unit,
        category=STANDARD,
    )


@action(
    "InquiryPriceCreateInstance",
    request=InquiryPriceCreateInstanceRequest,
    response=InquiryPriceCreateInstanceResponse,
    write=False,
)
def inquiry_price_create_instance(
    ctx: Context, req: InquiryPriceCreateInstanceRequest
) -> InquiryPriceCreateInstanceResponse:
    """The price of one instance: PREPAID totals for the period, POSTPAID hourly rates."""
    offer = offers.find(ctx.conn, req.zone_id, req.instance_type_id)
    period = offers.check_sellable(
        offer, req.instance_charge_type, req.internet_charge_type, req.instance_charge_prepaid
    )
    net = offers.network(
        offer,
        req.instance_charge_type,
        req.internet_charge_type,
        req.internet_max_bandwidth_out,
        req.traffic_package_size,
    )
    quote = offers.quote(offer, req.internet_charge_type, period, net)
    prices = offer.prices
    bandwidth: list[PriceItem] = []
    if req.internet_charge_type == BY_TRAFFIC_PACKAGE:
        bandwidth = [_item(prices, quote, quote.network, "TB"), overage_item(prices)]
    elif req.internet_charge_type == BY_BANDWIDTH:
        bandwidth = [_item(prices, quote, quote.network, "Mbps")]
    free = Quote(Decimal(0), Decimal(0))  # the primary IP comes with the instance
    return InquiryPriceCreateInstanceResponse(
        instance_price=_item(prices, quote, quote.instance, None),
        bandwidth_price=bandwidth,
        primary_ip_price=_item(prices, quote, free, "IP"),
    )


class CustomRaid(WireModel):
    raid_type: int
    disk_sequence: list[int]


class RaidConfig(WireModel):
    raid_type: int | None = None
    custom_raids: list[CustomRaid] | None = None


class Partition(WireModel):
    fs_path: RequiredStr
    fs_type: RequiredStr
    size: int


class NicNames(WireModel):
    wan_name: str | None = None
    lan_name: str | None = None


class MarketingInfo(WireModel):
    discount_code: str | None = None
    use_poc_voucher: bool | None = None


class TagAssociation(WireModel):
    tags: list[Tag] | None = None


class CreateInstancesRequest(WireModel):
    zone_id: RequiredStr
    instance_charge_type: RequiredStr
    instance_charge_prepaid: offers.ChargePrepaid | None = None
    instance_type_id: RequiredStr
    internet_charge_type: RequiredStr
    image_id: str | None = None
    ipxe_url: str | None = None
    resource_group_id: str | None = None
    instance_name: str | None = None
    hostname: str | None = None
    amount: int | None = None
    password: str | None = None
    key_id: str | None = None
    ssh_keys: list[str] | None = None  # 2022-11-20 only; accepted in both (spec §8)
    internet_max_bandwidth_out: int | None = None
    traffic_package_size: WireFloat | None = None
    subnet_id: str | None = None
    raid_config: RaidConfig | None = None
    partitions: list[Partition] | None = None
    nic: NicNames | None = None
    user_data: str | None = None
    enable_primary_i_pv6: bool | None = Field(default=None, alias="enablePrimaryIPv6")
    cluster_id: str | None = None
    marketing_options: MarketingInfo | None = None
    tags: TagAssociation | None = None
    enable_gateway_mode: bool | None = None


class CreateInstancesResponse(WireModel):
    instance_id_set: list[str] = Field(default_factory=list)
    order_number: str | None = None


def _not_found(ctx: Context, req: CreateInstancesRequest) -> tuple[offers.Offer, Any, str | None]:
    offer = offers.find(ctx.conn, req.zone_id, req.instance_type_id)
    image = None
    if req.image_id:
        image = ctx.conn.execute(select(images).where(images.c.image_id == req.image_id)).first()
        if image is None:
            raise errors.ImageNotFound(image_id=req.image_id)
    if req.subnet_id:  # zbmc has no subnets yet (docs/behaviour.md)
        raise errors.SubnetNotFound(subnet_id=req.subnet_id)
    group = resource_groups.resolve(ctx.conn, ctx.tenant_id, req.resource_group_id)
    if req.internet_charge_type == BY_BANDWIDTH_CLUSTER:
        if not req.cluster_id:
            raise errors.MissingParameter(name="clusterId")
        raise errors.ResourceNotFound(
            detail=f"The bandwidth cluster `{req.cluster_id}` is not found."
        )
    return offer, image, group


def _tags(req: CreateInstancesRequest) -> list[dict[str, str]]:
    tags = (req.tags.tags if req.tags else None) or []
    keys = [t.key for t in tags]
    if len(set(keys)) != len(keys):
        raise errors.InvalidParameter(detail="invalid parameter `tags`: keys must be unique")
    for t in tags:
        if not (1 <= len(t.key) <= 128 and 1 <= len(t.value) <= 128):
            raise errors.InvalidParameter(
                detail="invalid parameter `tags`: keys and values have 1-128 characters"
            )
    return [{"key": t.key, "value": t.value} for t in tags]


def storage(
    raid: RaidConfig | None, partitions: list[Partition] | None, model: Any, image: Any
) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
    """Check a RAID config and partitions against the model's disks and the image (creation
    and reinstall); return them in their stored form."""
    disks = creation.Model(
        model.instance_type_id, tuple(model.support_raids), creation.disk_sizes(model.disks)
    )
    custom = [(c.raid_type, c.disk_sequence) for c in (raid.custom_raids or [])] if raid else []
    capacity = creation.check_raid(disks, raid.raid_type if raid else None, custom)
    stored_raid = (
        None
        if raid is None or (raid.raid_type is None and not custom)
        else {
            "raidType": raid.raid_type,
            "customRaids": [{"raidType": t, "diskSequence": s} for t, s in custom] or None,
        }
    )
    if partitions is None:
        return stored_raid, None
    creation.check_partitions(
        [(p.fs_path, p.fs_type, p.size) for p in partitions],
        image.os_type.lower() if image is not None else None,
        image.catalog.lower() if image is not None else None,
        capacity,
    )
    parts = [{"fsPath": p.fs_path, "fsType": p.fs_type, "size": p.size} for p in partitions]
    return stored_raid, parts


@action(
    "CreateInstances",
    request=CreateInstancesRequest,
    response=CreateInstancesResponse,
    write=True,
)
def create_instances(ctx: Context, req: CreateInstancesRequest) -> CreateInstancesResponse:
    """Create 1-100 instances of one configuration: stock, charge, order, addresses, CREATING."""
    offer, image, group = _not_found(ctx, req)
    period = offers.check_sellable(
        offer, req.instance_charge_type, req.internet_charge_type, req.instance_charge_prepaid
    )
    if image is not None and image.image_id not in offer.model.image_ids:
        raise errors.ImageNotFound(
            f"The specified imageId `{image.image_id}` is not available for instance type "
            f"`{offer.model.instance_type_id}`."
        )
    amount = 1 if req.amount is None else req.amount
    if not 1 <= amount <= creation.MAX_AMOUNT:
        raise errors.InvalidParameter(detail="invalid parameter `amount`: must be 1..100")
    names = creation.instance_names(
        "instance" if req.instance_name is None else req.instance_name, amount
    )
    hosts = creation.hostnames("hostname" if req.hostname is None else req.hostname, amount)
    creation.check_login(req.password, req.key_id, req.ssh_keys)
    if req.key_id is not None and (len(req.key_id) > 64 or not req.key_id.strip()):
        raise errors.InvalidParameter(detail="invalid parameter `keyId`")
    if req.key_id and image is not None and image.os_type.lower() == "windows":
        raise errors.InvalidParameter(detail="keyId cannot be used with a Windows image")
    if req.ipxe_url is not None:
        if req.image_id:
            raise errors.InvalidParameter(detail="give imageId or ipxeUrl, not both")
        if len(req.ipxe_url) > 1024 or not IPXE_URL.match(req.ipxe_url):
            raise errors.InvalidParameter(
                detail="invalid parameter `ipxeUrl`: an http(s) URL or `netboot`"
            )
    raid, partitions = storage(req.raid_config, req.partitions, offer.model, image)
    nic = req.nic or NicNames()
    wan, lan = creation.nic_names(nic.wan_name, nic.lan_name, bool(offer.model.is_ha))
    tags = _tags(req)
    if req.user_data is not None and len(req.user_data.encode()) > MAX_USER_DATA:
        raise errors.InvalidParameter(detail="invalid parameter `userData`: at most 32 KB")
    if req.marketing_options is not None and req.marketing_options.use_poc_voucher:
        raise errors.InvalidParameter(detail="no POC voucher is available for this account")
    net = offers.network(
        offer,
        req.instance_charge_type,
        req.internet_charge_type,
        req.internet_max_bandwidth_out,
        req.traffic_package_size,
    )
    done = purchase(
        ctx.conn,
        Purchase(
            tenant_id=ctx.tenant_id,
            offer=offer,
            prepaid=req.instance_charge_type == PREPAID,
            internet_charge_type=req.internet_charge_type,
            period=period,
            network=net,
            quote=offers.quote(offer, req.internet_charge_type, period, net),
            names=names,
            hostnames=hosts,
            image_id=image.image_id if image is not None else None,
            ipxe_url=req.ipxe_url,
            key_id=req.key_id,
            resource_group_id=group,
            raid_config=raid,
            partitions=partitions,
            nic={"wanName": wan, "lanName": lan},
            tags=tags,
            ipv6=req.enable_primary_i_pv6 is not False,
            gateway_mode=bool(req.enable_gateway_mode),
        ),
        ctx.now,
    )
    return CreateInstancesResponse(
        instance_id_set=done.instance_ids, order_number=done.order_number
    )
