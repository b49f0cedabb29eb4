"""Traffic samples: validating agents' batches, storing them once, reading a window back.

Agents are operator-side, so a sample may name any tenant's instance. A batch is all or nothing:
the first invalid sample rejects it, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection

from zbmc.db.bulk import NewRows
from zbmc.db.tables import instances, traffic_samples
from zbmc.domain.traffic_stats import parse_wire_time
from zbmc.errors import IllegalTime

DEFAULT_INTERVAL_SECONDS = 300
MAX_INTERVAL_SECONDS = 86_400
MAX_SAMPLE_ID_LENGTH = 128
# Times, intervals and byte counts are 64-bit columns; no real sample comes near this bound.
MAX_NUMBER = 2**62
_CHUNK = 500  # ids per IN (...) list: far below every backend's bound-parameter limit
_KEYS = frozenset(
    {"sampleId", "instanceId", "time", "intervalSeconds", "inBytes", "outBytes", "inBps", "outBps"}
)


class SampleError(ValueError):
    """A sample (and so its whole batch) is invalid; the message says which and why."""


class Sample(NamedTuple):
    """One sample, its fields named after the columns of ``traffic_samples``."""

    sample_id: str
    instance_id: str
    ts: int
    interval_seconds: int
    in_bytes: int
    out_bytes: int


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


def _integer(where: str, name: str, value: Any) -> int:
    # JSON may arrive with floats as Decimal; 300.0 is still a whole number of seconds or bytes.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise SampleError(f"{where}: {name} must be a whole number, got {value!r}")
    if isinstance(value, Decimal):
        if value.is_finite() and value.adjusted() > 18:
            raise SampleError(f"{where}: {name} {value} is out of range: 0 to {MAX_NUMBER}")
        if not value.is_finite() or value != value.to_integral_value():
            raise SampleError(f"{where}: {name} must be a whole number, got {value}")
        value = int(value)
    if abs(value) > MAX_NUMBER:
        raise SampleError(f"{where}: {name} {value} is out of range: 0 to {MAX_NUMBER}")
    return int(value)


def _text(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SampleError(f"{where}: {name} is required and must be a non-empty string")
    return value


def _time(where: str, value: Any) -> int:
    if isinstance(value, str):
        try:
            return parse_wire_time("time", value)
        except IllegalTime:
            raise SampleError(
                f"{where}: time {value!r} must be YYYY-MM-DDThh:mm:ssZ or Unix seconds"
            ) from None
    ts = _integer(where, "time", value)
    if ts < 0:
        raise SampleError(f"{where}: time must not be negative")
    return ts


def _volume(where: str, raw: Mapping[str, Any], direction: str, interval: int) -> int:
    bytes_key, bps_key = f"{direction}Bytes", f"{direction}Bps"
    if (bytes_key in raw) == (bps_key in raw):
        raise SampleError(f"{where}: give exactly one of {bytes_key} and {bps_key}")
    if bytes_key in raw:
        volume = _integer(where, bytes_key, raw[bytes_key])
    else:
        bps = raw[bps_key]
        if isinstance(bps, bool) or not isinstance(bps, int | Decimal):
            raise SampleError(f"{where}: {bps_key} must be a number, got {bps!r}")
        if not Decimal(bps).is_finite() or abs(Decimal(bps)) > MAX_NUMBER:
            raise SampleError(f"{where}: {bps_key} {bps} is out of range: 0 to {MAX_NUMBER}")
        bits = Decimal(bps) * interval if isinstance(bps, Decimal) else bps * interval
        if not Decimal(bits).is_finite() or bits % 8 != 0:
            raise SampleError(
                f"{where}: {bps_key} {bps} over {interval} s is {Decimal(bits) / 8} bytes, "
                "not a whole number; send inBytes/outBytes instead"
            )
        volume = int(bits) // 8
    if not 0 <= volume <= MAX_NUMBER:
        raise SampleError(f"{where}: {direction} traffic must be 0 to {MAX_NUMBER} bytes")
    return volume


def parse_sample(raw: Any, index: int) -> Sample:
    """One sample from its JSON object (keys as in docs/traffic.md)."""
    where = f"sample {index}"
    if not isinstance(raw, Mapping):
        raise SampleError(f"{where}: must be a JSON object")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise SampleError(f"{where}: unknown keys {', '.join(unknown)}")
    sample_id = _text(where, "sampleId", raw.get("sampleId"))
    where = f"sample {index} ({sample_id})"
    if len(sample_id) > MAX_SAMPLE_ID_LENGTH:
        raise SampleError(f"{where}: sampleId is longer than {MAX_SAMPLE_ID_LENGTH} characters")
    if "time" not in raw:
        raise SampleError(f"{where}: time is required")
    interval = _integer(
        where, "intervalSeconds", raw.get("intervalSeconds", DEFAULT_INTERVAL_SECONDS)
    )
    if not 1 <= interval <= MAX_INTERVAL_SECONDS:
        raise SampleError(f"{where}: intervalSeconds must be 1..{MAX_INTERVAL_SECONDS}")
    return Sample(
        sample_id=sample_id,
        instance_id=_text(where, "instanceId", raw.get("instanceId")),
        ts=_time(where, raw["time"]),
        interval_seconds=interval,
        in_bytes=_volume(where, raw, "in", interval),
        out_bytes=_volume(where, raw, "out", interval),
    )


def _plain(raw: Any) -> Sample | None:
    """The usual sample (whole numbers, Unix-seconds time) checked in one pass, or None:
    anything else, valid or not, goes through ``parse_sample``, which has the rules and the
    messages. It accepts exactly what ``parse_sample`` accepts of this shape, with the same
    result; checking 10 000 samples took 0.2 s through ``parse_sample`` alone."""
    if type(raw) is not dict or not raw.keys() <= _KEYS:
        return None
    sample_id = raw.get("sampleId")
    instance_id = raw.get("instanceId")
    ts = raw.get("time")
    interval = raw.get("intervalSeconds", DEFAULT_INTERVAL_SECONDS)
    if not (
        type(sample_id) is str
        and 0 < len(sample_id) <= MAX_SAMPLE_ID_LENGTH
        and type(instance_id) is str
        and instance_id
        and type(ts) is int
        and 0 <= ts <= MAX_NUMBER
        and type(interval) is int
        and 1 <= interval <= MAX_INTERVAL_SECONDS
    ):
        return None
    in_bytes = _plain_volume(raw, "inBytes", "inBps", interval)
    out_bytes = _plain_volume(raw, "outBytes", "outBps", interval)
    if in_bytes is None or out_bytes is None:
        return None
    return Sample(sample_id, instance_id, ts, interval, in_bytes, out_bytes)


def _plain_volume(raw: dict[str, Any], bytes_key: str, bps_key: str, interval: int) -> int | None:
    if bytes_key not in raw:
        bps = raw.get(bps_key)
        if type(bps) is not int or not 0 <= bps <= MAX_NUMBER or bps * interval % 8:
            return None
        volume = bps * interval // 8
        return volume if volume <= MAX_NUMBER else None
    volume = raw[bytes_key]
    if type(volume) is not int or not 0 <= volume <= MAX_NUMBER or bps_key in raw:
        return None
    return volume


def parse_samples(raw: Any) -> list[Sample]:
    if not isinstance(raw, list):
        raise SampleError("samples must be a JSON array of sample objects")
    parsed = []
    for index, item in enumerate(raw):
        sample = _plain(item)
        parsed.append(parse_sample(item, index) if sample is None else sample)
    return parsed


def _existing_instances(conn: Connection, wanted: set[str]) -> set[str]:
    found: set[str] = set()
    column = instances.c.instance_id
    ordered = sorted(wanted)
    for i in range(0, len(ordered), _CHUNK):
        chunk = ordered[i : i + _CHUNK]
        found.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
    return found


# Sample ids are the primary key: the database drops the ones it holds already, and also the
# ones a concurrent batch is inserting (on PostgreSQL, after waiting for that batch to end).
_NEW_SAMPLES = NewRows(traffic_samples, Sample._fields, "sample_id")


def ingest(conn: Connection, samples: Sequence[Sample]) -> IngestResult:
    """Store the samples whose id is new; a resent id (stored or earlier in the batch) is a
    duplicate and ignored, even if its values differ."""
    wanted = {s.instance_id for s in samples}
    missing = wanted - _existing_instances(conn, wanted)
    if missing:
        raise SampleError(f"unknown instanceId: {', '.join(sorted(missing))}")
    first: dict[str, Sample] = {}
    for sample in samples:
        first.setdefault(sample.sample_id, sample)
    # One order for every batch, so two batches sharing new ids wait on each other instead of
    # deadlocking (PostgreSQL locks each unique key as it inserts it).
    accepted = _NEW_SAMPLES.insert(conn, [first[sample_id] for sample_id in sorted(first)])
    return IngestResult(accepted=accepted, duplicates=len(samples) - accepted)


def window(
    conn: Connection, instance_id: str, after: int, until: int
) -> list[tuple[int, int, int]]:
    """(ts, in_bytes, out_bytes) of the instance's samples with ``after < ts <= until``."""
    c = traffic_samples.c
    query = (
        select(c.ts, c.in_bytes, c.out_bytes)
        .where(c.instance_id == instance_id, c.ts > after, c.ts <= until)
        .order_by(c.ts)
    )
    return [(int(r.ts), int(r.in_bytes), int(r.out_bytes)) for r in conn.execute(query)]
