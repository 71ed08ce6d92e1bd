"""Stimulus generator: file formats, truth against the signal, physiology, replay mapping."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nightstand.errors import UserError
from nightstand.sim import generate as gen
from nightstand.sim import scenario as scen
from numpy.typing import NDArray
from scipy import signal

Array = NDArray[np.float64]

# A clean 15-minute night (no sensor noise, no slow wander) where the truth can be read back
# from the stimulus to within a sample.
CLEAN: dict[str, Any] = {
    "name": "clean", "seed": 7, "start": "2026-01-15T22:00", "duration_s": 900,
    "bedtime": 0, "lights_out": 60, "wake": 880,
    "person": {"hr_drift_sd_bpm": 0, "lf_bpm": 0, "resp_rate_sd_bpm": 0, "resp_rate_bpm": 15,
               "rsa_bpm": 6, "baseline_resp_mod": 0, "pwa_resp_mod": 0, "spo2_pct": 92},
    "sensor": {"noise_na_per_ma": 0, "ambient_noise_na": 0},
    "events": {
        "arousals": [{"at": 400, "hr_surge_bpm": 15, "pwa_drop": 0.4, "duration_s": 14}],
        "ectopic": {"times": [200, 300, 600]},
        "finger_off": [{"at": 700, "duration_s": 60}],
        "motion": [{"at": 800, "duration_s": 20, "intensity": 1.0}],
    },
    "room": {"light": [{"at": 0, "lux": 50}, {"at": 700, "lux": 100, "cct_k": 3000},
                       {"at": 760, "lux": 0.1}]},
}
CLEAN_FS = 1000.0
# Same person without RSA and with tiny beat jitter: HR changes are visible beat by beat.
FLAT: dict[str, Any] = {
    **CLEAN, "name": "flat",
    "person": {**CLEAN["person"], "rsa_bpm": 0, "rmssd_ms": 1},
    "events": {"arousals": [{"at": 300, "hr_surge_bpm": 15, "pwa_drop": 0.4, "lead_beats": 8},
                            {"at": 600, "hr_surge_bpm": 10, "pwa_drop": 0.3, "lead_beats": 4}]},
}
# A realistic short night with default noise at the firmware's rate.
NOISY: dict[str, Any] = {
    "name": "noisy", "seed": 99, "start": "2026-01-15T22:50", "utc_offset_s": 3600,
    "duration_s": 1205, "bedtime": "22:52", "lights_out": "22:55", "wake": "23:09",
    "events": {"arousals": [{"at": "23:00"}], "ectopic": {"rate_per_hour": 30},
               "motion": [{"at": "23:05", "duration_s": 10}]},
    "room": {"temp_c": [{"at": "start", "value": 21}, {"at": "end", "value": 19}],
             "light": [{"at": "start", "lux": 80, "cct_k": 4000},
                       {"at": "22:55", "lux": 0.05, "cct_k": 2700}]},
    "button_presses": ["22:52:10"],
}


def _beats(night: gen.GeneratedNight) -> dict[str, Array]:
    with open(night.paths["beats"], newline="") as f:
        rows = list(csv.DictReader(f))
    out = {k: np.array([float(r[k]) for r in rows]) for k in ("time_s", "ibi_ms", "pwa_rel")}
    out["ectopic"] = np.array([r["kind"] == "ectopic" for r in rows])
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[gen.GeneratedNight, Array]:
    night = gen.generate(CLEAN, tmp_path_factory.mktemp("clean"), CLEAN_FS)
    return night, gen.read_ppg_stimulus(night.paths["ppg"]).astype(np.float64)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> gen.GeneratedNight:
    return gen.generate(NOISY, tmp_path_factory.mktemp("noisy"), 50.0)


def _pulses(ppg: Array, fs: float) -> tuple[Array, Array]:
    """Times of the pulse peaks (IR troughs: blood absorbs) and their peak-to-trough depth."""
    ir = ppg[:, 1]
    low, _ = signal.find_peaks(-ir, distance=int(0.3 * fs), prominence=2.0)
    high, _ = signal.find_peaks(ir, distance=int(0.3 * fs), prominence=2.0)
    depth = np.full(low.size, np.nan)
    for i, k in enumerate(low):
        before = high[high < k]
        if before.size and k - before[-1] < 0.6 * fs:
            depth[i] = ir[before[-1]] - ir[k]
    return low / fs, depth


# File formats ------------------------------------------------------------------------------


def test_file_formats(noisy: gen.GeneratedNight) -> None:
    night = noisy
    sc = scen.validate(NOISY)
    assert night.fs_hz == 50.0 and night.duration_s == 1205.0
    assert night.n_samples == 1205 * 50
    assert night.start_unix_s == pytest.approx(scen.start_unix_s(sc))
    assert night.start_unix_s == 1768513800.0  # 2026-01-15T22:50 at UTC+1
    assert night.utc_offset_s == 3600 and night.utc_offset_changes == []
    assert night.button_presses_s == [130.0]
    assert set(night.paths) == {"ppg", "env", "clip_temp", "meta", "beats", "arousals",
                                "periods", "scenario"}

    # ppg.f32: little-endian float32 triples (red nA/mA, IR nA/mA, ambient nA), no header.
    raw = night.paths["ppg"].read_bytes()
    assert len(raw) == night.n_samples * 12
    ppg = gen.read_ppg_stimulus(night.paths["ppg"])
    assert ppg.dtype == np.dtype("<f4") and ppg.shape == (night.n_samples, 3)
    assert struct.unpack("<3f", raw[12 * 5000:12 * 5001]) == tuple(ppg[5000].tolist())
    in_bed = ppg[int(200 * 50):int(1000 * 50)]
    assert 500 < np.median(in_bed[:, 1]) < 2000 and 300 < np.median(in_bed[:, 0]) < 2000
    assert np.all(ppg[:, 2] >= 0)

    # env.f32: one 28-byte row of 7 little-endian float32 every 10 s, from 0 to the end.
    raw = night.paths["env"].read_bytes()
    n_rows = 1205 // 10 + 1
    assert len(raw) == n_rows * 28
    env = gen.read_env_stimulus(night.paths["env"])
    assert env.shape == (n_rows, 7)
    assert struct.unpack("<7f", raw[28:56]) == tuple(env[1].tolist())
    cols = dict(zip(gen.ENV_COLUMNS, env.T.astype(np.float64), strict=True))
    assert np.array_equal(cols["t_s"], np.arange(n_rows) * 10.0)
    assert cols["temp_c"][0] == pytest.approx(21.0) and cols["temp_c"][-1] == pytest.approx(
        21.0 - 2.0 * 1200 / 1205, abs=1e-4)
    assert cols["rh_pct"][0] == pytest.approx(scen.ROOM_DEFAULTS["rh_pct"])
    assert cols["lux"][29] == pytest.approx(80) and cols["lux"][30] == pytest.approx(0.05)
    assert cols["cct_k"][0] == 4000 and cols["cct_k"][30] == 2700

    # clip_temp.f32: one little-endian float32 every 10 s, as env.f32 (the MAX30102 die)
    clip = np.fromfile(night.paths["clip_temp"], dtype="<f4")
    assert clip.shape == (n_rows,)
    assert clip[0] == pytest.approx(cols["temp_c"][0])  # finger not in yet: the room

    meta = json.loads(night.paths["meta"].read_text())
    assert meta["fs_hz"] == 50.0 and meta["n_samples"] == night.n_samples
    assert meta["ppg"]["columns"] == list(gen.PPG_COLUMNS) and meta["ppg"]["dtype"] == "<f4"
    assert meta["env"]["n_rows"] == n_rows and meta["env"]["period_s"] == 10.0
    assert meta["clip_temp"] == {"file": "clip_temp.f32", "dtype": "<f4", "unit": "degC",
                                 "period_s": 10.0, "n_rows": n_rows}

    def header(key: str) -> str:
        return night.paths[key].read_text().splitlines()[0]

    assert header("beats") == "time_s,ibi_ms,pwa_rel,kind"
    assert header("arousals") == "onset_s,duration_s,hr_surge_bpm,pwa_drop"
    assert header("periods") == "kind,start_s,duration_s"
    assert night.paths["arousals"].read_text().splitlines()[1:] == ["600.000,14.000,10.000,0.3500"]
    assert night.paths["periods"].read_text().splitlines()[1:] == [
        "finger_off,0.000,120.000", "motion,900.000,10.000", "finger_off,1140.000,65.000"]
    assert json.loads(night.paths["scenario"].read_text()) == json.loads(json.dumps(sc))

    b = _beats(night)
    assert np.all(np.diff(b["time_s"]) > 0) and 0 <= b["time_s"][0] and b["time_s"][-1] < 1205
    assert night.truth.n_beats == b["time_s"].size
    assert night.truth.n_ectopic == int(b["ectopic"].sum()) > 0
    assert night.truth.n_arousals == 1
    assert night.truth.contact_s == pytest.approx(1020, abs=2)
    assert night.truth.finger_off_s == pytest.approx(185, abs=2)
    # Out of contact (before bedtime, after wake) the truth pulse amplitude is 0.
    off = (b["time_s"] < 119) | (b["time_s"] > 1141)
    assert np.all(b["pwa_rel"][off] == 0) and np.all(b["pwa_rel"][~off & (b["time_s"] > 122)
                                                              & (b["time_s"] < 1138)] > 0)


def test_deterministic_for_a_seed(tmp_path: Path, noisy: gen.GeneratedNight) -> None:
    again = gen.generate(NOISY, tmp_path / "again", 50.0)
    for key, path in noisy.paths.items():
        assert path.read_bytes() == again.paths[key].read_bytes(), key
    other = gen.generate({**NOISY, "seed": 100}, tmp_path / "other", 50.0)
    assert other.paths["ppg"].read_bytes() != noisy.paths["ppg"].read_bytes()
    assert other.paths["beats"].read_bytes() != noisy.paths["beats"].read_bytes()


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk=st.integers(37, 30000))
def test_any_chunking_gives_the_same_night(tmp_path: Path, noisy: gen.GeneratedNight,
                                           chunk: int) -> None:
    """The sample-rate signal is made in chunks (issue 15 item 12): the file is the whole-night
    one (the fixture's 60 250 samples are one chunk) wherever the boundaries fall, motion and
    finger-off edges included."""
    night = gen.generate(NOISY, tmp_path / f"c{chunk}", 50.0, chunk=chunk)
    for key in ("ppg", "env", "beats"):
        assert night.paths[key].read_bytes() == noisy.paths[key].read_bytes(), key
    np.testing.assert_equal(dataclasses.astuple(night.truth), dataclasses.astuple(noisy.truth))


def test_rejects_a_bad_rate(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="fs_hz=5 is out of range"):
        gen.generate(CLEAN, tmp_path, 5.0)


# Ground truth against the stimulus ---------------------------------------------------------


def test_truth_beats_are_the_pulses_in_the_stimulus(clean: tuple[gen.GeneratedNight, Array]
                                                    ) -> None:
    night, ppg = clean
    b = _beats(night)
    p = night.scenario["person"]
    t_peak, _depth = _pulses(ppg, CLEAN_FS)
    cycle = np.diff(b["time_s"], append=b["time_s"][-1] + 1.0)
    expect = np.array([t + gen.pulse_peak_delay_s(c, p["pat_ms"], p["dicrotic_ratio"])
                       for t, c in zip(b["time_s"], cycle, strict=True)])
    # Clean contact segment: after bedtime, before the finger comes off.
    seg = (b["time_s"] > 5) & (b["time_s"] < 690)
    err_ms = np.array([np.min(np.abs(t_peak - e)) for e in expect[seg]]) * 1000.0
    assert np.max(err_ms) < 3.0, np.sort(err_ms)[-5:]
    # And no pulse in the stimulus without a truth beat.
    found = (t_peak > expect[seg][0] - 0.1) & (t_peak < expect[seg][-1] + 0.1)
    assert int(found.sum()) == int(seg.sum())
    # The peak delay is the pulse arrival time plus the systolic upstroke.
    assert 0.30 < gen.pulse_peak_delay_s(1.0, p["pat_ms"], p["dicrotic_ratio"]) < 0.40


def test_arousal_raises_hr_and_drops_the_pulse_amplitude(
        clean: tuple[gen.GeneratedNight, Array]) -> None:
    night, ppg = clean
    t_peak, depth = _pulses(ppg, CLEAN_FS)
    ibi = np.diff(t_peak, prepend=np.nan)
    a = night.scenario["events"]["arousals"][0]
    base = (t_peak > a["at"] - 70) & (t_peak < a["at"] - 15)
    during = (t_peak > a["at"] + 4) & (t_peak < a["at"] + a["duration_s"])
    hr_base, hr_during = 60 / np.nanmedian(ibi[base]), 60 / np.nanmedian(ibi[during])
    assert hr_during - hr_base > 0.6 * a["hr_surge_bpm"], (hr_base, hr_during)
    drop = 1 - np.nanmedian(depth[during]) / np.nanmedian(depth[base])
    assert drop >= 0.2 and drop == pytest.approx(a["pwa_drop"], abs=0.1)  # Delessert: >= 20%
    # And both recover afterwards.
    after = (t_peak > a["at"] + a["duration_s"] + 20) & (t_peak < a["at"] + a["duration_s"] + 60)
    assert abs(60 / np.nanmedian(ibi[after]) - hr_base) < 0.3 * a["hr_surge_bpm"]
    assert np.nanmedian(depth[after]) / np.nanmedian(depth[base]) > 0.9


def test_hr_surge_precedes_the_pwa_drop(tmp_path: Path) -> None:
    night = gen.generate(FLAT, tmp_path, 100.0)
    b = _beats(night)
    for a in night.scenario["events"]["arousals"]:
        t, ibi, pwa = b["time_s"], b["ibi_ms"], b["pwa_rel"]
        base = (t > a["at"] - 40) & (t < a["at"] - 20)
        ibi0, pwa0 = np.median(ibi[base]), np.median(pwa[base])
        before = np.flatnonzero(t < a["at"])[-3:]  # the last beats before the PWA onset
        assert np.all(ibi[before] < ibi0 - 5), (ibi0, ibi[before])
        assert np.all(ibi[before][1:] < ibi[before][:-1])  # accelerating
        assert np.all(pwa[before] > 0.97 * pwa0)  # amplitude not dropped yet
        # The acceleration starts about lead_beats before the onset: count the beats before the
        # onset whose interval is shorter than the one before (jitter here is < 1 ms).
        k = int(np.flatnonzero(t < a["at"])[-1])
        n_lead = 0
        while ibi[k - n_lead] < ibi[k - n_lead - 1] - 0.5:
            n_lead += 1
        assert abs(n_lead - a["lead_beats"]) <= 2, n_lead
        dip = (t > a["at"] + 4) & (t < a["at"] + a["duration_s"])
        assert np.median(pwa[dip]) == pytest.approx(pwa0 * (1 - a["pwa_drop"]), rel=0.05)


def test_finger_off_gives_near_zero_led_stimulus(clean: tuple[gen.GeneratedNight, Array]) -> None:
    night, ppg = clean
    i = slice(int(702 * CLEAN_FS), int(758 * CLEAN_FS))
    on = slice(int(600 * CLEAN_FS), int(690 * CLEAN_FS))
    for c in (0, 1):
        assert np.max(ppg[i, c]) < 0.01 * np.median(ppg[on, c])
    # The bare photodiode sees the room light (100 lx, bathroom) directly.
    assert np.median(ppg[i, 2]) == pytest.approx(100.0, rel=0.05)
    assert np.median(ppg[on, 2]) < 1.0
    b = _beats(night)
    off = (b["time_s"] > 700) & (b["time_s"] < 760)
    assert off.sum() > 30 and np.all(b["pwa_rel"][off] == 0)
    assert "finger_off,700.000,60.000" in night.paths["periods"].read_text().splitlines()


def test_ectopic_beats_are_premature_with_a_compensatory_pause(
        clean: tuple[gen.GeneratedNight, Array]) -> None:
    night, ppg = clean
    b = _beats(night)
    t_peak, depth = _pulses(ppg, CLEAN_FS)
    idx = np.flatnonzero(b["ectopic"])
    # Each listed time gets the beat due there (made premature): within a beat of the time.
    assert np.allclose(b["time_s"][idx], [200, 300, 600], atol=1.2)
    for j in idx:
        normal = np.median(b["ibi_ms"][j - 6:j - 1])
        assert b["ibi_ms"][j] < 0.8 * normal
        # Sinus rhythm continues: the premature and the next interval add up to two normal ones.
        assert b["ibi_ms"][j] + b["ibi_ms"][j + 1] == pytest.approx(2 * normal, rel=0.08)
        # A premature beat fills the ventricle less: a smaller pulse in the stimulus.
        k = int(np.argmin(np.abs(t_peak - b["time_s"][j] - 0.35)))
        assert depth[k] < 0.7 * np.nanmedian(depth[k - 6:k - 1])


def test_rsa_at_the_breathing_rate(clean: tuple[gen.GeneratedNight, Array],
                                   tmp_path: Path) -> None:
    def tachogram_psd(night: gen.GeneratedNight) -> tuple[Array, Array]:
        b = _beats(night)
        keep = (b["time_s"] > 100) & (b["time_s"] < 390) & ~b["ectopic"]
        keep &= ~np.roll(b["ectopic"], 1)
        t, ibi = b["time_s"][keep], b["ibi_ms"][keep]
        grid = np.arange(t[0], t[-1], 0.25)
        y = np.interp(grid, t, ibi)
        return signal.welch(y - y.mean(), fs=4.0, nperseg=512)

    night, _ppg = clean
    f, psd = tachogram_psd(night)
    resp_hz = night.scenario["person"]["resp_rate_bpm"] / 60.0
    assert abs(f[np.argmax(psd)] - resp_hz) < 0.02
    band = np.abs(f - resp_hz) < 0.03
    flat = gen.generate({**CLEAN, "person": {**CLEAN["person"], "rsa_bpm": 0}}, tmp_path, 50.0)
    _f, psd_flat = tachogram_psd(flat)
    assert psd[band].sum() > 5 * psd_flat[band].sum()  # the rest is beat-to-beat jitter


def test_spo2_is_encoded_in_the_ratio_of_ratios(clean: tuple[gen.GeneratedNight, Array]) -> None:
    night, ppg = clean
    # AC/DC of each channel: the pulsatile part of log(photocurrent) (the slow DC wander, the
    # same in both channels, is filtered out; it would pull R towards 1).
    sos = signal.butter(2, 0.4, btype="highpass", fs=CLEAN_FS, output="sos")
    seg = signal.sosfiltfilt(sos, np.log(ppg[:int(390 * CLEAN_FS), :2]), axis=0)
    seg = seg[int(100 * CLEAN_FS):]
    r = float(np.std(seg[:, 0]) / np.std(seg[:, 1]))
    assert gen.spo2_from_r(r) == pytest.approx(night.scenario["person"]["spo2_pct"], abs=0.5)
    assert gen.spo2_from_r(gen.r_from_spo2(97.0)) == pytest.approx(97.0)
    assert gen.r_from_spo2(110.0 - 25.0) == pytest.approx(1.0)  # SpO2 = 110 - 25 R


def test_motion_corrupts_only_its_window(clean: tuple[gen.GeneratedNight, Array]) -> None:
    _night, ppg = clean
    ir = ppg[:, 1]

    def spread(a_s: float, b_s: float) -> float:
        x = ir[int(a_s * CLEAN_FS):int(b_s * CLEAN_FS)]
        return float((np.percentile(x, 99) - np.percentile(x, 1)) / np.median(x))

    assert spread(802, 818) > 5 * spread(770, 790)
    assert spread(830, 850) < 2 * spread(770, 790)


# Replay of recordings ----------------------------------------------------------------------


def _recording(fs: float, seconds: float, dc: float, pi: float) -> tuple[Array, Array]:
    t = np.arange(int(seconds * fs)) / fs
    pulse = 0.5 + 0.5 * np.sin(2 * np.pi * 1.2 * t) ** 3  # 0..1, one per beat at 72 bpm
    return t, dc * (1.0 - pi * pulse)


def _acdc(x: Array) -> float:
    return float((np.percentile(x, 99) - np.percentile(x, 1)) / np.median(x))


@pytest.mark.parametrize(("fs_in", "fs_out"), [(125.0, 50.0), (1000.0, 100.0), (125.0, 400.0)])
def test_replay_keeps_ac_dc_of_a_photocurrent(tmp_path: Path, fs_in: float,
                                              fs_out: float) -> None:
    t, ir = _recording(fs_in, 60.0, 52000.0, 0.012)
    _t, red = _recording(fs_in, 60.0, 38000.0, 0.007)
    t = t + 17.0
    stim = gen.write_ppg_stimulus_from_recording(t, ir, red, tmp_path, fs_out)
    n = int(np.floor((t[-1] - t[0]) * fs_out + 1e-6)) + 1
    assert stim.n_samples == n and stim.fs_hz == fs_out and stim.t0_s == 17.0 and stim.had_dc
    assert stim.path == tmp_path / "stim" / "ppg.f32"
    assert stim.path.stat().st_size == n * 12
    out = gen.read_ppg_stimulus(stim.path).astype(np.float64)
    assert np.median(out[:, 1]) == pytest.approx(gen.REPLAY_IR_DC_NA_PER_MA, rel=0.01)
    assert stim.scale_na_per_unit == pytest.approx(1000.0 / np.median(ir), rel=0.01)
    assert _acdc(out[:, 1]) == pytest.approx(_acdc(ir), rel=0.03)
    assert _acdc(out[:, 0]) == pytest.approx(_acdc(red), rel=0.03)
    assert np.all(out[:, 2] == 0)
    # The waveform itself survives: the resampled input matches the output.
    ref = np.interp(np.arange(n) / fs_out + t[0], t, ir) * stim.scale_na_per_unit
    assert np.max(np.abs(out[5:-5, 1] - ref[5:-5])) < 0.1 * (1000 * 0.012)


def test_replay_low_passes_before_decimating(tmp_path: Path) -> None:
    t, ir = _recording(1000.0, 30.0, 50000.0, 0.01)
    tone = 50.0 * np.sin(2 * np.pi * 230.0 * t)  # aliases to 30 Hz at 100 Hz without a filter
    stim = gen.write_ppg_stimulus_from_recording(t, ir + tone, None, tmp_path, 100.0)
    out = gen.read_ppg_stimulus(stim.path)[:, 1].astype(np.float64)
    f, psd = signal.welch(out - out.mean(), fs=100.0, nperseg=1024)
    alias = psd[np.abs(f - 30.0) < 1.0].sum()
    pulse = psd[np.abs(f - 1.2) < 0.2].sum()
    assert alias < 1e-4 * pulse


def test_replay_synthesises_dc_for_a_band_passed_recording(tmp_path: Path) -> None:
    t, x = _recording(125.0, 60.0, 1.0, 1.0)
    x = 400.0 * (x - x.mean())  # band-passed, arbitrary units, pulse peaks downward here
    x = -x  # as in usual PPG plots: pulse peaks upward
    stim = gen.write_ppg_stimulus_from_recording(t, x, None, tmp_path, 50.0)
    assert not stim.had_dc
    out = gen.read_ppg_stimulus(stim.path).astype(np.float64)
    ir, red = out[:, 1], out[:, 0]
    assert np.median(ir) == pytest.approx(gen.REPLAY_IR_DC_NA_PER_MA, rel=0.01)
    assert np.median(red) == pytest.approx(gen.REPLAY_RED_DC_NA_PER_MA, rel=0.01)
    span = np.percentile(ir, 95) - np.percentile(ir, 5)
    assert span / np.median(ir) == pytest.approx(gen.REPLAY_PI_IR, rel=0.05)
    # Blood absorbs: an upward pulse in the recording lowers the photocurrent.
    ref = np.interp(np.arange(ir.size) / 50.0, t, x)
    assert np.corrcoef(ref, ir)[0, 1] < -0.99
    r = _acdc(red) / _acdc(ir)
    assert gen.spo2_from_r(r) == pytest.approx(gen.REPLAY_SPO2_PCT, abs=0.5)


def test_replay_synthesises_red_when_absent(tmp_path: Path) -> None:
    t, ir = _recording(125.0, 30.0, 40000.0, 0.02)
    stim = gen.write_ppg_stimulus_from_recording(t, ir, None, tmp_path, 50.0)
    assert stim.had_dc
    out = gen.read_ppg_stimulus(stim.path).astype(np.float64)
    assert np.median(out[:, 0]) == pytest.approx(gen.REPLAY_RED_DC_NA_PER_MA, rel=0.01)
    assert gen.spo2_from_r(_acdc(out[:, 0]) / _acdc(out[:, 1])) == pytest.approx(97.0, abs=0.5)


def test_replay_bridges_missing_samples(tmp_path: Path) -> None:
    t, ir = _recording(125.0, 20.0, 40000.0, 0.02)
    ir[500:510] = np.nan
    stim = gen.write_ppg_stimulus_from_recording(t, ir, None, tmp_path, 50.0)
    assert np.all(np.isfinite(gen.read_ppg_stimulus(stim.path)))


@pytest.mark.parametrize(("time_s", "fs_out", "match"), [
    (np.array([0.0, 0.008, 0.008, 0.024]), 50.0, "strictly increasing"),
    (np.array([0.0, 0.008, 0.004, 0.012]), 50.0, "strictly increasing"),
    (np.array([0.0, 0.008, np.nan, 0.024]), 50.0, "strictly increasing"),
    (np.arange(100) / 10.0, 50.0, "10.0 Hz: supported rates are 25 Hz to 2 kHz"),
    (np.arange(100) / 5000.0, 50.0, "5000.0 Hz"),
    (np.arange(100) / 125.0, 5.0, "fs_hz=5 is out of range"),
    (np.arange(100) / 125.0, 5000.0, "fs_hz=5000 is out of range"),
    (np.array([0.0]), 50.0, "same length"),
])
def test_replay_errors(tmp_path: Path, time_s: Array, fs_out: float, match: str) -> None:
    ir = 1000.0 + np.sin(np.arange(time_s.size))
    with pytest.raises(UserError, match=match):
        gen.write_ppg_stimulus_from_recording(time_s, ir, None, tmp_path, fs_out)
    assert not (tmp_path / "stim").exists()


def test_replay_column_length_errors(tmp_path: Path) -> None:
    t = np.arange(100) / 125.0
    with pytest.raises(UserError, match="same length"):
        gen.write_ppg_stimulus_from_recording(t, np.ones(99), None, tmp_path, 50.0)
    with pytest.raises(UserError, match="red column"):
        gen.write_ppg_stimulus_from_recording(t, np.ones(100), np.ones(90), tmp_path, 50.0)
    with pytest.raises(UserError, match="fewer than 2 numeric"):
        gen.write_ppg_stimulus_from_recording(t, np.full(100, np.nan), None, tmp_path, 50.0)


def test_clip_temperature_model():
    # finger in 600..6600 s (out 3000..3600), lights out at 1800 s; 32 degC + 1 degC after it
    sc = scen.validate({"format": 1, "name": "clip", "start": "2026-01-15T22:00",
                        "duration_s": 7200, "bedtime": 600, "lights_out": 1800, "wake": 6600,
                        "room": {"temp_c": 19.0},
                        "events": {"finger_off": [{"at": 3000, "duration_s": 600}]},
                        "person": {"finger_temp_c": 32.0, "finger_temp_rise_c": 1.0,
                                   "finger_temp_tau_min": 10.0},
                        "sensor": {"clip_tau_s": 60.0}})
    t = np.arange(0.0, 7201.0, 10.0)
    skin = gen.finger_temp_c(sc, t)
    assert skin[t == 1800][0] == pytest.approx(32.0)
    assert skin[t == 2400][0] == pytest.approx(32.0 + 1.0 - math.exp(-1.0))
    clip = gen.clip_temp_c(sc, t)
    at = dict(zip(t.tolist(), clip.tolist(), strict=True))
    assert at[0.0] == pytest.approx(19.0) and at[590.0] == pytest.approx(19.0)  # finger out
    assert at[1790.0] == pytest.approx(32.0, abs=0.01)  # 20 clip time constants after bedtime
    assert at[2990.0] == pytest.approx(skin[t == 2990][0], abs=0.05)  # follows the rise
    assert at[3590.0] == pytest.approx(19.0, abs=0.01)  # out: the room
    assert 19.0 < at[3620.0] < at[3700.0] < 32.0  # back in: warming with the clip's lag
    assert at[7200.0] == pytest.approx(19.0, abs=0.01)  # after wake
    assert np.all(np.diff(clip[(t >= 900) & (t < 2990)]) >= -1e-9)  # no dip at lights out
