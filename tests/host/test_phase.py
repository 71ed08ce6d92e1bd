"""Circadian phase estimate: known answers from the literature on constructed schedules."""

from __future__ import annotations

import math

import pytest
from nightstand import phase
from nightstand.phase import Daylight, NightLight, PhaseError

DAY = 86400
T0 = 1767225600  # 2026-01-01 00:00 UTC; the person lives at UTC+1
OFF = 3600


def _night(i: int, onset_h: float = 23.0, sleep_h: float = 8.0, evening_mel: float = 5.0,
           morning_mel: float = 50.0, rec_after_wake_h: float = 0.5,
           bright: tuple[float, float, float] | None = None) -> NightLight:
    """Night i: record from 3 h before onset to rec_after_wake_h after waking (local clock)."""
    base = T0 + i * DAY - OFF
    onset = base + onset_h * 3600
    offset = onset + sleep_h * 3600
    start, end = onset - 3 * 3600, offset + rec_after_wake_h * 3600
    light = []
    t = start
    while t < end:
        if t < onset:
            mel = evening_mel
        elif t < offset:
            mel = 0.0
        else:
            mel = morning_mel
        if bright and bright[0] <= (t - base) / 3600 < bright[1]:
            mel = bright[2]
        light.append((t, mel))
        t += 30
    return NightLight(night_id=i + 1, start_unix_s=start, end_unix_s=end, utc_offset_s=OFF,
                      onset_unix_s=onset, offset_unix_s=offset, light=light)


def test_regular_sleeper_dlmo_about_two_hours_before_sleep_onset() -> None:
    # Regular sleepers: DLMO ~2 h before habitual sleep onset, individual range ~1-3 h
    # (Sletten et al. 2010; Burgess et al. 2003). The band covers the unknown daylight.
    res = phase.estimate([_night(i) for i in range(7)])
    last = res.latest
    assert last is not None and len(res.nights) == 7
    assert 1.0 <= last.phase_angle_h <= 3.5
    lo, hi = last.dlmo_band_unix_s
    assert lo <= last.dlmo_unix_s <= hi
    assert 0 < (hi - lo) / 3600 < 3.0
    # CBTmin = DLMO + 7 h, inside the sleep period's second half for a regular sleeper
    assert last.cbtmin_unix_s - last.dlmo_unix_s == pytest.approx(7 * 3600)
    assert last.onset_unix_s < last.cbtmin_unix_s < last.offset_unix_s


def test_bright_evening_light_delays_and_morning_light_advances() -> None:
    dim = phase.estimate([_night(i) for i in range(5)]).latest
    # 3 h of 500 lx melanopic EDI at the bedside before sleep, every evening
    eve = phase.estimate([_night(i, evening_mel=500.0) for i in range(5)]).latest
    # 2 h of 1000 lx melanopic EDI after waking (the record runs on through the morning)
    morn = phase.estimate([_night(i, rec_after_wake_h=2.0, morning_mel=1000.0)
                           for i in range(5)]).latest
    assert dim and eve and morn
    delay_h = (eve.dlmo_unix_s - dim.dlmo_unix_s) / 3600
    advance_h = (dim.dlmo_unix_s - morn.dlmo_unix_s) / 3600
    # Phase-response magnitudes to a few days of moderate light: tenths of an hour up to a
    # few hours (Khalsa et al. 2003: up to ~3 h for a single 6.7-h pulse of ~10 000 lx).
    assert 0.2 <= delay_h <= 3.0
    assert 0.1 <= advance_h <= 3.0


def test_delayed_sleeper_has_a_later_dlmo() -> None:
    regular = phase.estimate([_night(i) for i in range(7)]).latest
    late = phase.estimate([_night(i, onset_h=26.0) for i in range(7)]).latest
    assert regular and late
    # local clock time of DLMO, hours: the late sleeper's is later by roughly the 3-h shift
    shift = ((late.dlmo_unix_s - regular.dlmo_unix_s) / 3600) % 24
    assert 1.5 <= shift <= 4.5


def test_missing_days_and_unusable_nights_are_skipped_with_a_reason() -> None:
    nights = [_night(0), _night(1), _night(5), _night(6)]  # three nights never synced
    short = _night(7, sleep_h=2.5)
    broken = NightLight(night_id=99, start_unix_s=T0, end_unix_s=T0 + 3600, utc_offset_s=0,
                        onset_unix_s=math.nan, offset_unix_s=T0 + 1800)
    res = phase.estimate([*nights, short, broken])
    assert [e.night_id for e in res.nights] == [1, 2, 6, 7]
    reasons = dict(res.skipped)
    assert "shorter than 3 h" in reasons[8]
    assert reasons[99] == "impossible times"


def test_no_usable_night_is_a_clear_error() -> None:
    with pytest.raises(PhaseError, match="sync at least one whole night"):
        phase.estimate([])
    with pytest.raises(PhaseError):
        phase.estimate([_night(0, sleep_h=1.0)])


def test_daylight_assumption_is_checked_and_widens_the_band() -> None:
    with pytest.raises(phase.UserError):
        Daylight(typical_lux=10, low_lux=50, high_lux=100)
    narrow = phase.estimate([_night(i) for i in range(4)],
                            Daylight(typical_lux=250, low_lux=200, high_lux=300)).latest
    wide = phase.estimate([_night(i) for i in range(4)],
                          Daylight(typical_lux=250, low_lux=20, high_lux=5000)).latest
    assert narrow and wide
    width = lambda e: e.dlmo_band_unix_s[1] - e.dlmo_band_unix_s[0]  # noqa: E731
    assert width(wide) > width(narrow)


def test_evening_and_morning_doses() -> None:
    e = phase.estimate([_night(0, evening_mel=6.0, rec_after_wake_h=1.0, morning_mel=40.0)])
    est = e.latest
    assert est is not None
    assert est.evening_mel_lx_h == pytest.approx(18.0, rel=0.01)  # 6 lx for 3 h
    assert est.morning_mel_lx_h == pytest.approx(40.0, rel=0.02)  # 40 lx for the 1 h recorded
