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
# Journal dates must lie near recorded nights: nothing before this, nothing more than a year ahead
# (a far-off date once stretched the trends plot past what matplotlib can draw).
MIN_DATE = dt.date(2000, 1, 1)
MAX_DAYS_AHEAD = 366


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


def parse_date(text: str, today: dt.date | None = None) -> dt.date:
    """A local date YYYY-MM-DD from MIN_DATE to a year after `today`, or UserError."""
    text = text.strip()
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"bad date {text!r}: use YYYY-MM-DD, e.g. 2026-01-15") from None
    today = today or dt.date.today()
    latest = today + dt.timedelta(days=MAX_DAYS_AHEAD)
    if not MIN_DATE <= day <= latest:
        raise UserError(f"date {day.isoformat()} is out of range: a journal date lies from "
                        f"{MIN_DATE.isoformat()} to {latest.isoformat()} (check the year)")
    return day


def _clean_text(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise UserError("the journal entry is empty: say what changed, e.g. \"started magnesium\"")
    if len(text) > MAX_TEXT:
        raise UserError(f"the journal entry is too long ({len(text)} > {MAX_TEXT} characters)")
    return text


def _clean_tag(tag: str | None) -> str | None:
    tag = tag.strip() if tag is not None else None
    if tag is not None and (not tag or len(tag) > MAX_TAG):
        raise UserError(f"bad tag: 1..{MAX_TAG} characters")
    return tag


def add_entry(store: Store, date: str, text: str, tag: str | None = None,
              now_unix_s: int | None = None) -> Entry:
    day = parse_date(date)
    text = _clean_text(text)
    tag = _clean_tag(tag or None)
    created = int(time.time()) if now_unix_s is None else now_unix_s
    with store.db:
        cur = store.db.execute(
            "INSERT INTO journal(date, text, tag, created_unix_s) VALUES (?,?,?,?)",
            (day.isoformat(), text, tag, created))
    return Entry(int(cur.lastrowid or 0), day.isoformat(), text, tag, created)


def edit_entry(store: Store, entry_id: int, date: str | None = None, text: str | None = None,
               tag: str | None = None) -> Entry:
    """Change an entry's date, text or tag (None: keep; tag "": remove the tag)."""
    old = get_entry(store, entry_id)
    if date is None and text is None and tag is None:
        raise UserError("nothing to change: give --date, --text or --tag")
    new = Entry(old.id, parse_date(date).isoformat() if date is not None else old.date,
                _clean_text(text) if text is not None else old.text,
                (_clean_tag(tag) if tag.strip() else None) if tag is not None else old.tag,
                old.created_unix_s)
    with store.db:
        store.db.execute("UPDATE journal SET date=?, text=?, tag=? WHERE id=?",
                         (new.date, new.text, new.tag, new.id))
    return new


def delete_entry(store: Store, entry_id: int) -> Entry:
    old = get_entry(store, entry_id)
    with store.db:
        store.db.execute("DELETE FROM journal WHERE id=?", (entry_id,))
    return old


def entries(store: Store) -> list[Entry]:
    """All entries, oldest date first (ties: in the order they were added)."""
    rows = store.db.execute(
        "SELECT id, date, text, tag, created_unix_s FROM journal ORDER BY date, id").fetchall()
    out = []
    for r in rows:
        try:
            out.append(Entry(int(r[0]), dt.date.fromisoformat(r[1]).isoformat(), str(r[2]),
                             r[3], int(r[4])))
        except (TypeError, ValueError):
            # written by hand or by an older nightstand: say so, never draw it
            raise UserError(f"journal entry #{r[0]} has a bad date {r[1]!r}: fix it with "
                            f"`nightstand journal edit {r[0]} --date YYYY-MM-DD` or delete it "
                            f"with `nightstand journal delete {r[0]}`") from None
    return out


def get_entry(store: Store, entry_id: int) -> Entry:
    row = store.db.execute("SELECT id, date, text, tag, created_unix_s FROM journal WHERE id=?",
                           (entry_id,)).fetchone()
    if row is None:
        raise UserError(f"no journal entry #{entry_id}: see `nightstand journal list`")
    return Entry(int(row[0]), str(row[1]), str(row[2]), row[3], int(row[4]))


def latest_entry(store: Store) -> Entry | None:
    all_entries = entries(store)
    return all_entries[-1] if all_entries else None
