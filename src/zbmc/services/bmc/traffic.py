"""DescribeInstanceTraffic: 5-minute bandwidth samples and burstable-95th statistics."""

from __future__ import annotations

from pydantic import Field

from zbmc.clock import iso
from zbmc.context import Context
from zbmc.domain import traffic_stats as stats
from zbmc.registry import action
from zbmc.store import instances
from zbmc.store import traffic as store
from zbmc.wire import RequiredStr, WireModel


class DescribeInstanceTrafficRequest(WireModel):
    instance_id: RequiredStr
    start_time: RequiredStr
    end_time: RequiredStr


class InstanceTrafficData(WireModel):
    # The provider spells these with an upper-case RX/TX, which the alias rule cannot produce.
    internet_rx: int = Field(alias="internetRX")
    internet_tx: int = Field(alias="internetTX")
    time: str


class DescribeInstanceTrafficResponse(WireModel):
    data_list: list[InstanceTrafficData]
    in95: int
    in95_time: str | None
    in_avg: int
    in_max: int
    in_min: int
    in_total: int
    out95: int
    out95_time: str | None
    out_avg: int
    out_max: int
    out_min: int
    out_total: int
    max_bandwidth95_value_mbps: float
    total_unit: str = "B"
    unit: str = "bps"


@action(
    "DescribeInstanceTraffic",
    request=DescribeInstanceTrafficRequest,
    response=DescribeInstanceTrafficResponse,
    write=False,
)
def describe_instance_traffic(
    ctx: Context, req: DescribeInstanceTrafficRequest
) -> DescribeInstanceTrafficResponse:
    """Public-network samples of one instance over at most one day of the last 30 days."""
    instances.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=False)
    start, end = stats.check_window(req.start_time, req.end_time, ctx.now)
    first, last = stats.bucket_range(start, end)
    samples = store.window(ctx.conn, req.instance_id, first - stats.BUCKET_SECONDS, last)
    summary = stats.summarize(stats.points(samples, start, end))
    rx, tx = summary.inbound, summary.outbound
    return DescribeInstanceTrafficResponse(
        data_list=[
            InstanceTrafficData(internet_rx=p.rx, internet_tx=p.tx, time=iso(p.time) or "")
            for p in summary.points
        ],
        in95=rx.p95,
        in95_time=iso(rx.p95_time),
        in_avg=rx.avg,
        in_max=rx.max,
        in_min=rx.min,
        in_total=rx.total_bytes,
        out95=tx.p95,
        out95_time=iso(tx.p95_time),
        out_avg=tx.avg,
        out_max=tx.max,
        out_min=tx.min,
        out_total=tx.total_bytes,
        max_bandwidth95_value_mbps=float(summary.max_95_mbps),
    )
