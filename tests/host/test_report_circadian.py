"""The trends page's circadian section: phase per night, the plan, its log and before/after."""

from __future__ import annotations

import re

from nightstand import cli, planning
from nightstand.plan import PlanSettings
from nightstand.report import write_night_report, write_trends_report
from nightstand.store import Store
from nsdev.core import vocab
from synth import SynthNight, make_night, store_night

T0 = 1767294000  # 2026-01-01 19:00 UTC (20:00 local at UTC+1)


def _store(tmp_path, n: int = 6):
    db = tmp_path / "s.sqlite3"
    with Store(db) as store:
        for i in range(n):
            # evening from 20:00 (3 h of light), lights out at 23:00, 8 h of sleep, 30 min after
            s = SynthNight(start_unix_s=T0 + i * 86400, night_id=i + 1, epochs=1380,
                           evening_epochs=360, evening_mel_lx=8.0 + i,
                           extra_events=[(360, vocab.EV_LIGHTS_OUT, (), None)],
                           contact_off=((360 + 960, 10_000),), beats=False)
            store_night(store, make_night(s), "synth-01", i + 1)
    return db


def test_trends_page_shows_phase_plan_and_its_log(tmp_path) -> None:
    db = _store(tmp_path)
    with Store(db) as store:
        planning.set_plan(store, "synth-01", PlanSettings("advance", "06:30", 15))
        planning.remember_config(store, "synth-01", {"bedtime": "23:00", "wake": "07:00"})
        out = write_trends_report(store, tmp_path / "rep")
    page = out.read_text()
    assert "Circadian phase and lamp plan" in page
    rows = re.findall(r'<td class="v" data-value="([0-9.e+]+)">(\d\d:\d\d) \((\d\d:\d\d)–'
                      r"(\d\d:\d\d)\)</td>", page)
    assert len(rows) == 6
    # DLMO of a 23:00 sleeper: the evening, hours before lights-out (sleep onset 23:00 local)
    for _v, dlmo, lo, hi in rows:
        assert "18:00" <= lo <= dlmo <= hi <= "23:00"
    assert "move wake towards 06:30 by at most 15 min a day" in page
    assert "Before and after the plan was chosen" in page
    assert "not diagnose" in page or "Not a diagnosis" in page


def test_plan_command_prints_phase_plan_and_next_step(tmp_path, capsys) -> None:
    db = _store(tmp_path, 3)
    with Store(db) as store:
        planning.remember_config(store, "synth-01", {"bedtime": "00:30", "wake": "08:30"})
    assert cli.main(["plan", "--advance-to", "07:00", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "predicted DLMO" in out and "Plan in force: move wake towards 07:00" in out
    assert "next sync: advancing 15 min towards wake 07:00" in out
    assert cli.main(["plan", "--advance-to", "7am", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HH:MM" in err
    with Store(db) as store:  # the refused choice left the plan as it was
        assert planning.get_plan(store, "synth-01").settings.target_wake == "07:00"


def test_night_report_shows_that_nights_predicted_phase(tmp_path) -> None:
    db = _store(tmp_path, 3)
    with Store(db) as store:
        rows = store.nights()
        page = write_night_report(store, rows[-1]["id"], tmp_path / "rep").read_text()
        other = write_night_report(store, rows[0]["id"], tmp_path / "rep").read_text()
    for p in (page, other):
        m = re.search(r'id="dlmo" data-value="([0-9.e+]+)">(\d\d:\d\d)<', p)
        assert m and "18:00" <= m.group(2) <= "23:00"
        assert "Lamp plan in force: keep the current timing" in p
    # each page shows its own night's estimate (the first night starts from the habitual day)
    assert re.search(r'id="dlmo" data-value="([0-9.e+]+)"', page).group(1) != re.search(
        r'id="dlmo" data-value="([0-9.e+]+)"', other).group(1)
