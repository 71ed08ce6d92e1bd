"""Mornings of a delayed sleeper under an advancing plan, through the real firmware: each day
the board runs the end of the night (dawn included) on the settings it holds, is plugged in,
synced with `nightstand sync` (which pushes the plan's step), and carries its flash to the
next day. Used by tests/host/sim/test_plan_week.py (3 mornings) and
tests/bench/bench_plan_week.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import shutil
from pathlib import Path
from typing import Any

from nightstand import cli
from nightstand.night import Night
from nightstand.sim import runner
from nightstand.sim.generate import generate
from nightstand.sim.scenario import validate
from nightstand.sim.session import morning_usb_config, nights_in_flash, prepare, wait_until_closed
from nsdev import config as devconfig

FIRST_DAY = dt.date(2026, 1, 15)
LEAD_MIN = 60  # each run starts this long before the device's wake time
AFTER_MIN = 20  # and ends this long after it


def _dawn_start(night: Night, cfg: dict[str, Any]) -> str | None:
    """Local HH:MM of the first epoch the lamp's warm channel was on before the set wake."""
    wake = devconfig.hhmm_to_min(cfg["wake"])
    for e in night.epochs:
        local = dt.datetime.fromtimestamp(e["unix_s"] + night.utc_offset_s, dt.UTC)
        m = local.hour * 60 + local.minute
        lv = e.get("lamp_level") or [0.0, 0.0]
        if (wake - m) % 1440 <= LEAD_MIN and float(lv[0] or 0.0) > 0.0:
            return f"{m // 60:02d}:{m % 60:02d}"
    return None


def run_mornings(tmp: Path, days: int, *, bedtime: str = "01:30", wake: str = "09:30",
                 target: str = "07:00", step_min: int = 15) -> list[dict[str, Any]]:
    db = tmp / "store" / "nightstand.sqlite3"  # a store lives in a folder of its own
    cfg, errors = devconfig.merge(devconfig.defaults(),
                                  {"bedtime": bedtime, "wake": wake, "utc_offset_s": 0})
    assert not errors, errors
    prev_flash: Path | None = None
    rows = []
    for k in range(days):
        out = tmp / f"day{k}"
        out.mkdir()
        if prev_flash is not None:
            shutil.copytree(prev_flash, out / "flash")  # the same board, the next morning
        day = FIRST_DAY + dt.timedelta(days=k)
        w = devconfig.hhmm_to_min(cfg["wake"])
        start = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=w - LEAD_MIN)
        sc = validate({
            "format": 1, "name": f"plan week, morning {k + 1}", "seed": k + 1,
            "start": start.isoformat(timespec="seconds"), "utc_offset_s": 0,
            "duration_s": (LEAD_MIN + AFTER_MIN) * 60,
            "bedtime": 0, "lights_out": 0, "wake": cfg["wake"],
        })
        gen = generate(sc, out)
        prepare(gen, out, cfg)
        runner.run(out)
        (night,) = [n for n in nights_in_flash(out) if n.start_unix_s >= start.timestamp() - 60]
        dawn = _dawn_start(night, cfg)
        morning_usb_config(out)
        quiet = contextlib.redirect_stdout(io.StringIO())
        with runner.start_usb(out) as dev, quiet:
            wait_until_closed(dev.port)
            if k == 0:  # the clinician chooses the plan after the first synced night
                assert cli.main(["sync", "--port", dev.port, "--db", str(db),
                                 "--no-set-time"]) == 0
                assert cli.main(["plan", "--advance-to", target, "--step-min", str(step_min),
                                 "--db", str(db)]) == 0
            assert cli.main(["sync", "--port", dev.port, "--db", str(db),
                             "--no-set-time"]) == 0
        new_cfg = json.loads((out / "flash" / devconfig.CONFIG_FILE).read_text())
        rows.append({"day": day.isoformat(), "bedtime": cfg["bedtime"], "wake": cfg["wake"],
                     "dawn_seen": dawn, "next_bedtime": new_cfg["bedtime"],
                     "next_wake": new_cfg["wake"], "winddown_min": new_cfg["winddown_min"],
                     "dawn_min": new_cfg["dawn_min"]})
        cfg = {**cfg, **{k2: new_cfg[k2] for k2 in ("bedtime", "wake")}}
        prev_flash = out / "flash"
    return rows
