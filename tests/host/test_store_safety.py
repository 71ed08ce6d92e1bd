"""The store touches only what is its own: `--db` never changes modes outside the store, read-only
commands never write or create, one sync per store, two first opens at once, damaged stores are
named as such and rebuilt from raw/, a full disk during sync is said as such (issue 15)."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import threading
import zlib
from pathlib import Path

import pytest
from nightstand import cli, journal
from nightstand import store as store_mod
from nightstand.commands import sync as cmd_sync
from nightstand.errors import UserError
from nightstand.store import Store
from synth import SynthNight, make_night, store_night

START = 1768500000


def snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes | None]]:
    """Every entry under root (and root itself): mode, size, mtime_ns, content of small files."""
    out = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.lstat()
        data = p.read_bytes() if p.is_file() and st.st_size < 1 << 20 else None
        out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, data)
    return out


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def night_bytes() -> bytes:
    return make_night(SynthNight(start_unix_s=START, epochs=60, evening_epochs=20, beats=False))


def _store_with_night(folder: Path, data: bytes) -> Path:
    db = folder / "n.sqlite3"
    with Store(db) as store:
        store_night(store, data, "synth-01", 1)
    return db


# ---- item 1: never change what is not the store's -----------------------------------------

def test_a_shared_folder_as_db_is_refused_and_left_alone(tmp_path, capsys):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp: sticky, world-writable
    (shared / "someone-elses.txt").write_text("x")
    before = snapshot(shared)
    for cmd in (["nights"], ["journal", "list"], ["journal", "add", "2026-01-10", "x"],
                ["report", "--last", "--out", str(tmp_path / "out")]):
        code, _out, err = _cli(capsys, *cmd, "--db", str(shared))
        assert code == 1 and "is a folder" in err and err.count("\n") == 1, (cmd, err)
    assert snapshot(shared) == before
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777


def test_a_foreign_file_as_db_is_refused_not_chmodded(tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    foreign = folder / "notes.txt"
    foreign.write_text("my notes\n")
    os.chmod(foreign, 0o644)
    os.chmod(folder, 0o755)
    before = snapshot(folder)
    for cmd in (["nights"], ["journal", "add", "2026-01-10", "x"], ["journal", "list"]):
        code, _out, err = _cli(capsys, *cmd, "--db", str(foreign))
        assert code == 1 and "not a nightstand store" in err and err.count("\n") == 1, err
    assert snapshot(folder) == before  # no raw/, no chmod of the file or the folder


def test_a_new_store_needs_a_folder_of_its_own(tmp_path, capsys):
    crowded = tmp_path / "home"
    crowded.mkdir()
    (crowded / "photo.jpg").write_bytes(b"\xff\xd8")
    before = snapshot(crowded)
    code, _out, err = _cli(capsys, "journal", "add", "2026-01-10", "x", "--db",
                           str(crowded / "n.sqlite3"))
    assert code == 1 and "a folder of its own" in err and err.count("\n") == 1
    assert snapshot(crowded) == before
    # A folder the tool creates is private; the existing parent keeps its mode.
    os.chmod(crowded, 0o755)
    db = crowded / "nightstand" / "n.sqlite3"
    assert _cli(capsys, "journal", "add", "2026-01-10", "x", "--db", str(db))[0] == 0
    assert stat.S_IMODE(crowded.stat().st_mode) == 0o755
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert not (db.parent / "raw").exists()  # made when the first night is stored


def test_an_sqlite_file_of_another_program_is_refused(tmp_path, capsys):
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE photos (id INTEGER)")
    con.commit()
    con.close()
    before = snapshot(tmp_path)
    code, _out, err = _cli(capsys, "journal", "add", "2026-01-10", "x", "--db", str(other))
    assert code == 1 and "another program" in err and err.count("\n") == 1
    assert snapshot(tmp_path) == before


# ---- item 9: read-only commands never create or write ----------------------------------------

@pytest.mark.parametrize("cmd", [["nights"], ["journal", "list"],
                                 ["export", "1", "--out", "OUT"],
                                 ["report", "--all", "--out", "OUT"]])
def test_read_only_commands_never_create_a_store(tmp_path, capsys, cmd):
    db = tmp_path / "typo" / "x.sqlite3"
    cmd = [str(tmp_path / "out") if a == "OUT" else a for a in cmd]
    code, _out, err = _cli(capsys, *cmd, "--db", str(db))
    assert code == 1 and "no store at" in err and err.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == []


def test_read_only_commands_do_not_write_the_store(tmp_path, capsys, night_bytes):
    db = _store_with_night(tmp_path / "store", night_bytes)
    with Store(db) as store:
        journal.add_entry(store, "2026-01-16", "started magnesium")
    os.chmod(db.parent, 0o750)  # the user's choice: a read-only command must not undo it
    os.chmod(db, 0o640)

    def store_only(snap: dict) -> dict:
        """The store itself: the SQLite file, raw/, and the folder's mode. The derived sleep
        cache (sleep-cache/, docs/syncing-your-device.md) may be filled by a reader."""
        return {k: (v if k != "." else v[0]) for k, v in snap.items()
                if not k.startswith("sleep-cache")}

    before = snapshot(db.parent)
    commands = (["nights"], ["nights", "--json"], ["journal", "list"],
                ["report", "--all", "--out", str(tmp_path / "out")],
                ["export", "1", "--out", str(tmp_path / "csv")])
    for cmd in commands:
        code, _out, err = _cli(capsys, *cmd, "--db", str(db))
        assert code == 0, (cmd, err)
    assert store_only(snapshot(db.parent)) == store_only(before)
    warm = snapshot(db.parent)
    for cmd in commands:  # with the cache filled, nothing at all changes
        assert _cli(capsys, *cmd, "--db", str(db))[0] == 0
    assert snapshot(db.parent) == warm


def test_read_only_open_cannot_write_even_as_root(tmp_path, night_bytes):
    """A read-only mount cannot be made here (root ignores modes): check that the read-only
    store never asks SQLite for write access, and never creates or chmods anything."""
    db = _store_with_night(tmp_path / "store", night_bytes)
    calls: list[str] = []
    real_chmod, real_mkdir = os.chmod, os.mkdir

    def no_chmod(*a, **k):
        calls.append(f"chmod {a[0]}")
        raise OSError(errno.EROFS, "Read-only file system")

    def no_mkdir(*a, **k):
        calls.append(f"mkdir {a[0]}")
        raise OSError(errno.EROFS, "Read-only file system")

    os.chmod, os.mkdir = no_chmod, no_mkdir
    try:
        with Store(db, readonly=True) as store:
            assert len(store.nights()) == 1
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                store.db.execute("CREATE TABLE x (a)")
    finally:
        os.chmod, os.mkdir = real_chmod, real_mkdir
    assert calls == []


# ---- item 8: one sync per store; two first opens at once; what is really wrong -------------

def test_two_syncs_on_one_store_are_refused_clearly(tmp_path):
    db = tmp_path / "s" / "n.sqlite3"
    with Store(db) as first, Store(db) as second:
        first.lock()
        with pytest.raises(UserError, match="another sync is running"):
            second.lock()
        first.unlock()
        second.lock()  # free again once the first is done


def test_the_sync_command_takes_the_lock(tmp_path, monkeypatch, capsys):
    db = tmp_path / "s" / "n.sqlite3"
    monkeypatch.setattr(cmd_sync, "_run_device", lambda *a: pytest.fail("synced while locked"))
    with Store(db) as other:
        other.lock()
        code, _out, err = _cli(capsys, "sync", "--port", "/dev/null", "--db", str(db))
    assert code == 1 and "another sync is running" in err and err.count("\n") == 1


def test_two_first_opens_at_once(tmp_path, monkeypatch):
    """The second opener reads the schema version while the first is still migrating: it must
    wait for the first, not fail with `table devices already exists`."""
    db = tmp_path / "s" / "n.sqlite3"
    db.parent.mkdir()
    real_connect = sqlite3.connect
    errors: list[BaseException] = []
    second_done = threading.Event()

    def open_second() -> None:
        try:
            Store(db).close()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        finally:
            second_done.set()

    state = {"armed": True}

    def connect(*a, **k):
        con = real_connect(*a, **k)

        def trace(sql: str) -> None:
            # The first opener is about to create the tables: let another one open now.
            if state["armed"] and "CREATE TABLE devices" in sql:
                state["armed"] = False
                threading.Thread(target=open_second).start()
                # bounded: with the fix the second waits on the write lock, so this times out
                second_done.wait(0.5)

        con.set_trace_callback(trace)
        return con

    monkeypatch.setattr(store_mod.sqlite3, "connect", connect)
    try:
        Store(db).close()
    except Exception as e:  # noqa: BLE001
        errors.append(e)
    second_done.wait(30)
    assert errors == []
    monkeypatch.setattr(store_mod.sqlite3, "connect", real_connect)
    with Store(db, readonly=True) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION


# ---- item 7: damaged stores -----------------------------------------------------------------

def _damage_pages(db: Path) -> None:
    raw = bytearray(db.read_bytes())
    for i in range(100, len(raw), 97):
        raw[i] ^= 0xA5
    db.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["pages", "drop_table", "bad_json", "truncated"])
def test_a_damaged_store_is_named_with_the_way_back(tmp_path, capsys, night_bytes, damage):
    db = _store_with_night(tmp_path / "store", night_bytes)
    if damage == "pages":
        _damage_pages(db)
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[:3000])
    else:
        con = sqlite3.connect(db)
        if damage == "drop_table":
            con.execute("DROP TABLE events")
        else:
            con.execute("UPDATE events SET values_json='{not json'")
            con.execute("UPDATE epochs SET data_json='[1,'")
        con.commit()
        con.close()
    for cmd in (["nights"], ["report", "--all", "--out", str(tmp_path / "out")],
                ["report", "--trends", "--out", str(tmp_path / "out")],
                ["export", "1", "--out", str(tmp_path / "csv")], ["journal", "list"]):
        code, _out, err = _cli(capsys, *cmd, "--db", str(db))
        if damage == "bad_json" and cmd[0] in ("nights", "journal", "export"):
            continue  # these do not read the damaged columns
        assert code == 1, (cmd, err)
        assert "damaged" in err and "store rebuild" in err and err.count("\n") == 1, (cmd, err)


def test_store_rebuild_recovers_the_nights_from_raw(tmp_path, capsys, night_bytes):
    db = _store_with_night(tmp_path / "store", night_bytes)
    with Store(db) as store:
        journal.add_entry(store, "2026-01-16", "started magnesium")
        store.save_device("synth-01", secret=b"k" * 32)
        before = store.nights()
    con = sqlite3.connect(db)
    con.execute("DROP TABLE epochs")
    con.commit()
    con.close()
    code, out, err = _cli(capsys, "store", "rebuild", "--db", str(db))
    assert code == 0, err
    assert "1 night" in out
    with Store(db, readonly=True) as store:
        after = store.nights()
        assert [(r["device_id"], r["night_id"], r["epochs"], r["crc32"]) for r in after] == [
            (r["device_id"], r["night_id"], r["epochs"], r["crc32"]) for r in before]
        assert [e.text for e in journal.entries(store)] == ["started magnesium"]
        assert store.secrets_for() == [b"k" * 32]
    assert list(db.parent.glob("n.sqlite3.damaged*"))  # the damaged file is kept, not deleted


# ---- item 7: a full disk during sync --------------------------------------------------------

def test_a_full_disk_while_committing_leaves_no_orphan_night(tmp_path, monkeypatch, night_bytes):
    db = tmp_path / "s" / "n.sqlite3"
    with Store(db) as store:
        part = store.partial_path("synth-01", 1)
        part.write_bytes(night_bytes)

        def full(*a, **k):
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store, "_decode_into", full)
        with pytest.raises(sqlite3.OperationalError):
            store.commit_night("synth-01", 1, part, zlib.crc32(night_bytes))
        assert store.nights() == []
    assert list((db.parent / "raw").rglob("*.night")) == []


class FakeDevice:
    """A device behind the Client API, in-process: nights it holds, the acknowledgements."""

    def __init__(self, nights: dict[int, bytes]) -> None:
        self.nights = nights
        self.acked: list[int] = []

    def connect(self) -> dict:
        return {"device_id": "synth-01", "firmware_version": "test"}

    def set_time(self) -> None:
        pass

    def get_config(self) -> dict:
        from nightstand.sync.client import DeviceError
        raise DeviceError(0, 0, "no settings over sync")  # as an older firmware

    def list_nights(self) -> list:
        from nightstand.sync.client import Night
        return [Night(i, len(d), START, 0) for i, d in sorted(self.nights.items())]

    def night_crc(self, night_id: int) -> tuple[int, int]:
        d = self.nights[night_id]
        return len(d), zlib.crc32(d)

    def download(self, night_id, size, sink, start=0, progress=None) -> int:
        d = self.nights[night_id]
        for off in range(start, size, 512):
            sink(off, d[off:off + 512])
        return size - start

    def ack_night(self, night_id: int, size: int, crc: int) -> None:
        self.acked.append(night_id)

    def close(self) -> None:
        pass


def _sync_cli(monkeypatch, capsys, db: Path, dev: FakeDevice) -> tuple[int, str]:
    monkeypatch.setattr(cmd_sync, "_client", lambda args, store: (dev, "fake"))
    code, _out, err = _cli(capsys, "sync", "--port", "fake", "--db", str(db), "--no-set-time")
    return code, err


def test_a_full_disk_during_sync_is_said_as_such(tmp_path, monkeypatch, capsys, night_bytes):
    db = tmp_path / "s" / "n.sqlite3"
    Store(db).close()
    dev = FakeDevice({1: night_bytes})
    import nightstand.sync.engine as engine

    real_open_part = engine._open_part if hasattr(engine, "_open_part") else None
    written = {"n": 0}

    class FullFile:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, data):
            written["n"] += len(data)
            if written["n"] > 1024:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

    real_open = open

    def fake_open(path, mode="r", *a, **k):  # the pre-fix engine opened the .part with open()
        f = real_open(path, mode, *a, **k)
        return FullFile(f) if str(path).endswith(".part") and "b" in mode else f

    if real_open_part is not None:
        monkeypatch.setattr(engine, "_open_part", lambda p: FullFile(real_open_part(p)))
    else:
        monkeypatch.setattr("builtins.open", fake_open)
    code, err = _sync_cli(monkeypatch, capsys, db, dev)
    assert code == 1 and "disk" in err and "full" in err and err.count("\n") == 1, err
    assert "cable" not in err and dev.acked == []
    assert list((db.parent / "raw").rglob("*.night")) == []


def test_a_folder_in_place_of_a_part_file_is_named(tmp_path, monkeypatch, capsys, night_bytes):
    db = tmp_path / "s" / "n.sqlite3"
    with Store(db) as store:
        part = store.partial_path("synth-01", 1)
    part.mkdir()
    (part / "x").write_text("x")
    dev = FakeDevice({1: night_bytes})
    code, err = _sync_cli(monkeypatch, capsys, db, dev)
    assert code == 1 and "is a folder" in err and "cable" not in err, err
    assert err.count("\n") == 1 and dev.acked == []
    part.joinpath("x").unlink()
    part.rmdir()
    code, err = _sync_cli(monkeypatch, capsys, db, dev)
    assert code == 0 and dev.acked == [1], err


def test_store_redecode_and_rebuild_respect_the_lock(tmp_path, capsys, night_bytes):
    db = _store_with_night(tmp_path / "store", night_bytes)
    with Store(db) as store, store.db:  # as if an older decoder had decoded it
        store.db.execute("UPDATE nights SET decoder_version=1")
        store.db.execute("DELETE FROM epochs")
    with Store(db) as other:
        other.lock()
        for action in ("redecode", "rebuild"):
            code, _out, err = _cli(capsys, "store", action, "--db", str(db))
            assert code == 1 and "another sync is running" in err, err
    code, out, err = _cli(capsys, "store", "redecode", "--db", str(db))
    assert code == 0 and "1 night(s) decoded again" in out, err
    with Store(db, readonly=True) as store:
        assert store.nights()[0]["epochs"] == 60
    code, out, err = _cli(capsys, "store", "redecode", "--db", str(tmp_path / "typo" / "x"))
    assert code == 1 and "no store at" in err and not (tmp_path / "typo").exists()


def _older_store(folder: Path) -> Path:
    """A store as the previous nightstand left it: every migration but the last."""
    db = folder / "n.sqlite3"
    folder.mkdir()
    con = sqlite3.connect(db)
    for v, script in enumerate(store_mod.MIGRATIONS[:-1]):
        con.executescript(script)
        con.execute(f"PRAGMA user_version = {v + 1}")
    con.commit()
    con.close()
    return db


def test_a_reader_upgrades_an_older_store_once(tmp_path, capsys):
    db = _older_store(tmp_path / "s")
    code, out, err = _cli(capsys, "nights", "--db", str(db))
    assert code == 0 and "no nights stored yet" in out, err
    with Store(db, readonly=True) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION


def test_an_older_store_on_a_read_only_disk_is_named(tmp_path, capsys, monkeypatch):
    db = _older_store(tmp_path / "s")
    before = snapshot(db.parent)
    monkeypatch.setattr(store_mod.os, "access", lambda *a, **k: False)  # as on a read-only mount
    code, _out, err = _cli(capsys, "nights", "--db", str(db))
    assert code == 1 and "older layout" in err and "read-only" in err and err.count("\n") == 1
    assert snapshot(db.parent) == before
