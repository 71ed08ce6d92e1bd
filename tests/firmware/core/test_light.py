# Lamp schedule (nsdev.core.light): 24-h cycles across a DST change, dawn timing, night light,
# lost clock, resets, override, breathing sessions, room-light events. CPython and MicroPython.
import nsdev  # noqa: F401  (installs the micropython stand-in under CPython)
from floateps import EPS
from nsdev.core import light
from nsdev.core.light import (
    PHASE_DAWN,
    PHASE_DAY,
    PHASE_MORNING,
    PHASE_NIGHT,
    PHASE_NO_CLOCK,
    PHASE_WIND_DOWN,
    LightController,
)

RUN_UNDER_MICROPYTHON = True

SAT_0000Z = 1774656000  # 2026-03-28T00:00Z; EU summer time starts 2026-03-29T01:00Z
DST_Z = 1774746000  # 2026-03-29T01:00Z
CET, CEST = 3600, 7200


def offset_eu(unix_s):
    return CEST if unix_s >= DST_Z else CET


def run(ctrl, t0, t1, step_s, offset=offset_eu, presses=(), room=None, arousal=None, hr=None,
        check=None, keep=None):
    """Feed the controller from t0 to t1; returns samples (those `keep` accepts) and events;
    `check(t, phase, warm, amber)` sees every sample."""
    samples = []
    events = []
    t = t0
    presses = list(presses)
    while t < t1:
        pressed = False
        while presses and presses[0] <= t:
            presses.pop(0)
            pressed = True
        off = offset(t) if callable(offset) else offset
        w, a, ev = ctrl.update(
            t, off, room_lux=room(t) if room else None, pressed=pressed,
            hyperarousal=arousal(t) if arousal else None, hr_bpm=hr(t) if hr else None,
            rmssd_ms=30.0 if hr else None)
        if check is not None:
            check(t, ctrl.phase, w, a)
        if keep is None or keep(t, ctrl.phase, w, a):
            samples.append((t, ctrl.phase, w, a))
        for e in ev:
            events.append((t, e[0], e[1]))
        t += step_s
    return samples, events


def test_parse_hhmm():
    assert light.parse_hhmm("23:00") == 82800
    assert light.parse_hhmm("07:30") == 27000
    for bad in ("24:00", "7", "aa:bb", "12:60"):
        try:
            light.parse_hhmm(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_bad_config_is_rejected():
    for cfg in ({"bedtime": "23:00", "wake": "23:10"}, {"nope": 1}, {"warm_der": 0.0},
                {"winddown_s": 20 * 3600}):
        try:
            LightController(cfg)
        except ValueError:
            continue
        raise AssertionError(cfg)


def test_lightness_roundtrip():
    for y in (0.0, 0.0001, 0.008, 0.009, 0.18, 0.5, 1.0):
        assert abs(light.from_lightness(light.lightness(y)) - y) < 1e-9
    assert abs(light.lightness(0.18) - 49.5) < 0.1  # CIE: 18 % grey is L* ~ 49.5


def test_two_days_across_dst_change():
    c = LightController({"bedtime": "23:00", "wake": "07:00"})
    cap = {PHASE_WIND_DOWN: 10.0, PHASE_NIGHT: 1.0, PHASE_NO_CLOCK: 1.0}

    def check(t, ph, w, a):
        limit = cap.get(ph)
        if limit is not None:
            assert c.lamp_mel_edi_lx(w, a) <= limit, (t, ph)
        if ph == PHASE_NIGHT:
            assert w == 0.0 and a == 0.0

    samples, events = run(c, SAT_0000Z + 12 * 3600, SAT_0000Z + 60 * 3600, 20, check=check,
                          keep=lambda t, ph, w, a: ph in (PHASE_DAWN, PHASE_MORNING))
    starts = [(t, e["phase"]) for t, k, e in events if k == "phase"]
    wd = [t for t, p in starts if p == "wind_down"]
    dawn = [t for t, p in starts if p == "dawn"]
    morning = [t for t, p in starts if p == "morning"]
    # 20:00 local: CET (19:00Z) on Saturday, CEST (18:00Z) on Sunday
    assert wd == [SAT_0000Z + 19 * 3600, SAT_0000Z + 24 * 3600 + 18 * 3600], wd
    # wake 07:00 CEST on Sunday = 05:00Z; the dawn starts 30 min earlier
    # (and 05:00Z again on Monday)
    assert dawn == [SAT_0000Z + 28 * 3600 + 1800, SAT_0000Z + 52 * 3600 + 1800], dawn
    assert morning == [SAT_0000Z + 29 * 3600, SAT_0000Z + 53 * 3600], morning
    peak = 130.0 / 130.0
    at = {t: (ph, w) for t, ph, w, a in samples}
    for i in (0, 1):
        assert at[morning[i]][1] == peak  # the ramp ends exactly at wake time at the peak
        assert at[dawn[i]][1] < 1e-9
    assert any(k == "evening_dose" for t, k, e in events)


def test_dawn_is_monotonic_and_ends_at_wake():
    c = LightController({"bedtime": "22:30", "wake": "06:15", "dawn_s": 1200})
    wake = SAT_0000Z + 86400 + 6 * 3600 + 15 * 60 - CET
    samples, _ = run(c, wake - 3000, wake + 10, 1, offset=CET)
    prev = 0.0
    for t, ph, w, _a in samples:
        if t < wake - 1200:
            assert w == 0.0
        elif t < wake:
            assert ph == PHASE_DAWN and w >= prev
            # L* <= 100: the ramp and the L* round trip round a few times, EPS/2 each.
            bound = light.lightness(1.0) * (t - (wake - 1200)) / 1200
            assert light.lightness(w) <= bound + 4 * EPS * 100.0, (t, w, bound)
        else:
            assert ph == PHASE_MORNING and w == 1.0
        prev = w


def test_night_light_fades_out_by_itself():
    c = LightController()
    t0 = SAT_0000Z + 86400 + 2 * 3600 - CET  # 02:00 local
    samples, events = run(c, t0 - 120, t0 + 1200, 1, offset=CET, presses=[t0])
    on = [(t, a) for t, ph, w, a in samples if a > 0.0]
    assert on and on[0][0] == t0
    assert on[-1][0] < t0 + 900 + 60, on[-1]
    for _t, _ph, w, a in samples:
        assert w == 0.0 and c.lamp_mel_edi_lx(w, a) <= 1.0
    assert [e["on"] for t, k, e in events if k == "night_light"] == [True]


def test_second_press_cuts_the_night_light():
    c = LightController()
    t0 = SAT_0000Z + 86400 + 3 * 3600 - CET
    samples, events = run(c, t0 - 60, t0 + 120, 1, offset=CET, presses=[t0, t0 + 20])
    assert [t for t, ph, w, a in samples if a > 0.0][-1] < t0 + 24


def test_lost_clock_means_no_dawn_and_lamp_off():
    c = LightController()
    # An ESP32 whose RTC was never set counts from 2000-01-01.
    t0 = 946684800 + 3600

    def check(t, ph, w, a):
        assert ph == PHASE_NO_CLOCK and w == 0.0

    lit, events = run(c, t0, t0 + 86400, 10, offset=CET, presses=[t0 + 7200], check=check,
                      keep=lambda t, ph, w, a: a > 0.0)
    assert lit and lit[0][0] == t0 + 7200 and lit[-1][0] < t0 + 7200 + 1000
    # no UTC offset from the host: the schedule is unknown too
    c2 = LightController()
    lit, _ = run(c2, SAT_0000Z, SAT_0000Z + 86400, 30, offset=None,
                 keep=lambda t, ph, w, a: w > 0.0 or a > 0.0)
    assert not lit


def test_reset_at_night_keeps_the_lamp_dark():
    for hour in (23.5, 1, 3, 5):
        c = LightController()  # a fresh controller = after any reset/watchdog
        t0 = SAT_0000Z + 86400 + int(hour * 3600) - CET
        samples, _ = run(c, t0, t0 + 600, 1, offset=CET)
        assert all(w == 0.0 and a == 0.0 for t, ph, w, a in samples), hour


def test_boot_in_wind_down_fades_in():
    c = LightController()
    t0 = SAT_0000Z + 21 * 3600 - CET
    samples, _ = run(c, t0, t0 + 60, 1, offset=CET)
    ls = [light.lightness(w) for t, ph, w, a in samples]
    assert ls[0] < ls[-1] * 0.1
    assert all(ls[i + 1] - ls[i] < 3.0 for i in range(len(ls) - 1))


def test_override_lasts_until_next_phase():
    c = LightController()
    t0 = SAT_0000Z + 21 * 3600 - CET  # 21:00 local, wind-down on
    samples, events = run(c, t0 - 300, SAT_0000Z + 86400 + 20 * 3600 + 600 - CET, 10,
                          offset=CET, presses=[t0], keep=lambda t, ph, w, a: ph == PHASE_WIND_DOWN)
    after = [(t, ph, w) for t, ph, w, a in samples if t > t0 + 10]
    assert all(w == 0.0 for t, ph, w in after if ph == PHASE_WIND_DOWN and t < t0 + 7200)
    # the next evening's wind-down lights the lamp again
    nxt = [w for t, ph, w in after if ph == PHASE_WIND_DOWN and t > t0 + 20 * 3600]
    assert nxt and max(nxt) > 0.0
    assert any(k == "override" for t, k, e in events)


def test_day_light_is_dimmed_before_wind_down():
    c = LightController()
    wd = SAT_0000Z + 20 * 3600 - CET
    samples, _ = run(c, wd - 3600, wd + 60, 1, offset=CET, presses=[wd - 3000])
    for _t, ph, w, a in samples:
        if ph == PHASE_WIND_DOWN:
            assert c.lamp_mel_edi_lx(w, a) <= 10.0
    lit = [w for t, ph, w, a in samples if ph == PHASE_DAY and w > 0.0]
    assert lit and max(lit) == 1.0


def test_winddown_shifts_to_warmest_and_ends_dark():
    c = LightController()
    wd = SAT_0000Z + 20 * 3600 - CET
    samples, _ = run(c, wd, wd + 3 * 3600, 30, offset=CET)
    early = samples[len(samples) // 10]
    late = samples[-30]
    share = lambda s: s[3] * 80.0 / (s[2] * 130.0 + s[3] * 80.0)  # noqa: E731
    assert share(late) > share(early)
    assert samples[-1][2] == 0.0 or light.lightness(samples[-1][2]) < 1.0


def test_breathing_session_paces_and_records_hr():
    c = LightController()
    t0 = SAT_0000Z + 21 * 3600 - CET
    hr = lambda t: 72.0 if t < t0 + 300 else 66.0  # noqa: E731
    samples, events = run(c, t0 - 120, t0 + 1200, 1, offset=CET, arousal=lambda t: 0.8, hr=hr)
    kinds = [k for t, k, e in events]
    assert "breathing_start" in kinds and "breathing_end" in kinds
    end = [e for t, k, e in events if k == "breathing_end"][0]
    assert end["reason"] == "settled" and 180 <= end["duration_s"] <= 900
    assert end["hr_start_bpm"] == 72.0 and end["hr_end_bpm"] < 70.0
    start = [t for t, k, e in events if k == "breathing_start"][0]
    ws = [w for t, ph, w, a in samples if start + 20 <= t < start + 80]
    # ~0.1 Hz: six swings a minute, within the wind-down level
    peaks = sum(1 for i in range(1, len(ws) - 1) if ws[i] > ws[i - 1] and ws[i] >= ws[i + 1])
    assert 5 <= peaks <= 7, peaks
    for _t, _ph, w, a in samples:
        assert c.lamp_mel_edi_lx(w, a) <= 10.0


def test_breathing_stops_at_fifteen_minutes():
    c = LightController()
    t0 = SAT_0000Z + 20 * 3600 + 600 - CET
    samples, events = run(c, t0, t0 + 1000, 1, offset=CET, arousal=lambda t: 0.9,
                          hr=lambda t: 80.0)
    end = [e for t, k, e in events if k == "breathing_end"]
    assert end and end[0]["reason"] == "max_duration" and end[0]["duration_s"] == 900


def test_room_light_events_subtract_the_lamp():
    c = LightController()
    t0 = SAT_0000Z + 21 * 3600 - CET

    def room_plus_lamp(t):
        return 4.0 + c.lamp_lux_at_sensor(c.warm, c.amber)

    _, events = run(c, t0, t0 + 600, 1, offset=CET, room=room_plus_lamp)
    assert not any(k == "room_light_over_limit" for t, k, e in events)
    c2 = LightController()
    n0 = SAT_0000Z + 86400 + 2 * 3600 - CET
    _, events = run(c2, n0, n0 + 600, 1, offset=CET, room=lambda t: 30.0)
    over = [e for t, k, e in events if k == "room_light_over_limit"]
    assert len(over) == 1 and over[0]["phase"] == "night" and over[0]["room_mel_lx"] == 30.0


def test_evening_dose_is_logged():
    c = LightController()
    wd = SAT_0000Z + 20 * 3600 - CET
    _, events = run(c, wd - 60, wd + 3 * 3600 + 60, 10, offset=CET,
                    room=lambda t: 5.0 + c.lamp_lux_at_sensor(c.warm, c.amber))
    dose = [e for t, k, e in events if k == "evening_dose"]
    assert len(dose) == 1
    assert abs(dose[0]["room_mel_lx_h"] - 15.0) < 1.0  # ~5 lx for 3 h
    assert 0.0 < dose[0]["lamp_mel_lx_h"] < 30.0


def test_phases_cover_the_day():
    c = LightController()
    seen = set()
    for d in range(0, 86400, 60):
        seen.add(c.phase_at(d))
    assert seen == {PHASE_NIGHT, PHASE_DAWN, PHASE_MORNING, PHASE_DAY, PHASE_WIND_DOWN}
