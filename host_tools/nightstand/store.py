"""The desktop store: SQLite (versioned schema with migrations) plus the raw night files, kept so
decoding can be re-run. Private to the user (directories 0700, files 0600)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from pathlib import Path

from nightstand.errors import UserError

DB_NAME = "nightstand.sqlite3"
# Bump when decoding improves; redecode() re-runs older nights. 2: damaged headers recovered.
DECODER_VERSION = 2

# Each migration takes the schema from version i to i + 1 (PRAGMA user_version).
MIGRATIONS: list[str] = [
    """
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        secret BLOB,                 -- pairing key (32 bytes); the file is 0600
        firmware_version TEXT,
        paired_unix_s INTEGER,
        last_address TEXT,           -- host:port or serial port it was last reached at
        last_seen_unix_s INTEGER
    );
    CREATE TABLE nights (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        night_id INTEGER NOT NULL,
        size INTEGER NOT NULL,
        crc32 INTEGER NOT NULL,
        start_unix_s INTEGER,
        utc_offset_s INTEGER,
        raw_path TEXT NOT NULL,      -- relative to the store folder
        received_unix_s INTEGER NOT NULL,
        acked INTEGER NOT NULL DEFAULT 0,
        decoder_version INTEGER NOT NULL DEFAULT 0,   -- 0: not decoded yet
        n_records INTEGER, n_skipped INTEGER, decode_error TEXT, header_json TEXT,
        UNIQUE (device_id, night_id)
    );
    CREATE TABLE epochs (
        night INTEGER NOT NULL REFERENCES nights(id) ON DELETE CASCADE,
        unix_s INTEGER, t_off_s INTEGER, flags INTEGER, data_json TEXT
    );
    CREATE TABLE beats (
        night INTEGER NOT NULL REFERENCES nights(id) ON DELETE CASCADE,
        unix_ms INTEGER, t_off_ms INTEGER, ibi_ms INTEGER, pwa REAL
    );
    CREATE TABLE events (
        night INTEGER NOT NULL REFERENCES nights(id) ON DELETE CASCADE,
        unix_ms INTEGER, t_off_ms INTEGER, kind INTEGER, kind_name TEXT, values_json TEXT,
        text TEXT
    );
    CREATE TABLE environment (
        night INTEGER NOT NULL REFERENCES nights(id) ON DELETE CASCADE,
        unix_ms INTEGER, t_off_ms INTEGER, invalid INTEGER, data_json TEXT
    );
    CREATE INDEX epochs_night ON epochs(night);
    CREATE INDEX beats_night ON beats(night);
    CREATE INDEX events_night ON events(night);
    CREATE INDEX environment_night ON environment(night);
    """,
    # 2: the journal of protocol changes (medication, supplement, bedtime...), nightstand.journal
    """
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY,
        date TEXT NOT NULL,          -- local date YYYY-MM-DD the change took effect
        text TEXT NOT NULL,
        tag TEXT,
        created_unix_s INTEGER NOT NULL
    );
    CREATE INDEX journal_date ON journal(date);
    """,
    # 3: the circadian lamp plan (nightstand.planning): the plan chosen per device, every change
    # pushed (or refused) with its reason, and the device's settings as last read at sync
    """
    CREATE TABLE plans (
        device_id TEXT PRIMARY KEY,
        mode TEXT NOT NULL,          -- keep | advance
        target_wake TEXT,            -- local HH:MM
        step_min INTEGER NOT NULL,
        daylight_json TEXT,          -- the daytime-light assumption of the phase model
        set_unix_s INTEGER NOT NULL
    );
    CREATE TABLE plan_log (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        unix_s INTEGER NOT NULL,
        local_date TEXT NOT NULL,    -- the local day the step belongs to
        changes_json TEXT NOT NULL,  -- device settings changed ({} for none)
        reason TEXT NOT NULL,
        status TEXT NOT NULL         -- chosen | sent | refused
    );
    CREATE INDEX plan_log_device ON plan_log(device_id);
    CREATE TABLE device_configs (
        device_id TEXT PRIMARY KEY,
        unix_s INTEGER NOT NULL,
        config_json TEXT NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("nightstand", appauthor=False)) / DB_NAME


SQLITE_MAGIC = b"SQLite format 3\x00"
# What a store folder may hold besides the store file: a new store is only created in a folder
# that does not exist yet (the tool creates it, private) or holds nothing else.
_STORE_ENTRIES = ("raw", "sleep-cache")  # sleep-cache: derived results (nightstand.sleep)
_STORE_SUFFIXES = ("", "-journal", "-wal", "-shm", ".lock", ".damaged")


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration script, one by one (executescript would commit)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _connect_readonly(db_path: Path) -> sqlite3.Connection:
    """Open without ever writing (also on a read-only mount or a folder we may not write)."""
    uri = "file:" + urllib.parse.quote(str(db_path.resolve())) + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=10.0)
    try:
        db.execute("PRAGMA user_version").fetchone()
    except sqlite3.OperationalError:
        # e.g. a hot journal that cannot be rolled back on a read-only medium: read it as is
        db.close()
        db = sqlite3.connect(uri + "&immutable=1", uri=True)
    return db


class _OlderLayout(Exception):
    def __init__(self, version: int) -> None:
        self.version = version


def _upgrade(db_path: Path, version: int) -> None:
    """A store written by an older nightstand, opened by a reader: bring its layout up to date
    (migrations only, no data changes), or say why that cannot be done here."""
    if not (os.access(db_path, os.W_OK) and os.access(db_path.parent, os.W_OK | os.X_OK)):
        raise UserError(f"the store {db_path} has an older layout (schema {version}) and cannot "
                        "be upgraded here (read-only): copy it to a writable folder, or open it "
                        "once with this nightstand where it can be written")
    Store(db_path).close()


class StoreDamaged(UserError):
    """The store's SQLite file is unreadable or not in the shape nightstand wrote."""


def damaged(db_path: Path, what: object) -> StoreDamaged:
    return StoreDamaged(
        f"the store {db_path} is damaged ({what}): rebuild it from its raw night files with "
        f"`nightstand store rebuild --db {db_path}`")


def explain_db_error(db_path: Path | str | None, e: sqlite3.Error) -> UserError:
    """One line for an SQLite error met while a command used the store."""
    path = Path(db_path) if db_path else default_db_path()
    text = str(e)
    if "locked" in text or "busy" in text:
        return UserError(f"the store {path} is busy (another nightstand is writing to it): try "
                         "again when it is done")
    if "full" in text:
        return UserError(f"the disk holding the store {path} is full: free some space and try "
                         "again")
    if "readonly" in text or "read-only" in text:
        return UserError(f"the store {path} cannot be written (read-only): copy it to a "
                         "writable folder and give that as --db")
    return damaged(path, text)


def _mkdir_private(path: Path) -> None:
    """Create `path` and any missing parents, private (0700); folders that already exist are
    left exactly as they are (never chmod a folder the tool did not create)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:  # created meanwhile by another nightstand
            continue
        os.chmod(d, 0o700)  # our own folder: the umask must not widen or narrow it


def _is_store_entry(name: str, db_name: str) -> bool:
    return name in _STORE_ENTRIES or any(
        name == db_name + sfx or name.startswith(db_name + ".damaged") for sfx in _STORE_SUFFIXES)


def check_store_path(db_path: Path, *, create: bool) -> bool:
    """Refuse a --db that is not a store (one clear line). -> True if the store file exists.
    With create, a missing store may be made: in a new folder, or one holding nothing else."""
    if db_path.is_dir():
        raise UserError(f"--db {db_path} is a folder: give the store file, e.g. "
                        f"{db_path / DB_NAME}")
    if db_path.exists() or db_path.is_symlink():
        if not db_path.is_file():
            raise UserError(f"--db {db_path} is not a regular file: give a nightstand store")
        try:
            with open(db_path, "rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as e:
            raise UserError(f"cannot read the store {db_path}: {e.strerror}") from None
        if head == SQLITE_MAGIC:
            return True
        if head:
            raise UserError(f"--db {db_path} is not a nightstand store (not an SQLite file): "
                            "give another --db")
        # Empty: a store another nightstand is creating right now, or a file made by hand.
        if not create:
            raise UserError(f"the store {db_path} is empty (never synced): run "
                            "`nightstand sync`")
    elif not create:
        raise UserError(f"no store at {db_path}: check --db, or run `nightstand sync` to make "
                        "one")
    folder = db_path.parent
    if folder.exists():
        if not folder.is_dir():
            raise UserError(f"--db {db_path}: {folder} is not a folder")
        try:
            foreign = sorted(n for n in os.listdir(folder)
                             if not _is_store_entry(n, db_path.name))
        except OSError as e:
            raise UserError(f"cannot read the folder {folder}: {e.strerror}") from None
        if foreign:
            raise UserError(
                f"--db {db_path}: a new store needs a folder of its own, and {folder} already "
                f"holds other files ({foreign[0]}, ...): give --db a path in a new folder, e.g. "
                f"{folder / 'nightstand' / db_path.name}")
    return False


def _flock(path: Path) -> int | None:
    """An exclusive advisory lock on `path` (held until the descriptor is closed), or UserError
    if another nightstand holds it. None where the platform has no flock."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: SQLite still serialises writes
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UserError(f"another sync is running on the store {path}: wait for it to finish, "
                        "then try again") from None
    return fd


class Store:
    """Open the store at `db_path`; raw nights live in raw/ beside it (created when the first
    night is stored). readonly=True: never creates or writes anything (SQLite mode=ro), for
    `nights`, `report`, `export`, `journal list`; the store must exist. Otherwise a missing
    store is created (and migrated) in a folder of its own."""

    def __init__(self, db_path: Path | str | None = None, *, readonly: bool = False) -> None:
        self.db_path = Path(db_path) if db_path else default_db_path()
        self.root = self.db_path.parent
        self.readonly = readonly
        self._lock_fd: int | None = None
        exists = check_store_path(self.db_path, create=not readonly)
        try:
            if readonly:
                self.db = _connect_readonly(self.db_path)
                try:
                    self._migrate()
                except _OlderLayout as e:
                    self.db.close()
                    _upgrade(self.db_path, e.version)  # the one write a reader may make
                    self.db = _connect_readonly(self.db_path)
                except BaseException:
                    self.db.close()
                    raise
            else:
                if not exists:
                    _mkdir_private(self.root)
                old = os.umask(0o077)  # a new store file is private (0600) from its creation
                try:
                    self.db = sqlite3.connect(self.db_path, timeout=10.0)
                finally:
                    os.umask(old)
                self.db.execute("PRAGMA foreign_keys = ON")
                try:
                    self._migrate()
                except BaseException:
                    self.db.close()
                    raise
        except sqlite3.DatabaseError as e:
            if not isinstance(e, sqlite3.OperationalError) or "malformed" in str(e):
                raise damaged(self.db_path, e) from None
            raise UserError(f"cannot open the store {self.db_path}: {e}") from None
        except OSError as e:
            raise UserError(f"cannot open the store {self.db_path}: {e.strerror or e}") from None

    @classmethod
    @contextlib.contextmanager
    def open_optional(cls, db_path: Path | str | None) -> Iterator[Store | None]:
        """The store opened read-only if it exists, else None (nothing is created)."""
        path = Path(db_path) if db_path else default_db_path()
        if not path.exists() and not path.is_symlink():
            yield None
            return
        with cls(path, readonly=True) as store:
            yield store

    def close(self) -> None:
        self.unlock()
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(
                f"the store {self.db_path} was written by a newer nightstand "
                f"(schema {version} > {SCHEMA_VERSION}): upgrade nightstand"
            )
        if version == SCHEMA_VERSION:
            self._check_tables()
            return
        if version == 0 and self._tables() and "nights" not in self._tables():
            raise UserError(f"--db {self.db_path} is an SQLite file of another program, not a "
                            "nightstand store: give another --db")
        if self.readonly:
            if version == 0 and not self._tables():
                raise UserError(f"the store {self.db_path} is empty (never synced): run "
                                "`nightstand sync`")
            raise _OlderLayout(version)
        # Two first opens at once: the write lock is taken before the version is read, so the
        # second waits, then finds the schema already migrated.
        saved = self.db.isolation_level
        self.db.isolation_level = None
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                for v in range(version, SCHEMA_VERSION):
                    for stmt in _statements(MIGRATIONS[v]):
                        self.db.execute(stmt)
                    self.db.execute(f"PRAGMA user_version = {v + 1}")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        finally:
            self.db.isolation_level = saved
        self._check_tables()

    def _tables(self) -> set[str]:
        return {r[0] for r in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}

    def _check_tables(self) -> None:
        missing = {"devices", "nights", "epochs", "beats", "events", "environment",
                   "journal"} - self._tables()
        if missing:
            raise damaged(self.db_path, f"table {sorted(missing)[0]} is missing")

    # ---- one sync at a time -------------------------------------------------------------------

    def lock(self) -> None:
        """Take this store's sync lock (an advisory lock on the store file), or UserError if
        another nightstand holds it. Released by unlock() or close()."""
        if self._lock_fd is not None:
            return
        self._lock_fd = _flock(self.db_path)

    def unlock(self) -> None:
        if self._lock_fd is not None:  # None also where there is no flock
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    # ---- devices and keys -----------------------------------------------------------------------

    def save_device(self, device_id: str, secret: bytes | None = None,
                    firmware_version: str | None = None, address: str | None = None) -> None:
        now = int(time.time())
        with self.db:
            self.db.execute(
                "INSERT INTO devices(device_id) VALUES (?) ON CONFLICT DO NOTHING", (device_id,)
            )
            if secret is not None:
                self.db.execute("UPDATE devices SET secret=?, paired_unix_s=? WHERE device_id=?",
                                (secret, now, device_id))
            if firmware_version is not None:
                self.db.execute("UPDATE devices SET firmware_version=? WHERE device_id=?",
                                (firmware_version, device_id))
            if address is not None:
                self.db.execute(
                    "UPDATE devices SET last_address=?, last_seen_unix_s=? WHERE device_id=?",
                    (address, now, device_id))

    def secrets_for(self, address: str | None = None) -> list[bytes]:
        """Pairing keys to try, the device last seen at `address` first."""
        rows = self.db.execute(
            "SELECT secret, last_address FROM devices WHERE secret IS NOT NULL "
            "ORDER BY last_seen_unix_s DESC").fetchall()
        rows.sort(key=lambda r: r[1] != address)
        return [bytes(r[0]) for r in rows]

    # ---- nights ---------------------------------------------------------------------------------

    def raw_dir(self, device_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in device_id) or "device"
        d = self.root / "raw" / safe
        if self.readonly:
            raise UserError(f"the store {self.db_path} was opened read-only")
        _mkdir_private(d)
        return d

    def partial_path(self, device_id: str, night_id: int) -> Path:
        return self.raw_dir(device_id) / f"{night_id:08d}.part"

    def stored(self, device_id: str) -> dict[int, tuple[int, int, bool]]:
        """night_id -> (size, crc32, acked) for the nights held from this device."""
        return {r[0]: (r[1], r[2], bool(r[3])) for r in self.db.execute(
            "SELECT night_id, size, crc32, acked FROM nights WHERE device_id=?", (device_id,))}

    def commit_night(self, device_id: str, night_id: int, part: Path, crc: int,
                     start_unix_s: int | None = None) -> int:
        """Make a verified download permanent: fsync, rename the .part to .night, insert the row
        and the decoded tables in one transaction. Returns the nights row id."""
        data = part.read_bytes()
        if zlib.crc32(data) != crc:
            raise ValueError("partial file does not match the device's CRC")
        with open(part, "rb+") as f:
            os.fsync(f.fileno())
        final = part.with_suffix(".night")
        os.replace(part, final)
        try:
            return self._insert_night(device_id, night_id, final, data, start_unix_s)
        except BaseException:
            # Not in the store, so not acknowledged: the device keeps the night. No orphan file.
            final.unlink(missing_ok=True)
            raise

    def _insert_night(self, device_id: str, night_id: int, path: Path, data: bytes,
                      start_unix_s: int | None, acked: bool = False,
                      received_unix_s: int | None = None) -> int:
        rel = str(path.relative_to(self.root))
        with self.db:
            cur = self.db.execute(
                "INSERT INTO nights(device_id, night_id, size, crc32, start_unix_s, "
                "raw_path, received_unix_s, acked) VALUES (?,?,?,?,?,?,?,?)",
                (device_id, night_id, len(data), zlib.crc32(data), start_unix_s, rel,
                 int(time.time()) if received_unix_s is None else received_unix_s,
                 int(acked)))
            row = int(cur.lastrowid or 0)
            self._decode_into(row, data)
        return row

    def mark_acked(self, device_id: str, night_id: int) -> None:
        with self.db:
            self.db.execute("UPDATE nights SET acked=1 WHERE device_id=? AND night_id=?",
                            (device_id, night_id))

    def nights(self) -> list[dict]:
        cur = self.db.execute(
            "SELECT id, device_id, night_id, size, crc32, start_unix_s, utc_offset_s, "
            "received_unix_s, acked, decoder_version, n_records, n_skipped, decode_error, "
            "(SELECT COUNT(*) FROM epochs WHERE night=nights.id), "
            "(SELECT COUNT(*) FROM beats WHERE night=nights.id), "
            "(SELECT COUNT(*) FROM events WHERE night=nights.id), "
            "COALESCE(header_json LIKE '%\"recovered\": true%', 0) "
            "FROM nights ORDER BY start_unix_s, device_id, night_id")
        keys = ["id", "device_id", "night_id", "size", "crc32", "start_unix_s", "utc_offset_s",
                "received_unix_s", "acked", "decoder_version", "n_records", "n_skipped",
                "decode_error", "epochs", "beats", "events", "header_recovered"]
        rows = [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["header_recovered"] = bool(r["header_recovered"])
        return rows

    def raw_bytes(self, row_id: int) -> bytes:
        (rel,) = self.db.execute("SELECT raw_path FROM nights WHERE id=?", (row_id,)).fetchone()
        return (self.root / rel).read_bytes()

    # ---- decoding -------------------------------------------------------------------------------

    def redecode(self, only_older: bool = True) -> int:
        """Re-run decoding on stored raw nights (those decoded by an older decoder, or all);
        a night whose raw file is gone keeps its tables. -> nights decoded again."""
        q = "SELECT id FROM nights" + (" WHERE decoder_version < ?" if only_older else "")
        ids = [r[0] for r in self.db.execute(q, (DECODER_VERSION,) if only_older else ())]
        done = 0
        for row in ids:
            try:
                data = self.raw_bytes(row)
            except OSError:
                continue
            done += 1
            with self.db:
                for t in ("epochs", "beats", "events", "environment"):
                    self.db.execute(f"DELETE FROM {t} WHERE night=?", (row,))
                self._decode_into(row, data)
        return done

    def _decode_into(self, row: int, data: bytes) -> None:
        """Decode a night file into the tables (inside the caller's transaction). A night that
        does not decode is still stored raw, with the error recorded."""
        try:
            decoded = decode_night(data)
            if decoded["header"] is None:
                fallback = self.fallback_header(row)
                if fallback is not None:
                    from nightstand.night import with_header

                    decoded = with_header(decoded, fallback)
        except Exception as e:  # a decoder bug must not lose the night: raw stays, error noted
            self.db.execute("UPDATE nights SET decode_error=?, decoder_version=? WHERE id=?",
                            (f"{type(e).__name__}: {e}", DECODER_VERSION, row))
            return
        _insert_decoded(self.db, row, decoded)

    def fallback_header(self, row: int) -> dict | None:
        """For a night whose header record is damaged: what the store knows of it (device,
        night number, the start time the device listed; the UTC offset of the same device's
        nearest other night, else 0). None if the start time is not known."""
        r = self.db.execute("SELECT device_id, night_id, start_unix_s, header_json FROM nights "
                            "WHERE id=?", (row,)).fetchone()
        if r is None or r[2] is None:
            return None
        if r[3]:
            try:
                stored = json.loads(r[3])
            except ValueError:
                raise damaged(self.db_path, f"night {row}: its header row is not JSON") from None
            if isinstance(stored, dict) and stored.get("start_unix_s") is not None:
                return stored
        near = self.db.execute(
            "SELECT utc_offset_s FROM nights WHERE device_id=? AND id<>? AND utc_offset_s IS "
            "NOT NULL ORDER BY abs(start_unix_s - ?) LIMIT 1", (r[0], row, r[2])).fetchone()
        return {"type": "header", "device_id": r[0], "night_id": r[1], "start_unix_s": r[2],
                "utc_offset_s": int(near[0]) if near else 0, "fw_version": "", "epoch_s": 30,
                "sensor_config": "", "recovered": True}


def decode_night(data: bytes) -> dict:
    """Decode with the firmware's own decoder (the format is defined once, in nsdev)."""
    from nsdev.core import nightfile

    return nightfile.decode(data)


def _insert_decoded(db: sqlite3.Connection, row: int, d: dict) -> None:
    header = d.get("header") or {}
    epochs, beats, events, env = [], [], [], []
    skip_keys = {"type", "offset", "t_off_s", "t_off_ms", "unix_s", "unix_ms", "flags", "invalid"}
    for r in d["records"]:
        t = r.get("type")
        if t == "epoch":
            rest = {k: v for k, v in r.items() if k not in skip_keys}
            epochs.append((row, r.get("unix_s"), r.get("t_off_s"), r.get("flags"),
                           json.dumps(rest)))
        elif t == "beats":
            base = r.get("unix_ms", r["t_off_ms"]) - r["t_off_ms"]
            pwas = r.get("pwa") or [None] * r["n"]
            ibis = [None, *r["ibi_ms"]]
            for t_ms, ibi, pwa in zip(r["t_ms"], ibis, pwas, strict=False):
                beats.append((row, base + t_ms if "unix_ms" in r else None, t_ms, ibi, pwa))
        elif t == "event":
            events.append((row, r.get("unix_ms"), r.get("t_off_ms"), r.get("kind"),
                           r.get("kind_name"), json.dumps(r.get("values", [])), r.get("text")))
        elif t == "env":
            rest = {k: v for k, v in r.items() if k not in skip_keys}
            env.append((row, r.get("unix_ms"), r.get("t_off_ms"), r.get("invalid"),
                        json.dumps(rest)))
    db.executemany("INSERT INTO epochs VALUES (?,?,?,?,?)", epochs)
    db.executemany("INSERT INTO beats VALUES (?,?,?,?,?)", beats)
    db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", events)
    db.executemany("INSERT INTO environment VALUES (?,?,?,?,?)", env)
    db.execute(
        "UPDATE nights SET decoder_version=?, n_records=?, n_skipped=?, decode_error=NULL, "
        "header_json=?, start_unix_s=COALESCE(?, start_unix_s), utc_offset_s=? WHERE id=?",
        (DECODER_VERSION, len(d["records"]), len(d["skipped"]),
         json.dumps(header) if header else None, header.get("start_unix_s"),
         header.get("utc_offset_s"), row))



# ---- rebuilding a damaged store from raw/ ----------------------------------------------------

def _salvage(db_path: Path, query: str) -> list[tuple]:
    """Rows of a damaged store that can still be read (none if they cannot)."""
    try:
        con = _connect_readonly(db_path)
    except (sqlite3.Error, OSError):
        return []
    try:
        return list(con.execute(query).fetchall())
    except sqlite3.Error:
        return []
    finally:
        con.close()


def rebuild(db_path: Path | str | None = None) -> tuple[int, list[str], Path | None]:
    """Make a new store from the raw night files in raw/ beside the store; keep what can still
    be read of the old one (paired devices and keys, journal, acknowledgements), which is set
    aside as <store>.damaged-<time>. -> (nights stored, files that failed, the set-aside file)."""
    path = Path(db_path) if db_path else default_db_path()
    if path.is_dir():
        raise UserError(f"--db {path} is a folder: give the store file, e.g. {path / DB_NAME}")
    if path.exists():
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
        if head and head != SQLITE_MAGIC:
            raise UserError(f"--db {path} is not a nightstand store (not an SQLite file)")
    raw = path.parent / "raw"
    if not raw.is_dir():
        raise UserError(f"no raw/ folder beside {path}: there is nothing to rebuild from")
    devices = _salvage(path, "SELECT device_id, secret, firmware_version, paired_unix_s, "
                             "last_address, last_seen_unix_s FROM devices")
    entries = _salvage(path, "SELECT id, date, text, tag, created_unix_s FROM journal")
    known = {r[0]: r[1:] for r in _salvage(
        path, "SELECT raw_path, device_id, start_unix_s, acked, received_unix_s FROM nights")}
    lock = _flock(path) if path.is_file() else None  # no sync may write while we rebuild
    try:
        return _rebuild_locked(path, raw, devices, entries, known)
    finally:
        if lock is not None:
            os.close(lock)


def _rebuild_locked(path: Path, raw: Path, devices: list[tuple], entries: list[tuple],
                    known: dict) -> tuple[int, list[str], Path | None]:
    aside = None
    if path.exists():
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        for sfx in ("-journal", "-wal", "-shm"):
            side = path.with_name(path.name + sfx)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + sfx))
    failed: list[str] = []
    n = 0
    with Store(path) as store:
        with store.db:
            store.db.executemany("INSERT INTO devices VALUES (?,?,?,?,?,?)", devices)
            store.db.executemany("INSERT INTO journal VALUES (?,?,?,?,?)", entries)
        for f in sorted(raw.glob("*/*.night")):
            rel = str(f.relative_to(path.parent))
            try:
                night_id = int(f.stem)
                data = f.read_bytes()
            except (ValueError, OSError) as e:
                failed.append(f"{rel} ({e})")
                continue
            dev, start, acked, received = known.get(rel, (None, None, 0, None))
            if dev is None:
                try:
                    header = decode_night(data).get("header") or {}
                except Exception:  # noqa: BLE001 - a damaged file is still stored raw
                    header = {}
                dev = header.get("device_id") or f.parent.name
                start = header.get("start_unix_s")
            try:
                store._insert_night(str(dev), night_id, f, data, start, bool(acked), received)
                n += 1
            except sqlite3.IntegrityError as e:
                failed.append(f"{rel} ({e})")
    return n, failed, aside
