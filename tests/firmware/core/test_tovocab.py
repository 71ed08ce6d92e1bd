# The app's epoch flags and light-schedule events in the night format's vocabulary
# (core/tovocab.py).
from nsdev.core import ppgdefs, tovocab, vocab

RUN_UNDER_MICROPYTHON = True


def test_each_ppg_bit_maps_to_its_epoch_flag():
    for bit, flag in ((ppgdefs.NO_CONTACT, vocab.FLAG_CONTACT_OFF),
                      (ppgdefs.OVERFLOW, vocab.FLAG_FIFO_OVERFLOW),
                      (ppgdefs.MOTION, vocab.FLAG_MOTION),
                      (ppgdefs.SATURATED, vocab.FLAG_PPG_CLIPPED)):
        assert tovocab.epoch_flags(bit, 0, True, False, False) == flag


def test_state_flags_and_health_bits_combine():
    f = tovocab.epoch_flags(0, vocab.FLAG_SENSOR_FAULT, False, True, True)
    assert f == (vocab.FLAG_SENSOR_FAULT | vocab.FLAG_CLOCK_UNSET | vocab.FLAG_WIND_DOWN
                 | vocab.FLAG_LAMP_ON)
    assert tovocab.epoch_flags(0, 0, True, False, False) == 0


def test_light_limit_event_carries_the_values_in_hundredths():
    kind, values, text = tovocab.light_event(
        "room_light_over_limit", {"room_mel_lx": 12.5, "limit_mel_lx": 10.0, "phase": "wind_down"})
    assert (kind, tuple(values), text) == (vocab.EV_LIGHT_LIMIT, (1250, 1000), "wind_down")


def test_breathing_end_keeps_the_session_response():
    kind, values, text = tovocab.light_event(
        "breathing_end", {"reason": "done", "duration_s": 900, "hr_start_bpm": 70.4,
                          "hr_end_bpm": 62.6, "rmssd_start_ms": None, "rmssd_end_ms": 40})
    assert kind == vocab.EV_WIND_DOWN and tuple(values) == (0, 900)
    assert text == "done hr 70->63"


def test_phase_change_is_a_typed_event():
    kind, values, text = tovocab.light_event("phase", {"unix_s": 0, "phase": "night",
                                                       "from": "wind_down"})
    assert kind == vocab.EV_LAMP_PHASE and text is None
    assert tuple(values) == (vocab.PHASE_NIGHT, vocab.PHASE_WIND_DOWN)


def test_presleep_summary_scaled_and_unknowns_marked():
    kind, values, text = tovocab.presleep_event(
        {"score": 0.4126, "evening_hr_bpm": 65.34, "baseline_hr_bpm": None,
         "decline_bpm_30min": -1.46, "hr_z": 1.2})
    assert kind == vocab.EV_PRESLEEP and text is None
    assert list(values) == [413, 653, vocab.EV_UNKNOWN, -15]
