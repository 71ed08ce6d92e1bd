"""`nightstand plan`: the predicted circadian phase, the lamp plan in force and what the next
sync will change; `--keep` or `--advance-to HH:MM` chooses the plan."""

from __future__ import annotations

import argparse
import json

from nightstand.commands.base import Command
from nightstand.errors import UserError
from nightstand.store import Store


def _args(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--keep", action="store_true", help="keep the current bedtime and wake")
    which.add_argument("--advance-to", metavar="HH:MM",
                       help="move the wake time towards HH:MM (local) in daily steps")
    p.add_argument("--step-min", type=int, default=15,
                   help="largest change of the wake time per day, minutes (default 15)")
    p.add_argument("--daylight-lux", metavar="TYPICAL[,LOW,HIGH]",
                   help="assumed daytime light at the eye, lx (default 250,50,1000)")
    p.add_argument("--device", help="device id (when the store holds several)")
    p.add_argument("--db", help="store file (default: nightstand.sqlite3 in the user data folder)")
    p.add_argument("--json", action="store_true", help="print the overview as JSON")


def _daylight(text: str):  # -> Daylight
    from nightstand.phase import Daylight

    try:
        vals = [float(x) for x in text.split(",")]
    except ValueError:
        raise UserError(f"--daylight-lux {text!r}: expected numbers like 250 or "
                        "250,50,1000") from None
    if len(vals) == 1:
        return Daylight(vals[0], min(vals[0], 50.0), max(vals[0], 1000.0))
    if len(vals) == 3:
        return Daylight(vals[0], vals[1], vals[2])
    raise UserError("--daylight-lux takes one value or three (typical,low,high)")


def _run(args: argparse.Namespace) -> int:
    from nightstand import planning
    from nightstand.plan import PlanSettings

    changes = bool(args.keep or args.advance_to or args.daylight_lux)
    if changes:  # the store must exist already: never made here
        Store(args.db, readonly=True).close()
    with Store(args.db, readonly=not changes) as store:  # only a change writes
        dev = planning.pick_device(store, args.device)
        daylight = _daylight(args.daylight_lux) if args.daylight_lux else None
        if args.keep or args.advance_to or daylight:
            current = planning.get_plan(store, dev).settings
            if args.keep:
                settings = PlanSettings("keep", None, args.step_min)
            elif args.advance_to:
                settings = PlanSettings("advance", args.advance_to, args.step_min)
            else:
                settings = current
            planning.set_plan(store, dev, settings, daylight)
        o = planning.overview(store, dev)
    if args.json:
        print(json.dumps(o))
    else:
        print(f"{dev}:")
        print(planning.overview_text(o))
    return 0


COMMANDS = [Command("plan", "circadian phase, the lamp plan in force and what the next sync "
                    "changes", _args, _run)]
