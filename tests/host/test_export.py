"""Exports: CSV columns and values; EDF+ read back with pyedflib's reader (signals within the
digital resolution, unknowns at the physical minimum, events/quality/beats as annotations)."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import pyedflib
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nightstand.export import (
    DIG_MAX,
    DIG_MIN,
    EDF_SIGNALS,
    edf_digital,
    export_csv,
    export_edf,
)
from nightstand.night import decode_night
from nightstand.report.metrics import NightData, build_grid
from nightstand.store import Store
from nsdev.core import vocab
from synth import SynthNight, make_night, store_night

START = 1768500000  # 19:00 local (+1 h)
NIGHT = SynthNight(start_unix_s=START, epochs=120, evening_epochs=30, hr_bpm=58.0,
                   hr_step_bpm=1.5, contact_off=((40, 46),), missing=(70,),
                   arousals=((60, 15000, 600),), wind_down=((5, 300),),
                   clip_temp_c=31.4375, clip_rise_c=1.125)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    store = Store(tmp / "n.sqlite3")
    data = make_night(NIGHT)
    row = store_night(store, data, NIGHT.device_id, 1)
    yield store, row, decode_night(data), tmp
    store.close()


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_tables(stored):
    store, row, night, tmp = stored
    paths = export_csv(store, row, tmp / "csv")
    epochs, beats, events = (_rows(p) for p in paths[:3])
    fields = [f[0] for f in vocab.EPOCH_FIELDS + vocab.EPOCH_EXT_FIELDS if f[0] != "lamp_level"]
    assert fields[-2:] == ["resp_per_min", "clip_temp_c"]  # extension fields have columns too
    assert list(epochs[0]) == ["local_time", "unix_s", "t_off_s", *fields, "lamp_warm_level",
                               "lamp_amber_level", "flags", "flag_names", "sleep_stage"]
    assert len(epochs) == len(night.epochs) == 119  # one missing epoch stays missing
    assert {r["sleep_stage"] for r in epochs} <= {"wake", "rem", "nrem", "unknown"}
    by_t = {int(r["unix_s"]): r for r in epochs}
    assert by_t[START + 40 * 30]["hr_bpm"] == ""  # contact off: unknown, empty
    assert "contact_off" in by_t[START + 40 * 30]["flag_names"]
    assert float(by_t[START + 1 * 30]["hr_bpm"]) == pytest.approx(59.5)
    assert epochs[0]["local_time"] == "2026-01-15T19:00:00+01:00"
    assert float(epochs[0]["lamp_warm_level"]) == pytest.approx(0.3)
    assert list(beats[0]) == ["local_time", "unix_ms", "t_off_ms", "ibi_ms", "pwa_counts"]
    assert len(beats) == len(night.beat_t_ms)
    ibis = [int(b["ibi_ms"]) for b in beats if b["ibi_ms"]]
    assert set(ibis) <= {round(60000 / (58.0 + 1.5 * k)) for k in range(4)} | {
        b - a for a, b in zip(night.beat_t_ms, night.beat_t_ms[1:], strict=False)}
    assert beats[0]["ibi_ms"] == ""  # the first beat has no interval
    ar = [e for e in events if e["kind_name"] == "arousal"]
    assert ar and ar[0]["values"] == "duration_ms=15000;strength_permille=600"
    assert int(ar[0]["unix_ms"]) == (START + 60 * 30) * 1000 + 12000
    readme = paths[3].read_text()
    assert "hr_bpm: bpm" in readme and "not a diagnosis" in readme
    assert "clip_temp_c: degC (the MAX30102 die in the finger clip, a proxy of finger skin" \
        in readme


def test_csv_clip_temperature_column(stored):
    store, row, _night, tmp = stored
    epochs = _rows(export_csv(store, row, tmp / "csv_clip")[0])
    by_t = {int(r["unix_s"]): r for r in epochs}
    assert float(by_t[START + 10 * 30]["clip_temp_c"]) == 31.4375  # evening, exact (1/16 degC)
    assert float(by_t[START + 100 * 30]["clip_temp_c"]) == 32.5625  # after lights out
    assert by_t[START + 42 * 30]["clip_temp_c"] == ""  # finger out: unknown
    assert all(r["resp_per_min"] == "" for r in epochs)  # not recorded in this night


def test_edf_round_trip_with_pyedflib(stored):
    store, row, night, tmp = stored
    path = export_edf(store, row, tmp / "edf")
    nd = NightData.from_night(night, row)
    g = build_grid(nd.epochs)
    with pyedflib.EdfReader(str(path)) as r:
        assert r.filetype == pyedflib.FILETYPE_EDFPLUS
        assert r.getStartdatetime() == dt.datetime(2026, 1, 15, 19, 0, 0)
        assert list(r.getSignalLabels()) == [s[0] for s in EDF_SIGNALS]
        for i, (_label, key, unit, pmin, pmax, factor) in enumerate(EDF_SIGNALS):
            assert r.getPhysicalDimension(i) == unit
            assert r.getSampleFrequency(i) == pytest.approx(1 / 30)
            got = r.readSignal(i)
            want = g.values[key] * factor
            assert len(got) == g.n
            res = (pmax - pmin) / (DIG_MAX - DIG_MIN)
            known = ~np.isnan(want)
            assert np.all(np.abs(got[known] - want[known]) <= res), key
            assert np.all(got[~known] == pytest.approx(pmin)), key  # unknown = physical min
        clip = r.readSignal([s[1] for s in EDF_SIGNALS].index("clip_temp_c"))
        assert clip[10] == pytest.approx(31.4375, abs=0.002) and clip[42] == pytest.approx(-21.0)
        hr = r.readSignal(0)
        assert hr[40] == pytest.approx(-1.0) and hr[70] == pytest.approx(-1.0)
        onsets, durations, texts = r.readAnnotations()
    texts = list(texts)
    beats = [o for o, t in zip(onsets, texts, strict=True) if t == "beat"]
    assert len(beats) == len(night.beat_t_ms)
    assert np.allclose(beats, (np.array(night.beat_t_ms) / 1000.0) - START, atol=1e-3)
    i = texts.index("arousal 15000,600")  # names dropped: they would pass 40 characters
    assert onsets[i] == pytest.approx(60 * 30 + 12.0, abs=1e-3)
    assert durations[i] == pytest.approx(15.0)
    i = texts.index("quality contact_off")
    assert (onsets[i], durations[i]) == (pytest.approx(40 * 30), pytest.approx(6 * 30))
    i = texts.index("quality no_record")
    assert (onsets[i], durations[i]) == (pytest.approx(70 * 30), pytest.approx(30))
    assert any(t.startswith("wind_down started=1") for t in texts)


@given(st.lists(st.one_of(st.none(), st.floats(0, 300)), min_size=1, max_size=50))
def test_edf_digital_keeps_values_within_one_step(values):
    v = np.array([np.nan if x is None else x for x in values])
    d, clipped = edf_digital(v, -1.0, 300.0)
    assert clipped == 0
    assert np.all((d >= DIG_MIN) & (d <= DIG_MAX))
    step = 301.0 / (DIG_MAX - DIG_MIN)
    back = (d - DIG_MIN) * step - 1.0
    known = ~np.isnan(v)
    assert np.all(np.abs(back[known] - v[known]) <= step / 2 + 1e-9)
    assert np.all(d[~known] == DIG_MIN) and np.all(d[known] > DIG_MIN)
