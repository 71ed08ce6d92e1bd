"""Scenario -> stimulus files (PPG photocurrents, room environment) and a night's ground truth."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from nsdev import config as device_config
from numpy.typing import NDArray
from scipy import signal

from nightstand.errors import UserError
from nightstand.sim import scenario as scen
from nightstand.sim import stream

Array = NDArray[np.float64]

PPG_COLUMNS = ("red_na_per_ma", "ir_na_per_ma", "ambient_na")
ENV_COLUMNS = ("t_s", "temp_c", "rh_pct", "pressure_hpa", "gas_ohm", "lux", "cct_k")
ENV_PERIOD_S = 10.0
PROCESS_HZ = 8.0  # rate of the slow physiological processes (HR, respiration, PWA)

# Empirical, uncalibrated SpO2 curve shared with the firmware: SpO2 = A - B * R.
SPO2_A = 110.0
SPO2_B = 25.0

# Pulse template: two Gaussians (systolic + diastolic wave) after the pulse foot, their positions
# and widths scaled with sqrt(cycle length in s): foot-to-peak ~0.16 s and diastolic wave
# ~0.38 s after the foot at 60 bpm, as in typical fingertip PPG contours (model assumption).
_SYS_MU_S, _SYS_SD_S = 0.16, 0.06
_DIA_MU_S, _DIA_SD_S = 0.38, 0.11
_TEMPLATE_SPAN_S = 1.1  # rendered length after the foot (covers 4 SD of the diastolic wave)

# Arousal time course (see docs/simulation-scenarios.md).
_HR_PEAK_AFTER_ONSET_S = 4.0
_HR_RECOVERY_S = 8.0
_PWA_FALL_S = 3.0
_PWA_RECOVERY_S = 6.0


def r_from_spo2(spo2_pct: float) -> float:
    """Ratio of ratios for a given SpO2 on the shared empirical curve."""
    return (SPO2_A - spo2_pct) / SPO2_B


def spo2_from_r(r: float) -> float:
    """SpO2 in percent from the ratio of ratios R = (AC_red/DC_red)/(AC_ir/DC_ir)."""
    return SPO2_A - SPO2_B * r


@dataclass(frozen=True)
class TruthSummary:
    """Night-level ground truth (times in s from the simulation start)."""

    n_beats: int
    n_ectopic: int
    n_arousals: int
    contact_s: float
    arousal_index_per_h: float  # arousals per hour of sensor contact
    motion_s: float
    finger_off_s: float
    hr_evening_bpm: float  # mean HR from bedtime to lights-out (nan if that window is empty)
    hr_sleep_bpm: float  # mean HR in stable sleep (lights-out + 30 min to wake, no events)
    rmssd_sleep_ms: float  # RMSSD of normal-to-normal intervals in the same window
    spo2_pct: float


@dataclass(frozen=True)
class GeneratedNight:
    """What generate() wrote and when the night happens."""

    start_unix_s: float  # UTC seconds since 1970 of sample 0
    duration_s: float
    utc_offset_s: int  # local offset at the start
    utc_offset_changes: list[tuple[float, int]]  # (t_s from start, new offset) for DST changes
    fs_hz: float
    n_samples: int
    paths: dict[str, Path]  # ppg, env, meta, beats, arousals, periods, scenario
    button_presses_s: list[float]
    truth: TruthSummary
    scenario: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class ReplayStimulus:
    """What write_ppg_stimulus_from_recording() wrote."""

    path: Path
    n_samples: int
    fs_hz: float
    t0_s: float  # recording time of sample 0
    had_dc: bool  # True: recording scaled as a photocurrent; False: DC synthesised
    scale_na_per_unit: float  # nA/mA per input unit (DC case) or per unit of AC (no-DC case)


def pulse_shape(tau_s: Array, cycle_s: Array | float, dicrotic_ratio: float) -> Array:
    """Normalised pulse (systolic peak ~1) at `tau_s` after the pulse foot."""
    k = np.sqrt(np.clip(cycle_s, 0.3, 1.5))
    sys = np.exp(-0.5 * ((tau_s - _SYS_MU_S * k) / (_SYS_SD_S * k)) ** 2)
    dia = np.exp(-0.5 * ((tau_s - _DIA_MU_S * k) / (_DIA_SD_S * k)) ** 2)
    return np.asarray(sys + dicrotic_ratio * dia, dtype=np.float64)


def pulse_peak_delay_s(cycle_s: float, pat_ms: float, dicrotic_ratio: float) -> float:
    """Delay from the cardiac beat time (truth) to the systolic peak of an isolated pulse."""
    tau = np.arange(0.0, 0.6, 1e-5)
    shape = pulse_shape(tau, cycle_s, dicrotic_ratio)
    return float(pat_ms / 1000.0 + tau[int(np.argmax(shape))])


def _ou(rng: np.random.Generator, n: int, dt_s: float, sd: float, tau_s: float) -> Array:
    """Stationary Ornstein-Uhlenbeck samples (vectorised AR(1))."""
    if sd <= 0 or n == 0:
        return np.zeros(n)
    a = math.exp(-dt_s / tau_s)
    w = rng.standard_normal(n) * sd * math.sqrt(1.0 - a * a)
    x0 = rng.standard_normal() * sd
    out, _ = signal.lfilter([1.0], [1.0, -a], w, zi=[a * x0])
    return np.asarray(out, dtype=np.float64)


def _raised(x: Array) -> Array:
    """0 -> 1 raised cosine for x in [0, 1] (clipped outside)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _window(t: Array, a: float, b: float, edge_s: float) -> Array:
    """Smooth 0/1 window over [a, b) with raised-cosine edges of edge_s (t sorted ascending)."""
    out = np.zeros(t.shape)
    i, j = np.searchsorted(t, [a, b + max(edge_s, 0.0)])
    seg = t[i:j]
    if edge_s <= 0:
        out[i:j] = (seg < b).astype(np.float64)
    else:
        out[i:j] = _raised((seg - a) / edge_s) * (1.0 - _raised((seg - b) / edge_s))
    return out


def series_at(points: list[dict[str, float]], t: Array) -> Array:
    """Linear interpolation of [{"at", "value"}] points, held constant outside."""
    xs = np.array([p["at"] for p in points], dtype=np.float64)
    ys = np.array([p["value"] for p in points], dtype=np.float64)
    return np.interp(t, xs, ys)


def light_at(segments: list[dict[str, Any]], t: Array) -> tuple[Array, Array]:
    """(lux, cct_k) of the room light at times t: steps, or linear ramps of ramp_s."""
    lux = np.full(t.shape, float(segments[0]["lux"]))
    cct = np.full(t.shape, float(segments[0]["cct_k"]))
    for seg in segments[1:]:
        if seg["ramp_s"] > 0:
            w = np.clip((t - seg["at"]) / seg["ramp_s"], 0.0, 1.0)
        else:
            w = (t >= seg["at"]).astype(np.float64)
        lux = lux + (seg["lux"] - lux) * w
        cct = cct + (seg["cct_k"] - cct) * w
    return lux, cct


def _contact(sc: dict[str, Any], t: Array, edge_s: float) -> Array:
    """1 while the finger is in the sensor (bedtime..wake minus finger_off periods)."""
    c = _window(t, sc["bedtime"], sc["wake"], edge_s)
    for p in sc["events"]["finger_off"]:
        c = c * (1.0 - _window(t, p["at"], p["at"] + p["duration_s"], edge_s))
    return c


def finger_temp_c(sc: dict[str, Any], t: Array) -> Array:
    """Finger skin temperature: `finger_temp_c` in bed, rising by `finger_temp_rise_c` after
    lights-out with time constant `finger_temp_tau_min` (distal vasodilation at sleep onset:
    Kraeuchi et al. 1999, Nature 401:36; the size and speed are model assumptions)."""
    p = sc["person"]
    after = np.clip(t - sc["lights_out"], 0.0, None) / (p["finger_temp_tau_min"] * 60.0)
    return p["finger_temp_c"] + p["finger_temp_rise_c"] * (1.0 - np.exp(-after))


def clip_temp_c(sc: dict[str, Any], t: Array) -> Array:
    """The MAX30102 die's temperature in the clip on a regular grid t (s): the finger's while
    the finger is in, the room's while it is out, each reached with the clip's first-order lag
    `sensor.clip_tau_s` (MODEL: a small plastic clip, minutes). Starts at room temperature."""
    room = series_at(sc["room"]["temp_c"], t)
    c = _contact(sc, t, 1.0)
    target = c * finger_temp_c(sc, t) + (1.0 - c) * room
    tau = sc["sensor"]["clip_tau_s"]
    if tau <= 0 or t.size < 2:
        return target
    a = 1.0 - math.exp(-float(t[1] - t[0]) / tau)
    y, _ = signal.lfilter([a], [1.0, a - 1.0], target, zi=[(1.0 - a) * target[0]])
    return np.asarray(y, dtype=np.float64)


def _hr_process(sc: dict[str, Any], tg: Array, rng: np.random.Generator,
                resp_phase: Array) -> tuple[Array, Array]:
    """(HR in bpm, baseline HR without RSA/LF/arousals) on the process grid."""
    p = sc["person"]
    lo, wake = sc["lights_out"], sc["wake"]
    tau_s = p["hr_decline_tau_min"] * 60.0
    evening = p["hr_evening_bpm"] + p["hr_excess_bpm"]
    base = np.where(tg < lo, evening,
                    p["hr_sleep_bpm"] + (evening - p["hr_sleep_bpm"])
                    * np.exp(-np.clip(tg - lo, 0.0, None) / tau_s))
    at_wake = p["hr_sleep_bpm"] + (evening - p["hr_sleep_bpm"]) * math.exp(
        -max(wake - lo, 0.0) / tau_s)
    awake = p["hr_evening_bpm"] + 8.0
    base = base + np.where(tg >= wake, (awake - at_wake)
                           * (1.0 - np.exp(-np.clip(tg - wake, 0.0, None) / 180.0)), 0.0)
    dt_s = float(tg[1] - tg[0])
    base = base + _ou(rng, tg.size, dt_s, p["hr_drift_sd_bpm"], p["hr_drift_tau_min"] * 60.0)
    for d in sc["events"]["hr_drift"]:
        x = (tg - d["at"]) / d["duration_s"]
        base = base + np.where((x >= 0) & (x <= 1),
                               d["delta_bpm"] * 0.5 * (1 - np.cos(2 * np.pi * x)), 0.0)
    lf_phase = rng.uniform(0, 2 * np.pi)
    hr = (base + 0.5 * p["rsa_bpm"] * np.sin(resp_phase)
          + p["lf_bpm"] * np.sin(2 * np.pi * 0.095 * tg + lf_phase))
    for a in sc["events"]["arousals"]:
        base_at = float(np.interp(a["at"], tg, base))
        lead_s = a["lead_beats"] * 60.0 / max(base_at, 30.0)
        t0 = a["at"] - lead_s
        tp = a["at"] + _HR_PEAK_AFTER_ONSET_S
        te = a["at"] + a["duration_s"] + _HR_RECOVERY_S
        rise = _raised((tg - t0) / (tp - t0))
        fall = 1.0 - _raised((tg - tp) / (te - tp))
        hr = hr + a["hr_surge_bpm"] * np.where(tg < tp, rise, fall)
    for c in sc["events"].get("hr_surges", []):  # confounder: HR rise, no vasoconstriction
        tp = c["at"] + _HR_PEAK_AFTER_ONSET_S
        te = c["at"] + c["duration_s"] + _HR_RECOVERY_S
        rise = _raised((tg - c["at"]) / (tp - c["at"]))
        fall = 1.0 - _raised((tg - tp) / (te - tp))
        hr = hr + c["rise_bpm"] * np.where(tg < tp, rise, fall)
    return np.clip(hr, 25.0, 220.0), base


def _pwa_process(sc: dict[str, Any], tg: Array, rng: np.random.Generator,
                 resp_phase: Array) -> Array:
    """Relative pulse amplitude (1 = the person's evening baseline) on the process grid."""
    p = sc["person"]
    lo = sc["lights_out"]
    tau_s = p["hr_decline_tau_min"] * 60.0
    vaso = 1.0 + p["sleep_vasodilation"] * (1.0 - np.exp(-np.clip(tg - lo, 0.0, None) / tau_s))
    pwa = vaso * (1.0 + p["pwa_resp_mod"] * np.cos(resp_phase))
    pwa = pwa * np.exp(_ou(rng, tg.size, float(tg[1] - tg[0]), 0.04, 300.0))
    for a in sc["events"]["arousals"]:
        down = _raised((tg - a["at"]) / _PWA_FALL_S)
        up = _raised((tg - a["at"] - a["duration_s"]) / _PWA_RECOVERY_S)
        pwa = pwa * (1.0 - a["pwa_drop"] * down * (1.0 - up))
    for c in sc["events"].get("pwa_dips", []):  # confounder: vasomotion/posture, HR unchanged
        down = _raised((tg - c["at"]) / _PWA_FALL_S)
        up = _raised((tg - c["at"] - c["duration_s"]) / _PWA_RECOVERY_S)
        pwa = pwa * (1.0 - c["drop"] * down * (1.0 - up))
    return np.asarray(pwa, dtype=np.float64)


def _rmssd_jitter_ms(p: dict[str, Any]) -> float:
    """SD of white beat-time jitter so that RSA + jitter give the target RMSSD in sleep.

    RSA at HR h and breathing f: IBI swing amplitude A = 60000 * (rsa/2) / h**2 ms, whose
    successive differences have RMS sqrt(2) * A * sin(pi * f * IBI). White jitter of SD s on beat
    times gives second differences of SD sqrt(6) * s.
    """
    h = p["hr_sleep_bpm"]
    ibi_s = 60.0 / h
    amp_ms = 60000.0 * 0.5 * p["rsa_bpm"] / (h * h)
    rsa_rmssd = math.sqrt(2.0) * amp_ms * abs(math.sin(math.pi * p["resp_rate_bpm"] / 60 * ibi_s))
    target = p["rmssd_ms"]
    return math.sqrt(max(target * target - rsa_rmssd * rsa_rmssd, (0.2 * target) ** 2) / 6.0)


def _beats(sc: dict[str, Any], tg: Array, hr: Array,
           rng: np.random.Generator) -> tuple[Array, NDArray[np.bool_]]:
    """Beat times (s) by integral pulse frequency modulation, jitter and ectopic beats."""
    p = sc["person"]
    dt_s = float(tg[1] - tg[0])
    phase = np.concatenate([[0.0], np.cumsum(0.5 * (hr[1:] + hr[:-1]) / 60.0 * dt_s)])
    phase = phase + rng.uniform(0.0, 1.0)
    k = np.arange(math.ceil(phase[0]), math.floor(phase[-1]) + 1, dtype=np.float64)
    t = np.interp(k, phase, tg)
    jitter_s = _rmssd_jitter_ms(p) / 1000.0
    if t.size > 2:
        ibi_min = np.minimum(np.diff(t, prepend=t[0] - 1.0), np.diff(t, append=t[-1] + 1.0))
        t = t + np.clip(rng.standard_normal(t.size) * jitter_s, -0.3 * ibi_min, 0.3 * ibi_min)
    ectopic = np.zeros(t.size, dtype=bool)
    ect = sc["events"]["ectopic"]
    chosen: list[int] = []
    if t.size > 6:
        n_rand = int(rng.poisson(ect["rate_per_hour"] * sc["duration_s"] / 3600.0))
        chosen.extend(int(i) for i in rng.integers(2, t.size - 2, size=n_rand))
        chosen.extend(int(np.clip(np.searchsorted(t, x), 2, t.size - 3)) for x in ect["times"])
    for j in sorted(set(chosen)):
        if ectopic[j - 1] or ectopic[j + 1]:
            continue
        prem = float(np.clip(ect["prematurity"] + rng.normal(0.0, 0.04), 0.3, 0.95))
        t[j] = t[j - 1] + prem * (t[j] - t[j - 1])
        ectopic[j] = True
    return t, ectopic


def _normal_streams(rng: np.random.Generator, lengths: list[int],
                    chunk: int) -> list[np.random.Generator]:
    """One generator per block of `lengths` normal draws that `rng` would make one after the
    other, each at its block's start, so the blocks can be drawn side by side in chunks and
    still get the numbers of one whole draw each (Generator.standard_normal is the same drawn
    in pieces). Leaves `rng` after the last block."""
    out = []
    for n in lengths:
        g = np.random.Generator(type(rng.bit_generator)())
        g.bit_generator.state = rng.bit_generator.state
        out.append(g)
        for a in range(0, n, chunk):
            rng.standard_normal(min(chunk, n - a))
    return out


class _Motion:
    """Multiplicative coupling changes (IR, red) from motion: broadband, large, random. Made
    chunk by chunk (band-pass state and the slow slip carried over); the noise's scale comes
    from a first pass over the same noise, so any chunking gives the same numbers."""

    def __init__(self, sc: dict[str, Any], n: int, fs_hz: float, rng: np.random.Generator,
                 chunk: int) -> None:
        self.motions, self.fs_hz, self.chunk = sc["events"]["motion"], fs_hz, chunk
        self.lo_i, self.hi_i = self._span(n)
        n_m = self.hi_i - self.lo_i
        hi_hz = min(4.0, 0.45 * fs_hz)
        self.sos = signal.butter(2, [0.2, hi_hz], btype="bandpass", fs=fs_hz, output="sos")
        if not self.motions:
            return
        common, own, steps = _normal_streams(rng, [n_m] * 3, chunk)
        self.rng_common, self.rng_own, self.rng_steps = common, own, steps
        # np.std of the band-passed common noise: two passes (mean, then squared deviations)
        # over the same draws, in blocks of CHUNK whatever `chunk` is.
        sums = [0.0, 0.0]
        for k in range(2):
            mean = sums[0] / max(n_m, 1)
            probe = np.random.Generator(type(rng.bit_generator)())
            probe.bit_generator.state = common.bit_generator.state
            z = np.zeros((self.sos.shape[0], 2))
            for a in range(0, n_m, stream.CHUNK):
                y, z = signal.sosfilt(self.sos, probe.standard_normal(
                    min(stream.CHUNK, n_m - a)), zi=z)
                sums[k] += float(np.sum(y if k == 0 else (y - mean) ** 2))
        self.scale = 1.0 / max(math.sqrt(sums[1] / max(n_m, 1)), 1e-12)
        self.z_common = self.z_own = np.zeros((self.sos.shape[0], 2))
        self.step = 0.0
        self.at = self.lo_i  # next sample index to make

    def _env(self, ts: Array) -> Array:
        env = np.zeros(ts.size)
        for m in self.motions:
            env = env + m["intensity"] * _window(ts, m["at"], m["at"] + m["duration_s"], 0.3)
        return env

    def _span(self, n: int) -> tuple[int, int]:
        """[first, last + 1) of the samples where the motion envelope is above 0."""
        if not self.motions:
            return 0, 0
        lo, hi = n, 0
        for m in self.motions:
            a = max(0, math.floor(m["at"] * self.fs_hz) - 1)
            b = min(n, math.ceil((m["at"] + m["duration_s"] + 0.3) * self.fs_hz) + 2)
            for c in range(a, b, self.chunk):
                ts = np.arange(c, min(b, c + self.chunk), dtype=np.float64) / self.fs_hz
                idx = np.flatnonzero(self._env(ts) > 0)
                if idx.size:
                    lo, hi = min(lo, c + int(idx[0])), max(hi, c + int(idx[-1]) + 1)
        return (lo, hi) if hi > lo else (0, 0)

    def factors(self, a: int, ts: Array) -> tuple[Array, Array]:
        """(f_ir, f_red) for samples a .. a + len(ts) (called in order)."""
        f_ir, f_red = np.ones(ts.size), np.ones(ts.size)
        lo, hi = max(a, self.lo_i), min(a + ts.size, self.hi_i)
        if hi <= lo:
            return f_ir, f_red
        assert lo == self.at, "motion chunks must come in order"
        k = hi - lo
        common, self.z_common = signal.sosfilt(self.sos, self.rng_common.standard_normal(k),
                                               zi=self.z_common)
        own, self.z_own = signal.sosfilt(self.sos, self.rng_own.standard_normal(k),
                                         zi=self.z_own)
        common, own = common * self.scale, own * self.scale
        # slow sensor slip: a running sum carried over chunks
        steps = np.cumsum(np.concatenate([[self.step], self.rng_steps.standard_normal(k) * 0.01]))
        steps = steps[1:]
        self.step = float(steps[-1])
        self.at = hi
        m_ir = 0.25 * (common + steps)
        m_red = 0.25 * (0.85 * common + 0.53 * own + steps)
        env = self._env(ts[lo - a:hi - a])
        f_ir[lo - a:hi - a] = np.clip(1.0 + env * m_ir, 0.05, None)
        f_red[lo - a:hi - a] = np.clip(1.0 + env * m_red, 0.05, None)
        return f_ir, f_red


def _render_pulses(beat_t: Array, cycle_s: Array, amp: Array, pat_s: float, dicrotic: float,
                   a: int, b: int, fs_hz: float) -> Array:
    """Sum of pulse templates (amplitude `amp`) on the samples a .. b - 1 of the grid
    t = i / fs_hz (beats in time order; each sample sums its pulses in beat order)."""
    span = int(math.ceil(_TEMPLATE_SPAN_S * fs_hz)) + 1
    foot = beat_t + pat_s
    first_all = np.floor(foot * fs_hz).astype(np.int64)
    j0 = int(np.searchsorted(first_all, a - span, side="right"))
    j1 = int(np.searchsorted(first_all, b, side="left"))
    foot, first = foot[j0:j1], first_all[j0:j1]
    idx = first[:, None] + np.arange(span, dtype=np.int64)[None, :]
    tau = idx / fs_hz - foot[:, None]
    vals = amp[j0:j1, None] * pulse_shape(tau, cycle_s[j0:j1, None], dicrotic)
    ok = (idx >= a) & (idx < b)
    return np.bincount(idx[ok] - a, weights=vals[ok], minlength=b - a)[:b - a]


def _write_csv(path: Path, header: str, rows: list[str]) -> None:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")


def generate(scenario: dict[str, Any], out_dir: Path,
             fs_hz: float = float(device_config.PPG_RATE_HZ), *,
             chunk: int = stream.CHUNK) -> GeneratedNight:
    """Write out_dir/stim/{ppg.f32, env.f32, clip_temp.f32, meta.json} and out_dir/truth/* for
    a scenario.

    The slow processes (8 Hz) and the beats are made for the whole night; the sample-rate
    signal is made and written `chunk` samples at a time (filters and running sums carried
    over, each noise drawn from its own stream), so its memory does not grow with the night
    and any chunking gives the same file (tests/host/sim/test_generate.py)."""
    if not 10.0 <= fs_hz <= 4000.0:
        raise UserError(f"generate: fs_hz={fs_hz:g} is out of range: use 10 to 4000 Hz")
    sc = scen.validate(scenario, str(scenario.get("name", "<dict>")))
    p, sensor = sc["person"], sc["sensor"]
    rng = np.random.default_rng([sc["seed"], 1])
    duration_s = sc["duration_s"]
    n = int(round(duration_s * fs_hz))

    # Slow processes on a coarse grid, extended so beats and pulses cover the whole night.
    tg = np.arange(-2.0, duration_s + 3.0, 1.0 / PROCESS_HZ)
    resp_bpm = np.clip(p["resp_rate_bpm"] + _ou(rng, tg.size, 1.0 / PROCESS_HZ,
                                                 p["resp_rate_sd_bpm"], 300.0), 2.0, 45.0)
    resp_phase = 2 * np.pi * np.cumsum(resp_bpm / 60.0 / PROCESS_HZ) + rng.uniform(0, 2 * np.pi)
    hr, _base = _hr_process(sc, tg, rng, resp_phase)
    pwa_g = _pwa_process(sc, tg, rng, resp_phase)
    beat_t, ectopic = _beats(sc, tg, hr, rng)

    cycle = np.diff(beat_t, append=beat_t[-1] + 60.0 / float(hr[-1]))
    amp = np.interp(beat_t, tg, pwa_g)
    amp[ectopic] *= sc["events"]["ectopic"]["amplitude"]
    after = np.flatnonzero(ectopic) + 1
    amp[after[after < amp.size]] *= 1.15  # post-extrasystolic potentiation

    pi_ir = p["perfusion_index_pct"] / 100.0
    pi_red = pi_ir * r_from_spo2(p["spo2_pct"])
    slow_g = _ou(rng, tg.size, 1.0 / PROCESS_HZ, 0.01, 600.0)
    motion = _Motion(sc, n, fs_hz, rng, chunk)
    # The sample-rate noise: five whole-night draws, made side by side chunk by chunk.
    g_off_ir, g_noise_ir, g_off_red, g_noise_red, g_amb = _normal_streams(rng, [n] * 5, chunk)
    noise_sd = sensor["noise_na_per_ma"]
    off = sensor["off_stim_na_per_ma"]

    out_dir = Path(out_dir)
    stim, truth = out_dir / "stim", out_dir / "truth"
    try:
        stim.mkdir(parents=True, exist_ok=True)
        truth.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"generate: cannot create {out_dir} ({exc.strerror})") from None
    paths = {"ppg": stim / "ppg.f32", "env": stim / "env.f32", "meta": stim / "meta.json",
             "clip_temp": stim / "clip_temp.f32",
             "beats": truth / "beats.csv", "arousals": truth / "arousals.csv",
             "periods": truth / "periods.csv", "scenario": truth / "scenario.json"}
    contact_n = 0
    with open(paths["ppg"], "wb") as ppg_file:
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            k = b - a
            ts = np.arange(a, b, dtype=np.float64) / fs_hz
            pulses = _render_pulses(beat_t, cycle, amp, p["pat_ms"] / 1000.0,
                                    p["dicrotic_ratio"], a, b, fs_hz)
            resp_s = np.sin(np.interp(ts, tg, resp_phase))
            wander = 1.0 + p["baseline_resp_mod"] * pi_ir * resp_s
            slow = np.exp(np.interp(ts, tg, slow_g))
            f_ir, f_red = motion.factors(a, ts)
            contact = _contact(sc, ts, 1.0)
            contact_n += int(np.sum(contact > 0.5))
            out = np.empty((k, 3), dtype="<f4")
            finger_ir = p["ir_dc_na_per_ma"] * wander * slow * f_ir * (1.0 - pi_ir * pulses)
            off_ir = off * (1.0 + 0.05 * g_off_ir.standard_normal(k))
            out[:, 1] = (contact * finger_ir + (1.0 - contact) * off_ir
                         + g_noise_ir.standard_normal(k) * noise_sd)
            finger_red = p["red_dc_na_per_ma"] * wander * slow * f_red * (1.0 - pi_red * pulses)
            off_red = 0.8 * off * (1.0 + 0.05 * g_off_red.standard_normal(k))
            out[:, 0] = (contact * finger_red + (1.0 - contact) * off_red
                         + g_noise_red.standard_normal(k) * noise_sd)
            lux, _cct = light_at(sc["room"]["light"], ts)
            coupling = contact * sensor["ambient_coupling_on"] + (1 - contact) * sensor[
                "ambient_coupling_off"]
            out[:, 2] = np.clip(lux * coupling + g_amb.standard_normal(k)
                                * sensor["ambient_noise_na"], 0.0, None)
            out.tofile(ppg_file)

    t_env = np.arange(0.0, duration_s + 1e-9, ENV_PERIOD_S)
    room = sc["room"]
    lux_e, cct_e = light_at(room["light"], t_env)
    env = np.column_stack([
        t_env, series_at(room["temp_c"], t_env), series_at(room["rh_pct"], t_env),
        series_at(room["pressure_hpa"], t_env), series_at(room["gas_ohm"], t_env), lux_e, cct_e,
    ]).astype("<f4")
    env.tofile(paths["env"])
    clip_temp_c(sc, t_env).astype("<f4").tofile(paths["clip_temp"])

    start_unix = scen.start_unix_s(sc)
    changes = [(float(c["at"]), int(c["utc_offset_s"])) for c in sc["utc_offset_changes"]]
    meta = {
        "fs_hz": fs_hz, "n_samples": n, "start_unix_s": start_unix,
        "utc_offset_s": sc["utc_offset_s"], "utc_offset_changes": changes,
        "ppg": {"file": "ppg.f32", "dtype": "<f4", "columns": list(PPG_COLUMNS)},
        "env": {"file": "env.f32", "dtype": "<f4", "columns": list(ENV_COLUMNS),
                "period_s": ENV_PERIOD_S, "n_rows": int(t_env.size)},
        "clip_temp": {"file": "clip_temp.f32", "dtype": "<f4", "unit": "degC",
                      "period_s": ENV_PERIOD_S, "n_rows": int(t_env.size)},
        "spo2_curve": {"a": SPO2_A, "b": SPO2_B},
    }
    paths["meta"].write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")

    # Ground truth.
    keep = (beat_t >= 0.0) & (beat_t < duration_s)
    bt, kinds = beat_t[keep], ectopic[keep]
    ibi_ms = np.diff(beat_t, prepend=beat_t[0] - 60.0 / float(hr[0]))[keep] * 1000.0
    in_contact = _contact(sc, bt, 0.0) > 0.5
    pwa_rel = np.where(in_contact, amp[keep], 0.0)
    _write_csv(paths["beats"], "time_s,ibi_ms,pwa_rel,kind", [
        f"{t:.4f},{i:.1f},{a:.4f},{'ectopic' if k else 'normal'}"
        for t, i, a, k in zip(bt.tolist(), ibi_ms.tolist(), pwa_rel.tolist(), kinds.tolist(),
                              strict=True)])
    ev = sc["events"]
    _write_csv(paths["arousals"], "onset_s,duration_s,hr_surge_bpm,pwa_drop", [
        f"{a['at']:.3f},{a['duration_s']:.3f},{a['hr_surge_bpm']:.3f},{a['pwa_drop']:.4f}"
        for a in ev["arousals"]])
    periods: list[tuple[str, float, float]] = [
        ("motion", m["at"], m["duration_s"]) for m in ev["motion"]]
    periods += [("finger_off", f["at"], f["duration_s"]) for f in ev["finger_off"]]
    if sc["bedtime"] > 0:
        periods.append(("finger_off", 0.0, sc["bedtime"]))
    if sc["wake"] < duration_s:
        periods.append(("finger_off", sc["wake"], duration_s - sc["wake"]))
    periods.sort(key=lambda x: (x[1], x[0]))
    _write_csv(paths["periods"], "kind,start_s,duration_s",
               [f"{k},{a:.3f},{d:.3f}" for k, a, d in periods])
    paths["scenario"].write_text(json.dumps(sc, indent=1) + "\n", encoding="utf-8")

    summary = _summary(sc, bt, ibi_ms, kinds, in_contact, n, contact_n, fs_hz)
    return GeneratedNight(
        start_unix_s=start_unix, duration_s=duration_s, utc_offset_s=sc["utc_offset_s"],
        utc_offset_changes=changes, fs_hz=fs_hz, n_samples=n, paths=paths,
        button_presses_s=list(sc["button_presses"]), truth=summary, scenario=sc)


def _summary(sc: dict[str, Any], bt: Array, ibi_ms: Array, ectopic: NDArray[np.bool_],
             in_contact: NDArray[np.bool_], n: int, contact_n: int,
             fs_hz: float) -> TruthSummary:
    ev = sc["events"]
    contact_s = float(contact_n) / fs_hz
    # Stable sleep: lights-out + 30 min .. wake, away from arousals, motion and ectopic beats.
    quiet = (bt >= sc["lights_out"] + 1800.0) & (bt < sc["wake"]) & in_contact
    for a in ev["arousals"]:
        quiet &= ~((bt > a["at"] - 20.0) & (bt < a["at"] + a["duration_s"] + 20.0))
    for m in ev["motion"]:
        quiet &= ~((bt > m["at"] - 5.0) & (bt < m["at"] + m["duration_s"] + 5.0))
    for d in ev["hr_drift"]:
        quiet &= ~((bt >= d["at"]) & (bt < d["at"] + d["duration_s"]))
    for c in ev.get("hr_surges", []):
        quiet &= ~((bt > c["at"] - 5.0) & (bt < c["at"] + c["duration_s"] + 20.0))
    near_ect = ectopic | np.roll(ectopic, 1) | np.roll(ectopic, 2)
    nn = quiet & ~near_ect
    hr_sleep = float(np.mean(60000.0 / ibi_ms[nn])) if nn.any() else float("nan")
    pair = nn[1:] & nn[:-1]
    diffs = np.diff(ibi_ms)[pair]
    rmssd = float(np.sqrt(np.mean(diffs * diffs))) if diffs.size else float("nan")
    eve = (bt >= sc["bedtime"]) & (bt < sc["lights_out"]) & in_contact & ~near_ect
    hr_eve = float(np.mean(60000.0 / ibi_ms[eve])) if eve.any() else float("nan")
    motion_s = float(sum(m["duration_s"] for m in ev["motion"]))
    return TruthSummary(
        n_beats=int(bt.size), n_ectopic=int(np.sum(ectopic)), n_arousals=len(ev["arousals"]),
        contact_s=contact_s,
        arousal_index_per_h=len(ev["arousals"]) / (contact_s / 3600.0) if contact_s else 0.0,
        motion_s=motion_s, finger_off_s=float(n / fs_hz - contact_s),
        hr_evening_bpm=hr_eve, hr_sleep_bpm=hr_sleep, rmssd_sleep_ms=rmssd,
        spo2_pct=sc["person"]["spo2_pct"])


def read_ppg_stimulus(path: Path) -> NDArray[np.float32]:
    """The (n, 3) float32 array of a ppg.f32 file: red, IR (nA/mA) and ambient (nA)."""
    data = np.fromfile(path, dtype="<f4")
    if data.size % 3:
        raise UserError(f"{path}: size is not a multiple of 12 bytes: not a ppg.f32 stimulus")
    return data.reshape(-1, 3)


def read_env_stimulus(path: Path) -> NDArray[np.float32]:
    """The (n, 7) float32 array of an env.f32 file (columns ENV_COLUMNS)."""
    data = np.fromfile(path, dtype="<f4")
    if data.size % 7:
        raise UserError(f"{path}: size is not a multiple of 28 bytes: not an env.f32 stimulus")
    return data.reshape(-1, 7)


# Replay of recordings ---------------------------------------------------------------------

REPLAY_IR_DC_NA_PER_MA = 1000.0
REPLAY_RED_DC_NA_PER_MA = 800.0
REPLAY_PI_IR = 0.015  # AC/DC given to band-passed recordings that carry no DC
REPLAY_SPO2_PCT = 97.0  # SpO2 encoded when red is absent or has no DC

# A recording in blocks of rows: (time_s, ir, red or None), each block's columns equally long.
RecordingBlock = tuple[Array, Array, Array | None]


def write_ppg_stimulus_from_recording(time_s: Array, ir: Array, red: Array | None,
                                      out_dir: Path, fs_hz: float,
                                      chunk: int = stream.CHUNK) -> ReplayStimulus:
    """write_ppg_stimulus() for a recording held in arrays."""
    t = np.asarray(time_s, dtype=np.float64)
    x_ir = np.asarray(ir, dtype=np.float64)
    if t.ndim != 1 or t.size != x_ir.size or t.size < 2:
        raise UserError("replay: time_s and ir must be 1-D columns of the same length (>= 2)")
    x_red = None if red is None else np.asarray(red, dtype=np.float64)
    if x_red is not None and x_red.size != t.size:
        raise UserError("replay: the red column must have as many samples as time_s")
    blocks = ((t[a:a + chunk], x_ir[a:a + chunk], None if x_red is None else x_red[a:a + chunk])
              for a in range(0, t.size, chunk))
    return write_ppg_stimulus(blocks, out_dir, fs_hz, chunk=chunk)


def write_ppg_stimulus(blocks: Iterable[RecordingBlock], out_dir: Path, fs_hz: float, *,
                       chunk: int = stream.CHUNK) -> ReplayStimulus:
    """Resample a recording (25 Hz-2 kHz) to fs_hz and write out_dir/stim/ppg.f32 for replay.

    Mapping (docs/simulation-scenarios.md): a recording with a DC level (positive, pulsatility
    < 25% of the median) is taken as a photocurrent and scaled so the IR median is 1000 nA/mA;
    red uses the same factor, so both AC/DC ratios are kept. A recording without DC (band-passed,
    pulse peaks upward as in usual PPG plots) gets DC 1000 nA/mA (IR) / 800 (red) and a pulse
    that lowers the photocurrent, with an IR AC/DC of 1.5% for its 5-95 percentile span and red
    AC/DC set for SpO2 97% on the shared curve.

    Streamed: the blocks are spooled to float64 files in a work folder beside the output and
    every step (median rate, uniform grid, anti-alias filter, percentiles, resampling) runs over
    chunks of `chunk` samples, so memory is flat in the recording's length; the numbers are
    those of the whole-array computation (tests/host/sim/test_stream.py). ppg.f32 is written last:
    a bad recording leaves no stim/ folder.
    """
    if not 10.0 <= fs_hz <= 4000.0:
        raise UserError(f"replay: fs_hz={fs_hz:g} is out of range: use 10 to 4000 Hz")
    out_dir = Path(out_dir)
    work_parent = out_dir if out_dir.is_dir() else None
    with tempfile.TemporaryDirectory(prefix=".replay-work-", dir=work_parent) as tmp:
        work = _ReplayWork(Path(tmp), chunk)
        try:
            return work.run(blocks, out_dir, fs_hz)
        finally:
            work.close()  # the spools' files, before their folder is removed


class _ReplayWork:
    """The steps of write_ppg_stimulus() over float64 spools in a work folder."""

    def __init__(self, work: Path, chunk: int) -> None:
        self.work, self.chunk = work, chunk
        self._spools: list[stream.Spool] = []

    def spool(self, name: str) -> stream.Spool:
        sp = stream.Spool(self.work / f"{name}.f64")
        self._spools.append(sp)
        return sp

    def close(self) -> None:
        for sp in self._spools:
            sp.close()

    def ingest(self, blocks: Iterable[RecordingBlock]) -> tuple[stream.Spool, stream.Spool,
                                                                  stream.Spool | None]:
        """Spool the columns, checking them as they come."""
        t_sp, ir_sp = self.spool("t"), self.spool("ir")
        red_sp: stream.Spool | None = None
        last_t = -np.inf
        good = {"ir": 0, "red": 0}
        first = True
        for t, ir, red in blocks:
            t = np.asarray(t, dtype=np.float64)
            if t.size != np.size(ir) or (red is not None and np.size(red) != t.size):
                raise UserError("replay: the columns of a recording must be equally long")
            if first:
                red_sp = None if red is None else self.spool("red")
                first = False
            elif (red is None) != (red_sp is None):
                raise UserError("replay: the red column must have as many samples as time_s")
            if not np.all(np.isfinite(t)) or np.any(np.diff(t, prepend=last_t) <= 0):
                raise UserError("replay: time_s must be numeric and strictly increasing")
            if t.size:
                last_t = float(t[-1])
            t_sp.append(t)
            ir_sp.append(ir)
            good["ir"] += int(np.count_nonzero(np.isfinite(ir)))
            if red_sp is not None and red is not None:
                red_sp.append(red)
                good["red"] += int(np.count_nonzero(np.isfinite(red)))
        if t_sp.n < 2:
            raise UserError("replay: time_s and ir must be 1-D columns of the same length (>= 2)")
        for name, sp in (("ir", ir_sp), ("red", red_sp)):
            if sp is not None and good[name] < 2:
                raise UserError(f"replay: the {name} column has fewer than 2 numeric samples")
        return t_sp, ir_sp, red_sp

    def diffs(self, t_sp: stream.Spool) -> Iterator[Array]:
        prev = None
        for t in t_sp.chunks(self.chunk):
            yield np.diff(t) if prev is None else np.diff(t, prepend=prev)
            prev = float(t[-1])

    def uniform(self, t_sp: stream.Spool, x_sp: stream.Spool, name: str, t0: float,
                dt_s: float, n: int) -> stream.Spool:
        """The column interpolated onto the uniform grid t0 + i * dt_s; NaNs bridged."""
        out = self.spool(name + "_u")
        pairs = zip(t_sp.chunks(self.chunk), x_sp.chunks(self.chunk), strict=True)
        stream.interp_uniform(pairs, t0, dt_s, n, out, self.chunk)
        return out

    def quantiles(self, chunks: Callable[[], Iterable[Array]], n: int,
                  percentiles: tuple[float, ...]) -> stream.Quantiles:
        return stream.Quantiles(chunks, n, percentiles, median=True)

    def has_dc(self, x_sp: stream.Spool) -> tuple[bool, stream.Quantiles]:
        """True if x looks like a raw photocurrent: positive with a DC well above its
        pulsatility (1-99 percentile span < 25% of the median). Also the 5/95 percentiles."""
        q = self.quantiles(lambda: x_sp.chunks(self.chunk), x_sp.n, (1, 99, 5, 95))
        lo, hi = q.percentiles[:2]
        med = q.median
        return bool(lo > 0 and med > 0 and (hi - lo) < 0.25 * med), q

    def resample(self, x_sp: stream.Spool, name: str, fs_in: float,
                 fs_hz: float) -> stream.Spool:
        if fs_in > fs_hz:  # anti-alias: zero-phase low-pass below the new Nyquist
            sos = signal.butter(8, 0.4 * fs_hz, fs=fs_in, output="sos")
            padlen = min(x_sp.n - 1, 3 * 60)
            filt = self.spool(name + "_lp")
            stream.sosfiltfilt(sos, x_sp, padlen, self.spool(name + "_fwd"), filt, self.chunk)
            x_sp = filt
        out = self.spool(name + "_r")
        stream.resample(x_sp, fs_in, fs_hz, out, self.chunk)
        return out

    def run(self, blocks: Iterable[RecordingBlock], out_dir: Path,
            fs_hz: float) -> ReplayStimulus:
        t_sp, ir_sp, red_sp = self.ingest(blocks)
        t0, t_end = float(t_sp.read(0, 1)[0]), float(t_sp.read(t_sp.n - 1, t_sp.n)[0])
        # The grid: the recording's median sample interval (np.median of the steps).
        dt_s = stream.Quantiles(lambda: self.diffs(t_sp), t_sp.n - 1, median=True).median
        n_u = int(math.floor((t_end - t0) / dt_s + 1e-6)) + 1  # tolerate rounding
        fs_in = 1.0 / dt_s
        if not 24.0 <= fs_in <= 2100.0:
            raise UserError(f"replay: the recording's sample rate is {fs_in:.1f} Hz: supported "
                            "rates are 25 Hz to 2 kHz")
        ir_u = self.uniform(t_sp, ir_sp, "ir", t0, dt_s, n_u)
        had_dc, q_ir = self.has_dc(ir_u)
        ir_r = self.resample(ir_u, "ir", fs_in, fs_hz)
        red_r: stream.Spool | None = None
        if had_dc:
            scale = REPLAY_IR_DC_NA_PER_MA / q_ir.median
            if red_sp is not None:
                red_u = self.uniform(t_sp, red_sp, "red", t0, dt_s, n_u)
                if self.has_dc(red_u)[0]:
                    red_r = self.resample(red_u, "red", fs_in, fs_hz)
            med_out = float("nan")
            if red_r is None:  # red from the IR's AC: needs the median of the scaled IR
                med_out = stream.Quantiles(
                    lambda: (x * scale for x in ir_r.chunks(self.chunk)), ir_r.n,
                    median=True).median
        else:
            med = q_ir.median
            lo, hi = q_ir.percentiles[2:]
            span = max(float(hi - lo), 1e-12)
            scale = REPLAY_IR_DC_NA_PER_MA * REPLAY_PI_IR / span
        stim = Path(out_dir) / "stim"
        try:
            stim.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"replay: cannot create {stim} ({exc.strerror})") from None
        path = stim / "ppg.f32"
        with open(path, "wb") as f:
            for a in range(0, ir_r.n, self.chunk):
                ir_c = ir_r.read(a, a + self.chunk)
                if had_dc:
                    ir_out = ir_c * scale
                    if red_r is not None:
                        red_out = red_r.read(a, a + self.chunk) * scale
                    else:
                        ac = ir_out / med_out - 1.0
                        red_out = REPLAY_RED_DC_NA_PER_MA * (
                            1.0 + r_from_spo2(REPLAY_SPO2_PCT) * ac)
                else:
                    xn = (ir_c - med) / span
                    ir_out = REPLAY_IR_DC_NA_PER_MA * (1.0 - REPLAY_PI_IR * xn)
                    pi_red = REPLAY_PI_IR * r_from_spo2(REPLAY_SPO2_PCT)
                    red_out = REPLAY_RED_DC_NA_PER_MA * (1.0 - pi_red * xn)
                out = np.zeros((ir_out.size, 3), dtype="<f4")
                out[:, 0] = np.clip(red_out, 0.0, None)
                out[:, 1] = np.clip(ir_out, 0.0, None)
                out.tofile(f)
        return ReplayStimulus(path=path, n_samples=ir_r.n, fs_hz=fs_hz, t0_s=t0,
                              had_dc=had_dc, scale_na_per_unit=scale)
