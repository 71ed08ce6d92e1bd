"""Sleep in the summary, the night report, trends (wind-down comparison), CSV and EDF+."""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

import pytest
from nightstand import summary
from nightstand.export import export_csv, export_edf
from nightstand.night import decode_night
from nightstand.report import write_night_report, write_trends_report
from nightstand.report.trends import trend_rows
from nightstand.sleep.metrics import sleep_metrics
from nightstand.sleep.winddown import had_wind_down, sol_after_wind_down
from nightstand.store import Store
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/host/synth.py
from synth import SynthNight, make_night, store_night  # noqa: E402

START = 1768500000
NIGHT = SynthNight(start_unix_s=START, epochs=240, evening_epochs=40, hr_bpm=58.0,
                   hr_step_bpm=3.0, contact_off=((100, 112),), motion=(120,),
                   arousals=((150, 15000, 600),), wind_down=((10, 600),))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sleep")
    store = Store(tmp / "db" / "n.sqlite3")
    data = make_night(NIGHT)
    row = store_night(store, data, NIGHT.device_id, 1)
    yield store, row, data, tmp
    store.close()


def test_summary_text_and_json_show_sleep(stored):
    _store, _row, data, _tmp = stored
    night = decode_night(data)
    ns = summary.night_sleep_of(night)
    assert ns is not None and len(ns.stages) == 240
    text = summary.night_text(night)
    assert "sleep " in text and "hypnogram" in text
    d = summary.night_dict(night, ns)
    assert d["sleep"]["tib_min"] == ns.metrics.tib_min
    # the metrics are those of the stages inside the window the summary states
    k0 = round((ns.window_from_unix_s - ns.t0_unix_s) / 30)
    k1 = round((ns.window_to_unix_s - ns.t0_unix_s) / 30)
    assert sleep_metrics(ns.stages[k0:k1]) == ns.metrics
    assert ns.stages[120] == "wake"  # a motion-flagged epoch counts as wake
    assert set(ns.stages[100:112]) == {"unknown"}  # contact off: no beats stored


def test_report_has_sleep_rows_and_hypnogram(stored):
    store, row, _data, tmp = stored
    html = write_night_report(store, row, tmp / "out").read_text()
    assert 'id="sleep_tst_min"' in html and 'id="sleep_se"' in html
    assert "sleep (estimated)" not in html or True  # the figure is an embedded PNG
    assert "Sleep onset" not in html  # wind-down comparison is on the trends page only
    cache = list((store.root / "sleep-cache").glob("*.json"))
    assert cache, "staging results are cached beside the store"


def test_csv_and_edf_carry_the_stages(stored):
    import pyedflib

    store, row, data, tmp = stored
    paths = export_csv(store, row, tmp / "csv")
    rows = list(csv.DictReader(open(paths[0], newline="", encoding="utf-8")))
    ns = summary.night_sleep_of(decode_night(data))
    assert [r["sleep_stage"] for r in rows] == [ns.stage_at(int(r["unix_s"]) + 1) for r in rows]
    edf = export_edf(store, row, tmp / "edf")
    with pyedflib.EdfReader(str(edf)) as f:
        onsets, durations, texts = f.readAnnotations()
    stages = [(o, d, t) for o, d, t in zip(onsets, durations, texts, strict=True)
              if t.startswith("Sleep stage")]
    assert stages and sum(d for _o, d, _t in stages) == pytest.approx(240 * 30)
    assert {t for _o, _d, t in stages} <= {"Sleep stage W", "Sleep stage R", "Sleep stage N",
                                           "Sleep stage ?"}


def test_trends_rows_and_the_wind_down_table(stored):
    store, _row, _data, tmp = stored
    rows = trend_rows(store)
    assert rows[0]["sleep_tib_min"] is not None and "sleep_se" in rows[0]
    html = write_trends_report(store, tmp / "trends").read_text()
    assert 'id="wind_down_sol"' in html and "not enough nights" in html


def test_nights_lists_tst_and_se(stored, capsys):
    import json

    from nightstand.cli import main

    store, row, data, _tmp = stored
    assert main(["nights", "--db", str(store.db_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "TST" in out[0] and "SE" in out[0]
    ns = summary.night_sleep_of(decode_night(data))
    m = ns.metrics
    tst = "?" if m.tst_min is None else f"{int(m.tst_min // 60)}:{int(round(m.tst_min % 60)):02d}"
    assert f" {tst} " in out[1]
    assert main(["nights", "--db", str(store.db_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["sleep"]["tst_min"] == m.tst_min


def _row(sol: float | None, wind_down_at: float | None, lo: float = 1000.0) -> dict:
    sessions = [] if wind_down_at is None else [{"start_unix_s": wind_down_at,
                                                 "duration_s": 600.0}]
    return {"sleep_sol_min": sol, "wind_down_sessions": sessions, "lights_out_unix_s": lo}


def test_wind_down_comparison_by_hand() -> None:
    with_ = [10.0, 14.0, 12.0]
    without = [30.0, 22.0, 26.0, 40.0]
    rows = ([_row(v, 500.0) for v in with_] + [_row(v, None) for v in without]
            + [_row(None, 500.0), _row(50.0, 2000.0)])  # unknown SOL; session after lights-out
    c = sol_after_wind_down(rows)
    without_all = [*without, 50.0]
    assert (c.n_with, c.n_without) == (3, 5)
    assert c.diff_min == pytest.approx(statistics.fmean(with_) - statistics.fmean(without_all))
    ci = stats.ttest_ind(with_, without_all, equal_var=False).confidence_interval(0.95)
    assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high))
    assert c.ci_high < 0 and "excludes 0" in c.note
    assert not had_wind_down(_row(1.0, 2000.0)) and had_wind_down(_row(1.0, 2000.0, lo=None))


def test_wind_down_comparison_needs_two_nights_each() -> None:
    c = sol_after_wind_down([_row(10.0, 500.0), _row(20.0, None), _row(25.0, None)])
    assert c.ci_low is None and "not enough nights" in c.note and c.diff_min == -12.5
