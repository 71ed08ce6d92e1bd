"""Property tests (CPython, hypothesis) of the light schedule + lamp driver in closed loop:
melanopic caps per window, no visible step, dawn ends at wake, night light times out, dark after
any reset at night, lost clock means no dawn."""

from __future__ import annotations

import nsdev  # noqa: F401
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from light_sim import simulate
from nsdev.core.light import PHASE_MORNING, PHASE_NIGHT, LightController, lightness

BASE = 1774656000  # 2026-03-28T00:00Z

configs = st.fixed_dictionaries({
    "bedtime": st.tuples(st.integers(20, 23), st.sampled_from([0, 15, 30, 45])).map(
        lambda t: f"{t[0]:02d}:{t[1]:02d}"),
    "wake": st.tuples(st.integers(5, 8), st.sampled_from([0, 10, 30])).map(
        lambda t: f"{t[0]:02d}:{t[1]:02d}"),
    "dawn_s": st.sampled_from([600, 1200, 1800, 2700]),
    "warm_full_lux_at_eye": st.floats(20.0, 400.0),
    "amber_full_lux_at_eye": st.floats(10.0, 200.0),
    "warm_der": st.floats(0.24, 0.5),
    "amber_der": st.sampled_from([0.02, 0.002, 0.05]),
    "winddown_start_lux": st.floats(5.0, 200.0),
    "winddown_end_lux": st.floats(0.5, 10.0),
    "night_light_lux": st.floats(0.5, 60.0),
    "night_light_s": st.integers(30, 1800),
    "dawn_peak_lux": st.floats(20.0, 250.0),
})
# Each example simulates a whole evening and night frame by frame (~1-2 s): few examples, no
# shrinking (tests/bench/bench_lamp.py runs 1000+ nights).
FAST = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                phases=[Phase.explicit, Phase.reuse, Phase.generate])


def _offset(dst_shift):
    return lambda t: 3600 + (3600 if dst_shift and t >= BASE + 25 * 3600 else 0)


@FAST
@given(cfg=configs, presses=st.lists(st.integers(0, 12 * 3600), max_size=6),
       room_lux=st.floats(0.0, 300.0), arousal=st.floats(0.0, 1.0), dst=st.booleans(),
       resets=st.lists(st.integers(0, 12 * 3600), max_size=2))
def test_closed_loop_invariants(cfg, presses, room_lux, arousal, dst, resets):
    bed_h, bed_m = (int(x) for x in cfg["bedtime"].split(":"))
    wake_h, wake_m = (int(x) for x in cfg["wake"].split(":"))
    # from 20 min before the wind-down (a daytime light gets pre-dimmed) to 10 min after wake
    t0 = BASE + bed_h * 3600 + bed_m * 60 - 3600 - 3 * 3600 - 1200
    dur = (wake_h * 3600 + wake_m * 60 - bed_h * 3600 - bed_m * 60) % 86400 + 4 * 3600 + 600
    res = simulate(cfg, t0, dur, _offset(dst), presses=presses,
                   room=lambda t: room_lux, arousal=lambda t: arousal, hr=lambda t: 70.0,
                   resets=resets)
    assert not res["violations"], res["violations"][:3]
    assert res["visible_steps"] == 0, res["max_step_lstar"]
    # every night light ends by itself: on-time <= night_light_s + fade
    ons = [t for t, k, e in res["events"] if k == "night_light" and e["on"]]
    assert len(ons) <= len(presses)


@settings(max_examples=40, deadline=None)
@given(cfg=configs, dst=st.booleans())
def test_dawn_ends_exactly_at_wake(cfg, dst):
    c = LightController(cfg)
    off = _offset(dst)
    wake_h, wake_m = (int(x) for x in cfg["wake"].split(":"))
    # the first wake after t0, in UTC with the offset in force then
    wake_utc = BASE + 86400 + wake_h * 3600 + wake_m * 60
    wake_utc -= off(wake_utc)
    t = wake_utc - cfg["dawn_s"] - 120
    c.update(t - 3600, off(t - 3600))  # settle (boot fade) well before the dawn
    for s in range(t - 3600 + 60, t, 60):
        c.update(s, off(s))
    prev = 0.0
    while t <= wake_utc:
        w, a, _ = c.update(t, off(t))
        if t < wake_utc - cfg["dawn_s"]:
            assert w == 0.0 and a == 0.0
        elif t < wake_utc:
            assert w >= prev and w < 1.0 and c.phase != PHASE_MORNING
        prev = w
        t += 1
    assert c.phase == PHASE_MORNING
    peak = min(1.0, cfg["dawn_peak_lux"] / cfg["warm_full_lux_at_eye"])
    assert abs(w - peak) < 1e-9
    assert lightness(w) > 0.0


@settings(max_examples=40, deadline=None)
@given(cfg=configs, at=st.integers(0, 5 * 3600), boot_mode=st.sampled_from(["fresh", "press"]))
def test_reset_at_night_never_lights_up(cfg, at, boot_mode):
    c = LightController(cfg)
    bed_h, bed_m = (int(x) for x in cfg["bedtime"].split(":"))
    t = BASE + bed_h * 3600 + bed_m * 60 - 3600 + 60 + at
    for s in range(t, t + 300):
        w, a, _ = c.update(s, 3600, pressed=(boot_mode == "press" and s == t + 10))
        if c.phase == PHASE_NIGHT:
            assert w == 0.0
            assert c.lamp_mel_edi_lx(w, a) <= 1.0
            if boot_mode == "fresh":
                assert a == 0.0
