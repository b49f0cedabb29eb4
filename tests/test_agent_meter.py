"""Counter readings to samples: wraps, resets and restarts lose and double nothing (no root)."""

from __future__ import annotations

from pathlib import Path

from zbmc.agent.meter import WRAP, Meter, delta, sample_id


def test_delta_counts_wraps_and_resets() -> None:
    assert delta(100, 250) == 150
    assert delta(WRAP - 10, 5) == 15  # a 64-bit wrap
    assert delta(1_000, 40) == 40  # recreated counter: what it counted since is new


def test_a_restart_resends_the_spool_under_the_same_ids_and_continues(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    meter = Meter.load(path, "h1")
    assert not meter.observe("i1", 10, 20, 1000)  # the first reading is the baseline
    assert meter.observe("i1", 110, 220, 1300)
    meter.save()
    spooled = list(meter.spool)
    assert spooled == [
        {
            "sampleId": "h1/i1/1300",
            "instanceId": "i1",
            "time": 1300,
            "intervalSeconds": 300,
            "inBytes": 100,
            "outBytes": 200,
        }
    ]
    again = Meter.load(path, "h1")  # crashed before sending: the same sample, the same id
    assert again.spool == spooled
    assert again.observe("i1", 150, 260, 1600)
    assert again.spool[-1]["inBytes"] == 40
    assert again.spool[-1]["outBytes"] == 40
    again.sent({"h1/i1/1300"})
    assert [s["sampleId"] for s in again.spool] == ["h1/i1/1600"]


def test_long_sample_ids_are_hashed_within_the_limit() -> None:
    assert len(sample_id("h" * 120, "932237369560662463", 1_700_000_000)) <= 128
