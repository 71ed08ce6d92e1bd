"""Reports hold up against damaged and hostile data (issue 15): a night with a damaged header is
recovered from what the store knows, batch commands go on past a bad night and name it, far-off
journal dates do not break the trends page, device strings cannot hide page text."""

from __future__ import annotations

import json
import re
import zlib

import pytest
from nightstand import cli
from nightstand.report import write_night_report, write_trends_report
from nightstand.store import Store
from nsdev.core import vocab
from synth import SynthNight, make_night

START = 1768500000  # 2026-01-15 18:00 UTC


def _commit(store: Store, data: bytes, night_id: int, start_unix_s: int,
            device_id: str = "synth-01") -> int:
    """Store a night the way sync does: with the start time the device listed."""
    part = store.partial_path(device_id, night_id)
    part.write_bytes(data)
    return store.commit_night(device_id, night_id, part, zlib.crc32(data), start_unix_s)


def _flip_header_byte(data: bytes) -> bytes:
    raw = bytearray(data)
    raw[len(vocab.MAGIC) + 3 + 4] ^= 0x40  # a byte inside the header payload (night id area)
    return bytes(raw)


def _night(i: int, **kw) -> tuple[bytes, int]:
    start = START + 86400 * i
    s = SynthNight(start_unix_s=start, night_id=i + 1, epochs=80, evening_epochs=20,
                   beats=False, hr_bpm=60.0 + i, **kw)
    return make_night(s), start


@pytest.fixture
def three_nights(tmp_path):
    db = tmp_path / "store" / "n.sqlite3"
    with Store(db) as store:
        for i in range(3):
            data, start = _night(i)
            if i == 1:
                data = _flip_header_byte(data)
            _commit(store, data, i + 1, start)
    return db


def test_a_flipped_header_byte_keeps_the_night_usable(three_nights, tmp_path, capsys):
    with Store(three_nights) as store:
        rows = store.nights()
        damaged = rows[1]
        assert damaged["night_id"] == 2 and damaged["epochs"] == 80 and damaged["n_skipped"]
        assert damaged["utc_offset_s"] == 3600  # from the same device's nearest night
        assert damaged["header_recovered"] and not rows[0]["header_recovered"]
        html = write_night_report(store, damaged["id"], tmp_path / "out").read_text()
    assert (tmp_path / "out" / "night-2026-01-16-2.html").exists()
    assert cli.main(["nights", "--db", str(three_nights)]) == 0
    assert "header damaged" in capsys.readouterr().out
    assert "header record was damaged" in html
    hr = re.search(r'id="sleep_hr_mean_bpm"><th>[^<]*</th><td class="v" data-value="([0-9.]+)"',
                   html)
    assert hr and float(hr.group(1)) == pytest.approx(61.0)


def test_report_all_goes_on_past_a_bad_night_and_names_it(three_nights, tmp_path, capsys):
    with Store(three_nights) as store:
        rel = store.db.execute("SELECT raw_path FROM nights WHERE night_id=1").fetchone()[0]
    (three_nights.parent / rel).unlink()  # night 1's raw file is gone
    out = tmp_path / "out"
    code = cli.main(["report", "--all", "--out", str(out), "--db", str(three_nights)])
    cap = capsys.readouterr()
    assert code == 1
    assert cap.err.count("\n") == 1 and "1 of 3 nights failed" in cap.err
    assert "night 1:" in cap.err and "raw file is missing" in cap.err
    assert sorted(p.name for p in out.glob("*.html")) == [
        "night-2026-01-16-2.html", "night-2026-01-17-3.html", "trends.html"]
    code = cli.main(["export", "2026-01-15", "--out", str(tmp_path / "csv"), "--db",
                     str(three_nights)])
    assert code == 1 and "raw file is missing" in capsys.readouterr().err


def test_far_off_journal_dates_do_not_break_the_trends_page(three_nights, tmp_path):
    """Entries an older nightstand accepted (1970, year 206, 2126) stay in the journal list but
    the plot keeps to the nights' range."""
    with Store(three_nights) as store:
        with store.db:
            for date in ("1970-01-01", "0206-01-01", "2126-01-01", "2026-01-16"):
                store.db.execute("INSERT INTO journal(date, text, created_unix_s) VALUES "
                                 "(?, 'x', 0)", (date,))
        path = write_trends_report(store, tmp_path / "out")
    html = path.read_text()
    assert "#1 1970-01-01" in html and "#3 2126-01-01" in html
    assert 'id="disclaimer"' in html


HOSTILE = "<!--<script>&\u2028"


def test_device_strings_cannot_hide_the_page(tmp_path):
    s = SynthNight(start_unix_s=START, device_id=HOSTILE, epochs=60, evening_epochs=20,
                   beats=False, extra_events=[(30, vocab.EV_BUTTON, (0, 0), HOSTILE)])
    with Store(tmp_path / "s" / "n.sqlite3") as store:
        row = _commit(store, make_night(s), 1, START, device_id=HOSTILE)
        html = write_night_report(store, row, tmp_path / "out").read_text()
    block = re.search(r'<script type="application/json" id="metrics">(.*?)</script>', html,
                      re.S)
    assert block is not None
    content = block.group(1)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in content
    assert json.loads(content)["device_id"] == HOSTILE  # still the exact string for scripts
    # the footer after the script block is page text, not swallowed script data
    tail = html[block.end():]
    assert "does not diagnose" in tail and tail.rstrip().endswith("</html>")
    assert "<!--" not in html.replace("<!DOCTYPE", "")


def test_report_all_goes_on_past_a_night_the_report_code_cannot_draw(three_nights, tmp_path,
                                                                     capsys, monkeypatch):
    from nightstand.report import figures

    real = figures.main_figure
    calls = {"n": 0}

    def flaky(nd, g, m):
        calls["n"] += 1
        if nd.night_id == 2:
            raise RuntimeError("raster overflow")
        return real(nd, g, m)

    monkeypatch.setattr(figures, "main_figure", flaky)
    out = tmp_path / "out"
    code = cli.main(["report", "--all", "--out", str(out), "--db", str(three_nights)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "night 2: cannot be reported" in err
    assert calls["n"] == 3 and (out / "trends.html").exists()
    assert len(list(out.glob("night-*.html"))) == 2
