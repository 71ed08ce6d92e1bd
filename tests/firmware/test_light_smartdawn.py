"""Smart dawn in the lamp schedule (LightController.smart_dawn_epoch + nsdev.core.smartdawn):
off by default, early on a light-sleep sign inside the window, never before the window, never
later than the fixed dawn, reset for the next night; the config key (dual test)."""

import nsdev  # noqa: F401  (installs the micropython stand-in under CPython)
from nsdev import config
from nsdev.core import vocab
from nsdev.core.light import PHASE_DAWN, PHASE_MORNING, PHASE_NIGHT, LightController

RUN_UNDER_MICROPYTHON = True

DAY0 = 1774656000  # 2026-03-28T00:00Z; UTC offset 0 below
WAKE = DAY0 + 86400 + 6 * 3600 + 1800  # 06:30 on the 29th
DAWN_S = 1800
WINDOW_S = 1800
LATEST = WAKE - DAWN_S  # the fixed dawn's start
EARLIEST = LATEST - WINDOW_S


def _ctrl(window_s=WINDOW_S):
    return LightController({"bedtime": "22:30", "wake": "06:30", "dawn_s": DAWN_S,
                            "smart_wake_s": window_s})


def _night(c, sign_at=(), hr=55.0, until=WAKE - 30):
    """Epochs every 30 s from 01:00 to `until`; motion flag at the epochs ending in sign_at.
    -> list of (epoch end, decision)."""
    out = []
    t = DAY0 + 86400 + 3600
    while t <= until:
        flags = vocab.FLAG_MOTION if t in sign_at else 0
        r = c.smart_dawn_epoch(t, 0, hr, 0.0, flags)
        if r is not None:
            out.append((t, r))
        t += 30
    return out


def _level(c, t):
    warm, _amber, _ev = c.update(t, 0)
    return c.phase, warm


def test_off_by_default():
    c = LightController({"bedtime": "22:30", "wake": "06:30", "dawn_s": DAWN_S})
    assert config.defaults()["smart_wake_min"] == 0
    assert _night(c, sign_at=(EARLIEST + 600,)) == []
    assert c.dawn_advance_s == 0
    assert _level(c, LATEST - 30)[0] == PHASE_NIGHT


def test_starts_early_at_a_sign_inside_the_window():
    c = _ctrl()
    t_sign = EARLIEST + 600
    got = _night(c, sign_at=(t_sign,))
    assert got == [(t_sign, ("motion", LATEST - t_sign))], got
    assert _level(c, t_sign - 30) == (PHASE_NIGHT, 0.0)
    ph, w = _level(c, t_sign + 60)
    assert ph == PHASE_DAWN and 0.0 < w < 0.2
    assert _level(c, t_sign + DAWN_S + 60) == (PHASE_DAWN, 1.0)  # peak held until wake
    assert _level(c, WAKE + 60)[0] == PHASE_MORNING


def test_never_before_the_window():
    c = _ctrl()
    got = _night(c, sign_at=(EARLIEST - 30, EARLIEST - 600))
    assert got == [(LATEST, ("latest", 0))], got


def test_never_later_than_the_fixed_dawn():
    c = _ctrl()
    got = _night(c)  # no sign at all: steady HR, no motion, no arousal
    assert got == [(LATEST, ("latest", 0))], got
    assert _level(c, LATEST + 30)[0] == PHASE_DAWN


def test_heart_rate_rise_is_a_sign():
    c = _ctrl()
    out = []
    t = DAY0 + 86400 + 3600
    while t <= WAKE:
        r = c.smart_dawn_epoch(t, 0, 62.0 if t >= EARLIEST + 900 else 55.0, 0.0, 0)
        if r is not None:
            out.append((t, r))
        t += 30
    assert out == [(EARLIEST + 900, ("hr", LATEST - EARLIEST - 900))], out


def test_next_night_starts_afresh():
    c = _ctrl()
    _night(c, sign_at=(EARLIEST + 60,))
    assert c.dawn_advance_s > 0
    c.smart_dawn_epoch(WAKE + 3600, 0)  # the day: reset
    assert c.dawn_advance_s == 0
    got = [r for t, r in _night_next(c)]
    assert got == [("latest", 0)], got


def _night_next(c):
    out = []
    t = DAY0 + 2 * 86400 + 3600
    while t <= WAKE + 86400:
        r = c.smart_dawn_epoch(t, 0, 55.0, 0.0, 0)
        if r is not None:
            out.append((t, r))
        t += 30
    return out


def test_config_key_limits_and_clash():
    d = config.defaults()
    for bad in (-1, 46, 1.5, "x"):
        new, errors = config.merge(d, {"smart_wake_min": bad})
        assert new == d and errors and errors[0].startswith("smart_wake_min:"), (bad, errors)
    new, errors = config.merge(d, {"smart_wake_min": 45})
    assert errors == [] and new["smart_wake_min"] == 45
    # a 1-h night cannot hold a 30-min dawn, a 45-min window and 10 min
    new, errors = config.merge(d, {"bedtime": "05:30", "wake": "06:30", "smart_wake_min": 45})
    assert new == d and len(errors) == 1 and errors[0].startswith("schedule:"), errors
