"""The text summary renders the night model: the same figures as the HTML report, the lamp's
phases from the device's typed LAMP_PHASE events."""

from __future__ import annotations

import json

from nightstand.night import decode_night
from nightstand.report.metrics import NightData, night_metrics
from nightstand.summary import night_dict, night_text
from nsdev.core import vocab
from synth import SynthNight, make_night

START = 1768500000  # a multiple of 30


def _night():
    s = SynthNight(start_unix_s=START, epochs=120, evening_epochs=40, beats=False,
                   hr_bpm=58.0, hr_step_bpm=2.0,
                   extra_events=[(40, vocab.EV_LAMP_PHASE, (vocab.PHASE_NIGHT,
                                                            vocab.PHASE_WIND_DOWN), None),
                                 (110, vocab.EV_LAMP_PHASE, (vocab.PHASE_DAWN,
                                                             vocab.PHASE_NIGHT), None)])
    return decode_night(make_night(s))


def test_text_and_json_show_the_report_figures():
    n = _night()
    m = night_metrics(NightData.from_night(n))
    d = night_dict(n)
    for key in ("sleep_hr_mean_bpm", "arousal_events_total", "lights_out_unix_s", "lamp_phases"):
        assert d[key] == m[key], key
    text = night_text(n)
    assert f"mean {m['sleep_hr_mean_bpm']:.1f} bpm" in text
    json.dumps(d)  # `simulate --json` prints it


def test_clip_temperature_line():
    n = decode_night(make_night(SynthNight(start_unix_s=START, epochs=300, evening_epochs=140,
                                           beats=False, clip_temp_c=31.0, clip_rise_c=0.5)))
    assert ("clip temp   31.0 °C before lights out → 31.5 °C after (+0.5 °C; a proxy of finger "
            "skin temperature)") in night_text(n)
    assert "clip temp" not in night_text(_night())  # not recorded: no line


def test_lamp_phases_come_from_the_typed_events():
    n = _night()
    lamp = night_dict(n)["lamp_phases"]
    assert set(lamp) == {"wind_down", "night", "dawn"}
    assert lamp["wind_down"]["from"] == START and lamp["night"]["from"] == START + 40 * 30
    assert lamp["dawn"]["from"] == START + 110 * 30
    assert lamp["wind_down"]["peak_warm"] > 0 and lamp["night"]["on_s"] == 0
    text = night_text(n)
    assert "limit 10)" in text  # Brown et al. 2022, evening


def test_show_prints_a_stored_night_and_says_what_is_wrong(tmp_path, capsys):
    from nightstand import cli
    from nightstand.store import Store
    from synth import store_night

    db = tmp_path / "n.sqlite3"
    data = make_night(SynthNight(start_unix_s=START, epochs=120, evening_epochs=40, beats=False))
    with Store(db) as store:
        store_night(store, data, "synth-01", 1)
    assert cli.main(["show", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Night 1 — ") and "lights out  " in out
    assert cli.main(["show", "2026-01-15", "--db", str(db), "--json"]) == 0
    (d,) = json.loads(capsys.readouterr().out)
    assert d["night_id"] == 1 and d["epochs_recorded"] == 120
    assert cli.main(["show", "99", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nightstand: no night with id 99") and err.count("\n") == 1
