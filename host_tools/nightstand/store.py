"""The desktop store: SQLite (versioned schema with migrations) plus the raw night files, kept so
decoding can be re-run. Private to the user (directories 0700, files 0600)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from pathlib import Path

from nightstand.errors import UserError

DB_NAME = "nightstand.sqlite3"
DECODER_VERSION = 1  # bump when decoding improves; redecode() re-runs older nights

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


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _private_file(path: Path) -> None:
    if path.exists():
        os.chmod(path, 0o600)


class Store:
    """Open (creating and migrating) the store at `db_path`; raw nights live in raw/ beside it."""

    def __init__(self, db_path: Path | str | None = None) -> None:
        self.db_path = Path(db_path) if db_path else default_db_path()
        self.root = self.db_path.parent
        try:
            _private_dir(self.root)
            _private_dir(self.root / "raw")
            old = os.umask(0o077)
            try:
                self.db = sqlite3.connect(self.db_path)
            finally:
                os.umask(old)
            _private_file(self.db_path)
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (OSError, sqlite3.Error) as e:
            raise UserError(f"cannot open the store {self.db_path}: {e}") from None

    def close(self) -> None:
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
        for v in range(version, SCHEMA_VERSION):
            self.db.executescript(
                f"BEGIN; {MIGRATIONS[v]}; PRAGMA user_version = {v + 1}; COMMIT;"
            )

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
        _private_dir(d)
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
        _private_file(final)
        rel = str(final.relative_to(self.root))
        with self.db:
            cur = self.db.execute(
                "INSERT INTO nights(device_id, night_id, size, crc32, start_unix_s, raw_path, "
                "received_unix_s) VALUES (?,?,?,?,?,?,?)",
                (device_id, night_id, len(data), crc, start_unix_s, rel, int(time.time())))
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
            "(SELECT COUNT(*) FROM events WHERE night=nights.id) "
            "FROM nights ORDER BY start_unix_s, device_id, night_id")
        keys = ["id", "device_id", "night_id", "size", "crc32", "start_unix_s", "utc_offset_s",
                "received_unix_s", "acked", "decoder_version", "n_records", "n_skipped",
                "decode_error", "epochs", "beats", "events"]
        return [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]

    def raw_bytes(self, row_id: int) -> bytes:
        (rel,) = self.db.execute("SELECT raw_path FROM nights WHERE id=?", (row_id,)).fetchone()
        return (self.root / rel).read_bytes()

    # ---- decoding -------------------------------------------------------------------------------

    def redecode(self, only_older: bool = True) -> int:
        """Re-run decoding on stored raw nights (those decoded by an older decoder, or all)."""
        q = "SELECT id FROM nights" + (" WHERE decoder_version < ?" if only_older else "")
        ids = [r[0] for r in self.db.execute(q, (DECODER_VERSION,) if only_older else ())]
        for row in ids:
            data = self.raw_bytes(row)
            with self.db:
                for t in ("epochs", "beats", "events", "environment"):
                    self.db.execute(f"DELETE FROM {t} WHERE night=?", (row,))
                self._decode_into(row, data)
        return len(ids)

    def _decode_into(self, row: int, data: bytes) -> None:
        """Decode a night file into the tables (inside the caller's transaction). A night that
        does not decode is still stored raw, with the error recorded."""
        try:
            decoded = decode_night(data)
        except Exception as e:  # a decoder bug must not lose the night: raw stays, error noted
            self.db.execute("UPDATE nights SET decode_error=?, decoder_version=? WHERE id=?",
                            (f"{type(e).__name__}: {e}", DECODER_VERSION, row))
            return
        _insert_decoded(self.db, row, decoded)


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

