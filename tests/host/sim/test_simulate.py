"""A whole (short) night: the unchanged firmware under MicroPython on the virtual board, with a
128 KiB data heap, checked against the scenario generator's ground truth."""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys

import numpy as np
import pytest
from lamplog import duty_per_second, mel_edi_per_second
from nightstand.sim.scenario import validate
from nightstand.sim.session import nights_in_flash, simulate
from nsdev.core import light, vocab

SCENARIO = {
    "format": 1,
    "name": "test: one hour around bedtime",
    "seed": 11,
    "start": "2026-01-15T22:40:00",
    "utc_offset_s": 3600,
    "duration_s": 3600,
    "bedtime": "22:45",
    "lights_out": "22:50",
    "wake": "23:40",
    "person": {"hr_evening_bpm": 66, "hr_sleep_bpm": 56, "rmssd_ms": 40},
    "events": {
        "arousals": [
            {"at": "23:05:00", "hr_surge_bpm": 14, "pwa_drop": 0.45, "duration_s": 16},
            {"at": "23:18:00", "hr_surge_bpm": 12, "pwa_drop": 0.40, "duration_s": 14},
        ],
        "ectopic": {"rate_per_hour": 0},
    },
    "room": {
        "temp_c": [{"at": "start", "value": 20.5}, {"at": "end", "value": 19.5}],
        "light": [
            {"at": "start", "lux": 60, "cct_k": 3000},
            {"at": "22:50", "lux": 0.05, "cct_k": 2700},
            {"at": "23:25", "lux": 120, "cct_k": 3000},
            {"at": "23:28", "lux": 0.05, "cct_k": 2700},
        ],
    },
    "button_presses": ["22:55:00"],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("night")
    gen, result = simulate(validate(SCENARIO), out, quiet=True)
    (night,) = nights_in_flash(out)
    return gen, result, night, out


CONTACT_S = (5 * 60, 60 * 60)  # the finger is in the sensor from bedtime (22:45) on


def _truth_beats(gen) -> np.ndarray:
    with open(gen.paths["beats"]) as f:
        t = np.array([float(r["time_s"]) for r in csv.DictReader(f)])
    return t[(t >= CONTACT_S[0]) & (t < CONTACT_S[1])]


def test_runs_in_the_heap_budget_without_resets(run):
    _gen, result, _night, _out = run
    assert result.status == "ok"
    assert result.resets == []
    assert 0 < result.heap_peak < 128 * 1024
    assert result.sim_s == pytest.approx(3600)


def test_epochs_cover_the_night(run):
    gen, _result, night, _out = run
    assert night.header["start_unix_s"] == int(gen.start_unix_s)
    assert 115 <= len(night.epochs) <= 121
    starts = [e["unix_s"] for e in night.epochs]
    assert all(b - a == 30 for a, b in zip(starts, starts[1:], strict=False))


def test_beats_match_the_truth(run):
    gen, _result, night, _out = run
    truth = _truth_beats(gen)
    got = (np.array(night.beat_t_ms) / 1000.0) - gen.start_unix_s
    assert got.min() >= CONTACT_S[0] - 5  # nothing stored while the sensor had no finger
    delay = float(np.median([t - truth[np.argmin(np.abs(truth - t))] for t in got]))
    matched = sum(1 for t in got if np.min(np.abs(truth - (t - delay))) <= 0.1)
    inside = truth[(truth > got[0]) & (truth < got[-1])]
    assert matched >= 0.97 * len(inside)
    assert matched >= 0.97 * len(got)


def test_epoch_heart_rate_matches_the_truth(run):
    gen, _result, night, _out = run
    truth = _truth_beats(gen)
    errors = []
    for e in night.epochs:
        if e.get("hr_bpm") is None:
            continue
        t0 = e["unix_s"] - gen.start_unix_s
        ibis = np.diff(truth[(truth >= t0) & (truth < t0 + 30)])
        if len(ibis) >= 10:
            errors.append(abs(e["hr_bpm"] - 60.0 / float(np.mean(ibis))))
    assert len(errors) > 80
    assert statistics.median(errors) < 1.5


def test_unknown_before_the_sensor_is_on(run):
    _gen, _result, night, _out = run
    first = night.epochs[:8]  # 22:40-22:44: finger not yet in the sensor
    assert all(e.get("hr_bpm") is None for e in first)
    assert all(e["flags"] & vocab.FLAG_CONTACT_OFF for e in first)


def test_arousals_found(run):
    gen, _result, night, _out = run
    onsets = [(ev["unix_ms"] / 1000.0) - gen.start_unix_s for ev in night.events
              if ev["kind"] == vocab.EV_AROUSAL]
    truth = [(25 * 60, 16), (38 * 60, 14)]
    hits = [any(t - 15 <= o <= t + d + 10 for o in onsets) for t, d in truth]
    assert all(hits), onsets
    assert len(onsets) <= len(truth) + 1


def test_environment_is_read_and_self_heating_compensated(run):
    gen, _result, night, _out = run
    temps = [e["temp_c"] for e in night.epochs if e.get("temp_c") is not None]
    assert len(temps) > 100
    assert 19.2 <= min(temps) and max(temps) <= 20.8
    bright = [e["lux"] for e in night.epochs
              if 45 * 60 <= e["unix_s"] - gen.start_unix_s < 47 * 60]
    dark = [e["lux"] for e in night.epochs
            if 15 * 60 <= e["unix_s"] - gen.start_unix_s < 20 * 60]
    assert min(bright) > 50
    assert max(dark) < 1.0
    # The light switched on at 23:25 is also kept as an environment sample (10-s resolution).
    switched = [r for r in night.env if r.get("lux") is not None and r["lux"] > 50
                and 45 * 60 <= r["unix_ms"] / 1000 - gen.start_unix_s <= 45 * 60 + 12]
    assert switched
    assert len(night.env) < 20  # only changes, not a sample every 10 s


def test_light_limit_and_button_night_light(run):
    _gen, _result, night, out = run
    kinds = [ev["kind"] for ev in night.events]
    assert vocab.EV_BUTTON in kinds
    assert vocab.EV_LIGHT_LIMIT in kinds  # the 23:25 room light is far above 1 lx at night
    # The light the lamp gave, from the PWM duty the virtual lamp saw (not the controller's
    # model of its own output): the night light after the 22:55 press, and <= 1 lx melanopic
    # from bedtime (22:45 + fade margin) until the (test) dawn.
    amber = duty_per_second(out / "lamp_amber.log", 3600)
    assert amber[15 * 60:17 * 60].max() > 0
    mel = mel_edi_per_second(out, light.DEFAULTS, 3600)
    assert mel[6 * 60:30 * 60].max() <= 1.0


def test_lamp_phases_and_presleep_summary_are_typed_events(run):
    gen, _result, night, _out = run
    phases = [ev for ev in night.events if ev["kind"] == vocab.EV_LAMP_PHASE]
    names = [vocab.PHASE_NAMES[ev["fields"]["phase"]] for ev in phases]
    assert names[:2] == ["wind_down", "night"]  # boot in the wind-down, then bedtime
    # bedtime 22:45 = 5 min into the run
    assert abs(phases[1]["unix_ms"] / 1000 - gen.start_unix_s - 5 * 60) <= 2
    (pre,) = [ev for ev in night.events if ev["kind"] == vocab.EV_PRESLEEP]
    out = next(ev for ev in night.events if ev["kind"] == vocab.EV_LIGHTS_OUT)
    assert pre["unix_ms"] - out["unix_ms"] >= 1800 * 1000
    assert 50 < pre["fields"]["evening_hr_bpm"] < 80
    assert not [ev for ev in night.events if ev["kind"] == vocab.EV_LAMP_CHANGE
                and (ev["text"].startswith("phase ") or ev["text"].startswith("hyperarousal"))]


def test_simulate_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "duration_s": -5}')
    for args in (["simulate", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")],
                 ["simulate", str(bad), "--out", str(tmp_path / "o")],
                 ["simulate", "--seed", "3", "--out", str(tmp_path / "o"), "--heap", "lots"]):
        proc = subprocess.run([sys.executable, "-m", "nightstand.cli", *args],
                              capture_output=True, text=True)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_power_glitches_mid_night_resume_the_same_night(tmp_path):
    """Two power glitches: the board reboots, reopens the night, loses at most one epoch each."""
    import json

    from nightstand.sim import runner
    from nightstand.sim.generate import generate
    from nightstand.sim.session import device_settings, prepare

    sc = validate(SCENARIO)
    gen = generate(sc, tmp_path)
    prepare(gen, tmp_path, device_settings(gen))
    cfg = json.loads((tmp_path / "sim.json").read_text())
    cfg["resets_at_s"] = [1000.5, 2300.2]
    runner.write_sim_config(tmp_path, cfg)
    result = runner.run(tmp_path)
    assert [r[1] for r in result.resets] == [1, 1]
    (night,) = nights_in_flash(tmp_path)
    resets = [ev for ev in night.events if ev["kind"] == vocab.EV_RESET]
    assert len(resets) == 2
    starts = [e["unix_s"] - gen.start_unix_s for e in night.epochs]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False) if b - a > 30]
    assert len(gaps) <= 2 and all(g <= 60 for g in gaps), gaps  # <= 1 epoch lost per glitch
    assert len(night.epochs) >= 120 - 2 - 2
    assert any(e["flags"] & vocab.FLAG_RESUMED for e in night.epochs)


def test_power_cuts_on_littlefs_flash_lose_at_most_an_epoch(tmp_path):
    """The firmware on a 2 MB littlefs image that loses power at random block writes."""
    _gen, result = simulate(validate(SCENARIO), tmp_path, quiet=True, flash="littlefs",
                            power_cuts=3)
    assert len(result.power_cuts) == 3
    nights = nights_in_flash(tmp_path)
    assert len(nights) == 1  # the same night, resumed after every cut
    (night,) = nights
    assert night.skipped == []  # no damaged record at all: crc mismatch and truncated included
    resets = [ev for ev in night.events if ev["kind"] == vocab.EV_RESET]
    assert len(resets) == 3
    starts = [e["unix_s"] for e in night.epochs]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False) if b - a != 30]
    assert all(30 < g <= 60 for g in gaps), gaps  # <= 1 epoch lost per cut
    assert len(night.epochs) >= 120 - 3 - 1


def test_wired_evening_gets_a_breathing_paced_wind_down(tmp_path):
    """A person the device knows (a week of baseline, evening HR ~58 bpm) comes to bed wired
    (~76 bpm) with the clip on during the wind-down: the lamp paces breathing, the session is
    recorded with its HR/HRV response, and the lamp stays under the evening melanopic cap."""
    import json

    from nightstand.sim import runner
    from nightstand.sim.generate import generate
    from nightstand.sim.session import device_settings, prepare

    sc = validate({
        "format": 1, "name": "test: wired evening", "seed": 3,
        "start": "2026-01-15T22:00:00", "utc_offset_s": 0, "duration_s": 3600,
        "bedtime": "22:05", "lights_out": "22:55", "wake": "22:58",
        "person": {"hr_evening_bpm": 76, "hr_excess_bpm": 0, "hr_sleep_bpm": 70},
        "room": {"light": [{"at": "start", "lux": 40, "cct_k": 2700}]},
    })
    gen = generate(sc, tmp_path)
    settings = device_settings(gen)
    settings.update(bedtime="23:00", wake="07:00")  # the device's schedule: wind-down until 23:00
    prepare(gen, tmp_path, settings)
    (tmp_path / "flash" / "baseline.json").write_text(json.dumps(
        {"nights": 7, "base_hr": 58.0, "base_var": 4.0, "base_decline": 6.0}))
    runner.run(tmp_path)
    (night,) = nights_in_flash(tmp_path)
    sessions = [ev for ev in night.events if ev["kind"] == vocab.EV_WIND_DOWN]
    assert [ev["values"][0] for ev in sessions][:2] == [1, 0], sessions  # started, then ended
    assert 180 <= sessions[1]["values"][1] <= 900  # 3 to 15 minutes
    assert "hr " in sessions[1]["text"] and "rmssd " in sessions[1]["text"]
    paced = [e for e in night.epochs if e["flags"] & vocab.FLAG_WIND_DOWN]
    assert len(paced) >= 5
    mel = mel_edi_per_second(tmp_path, light.DEFAULTS, 3600)  # from the PWM duty the lamp saw
    for e in paced:
        t = int(e["unix_s"] - gen.start_unix_s)
        assert mel[t:t + 30].max() <= 10.0


def test_breathing_rate_recorded_per_epoch(run):
    # the device's own estimate (nsdev.core.resp.PPGBreathing) in the epoch records; the
    # scenario's person breathes 14 /min on average (PERSON_DEFAULTS), wandering by sd 0.8
    _gen, _result, night, _out = run
    rates = [e["resp_per_min"] for e in night.epochs if e.get("resp_per_min") is not None]
    assert len(rates) >= 10, rates
    assert all(abs(r - 14.0) <= 3.0 for r in rates), rates


def test_clip_temperature_rises_after_lights_out(run):
    # The MAX30102 die in the finger clip (vocab clip_temp_c): the scenario's finger is at
    # 32 degC and warms by 1 degC after lights-out (22:50, tau 20 min; PERSON_DEFAULTS), the
    # clip follows with its own lag (SENSOR_DEFAULTS clip_tau_s); room temperature without it.
    gen, result, night, _out = run
    stim = np.fromfile(gen.paths["clip_temp"], dtype="<f4")  # every 10 s from the start
    clip = {int(e["unix_s"] - gen.start_unix_s): e.get("clip_temp_c") for e in night.epochs}
    assert all(clip[t] is None for t in range(0, 240, 30))  # finger not in yet: unknown
    known = {t: v for t, v in clip.items() if v is not None}
    assert len(known) >= 100
    for t, v in known.items():  # measured once, early in its epoch: the stimulus then
        window = stim[t // 10:t // 10 + 4]
        assert window.min() - 0.04 <= v <= window.max() + 0.04, (t, v, window)
    before = [v for t, v in known.items() if 15 * 60 <= t < 22 * 60]  # 22:55-23:02, settled
    after = [v for t, v in known.items() if 50 * 60 <= t < 58 * 60]  # 23:30-23:38
    rise = statistics.median(after) - statistics.median(before)
    assert 0.3 <= rise <= 0.7, (before, after)  # model: 32.4 -> 32.9 degC over those spans
    # one conversion per epoch (cheap: a write and a 3-byte read each 30 s)
    assert abs(result.devices["max30102"]["temp_conversions"] - len(night.epochs)) <= 2
