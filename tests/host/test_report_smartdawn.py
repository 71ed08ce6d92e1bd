"""The smart dawn's start (EV_SMART_DAWN) in the night summary and the report; the device's
per-epoch breathing rate (resp_per_min) preferred by the host's sleep analysis."""

from __future__ import annotations

from nightstand.night import decode_night
from nightstand.report.metrics import NightData, night_metrics
from nightstand.report.pages import summary_rows
from nightstand.sleep.night import night_sleep
from nightstand.summary import night_text
from nsdev.core import vocab
from synth import SynthNight, make_night

START = 1768500000  # a multiple of 30


def _night(reason: str, advance_s: int) -> NightData:
    code = vocab.SMART_DAWN_REASONS.index(reason)
    s = SynthNight(start_unix_s=START, epochs=120, evening_epochs=10, beats=False,
                   extra_events=[(100, vocab.EV_SMART_DAWN, (advance_s, code), reason)])
    return decode_night(make_night(s))


def test_summary_and_report_say_when_and_why():
    n = _night("motion", 1260)
    text = night_text(n)
    assert "smart dawn  started" in text and "21 min before the fixed dawn (motion)" in text
    nd = NightData.from_night(n)
    m = night_metrics(nd)
    assert m["smart_dawn"] == {"unix_s": START + 100 * 30, "advance_min": 21.0,
                               "reason": "motion"}
    html = "".join(summary_rows(nd, m))
    assert 'id="smart_dawn"' in html and "started early on movement" in html
    late = night_metrics(NightData.from_night(_night("latest", 0)))["smart_dawn"]
    assert late is not None and late["reason"] == "latest" and late["advance_min"] == 0.0


def test_no_smart_dawn_no_row():
    s = SynthNight(start_unix_s=START, epochs=60, evening_epochs=10, beats=False)
    nd = NightData.from_night(decode_night(make_night(s)))
    m = night_metrics(nd)
    assert m["smart_dawn"] is None
    assert 'id="smart_dawn"' not in "".join(summary_rows(nd, m))
    assert "smart dawn" not in night_text(decode_night(make_night(s)))


def test_sleep_analysis_prefers_the_devices_breathing_rate():
    epochs = [{"unix_s": START + 30 * k, "flags": 0, "hr_bpm": 60.0, "arousal_score": 0.1,
               "lux": 0.0, "resp_per_min": 14.5 if k % 2 else None} for k in range(120)]
    beats = [START * 1000 + 1000 * i for i in range(3600)]
    res = night_sleep(epochs, beats, [], 0)
    assert res is not None
    assert [r for r in res.resp_bpm if r is not None] == [14.5] * 60
    for e in epochs:
        e["resp_per_min"] = None  # an older night: the host's own estimate from the beats
    res = night_sleep(epochs, beats, [], 0)
    assert res is not None and 14.5 not in res.resp_bpm
