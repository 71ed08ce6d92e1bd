"""Night report: summary values match the stored epochs, unknowns stay gaps, the page is
self-contained and carries the disclaimer; trends compare nights around a journal entry."""

from __future__ import annotations

import math
import re
import statistics

import numpy as np
import pytest
from nightstand import cli, journal
from nightstand.commands import report as cmd_report
from nightstand.night import decode_night
from nightstand.report import figures, write_night_report, write_trends_report
from nightstand.report.metrics import (
    ARTEFACT_FLAGS,
    NightData,
    build_grid,
    clip_temp_settled,
    grid_of,
    hyperarousal_for,
    night_metrics,
)
from nightstand.report.pages import summary_rows
from nightstand.report.trends import compare, trend_rows
from nightstand.store import Store
from nsdev.core import light, vocab
from scipy import stats
from synth import SynthNight, make_night, store_night

START = 1768500000  # 2026-01-15 18:00 UTC, 19:00 local (+1 h); a multiple of 30
NIGHT = SynthNight(start_unix_s=START, epochs=240, evening_epochs=60, hr_bpm=60.0,
                   hr_step_bpm=2.0, contact_off=((100, 110),), motion=(120,), missing=(130, 131),
                   arousals=((150, 15000, 600), (170, 9000, 300)), wind_down=((10, 600),))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    store = Store(tmp / "db" / "n.sqlite3")
    data = make_night(NIGHT)
    row = store_night(store, data, NIGHT.device_id, 1)
    path = write_night_report(store, row, tmp / "out")
    yield store, row, path, data
    store.close()


def _values(html: str) -> dict[str, float]:
    return {k: float(v) for k, v in
            re.findall(r'<tr id="([a-z0-9_]+)"><th>[^<]*</th><td class="v"'
                       r' data-value="([-0-9.e]+)"', html)}


def test_summary_matches_the_stored_epochs(report):
    store, row, path, data = report
    html = path.read_text()
    shown = _values(html)
    night = decode_night(data)
    lights_out = START + 60 * 30  # the room and the lamp go dark at epoch 60
    sleep = [e for e in night.epochs if e["unix_s"] >= lights_out]
    valid = [e for e in sleep if e["hr_bpm"] is not None and not e["flags"] & ARTEFACT_FLAGS]
    assert shown["lights_out_unix_s"] == lights_out
    assert shown["sleep_hr_mean_bpm"] == pytest.approx(statistics.fmean(
        e["hr_bpm"] for e in valid))
    assert shown["sleep_rmssd_median_ms"] == pytest.approx(statistics.median(
        e["rmssd_ms"] for e in valid))
    # lowest 5-min mean: windows of 10 grid epochs with >= 6 valid values
    by_t = {e["unix_s"]: e for e in valid}
    best = min(statistics.fmean(v) for i in range(60, 231)
               if len(v := [by_t[t]["hr_bpm"] for t in range(START + 30 * i, START + 30 * (i + 10),
                                                               30) if t in by_t]) >= 6)
    assert shown["sleep_hr_lowest_bpm"] == pytest.approx(best)
    valid_h = len(valid) * 30 / 3600
    assert shown["arousal_index_per_h"] == pytest.approx(2 / valid_h)
    all_valid = [e for e in night.epochs if e["hr_bpm"] is not None
                 and not e["flags"] & ARTEFACT_FLAGS]
    assert shown["valid_hr_pct"] == pytest.approx(100 * len(all_valid) / 240)
    lamp = light.LightController()
    dose = sum((e["mel_edi_lx"] + lamp.lamp_mel_edi_lx(*e["lamp_level"])) * 30 / 3600
               for e in night.epochs if e["unix_s"] < lights_out)
    assert shown["evening_dose_lx_h"] == pytest.approx(dose)
    assert shown["wind_down_sessions"] == 1
    assert "19:05 for 10 min" in html
    assert f"{statistics.fmean(e['hr_bpm'] for e in valid):.1f} bpm" in html


def test_page_is_self_contained_with_disclaimer_and_png(report):
    _store, _row, path, _data = report
    html = path.read_text()
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script src" not in html
    assert all(src.startswith("data:image/png;base64,")
               for src in re.findall(r'src="([^"]*)"', html))
    assert 'id="disclaimer"' in html and "not a diagnosis" in html.lower()
    png = path.with_name(path.stem + "-main.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.name in html


def test_unknown_values_are_gaps_never_filled(report):
    store, row, _path, data = report
    nd = NightData.from_night(decode_night(data), row)
    g = build_grid(nd.epochs)
    m = night_metrics(nd, g)
    fig = figures.main_figure(nd, g, m)
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("heart rate"))
    y = np.asarray(line.get_ydata(), dtype=float)
    assert len(y) == 240
    for k in (*range(100, 110), 120, 130, 131):  # no contact, motion, no record
        assert math.isnan(y[k]), k
    stored = {e["unix_s"]: e["hr_bpm"] for e in nd.epochs}
    for k in np.flatnonzero(~np.isnan(y)):
        assert y[k] == stored[START + 30 * int(k)]  # exactly the stored value, nothing invented


def test_unknowns_say_unknown():
    bare = SynthNight(start_unix_s=START, epochs=80, evening_epochs=0, contact_off=((0, 80),),
                      dark_lux=50.0, lamp_warm=0.0, lamp_amber=0.0, beats=False)
    nd = NightData.from_night(decode_night(make_night(bare)))
    m = night_metrics(nd)
    html = "".join(summary_rows(nd, m))
    assert m["lights_out_unix_s"] is None and m["sleep_hr_mean_bpm"] is None
    for key in ("sleep_hr_mean_bpm", "arousal_index_per_h", "evening_dose_lx_h",
                "presleep_score", "hr_decline_bpm_30min"):
        assert re.search(f'<tr id="{key}"><th>[^<]*</th><td class="v unknown">unknown', html), key


def test_device_events_win_over_estimates(tmp_path):
    s = SynthNight(start_unix_s=START, epochs=120, evening_epochs=60, beats=False,
                   extra_events=[(50, vocab.EV_LIGHTS_OUT, (), None),
                                 (52, vocab.EV_PRESLEEP, (700, 660, 600, 15), None)])
    with Store(tmp_path / "n.sqlite3") as store:
        row = store_night(store, make_night(s), s.device_id, 1)
        nd = NightData.from_night(decode_night(store.raw_bytes(row)), row)
        m = night_metrics(nd)
        assert m["lights_out_unix_s"] == START + 50 * 30
        ps = hyperarousal_for(store, nd, m["lights_out_unix_s"])
    assert ps["source"] == "device" and ps["score"] == 0.7 and ps["decline_bpm_30min"] == 1.5


def test_host_presleep_score_from_the_firmware_estimator(tmp_path):
    with Store(tmp_path / "n.sqlite3") as store:
        s = SynthNight(start_unix_s=START, epochs=160, evening_epochs=60, beats=False)
        row = store_night(store, make_night(s), s.device_id, 1)
        nd = NightData.from_night(decode_night(store.raw_bytes(row)), row)
        ps = hyperarousal_for(store, nd, night_metrics(nd)["lights_out_unix_s"])
    # flat HR: no decline at all after lights-out -> the decline part of the score is 1
    assert ps["source"] == "host"
    assert abs(ps["decline_bpm_30min"]) < 0.01 and ps["score"] == pytest.approx(1.0)


# ---- trends and the journal comparison ----------------------------------------------------------

BEFORE_HR = (60.0, 61.0, 62.0, 63.0)
AFTER_HR = (55.0, 56.0, 58.0)


def _welch_ci(a: list[float], b: list[float]) -> tuple[float, float]:
    """Textbook Welch interval for mean(a) - mean(b) (independent of scipy's ttest_ind)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    q = stats.t.ppf(0.975, df)
    d = statistics.fmean(a) - statistics.fmean(b)
    return d - q * math.sqrt(va + vb), d + q * math.sqrt(va + vb)


@pytest.fixture(scope="module")
def trends_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trends")
    store = Store(tmp / "n.sqlite3")
    for i, hr in enumerate((*BEFORE_HR, *AFTER_HR)):
        s = SynthNight(start_unix_s=START + 86400 * i, night_id=i + 1, epochs=100,
                       evening_epochs=20, hr_bpm=hr, beats=False)
        store_night(store, make_night(s), s.device_id, i + 1)
    yield store, tmp
    store.close()


def test_compare_before_after_known_means(trends_store):
    store, tmp = trends_store
    rows = trend_rows(store)
    assert [r["date"] for r in rows][:2] == ["2026-01-15", "2026-01-16"]
    assert [r["sleep_hr_mean_bpm"] for r in rows] == pytest.approx([*BEFORE_HR, *AFTER_HR])
    e1 = journal.add_entry(store, "2026-01-19", "started magnesium", "supplement")
    table, info = compare(rows, e1, journal.entries(store))
    hr = next(c for c in table if c.key == "sleep_hr_mean_bpm")
    assert (hr.n_before, hr.n_after) == (4, 3)
    assert hr.mean_before == pytest.approx(statistics.fmean(BEFORE_HR))
    assert hr.mean_after == pytest.approx(statistics.fmean(AFTER_HR))
    assert hr.diff == pytest.approx(statistics.fmean(AFTER_HR) - statistics.fmean(BEFORE_HR))
    lo, hi = _welch_ci(list(AFTER_HR), list(BEFORE_HR))
    assert (hr.ci_low, hr.ci_high) == pytest.approx((lo, hi))
    assert hr.ci_high < 0 and "excludes 0" in hr.note
    path = write_trends_report(store, tmp / "out", e1.id)
    html = path.read_text()
    assert "http://" not in html and "https://" not in html and 'id="disclaimer"' in html
    assert f"{hr.diff:+.2f}" in html and f"{lo:+.2f} … {hi:+.2f}" in html
    assert "#1 2026-01-19 [supplement] started magnesium" in html


def test_compare_says_not_enough_nights(trends_store):
    store, _tmp = trends_store
    rows = trend_rows(store)
    if not any(e.date == "2026-01-19" for e in journal.entries(store)):
        # the earlier test's entry (tests may run apart, on different xdist workers)
        journal.add_entry(store, "2026-01-19", "started magnesium", "supplement")
    journal.add_entry(store, "2026-01-21", "bedtime 22:30")
    entries = journal.entries(store)
    table, info = compare(rows, entries[-1], entries)
    assert (info["before_n"], info["after_n"]) == (2, 1)  # sides stop at the neighbouring entry
    hr = next(c for c in table if c.key == "sleep_hr_mean_bpm")
    assert hr.ci_low is None and "not enough nights" in hr.note
    assert hr.mean_after == AFTER_HR[-1]


# ---- the command line ---------------------------------------------------------------------------

def _cli(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_commands", lambda: cmd_report.COMMANDS)
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_errors_are_one_clear_line(tmp_path, monkeypatch, capsys, report):
    missing = tmp_path / "typo" / "empty.sqlite3"
    code, _out, err = _cli(monkeypatch, capsys, "report", "--out", str(tmp_path), "--db",
                           str(missing))
    assert code == 1 and "no store at" in err and err.count("\n") == 1
    assert not missing.parent.exists()  # a read-only command creates nothing
    empty = tmp_path / "db" / "empty.sqlite3"
    Store(empty).close()
    code, _out, err = _cli(monkeypatch, capsys, "report", "--out", str(tmp_path), "--db",
                           str(empty))
    assert code == 1 and "holds no nights" in err and err.count("\n") == 1
    store, _row, _path, _data = report
    db = str(store.db_path)
    for argv, msg in (
        (("report", "42", "--out", str(tmp_path)), "no night with id 42"),
        (("report", "2026-02-30", "--out", str(tmp_path)), "bad night"),
        (("report", "2025-01-01", "--out", str(tmp_path)), "no night on 2025-01-01"),
        (("export", "1", "--format", "csv", "--out", str(_path)), "cannot"),
        (("journal", "add", "15/01/2026", "x"), "bad date"),
        (("report", "--trends", "--compare", "99", "--out", str(tmp_path)), "no journal entry"),
    ):
        code, _out, err = _cli(monkeypatch, capsys, *argv, "--db", db)
        assert code == 1 and msg in err and err.count("\n") == 1, (argv, err)


def test_lamp_while_lights_out_row():
    night_light = SynthNight(start_unix_s=START, epochs=120, evening_epochs=40, beats=False,
                             extra_events=[(40, vocab.EV_LAMP_PHASE, (vocab.PHASE_NIGHT,
                                                                      vocab.PHASE_WIND_DOWN),
                                            None)])
    nd = NightData.from_night(decode_night(make_night(night_light)))
    m = night_metrics(nd)
    html = "".join(summary_rows(nd, m))
    assert m["lamp_phases"]["night"]["on_s"] == 0  # the synthetic lamp is off after the evening
    assert re.search(r'<tr id="lamp_night_on_min"><th>[^<]*</th><td class="v"[^>]*'
                     r'data-value="0(\.0)?"[^>]*>off', html), html[:2000]
    nd2 = NightData.from_night(decode_night(make_night(
        SynthNight(start_unix_s=START, epochs=80, evening_epochs=40, beats=False))))
    html2 = "".join(summary_rows(nd2, night_metrics(nd2)))
    assert re.search(r'<tr id="lamp_night_on_min"><th>[^<]*</th><td class="v unknown">unknown',
                     html2)


def test_clip_temperature_row_evening_to_after_lights_out():
    # evening 140 epochs (lights out estimated at epoch 140: dark from then on), the finger out
    # for epochs 100-109; clip 31.5 degC in the evening, +1.25 degC from lights out on
    s = SynthNight(start_unix_s=START, epochs=300, evening_epochs=140, beats=False,
                   contact_off=((100, 110),), clip_temp_c=31.5, clip_rise_c=1.25)
    nd = NightData.from_night(decode_night(make_night(s)))
    g = grid_of(nd)
    settled = clip_temp_settled(g)
    assert np.isnan(settled[:20]).all() and settled[20] == 31.5  # 10 min after the first contact
    assert np.isnan(settled[100:130]).all() and settled[130] == 31.5  # out, then warming up
    m = night_metrics(nd, g)
    assert m["lights_out_unix_s"] == START + 140 * 30
    assert m["clip_temp_evening_c"] == 31.5 and m["clip_temp_sleep_c"] == 32.75
    assert m["clip_temp_rise_c"] == pytest.approx(1.25)
    assert m["clip_temp_range_c"] == [31.5, 32.75]
    html = "".join(summary_rows(nd, m))
    assert re.search(r'<tr id="clip_temp_rise_c"><th>clip temperature \(a proxy of finger skin '
                     r'temperature\)</th><td class="v" data-value="1.25">31.5 → 32.8 °C '
                     r'\(\+1.2 °C\)', html), html[-1500:]


def test_clip_temperature_unknown_says_why():
    old = NightData.from_night(decode_night(make_night(
        SynthNight(start_unix_s=START, epochs=200, evening_epochs=100, beats=False))))
    m = night_metrics(old)
    assert m["clip_temp_rise_c"] is None and m["clip_temp_range_c"] is None
    html = "".join(summary_rows(old, m))
    assert re.search(r'<tr id="clip_temp_rise_c"><th>[^<]*</th><td class="v unknown">unknown'
                     r'</td><td class="n">not recorded', html)
    short = NightData.from_night(decode_night(make_night(  # ends 32.5 min after lights out
        SynthNight(start_unix_s=START, epochs=165, evening_epochs=100, beats=False,
                   clip_temp_c=30.0))))
    m = night_metrics(short)
    assert m["clip_temp_evening_c"] == 30.0 and m["clip_temp_sleep_c"] is None
    html = "".join(summary_rows(short, m))
    assert re.search(r'<td class="v unknown">unknown</td><td class="n">30.0 °C; needs 5 min',
                     html)
