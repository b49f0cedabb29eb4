"""Traffic ingestion (``zbmc admin traffic ingest``) and DescribeInstanceTraffic through the SDK.

The spec's worked example is dated 2023-07-11, but only the last 30 days of the billing clock can
be queried and the simulated clock only moves forward. So the example is replayed on yesterday's
date at the same times of day, and the whole response is compared with the spec's JSON with only
the date substituted: every number, key and time of day must match to the digit.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.harness import V2022, V2026, Stack, Tenant
from zbmc.domain import traffic_stats
from zbmc.store import traffic as traffic_store

SPEC_EXAMPLE = (
    '{"dataList":[{"internetRX":144056,"internetTX":2936,"time":"2023-07-11T06:55:00Z"},'
    '{"internetRX":107104,"internetTX":2568,"time":"2023-07-11T07:00:00Z"},'
    '{"internetRX":93448,"internetTX":3880,"time":"2023-07-11T07:05:00Z"},'
    '{"internetRX":106504,"internetTX":5800,"time":"2023-07-11T07:10:00Z"}],'
    '"in95":144056,"in95Time":"2023-07-11T06:55:00Z","inAvg":112778,"inMax":144056,'
    '"inMin":93448,"inTotal":16916700,"out95":5800,"out95Time":"2023-07-11T07:10:00Z",'
    '"outAvg":3796,"outMax":5800,"outMin":2568,"outTotal":569400,'
    '"maxBandwidth95ValueMbps":0.14,"totalUnit":"B","unit":"bps"}'
)
EMPTY_RESPONSE = {
    "dataList": [],
    "in95": 0,
    "in95Time": None,
    "inAvg": 0,
    "inMax": 0,
    "inMin": 0,
    "inTotal": 0,
    "out95": 0,
    "out95Time": None,
    "outAvg": 0,
    "outMax": 0,
    "outMin": 0,
    "outTotal": 0,
    "maxBandwidth95ValueMbps": 0.0,
    "totalUnit": "B",
    "unit": "bps",
}


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return __import__(f"zenlayercloud.bmc.{module}.models", fromlist=["models"])


def describe(tenant: Tenant, version: str, instance_id: str, start: str, end: str) -> Any:
    request = models(version).DescribeInstanceTrafficRequest()
    request.instanceId, request.startTime, request.endTime = instance_id, start, end
    return tenant.client(version).DescribeInstanceTraffic(request)


def describe_raw(tenant: Tenant, version: str, instance_id: str, start: str, end: str) -> Any:
    body = {"instanceId": instance_id, "startTime": start, "endTime": end}
    key = (tenant.access_key_id, tenant.access_key_password)
    return tenant.stack.raw(body, action="DescribeInstanceTraffic", version=version, key=key)


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ingest(stack: Stack, tmp_path: Path, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Ingest as JSON lines through the admin CLI, like an agent's spool file."""
    path = tmp_path / f"samples-{time.monotonic_ns()}.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    return dict(stack.admin.json("traffic", "ingest", str(path)))


def ingest_fails(stack: Stack, tmp_path: Path, samples: list[dict[str, Any]]) -> str:
    path = tmp_path / f"bad-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(samples))
    return stack.admin.fails("traffic", "ingest", str(path))


def hour_ago() -> int:
    """A 5-minute boundary about an hour before now: safely inside the 30-day window."""
    return int(time.time()) // 300 * 300 - 3600


def sample(sample_id: str, instance_id: str, ts: int | str, **values: Any) -> dict[str, Any]:
    return {"sampleId": sample_id, "instanceId": instance_id, "time": ts, **values}


def assert_illegal_time(tenant: Tenant, version: str, iid: str, start: str, end: str) -> None:
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        describe(tenant, version, iid, start, end)
    assert caught.value.code == "INVALID_PARAMETER_ILLEGAL_TIME"
    response = describe_raw(tenant, version, iid, start, end)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_PARAMETER_ILLEGAL_TIME"


# --- the spec's worked example ----------------------------------------------------------------


def test_worked_example_to_the_digit(
    stack: Stack, tenant: Tenant, version: str, tmp_path: Path
) -> None:
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    expected = json.loads(SPEC_EXAMPLE.replace("2023-07-11", day))
    iid = tenant.instance()
    samples = [
        sample(
            f"{iid}-{i}", iid, point["time"], inBps=point["internetRX"], outBps=point["internetTX"]
        )
        for i, point in enumerate(expected["dataList"])
    ]
    assert ingest(stack, tmp_path, samples) == {"accepted": 4, "duplicates": 0}
    start, end = f"{day}T06:50:36Z", f"{day}T07:10:36Z"

    response = describe_raw(tenant, version, iid, start, end)
    assert response.status_code == 200
    body = response.json()["response"]
    assert body.pop("requestId") == response.json()["requestId"]
    assert body == expected
    assert isinstance(body["maxBandwidth95ValueMbps"], float)

    result = describe(tenant, version, iid, start, end)
    assert [(d.internetRX, d.internetTX, d.time) for d in result.dataList] == [
        (d["internetRX"], d["internetTX"], d["time"]) for d in expected["dataList"]
    ]
    assert (result.in95, result.in95Time, result.inAvg, result.inTotal) == (
        144056,
        f"{day}T06:55:00Z",
        112778,
        16916700,
    )
    assert (result.out95, result.out95Time, result.outAvg, result.outTotal) == (
        5800,
        f"{day}T07:10:00Z",
        3796,
        569400,
    )
    assert (result.maxBandwidth95ValueMbps, result.totalUnit, result.unit) == (0.14, "B", "bps")


# --- ingestion --------------------------------------------------------------------------------


def test_bytes_and_bps_inputs_give_the_same_rates(
    stack: Stack, tenant: Tenant, tmp_path: Path
) -> None:
    iid = tenant.instance()
    t = hour_ago()
    result = ingest(
        stack,
        tmp_path,
        [
            # 8 Mbps in over 300 s is 300,000,000 bytes; 2 Mbps out is 75,000,000 bytes.
            sample(f"{iid}-a", iid, t, inBytes=300_000_000, outBytes=75_000_000),
            sample(f"{iid}-b", iid, iso(t + 300), inBps=8_000_000, outBps=2_000_000),
            # a 60-second sample: 100 bps * 60 s / 8 = 750 bytes, alone in its bucket
            sample(f"{iid}-c", iid, t + 600, intervalSeconds=60, inBps=100, outBytes=0),
        ],
    )
    assert result == {"accepted": 3, "duplicates": 0}
    data = describe(tenant, V2026, iid, iso(t - 300), iso(t + 600)).dataList
    assert [(d.internetRX, d.internetTX, d.time) for d in data] == [
        (8_000_000, 2_000_000, iso(t)),
        (8_000_000, 2_000_000, iso(t + 300)),
        (20, 0, iso(t + 600)),  # 750 bytes * 8 / 300 s
    ]


def test_non_integral_bps_rejects_the_whole_batch(
    stack: Stack, tenant: Tenant, tmp_path: Path
) -> None:
    iid = tenant.instance()
    t = hour_ago()
    good = sample(f"{iid}-good", iid, t, inBytes=1000, outBytes=1000)
    # 3 bps over 1 s is 0.375 bytes: no whole number of bytes
    bad = sample(f"{iid}-bad", iid, t + 300, intervalSeconds=1, inBps=3, outBps=8)
    output = ingest_fails(stack, tmp_path, [good, bad])
    assert "sample 1" in output
    assert "inBps" in output
    assert "not a whole number" in output
    assert describe(tenant, V2026, iid, iso(t - 300), iso(t + 600)).dataList == []
    # the good sample was not stored: it is accepted now, not a duplicate
    assert ingest(stack, tmp_path, [good]) == {"accepted": 1, "duplicates": 0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"instanceId": "no-such-instance"}, "unknown instanceId: no-such-instance"),
        ({"sampleId": ""}, "sampleId is required"),
        ({"time": "2024-01-01 00:00:00"}, "YYYY-MM-DDThh:mm:ssZ or Unix seconds"),
        ({"time": 1.5}, "time must be a whole number"),
        ({"intervalSeconds": 0}, "intervalSeconds must be"),
        ({"inBytes": -1}, "in traffic must be 0 to"),
        ({"inBps": 8}, "exactly one of inBytes and inBps"),
        ({"colour": "red"}, "unknown keys colour"),
        ({"inBytes": "12"}, "inBytes must be a whole number"),
    ],
)
def test_invalid_sample_rejects_the_batch(
    stack: Stack, tenant: Tenant, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    iid = tenant.instance()
    t = hour_ago()
    good = sample(f"{iid}-ok", iid, t, inBytes=10, outBytes=20)
    bad = sample(f"{iid}-x", iid, t + 300, inBytes=10, outBytes=20) | change
    assert message in ingest_fails(stack, tmp_path, [good, bad])
    assert describe(tenant, V2026, iid, iso(t - 300), iso(t + 600)).dataList == []


def test_resent_sample_ids_are_ignored(stack: Stack, tenant: Tenant, tmp_path: Path) -> None:
    iid = tenant.instance()
    t = hour_ago()
    batch = [sample(f"{iid}-{i}", iid, t + 300 * i, inBps=800, outBps=1600) for i in range(3)]
    assert ingest(stack, tmp_path, batch) == {"accepted": 3, "duplicates": 0}
    assert ingest(stack, tmp_path, batch) == {"accepted": 0, "duplicates": 3}
    # a resent id keeps the first values; a repeat inside one batch counts as a duplicate too
    changed = sample(f"{iid}-0", iid, t, inBps=999_992, outBps=8)
    repeated = sample(f"{iid}-3", iid, t + 900, inBps=800, outBps=1600)
    assert ingest(stack, tmp_path, [changed, repeated, repeated]) == {
        "accepted": 1,
        "duplicates": 2,
    }
    result = describe(tenant, V2026, iid, iso(t), iso(t + 900))
    assert [(d.internetRX, d.internetTX) for d in result.dataList] == [(800, 1600)] * 4
    assert (result.inTotal, result.outTotal) == (4 * 30_000, 4 * 60_000)


def test_large_batches_cross_query_chunks(stack: Stack, tenant: Tenant, tmp_path: Path) -> None:
    iid = tenant.instance()
    t = hour_ago() - 86_400
    batch = [sample(f"{iid}-{i}", iid, t - 60 * i, inBytes=i, outBytes=0) for i in range(1200)]
    assert ingest(stack, tmp_path, batch) == {"accepted": 1200, "duplicates": 0}
    assert ingest(stack, tmp_path, batch[::-1] + batch[:1]) == {"accepted": 0, "duplicates": 1201}


def test_json_array_and_samples_object_are_accepted(
    stack: Stack, tenant: Tenant, tmp_path: Path
) -> None:
    iid = tenant.instance()
    t = hour_ago()
    as_array = tmp_path / "array.json"
    as_array.write_text(json.dumps([sample(f"{iid}-1", iid, t, inBytes=1, outBytes=2)]))
    as_object = tmp_path / "object.json"
    as_object.write_text(
        json.dumps({"samples": [sample(f"{iid}-2", iid, t + 300, inBytes=1, outBytes=2)]})
    )
    assert stack.admin.json("traffic", "ingest", str(as_array))["accepted"] == 1
    assert stack.admin.json("traffic", "ingest", str(as_object))["accepted"] == 1
    assert len(describe(tenant, V2026, iid, iso(t), iso(t + 300)).dataList) == 2


# --- buckets and the window -------------------------------------------------------------------


def test_samples_off_the_boundary_fill_the_bucket_they_end_in(
    stack: Stack, tenant: Tenant, tmp_path: Path
) -> None:
    iid = tenant.instance()
    t = hour_ago()  # a boundary; the buckets below are named t + 300 and t + 600
    ingest(
        stack,
        tmp_path,
        [
            sample(f"{iid}-1", iid, t + 1, intervalSeconds=60, inBytes=3000, outBytes=0),
            sample(f"{iid}-2", iid, t + 150, intervalSeconds=60, inBytes=4500, outBytes=75),
            sample(f"{iid}-3", iid, t + 300, intervalSeconds=60, inBytes=3750, outBytes=0),
            sample(f"{iid}-4", iid, t + 301, intervalSeconds=60, inBytes=375, outBytes=0),
            sample(f"{iid}-5", iid, t, intervalSeconds=60, inBytes=99_999, outBytes=0),
        ],
    )
    result = describe(tenant, V2026, iid, iso(t + 1), iso(t + 600))
    assert [(d.internetRX, d.internetTX, d.time) for d in result.dataList] == [
        ((3000 + 4500 + 3750) * 8 // 300, 75 * 8 // 300, iso(t + 300)),
        (375 * 8 // 300, 0, iso(t + 600)),
    ]
    assert result.inTotal == 3000 + 4500 + 3750 + 375
    assert result.outTotal == 75


def test_no_samples_gives_zeros_and_null_times(tenant: Tenant, version: str) -> None:
    iid = tenant.instance()
    t = hour_ago()
    response = describe_raw(tenant, version, iid, iso(t), iso(t + 3600))
    assert response.status_code == 200
    body = response.json()["response"]
    body.pop("requestId")
    assert body == EMPTY_RESPONSE


@pytest.mark.parametrize(
    ("start_offset", "end_offset"),
    [
        (3600, 0),  # end before start
        (0, 86_401),  # longer than a day
    ],
)
def test_window_order_and_span(
    tenant: Tenant, version: str, start_offset: int, end_offset: int
) -> None:
    iid = tenant.instance()
    t = hour_ago() - 86_400
    assert_illegal_time(tenant, version, iid, iso(t + start_offset), iso(t + end_offset))


def test_window_boundaries_are_inclusive(tenant: Tenant) -> None:
    iid = tenant.instance()
    t = hour_ago() - 86_400
    assert describe(tenant, V2026, iid, iso(t), iso(t + 86_400)).dataList == []
    assert describe(tenant, V2022, iid, iso(t), iso(t)).dataList == []


@pytest.mark.parametrize(
    "bad",
    ["2024-01-01 00:00:00", "2024-01-01T00:00:00", "2024-1-1T0:0:0Z", "2024-02-30T00:00:00Z", "x"],
)
def test_window_format(tenant: Tenant, version: str, bad: str) -> None:
    iid = tenant.instance()
    good = iso(hour_ago())
    assert_illegal_time(tenant, version, iid, bad, good)
    assert_illegal_time(tenant, version, iid, good, bad)


def test_window_older_than_30_days(tenant: Tenant, version: str) -> None:
    iid = tenant.instance()
    start = int(time.time()) - 30 * 86_400 - 600
    assert_illegal_time(tenant, version, iid, iso(start), iso(start + 3600))
    # a few minutes later the same query is inside the 30 days
    later = start + 1200
    assert describe(tenant, version, iid, iso(later), iso(later + 3600)).dataList == []


def test_30_days_count_on_the_billing_clock(make_stack: Any, tmp_path: Path) -> None:
    stack = make_stack()
    stack.admin.run("clock", "simulate")
    tenant = stack.tenant()
    iid = tenant.instance()
    t = hour_ago()
    ingest(stack, tmp_path, [sample(f"{iid}-1", iid, t, inBps=8, outBps=16)])
    assert len(describe(tenant, V2026, iid, iso(t - 300), iso(t)).dataList) == 1
    stack.admin.run("clock", "advance", "31d")
    assert_illegal_time(tenant, V2026, iid, iso(t - 300), iso(t))


# --- who may read what --------------------------------------------------------------------------


def test_other_tenants_and_unknown_instances_are_not_found(
    stack: Stack, tenant: Tenant, version: str, tmp_path: Path
) -> None:
    owner = stack.tenant()
    iid = owner.instance()
    t = hour_ago()
    ingest(stack, tmp_path, [sample(f"{iid}-1", iid, t, inBps=8, outBps=8)])
    assert len(describe(owner, version, iid, iso(t), iso(t)).dataList) == 1
    for instance_id in (iid, "no-such-instance"):
        with pytest.raises(ZenlayerCloudSdkException) as caught:
            describe(tenant, version, instance_id, iso(t), iso(t))
        assert caught.value.code == "INVALID_INSTANCE_NOT_FOUND"
        response = describe_raw(tenant, version, instance_id, iso(t), iso(t))
        assert response.status_code == 404
        assert response.json()["code"] == "INVALID_INSTANCE_NOT_FOUND"


def test_unknown_instance_wins_over_a_bad_window(tenant: Tenant) -> None:
    response = describe_raw(tenant, V2026, "no-such-instance", "bad", "bad")
    assert (response.status_code, response.json()["code"]) == (404, "INVALID_INSTANCE_NOT_FOUND")


def test_missing_parameters(tenant: Tenant) -> None:
    key = (tenant.access_key_id, tenant.access_key_password)
    response = tenant.stack.raw(
        {"instanceId": tenant.instance(), "startTime": iso(hour_ago())},
        action="DescribeInstanceTraffic",
        key=key,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "MISSING_PARAMETER"
    assert "endTime" in response.json()["message"]


# --- the statistics as pure rules -------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "discarded"), [(1, 0), (19, 0), (20, 1), (39, 1), (40, 2), (288, 14)]
)
def test_burstable_95th_discards_the_top_five_percent(n: int, discarded: int) -> None:
    values = [(1000 * (i + 1), 300 * i) for i in range(n)]  # distinct, ascending
    value, at = traffic_stats.burstable_95th(values)
    assert (value, at) == values[n - 1 - discarded]


def test_burstable_95th_reports_the_earliest_of_equal_values() -> None:
    assert traffic_stats.burstable_95th([(5, 900), (7, 600), (5, 300)]) == (7, 600)
    assert traffic_stats.burstable_95th([(5, 900), (5, 300)]) == (5, 300)


def test_average_rounds_down_and_mbps_rounds_half_up() -> None:
    points = [traffic_stats.Point(300, 3750, 0), traffic_stats.Point(600, 3788, 0)]
    summary = traffic_stats.summarize(points)  # 100 bps and 101 bps
    assert summary.inbound.avg == 100
    half = traffic_stats.Point(300, 5_000_000 * 300 // 8, 0)  # exactly 5 Mbps = 5.00
    assert traffic_stats.summarize([half]).max_95_mbps == Decimal("5.00")
    up = traffic_stats.Point(300, 145_000 * 300 // 8, 0)  # 0.145 Mbps -> 0.15
    assert traffic_stats.summarize([up]).max_95_mbps == Decimal("0.15")


_VALUES = st.one_of(
    st.integers(min_value=-10, max_value=2**40),
    st.integers(min_value=2**62 - 10, max_value=2**63),
    st.integers(min_value=2**59 - 10, max_value=2**60),
    st.sampled_from([0, 1, 7, 8, 300, 86_400, 86_401, True, False, None, "", "x", "12"]),
    st.decimals(allow_nan=True, allow_infinity=True, places=1),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01", [], {}]),
)
_SAMPLE_KEYS = [*sorted(traffic_store._KEYS), "colour"]


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.sampled_from(_SAMPLE_KEYS), _VALUES, max_size=9),
    st.sampled_from(["s-1", "", "x" * 129, 5]),
    st.sampled_from(["i-1", "", None]),
)
def test_the_quick_sample_check_agrees_with_the_full_one(
    raw: dict[str, Any], sample_id: Any, instance_id: Any
) -> None:
    """``parse_samples`` checks the usual shape in one pass: every sample must come out exactly
    as ``parse_sample`` makes it, or be rejected with its message."""
    for item in (raw, {"sampleId": sample_id, "instanceId": instance_id, **raw}):
        try:
            expected: Any = traffic_store.parse_sample(item, 0)
        except traffic_store.SampleError as exc:
            expected = str(exc)
        try:
            got: Any = traffic_store.parse_samples([item])[0]
        except traffic_store.SampleError as exc:
            got = str(exc)
        assert got == expected
        if not isinstance(got, str):
            assert [type(v) for v in got] == [str, str, int, int, int, int]


def test_the_first_of_repeated_ids_in_a_batch_is_kept(
    stack: Stack, tenant: Tenant, tmp_path: Path
) -> None:
    iid = tenant.instance()
    t = hour_ago()
    first = sample(f"{iid}-r", iid, t, inBytes=30_000, outBytes=60_000)
    second = sample(f"{iid}-r", iid, t, inBytes=1, outBytes=2)
    assert ingest(stack, tmp_path, [first, second]) == {"accepted": 1, "duplicates": 1}
    result = describe(tenant, V2026, iid, iso(t - 300), iso(t))
    assert [(d.internetRX, d.internetTX) for d in result.dataList] == [(800, 1600)]
