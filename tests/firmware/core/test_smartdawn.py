# Smart dawn decision (nsdev.core.smartdawn) on constructed epoch sequences.
from nsdev.core.smartdawn import SmartDawn

RUN_UNDER_MICROPYTHON = True

WAKE = 7 * 3600


def _run(sd, hr_at, score_at=None, flags_at=None, start=5 * 3600):
    t = start
    while t <= WAKE:
        hr = hr_at(t)
        if sd.update(t, hr, score_at(t) if score_at else 0.0, flags_at(t) if flags_at else 0):
            return t
        t += 30
    return None


def test_no_light_epoch_starts_at_the_latest_time():
    sd = SmartDawn(WAKE)
    assert _run(sd, lambda t: 55.0) == WAKE - 1800
    assert sd.reason == "latest"


def test_hr_rise_inside_the_window_starts_early():
    sd = SmartDawn(WAKE)
    rise = WAKE - 3000  # inside the window [wake - 60 min, wake - 30 min)
    assert _run(sd, lambda t: 60.0 if t >= rise else 55.0) == rise
    assert sd.reason == "hr"


def test_signals_before_the_window_are_ignored():
    sd = SmartDawn(WAKE)
    assert _run(sd, lambda t: 55.0, flags_at=lambda t: 4 if t < WAKE - 3700 else 0) == (
        WAKE - 1800)


def test_motion_and_arousal_start_it():
    sd = SmartDawn(WAKE)
    at = WAKE - 3300
    assert _run(sd, lambda t: 55.0, flags_at=lambda t: 4 if t == at else 0) == at
    assert sd.reason == "motion"
    sd = SmartDawn(WAKE)
    assert _run(sd, lambda t: 55.0, score_at=lambda t: 0.6 if t == at else 0.0) == at
    assert sd.reason == "arousal"


def test_starts_once_and_zero_window_is_the_fixed_dawn():
    sd = SmartDawn(WAKE, window_s=0)
    assert _run(sd, lambda t: 55.0 + (t % 600) / 60.0) == WAKE - 1800
    assert not sd.update(WAKE, 80.0, 1.0, 4)


def test_unknown_heart_rate_does_not_start_it():
    sd = SmartDawn(WAKE)
    assert _run(sd, lambda t: None) == WAKE - 1800


def test_bad_lengths():
    try:
        SmartDawn(WAKE, window_s=-1)
    except ValueError:
        return
    raise AssertionError("negative window accepted")
