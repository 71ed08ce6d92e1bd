"""The lamp plan: step limits, phase guard, dark window, DST and missed syncs."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nightstand import plan
from nightstand.phase import PhaseEstimate
from nightstand.plan import PlanError, PlanSettings
from nsdev import config as devconfig
from nsdev.core import light

D0 = dt.date(2026, 3, 20)


def _mins(hhmm: str) -> int:
    return devconfig.hhmm_to_min(hhmm)


def _gap(a: str, b: str) -> int:
    d = (_mins(b) - _mins(a)) % 1440
    return d - 1440 if d > 720 else d


def _apply(cfg: dict, step: plan.Step) -> dict:
    new, errors = devconfig.merge(cfg, step.changes)
    assert not errors
    return new


def test_keep_changes_nothing() -> None:
    s = plan.next_step(devconfig.defaults(), PlanSettings("keep"), D0)
    assert s.changes == {} and "keeping" in s.reason


def test_advance_walks_to_the_target_in_daily_steps() -> None:
    cfg = devconfig.defaults() | {"bedtime": "01:30", "wake": "09:30"}
    settings_ = PlanSettings("advance", "07:00", 15)
    last = None
    days = 0
    while cfg["wake"] != "07:00":
        day = D0 + dt.timedelta(days=days)
        s = plan.next_step(cfg, settings_, day, last)
        assert s.changes, s.reason
        assert abs(_gap(cfg["wake"], s.changes["wake"])) <= 15
        # bedtime moves with wake: the night keeps its length
        assert _gap(s.changes["bedtime"], s.changes["wake"]) == _gap(cfg["bedtime"], cfg["wake"])
        cfg, last = _apply(cfg, s), day
        # a second sync the same day changes nothing
        again = plan.next_step(cfg, settings_, day, last)
        assert again.changes == {}
        assert "one step per day" in again.reason or cfg["wake"] == "07:00"
        days += 1
    assert days == 10  # 150 min in 15-min steps
    assert plan.next_step(cfg, settings_, D0 + dt.timedelta(days=30), last).changes == {}


def test_a_missed_sync_never_makes_a_bigger_jump() -> None:
    cfg = devconfig.defaults() | {"bedtime": "01:00", "wake": "09:00"}
    s = plan.next_step(cfg, PlanSettings("advance", "07:00", 20), D0 + dt.timedelta(days=5),
                       last_step_day=D0)
    assert s.changes["wake"] == "08:40"


def _phase(cbt_local: str, offset: int = 0) -> PhaseEstimate:
    base = 1773964800  # 2026-03-20 00:00 UTC
    c = base + _mins(cbt_local) * 60 - offset
    return PhaseEstimate(night_id=1, utc_offset_s=offset, onset_unix_s=c - 5 * 3600,
                         offset_unix_s=c + 3 * 3600, dlmo_unix_s=c - 7 * 3600,
                         dlmo_band_unix_s=(c - 7.5 * 3600, c - 6.5 * 3600), cbtmin_unix_s=c,
                         cbtmin_band_unix_s=(c - 1800, c + 1800),
                         evening_mel_lx_h=None, morning_mel_lx_h=None)


def test_advance_waits_for_the_temperature_minimum() -> None:
    cfg = devconfig.defaults() | {"bedtime": "23:00", "wake": "07:00", "dawn_min": 30}
    # CBTmin predicted at 06:00 (latest 06:30): dawn now starts 06:30; no earlier is allowed
    s = plan.next_step(cfg, PlanSettings("advance", "06:00", 15), D0, phase=_phase("06:00"))
    assert s.changes == {} and "temperature minimum" in s.reason
    # with CBTmin at 05:50 (latest 06:20) the step is cut to 10 min
    s = plan.next_step(cfg, PlanSettings("advance", "06:00", 15), D0, phase=_phase("05:50"))
    assert s.changes["wake"] == "06:50" and s.dawn_start == "06:20"
    # delaying is never held back by the guard
    s = plan.next_step(cfg, PlanSettings("advance", "08:00", 15), D0, phase=_phase("06:50"))
    assert s.changes["wake"] == "07:15"


def test_bad_settings_keep_the_previous_plan() -> None:
    cfg = devconfig.defaults()
    for bad, match in ((PlanSettings("advance", None), "target wake"),
                       (PlanSettings("advance", "25:00"), "not a time"),
                       (PlanSettings("advance", "07:00", 0), "1..60"),
                       (PlanSettings("sideways"), "unknown plan mode")):
        with pytest.raises(PlanError, match=match):
            plan.next_step(cfg, bad, D0)
    # a schedule the device would refuse (night shorter than the dawn + 10 min)
    tight = devconfig.defaults() | {"bedtime": "06:10", "wake": "07:00", "dawn_min": 45}
    with pytest.raises(PlanError, match="previous plan stays in force"):
        plan.next_step(tight, PlanSettings("advance", "06:40", 15), D0)


def _lamp_over_a_night(cfg: dict, day: dt.date,
                       tz: zoneinfo.ZoneInfo) -> list[tuple[int, str, float]]:
    """(unix_s, phase, lamp melanopic EDI) each minute from 18:00 to 12:00 local, as the
    firmware's own light controller runs it, with the UTC offset the host sets for that date."""
    ctl = light.LightController(light.config_from_device(cfg))
    start = dt.datetime.combine(day, dt.time(18, 0), tz)
    out = []
    for k in range(18 * 60):
        when = start + dt.timedelta(minutes=k)
        unix = int(when.timestamp())
        off = int(when.utcoffset().total_seconds())  # type: ignore[union-attr]
        for s in range(0, 60, 10):
            w, a, _ev = ctl.update(unix + s, off)
        out.append((unix, light.PHASE_NAMES[ctl.phase], ctl.lamp_mel_edi_lx(w, a)))
    return out


@settings(max_examples=25, deadline=None)
@given(bed=st.integers(20 * 60, 26 * 60 - 1), night_h=st.integers(6, 10),
       target=st.integers(5 * 60, 10 * 60), step=st.integers(5, 60),
       dawn=st.integers(5, 60))
def test_planned_schedules_never_put_the_dawn_in_the_dark_window(
        bed: int, night_h: int, target: int, step: int, dawn: int) -> None:
    wake = bed + night_h * 60
    cfg = devconfig.defaults() | {"bedtime": plan._fmt(bed), "wake": plan._fmt(wake),
                                  "dawn_min": dawn}
    s = plan.next_step(cfg, PlanSettings("advance", plan._fmt(target), step), D0)
    new = _apply(cfg, s)
    assert abs(_gap(cfg["wake"], new["wake"])) <= step
    # dawn starts exactly dawn_min before wake, after the dark window (bedtime .. dawn start)
    assert _gap(s.dawn_start, new["wake"]) == dawn
    assert 0 < _gap(new["bedtime"], s.dawn_start)


@pytest.mark.parametrize("tzname", ["Europe/Berlin", "America/New_York"])
def test_plan_across_a_dst_change_steps_in_local_time(tzname: str) -> None:
    tz = zoneinfo.ZoneInfo(tzname)
    cfg = devconfig.defaults() | {"bedtime": "00:30", "wake": "08:30"}
    settings_ = PlanSettings("advance", "07:00", 15)
    first = dt.date(2026, 3, 5)  # the US changes on 8 March 2026, the EU on 29 March 2026
    last = None
    wakes = []
    for i in range(30):
        day = first + dt.timedelta(days=i)
        s = plan.next_step(cfg, settings_, day, last)
        if s.changes:
            cfg, last = _apply(cfg, s), day
        wakes.append(cfg["wake"])
        if i in (2, 3, 23, 24):  # the nights around both DST changes, as the device runs them
            lamp = _lamp_over_a_night(cfg, day, tz)
            dawn_start = _mins(s.dawn_start)
            for unix, phase_name, mel in lamp:
                local = dt.datetime.fromtimestamp(unix, tz)
                m = local.hour * 60 + local.minute
                in_dark = phase_name == "night"
                if in_dark:
                    assert mel <= 1.0, (local, mel)  # the night's limit (Brown et al. 2022)
                    assert m != dawn_start
                if m == (dawn_start + 1) % 1440:
                    assert phase_name == "dawn", (local, phase_name)
    steps = [_gap(a, b) for a, b in zip(["08:30", *wakes], wakes, strict=False)]
    assert all(-15 <= d <= 0 for d in steps)
    assert wakes[-1] == "07:00" and sum(1 for d in steps if d) == 6
