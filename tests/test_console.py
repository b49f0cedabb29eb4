"""The web console (/console) in a real browser: Debian's chromium driven by Playwright.

A tenant signs in with an access key (requests signed in the browser with WebCrypto) and with a
bearer token, filters instances, upgrades and downgrades the bandwidth with the price quoted
first, cancels the downgrade and stops the instance; every number shown is checked against the
API's own answer through the official SDK. An operator signs in with the admin token, sees the
tenant and moves the simulated clock. Screenshots of the main pages are kept in the test's
temporary directory (the path is printed).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import StackFactory
from tests.harness import V2026, Stack, Tenant
from tests.test_bandwidth import call
from zbmc.clock import iso, parse_iso

TOKEN = "console-admin-token"
CHROMIUM = os.environ.get("ZBMC_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _browser_missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run does)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _browser_missing()
    if reason is not None:
        if os.environ.get("ZBMC_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"a browser is required (ZBMC_TEST_REQUIRE_BROWSER=1): {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    print(f"\nconsole screenshots: {folder}")
    return folder


def _page(browser: Any, stack: Stack) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(f"http://{stack.host}/console")
    return page


def _sign_in_key(page: Any, tenant: Tenant, password: str | None = None) -> None:
    page.fill("input[name=id]", tenant.access_key_id)
    page.fill("input[name=secret]", password or tenant.access_key_password)
    page.click("[data-testid=signin]")


def _text(page: Any, testid: str) -> str:
    return str(page.locator(f"[data-testid={testid}]").first.inner_text()).strip()


def _until(page: Any, check: Any, timeout: float = 15) -> None:
    """Reload the page until ``check()`` holds (as a person presses reload while the worker
    applies a change)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the page never showed the expected state")
        page.wait_for_timeout(200)
        page.reload()
        page.wait_for_selector("[data-testid=bandwidth]")


def _status(tenant: Tenant, instance_id: str) -> Any:
    return call(tenant, V2026, "DescribeInstanceInternetStatus", instanceId=instance_id)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_tenant_changes_bandwidth_in_the_browser(
    browser: Any, make_stack: StackFactory, shots: Path
) -> None:
    stack = make_stack(ZBMC_ADMIN_TOKEN=TOKEN)
    stack.admin.run("clock", "simulate")
    tenant = stack.tenant(balance="3000.00")
    web = tenant.instance(name="web-1", charge=True)
    for n in range(12):  # two pages of ten
        tenant.instance(name=f"batch-{n:02d}", zone="HKG-A", instance_charge_type="POSTPAID")
    now = int(time.time()) // 300 * 300
    samples = [
        {
            "sampleId": f"s{n}",
            "instanceId": web,
            "time": now - 300 * n,
            "inBps": 1_000_000 * (n + 1),
            "outBps": 3_000_000 + 250_000 * n,
        }
        for n in range(24)
    ]
    ingested = requests.post(
        f"http://{stack.host}/admin/v1/traffic",
        json={"samples": samples},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert ingested.ok, ingested.text

    page = _page(browser, stack)
    _sign_in_key(page, tenant)
    page.wait_for_selector("[data-testid=instances] tbody tr")
    assert "13 instances" in _text(page, "page")
    assert page.locator("[data-testid=instances] tbody tr").count() == 10
    page.screenshot(path=str(shots / "instances.png"), full_page=True)
    page.fill("[data-testid=filter-name]", "web*")
    page.click("[data-testid=filter]")
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=instances] tbody tr').length === 1"
    )
    page.click("text=web-1")
    page.wait_for_selector("[data-testid=bandwidth]")
    assert _text(page, "bandwidth") == "100"
    _check_traffic(page, tenant, web, now)
    _upgrade(page, tenant, web)
    _downgrade_and_cancel(page, tenant, web, shots)

    # stop
    page.click("[data-testid=stop]")
    page.wait_for_function(
        "document.querySelector('[data-testid=instance-status]').textContent === 'STOPPED'"
    )
    listed = call(tenant, V2026, "DescribeInstances", instanceIds=[web]).dataSet[0]
    assert listed.instanceStatus == "STOPPED"
    _check_account(page, tenant, shots)
    assert page.errors == []


def _check_traffic(page: Any, tenant: Tenant, web: str, now: int) -> None:
    # the traffic chart shows the API's statistics and the 95th-percentile line
    traffic = call(
        tenant,
        V2026,
        "DescribeInstanceTraffic",
        instanceId=web,
        startTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 80000)),
        endTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 1)),
    )
    stats = _text(page, "traffic-stats")
    assert f"out 95th {traffic.out95 / 1e6:.2f} Mbps" in stats
    assert f"in 95th {traffic.in95 / 1e6:.2f} Mbps" in stats
    assert page.locator("[data-testid=p95-line]").count() == 1


def _upgrade(page: Any, tenant: Tenant, web: str) -> None:
    # upgrade: the quote shown is InquiryPrice's, the order is the SDK-visible one
    quoted = call(
        tenant, V2026, "InquiryPriceInstanceBandwidth", instanceId=web, bandwidthOutMbps=150
    ).bandwidthPrice[0]
    page.fill("[data-testid=bandwidth-input]", "150")
    page.click("[data-testid=bandwidth-inquire]")
    price = page.wait_for_selector("[data-testid=bandwidth-price]").inner_text()
    assert price == f"{Decimal(str(quoted.discountPrice)):.2f} now"
    balance_before = tenant.balance()
    page.click("[data-testid=bandwidth-confirm]")
    page.wait_for_selector("[data-testid=notice]")
    _until(page, lambda: _text(page, "bandwidth") == "150")
    assert _status(tenant, web).internetMaxBandwidthOut == 150
    assert tenant.balance() == balance_before - Decimal(str(quoted.discountPrice))


def _downgrade_and_cancel(page: Any, tenant: Tenant, web: str, shots: Path) -> None:
    # downgrade: scheduled for the next cycle, shown with the order's effective time
    page.fill("[data-testid=bandwidth-input]", "50")
    page.click("[data-testid=bandwidth-inquire]")
    assert page.wait_for_selector("[data-testid=bandwidth-price]").inner_text() == "0.00 now"
    page.click("[data-testid=bandwidth-confirm]")
    page.wait_for_selector("[data-testid=bandwidth-pending]")
    status = _status(tenant, web)
    assert status.modifiedBandwidthStatus == "WaitToEnable"
    pending = _text(page, "bandwidth-pending")
    assert f"{status.modifiedInternetMaxBandwidthOut} Mbps (WaitToEnable)" in pending
    waiting = [o for o in tenant.orders() if o["state"] == "WAIT_TO_ENABLE"]
    assert len(waiting) == 1
    assert _text(page, "bandwidth-effective") == waiting[0]["effectiveAt"]
    assert _text(page, "bandwidth") == "150"
    page.screenshot(path=str(shots / "instance.png"), full_page=True)

    # cancel the downgrade
    page.click("[data-testid=bandwidth-cancel]")
    page.wait_for_selector("[data-testid=bandwidth-pending-none]")
    assert _status(tenant, web).modifiedBandwidthStatus != "WaitToEnable"
    assert [o["state"] for o in tenant.orders() if str(o["toValue"]) == "50"] == ["CANCELLED"]


def _check_account(page: Any, tenant: Tenant, shots: Path) -> None:
    """Balance, the ledger (what each entry paid for and its period), orders."""
    page.click("text=Balance & ledger")
    page.wait_for_selector("[data-testid=balance]")
    assert Decimal(_text(page, "balance")) == tenant.balance()
    ledger_rows = page.locator("[data-testid=ledger] tbody tr")
    assert ledger_rows.count() == len(tenant.ledger())
    newest = tenant.ledger()[-1]
    first_row = ledger_rows.first.inner_text()
    assert newest["description"] in first_row
    assert f"{newest['periodStart']} → {newest['periodEnd']}" in first_row
    order_rows = page.locator("[data-testid=orders] tbody tr")
    assert order_rows.count() == len(tenant.orders())
    orders_text = page.locator("[data-testid=orders]").inner_text()
    assert "BANDWIDTH 100 Mbps → 150 Mbps" in orders_text
    created = next(o for o in tenant.orders() if o["kind"] == "CREATE")
    period = f"{iso(int(created['fromValue']))} → {iso(int(created['toValue']))}"
    assert f"CREATE {period}" in orders_text
    page.screenshot(path=str(shots / "account.png"), full_page=True)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_token_sign_in_and_refusals(browser: Any, make_stack: StackFactory) -> None:
    stack = make_stack()
    tenant = stack.tenant()
    tenant.instance(name="only")
    page = _page(browser, stack)
    _sign_in_key(page, tenant, password="wrong-password")
    assert (
        "AUTHFAILURE_SIGNATURE_FAILURE"
        in page.wait_for_selector("[data-testid=signin-error]:not(:empty)").inner_text()
    )
    token = stack.admin.json("token", "create", tenant.tenant_id)["token"]
    page.click("[data-testid=mode-token]")
    page.fill("input[name=secret]", token)
    page.click("[data-testid=signin]")
    page.wait_for_selector("[data-testid=instances] tbody tr")
    assert "1 instances" in _text(page, "page")
    page.click("[data-testid=signout]")
    page.click("[data-testid=mode-admin]")
    page.fill("input[name=secret]", "anything")
    page.click("[data-testid=signin]")  # no ZBMC_ADMIN_TOKEN: no admin endpoints at all
    assert (
        "INVALID_PATH"
        in page.wait_for_selector("[data-testid=signin-error]:not(:empty)").inner_text()
    )
    assert page.errors == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_operator_sees_tenants_and_moves_the_clock(
    browser: Any, make_stack: StackFactory, shots: Path
) -> None:
    stack = make_stack(ZBMC_ADMIN_TOKEN=TOKEN)
    stack.admin.run("clock", "simulate")
    tenant = stack.tenant(name="acme")
    instance_id = tenant.instance(charge=True)
    call(tenant, V2026, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=50)
    page = _page(browser, stack)
    page.click("[data-testid=mode-admin]")
    page.fill("input[name=secret]", TOKEN)
    page.click("[data-testid=signin]")
    page.wait_for_selector("[data-testid=tenants] tbody tr")
    tenants = page.locator("[data-testid=tenants]").inner_text()
    assert tenant.tenant_id in tenants
    assert "acme" in tenants
    assert f"{tenant.balance():.2f}" in tenants
    assert "order BANDWIDTH 100 -> 50" in page.locator("[data-testid=events]").inner_text()
    assert page.locator("[data-testid=zones] tbody tr").count() == 4
    assert _text(page, "clock-mode") == "simulated"
    shown = parse_iso(_text(page, "clock-now"))
    assert abs(shown - parse_iso(stack.admin.json("clock", "show")["now"])) < 10
    page.screenshot(path=str(shots / "operator.png"), full_page=True)

    page.fill("[data-testid=advance-amount]", "2")
    page.click("[data-testid=advance]")
    page.wait_for_function(
        f"Date.parse(document.querySelector('[data-testid=clock-now]').textContent) / 1000"
        f" >= {shown + 2 * 86400}"
    )
    moved = parse_iso(_text(page, "clock-now"))
    assert abs(moved - parse_iso(stack.admin.json("clock", "show")["now"])) < 10
    assert 2 * 86400 <= moved - shown < 2 * 86400 + 60
    assert page.errors == []


def test_console_is_served_from_the_package(stack: Stack) -> None:
    page = requests.get(f"http://{stack.host}/console", timeout=10)
    assert page.status_code == 200
    assert page.url.endswith("/console/")
    assert "console.js" in page.text
    script = requests.get(f"http://{stack.host}/console/console.js", timeout=10)
    assert "ZC2-HMAC-SHA256" in script.text
    assert requests.get(f"http://{stack.host}/console/nope.js", timeout=10).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_tenant_creates_an_instance_priced_first(browser: Any, make_stack: StackFactory) -> None:
    stack = make_stack()
    tenant = stack.tenant(balance="5000.00")
    page = _page(browser, stack)
    _sign_in_key(page, tenant)
    page.wait_for_selector("[data-testid=page]")
    page.click("[data-testid=create] summary")
    page.select_option("[data-testid=create-zone]", "SEL-A")
    page.wait_for_selector("[data-testid=create-type] option[value=M6C]", state="attached")
    page.select_option("[data-testid=create-type]", "M6C")
    page.select_option("[data-testid=create-charge]", "PREPAID")
    page.select_option("[data-testid=create-internet]", "ByBandwidth")
    page.fill("[data-testid=create-bandwidth]", "20")
    page.fill("[data-testid=create-name]", "made-in-browser")
    page.fill("[data-testid=create-password]", "Passw0rd-123")
    page.click("[data-testid=create-inquire]")
    shown = page.wait_for_selector("[data-testid=create-price]").inner_text()
    quoted = call(
        tenant,
        V2026,
        "InquiryPriceCreateInstance",
        zoneId="SEL-A",
        instanceTypeId="M6C",
        instanceChargeType="PREPAID",
        instanceChargePrepaid={"period": 1},
        internetChargeType="ByBandwidth",
        internetMaxBandwidthOut=20,
    )
    instance_price = Decimal(str(quoted.instancePrice.discountPrice))
    assert f"instance: {instance_price:.2f} now" in shown
    before = tenant.balance()
    page.click("[data-testid=create-confirm]")
    page.wait_for_selector("[data-testid=instances] tbody tr a")
    created = call(tenant, V2026, "DescribeInstances", instanceName="made-in-browser").dataSet
    assert len(created) == 1
    assert "made-in-browser" in page.locator("[data-testid=instances]").inner_text()
    items = [quoted.instancePrice, *(quoted.bandwidthPrice or []), quoted.primaryIpPrice]
    total = sum(Decimal(str(p.discountPrice)) for p in items if p and p.discountPrice is not None)
    assert before - tenant.balance() == total  # charged what was quoted
    assert page.errors == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_tenant_terminates_and_releases(browser: Any, make_stack: StackFactory) -> None:
    from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
        ZenlayerCloudSdkException,
    )

    stack = make_stack()
    tenant = stack.tenant()
    doomed = tenant.instance(name="doomed", zone="HKG-A", instance_charge_type="POSTPAID")
    page = _page(browser, stack)
    _sign_in_key(page, tenant)
    page.wait_for_selector("[data-testid=instances] tbody tr a")
    page.click("text=doomed")
    page.wait_for_selector("[data-testid=terminate]")
    page.click("[data-testid=terminate]")  # arms the button: nothing happens yet
    armed = call(tenant, V2026, "DescribeInstances", instanceIds=[doomed]).dataSet[0]
    assert armed.instanceStatus == "RUNNING"
    page.click("[data-testid=terminate]")
    page.wait_for_function(
        "document.querySelector('[data-testid=instance-status]')?.textContent === 'RECYCLE'"
    )
    listed = call(tenant, V2026, "DescribeInstances", instanceIds=[doomed]).dataSet
    assert listed[0].instanceStatus == "RECYCLE"
    page.click("[data-testid=release]")
    page.click("[data-testid=release]")
    page.wait_for_selector("[data-testid=instances]")
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        call(tenant, V2026, "DescribeInstanceInternetStatus", instanceId=doomed)
    assert caught.value.code == "INVALID_INSTANCE_NOT_FOUND"
    assert "doomed" not in page.locator("[data-testid=instances]").inner_text()
    assert page.errors == []
