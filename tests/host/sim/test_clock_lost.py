"""A DevKitC has no battery-backed RTC: a power cut mid-night restarts the clock at 2000-01-01.
The firmware must not write a year-2000 night: it closes the night it cannot continue, records
the rest on the boot clock marked "wall clock unknown", keeps the lamp dark, and moves that night
onto the wall clock when the host sets the time at the morning sync (docs/night-format.md)."""

from __future__ import annotations

import csv
import json
import struct

import numpy as np
import pytest
from nightstand.night import decode_night
from nightstand.sim import runner
from nightstand.sim.generate import generate
from nightstand.sim.scenario import validate
from nightstand.sim.session import device_settings, morning_usb_config, prepare
from nightstand.store import Store
from nightstand.sync.client import Client
from nightstand.sync.engine import sync_device
from nightstand.sync.transport import SerialTransport
from nsdev.core import vocab

SCENARIO = {
    "format": 1,
    "name": "test: power and clock lost at night",
    "seed": 31,
    "start": "2026-01-15T23:50:00",
    "utc_offset_s": 0,
    "duration_s": 3600,
    "bedtime": "23:52",
    "lights_out": "23:55",
    "wake": "00:48",  # dawn would start at 00:18, after the cut
    "person": {"hr_evening_bpm": 62, "hr_sleep_bpm": 55, "rmssd_ms": 40},
    "events": {"ectopic": {"rate_per_hour": 0}},
    "room": {"light": [{"at": "start", "lux": 0.05, "cct_k": 2700}]},
}
CUT_S = 1200  # 00:10: power lost, and with it the clock
MIN_WALL = 978307200  # 2001-01-01


def _lamp_seconds_on(path, after_s: int) -> int:
    data = path.read_bytes()
    on = 0
    recs = [struct.unpack_from("<IQ", data, i) for i in range(0, len(data) - 11, 12)]
    for (sec, mean), nxt in zip(recs, recs[1:] + [(10**9, 0)], strict=False):
        if mean > 0:
            on += max(0, min(nxt[0], 10**9) - max(sec, after_s)) if nxt[0] > after_s else 0
    return on


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    out = tmp_path_factory.mktemp("clocklost")
    gen = generate(validate(SCENARIO), out)
    prepare(gen, out, device_settings(gen))
    cfg = json.loads((out / "sim.json").read_text())
    cfg["resets_at_s"] = [CUT_S]
    cfg["rtc_lost_on_power_loss"] = True
    runner.write_sim_config(out, cfg)
    result = runner.run(out)
    assert result.resets and result.resets[0][1] == 1
    night_lamp = {ch: _lamp_seconds_on(out / f"lamp_{ch}.log", CUT_S + 5)
                  for ch in ("warm", "amber")}
    # Morning: the board stayed powered (its boot clock runs on), the host syncs over USB.
    stats = json.loads((out / "sim_stats.json").read_text())
    morning_usb_config(out)
    sim = json.loads((out / "sim.json").read_text())
    sim.update(rtc_valid=False, boot_clock_s=stats["boot_clock_s"], boot_reset_cause=5)
    sim.pop("resets_at_s", None)
    runner.write_sim_config(out, sim)
    db = out / "host" / "store.sqlite3"
    with runner.start_usb(out) as dev, Store(db) as store:
        # What `nightstand sync` does, with the host's clock set to the simulated morning
        # (the host would give the device its real time; here that is the scenario's).
        with Client(lambda: SerialTransport(dev.port, 115200), timeout_s=5.0) as client:
            client.connect()
            client.set_time(int(sim["start_unix_s"]) + 3, 0)
            sync_device(client, store, dev.port, set_time=False)
        nights = [decode_night(store.raw_bytes(row["id"])) for row in store.nights()]
    return gen, stats, nights, night_lamp


def test_the_clock_was_lost(synced):
    _gen, stats, _nights, _lamp = synced
    assert stats["rtc_valid"] is False
    assert 0 < stats["boot_clock_s"] <= 3600 - CUT_S + 5


def test_no_year_2000_night_and_the_times_are_right(synced):
    gen, _stats, nights, _lamp = synced
    assert len(nights) == 2  # the night before the cut, closed; the one after, re-anchored
    nights.sort(key=lambda n: n.start_unix_s)
    before, after = nights
    end = gen.start_unix_s + gen.duration_s
    for n in nights:
        assert n.start_unix_s >= MIN_WALL
        for e in n.epochs:
            assert gen.start_unix_s <= e["unix_s"] <= end
    assert before.end is not None and before.end["reason"] == vocab.END_CLOCK_LOST
    assert before.epochs[-1]["unix_s"] <= gen.start_unix_s + CUT_S
    assert abs(after.start_unix_s - (gen.start_unix_s + CUT_S)) <= 60
    assert all(e["flags"] & vocab.FLAG_CLOCK_UNSET for e in after.epochs)
    # Beats recorded on the boot clock land on the true beats once re-anchored.
    with open(gen.paths["beats"]) as f:
        truth = np.array([float(r["time_s"]) for r in csv.DictReader(f)])
    got = np.array(after.beat_t_ms) / 1000.0 - gen.start_unix_s
    assert len(got) > 500
    err = np.array([t - truth[np.argmin(np.abs(truth - t))] for t in got])
    assert abs(float(np.median(err))) < 0.3


def test_the_lamp_stays_dark_without_a_clock(synced):
    _gen, _stats, _nights, lamp = synced
    assert lamp == {"warm": 0, "amber": 0}  # no dawn at a guessed time, no light at all
