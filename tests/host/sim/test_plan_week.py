"""A delayed sleeper's mornings under "advance 15 min/day towards 07:00", through the whole
firmware and `nightstand sync`: the device's dawn and wind-down move as planned across syncs."""

from __future__ import annotations

import pytest
from nsdev import config as devconfig
from plan_week import run_mornings


def _m(hhmm: str) -> int:
    return devconfig.hhmm_to_min(hhmm)


@pytest.mark.slow
def test_dawn_and_wind_down_move_as_planned_across_syncs(tmp_path) -> None:
    rows = run_mornings(tmp_path, 3)
    wakes = [r["wake"] for r in rows] + [rows[-1]["next_wake"]]
    assert wakes == ["09:30", "09:15", "09:00", "08:45"]
    for r in rows:
        # bedtime (and the wind-down, winddown_min before it) moves with wake
        assert (_m(r["next_wake"]) - _m(r["next_bedtime"])) % 1440 == 8 * 60
        # the board's own lamp started the dawn dawn_min before the wake it held that morning
        assert r["dawn_seen"] is not None
        lag = (_m(r["wake"]) - _m(r["dawn_seen"])) % 1440
        assert r["dawn_min"] - 1 <= lag <= r["dawn_min"] + 1, r
