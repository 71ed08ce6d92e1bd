"""`nightstand simulate` and `nightstand demo`: the real firmware on the virtual board."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nightstand import summary
from nightstand.commands.base import Command
from nightstand.errors import UserError
from nightstand.night import decode_night
from nightstand.sim import runner


def _add_sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", default=None,
                   help="a scenario JSON file, or `default` (default)")
    p.add_argument("--seed", type=int, help="simulate a random scenario made from this seed")
    p.add_argument("--out", type=Path, required=True, help="run folder (created)")
    p.add_argument("--heap", default=None,
                   help=f"MicroPython data heap (default {runner.DEFAULT_HEAPSIZE} ≈ 64 KB on "
                   f"the ESP32; on the twin {runner.TWIN_HEAPSIZE}: the ESP32 starts with "
                   f"{runner.ESP32_INITIAL_HEAPSIZE}, which the firmware does not fit yet; "
                   f"`make bench` prints the night's peak: docs/twin-and-image.md)")
    p.add_argument("--vm", choices=("unix", "twin"), default=None,
                   help="interpreter: the 64-bit unix port (default; or $NIGHTSTAND_VM) or the "
                   "twin (32-bit, float32, firmware frozen in: `make twin`)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--flash", choices=("folder", "littlefs"), default=None,
                   help="the board's flash: a folder (default) or a 2 MB littlefs image "
                   "(the default with --honest-time)")
    p.add_argument("--honest-time", choices=("typical", "worst"), default=None,
                   help="computation, flash, console and I2C cost virtual time as on an ESP32, "
                   "with the flash chip's typical or worst-case (datasheet) program/erase "
                   "times; prints FIFO overflows, worst task lateness and the watchdog margin "
                   "(docs/simulation.md, 'Honest time')")
    p.add_argument("--speed-factor", default=None, metavar="F",
                   help="with --honest-time: ESP32 microseconds per host microsecond of "
                   f"firmware computation (default {runner.ESP32_SPEED_FACTOR:g}; 0: computation "
                   "is free)")
    p.add_argument("--power-cuts", type=int, default=0, metavar="N",
                   help="with --flash littlefs: cut power N times at random flash writes")


def _honest_args(args: argparse.Namespace) -> dict[str, object] | None:
    """--honest-time and --speed-factor -> sim.json's honest_time (None: off). One clear
    UserError for a bad combination or value, before anything is written."""
    if args.honest_time is None:
        if args.speed_factor is not None:
            raise UserError("--speed-factor needs --honest-time typical or worst (without "
                            "honest time the firmware's computation costs no virtual time)")
        return None
    if args.flash == "folder":
        raise UserError("--honest-time prices flash writes on the littlefs image: use "
                        "--flash littlefs (or leave --flash out)")
    factor = runner.ESP32_SPEED_FACTOR
    if args.speed_factor is not None:
        try:
            factor = float(args.speed_factor)
        except ValueError:
            raise UserError(f"--speed-factor {args.speed_factor!r}: expected a number such as "
                            f"{runner.ESP32_SPEED_FACTOR:g}") from None
    return runner.honest_time_config(factor, args.honest_time)


def _run_simulate(args: argparse.Namespace) -> int:
    # the simulator's libraries (numpy, scipy) load only when a command runs: `--help` stays fast
    from nightstand.sim.session import (
        nights_in_flash,
        resolve_scenario,
        sim_dict,
        sim_text,
        simulate,
    )

    honest = _honest_args(args)
    flash = args.flash or ("littlefs" if honest else "folder")
    sc = resolve_scenario(args.scenario, args.seed)
    if args.power_cuts and flash != "littlefs":
        raise UserError("--power-cuts needs --flash littlefs (power cuts hit the flash image)")
    if args.power_cuts < 0:
        raise UserError("--power-cuts must be 0 or more")
    vm = args.vm or runner.default_vm()
    heap = args.heap or (runner.TWIN_HEAPSIZE if vm == "twin" else runner.DEFAULT_HEAPSIZE)
    gen, result = simulate(sc, args.out, heapsize=heap, flash=flash,
                           power_cuts=args.power_cuts, vm=vm, honest=honest)
    nights = nights_in_flash(args.out)
    if args.json:
        print(json.dumps({"sim": sim_dict(result),
                          "nights": [summary.night_dict(n, summary.night_sleep_of(n))
                                     for n in nights]}, indent=1))
    else:
        print(sim_text(result, sc.get("name", "")))
        for n in nights:
            print()
            print(summary.night_text(n))
    return 0


def _add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("build/demo"), help="demo folder")


def _run_demo(args: argparse.Namespace) -> int:
    from nightstand.commands import sync as sync_cmd
    from nightstand.sim.scenario import default_scenario
    from nightstand.sim.session import (
        morning_usb_config,
        sim_text,
        simulate,
        wait_until_closed,
    )
    from nightstand.store import Store

    out: Path = args.out
    runner.prepare_run_dir(out, "demo folder")  # never a folder of the user's own files
    sim_dir = out / "sim"
    db = out / "store" / "nightstand.sqlite3"
    sc = default_scenario()
    print(f"1/3  Simulating the default night through the firmware under MicroPython\n"
          f"     ({sc['name']})")
    _gen, result = simulate(sc, sim_dir)
    print("\n".join("   " + ln for ln in sim_text(result).splitlines()[1:]))
    print("2/3  Morning: the board is plugged in by USB (a pseudo-terminal) and synced:")
    morning_usb_config(sim_dir)
    if db.parent.exists():
        import shutil

        shutil.rmtree(db.parent)
    with runner.start_usb(sim_dir) as dev:
        wait_until_closed(dev.port)
        rc = sync_cmd.run_sync_args(["--port", dev.port, "--db", str(db)])
        if rc:
            return rc
    print("3/3  The night as stored on the desktop, and its report")
    from nightstand.report import write_night_report

    with Store(db) as store:
        rows = store.nights()
        if not rows:
            raise UserError("the sync stored no night; see " + str(sim_dir / "console.log"))
        pages = []
        for row in rows:
            night = decode_night(store.raw_bytes(row["id"]))
            print(summary.night_text(night))
            pages.append(write_night_report(store, row["id"], out / "report"))
        from nightstand import planning

        for dev_id in planning.devices(store):
            print(planning.overview_text(planning.overview(store, dev_id)))
    for page in pages:
        print(f"Report: {page.resolve()}")
    print(f"(store: {db}; try `.venv/bin/nightstand report --last --db {db} --out DIR`, or "
          f"`.venv/bin/nightstand plan --advance-to 06:00 --db {db}`)")
    return 0


COMMANDS = [
    Command("simulate", "run the real firmware on the virtual board for a whole night",
            _add_sim_args, _run_simulate),
    Command("demo", "simulate the default night, then show what the device recorded",
            _add_demo_args, _run_demo),
]
