"""A whole simulated night: scenario -> signals -> the real firmware on a virtual board -> nights.

The library behind `nightstand simulate`, `demo` and the tests (commands/sim.py only parses)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

from nsdev import config as device_config

from nightstand.errors import UserError
from nightstand.night import Night, read_night_file
from nightstand.progress import progress_bar
from nightstand.sim import runner
from nightstand.sim.generate import ENV_PERIOD_S, GeneratedNight, generate
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


def device_ppg_rate_hz() -> float:
    """The PPG rate the simulated device is configured with (its settings' ppg_rate_hz)."""
    return float(device_config.defaults()["ppg_rate_hz"])


def prepare(gen: GeneratedNight, out: Path, settings: dict[str, Any], *,
            flash: str = "folder", power_cuts: int = 0, seed: int = 0,
            honest: dict[str, Any] | None = None) -> None:
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
            "honest_time": honest or {},
            # a power cut after a random number of flash block writes, once per boot
            "power_cut_writes": [random.Random(seed).randint(20, 400) + 97 * i
                                 for i in range(power_cuts)],
            "devices": runner.board_devices(
                ppg_stim="stim/ppg.f32",
                ppg_fs_hz=gen.fs_hz,
                env_stim="stim/env.f32",
                button_presses_s=gen.button_presses_s,
                temp_stim="stim/clip_temp.f32" if "clip_temp" in gen.paths else None,
                temp_period_s=ENV_PERIOD_S,
            ),
        },
    )


def simulate(
    scenario: dict[str, Any], out: Path, *, heapsize: str = runner.DEFAULT_HEAPSIZE,
    quiet: bool = False, flash: str = "folder", power_cuts: int = 0, vm: str | None = None,
    honest: dict[str, Any] | None = None,
) -> tuple[GeneratedNight, runner.SimResult]:
    """Generate the scenario's signals, run the firmware for the whole night, return both."""
    if out.is_dir() and runner.is_run_dir(out):
        _clear_run(out)
    created = runner.prepare_run_dir(out)
    try:
        # the signals are made at the rate the device will run its PPG FIFO at
        gen = generate(scenario, out, fs_hz=device_ppg_rate_hz())
        prepare(gen, out, device_settings(gen), flash=flash, power_cuts=power_cuts,
                seed=int(scenario.get("seed", 0)), honest=honest)
    except BaseException as e:
        if created:  # nothing was run: leave nothing behind
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        if isinstance(e, OSError):
            raise runner.write_error(out, e) from None
        raise
    try:
        with progress_bar("simulating night", gen.duration_s, " s") as update:
            result = runner.run(out, heapsize=heapsize, on_progress=None if quiet else update,
                                vm=vm)
    except OSError as e:
        raise runner.write_error(out, e) from None
    return gen, result


def _clear_run(out: Path) -> None:
    import shutil

    for name in ("flash", "flash_files", "stim", "truth", "code"):
        shutil.rmtree(out / name, ignore_errors=True)
    for f in out.glob("*"):
        if f.is_file() and f.name != runner.RUN_MARKER:
            f.unlink()


def nights_in_flash(out: Path) -> list[Night]:
    """The nights on the simulated board's flash (a folder, or a littlefs image read out)."""
    root = out / "flash"
    if (out / "flash.img").exists():
        root = runner.extract_littlefs(out, out / "flash_files")
    files = sorted((root / "data" / "nights").glob("*.ns"))
    return [read_night_file(f) for f in files]


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


def sim_dict(r: runner.SimResult) -> dict[str, Any]:
    d: dict[str, Any] = {
        "status": r.status,
        "simulated_s": r.sim_s,
        "wall_s": round(r.wall_s, 2),
        "speedup": round(r.speedup, 1),
        "firmware_cpu_ms_per_sim_s": (
            round(1000 * r.firmware_cpu_s / r.sim_s, 3) if r.sim_s else None
        ),
        "heap_peak_bytes": r.heap_peak,
        "resets": r.resets,
    }
    if r.cpu_s:
        d["cpu_s"] = round(r.cpu_s, 2)
        d["speedup_cpu"] = round(r.speedup_cpu, 1)
    if r.honest:
        h = r.honest
        dev = r.devices.get("max30102", {})
        d["honest_time"] = {
            "speed_factor": h.get("speed_factor"),
            "flash_timing": h.get("flash_timing"),
            "fifo_overflows": dev.get("overflows", 0),
            "fifo_lost_samples": r.fifo_lost_samples,
            "fifo_samples": dev.get("samples_produced", 0),
            "lateness_max_ms": h.get("lateness_max_ms"),
            "lateness_max_task": h.get("lateness_max_task"),
            "lateness_max_at_s": h.get("lateness_max_at_s"),
            "wdt_margin_ms": h.get("wdt_margin_ms"),
            "firmware_cpu_s": h.get("cpu_s"),
            "flash_busy_s": h.get("flash_busy_s"),
        }
    return d


def sim_text(r: runner.SimResult, name: str = "") -> str:
    d = sim_dict(r)
    lines = [
        f"Simulation {name}".rstrip() + ":",
        f"  {r.sim_s / 3600:.1f} h simulated in {r.wall_s:.1f} s ({d['speedup']:.0f}x real time),"
        f" firmware CPU {d['firmware_cpu_ms_per_sim_s']:.2f} ms per simulated second,",
        f"  firmware data heap peak {r.heap_peak / 1024:.0f} KiB (live after GC; budget "
        f"{r.heap_budget.rstrip('Kk')} KiB)",
    ]
    if r.cpu_s:
        lines.insert(2, f"  {r.speedup_cpu:.0f}x real time per CPU second of the simulator "
                     f"({r.cpu_s:.1f} s CPU; wall time also counts other processes)")
    ht = d.get("honest_time")
    if ht:
        lines.append(
            f"  honest time (speed factor {ht['speed_factor']:g}, {ht['flash_timing']} flash): "
            f"FIFO overflows {ht['fifo_overflows']} ({ht['fifo_lost_samples']} of "
            f"{ht['fifo_samples']} samples lost),")
        lines.append(
            f"  worst task lateness {ht['lateness_max_ms']} ms ({ht['lateness_max_task']}), "
            f"watchdog margin {ht['wdt_margin_ms']} ms")
    if r.resets:
        lines.append(f"  board resets: {len(r.resets)} ({', '.join(str(x[2]) for x in r.resets)})")
    return "\n".join(lines)
