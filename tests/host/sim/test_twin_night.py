"""The whole default night on the twin (32-bit, float32, firmware frozen in; `make twin`): the
virtual board works in 31-bit small ints and single precision, and the firmware finds the beats
and arousals the generator put in, within the twin's data heap budget (runner.TWIN_HEAPSIZE,
64 KiB: the ESP32's 56 KiB plus one 8-KiB step, because at 56 KiB the simulator's own start-up
allocation failed once, from one run folder's path; the 56-KiB run is in `make bench`,
tests/bench/bench_twin.py). One simulation (about a minute)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import require_vm
from nightstand.sim.runner import TWIN_HEAPSIZE
from nightstand.sim.scenario import default_scenario
from nightstand.sim.session import nights_in_flash, simulate
from nsdev.core import vocab

pytestmark = [pytest.mark.slow, pytest.mark.twin]

# Data heap for this test: the twin's budget (the ESP32's 56 KiB plus one 8-KiB step), so a
# firmware change that needs more RAM fails here, not at a bedside.
HEAP = TWIN_HEAPSIZE


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    require_vm("twin")
    out = tmp_path_factory.mktemp("twin_night")
    gen, result = simulate(default_scenario(), out, heapsize=HEAP, quiet=True, vm="twin")
    (n,) = nights_in_flash(out)
    return gen, result, n, out


def test_default_night_runs_on_the_twin(night):
    gen, result, n, out = night
    assert result.status == "ok" and result.resets == []
    assert "MemoryError" not in (out / "console.log").read_text(errors="replace")
    assert result.sim_s == pytest.approx(gen.duration_s, abs=1)
    with open(gen.paths["beats"]) as f:
        truth = np.array([float(r["time_s"]) for r in csv.DictReader(f)])
    got = np.array(n.beat_t_ms) / 1000.0 - gen.start_unix_s
    assert len(got) > 10000
    delay = float(np.median([t - truth[np.argmin(np.abs(truth - t))] for t in got[:2000]]))
    idx = np.clip(np.searchsorted(truth, got - delay), 1, len(truth) - 1)
    near = np.minimum(np.abs(truth[idx] - (got - delay)), np.abs(truth[idx - 1] - (got - delay)))
    assert np.mean(near <= 0.1) >= 0.97  # each stored beat is a true beat (within 100 ms)
    arousals = [ev for ev in n.events if ev["kind"] == vocab.EV_AROUSAL]
    assert arousals


def test_clip_temperature_on_the_twin(night):
    # the die temperature in 1/16 degC ints through the twin's 31-bit small ints and float32:
    # the default person's finger (32 degC) warms by ~1 degC after lights-out (23:00)
    gen, _result, n, _out = night
    at = {int(e["unix_s"] - gen.start_unix_s): e.get("clip_temp_c") for e in n.epochs}
    known = [v for v in at.values() if v is not None]
    assert len(known) > 500 and all(v * 16 == int(v * 16) for v in known)
    before = [v for t, v in at.items() if v is not None and 8100 <= t < 9000]  # 22:45-23:00
    later = [v for t, v in at.items() if v is not None and 16200 <= t < 19800]  # 01:00-02:00
    rise = float(np.median(later) - np.median(before))
    assert 0.7 <= rise <= 1.2, (before[:5], later[:5])


def test_motion_events_are_flagged(night):
    """Every epoch a scripted motion artefact falls in carries the motion flag (the pulse there
    is no heart rate). Before: the LED-current control paused while epoch work waited for a
    quiet flash moment, and the 01:55 event's epoch came out unflagged at 119.5 bpm."""
    gen, _result, n, _out = night
    with open(gen.paths["periods"]) as f:
        motion = [(float(r["start_s"]), float(r["duration_s"])) for r in csv.DictReader(f)
                  if r["kind"] == "motion"]
    assert motion
    by_start = {e["unix_s"]: e for e in n.epochs}
    for start_s, dur_s in motion:
        t = gen.start_unix_s + start_s + dur_s / 2  # the middle of the event
        slot = int(t) // vocab.EPOCH_S * vocab.EPOCH_S
        e = by_start[slot]
        assert e["flags"] & (vocab.FLAG_MOTION | vocab.FLAG_CONTACT_OFF), (start_s, e)
