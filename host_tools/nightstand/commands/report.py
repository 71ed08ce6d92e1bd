"""`nightstand show | report | export | journal`: a stored night as text, night reports and trends
(HTML), CSV/EDF+ exports, and the journal of protocol changes, all from the desktop store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nightstand.commands.base import Command
from nightstand.errors import UserError
from nightstand.store import Store


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="store file (default: nightstand.sqlite3 in the user data folder)")


def _night_help() -> str:
    return "a night: its store id (see `nightstand nights`) or the date of its evening YYYY-MM-DD"


# ---- show ---------------------------------------------------------------------------------------

def _show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("night", nargs="?", help=_night_help() + " (default: the last night)")
    _db_arg(p)
    p.add_argument("--json", action="store_true", help="print the night's figures as JSON")


def _show_run(args: argparse.Namespace) -> int:
    from nightstand.report.metrics import load_night, select_rows
    from nightstand.summary import night_dict, night_sleep_of, night_text

    with Store(args.db, readonly=True) as store:
        rows = select_rows(store, args.night, last=args.night is None)
        nights = [load_night(store, row["id"])[1] for row in rows]
    if args.json:
        print(json.dumps([night_dict(n, night_sleep_of(n)) for n in nights], indent=1))
    else:
        print("\n\n".join(night_text(n) for n in nights))
    return 0


# ---- report -------------------------------------------------------------------------------------

def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("night", nargs="?", help=_night_help() + " (default: the last night)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--last", action="store_true", help="the most recent night")
    which.add_argument("--all", action="store_true",
                       help="every night, plus the trends page linking them")
    p.add_argument("--trends", action="store_true",
                   help="write the trends page across all nights (trends.html)")
    p.add_argument("--compare", type=int, metavar="ENTRY_ID",
                   help="with --trends: compare nights before/after this journal entry "
                        "(default: the latest entry)")
    p.add_argument("--out", required=True, help="output folder (created)")
    _db_arg(p)
    p.add_argument("--json", action="store_true", help="print the written paths as JSON")


def _report_run(args: argparse.Namespace) -> int:
    from nightstand.report import batch_error, write_night_reports, write_trends_report
    from nightstand.report.metrics import select_rows

    if args.compare is not None and not (args.trends or args.all):
        raise UserError("--compare needs --trends (or --all)")
    if args.night and (args.last or args.all):
        raise UserError("give a NIGHT or --last/--all, not both")
    written: list[Path] = []
    with Store(args.db, readonly=True) as store:
        only_trends = args.trends and not (args.night or args.last or args.all)
        failed: list[str] = []
        rows = [] if only_trends else select_rows(store, args.night, args.last, args.all)
        if rows:
            pages, failed = write_night_reports(store, [r["id"] for r in rows], args.out)
            written += pages
        if args.trends or args.all:
            written.append(write_trends_report(store, args.out, args.compare))
    if args.json:
        print(json.dumps([str(p) for p in written]))
    else:
        for p in written:
            print(p)
    if failed:
        raise batch_error(failed, len(rows))
    return 0


# ---- export -------------------------------------------------------------------------------------

def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("night", help=_night_help())
    p.add_argument("--format", choices=("csv", "edf"), default="csv",
                   help="csv: epochs/beats/events tables; edf: EDF+ with annotations")
    p.add_argument("--out", required=True, help="output folder (created)")
    _db_arg(p)


def _export_run(args: argparse.Namespace) -> int:
    from nightstand.export import export_nights
    from nightstand.report import batch_error
    from nightstand.report.metrics import select_rows

    with Store(args.db, readonly=True) as store:
        rows = select_rows(store, args.night)
        written, failed = export_nights(store, [r["id"] for r in rows], args.format, args.out)
    for p in written:
        print(p)
    if failed:
        raise batch_error(failed, len(rows))
    return 0


# ---- journal ------------------------------------------------------------------------------------

def _journal_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    sub.required = True
    add = sub.add_parser("add", help="record a change (medication, supplement, bedtime...)",
                         description="record a change (medication, supplement, bedtime...)")
    add.add_argument("date", help="local date the change took effect, YYYY-MM-DD")
    add.add_argument("text", help='what changed, e.g. "started magnesium 300 mg at 21:00"')
    add.add_argument("--tag", help="a short tag to group entries (e.g. medication)")
    _db_arg(add)
    ls = sub.add_parser("list", help="list the journal entries", description="list the entries")
    _db_arg(ls)
    ls.add_argument("--json", action="store_true", help="print JSON for scripts")
    ed = sub.add_parser("edit", help="change an entry's date, text or tag",
                        description="change an entry's date, text or tag")
    ed.add_argument("id", type=int, help="the entry's number (see `nightstand journal list`)")
    ed.add_argument("--date", help="new date, YYYY-MM-DD")
    ed.add_argument("--text", help="new text")
    ed.add_argument("--tag", help='new tag ("" removes it)')
    _db_arg(ed)
    rm = sub.add_parser("delete", help="delete an entry", description="delete an entry")
    rm.add_argument("id", type=int, help="the entry's number (see `nightstand journal list`)")
    _db_arg(rm)


def _journal_run(args: argparse.Namespace) -> int:
    from nightstand import journal

    if args.action == "list":
        with Store(args.db, readonly=True) as store:
            entries = journal.entries(store)
        if args.json:
            print(json.dumps([e.__dict__ for e in entries]))
        elif not entries:
            print('no journal entries yet: add one with `nightstand journal add YYYY-MM-DD '
                  '"text"`')
        else:
            for e in entries:
                print(e.label())
        return 0
    if args.action != "add":  # edit/delete: the store must exist already
        Store(args.db, readonly=True).close()
    with Store(args.db) as store:
        if args.action == "add":
            e = journal.add_entry(store, args.date, args.text, args.tag)
            print(f"journal entry #{e.id} added: {e.label()}")
        elif args.action == "edit":
            e = journal.edit_entry(store, args.id, args.date, args.text, args.tag)
            print(f"journal entry #{e.id} changed: {e.label()}")
        else:
            e = journal.delete_entry(store, args.id)
            print(f"journal entry #{e.id} deleted: {e.label()}")
    return 0


COMMANDS = [
    Command("show", "print a stored night's figures (the same as its report) as text or JSON",
            _show_args, _show_run),
    Command("report", "write HTML night reports and the trends page (open offline)",
            _report_args, _report_run),
    Command("export", "export a night as CSV tables or EDF+ for other tools", _export_args,
            _export_run),
    Command("journal",
            "note protocol changes (add/list/edit/delete) to compare nights before and after",
            _journal_args, _journal_run),
]
