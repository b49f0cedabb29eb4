"""ModifyInstanceTrafficPackage (seed page), InquiryPriceInstanceTrafficPackage and
CancelInstanceTrafficPackageDowngrade through the official SDK, in both API versions; and the
exact multiple-of-0.05 rule as a property."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.harness import V2022, V2026, Stack, Tenant, next_second
from tests.test_bandwidth import (
    CENT,
    PRICE_KEYS_2022,
    PRICE_KEYS_2026,
    assert_error,
    call,
    charges,
    expected_charge,
    instance_info,
    internet,
    money,
    order,
    raw,
    seconds,
    wait_enabled,
    wait_order_state,
)
from zbmc.domain.sizes import is_valid_package_size, tb_to_gb

MODIFY = "ModifyInstanceTrafficPackage"
INQUIRE = "InquiryPriceInstanceTrafficPackage"
CANCEL = "CancelInstanceTrafficPackageDowngrade"


def modify(tenant: Tenant, version: str, instance_id: str, size: float) -> Any:
    return call(tenant, version, MODIFY, instanceId=instance_id, trafficPackageSize=size)


def package_state(tenant: Tenant, version: str, instance_id: str) -> tuple[Any, Any, Any]:
    s = internet(tenant, version, instance_id)
    return s.trafficPackageSize, s.modifiedTrafficPackageSize, s.modifiedTrafficPackageStatus


def by_package(tenant: Tenant, **options: Any) -> str:
    return tenant.instance(internet_charge_type="ByTrafficPackage", **options)


# --- refusals -----------------------------------------------------------------------------------


def test_wrong_charge_type_or_no_package_is_refused(tenant: Tenant, version: str) -> None:
    cases = [
        (tenant.instance(), "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT", 403),
        (
            by_package(tenant, traffic_package="none"),
            "OPERATION_FAILED_INSTANCE_NOT_EXIST_TRAFFIC_PACKAGE",
            403,
        ),
        ("999999999999999999", "INVALID_INSTANCE_NOT_FOUND", 404),
        (tenant.stack.tenant().instance(), "INVALID_INSTANCE_NOT_FOUND", 404),
    ]
    for iid, code, status in cases:
        assert_error(tenant, version, MODIFY, code, status, instanceId=iid, trafficPackageSize=2)
    assert tenant.orders() == []


@pytest.mark.parametrize(
    ("size", "code"),
    [
        (0.07, "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR"),
        (-0.05, "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR"),
        (1e-30, "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR"),
        (0.050000001, "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR"),
        (1.0500001, "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR"),
        # exact multiples of 0.05 that are below the 0.5 TB default of SEL-A
        (0.15, "INVALID_PARAMETER_TRAFFIC_PACKAGE_LESS"),
        (0.3, "INVALID_PARAMETER_TRAFFIC_PACKAGE_LESS"),
        (0.45, "INVALID_PARAMETER_TRAFFIC_PACKAGE_LESS"),
        (0, "INVALID_PARAMETER_TRAFFIC_PACKAGE_LESS"),
        (100.05, "INVALID_PARAMETER_TRAFFIC_PACKAGE_EXCEED"),
        (1e300, "INVALID_PARAMETER_TRAFFIC_PACKAGE_EXCEED"),
    ],
)
def test_invalid_sizes(tenant: Tenant, version: str, size: float, code: str) -> None:
    iid = by_package(tenant, traffic_package="2")
    for action in (MODIFY, INQUIRE):
        assert_error(tenant, version, action, code, 400, instanceId=iid, trafficPackageSize=size)
    assert tenant.orders() == []
    assert package_state(tenant, version, iid) == (2.0, None, "Enable")


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1" + "0" * 5000, "0." + "0" * 5000 + "5"])
def test_absurd_numbers_are_client_errors(tenant: Tenant, version: str, literal: str) -> None:
    iid = by_package(tenant)
    key = (tenant.access_key_id, tenant.access_key_password)
    for action in (MODIFY, INQUIRE):
        body = f'{{"instanceId": "{iid}", "trafficPackageSize": {literal}}}'
        response = tenant.stack.raw(body, action=action, version=version, key=key)
        assert response.status_code == 400, response.text
        assert response.json()["code"].startswith("INVALID_PARAMETER")
    assert tenant.orders() == []


def test_scheduled_downgrade_blocks_and_can_be_cancelled(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    iid = by_package(tenant, traffic_package="2")
    number = modify(tenant, version, iid, 1.05).orderNumber
    assert package_state(tenant, version, iid) == (2.0, 1.05, "WaitToEnable")
    assert instance_info(tenant, version, iid).trafficPackageSize == 2.0
    placed = order(stack, number)
    assert (placed["kind"], placed["state"], money(placed["amount"])) == (
        "TRAFFIC_PACKAGE",
        "WAIT_TO_ENABLE",
        Decimal("0.00"),
    )
    assert seconds(placed["effectiveAt"]) == seconds(
        instance_info(tenant, version, iid).expiredTime
    )
    for size in (3, 0.5, 1.05):
        assert_error(
            tenant,
            version,
            MODIFY,
            "OPERATION_FAILED_INSTANCE_EXIST_PLAN_TRAFFIC_PACKAGE",
            403,
            instanceId=iid,
            trafficPackageSize=size,
        )
    assert call(tenant, version, CANCEL, instanceId=iid).requestId
    assert package_state(tenant, version, iid) == (2.0, None, "Enable")
    assert order(stack, number)["state"] == "CANCELLED"
    assert_error(
        tenant, version, CANCEL, "OPERATION_DENIED_DOWNGRADE_NOT_EXIST", 404, instanceId=iid
    )
    assert tenant.balance() == Decimal("1000.00")
    assert charges(tenant) == []


def test_cancel_refusals(tenant: Tenant, version: str) -> None:
    cases = [
        (tenant.instance(), "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT", 403),
        (by_package(tenant), "OPERATION_DENIED_DOWNGRADE_NOT_EXIST", 404),
        ("999999999999999999", "INVALID_INSTANCE_NOT_FOUND", 404),
    ]
    for iid, code, status in cases:
        assert_error(tenant, version, CANCEL, code, status, instanceId=iid)


def test_a_change_in_processing_blocks_the_next(make_stack: Any) -> None:
    slow = make_stack(ZBMC_DRIVER_DELAY_SECONDS="3600")
    tenant = slow.tenant()
    for version in (V2022, V2026):
        iid = by_package(tenant, instance_charge_type="POSTPAID")
        number = modify(tenant, version, iid, 2).orderNumber
        assert package_state(tenant, version, iid) == (0.0, 2.0, "Processing")
        assert instance_info(tenant, version, iid).trafficPackageSize == 0.0
        for size in (3, 0.5):
            assert_error(
                tenant,
                version,
                MODIFY,
                "OPERATION_DENIED_INSTANCE_TRAFFIC_PACKAGE_PROCESSING",
                403,
                instanceId=iid,
                trafficPackageSize=size,
            )
        assert order(slow, number)["state"] == "PROCESSING"
        assert_error(
            tenant, version, CANCEL, "OPERATION_DENIED_DOWNGRADE_NOT_EXIST", 404, instanceId=iid
        )


# --- accepted changes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "target", "status"),
    [(None, 2.5, "RUNNING"), ("1", 3.05, "STOPPED"), (None, 1.05, "RUNNING")],
)
def test_prepaid_upgrade_charges_the_prorated_price(
    stack: Stack, tenant: Tenant, version: str, start: str | None, target: float, status: str
) -> None:
    options = {} if start is None else {"traffic_package": start}
    iid = by_package(tenant, status=status, **options)
    current = 0.5 if start is None else float(start)
    number = modify(tenant, version, iid, target).orderNumber
    (entry,) = charges(tenant)
    units = Decimal(str(target)) - Decimal(str(current))  # both at or above the 0.5 TB default
    original, discounted = expected_charge(tenant, version, iid, entry, units, "10.00")
    assert original == discounted
    assert abs(discounted - units * 10) <= CENT
    assert money(entry["amount"]) == -discounted
    assert tenant.balance() == Decimal("1000.00") - discounted
    assert money(order(stack, number)["amount"]) == discounted
    assert wait_order_state(stack, number, "ENABLED")["toValue"] == int(Decimal(str(target)) * 1000)
    wait_enabled(tenant, version, iid)
    assert package_state(tenant, version, iid) == (target, None, "Enable")
    info = instance_info(tenant, version, iid)
    assert (info.trafficPackageSize, info.instanceStatus) == (target, status)


def test_insufficient_balance_changes_nothing(stack: Stack, version: str) -> None:
    poor = stack.tenant(balance="15.00")
    iid = by_package(poor)
    assert_error(
        poor,
        version,
        MODIFY,
        "OPERATION_DENIED_BALANCE_INSUFFICIENT",
        403,
        instanceId=iid,
        trafficPackageSize=2.5,  # ~20.00
    )
    assert poor.balance() == Decimal("15.00")
    assert poor.orders() == []
    assert package_state(poor, version, iid) == (0.5, None, "Enable")


def test_postpaid_changes_are_immediate_and_free(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    iid = by_package(tenant, instance_charge_type="POSTPAID", status="STOPPED")
    numbers = set()
    # a postpaid instance starts without a package and may go back to none (0.25: below the free
    # 0.5 TB, which only prepaid packages must reach)
    for size in (1.05, 0.55, 100, 0.5, 0.25, 0, 2.35):
        number = modify(tenant, version, iid, size).orderNumber
        numbers.add(number)
        assert money(order(stack, number)["amount"]) == Decimal("0.00")
        wait_order_state(stack, number, "ENABLED")
        wait_enabled(tenant, version, iid)
        assert package_state(tenant, version, iid) == (size, None, "Enable")
    assert len(numbers) == 7
    next_second()  # the same signed request again would be a replay
    assert modify(tenant, version, iid, 2.35).orderNumber is None  # same value (spec Q-N7)
    assert len(tenant.orders()) == 7
    assert tenant.balance() == Decimal("1000.00")


def test_prepaid_same_size_succeeds_without_an_order(tenant: Tenant, version: str) -> None:
    iid = by_package(tenant, traffic_package="2")
    assert modify(tenant, version, iid, 2.0).orderNumber is None
    assert tenant.orders() == []
    assert package_state(tenant, version, iid) == (2.0, None, "Enable")


# --- InquiryPriceInstanceTrafficPackage ---------------------------------------------------------


def test_inquiry_quotes_exactly_what_the_upgrade_charges(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    iid = by_package(tenant)
    package, overage = call(
        tenant, version, INQUIRE, instanceId=iid, trafficPackageSize=7.35
    ).trafficPackagePrice
    number = modify(tenant, version, iid, 7.35).orderNumber
    (entry,) = charges(tenant)
    assert money(package.discountPrice) == -money(entry["amount"])
    assert money(package.discountPrice) == money(order(stack, number)["amount"])
    assert abs(money(package.originalPrice) - Decimal("68.50")) <= CENT  # 6.85 TB x 10.00
    assert (package.unitPrice, package.discountUnitPrice, package.chargeUnit) == (None, None, None)
    (step,) = overage.stepPrices
    assert (step.stepStart, step.stepEnd, step.unitPrice, step.discountUnitPrice) == (
        0.0,
        None,
        0.01,
        0.01,
    )


def test_inquiry_price_shapes(tenant: Tenant, version: str) -> None:
    prepaid = by_package(tenant)
    postpaid = by_package(tenant, instance_charge_type="POSTPAID")
    keys = PRICE_KEYS_2026 if version == V2026 else PRICE_KEYS_2022
    for iid in (prepaid, postpaid):
        response = raw(tenant, version, INQUIRE, instanceId=iid, trafficPackageSize=2.5)
        assert response.status_code == 200
        items = response.json()["response"]["trafficPackagePrice"]
        assert [set(item) for item in items] == [keys, keys]
        assert items[1]["stepPrices"] == [
            {"stepStart": 0.0, "stepEnd": None, "unitPrice": 0.01, "discountUnitPrice": 0.01}
        ]
        if version == V2026:
            assert (items[1]["excessUnitPrice"], items[1]["excessAmountUnit"]) == (0.01, "GB")
    package, _ = call(
        tenant, version, INQUIRE, instanceId=postpaid, trafficPackageSize=2.5
    ).trafficPackagePrice
    assert (package.originalPrice, package.discountPrice) == (None, None)
    # The hourly rate of the billable part: (2.5 - 0.5 default) TB x 0.02.
    assert (package.unitPrice, package.discountUnitPrice, package.chargeUnit) == (
        0.04,
        0.04,
        "HOUR",
    )
    package, _ = call(
        tenant, version, INQUIRE, instanceId=prepaid, trafficPackageSize=2.5
    ).trafficPackagePrice
    assert package.discount == 100.0
    assert abs(money(package.discountPrice) - Decimal("20.00")) <= CENT


def test_inquiry_refusals(tenant: Tenant, version: str) -> None:
    cases = [
        (tenant.instance(), "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT", 403),
        ("999999999999999999", "INVALID_INSTANCE_NOT_FOUND", 404),
    ]
    for iid, code, status in cases:
        assert_error(tenant, version, INQUIRE, code, status, instanceId=iid, trafficPackageSize=2)


# --- the multiple-of-0.05 rule, exactly ---------------------------------------------------------

decimals = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), min_size=1, max_size=40),
    st.integers(-45, 45),
)


@given(decimals)
def test_package_size_rule_matches_fraction_arithmetic(value: Decimal) -> None:
    exact = Fraction(value)
    expected = exact >= 0 and (exact / Fraction(1, 20)).denominator == 1
    assert is_valid_package_size(value) is expected
    if expected and exact < 10**9:
        assert tb_to_gb(value) == exact * 1000


@given(st.integers(0, 10**6), st.integers(0, 60))
def test_multiples_of_005_in_any_notation_are_valid(twentieths: int, zeros: int) -> None:
    # k x 0.05 written with ``zeros`` extra trailing zeros, and the same plus one tiny digit
    padded = f"{twentieths * 5}{'0' * zeros}"
    assert is_valid_package_size(Decimal(f"{padded}E-{2 + zeros}"))
    assert not is_valid_package_size(Decimal(f"{padded}1E-{3 + zeros}"))


@pytest.mark.parametrize("special", ["NaN", "sNaN", "Infinity", "-Infinity", "-0.05"])
def test_special_values_are_invalid(special: str) -> None:
    assert not is_valid_package_size(Decimal(special))
