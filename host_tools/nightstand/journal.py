"""The journal: dated notes of protocol changes (a new medication, supplement, bedtime...) kept in
the desktop store, so trends can compare the nights before and after a change."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from nightstand.errors import UserError
from nightstand.store import Store

MAX_TEXT = 500  # characters
MAX_TAG = 40


@dataclass(frozen=True)
class Entry:
    id: int
    date: str  # local date YYYY-MM-DD the change took effect
    text: str
    tag: str | None
    created_unix_s: int

    def label(self) -> str:
        tag = f" [{self.tag}]" if self.tag else ""
        return f"#{self.id} {self.date}{tag} {self.text}"


def parse_date(text: str) -> dt.date:
    """A local date YYYY-MM-DD, or UserError."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"bad date {text!r}: use YYYY-MM-DD, e.g. 2026-01-15") from None


def add_entry(store: Store, date: str, text: str, tag: str | None = None,
              now_unix_s: int | None = None) -> Entry:
    day = parse_date(date)
    text = " ".join(text.split())
    if not text:
        raise UserError("the journal entry is empty: say what changed, e.g. \"started magnesium\"")
    if len(text) > MAX_TEXT:
        raise UserError(f"the journal entry is too long ({len(text)} > {MAX_TEXT} characters)")
    tag = tag.strip() if tag else None
    if tag is not None and (not tag or len(tag) > MAX_TAG):
        raise UserError(f"bad tag: 1..{MAX_TAG} characters")
    created = int(time.time()) if now_unix_s is None else now_unix_s
    with store.db:
        cur = store.db.execute(
            "INSERT INTO journal(date, text, tag, created_unix_s) VALUES (?,?,?,?)",
            (day.isoformat(), text, tag, created))
    return Entry(int(cur.lastrowid or 0), day.isoformat(), text, tag, created)


def entries(store: Store) -> list[Entry]:
    """All entries, oldest date first (ties: in the order they were added)."""
    rows = store.db.execute(
        "SELECT id, date, text, tag, created_unix_s FROM journal ORDER BY date, id").fetchall()
    return [Entry(int(r[0]), r[1], r[2], r[3], int(r[4])) for r in rows]


def get_entry(store: Store, entry_id: int) -> Entry:
    for e in entries(store):
        if e.id == entry_id:
            return e
    raise UserError(f"no journal entry #{entry_id}: see `nightstand journal list`")


def latest_entry(store: Store) -> Entry | None:
    all_entries = entries(store)
    return all_entries[-1] if all_entries else None
