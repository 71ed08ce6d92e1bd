"""The bad-input matrix (issue 15): every CLI command x every class of bad input -> exit != 0,
exactly one stderr line that names the problem (and what to do), no traceback, and nothing on disk
changed (the whole folder is snapshotted before and after).

Commands run in-process (`nightstand.cli.main`), a few through a real subprocess. Faults that root
ignores (read-only folders) or that need a device (a full disk) come from a fault-injecting file
layer: `os.mkdir`, `os.open` and `io.open` raise the errno for paths under a chosen folder.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from nightstand import cli
from nightstand.commands import sync as cmd_sync
from nightstand.sim import scenario as scenario_mod
from nightstand.sim import session as sim_session
from nightstand.store import Store
from synth import SynthNight, make_night, store_night

START = 1768500000
HUGE = 5 << 30  # a sparse 5 GiB file: reading it whole would exhaust memory


# ---- the world the commands are pointed at ----------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("world")
    with Store(w / "store" / "n.sqlite3") as store:
        store_night(store, make_night(SynthNight(start_unix_s=START, epochs=40,
                                                 evening_epochs=10, beats=False)),
                    "synth-01", 1)
    with Store(w / "store" / "n.sqlite3") as store, store.db:
        store.db.execute("INSERT INTO journal(date, text, created_unix_s) VALUES "
                         "('2026-01-16', 'started magnesium', 0)")
    (w / "dir").mkdir()
    (w / "dir" / "keep.txt").write_text("the user's file\n")
    (w / "empty").write_bytes(b"")
    (w / "binary").write_bytes(bytes(range(256)) * 40)
    with open(w / "huge", "wb") as f:
        f.truncate(HUGE)
    (w / "afile").write_text("not a folder\n")
    (w / "wrong_header.csv").write_text("when,value\n0,1\n0.01,2\n")
    (w / "nan.csv").write_text("time_s,ppg\n" + "".join(f"{i / 100},{i % 7}\n"
                                                        for i in range(50)) + "0.5,nan\n")
    (w / "inf.csv").write_text("time_s,ppg\n0,1\n0.01,inf\n")
    (w / "backwards.csv").write_text("time_s,ppg\n0,1\n0.02,2\n0.01,3\n")
    default = json.loads((scenario_mod.SCENARIO_DIR / "default.json").read_text())
    for name, change in (("far", {"start": "9999-12-31T20:30:00"}),
                         ("nan", {"duration_s": float("nan")}),
                         ("wrong_header", {"format": 99})):
        (w / f"{name}.json").write_text(json.dumps({**default, **change}))
    (w / "list.json").write_text("[1, 2]")
    (w / "deep.json").write_text("[" * 100000 + "]" * 100000)
    other = sqlite3.connect(w / "other.sqlite3")
    other.execute("CREATE TABLE photos (id INTEGER)")
    other.commit()
    other.close()
    damaged = w / "damaged" / "n.sqlite3"
    damaged.parent.mkdir()
    raw = bytearray((w / "store" / "n.sqlite3").read_bytes())
    for i in range(100, len(raw), 61):
        raw[i] ^= 0x5A
    damaged.write_bytes(bytes(raw))
    (w / "ro").mkdir()
    return w


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


# ---- the fault-injecting file layer ------------------------------------------------------------

@contextmanager
def faulty_files(under: Path, err: int) -> Iterator[None]:
    """Writes (mkdir, open for writing/creating) under `under` fail with `err`."""
    prefix = str(under.resolve())
    real_mkdir, real_os_open, real_io_open = os.mkdir, os.open, io.open

    def hit(path) -> bool:
        try:
            return os.path.abspath(os.fspath(path)).startswith(prefix)
        except TypeError:
            return False

    def mkdir(path, *a, **k):
        if hit(path):
            raise OSError(err, os.strerror(err), os.fspath(path))
        return real_mkdir(path, *a, **k)

    def os_open(path, flags, *a, **k):
        if hit(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(err, os.strerror(err), os.fspath(path))
        return real_os_open(path, flags, *a, **k)

    def io_open(file, mode="r", *a, **k):
        if not isinstance(file, int) and hit(file) and any(c in mode for c in "wax+"):
            raise OSError(err, os.strerror(err), os.fspath(file))
        return real_io_open(file, mode, *a, **k)

    os.mkdir, os.open, io.open, builtins.open = mkdir, os_open, io_open, io_open
    try:
        yield
    finally:
        os.mkdir, os.open, io.open, builtins.open = (real_mkdir, real_os_open, real_io_open,
                                                     real_io_open)


# ---- the matrix ---------------------------------------------------------------------------------

DB = "store/n.sqlite3"
STORE_READERS = (["nights"], ["journal", "list"], ["report", "--all", "--out", "{w}/out"],
                 ["export", "1", "--out", "{w}/out"], ["plan"], ["show"])
STORE_WRITERS = (["journal", "add", "2026-01-10", "x"], ["journal", "edit", "1", "--text", "y"],
                 ["journal", "delete", "1"], ["sync", "--port", "{w}/no-such-port"],
                 ["pair", "--port", "{w}/no-such-port"], ["store", "rebuild"],
                 ["plan", "--keep"])
BAD_DBS = {
    "missing": ("{w}/typo/x.sqlite3", "no store at"),
    "directory": ("{w}/dir", "is a folder"),
    "empty": ("{w}/empty", "empty"),
    "binary": ("{w}/binary", "not a nightstand store"),
    "huge": ("{w}/huge", "not a nightstand store"),
    "wrong_header": ("{w}/other.sqlite3", "another program"),
    "damaged": ("{w}/damaged/n.sqlite3", "damaged"),
}
CASES: list[tuple[str, list[str], str]] = []
for kind, (db, msg) in BAD_DBS.items():
    for cmd in STORE_READERS:
        CASES.append((f"{cmd[0]}-db-{kind}", [*cmd, "--db", db], msg))
    for cmd in STORE_WRITERS:
        if kind == "missing" and cmd[0] in ("journal", "sync", "pair") and cmd[1] in (
                "add", "--port"):
            continue  # these create a new store: not bad input
        m = msg
        if cmd[0] == "store" and kind in ("missing", "empty", "damaged", "wrong_header"):
            m = "no raw/ folder"  # nothing to rebuild from beside these
        CASES.append((f"{'-'.join(cmd[:2])}-db-{kind}", [*cmd, "--db", db], m))
for kind, (path, msg) in {
    "missing": ("{w}/missing.csv", "no such file"),
    "directory": ("{w}/dir", "is a folder"),
    "empty": ("{w}/empty", "empty"),
    "binary": ("{w}/binary", "not a text CSV"),
    "huge": ("{w}/huge", "not a text CSV"),
    "wrong_header": ("{w}/wrong_header.csv", "no `time_s` column"),
    "nan": ("{w}/nan.csv", "NaN or infinite"),
    "inf": ("{w}/inf.csv", "NaN or infinite"),
    "non_monotonic": ("{w}/backwards.csv", "in time order"),
}.items():
    CASES.append((f"replay-{kind}", ["replay", path, "--out", "{w}/out"], msg))
for kind, (path, msg) in {
    "missing": ("{w}/missing.json", "no such file"),
    "directory": ("{w}/dir", "is a folder"),
    "empty": ("{w}/empty", "not valid JSON"),
    "binary": ("{w}/binary", "not a text file"),
    "huge": ("{w}/huge", "too big"),
    "wrong_header": ("{w}/wrong_header.json", "not supported"),
    "not_an_object": ("{w}/list.json", "must be a JSON object"),
    "nested": ("{w}/deep.json", "nested too deeply"),
    "nan": ("{w}/nan.json", "got nan"),
    "far_date": ("{w}/far.json", "out of range"),
}.items():
    CASES.append((f"simulate-scenario-{kind}", ["simulate", path, "--out", "{w}/out"], msg))
for cmd in (["simulate"], ["demo"], ["replay", "{w}/nan.csv"],
            ["report", "--last", "--db", "{w}/" + DB], ["export", "1", "--db", "{w}/" + DB]):
    msg = "is a file" if cmd[0] in ("simulate", "demo", "replay") else "cannot"
    CASES.append((f"{cmd[0]}-out-file", [*cmd, "--out", "{w}/afile"] if cmd[0] != "export"
                  else [*cmd, "--out", "{w}/afile/x"], msg))
for argv, msg in (
    (["journal", "add", "1970-01-01", "x", "--db", "{w}/" + DB], "out of range"),
    (["journal", "add", "nan", "x", "--db", "{w}/" + DB], "bad date"),
    (["journal", "add", "2026-01-10", "x" * 100000, "--db", "{w}/" + DB], "too long"),
    (["journal", "edit", "99", "--text", "x", "--db", "{w}/" + DB], "no journal entry #99"),
    (["report", "nan", "--out", "{w}/out", "--db", "{w}/" + DB], "bad night"),
    (["show", "nan", "--db", "{w}/" + DB], "bad night"),
    (["show", "99", "--db", "{w}/" + DB], "no night with id"),
    (["report", "-1", "--out", "{w}/out", "--db", "{w}/" + DB], "bad night"),
    (["export", "inf", "--out", "{w}/out", "--db", "{w}/" + DB], "bad night"),
    (["export", "99999999999999999999", "--out", "{w}/out", "--db", "{w}/" + DB],
     "no night with id"),
    (["simulate", "--seed", "1", "--power-cuts", "2", "--out", "{w}/out"], "--flash littlefs"),
    (["simulate", "--seed", "1", "--honest-time", "best", "--out", "{w}/out"], "invalid choice"),
    (["simulate", "--seed", "1", "--speed-factor", "50", "--out", "{w}/out"], "--honest-time"),
    (["simulate", "--seed", "1", "--honest-time", "worst", "--flash", "folder", "--out",
      "{w}/out"], "--flash littlefs"),
    (["simulate", "--seed", "1", "--honest-time", "typical", "--speed-factor", "fast", "--out",
      "{w}/out"], "expected a number"),
    (["simulate", "--seed", "1", "--honest-time", "typical", "--speed-factor", "nan", "--out",
      "{w}/out"], "speed factor"),
    (["simulate", "--seed", "1", "--honest-time", "typical", "--speed-factor", "-3", "--out",
      "{w}/out"], "speed factor"),
    (["simulate", "--seed", "1", "--honest-time", "typical", "--speed-factor", "1e300", "--out",
      "{w}/out"], "speed factor"),
    (["status", "--port", "{w}/no-such-port", "--db", "{w}/" + DB], "cannot open serial port"),
    (["wifi", "net", "--password-env", "NIGHTSTAND_NO_SUCH_VAR", "--port", "{w}/x"],
     "not set"),
    (["store", "rebuild", "--db", "{w}/dir"], "is a folder"),
    (["plan", "--advance-to", "7am", "--db", "{w}/" + DB], "7am"),
    (["plan", "--daylight-lux", "nan,x", "--db", "{w}/" + DB], "--daylight-lux"),
    (["plan", "--device", "nope", "--db", "{w}/" + DB], "nope"),
    (["deploy", "--config", "{w}/binary", "--port", "{w}/no-such-port"], "cannot read config"),
    (["deploy", "--port", "{w}/no-such-port"], "cannot open serial port"),
    (["flash", "{w}/binary", "--port", "{w}/no-such-port"], "not an ESP32 image"),
    (["flash", "{w}/missing.bin", "--port", "{w}/no-such-port"], "cannot read image"),
    (["vboard", "--dir", "{w}/afile"], "is a file"),
    (["vboard", "--dir", "{w}/dir"], "not a virtual board"),
    (["vboard", "--new", "--dir", "{w}/newboard", "--config", "{w}/binary"],
     "cannot read config"),
):
    CASES.append((f"{argv[0]}-{'-'.join(argv[1:2])}-{msg.split()[0]}-{len(CASES)}", argv, msg))


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def _check(world: Path, capsys, argv: list[str], msg: str) -> str:
    argv = [a.replace("{w}", str(world)) for a in argv]
    before = snapshot(world)
    code, err = _run(capsys, argv)
    assert code != 0, (argv, err)
    assert err.count("\n") == 1 and err.startswith("nightstand: "), (argv, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    assert msg in err, (argv, err)
    assert snapshot(world) == before, argv
    return err


@pytest.mark.parametrize("name,argv,msg", CASES, ids=[c[0] for c in CASES])
def test_bad_input(world, capsys, name, argv, msg):
    _check(world, capsys, argv, msg)


def test_locked_store(world, capsys):
    db = world / DB
    with Store(db) as other:
        other.lock()
        _check(world, capsys, ["sync", "--port", "{w}/no-such-port", "--db", str(db)],
               "another sync is running")


@pytest.mark.parametrize("err,msg", [(errno.EROFS, "Read-only"), (errno.EACCES, "Permission"),
                                     (errno.ENOSPC, "No space")])
@pytest.mark.parametrize("cmd", [["report", "--last", "--db", "{w}/" + DB],
                                 ["export", "1", "--db", "{w}/" + DB],
                                 ["export", "1", "--format", "edf", "--db", "{w}/" + DB],
                                 ["simulate", "--seed", "3"], ["demo"],
                                 ["replay", "{w}/ok.csv"]])
def test_unwritable_out(world, capsys, monkeypatch, cmd, err, msg):
    """--out in a folder that cannot be written (read-only, no permission, disk full)."""
    if cmd[0] == "replay":
        ok = world / "ro" / "ok.csv"
        if not ok.exists():
            ok.write_text("time_s,ppg\n" + "".join(f"{i / 100},{i % 7}\n" for i in range(500)))
        cmd = ["replay", str(ok)]
    with faulty_files(world / "ro", err):
        text = _check(world, capsys, [*cmd, "--out", "{w}/ro/out"], msg)
    assert "ro/out" in text


def test_full_disk_during_sync(world, capsys, monkeypatch):
    from test_store_safety import FakeDevice

    db = world / "ro" / "store" / "n.sqlite3"
    Store(db).close()
    dev = FakeDevice({1: make_night(SynthNight(start_unix_s=START, epochs=20, evening_epochs=5,
                                               beats=False))})
    monkeypatch.setattr(cmd_sync, "_client", lambda args, store: (dev, "fake"))
    raw = db.parent / "raw"
    with faulty_files(raw, errno.ENOSPC):
        code, err = _run(capsys, ["sync", "--port", "fake", "--no-set-time", "--db", str(db)])
    assert code == 1 and err.count("\n") == 1 and "disk" in err and "full" in err, err
    assert dev.acked == [] and not list(raw.rglob("*.night")) and not list(raw.rglob("*.part"))
    with Store(db, readonly=True) as store:
        assert store.nights() == []


def test_a_failed_simulate_can_be_run_again(world, capsys, monkeypatch):
    """Item 10: a run that fails after its folder was made leaves nothing that is refused."""
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(world / "o10" / "stim"))

    monkeypatch.setattr(sim_session, "generate", full)
    code, err = _run(capsys, ["simulate", "--seed", "1", "--out", str(world / "o10")])
    assert code == 1 and err.count("\n") == 1 and "No space" in err, err
    assert not (world / "o10").exists()  # made by this run, removed with its failure
    (world / "o11").mkdir()  # an empty folder of the user's: kept, marked as a run folder
    code, err = _run(capsys, ["simulate", "--seed", "1", "--out", str(world / "o11")])
    assert code == 1 and "No space" in err
    monkeypatch.undo()
    sentinel = []
    monkeypatch.setattr(sim_session, "generate", lambda *a, **k: sentinel.append(1) or full())
    code, err = _run(capsys, ["simulate", "--seed", "1", "--out", str(world / "o11")])
    assert sentinel == [1] and "not a simulation folder" not in err  # accepted this time
    (world / "o11" / ".nightstand-run").unlink()
    (world / "o11").rmdir()


@pytest.mark.parametrize("argv,msg", [
    (["replay", "{w}/binary", "--out", "{w}/out"], "not a text CSV"),
    (["nights", "--db", "{w}/dir"], "is a folder"),
])
def test_through_a_real_process(world, argv, msg):
    argv = [a.replace("{w}", str(world)) for a in argv]
    before = snapshot(world)
    proc = subprocess.run([sys.executable, "-m", "nightstand.cli", *argv], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "NIGHTSTAND_DEBUG": ""})
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert msg in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(world) == before


def test_every_command_is_in_the_matrix():
    """A new command gets its bad-input cases here (CASES, or a test above) when it is added."""
    covered = {argv[0] for _name, argv, _msg in CASES} | {"sync"}  # sync: locked, full disk
    commands = {c.name for c in cli._commands()}
    missing = sorted(commands - covered)
    assert not missing, (f"commands without bad-input cases: {missing}: add them to CASES in "
                         "tests/host/test_bad_input.py")
