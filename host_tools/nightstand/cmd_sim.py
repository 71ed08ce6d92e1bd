"""`nightstand simulate` and `nightstand demo`: the real firmware on the virtual board."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

from nsdev import config as device_config

from nightstand import summary
from nightstand.cli import Command
from nightstand.errors import UserError
from nightstand.night import Night, decode_night, read_night_file
from nightstand.progress import progress_bar
from nightstand.sim import runner
from nightstand.sim.generate import GeneratedNight, generate
from nightstand.sim.scenario import default_scenario, load_scenario, random_scenario

TICKS_BEFORE_WRAP_MS = 10 * 60 * 1000  # the virtual ticks wrap 10 minutes into every run


def resolve_scenario(name: str | None, seed: int | None) -> dict[str, Any]:
    if seed is not None:
        if name not in (None, "random"):
            raise UserError("give either a SCENARIO file or --seed, not both")
        return random_scenario(seed)
    if name in (None, "default"):
        return default_scenario()
    path = Path(name)
    if not path.exists():
        raise UserError(f"scenario {name}: no such file (use `default`, a JSON file or --seed N)")
    return load_scenario(path)


def _local_hhmm(gen: GeneratedNight, t_s: float) -> str:
    local = dt.datetime.fromtimestamp(gen.start_unix_s + t_s + gen.utc_offset_s, dt.UTC)
    return local.strftime("%H:%M")


def device_settings(gen: GeneratedNight) -> dict[str, Any]:
    """The settings a host would have given the device before this night (validated)."""
    sc = gen.scenario
    changes = {
        "bedtime": _local_hhmm(gen, sc["bedtime"]),
        "wake": _local_hhmm(gen, sc["wake"]),
        "utc_offset_s": gen.utc_offset_s,
    }
    cfg, errors = device_config.merge(device_config.defaults(), changes)
    if errors:
        raise UserError("scenario gives invalid device settings: " + "; ".join(errors))
    return cfg


def prepare(gen: GeneratedNight, out: Path, settings: dict[str, Any], *,
            flash: str = "folder", power_cuts: int = 0, seed: int = 0) -> None:
    seed_dir = out / "flash"  # the flash folder, or the files a fresh littlefs image gets
    seed_dir.mkdir(parents=True, exist_ok=True)
    (seed_dir / device_config.CONFIG_FILE).write_text(json.dumps(settings))
    runner.write_sim_config(
        out,
        {
            "start_unix_s": int(gen.start_unix_s),
            "duration_s": gen.duration_s,
            "ticks_start_ms": (1 << 30) - TICKS_BEFORE_WRAP_MS,
            "rtc_valid": True,
            "progress_every_s": 60,
            "flash": flash,
            # a power cut after a random number of flash block writes, once per boot
            "power_cut_writes": [random.Random(seed).randint(20, 400) + 97 * i
                                 for i in range(power_cuts)],
            "devices": runner.board_devices(
                ppg_stim="stim/ppg.f32",
                ppg_fs_hz=gen.fs_hz,
                env_stim="stim/env.f32",
                button_presses_s=gen.button_presses_s,
            ),
        },
    )


def simulate(
    scenario: dict[str, Any], out: Path, *, heapsize: str = runner.DEFAULT_HEAPSIZE,
    quiet: bool = False, flash: str = "folder", power_cuts: int = 0,
) -> tuple[GeneratedNight, runner.SimResult]:
    """Generate the scenario's signals, run the firmware for the whole night, return both."""
    if out.exists() and any(out.iterdir()):
        if not (out / "sim.json").exists():
            raise UserError(f"{out} exists and is not a simulation folder; choose another --out")
        _clear_run(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = generate(scenario, out)
    prepare(gen, out, device_settings(gen), flash=flash, power_cuts=power_cuts,
            seed=int(scenario.get("seed", 0)))
    with progress_bar("simulating night", gen.duration_s, " s") as update:
        result = runner.run(out, heapsize=heapsize, on_progress=None if quiet else update)
    return gen, result


def _clear_run(out: Path) -> None:
    import shutil

    for name in ("flash", "flash_files", "stim", "truth", "code"):
        shutil.rmtree(out / name, ignore_errors=True)
    for f in out.glob("*"):
        if f.is_file():
            f.unlink()


def nights_in_flash(out: Path) -> list[Night]:
    """The nights on the simulated board's flash (a folder, or a littlefs image read out)."""
    root = out / "flash"
    if (out / "flash.img").exists():
        root = runner.extract_littlefs(out, out / "flash_files")
    files = sorted((root / "data" / "nights").glob("*.ns"))
    return [read_night_file(f) for f in files]


def _add_sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", default="default",
                   help="a scenario JSON file, or `default` (default)")
    p.add_argument("--seed", type=int, help="simulate a random scenario made from this seed")
    p.add_argument("--out", type=Path, required=True, help="run folder (created)")
    p.add_argument("--heap", default=runner.DEFAULT_HEAPSIZE,
                   help="MicroPython heap size (default %(default)s ≈ 64 KB on the ESP32)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--flash", choices=("folder", "littlefs"), default="folder",
                   help="the board's flash: a folder (default) or a 2 MB littlefs image")
    p.add_argument("--power-cuts", type=int, default=0, metavar="N",
                   help="with --flash littlefs: cut power N times at random flash writes")


def _run_simulate(args: argparse.Namespace) -> int:
    sc = resolve_scenario(args.scenario, args.seed)
    if args.power_cuts and args.flash != "littlefs":
        raise UserError("--power-cuts needs --flash littlefs (power cuts hit the flash image)")
    if args.power_cuts < 0:
        raise UserError("--power-cuts must be 0 or more")
    gen, result = simulate(sc, args.out, heapsize=args.heap, flash=args.flash,
                           power_cuts=args.power_cuts)
    nights = nights_in_flash(args.out)
    if args.json:
        print(json.dumps({"sim": summary.sim_dict(result),
                          "nights": [summary.night_dict(n) for n in nights]}, indent=1))
    else:
        print(summary.sim_text(result, sc.get("name", "")))
        for n in nights:
            print()
            print(summary.night_text(n))
    return 0


def _add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("build/demo"), help="demo folder")


def morning_usb_config(sim_dir: Path) -> None:
    """Re-use a finished run's board for the morning: clock continues, no finger on the sensor."""
    cfg = json.loads((sim_dir / "sim.json").read_text())
    cfg["start_unix_s"] = int(cfg["start_unix_s"] + cfg["duration_s"])
    cfg["duration_s"] = 4 * 3600  # the host unplugs long before
    cfg["ticks_start_ms"] = 0
    for dev in cfg["devices"]:
        dev.pop("stim", None)
        dev.pop("presses_s", None)
    runner.write_sim_config(sim_dir, cfg)


def wait_until_closed(port: str, timeout_s: float = 60.0) -> None:
    """The board closes the night a little after wake time; wait for it over USB."""
    import time

    from nightstand.sync.client import Client
    from nightstand.sync.transport import SerialTransport

    deadline = time.monotonic() + timeout_s
    with Client(lambda: SerialTransport(port, 115200), timeout_s=2.0) as client:
        client.connect()
        while time.monotonic() < deadline:
            if not any(n.open for n in client.list_nights()):
                return
            time.sleep(0.3)
    raise UserError(f"the simulated device still records a night after {timeout_s:.0f} s")


def _run_demo(args: argparse.Namespace) -> int:
    from nightstand import cli
    from nightstand.sync.store import Store

    out: Path = args.out
    sim_dir = out / "sim"
    db = out / "store" / "nightstand.sqlite3"
    sc = default_scenario()
    print(f"1/3  Simulating the default night through the firmware under MicroPython\n"
          f"     ({sc['name']})")
    _gen, result = simulate(sc, sim_dir)
    print("\n".join("   " + ln for ln in summary.sim_text(result).splitlines()[1:]))
    print("2/3  Morning: the board is plugged in by USB (a pseudo-terminal) and synced:")
    morning_usb_config(sim_dir)
    if db.parent.exists():
        import shutil

        shutil.rmtree(db.parent)
    with runner.start_usb(sim_dir) as dev:
        wait_until_closed(dev.port)
        rc = cli.main(["sync", "--port", dev.port, "--db", str(db)])
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
    for page in pages:
        print(f"Report: {page.resolve()}")
    print(f"(store: {db}; try `.venv/bin/nightstand report --last --db {db} --out DIR`)")
    return 0


COMMANDS = [
    Command("simulate", "run the real firmware on the virtual board for a whole night",
            _add_sim_args, _run_simulate),
    Command("demo", "simulate the default night, then show what the device recorded",
            _add_demo_args, _run_demo),
]
