"""Journal: entries in the store (migration), validation, and the `journal` command."""

from __future__ import annotations

import pytest
from nightstand import cli, journal
from nightstand.commands import report as cmd_report
from nightstand.errors import UserError
from nightstand.store import SCHEMA_VERSION, Store


def test_entries_are_kept_in_date_order(tmp_path):
    db = tmp_path / "n.sqlite3"
    with Store(db) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        b = journal.add_entry(store, "2026-02-01", "  bedtime   22:30 ", now_unix_s=5)
        a = journal.add_entry(store, "2026-01-10", "started magnesium", tag="supplement")
    with Store(db) as store:  # persisted
        got = journal.entries(store)
        assert [e.id for e in got] == [a.id, b.id]
        assert got[1].text == "bedtime 22:30" and got[1].created_unix_s == 5
        assert journal.latest_entry(store) == got[1]
        assert journal.get_entry(store, a.id).tag == "supplement"
        with pytest.raises(UserError, match="no journal entry #99"):
            journal.get_entry(store, 99)


@pytest.mark.parametrize("date,text,tag,msg", [
    ("2026-02-30", "x", None, "bad date"),
    ("yesterday", "x", None, "bad date"),
    ("2026-01-01", "   ", None, "empty"),
    ("2026-01-01", "x" * 501, None, "too long"),
    ("2026-01-01", "x", "t" * 41, "bad tag"),
    ("1970-01-01", "x", None, "out of range"),
    ("2126-01-01", "x", None, "out of range"),
    ("0206-01-01", "x", None, "out of range"),
    ("20260101", "x", None, "bad date"),
])
def test_bad_entries_are_refused(tmp_path, date, text, tag, msg):
    with Store(tmp_path / "n.sqlite3") as store:
        with pytest.raises(UserError, match=msg):
            journal.add_entry(store, date, text, tag)
        assert journal.entries(store) == []


def test_journal_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_commands", lambda: cmd_report.COMMANDS)
    db = str(tmp_path / "n.sqlite3")
    assert cli.main(["journal", "list", "--db", db]) == 1  # read-only: never creates a store
    assert "no store at" in capsys.readouterr().err and not (tmp_path / "n.sqlite3").exists()
    Store(db).close()
    assert cli.main(["journal", "list", "--db", db]) == 0
    assert "no journal entries yet" in capsys.readouterr().out
    assert cli.main(["journal", "add", "2026-01-10", "started melatonin 0.5 mg", "--tag",
                     "supplement", "--db", db]) == 0
    assert "#1 2026-01-10 [supplement] started melatonin 0.5 mg" in capsys.readouterr().out
    assert cli.main(["journal", "list", "--json", "--db", db]) == 0
    assert '"tag": "supplement"' in capsys.readouterr().out
    assert cli.main(["journal", "add", "10.01.2026", "x", "--db", db]) == 1
    err = capsys.readouterr().err
    assert "bad date" in err and err.count("\n") == 1


def test_journal_edit_and_delete(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_commands", lambda: cmd_report.COMMANDS)
    db = str(tmp_path / "n.sqlite3")
    assert cli.main(["journal", "edit", "1", "--text", "x", "--db", db]) == 1
    assert "no store at" in capsys.readouterr().err and not (tmp_path / "n.sqlite3").exists()
    assert cli.main(["journal", "add", "2026-01-10", "started melatonin", "--tag", "supplement",
                     "--db", db]) == 0
    assert cli.main(["journal", "add", "2026-01-20", "bedtime 22:30", "--db", db]) == 0
    capsys.readouterr()
    assert cli.main(["journal", "edit", "1", "--date", "2026-01-12", "--tag", "", "--db", db]) == 0
    assert "#1 2026-01-12 started melatonin" in capsys.readouterr().out
    assert cli.main(["journal", "edit", "2", "--date", "1970-01-01", "--db", db]) == 1
    err = capsys.readouterr().err
    assert "out of range" in err and err.count("\n") == 1
    assert cli.main(["journal", "edit", "2", "--db", db]) == 1
    assert "nothing to change" in capsys.readouterr().err
    assert cli.main(["journal", "delete", "1", "--db", db]) == 0
    assert "#1 2026-01-12 started melatonin" in capsys.readouterr().out
    assert cli.main(["journal", "delete", "1", "--db", db]) == 1
    assert "no journal entry #1" in capsys.readouterr().err
    with Store(db, readonly=True) as store:
        assert [(e.id, e.date, e.text) for e in journal.entries(store)] == [
            (2, "2026-01-20", "bedtime 22:30")]
