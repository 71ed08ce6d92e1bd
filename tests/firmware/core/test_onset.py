# Sleep onset on the device (core/onset.py): lights-out from a dark room or the scheduled
# bedtime, and the pre-sleep summary due once, 30 min after lights-out.
from nsdev.core import light, onset, vocab
from nsdev.core.arousal import Hyperarousal

RUN_UNDER_MICROPYTHON = True
E = vocab.EPOCH_S
T0 = 1768500000  # a whole-epoch Unix time


def _night(lux_at, phase_at, n=100, hr=60.0):
    """Feed n epochs; -> (onset, {epoch index: result bits}) for the non-zero results."""
    on = onset.SleepOnset()
    seen = {}
    for i in range(n):
        r = on.epoch(T0 + i * E, hr, lux_at(i), phase_at(i))
        if r:
            seen[i] = r
    return on, seen


def test_lights_out_when_the_room_stays_dark_for_two_minutes():
    on, seen = _night(lambda i: 50.0 if i < 10 else 0.2, lambda i: light.PHASE_WIND_DOWN)
    assert on.lights_out_s == T0 + 10 * E  # when the dark began, not when it was confirmed
    assert seen[10 + onset.DARK_FOR_S // E] & onset.LIGHTS_OUT
    assert sum(1 for r in seen.values() if r & onset.LIGHTS_OUT) == 1


def test_a_short_dark_spell_is_not_lights_out():
    on, _ = _night(lambda i: 0.2 if 10 <= i < 12 else 50.0, lambda i: light.PHASE_NIGHT, n=30)
    assert on.lights_out_s is None


def test_no_light_reading_takes_the_scheduled_bedtime():
    on, _ = _night(lambda i: None,
                   lambda i: light.PHASE_WIND_DOWN if i < 5 else light.PHASE_NIGHT, n=10)
    assert on.lights_out_s == T0 + 5 * E


def test_dark_during_the_day_is_not_lights_out():
    on, _ = _night(lambda i: 0.1, lambda i: light.PHASE_DAY, n=20)
    assert on.lights_out_s is None


def test_summary_once_thirty_minutes_after_lights_out_and_again_next_night():
    on, seen = _night(lambda i: 0.2, lambda i: light.PHASE_NIGHT)
    due = [i for i, r in seen.items() if r & onset.SUMMARY]
    assert due == [onset.SUMMARY_AFTER_S // E]
    assert set(on.summary()) >= {"score", "evening_hr_bpm", "baseline_hr_bpm",
                                 "decline_bpm_30min"}
    base = on.end_night()
    assert on.lights_out_s is None
    again = onset.SleepOnset(Hyperarousal.from_dict(base))
    seen2 = {}
    for i in range(80):
        r = again.epoch(T0 + 86400 + i * E, 60.0, 0.2, light.PHASE_NIGHT)
        if r:
            seen2[i] = r
    assert [i for i, r in seen2.items() if r & onset.SUMMARY] == [onset.SUMMARY_AFTER_S // E]
