"""Property test: random sequences of bandwidth / traffic-package changes, cancellations, price
inquiries, power operations and top-ups on ONE tenant keep money, orders and statuses consistent.

The machine keeps its own model of every instance and of the balance, predicts each request's
outcome from the seed rules (spec internet.md §2, §5 and §9) and checks the invariants of
``tests/invariants.py`` after every step. Requests go through the official SDK (both versions)
or, to see the HTTP status too, as raw signed requests.

New rules (clock advances, worker ticks) can be added as further ``@rule`` methods: the model's
``settle`` and the invariant already tolerate Processing changes finishing in the background.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine
from zenlayercloud.bmc.v20260201 import models as sdk_models

from tests import invariants
from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant, wait_until
from tests.test_billing_cycles import run_worker

FREE_MBPS, MAX_MBPS = 10, 10_000  # SEL-A M6C / M6C-HA in the demo catalogue
DEFAULT_GB, MAX_GB = 500, 100_000
BANDWIDTH_MONTH, TB_MONTH = Decimal("2.00"), Decimal("10.00")
BANDWIDTH_HOUR, TB_HOUR = Decimal("0.004"), Decimal("0.02")
CENT = Decimal("0.01")
MISSING = "missing-instance"

# Error code -> HTTP status (seed pages and spec tables).
STATUS = {
    "INVALID_INSTANCE_NOT_FOUND": 404,
    "OPERATION_DENIED_INSTANCE_NOT_RUNNING": 403,
    "OPERATION_DENIED_INSTANCE_NOT_STOPPED": 403,
    "INVALID_PARAMETER_BANDWIDTH_EXCEED": 400,
    "OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING": 403,
    "OPERATION_DENIED_HA_MODEL_TYPE_NOT_SUPPORT_BANDWIDTH": 403,
    "OPERATION_DENIED_INSTANCE_STATUS_NOT_SUPPORT": 403,
    "OPERATION_FAILED_INSTANCE_EXIST_PLAN_TRAFFIC_PACKAGE": 403,
    "OPERATION_DENIED_INSTANCE_TRAFFIC_PACKAGE_PROCESSING": 403,
    "INVALID_PARAMETER_TRAFFIC_PACKAGE_LESS": 400,
    "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR": 400,
    "INVALID_PARAMETER_TRAFFIC_PACKAGE_EXCEED": 400,
    "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT": 403,
    "OPERATION_FAILED_INSTANCE_NOT_EXIST_TRAFFIC_PACKAGE": 403,
    "OPERATION_DENIED_BALANCE_INSUFFICIENT": 403,
    "OPERATION_DENIED_INSTANCE_RECYCLED": 403,
}
DOWNGRADE_NOT_EXIST = "OPERATION_DENIED_DOWNGRADE_NOT_EXIST"  # 404 for both (C8)

TRANSPORTS = st.sampled_from(["sdk-2026", "sdk-2022", "raw"])
INSTANCE = st.integers(min_value=-1, max_value=6)  # -1: an id that does not exist
MBPS = st.one_of(
    st.integers(1, 30),
    st.integers(31, 600),
    st.sampled_from([0, -1, MAX_MBPS, MAX_MBPS + 1, 20_000]),
    st.integers(600, MAX_MBPS),
)
# traffic package sizes in TB, as exact decimals: multiples of 0.05 and a few invalid ones
SIZES = st.one_of(
    st.integers(0, 200).map(lambda k: Decimal(k) * Decimal("0.05")),
    st.sampled_from(
        [Decimal(s) for s in ("0.07", "0.3", "0.45", "100", "100.05", "-0.05", "0.15", "1.23")]
    ),
)
AMOUNTS = st.sampled_from([Decimal(s) for s in ("0.01", "5", "19.99", "200", "1000", "25000")])


class Failure(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Instance:
    """What the model expects of one instance."""

    instance_id: str
    prepaid: bool
    by_package: bool
    running: bool
    is_ha: bool
    bandwidth: int
    package_gb: int | None
    bw_status: str = "Enable"
    bw_pending: int | None = None
    bw_order: str | None = None
    tp_status: str | None = None
    tp_pending: int | None = None
    tp_order: str | None = None
    # billing periods and metering (only followed by the machine that moves the clock)
    recycled: bool = False
    period_start: int | None = None
    expires: int | None = None
    span_months: int = 1  # months paid in [period_start, expires)
    bw_due: int | None = None  # when a waiting downgrade takes effect
    tp_due: int | None = None
    metered_until: int = 0
    history: list[tuple[int, int]] = field(default_factory=list)  # (applied at, metered value)

    def __post_init__(self) -> None:
        if self.by_package:
            self.tp_status = "Enable"


@dataclass
class Result:
    code: str | None  # None: success
    status: int | None  # HTTP status when the request was sent raw
    data: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "__dict__"):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value


def price_of(items: list[Any] | None, key: str) -> Decimal:
    if not items:
        return Decimal(0)
    value = items[0][key]
    return Decimal(0) if value is None else Decimal(str(value))


class ChangeMachine(RuleBasedStateMachine):
    METERED = False  # the worker meters postpaid hours (which may leave the balance in arrears)

    def __init__(self, stack: Stack, engine: Engine) -> None:
        super().__init__()
        self.stack = stack
        self.engine = engine
        self.tenant: Tenant
        self.clients: dict[str, Any] = {}
        self.status_clients: list[Any] = []
        self.instances: list[Instance] = []
        self.balance = Decimal(0)
        self.orders: dict[str, str | None] = {}  # orderNumber -> expected state

    # --- plumbing -----------------------------------------------------------------------------

    def call(self, transport: str, action: str, params: dict[str, Any]) -> Result:
        from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
            ZenlayerCloudSdkException,
        )

        if transport == "raw":
            body = {k: float(v) if isinstance(v, Decimal) else v for k, v in params.items()}
            key = (self.tenant.access_key_id, self.tenant.access_key_password)
            response = self.stack.raw(json.dumps(body), action=action, key=key)
            payload = response.json()
            if "code" in payload:
                return Result(payload["code"], response.status_code)
            assert response.status_code == 200, response.text
            return Result(None, 200, payload["response"])
        version = V2022 if transport == "sdk-2022" else V2026
        module = "v20221120" if version == V2022 else "v20260201"
        models = __import__(f"zenlayercloud.bmc.{module}.models", fromlist=["models"])
        request = getattr(models, f"{action}Request")()
        for name, value in params.items():
            setattr(request, name, float(value) if isinstance(value, Decimal) else value)
        try:
            response = getattr(self.clients[version], action)(request)
        except ZenlayerCloudSdkException as exc:
            return Result(exc.code, None)
        return Result(None, None, _plain(response))

    def expect_failure(self, result: Result, code: str, status: int | None = None) -> None:
        assert result.code == code, f"expected {code}, got {result.code} {result.data}"
        if result.status is not None:
            assert result.status == (status or STATUS[code]), (code, result.status)

    def pick(self, index: int) -> Instance | None:
        return None if index < 0 else self.instances[index % len(self.instances)]

    def fingerprint(self) -> Any:
        snap = invariants.snapshot(self.engine, self.tenant.tenant_id)
        columns: tuple[str, ...] = (
            "status",
            "bandwidth",
            "traffic_package_gb",
            "bw_status",
            "bw_pending",
        )
        columns += ("bw_order", "tp_status", "tp_pending_gb", "tp_order")
        return (
            snap.balance,
            [tuple(e) for e in snap.ledger],
            sorted(tuple(o) for o in snap.orders),
            sorted((i.instance_id, *(getattr(i, c) for c in columns)) for i in snap.instances),
        )

    def settle(self, inst: Instance, kind: str, target: int) -> None:
        """Wait, as SDK users do, until an immediate change is Enable with the new value."""
        client = self.clients[V2026]

        def done() -> bool:
            status = invariants.describe_internet_status(client, inst.instance_id)
            if kind == invariants.BANDWIDTH:
                return bool(
                    status.modifiedBandwidthStatus == "Enable"
                    and status.internetMaxBandwidthOut == target
                )
            return bool(
                status.modifiedTrafficPackageStatus == "Enable"
                and Decimal(str(status.trafficPackageSize)) == Decimal(target) / 1000
            )

        wait_until(done)

    def quote(self, inst: Instance, action: str, params: dict[str, Any]) -> Decimal:
        """The prepaid price the inquiry announces for this change (SDK, v2026)."""
        result = self.call("sdk-2026", action, params)
        assert result.code is None, result
        items = result.data.get("bandwidthPrice") or result.data.get("trafficPackagePrice")
        return price_of(items, "discountPrice")

    # --- setup --------------------------------------------------------------------------------

    @initialize(
        balance=st.sampled_from(["0", "30.00", "1000.00"]),
        bandwidths=st.lists(st.sampled_from([5, 10, 20, 100, 500]), min_size=7, max_size=7),
    )
    def create(self, balance: str, bandwidths: list[int]) -> None:
        self.setup(balance, bandwidths)

    def setup(self, balance: str, bandwidths: list[int]) -> None:
        self.tenant = self.stack.tenant(balance=balance)
        self.balance = Decimal(balance)
        self.clients = {v: self.tenant.client(v) for v in (V2022, V2026)}
        self.status_clients = [self.tenant.client(V2026) for _ in range(7)]
        shapes: list[dict[str, Any]] = [
            {"instance_charge_type": "PREPAID", "internet_charge_type": "ByBandwidth"},
            {"instance_charge_type": "PREPAID", "internet_charge_type": "ByBandwidth"},
            {"instance_charge_type": "POSTPAID", "internet_charge_type": "ByBandwidth"},
            {"instance_charge_type": "PREPAID", "internet_charge_type": "ByTrafficPackage"},
            {"instance_charge_type": "POSTPAID", "internet_charge_type": "ByTrafficPackage"},
            {"instance_charge_type": "PREPAID", "internet_charge_type": "ByBandwidth"},
            {"instance_charge_type": "PREPAID", "internet_charge_type": "ByTrafficPackage"},
        ]
        shapes[1]["status"] = shapes[4]["status"] = "STOPPED"
        shapes[3]["traffic_package"] = "1"
        shapes[5]["type"] = "M6C-HA"
        shapes[6]["traffic_package"] = "none"
        for shape, mbps in zip(shapes, bandwidths, strict=True):
            instance_id = self.tenant.instance(bandwidth=mbps, **shape)
            by_package = shape["internet_charge_type"] == "ByTrafficPackage"
            default = DEFAULT_GB if shape["instance_charge_type"] == "PREPAID" else 0
            package = {"1": 1000, "none": None}.get(shape.get("traffic_package", ""), default)
            self.instances.append(
                Instance(
                    instance_id=instance_id,
                    prepaid=shape["instance_charge_type"] == "PREPAID",
                    by_package=by_package,
                    running=shape.get("status", "RUNNING") == "RUNNING",
                    is_ha=shape.get("type") == "M6C-HA",
                    bandwidth=mbps,
                    package_gb=package if by_package else None,
                )
            )

    # --- expected outcomes (seed rules, in the spec's order) -----------------------------------

    def bandwidth_plan(self, inst: Instance | None, target: int) -> str:
        if inst is None:
            raise Failure("INVALID_INSTANCE_NOT_FOUND")
        if inst.is_ha:
            raise Failure("OPERATION_DENIED_HA_MODEL_TYPE_NOT_SUPPORT_BANDWIDTH")
        if not inst.running:
            raise Failure("OPERATION_DENIED_INSTANCE_NOT_RUNNING")
        if not 1 <= target <= MAX_MBPS:
            raise Failure("INVALID_PARAMETER_BANDWIDTH_EXCEED")
        if inst.bw_status != "Enable":
            raise Failure("OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING")
        if target == inst.bandwidth:
            return "nothing"
        if max(inst.bandwidth, target) <= FREE_MBPS:
            return "now"
        if inst.prepaid and not inst.by_package:
            return "charged" if target > inst.bandwidth else "next_cycle"
        return "now"

    def package_plan(
        self, inst: Instance | None, size: Decimal, inquiry: bool = False
    ) -> tuple[str, int]:
        if inst is None:
            raise Failure("INVALID_INSTANCE_NOT_FOUND")
        if inst.recycled and not inquiry:
            raise Failure("OPERATION_DENIED_INSTANCE_STATUS_NOT_SUPPORT")
        if not inst.by_package:
            raise Failure("OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT")
        if inst.package_gb is None:
            raise Failure("OPERATION_FAILED_INSTANCE_NOT_EXIST_TRAFFIC_PACKAGE")
        if size < 0 or size % Decimal("0.05") != 0:
            raise Failure("INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR")
        target = int(size * 1000)
        if inst.prepaid and target < DEFAULT_GB:  # postpaid instances may buy no package
            raise Failure("INVALID_PARAMETER_TRAFFIC_PACKAGE_LESS")
        if target > MAX_GB:
            raise Failure("INVALID_PARAMETER_TRAFFIC_PACKAGE_EXCEED")
        if inst.tp_status == "Processing" and not inquiry:
            raise Failure("OPERATION_DENIED_INSTANCE_TRAFFIC_PACKAGE_PROCESSING")
        if inst.tp_status == "WaitToEnable" and not inquiry:
            raise Failure("OPERATION_FAILED_INSTANCE_EXIST_PLAN_TRAFFIC_PACKAGE")
        if target == inst.package_gb:
            return "nothing", target
        if inst.prepaid:
            return ("charged" if target > inst.package_gb else "next_cycle"), target
        return "now", target

    def apply(
        self, inst: Instance, kind: str, plan: str, target: int, result: Result, price: Decimal
    ) -> None:
        """Check an accepted change against the plan and move the model along."""
        number = result.data.get("orderNumber")
        if plan == "nothing":
            assert number is None, result
            return
        assert isinstance(number, str), result
        assert number.isdigit(), result
        assert number not in self.orders, f"order number {number} reused"
        charged = Decimal(0)
        if plan == "charged":
            entries = [e for e in self.tenant.ledger() if e["orderNumber"] == number]
            charged = sum((-Decimal(str(e["amount"])) for e in entries), Decimal(0))
            # affordable (as `modify` checks, a change that costs nothing is accepted whatever
            # the balance: a period about to end, or a balance run negative by usage)
            assert charged == 0 or charged <= self.balance, (charged, self.balance)
            # the price only falls as the period runs out, by at most a cent between two calls
            assert price - CENT <= charged <= price, (charged, price)
        self.balance -= charged
        bandwidth = kind == invariants.BANDWIDTH
        if plan == "next_cycle":
            self.orders[number] = invariants.WAIT_TO_ENABLE
            if bandwidth:
                inst.bw_status, inst.bw_pending, inst.bw_order = "WaitToEnable", target, number
                inst.bw_due = inst.expires
            else:
                inst.tp_status, inst.tp_pending, inst.tp_order = "WaitToEnable", target, number
                inst.tp_due = inst.expires
            return
        self.started(inst, kind, target, number)

    def started(self, inst: Instance, kind: str, target: int, number: str) -> None:
        """An immediate change was ordered: the background worker makes it Enable."""
        self.orders[number] = "ENABLED"
        self.settle(inst, kind, target)
        if kind == invariants.BANDWIDTH:
            inst.bandwidth = target
        else:
            inst.package_gb = target

    # --- rules --------------------------------------------------------------------------------

    @rule(index=INSTANCE, mbps=MBPS, transport=TRANSPORTS)
    def modify_bandwidth(self, index: int, mbps: int, transport: str) -> None:
        inst, target = self.pick(index), mbps
        params = {"instanceId": inst.instance_id if inst else MISSING, "bandwidthOutMbps": target}
        try:
            plan = self.bandwidth_plan(inst, target)
        except Failure as failure:
            self.rejected(transport, "ModifyInstanceBandwidth", params, failure.code)
            return
        assert inst is not None
        price = Decimal(0)
        if plan == "charged":
            price = self.quote(inst, "InquiryPriceInstanceBandwidth", params)
        self.modify(inst, invariants.BANDWIDTH, plan, target, price, transport, params)

    @rule(index=INSTANCE, size=SIZES, transport=TRANSPORTS)
    def modify_traffic_package(self, index: int, size: Decimal, transport: str) -> None:
        inst = self.pick(index)
        params = {"instanceId": inst.instance_id if inst else MISSING, "trafficPackageSize": size}
        try:
            plan, target = self.package_plan(inst, size)
        except Failure as failure:
            self.rejected(transport, "ModifyInstanceTrafficPackage", params, failure.code)
            return
        assert inst is not None
        price = Decimal(0)
        if plan == "charged":
            price = self.quote(inst, "InquiryPriceInstanceTrafficPackage", params)
        self.modify(inst, invariants.TRAFFIC_PACKAGE, plan, target, price, transport, params)

    def modify(
        self,
        inst: Instance,
        kind: str,
        plan: str,
        target: int,
        price: Decimal,
        transport: str,
        params: dict[str, Any],
    ) -> None:
        action = (
            "ModifyInstanceBandwidth"
            if kind == invariants.BANDWIDTH
            else ("ModifyInstanceTrafficPackage")
        )
        before = self.fingerprint()
        result = self.call(transport, action, params)
        if result.code == "OPERATION_DENIED_BALANCE_INSUFFICIENT":
            # refused exactly when the announced price exceeds the balance
            assert plan == "charged", plan
            assert price > self.balance, (price, self.balance)
            self.expect_failure(result, result.code)
            assert self.fingerprint() == before, "a refused change changed something"
            return
        assert result.code is None, f"{action} {params}: {result.code} (plan {plan})"
        if plan == "charged" and price > 0:
            assert price - CENT <= self.balance, (price, self.balance)
        self.apply(inst, kind, plan, target, result, price)

    def rejected(self, transport: str, action: str, params: dict[str, Any], code: str) -> None:
        before = self.fingerprint()
        self.expect_failure(self.call(transport, action, params), code)
        assert self.fingerprint() == before, f"refused {action} changed something"

    @rule(index=INSTANCE, transport=TRANSPORTS)
    def cancel_bandwidth_downgrade(self, index: int, transport: str) -> None:
        inst = self.pick(index)
        params = {"instanceId": inst.instance_id if inst else MISSING}
        action = "CancelInstanceBandwidthDowngrade"
        if inst is None:
            self.rejected(transport, action, params, "INVALID_INSTANCE_NOT_FOUND")
        elif inst.by_package:
            self.rejected(
                transport, action, params, "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT"
            )
        elif inst.bw_status != "WaitToEnable":
            before = self.fingerprint()
            self.expect_failure(self.call(transport, action, params), DOWNGRADE_NOT_EXIST, 404)
            assert self.fingerprint() == before
        else:
            assert self.call(transport, action, params).code is None
            assert inst.bw_order is not None
            self.orders[inst.bw_order] = "CANCELLED"
            inst.bw_status, inst.bw_pending, inst.bw_order = "Enable", None, None

    @rule(index=INSTANCE, transport=TRANSPORTS)
    def cancel_traffic_package_downgrade(self, index: int, transport: str) -> None:
        inst = self.pick(index)
        params = {"instanceId": inst.instance_id if inst else MISSING}
        action = "CancelInstanceTrafficPackageDowngrade"
        if inst is None:
            self.rejected(transport, action, params, "INVALID_INSTANCE_NOT_FOUND")
        elif not inst.by_package:
            self.rejected(
                transport, action, params, "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT"
            )
        elif inst.tp_status != "WaitToEnable":
            before = self.fingerprint()
            self.expect_failure(self.call(transport, action, params), DOWNGRADE_NOT_EXIST, 404)
            assert self.fingerprint() == before
        else:
            assert self.call(transport, action, params).code is None
            assert inst.tp_order is not None
            self.orders[inst.tp_order] = "CANCELLED"
            inst.tp_status, inst.tp_pending, inst.tp_order = "Enable", None, None

    @rule(amount=AMOUNTS)
    def top_up(self, amount: Decimal) -> None:
        report = self.stack.admin.json("tenant", "topup", self.tenant.tenant_id, str(amount))
        self.balance += amount
        money = invariants.check_admin_money(self.tenant, report=report, arrears=self.METERED)
        assert money == self.balance

    def teardown(self) -> None:
        if hasattr(self, "tenant"):
            money = invariants.check_admin_money(self.tenant, arrears=self.METERED)
            assert money == self.balance

    @rule(index=st.integers(0, 6), mbps=st.integers(FREE_MBPS + 1, MAX_MBPS))
    def top_up_to_exact_price(self, index: int, mbps: int) -> None:
        """Make the balance equal a prepaid upgrade's announced price: it must be accepted."""
        inst, target = self.pick(index), mbps
        assert inst is not None
        try:
            plan = self.bandwidth_plan(inst, target)
        except Failure:
            return
        if plan != "charged":
            return
        params = {"instanceId": inst.instance_id, "bandwidthOutMbps": target}
        price = self.quote(inst, "InquiryPriceInstanceBandwidth", params)
        if price > self.balance:
            gap = price - self.balance
            self.stack.admin.json("tenant", "topup", self.tenant.tenant_id, str(gap))
            self.balance += gap
        self.modify(inst, invariants.BANDWIDTH, plan, target, price, "sdk-2026", params)

    @rule(
        indexes=st.lists(st.integers(-1, 6), min_size=1, max_size=2),
        stop=st.booleans(),
        transport=TRANSPORTS,
    )
    def power(self, indexes: list[int], stop: bool, transport: str) -> None:
        chosen = [self.pick(i) for i in indexes]
        ids = list(dict.fromkeys(i.instance_id if i else MISSING for i in chosen))
        action = "StopInstances" if stop else "StartInstances"
        params = {"instanceIds": ids}
        for inst in chosen:
            if inst is None:
                self.rejected(transport, action, params, "INVALID_INSTANCE_NOT_FOUND")
                return
            if inst.recycled:
                self.rejected(transport, action, params, "OPERATION_DENIED_INSTANCE_RECYCLED")
                return
            if inst.running != stop:
                code = (
                    "OPERATION_DENIED_INSTANCE_NOT_RUNNING"
                    if stop
                    else ("OPERATION_DENIED_INSTANCE_NOT_STOPPED")
                )
                self.rejected(transport, action, params, code)
                return
        assert self.call(transport, action, params).code is None
        for inst in chosen:
            assert inst is not None
            inst.running = not stop
        self.finish_power([i.instance_id for i in chosen if i is not None], stop)

    def finish_power(self, ids: list[str], stop: bool) -> None:
        """Power changes pass through BOOTING / STOPPING: wait, as SDK users do, for the
        background worker's host driver to finish them."""
        final = "STOPPED" if stop else "RUNNING"
        client = self.clients[V2026]

        def done() -> bool:
            query = sdk_models.DescribeInstancesRequest()
            query.instanceIds = ids
            return all(i.instanceStatus == final for i in client.DescribeInstances(query).dataSet)

        wait_until(done)

    @rule(index=INSTANCE, mbps=MBPS, transport=TRANSPORTS)
    def inquire_bandwidth(self, index: int, mbps: int, transport: str) -> None:
        inst, target = self.pick(index), mbps
        params = {"instanceId": inst.instance_id if inst else MISSING, "bandwidthOutMbps": target}
        before = self.fingerprint()
        result = self.call(transport, "InquiryPriceInstanceBandwidth", params)
        assert self.fingerprint() == before, "a price inquiry changed something"
        if inst is None:
            return self.expect_failure(result, "INVALID_INSTANCE_NOT_FOUND")
        if inst.by_package:
            return self.expect_failure(result, "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT")
        if inst.is_ha:  # quotes nothing the modification would refuse
            return self.expect_failure(
                result, "OPERATION_DENIED_HA_MODEL_TYPE_NOT_SUPPORT_BANDWIDTH"
            )
        if not 1 <= target <= MAX_MBPS:
            return self.expect_failure(result, "INVALID_PARAMETER_BANDWIDTH_EXCEED")
        assert result.code is None, result
        items = result.data["bandwidthPrice"]
        if target <= FREE_MBPS:
            assert items == [], items
        elif not inst.prepaid:
            hourly = (target - FREE_MBPS) * BANDWIDTH_HOUR
            assert price_of(items, "discountUnitPrice") == hourly.quantize(CENT, ROUND_HALF_UP), (
                items
            )
        else:
            delta = max(target, FREE_MBPS) - max(inst.bandwidth, FREE_MBPS)
            self.check_prorated(inst, price_of(items, "discountPrice"), delta * BANDWIDTH_MONTH)
        return None

    @rule(index=INSTANCE, size=SIZES, transport=TRANSPORTS)
    def inquire_traffic_package(self, index: int, size: Decimal, transport: str) -> None:
        inst = self.pick(index)
        params = {"instanceId": inst.instance_id if inst else MISSING, "trafficPackageSize": size}
        before = self.fingerprint()
        result = self.call(transport, "InquiryPriceInstanceTrafficPackage", params)
        assert self.fingerprint() == before, "a price inquiry changed something"
        try:
            _plan, target = self.package_plan(inst, size, inquiry=True)
        except Failure as failure:
            return self.expect_failure(result, failure.code)
        assert inst is not None
        assert inst.package_gb is not None
        assert result.code is None, result
        items = result.data["trafficPackagePrice"]
        assert len(items) == 2, items
        billable = Decimal(max(target - DEFAULT_GB, 0)) / 1000
        if not inst.prepaid:
            assert price_of(items, "discountUnitPrice") == (billable * TB_HOUR).quantize(
                CENT, ROUND_HALF_UP
            )
        else:
            current = Decimal(max(inst.package_gb - DEFAULT_GB, 0)) / 1000
            full_month = (billable - current) * TB_MONTH
            self.check_prorated(inst, price_of(items, "discountPrice"), full_month)
        return None

    def check_prorated(self, inst: Instance, price: Decimal, full_month: Decimal) -> None:
        """Instances were created moments ago, so nearly the whole month remains."""
        if full_month <= 0:
            assert price == 0, price
            return
        assert full_month * Decimal("0.999") - CENT <= price <= full_month, (price, full_month)

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def consistent(self) -> None:
        snap = invariants.snapshot(self.engine, self.tenant.tenant_id)
        invariants.check_snapshot(snap, metered=self.METERED, arrears=self.METERED)
        assert Decimal(snap.balance) / 100 == self.balance, (snap.balance, self.balance)
        # `zbmc admin balance` is checked after top-ups and at teardown: each admin command
        # costs ~0.1 s, and the stored balance is checked against the ledger above anyway
        entries = self.admin_ledger(snap)
        listed = invariants.check_admin_orders(
            self.tenant, self.orders, entries, metered=self.METERED
        )
        # one client per instance: the SDK clients are not shared between threads
        with ThreadPoolExecutor(len(self.instances)) as pool:
            shown = list(
                pool.map(
                    lambda pair: invariants.check_internet_status(
                        pair[1], pair[0].instance_id, listed.values()
                    ),
                    zip(self.instances, self.status_clients, strict=True),
                )
            )
        for inst, status in zip(self.instances, shown, strict=True):
            assert status.internetMaxBandwidthOut == inst.bandwidth, (inst, status)
            assert status.modifiedBandwidthStatus == inst.bw_status, inst
            assert status.modifiedInternetMaxBandwidthOut == inst.bw_pending, inst
            assert status.modifiedTrafficPackageStatus == inst.tp_status, inst
            # never null for ByTrafficPackage: an instance without a package reads 0
            shown_gb = (inst.package_gb or 0) if inst.by_package else None
            assert tb(status.trafficPackageSize) == tb_of_gb(shown_gb), inst
            assert tb(status.modifiedTrafficPackageSize) == tb_of_gb(inst.tp_pending), inst
        self.check_periods(snap)

    def admin_ledger(self, snap: invariants.Snapshot) -> list[dict[str, Any]]:
        del snap  # the ledger as `zbmc admin ledger` prints it
        return self.tenant.ledger()

    def check_periods(self, snap: invariants.Snapshot) -> None:
        """Billing periods: only followed when the clock moves."""


def tb(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def tb_of_gb(gb: int | None) -> Decimal | None:
    return None if gb is None else Decimal(gb) / 1000


def test_money_orders_and_statuses_stay_consistent(stack: Stack) -> None:
    engine = stack.engine()

    class Machine(ChangeMachine):
        def __init__(self) -> None:
            super().__init__(stack, engine)

    try:
        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=12,
                stateful_step_count=15,
                deadline=None,
                # no shrinking: each example costs seconds and shrinking would outlast the timeout
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            ),
        )
    finally:
        engine.dispose()


# --- time: a simulated clock, worker runs, renewals and metering ---------------------------------

HOUR, DAY = 3600, 86400
INSTANCE_MONTH, INSTANCE_HOUR = Decimal("300.00"), Decimal("0.50")  # SEL-A M6C and M6C-HA
UNIT_SECONDS = {"m": 60, "h": HOUR, "d": DAY}
# Metering costs about a millisecond per postpaid hour: an example stops moving the clock after
# this much simulated time (a few periods), so that the test stays within its time budget.
MAX_OFFSET = 100 * DAY
DURATIONS = st.one_of(
    st.integers(1, 59).map(lambda n: f"{n}m"),
    st.integers(1, 47).map(lambda n: f"{n}h"),
    st.integers(2, 40).map(lambda n: f"{n}d"),
)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def money(amount_cents: int) -> Decimal:
    return Decimal(amount_cents) / 100


class TimeMachine(ChangeMachine):
    """The rules above plus time: clock advances, worker runs and RenewInstance, on a stack of
    its own (one per example) whose billing clock is simulated and whose worker runs only when a
    rule says so (ZBMC_RUN_WORKER=0). Every renewal, recycle and metered hour therefore happens
    in a step the model sees; immediate changes stay Processing until then.

    After a worker run the model accounts for every new ledger entry and order: each renewal
    continues the instance's last period at the period price of its values (pending changes at
    their target), each metered hour continues the instance's metering at the hourly price of the
    highest value it held in that hour, and an instance is recycled only at the end of its period
    and only if the balance left after the run's renewals could not pay that period. Metered
    usage may take the balance below zero (arrears), so "never negative" is checked in its honest
    form: only metered debits may leave the balance below zero, purchases never do.
    """

    METERED = True

    def __init__(self, make_stack: StackFactory) -> None:
        stack = make_stack(ZBMC_RUN_WORKER="0")
        # the model keeps recycled instances; the worker would release them after 24 h
        stack.env["ZBMC_RELEASE_AFTER_SECONDS"] = str(100 * 365 * DAY)
        stack.admin.run("clock", "simulate")
        super().__init__(stack, stack.engine())
        self.offset = 0  # simulated seconds ahead of the wall clock
        self.window = (0, 0)  # billing time before and after the last request
        self.listed: tuple[int, list[dict[str, Any]]] = (-1, [])  # last entry id, admin ledger

    def now(self) -> int:
        return int(time.time()) + self.offset

    def admin_ledger(self, snap: invariants.Snapshot) -> list[dict[str, Any]]:
        """Printed again only when the ledger grew: metered hours make it thousands of entries
        long, and printing them costs a good part of a second."""
        last = snap.ledger[-1].entry_id if snap.ledger else 0
        if self.listed[0] != last:
            self.listed = (last, self.tenant.ledger())
        return self.listed[1]

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            self.engine.dispose()
            self.stack.stop()

    def setup(self, balance: str, bandwidths: list[int]) -> None:
        super().setup(balance, bandwidths)
        rows = self.rows(invariants.snapshot(self.engine, self.tenant.tenant_id))
        for inst in self.instances:
            row = rows[inst.instance_id]
            inst.period_start, inst.expires = row.period_start, row.expired_time
            inst.metered_until = int(row.create_time)
            inst.history = [(int(row.create_time), self.metered_value(inst))]

    @staticmethod
    def rows(snap: invariants.Snapshot) -> dict[str, Any]:
        return {row.instance_id: row for row in snap.instances}

    def call(self, transport: str, action: str, params: dict[str, Any]) -> Result:
        start = self.now()
        result = super().call(transport, action, params)
        self.window = (start, self.now())
        return result

    def started(self, inst: Instance, kind: str, target: int, number: str) -> None:
        """No background worker: the change stays Processing until the next worker run."""
        self.orders[number] = invariants.PROCESSING
        if kind == invariants.BANDWIDTH:
            inst.bw_status, inst.bw_pending, inst.bw_order = "Processing", target, number
        else:
            inst.tp_status, inst.tp_pending, inst.tp_order = "Processing", target, number

    def check_prorated(self, inst: Instance, price: Decimal, full_month: Decimal) -> None:
        """The share of the paid span left at the time of the inquiry (somewhere in the request's
        window), for all the months the span holds (an early renewal makes it two)."""
        if full_month <= 0:
            assert price == 0, price
            return
        assert inst.period_start is not None, inst
        assert inst.expires is not None, inst
        start, end, span = inst.period_start, inst.expires, inst.expires - inst.period_start

        def at(now: int) -> Decimal:
            left = Decimal(min(max(end - now, 0), span)) / Decimal(span)
            return cents(full_month * inst.span_months * left)

        latest, earliest = self.window[1], self.window[0]
        assert at(latest) <= price <= at(earliest), (price, at(latest), at(earliest), inst, start)

    # --- prices of the model ------------------------------------------------------------------

    @staticmethod
    def metered_value(inst: Instance) -> int:
        return (inst.package_gb or 0) if inst.by_package else inst.bandwidth

    @staticmethod
    def period_price(inst: Instance) -> Decimal:
        """One month at the values the instance will have in it (pending ones at their target)."""
        if inst.by_package:
            gb = inst.tp_pending if inst.tp_pending is not None else inst.package_gb
            extra = Decimal(0) if gb is None else Decimal(max(gb - DEFAULT_GB, 0)) / 1000
            return cents(INSTANCE_MONTH + extra * TB_MONTH)
        mbps = inst.bw_pending if inst.bw_pending is not None else inst.bandwidth
        return cents(INSTANCE_MONTH + max(mbps - FREE_MBPS, 0) * BANDWIDTH_MONTH)

    @staticmethod
    def hour_price(inst: Instance, start: int) -> Decimal:
        """The hour [start, start + 1 h) at the highest value held in it."""
        held = [value for at, value in inst.history if at <= start][-1:]
        held += [value for at, value in inst.history if start <= at < start + HOUR]
        value = max(held)
        if inst.by_package:
            return cents(INSTANCE_HOUR + Decimal(max(value - DEFAULT_GB, 0)) / 1000 * TB_HOUR)
        return cents(INSTANCE_HOUR + max(value - FREE_MBPS, 0) * BANDWIDTH_HOUR)

    # --- rules --------------------------------------------------------------------------------

    @precondition(lambda self: self.offset < MAX_OFFSET)
    @rule(duration=DURATIONS, work=st.booleans())
    def advance(self, duration: str, work: bool) -> None:
        """Move the clock (minutes to 40 days); requests may come before the worker catches up."""
        self.stack.admin.run("clock", "advance", duration)
        self.offset += int(duration[:-1]) * UNIT_SECONDS[duration[-1]]
        assert self.stack.admin.json("clock", "show")["offsetSeconds"] == self.offset
        if work:
            self.work()

    @precondition(lambda self: self.offset < MAX_OFFSET)
    @rule(days=st.integers(25, 40))
    def advance_to_a_period_end(self, days: int) -> None:
        """A second, likelier way to reach period ends (rules are drawn evenly)."""
        self.advance(f"{days}d", work=True)

    def finish_power(self, ids: list[str], stop: bool) -> None:
        """No background worker: the next worker run finishes BOOTING / STOPPING."""
        del ids, stop
        self.work()

    @rule()
    def work(self) -> None:
        """`zbmc worker --once`, then account for everything it did."""
        before = invariants.snapshot(self.engine, self.tenant.tenant_id)
        start = self.now()
        end = int(run_worker(self.stack)["now"])  # the last tick's time
        assert start <= end, (start, end)
        after = invariants.snapshot(self.engine, self.tenant.tenant_id)
        for order in after.orders:
            if order.state in invariants.OPEN_STATES:
                assert order.effective_at > start, f"due order left unapplied: {order}"
        by_number = {o.order_number: o for o in after.orders}
        for inst in self.instances:
            self.finish_change(inst, invariants.BANDWIDTH, by_number, start, end)
            self.finish_change(inst, invariants.TRAFFIC_PACKAGE, by_number, start, end)
        known = {e.entry_id for e in before.ledger}
        new = [e for e in after.ledger if e.entry_id not in known]
        assert all(e.kind == invariants.CHARGE for e in new), new
        known_orders = {o.order_number for o in before.orders}
        renewals = [o for o in after.orders if o.order_number not in known_orders]
        assert all(o.kind == invariants.RENEW for o in renewals), renewals
        self.end_periods(after, renewals, [e for e in new if e.order_number], start, end)
        self.meter([e for e in new if e.order_number is None], start, end)
        self.balance += money(sum(e.amount for e in new))

    def finish_change(
        self, inst: Instance, kind: str, by_number: dict[str, Any], start: int, end: int
    ) -> None:
        bandwidth = kind == invariants.BANDWIDTH
        number = inst.bw_order if bandwidth else inst.tp_order
        if number is None:
            return
        order = by_number[number]
        status = inst.bw_status if bandwidth else inst.tp_status
        due = inst.bw_due if bandwidth else inst.tp_due
        if order.state != "ENABLED":
            assert status == "WaitToEnable", order
            assert due is not None, order
            assert due > start, order
            return
        assert start <= order.applied_at <= end, order
        if status == "WaitToEnable":
            assert due is not None, order
            assert due <= end, (due, order)
        self.orders[number] = "ENABLED"
        if bandwidth:
            inst.bandwidth, inst.bw_status = order.to_value, "Enable"
            inst.bw_pending = inst.bw_order = inst.bw_due = None
        else:
            inst.package_gb, inst.tp_status = order.to_value, "Enable"
            inst.tp_pending = inst.tp_order = inst.tp_due = None
        if bandwidth != inst.by_package:  # the value postpaid hours are priced by
            inst.history.append((int(order.applied_at), self.metered_value(inst)))

    def end_periods(
        self,
        snap: invariants.Snapshot,
        renewals: list[Any],
        charges: list[Any],
        start: int,
        end: int,
    ) -> None:
        charged = {e.order_number: e for e in charges}
        assert set(charged) == {o.order_number for o in renewals}, (charged, renewals)
        # Renewals come before this run's metered hours (worker.py), and balances only fall in
        # a run, so a period left unpaid saw at most this much.
        left = self.balance + money(sum(e.amount for e in charges))
        by_start = {(o.instance_id, o.from_value): o for o in renewals}
        rows = self.rows(snap)
        for inst in self.instances:
            if not inst.prepaid or inst.recycled:
                continue
            assert inst.expires is not None
            price = self.period_price(inst)
            while (order := by_start.pop((inst.instance_id, inst.expires), None)) is not None:
                assert inst.expires <= end, (inst, order)
                assert money(order.amount) == price, (order, price, inst)
                self.check_period(order)
                inst.period_start, inst.expires, inst.span_months = (
                    order.from_value,
                    order.to_value,
                    1,
                )
            row = rows[inst.instance_id]
            if row.status == "RECYCLE":
                assert row.recycled_at == inst.expires <= end, (row, inst)
                assert left < price, f"recycled though {left} paid {price}: {inst}"
                inst.recycled, inst.running = True, False
            else:
                assert inst.expires > start, f"period ended without renewal or recycle: {row}"
        assert not by_start, f"renewals of no ended period: {by_start}"

    @staticmethod
    def check_period(order: Any) -> None:
        """A renewal pays one calendar month: 28 to 31 whole days."""
        length = order.to_value - order.from_value
        assert length % DAY == 0, order
        assert 28 * DAY <= length <= 31 * DAY, order

    def meter(self, entries: list[Any], start: int, end: int) -> None:
        for inst in self.instances:
            mine = sorted(
                (e for e in entries if e.instance_id == inst.instance_id),
                key=lambda e: e.period_start,
            )
            if inst.prepaid:  # no traffic is reported, so no overage either
                assert not mine, mine
                continue
            for entry in mine:
                assert entry.period_start == inst.metered_until, (entry, inst.metered_until)
                assert entry.period_end == entry.period_start + HOUR, entry
                assert money(-entry.amount) == self.hour_price(inst, entry.period_start), (
                    entry,
                    inst.history,
                )
                inst.metered_until = entry.period_end
            # every whole hour up to the run is metered, none beyond it
            assert inst.metered_until + HOUR > start, inst
            assert inst.metered_until <= end, inst

    @rule(index=INSTANCE, transport=TRANSPORTS)
    def renew(self, index: int, transport: str) -> None:
        inst = self.pick(index)
        params = {"instanceId": inst.instance_id if inst else MISSING}
        if inst is None:
            return self.rejected(transport, "RenewInstance", params, "INVALID_INSTANCE_NOT_FOUND")
        if not inst.prepaid:  # postpaid: nothing to renew
            before = self.fingerprint()
            assert self.call(transport, "RenewInstance", params).code is None
            assert self.fingerprint() == before
            return None
        price = self.period_price(inst)
        if price > self.balance:
            code = "OPERATION_DENIED_BALANCE_INSUFFICIENT"
            return self.rejected(transport, "RenewInstance", params, code)
        before = invariants.snapshot(self.engine, self.tenant.tenant_id)
        result = self.call(transport, "RenewInstance", params)
        assert result.code is None, (result, price, self.balance)
        after = invariants.snapshot(self.engine, self.tenant.tenant_id)
        known = {o.order_number for o in before.orders}
        (order,) = [o for o in after.orders if o.order_number not in known]
        assert (order.kind, order.instance_id) == (invariants.RENEW, inst.instance_id), order
        assert money(order.amount) == price, (order, price)
        self.check_period(order)
        if inst.recycled:  # back from the recycle bin, for a period starting now
            assert self.window[0] <= order.from_value <= self.window[1], order
            inst.recycled, inst.running = False, True
            inst.period_start, inst.span_months = order.from_value, 1
        else:  # the next period, paid ahead
            assert order.from_value == inst.expires, (order, inst)
            inst.span_months += 1
        inst.expires = order.to_value
        self.balance -= price
        return None

    # --- invariants ---------------------------------------------------------------------------

    def check_periods(self, snap: invariants.Snapshot) -> None:
        rows = self.rows(snap)
        renewed = {(o.instance_id, o.from_value) for o in snap.orders if o.kind == "RENEW"}
        for order in snap.orders:
            if order.kind == invariants.RENEW:  # a renewal is always paid (300.00 at least)
                assert order.amount > 0, order
                assert order.state == "ENABLED", order
        for inst in self.instances:
            row = rows[inst.instance_id]
            status = "RECYCLE" if inst.recycled else ("RUNNING" if inst.running else "STOPPED")
            assert row.status == status, (row, inst)
            if not inst.prepaid:
                assert int(row.metered_until) == inst.metered_until, (row, inst)
                continue
            assert (row.period_start, row.expired_time) == (inst.period_start, inst.expires)
            if inst.recycled:  # recycled exactly at the end of its last, unrenewed, period
                assert row.recycled_at == row.expired_time, row
                assert (inst.instance_id, row.expired_time) not in renewed, row


def test_money_orders_and_statuses_stay_consistent_as_time_passes(
    make_stack: StackFactory,
) -> None:
    class Machine(TimeMachine):
        def __init__(self) -> None:
            super().__init__(make_stack)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=6,
            stateful_step_count=30,
            deadline=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )


# --- creation: CreateInstances against stock, balance and address pools --------------------------

# (zone, model) offerings of the demo catalogue the machine buys from, with one not sold
# (FRA-A L6G), one out of stock (LAX-A M6C) and one with little stock (SEL-A L6G: 4).
OFFERS = [("SEL-A", "M6C"), ("HKG-A", "M6S"), ("FRA-A", "M6C"), ("SEL-A", "L6G"), ("LAX-A", "M6C")]
SOLD = set(OFFERS)
PREPAID_ONLY = {("FRA-A", "M6C")}
BANDWIDTH_ONLY = {("FRA-A", "M6C")}
MAXIMUM_MBPS = {"M6C": 10_000, "M6S": 5_000, "L6G": 20_000}


class CreationMachine(RuleBasedStateMachine):
    """Random CreateInstances (and top-ups) on one tenant. The model predicts every outcome from
    the stock and the balance read before it and the inquiry's quote; after every step the books
    balance, stock + the tenant's live instances of each offering stay what they were, and no
    address is held twice."""

    def __init__(self, stack: Stack) -> None:
        super().__init__()
        self.stack = stack
        self.tenant = stack.tenant(balance="2000.00")
        self.balance = Decimal("2000.00")
        self.created: list[str] = []
        self.sent = 0
        self.start = {offer: self.qty(*offer) for offer in OFFERS}

    def client(self, version: str) -> Any:
        return self.tenant.client(version)

    def qty(self, zone: str, model: str) -> int:
        from tests.test_create import call

        answer = call(
            self.tenant,
            V2026,
            "DescribeAvailableResources",
            instanceChargeType="PREPAID",
            zoneId=zone,
            instanceTypeId=model,
        )
        return sum(r.qty for r in answer.availableResources)

    @rule(
        offer=st.sampled_from([*OFFERS, ("FRA-A", "L6G")]),
        prepaid=st.booleans(),
        package=st.booleans(),
        amount=st.sampled_from([1, 1, 2, 3, 5, 60]),
        mbps=st.sampled_from([1, 10, 50, 300, 6_000, 25_000]),
        period=st.integers(1, 3),
        version=st.sampled_from([V2022, V2026]),
    )
    def create(
        self,
        offer: tuple[str, str],
        prepaid: bool,
        package: bool,
        amount: int,
        mbps: int,
        period: int,
        version: str,
    ) -> None:
        from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
            ZenlayerCloudSdkException,
        )

        from tests.test_create import call, sdk

        zone, model = offer
        fields: dict[str, Any] = {
            "zoneId": zone,
            "instanceTypeId": model,
            "instanceChargeType": "PREPAID" if prepaid else "POSTPAID",
            "internetChargeType": "ByTrafficPackage" if package else "ByBandwidth",
            "internetMaxBandwidthOut": mbps,
        }
        if prepaid:
            fields["instanceChargePrepaid"] = {"period": period}
        expected = self.predict(offer, prepaid, package, mbps)
        if expected is None:
            price = call(self.tenant, version, "InquiryPriceCreateInstance", **fields)
            each = Decimal(str(price.instancePrice.discountPrice or 0)) + Decimal(
                str(price.bandwidthPrice[0].discountPrice or 0)
            )
            if not prepaid:
                each = Decimal(str(price.instancePrice.discountUnitPrice)) + Decimal(
                    str(price.bandwidthPrice[0].discountUnitPrice)
                )
            if self.qty(zone, model) < amount:
                expected = "RESOURCES_SOLDOUT_INSTANCE_TYPE"
            elif each * amount > self.balance:
                expected = "OPERATION_DENIED_BALANCE_INSUFFICIENT"
        self.sent += 1  # distinct bodies: a signed request seen before is refused as a replay
        name = f"prop-{self.sent}"
        request = sdk(version, "CreateInstancesRequest", **fields, amount=amount, instanceName=name)
        code = None
        try:
            created = self.client(version).CreateInstances(request)
        except ZenlayerCloudSdkException as exc:
            code = exc.code
        assert code == expected, (code, expected, fields, amount)
        if code is not None:
            return
        assert len(created.instanceIdSet) == amount
        self.created += created.instanceIdSet
        if prepaid:
            self.balance -= each * amount

    def predict(
        self, offer: tuple[str, str], prepaid: bool, package: bool, mbps: int
    ) -> str | None:
        if offer not in SOLD:
            return "INVALID_INSTANCE_TYPE_ZONE_NO_SELL"
        if not prepaid and offer in PREPAID_ONLY:
            return "INVALID_CHARGE_TYPE_NOT_SUPPORT"
        if package and offer in BANDWIDTH_ONLY:
            return "INVALID_INSTANCE_BANDWIDTH_ZONE_NO_SELL"
        if mbps > MAXIMUM_MBPS[offer[1]]:
            return "INVALID_BANDWIDTH_VALUE_EXCEED_MAXIMUM"
        return None

    @rule(amount=st.sampled_from([Decimal("0.01"), Decimal("350"), Decimal("5000")]))
    def top_up(self, amount: Decimal) -> None:
        self.stack.admin.run("tenant", "topup", self.tenant.tenant_id, str(amount))
        self.balance += amount

    @invariant()
    def books_stock_and_addresses(self) -> None:
        from sqlalchemy import func, select

        from zbmc.db.tables import addresses, instances, ledger, offerings, tenants

        engine = self.stack.engine()
        try:
            with engine.begin() as conn:
                balance = conn.execute(
                    select(tenants.c.balance).where(tenants.c.tenant_id == self.tenant.tenant_id)
                ).scalar_one()
                total = conn.execute(
                    select(func.coalesce(func.sum(ledger.c.amount), 0)).where(
                        ledger.c.tenant_id == self.tenant.tenant_id
                    )
                ).scalar_one()
                stock = {
                    (r.zone_id, r.instance_type_id): r.qty for r in conn.execute(select(offerings))
                }
                mine = conn.execute(
                    select(instances.c.zone_id, instances.c.instance_type_id, func.count())
                    .where(instances.c.tenant_id == self.tenant.tenant_id)
                    .group_by(instances.c.zone_id, instances.c.instance_type_id)
                ).all()
                every = list(
                    conn.execute(
                        select(
                            instances.c.instance_id,
                            instances.c.primary_ip,
                            instances.c.private_ip,
                            instances.c.ipv6,
                        )
                    )
                )
                held = {
                    r.address: r.instance_id
                    for r in conn.execute(
                        select(addresses).where(addresses.c.instance_id.is_not(None))
                    )
                }
        finally:
            engine.dispose()
        assert balance == total
        assert Decimal(balance) / 100 == self.balance
        assert balance >= 0
        live = {(zone, model): count for zone, model, count in mine}
        for offer, start in self.start.items():
            assert stock.get(offer, 0) + live.get(offer, 0) == start, (offer, stock, live)
        given = [a for r in every for a in (r.primary_ip, r.private_ip, r.ipv6) if a]
        assert len(given) == len(set(given)), "an address is held twice"
        for row in every:
            if row.instance_id in self.created:
                for address in (row.primary_ip, row.private_ip, row.ipv6):
                    assert held[address] == row.instance_id, (address, row)


def test_creation_keeps_books_stock_and_addresses(make_stack: StackFactory) -> None:
    stack = make_stack()

    class Machine(CreationMachine):
        def __init__(self) -> None:
            super().__init__(stack)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=8,
            stateful_step_count=12,
            deadline=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
