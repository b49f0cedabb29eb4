"""ModifyInstanceBandwidth (seed page), InquiryPriceInstanceBandwidth and
CancelInstanceBandwidthDowngrade through the official SDK, in both API versions.

The helpers at the top are shared with test_traffic_package.py and test_internet_status.py.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.harness import V2022, V2026, Stack, Tenant, next_second, wait_until

PRICE_KEYS_2022 = {
    "discount",
    "discountPrice",
    "originalPrice",
    "unitPrice",
    "discountUnitPrice",
    "chargeUnit",
    "stepPrices",
}
PRICE_KEYS_2026 = PRICE_KEYS_2022 | {
    "amountUnit",
    "excessUnitPrice",
    "excessDiscountUnitPrice",
    "excessAmountUnit",
    "category",
}
CENT = Decimal("0.01")


# --- helpers shared by the internet test modules -----------------------------------------------


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return __import__(f"zenlayercloud.bmc.{module}.models", fromlist=["models"])


def call(tenant: Tenant, version: str, action: str, **fields: Any) -> Any:
    """One SDK call: ``fields`` are the request's wire (camelCase) names."""
    request = getattr(models(version), f"{action}Request")()
    for name, value in fields.items():
        setattr(request, name, value)
    return getattr(tenant.client(version), action)(request)


def raw(tenant: Tenant, version: str, action: str, **fields: Any) -> Any:
    """The same call signed with the tenant's key, for the HTTP status and the exact JSON."""
    key = (tenant.access_key_id, tenant.access_key_password)
    return tenant.stack.raw(fields, action=action, version=version, key=key)


def assert_error(
    tenant: Tenant, version: str, action: str, code: str, status: int, **fields: Any
) -> None:
    """The SDK raises ``code``; the same request, sent by hand, answers HTTP ``status``."""
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        call(tenant, version, action, **fields)
    assert caught.value.code == code, caught.value.message
    response = raw(tenant, version, action, **fields)
    body = response.json()
    assert (response.status_code, body["code"]) == (status, code), body
    assert set(body) == {"requestId", "code", "message"}


def internet(tenant: Tenant, version: str, instance_id: str) -> Any:
    return call(tenant, version, "DescribeInstanceInternetStatus", instanceId=instance_id)


def wait_enabled(tenant: Tenant, version: str, instance_id: str) -> Any:
    return wait_until(
        lambda: (
            s
            if (s := internet(tenant, version, instance_id)).modifiedBandwidthStatus == "Enable"
            and s.modifiedTrafficPackageStatus in (None, "Enable")
            else None
        )
    )


def instance_info(tenant: Tenant, version: str, instance_id: str) -> Any:
    response = call(tenant, version, "DescribeInstances", instanceIds=[instance_id])
    (info,) = response.dataSet
    return info


def order(stack: Stack, number: str) -> dict[str, Any]:
    return dict(stack.admin.json("order", number))


def wait_order_state(stack: Stack, number: str, state: str) -> dict[str, Any]:
    return dict(wait_until(lambda: o if (o := order(stack, number))["state"] == state else None))


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def seconds(iso_time: str) -> int:
    return int(datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp())


def prorated(
    units: Decimal, month_price: str, period: int, now: int, start: int, end: int, discount: str
) -> tuple[Decimal, Decimal]:
    """(original, discounted) prepaid upgrade price, as docs/billing.md defines it."""
    raw_amount = units * Decimal(month_price) * period * Decimal(end - now) / Decimal(end - start)
    discounted = raw_amount * Decimal(discount) / 100
    return (
        raw_amount.quantize(CENT, rounding=ROUND_HALF_UP),
        discounted.quantize(CENT, rounding=ROUND_HALF_UP),
    )


def charges(tenant: Tenant) -> list[dict[str, Any]]:
    return [e for e in tenant.ledger() if e["kind"] == "CHARGE"]


def expected_charge(
    tenant: Tenant,
    version: str,
    instance_id: str,
    entry: dict[str, Any],
    units: Decimal,
    month_price: str,
    discount: str = "100",
) -> tuple[Decimal, Decimal]:
    """The price of ``units`` more for the rest of the period, at the moment of ``entry``."""
    info = instance_info(tenant, version, instance_id)
    assert seconds(entry["periodEnd"]) == seconds(info.expiredTime)
    return prorated(
        units,
        month_price,
        info.period,
        seconds(entry["periodStart"]),
        seconds(info.createTime),  # fresh instance: its period started when it was created
        seconds(info.expiredTime),
        discount,
    )


# --- ModifyInstanceBandwidth: refusals ---------------------------------------------------------


def modify(tenant: Tenant, version: str, instance_id: str, mbps: int) -> Any:
    return call(
        tenant, version, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=mbps
    )


def test_stopped_instance_is_refused(tenant: Tenant, version: str) -> None:
    iid = tenant.instance(status="STOPPED")
    assert_error(
        tenant,
        version,
        "ModifyInstanceBandwidth",
        "OPERATION_DENIED_INSTANCE_NOT_RUNNING",
        403,
        instanceId=iid,
        bandwidthOutMbps=200,
    )
    assert internet(tenant, version, iid).internetMaxBandwidthOut == 100
    assert tenant.orders() == []


def test_ha_type_is_refused(tenant: Tenant, version: str) -> None:
    for status in ("RUNNING", "STOPPED"):  # the HA check comes first (spec §2 rule 0)
        iid = tenant.instance(type="M6C-HA", status=status)
        assert_error(
            tenant,
            version,
            "ModifyInstanceBandwidth",
            "OPERATION_DENIED_HA_MODEL_TYPE_NOT_SUPPORT_BANDWIDTH",
            403,
            instanceId=iid,
            bandwidthOutMbps=200,
        )
        assert_error(  # no price is quoted for a change that would be refused
            tenant,
            version,
            "InquiryPriceInstanceBandwidth",
            "OPERATION_DENIED_HA_MODEL_TYPE_NOT_SUPPORT_BANDWIDTH",
            403,
            instanceId=iid,
            bandwidthOutMbps=200,
        )
    assert tenant.orders() == []


@pytest.mark.parametrize(("instance_type", "maximum"), [("M6C", 10000), ("M6S", 5000)])
def test_bandwidth_outside_one_to_type_maximum(
    tenant: Tenant, version: str, instance_type: str, maximum: int
) -> None:
    iid = tenant.instance(type=instance_type, instance_charge_type="POSTPAID")
    for mbps in (0, -1, maximum + 1):
        assert_error(
            tenant,
            version,
            "ModifyInstanceBandwidth",
            "INVALID_PARAMETER_BANDWIDTH_EXCEED",
            400,
            instanceId=iid,
            bandwidthOutMbps=mbps,
        )
    assert tenant.orders() == []
    modify(tenant, version, iid, maximum)
    assert wait_enabled(tenant, version, iid).internetMaxBandwidthOut == maximum


def test_unknown_and_foreign_instances_are_not_found(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    other = stack.tenant()
    foreign = other.instance()
    for iid in ("999999999999999999", foreign):
        assert_error(
            tenant,
            version,
            "ModifyInstanceBandwidth",
            "INVALID_INSTANCE_NOT_FOUND",
            404,
            instanceId=iid,
            bandwidthOutMbps=200,
        )
    assert other.orders() == []
    assert internet(other, version, foreign).internetMaxBandwidthOut == 100


# --- ModifyInstanceBandwidth: accepted changes -------------------------------------------------


def test_change_inside_free_bandwidth_is_immediate_and_free(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    iid = tenant.instance(bandwidth=5)  # PREPAID ByBandwidth, free allowance 10 Mbps in SEL-A
    numbers = []
    for target in (10, 3):  # up and down: both stay inside the allowance, so both are immediate
        number = modify(tenant, version, iid, target).orderNumber
        numbers.append(number)
        placed = order(stack, number)
        assert (placed["kind"], placed["toValue"], money(placed["amount"])) == (
            "BANDWIDTH",
            target,
            Decimal("0.00"),
        )
        assert placed["state"] in ("PROCESSING", "ENABLED")
        wait_order_state(stack, number, "ENABLED")
        status = wait_enabled(tenant, version, iid)
        assert (status.internetMaxBandwidthOut, status.modifiedInternetMaxBandwidthOut) == (
            target,
            None,
        )
    assert len(set(numbers)) == 2
    assert all(n.isdigit() for n in numbers)
    assert tenant.balance() == Decimal("1000.00")
    assert charges(tenant) == []


@pytest.mark.parametrize(("start", "target", "period"), [(100, 200, 1), (5, 50, 3)])
def test_prepaid_upgrade_charges_the_prorated_price(
    stack: Stack, tenant: Tenant, version: str, start: int, target: int, period: int
) -> None:
    iid = tenant.instance(bandwidth=start, period=period)
    number = modify(tenant, version, iid, target).orderNumber
    (entry,) = charges(tenant)
    billable = Decimal(target - max(start, 10))
    original, discounted = expected_charge(tenant, version, iid, entry, billable, "2.00")
    assert original == discounted
    # A fresh instance has (almost) its whole period ahead: the full monthly delta.
    assert abs(discounted - billable * 2 * period) <= CENT
    assert money(entry["amount"]) == -discounted
    assert entry["orderNumber"] == number
    assert tenant.balance() == Decimal("1000.00") - discounted
    placed = order(stack, number)
    assert money(placed["amount"]) == discounted
    assert seconds(placed["createdAt"]) == seconds(entry["periodStart"])
    assert placed["state"] in ("PROCESSING", "ENABLED")
    assert wait_order_state(stack, number, "ENABLED")["toValue"] == target
    status = wait_enabled(tenant, version, iid)
    assert (status.internetMaxBandwidthOut, status.modifiedInternetMaxBandwidthOut) == (
        target,
        None,
    )
    assert instance_info(tenant, version, iid).bandwidthOutMbps == target


def test_discount_applies_to_the_charge(tenant: Tenant, version: str) -> None:
    iid = tenant.instance(zone="FRA-A", bandwidth=100)  # 95 %, 1.50/Mbps, free 20 Mbps
    inquiry = call(
        tenant, version, "InquiryPriceInstanceBandwidth", instanceId=iid, bandwidthOutMbps=200
    ).bandwidthPrice
    modify(tenant, version, iid, 200)
    (entry,) = charges(tenant)
    original, discounted = expected_charge(
        tenant, version, iid, entry, Decimal(100), "1.50", discount="95"
    )
    assert abs(original - Decimal("150.00")) <= CENT
    assert abs(discounted - Decimal("142.50")) <= CENT
    assert money(entry["amount"]) == -discounted
    (price,) = inquiry
    assert (price.discount, money(price.originalPrice), money(price.discountPrice)) == (
        95.0,
        original,
        discounted,
    )


def test_insufficient_balance_changes_nothing(stack: Stack, version: str) -> None:
    poor = stack.tenant(balance="150.00")
    iid = poor.instance(bandwidth=100)
    assert_error(
        poor,
        version,
        "ModifyInstanceBandwidth",
        "OPERATION_DENIED_BALANCE_INSUFFICIENT",
        403,
        instanceId=iid,
        bandwidthOutMbps=200,  # costs ~200.00
    )
    assert poor.balance() == Decimal("150.00")
    assert poor.orders() == []
    assert charges(poor) == []
    status = internet(poor, version, iid)
    assert (
        status.internetMaxBandwidthOut,
        status.modifiedInternetMaxBandwidthOut,
        status.modifiedBandwidthStatus,
    ) == (100, None, "Enable")
    modify(poor, version, iid, 150)  # ~100.00 fits: the instance was left usable
    assert poor.balance() < Decimal("150.00")


def test_prepaid_downgrade_waits_and_can_be_cancelled(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    iid = tenant.instance(bandwidth=200)
    number = modify(tenant, version, iid, 100).orderNumber
    status = internet(tenant, version, iid)
    assert (
        status.internetMaxBandwidthOut,
        status.modifiedInternetMaxBandwidthOut,
        status.modifiedBandwidthStatus,
    ) == (200, 100, "WaitToEnable")
    assert instance_info(tenant, version, iid).bandwidthOutMbps == 200
    placed = order(stack, number)
    info = instance_info(tenant, version, iid)
    assert (placed["state"], money(placed["amount"])) == ("WAIT_TO_ENABLE", Decimal("0.00"))
    assert seconds(placed["effectiveAt"]) == seconds(info.expiredTime)
    assert tenant.balance() == Decimal("1000.00")
    # A waiting downgrade blocks another change (spec Q-N1), upgrade or downgrade alike.
    for target in (300, 50):
        assert_error(
            tenant,
            version,
            "ModifyInstanceBandwidth",
            "OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING",
            403,
            instanceId=iid,
            bandwidthOutMbps=target,
        )
    response = call(tenant, version, "CancelInstanceBandwidthDowngrade", instanceId=iid)
    assert response.requestId
    status = internet(tenant, version, iid)
    assert (
        status.internetMaxBandwidthOut,
        status.modifiedInternetMaxBandwidthOut,
        status.modifiedBandwidthStatus,
    ) == (200, None, "Enable")
    assert order(stack, number)["state"] == "CANCELLED"
    assert_error(
        tenant,
        version,
        "CancelInstanceBandwidthDowngrade",
        "OPERATION_DENIED_DOWNGRADE_NOT_EXIST",
        404,
        instanceId=iid,
    )
    assert tenant.balance() == Decimal("1000.00")


def test_cancel_downgrade_refusals(tenant: Tenant, version: str) -> None:
    by_package = tenant.instance(internet_charge_type="ByTrafficPackage")
    assert_error(
        tenant,
        version,
        "CancelInstanceBandwidthDowngrade",
        "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT",
        403,
        instanceId=by_package,
    )
    assert_error(
        tenant,
        version,
        "CancelInstanceBandwidthDowngrade",
        "INVALID_INSTANCE_NOT_FOUND",
        404,
        instanceId="999999999999999999",
    )


@pytest.mark.parametrize(
    ("instance_charge_type", "internet_charge_type"),
    [
        ("POSTPAID", "ByBandwidth"),
        ("PREPAID", "ByTrafficPackage"),
        ("POSTPAID", "ByTrafficPackage"),
    ],
)
def test_unbilled_changes_are_immediate_and_free(
    stack: Stack, tenant: Tenant, version: str, instance_charge_type: str, internet_charge_type: str
) -> None:
    iid = tenant.instance(
        instance_charge_type=instance_charge_type, internet_charge_type=internet_charge_type
    )
    for target in (300, 50):  # upgrade and downgrade: neither waits for a billing cycle
        number = modify(tenant, version, iid, target).orderNumber
        assert money(order(stack, number)["amount"]) == Decimal("0.00")
        wait_order_state(stack, number, "ENABLED")
        status = wait_enabled(tenant, version, iid)
        assert (status.internetMaxBandwidthOut, status.modifiedInternetMaxBandwidthOut) == (
            target,
            None,
        )
    assert tenant.balance() == Decimal("1000.00")
    assert charges(tenant) == []


def test_same_value_succeeds_without_an_order(tenant: Tenant, version: str) -> None:
    iid = tenant.instance(bandwidth=100)
    response = raw(tenant, version, "ModifyInstanceBandwidth", instanceId=iid, bandwidthOutMbps=100)
    assert response.status_code == 200
    assert response.json()["response"]["orderNumber"] is None
    next_second()  # the same signed request again would be a replay
    assert modify(tenant, version, iid, 100).orderNumber is None
    assert tenant.orders() == []
    status = internet(tenant, version, iid)
    assert (status.internetMaxBandwidthOut, status.modifiedBandwidthStatus) == (100, "Enable")


def test_a_change_in_processing_blocks_the_next(make_stack: Any) -> None:
    slow = make_stack(ZBMC_DRIVER_DELAY_SECONDS="3600")
    tenant = slow.tenant()
    for version in (V2022, V2026):
        iid = tenant.instance(instance_charge_type="POSTPAID")
        number = modify(tenant, version, iid, 300).orderNumber
        status = internet(tenant, version, iid)
        assert (
            status.internetMaxBandwidthOut,
            status.modifiedInternetMaxBandwidthOut,
            status.modifiedBandwidthStatus,
        ) == (100, 300, "Processing")
        assert instance_info(tenant, version, iid).bandwidthOutMbps == 100
        for target in (400, 100):
            assert_error(
                tenant,
                version,
                "ModifyInstanceBandwidth",
                "OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING",
                403,
                instanceId=iid,
                bandwidthOutMbps=target,
            )
        assert order(slow, number)["state"] == "PROCESSING"
        assert_error(
            tenant,
            version,
            "CancelInstanceBandwidthDowngrade",
            "OPERATION_DENIED_DOWNGRADE_NOT_EXIST",
            404,
            instanceId=iid,
        )


# --- InquiryPriceInstanceBandwidth --------------------------------------------------------------


def inquire(tenant: Tenant, version: str, instance_id: str, mbps: int) -> Any:
    return call(
        tenant,
        version,
        "InquiryPriceInstanceBandwidth",
        instanceId=instance_id,
        bandwidthOutMbps=mbps,
    ).bandwidthPrice


def test_inquiry_quotes_exactly_what_the_upgrade_charges(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    iid = tenant.instance(bandwidth=100)
    (price,) = inquire(tenant, version, iid, 257)
    number = modify(tenant, version, iid, 257).orderNumber
    (entry,) = charges(tenant)
    assert money(price.discountPrice) == -money(entry["amount"])
    assert money(price.discountPrice) == money(order(stack, number)["amount"])
    assert money(price.originalPrice) == money(price.discountPrice)  # discount 100
    assert abs(money(price.discountPrice) - Decimal("314.00")) <= CENT


def test_inquiry_price_shapes(tenant: Tenant, version: str) -> None:
    prepaid = tenant.instance(bandwidth=100)
    postpaid = tenant.instance(bandwidth=100, instance_charge_type="POSTPAID")
    keys = PRICE_KEYS_2026 if version == V2026 else PRICE_KEYS_2022
    for iid in (prepaid, postpaid):
        response = raw(tenant, version, "InquiryPriceInstanceBandwidth", instanceId=iid)
        assert response.status_code == 400  # bandwidthOutMbps is required
        response = raw(
            tenant, version, "InquiryPriceInstanceBandwidth", instanceId=iid, bandwidthOutMbps=110
        )
        assert response.status_code == 200
        (item,) = response.json()["response"]["bandwidthPrice"]
        assert set(item) == keys
    (item,) = inquire(tenant, version, prepaid, 110)
    assert item.discount == 100.0
    assert abs(money(item.originalPrice) - Decimal("20.00")) <= CENT  # 10 Mbps more
    assert (item.unitPrice, item.discountUnitPrice, item.chargeUnit) == (None, None, None)
    (item,) = inquire(tenant, version, postpaid, 110)
    assert (item.originalPrice, item.discountPrice) == (None, None)
    # The hourly rate of the whole billable target: (110 - 10 free) x 0.004.
    assert (item.unitPrice, item.discountUnitPrice, item.chargeUnit) == (0.4, 0.4, "HOUR")
    for iid in (prepaid, postpaid):
        assert inquire(tenant, version, iid, 10) == []  # within the free allowance
        assert inquire(tenant, version, iid, 1) == []


def test_inquiry_refusals(tenant: Tenant, version: str) -> None:
    by_package = tenant.instance(internet_charge_type="ByTrafficPackage")
    by_bandwidth = tenant.instance(type="M6S")
    cases = [
        (by_package, 200, "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT", 403),
        (by_bandwidth, 0, "INVALID_PARAMETER_BANDWIDTH_EXCEED", 400),
        (by_bandwidth, 5001, "INVALID_PARAMETER_BANDWIDTH_EXCEED", 400),
        ("999999999999999999", 200, "INVALID_INSTANCE_NOT_FOUND", 404),
    ]
    for iid, mbps, code, status in cases:
        assert_error(
            tenant,
            version,
            "InquiryPriceInstanceBandwidth",
            code,
            status,
            instanceId=iid,
            bandwidthOutMbps=mbps,
        )
    assert tenant.orders() == []
