"""Synthetic stress sweep for beat detectors at the device's rate (50 Hz): the firmware's PPG
pipeline (under MicroPython) side by side with NeuroKit2 (elgendi) and HeartPy on the same
signals, Se/PPV per condition, per group and per HR band.

Conditions (the stresses detectors are usually tested with, e.g. Charlton et al. 2022, Physiol
Meas 43:085007): steady heart rates 40-180 bpm with respiratory sinus arrhythmia; step changes
of +-30 bpm; perfusion (AC/DC) from 0.3 % to 10 %; runs of premature (ectopic) beats with their
compensatory pause; the same steps with no ramp; a harder pulse shape (deep respiratory
amplitude modulation, large diastolic wave). Every signal has respiratory baseline wander,
amplitude modulation and white noise. The pulse shape follows the rate: systolic upstroke
~0.12-0.16 s, a diastolic wave that merges into the next beat at fast rates. Truth = systolic
peak times; scoring as in bench_accuracy.py (+-150 ms after removing the median delay).

Usage: python tests/bench/bench_sweep.py [--seconds 120] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_accuracy import run_firmware_mp, run_heartpy, run_nk, score, summary  # noqa: E402

FS = 50
DC = 131072  # counts: half the MAX30102's 18-bit full scale


def _ibis_steady(bpm: float, seconds: float, rng: np.random.Generator) -> list[float]:
    out, t = [], 0.0
    while t < seconds:
        rsa = 1.0 + 0.03 * np.sin(2 * np.pi * 0.25 * t)  # RSA at 15 breaths/min, +-3 %
        ibi = 60.0 / bpm * rsa * (1 + 0.01 * rng.standard_normal())
        out.append(ibi)
        t += ibi
    return out


def _ibis_steps(lo: float, hi: float, seconds: float, rng: np.random.Generator) -> list[float]:
    """Alternate lo and hi every 20 s with a 4-s ramp (a +-30 bpm step)."""
    out, t = [], 0.0
    while t < seconds:
        cyc = t % 40.0
        frac = min(1.0, cyc / 4.0) if cyc < 20 else max(0.0, 1.0 - (cyc - 20) / 4.0)
        bpm = lo + (hi - lo) * frac
        ibi = 60.0 / bpm * (1 + 0.01 * rng.standard_normal())
        out.append(ibi)
        t += ibi
    return out


def _ibis_abrupt(lo: float, hi: float, seconds: float, rng: np.random.Generator) -> list[float]:
    """Alternate lo and hi every 20 s with no ramp (a beat-to-beat +-30 bpm step)."""
    out, t = [], 0.0
    while t < seconds:
        bpm = lo if (t % 40.0) < 20 else hi
        out.append(60.0 / bpm * (1 + 0.01 * rng.standard_normal()))
        t += out[-1]
    return out


def _ibis_ectopic(bpm: float, seconds: float, rng: np.random.Generator) -> list[float]:
    """Runs of 1-3 premature beats (65 % of the IBI) every ~10 s, then a compensatory pause."""
    base = _ibis_steady(bpm, seconds, rng)
    out, i = [], 0
    while i < len(base):
        if i % 12 == 6:
            run = int(rng.integers(1, 4))
            for _ in range(run):
                out.append(0.65 * base[i])
            out.append(base[i] * (2.0 - 0.65) if run == 1 else 1.3 * base[i])
            i += run + 1
        else:
            out.append(base[i])
            i += 1
    return out


def _signal(ibis: list[float], perfusion: float, seconds: float,
            rng: np.random.Generator, am: float = 0.1,
            dia_amp: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Raw counts (a pulse is a dip, as the MAX30102 reads a finger) and true peak times.
    am: respiratory amplitude modulation; dia_amp: diastolic wave / systolic wave."""
    n = int(seconds * FS)
    t = np.arange(n) / FS
    x = np.zeros(n)
    peaks = []
    onset = 0.5
    prev = ibis[0]
    med = float(np.median(ibis))
    for ibi in ibis:
        if onset > seconds:
            break
        rise = 0.12 + 0.04 * min(1.0, ibi)  # foot to systolic peak
        dia = rise + 0.22 + 0.1 * min(1.0, ibi)  # diastolic wave
        w = 0.45 * rise
        # a beat after a short interval fills less: its pulse is smaller (Frank-Starling)
        amp = 0.4 + 0.6 * prev / med if prev < 0.8 * med else 1.0
        pk = onset + rise
        sel = (t > onset - 0.2) & (t < onset + 1.6)
        tt = t[sel]
        x[sel] += amp * np.exp(-0.5 * ((tt - pk) / w) ** 2)
        x[sel] += amp * dia_amp * np.exp(-0.5 * ((tt - (onset + dia)) / (1.4 * w)) ** 2)
        peaks.append(pk)
        prev = ibi
        onset += ibi
    ac = perfusion * DC
    resp = np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 6.28))
    x = x * (1 + am * resp)  # respiratory amplitude modulation
    x = x + 0.3 * resp  # baseline wander, 0.3 x AC
    x = x + 0.02 * rng.standard_normal(n)  # white noise, 2 % of AC
    counts = np.clip(np.round(DC - ac * x), 0, 262143).astype(np.int64)
    return counts, np.array(peaks)


def conditions(seconds: float, rng: np.random.Generator) -> list[tuple[str, str, np.ndarray,
                                                                        np.ndarray]]:
    out = []
    for bpm in (40, 50, 60, 80, 100, 110, 120, 140, 160, 180):
        c, p = _signal(_ibis_steady(bpm, seconds, rng), 0.02, seconds, rng)
        out.append(("rate", f"{bpm} bpm", c, p))
    for lo in (50, 70, 90, 120, 150):
        c, p = _signal(_ibis_steps(lo, lo + 30, seconds, rng), 0.02, seconds, rng)
        out.append(("step", f"{lo}<->{lo + 30} bpm", c, p))
    for perf in (0.003, 0.01, 0.03, 0.10):
        for bpm in (60, 110):
            c, p = _signal(_ibis_steady(bpm, seconds, rng), perf, seconds, rng)
            out.append(("perfusion", f"{100 * perf:g} % @{bpm}", c, p))
    for lo in (50, 70, 90, 120, 150):
        c, p = _signal(_ibis_abrupt(lo, lo + 30, seconds, rng), 0.02, seconds, rng)
        out.append(("step", f"{lo}<->{lo + 30} abrupt", c, p))
    for bpm in (60, 90, 110, 120, 140):
        c, p = _signal(_ibis_ectopic(bpm, seconds, rng), 0.02, seconds, rng)
        out.append(("ectopic", f"runs @{bpm} bpm", c, p))
    # Harder shapes: deep respiratory amplitude modulation (+-40 %) and a large diastolic wave
    # (half the systolic one, young compliant arteries), steady and with ectopic runs.
    for bpm in (60, 90, 110, 140):
        c, p = _signal(_ibis_steady(bpm, seconds, rng), 0.02, seconds, rng, 0.4, 0.5)
        out.append(("shape", f"AM40 dia50 @{bpm}", c, p))
        c, p = _signal(_ibis_ectopic(bpm, seconds, rng), 0.02, seconds, rng, 0.4, 0.5)
        out.append(("shape", f"AM40 dia50 ect @{bpm}", c, p))
    return out


BANDS = ((0, 60, "<60 bpm"), (60, 100, "60-99 bpm"), (100, 140, "100-139 bpm"),
         (140, 400, ">=140 bpm"))


def band_of(peaks: np.ndarray) -> str:
    """HR band of a condition: from the median true interval (a step counts where it spends
    most beats)."""
    bpm = 60.0 / float(np.median(np.diff(peaks)))
    return next(name for lo, hi, name in BANDS if lo <= bpm < hi)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=10.0,
                    help="seconds at the start left out of the scoring for every method "
                         "(the start-up is tested on its own: tests/firmware/core/test_ppg*)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    methods = ("firmware", "nk_elgendi", "heartpy")
    print(f"\nDetector sweep at {FS} Hz, {args.seconds:.0f} s per condition (first "
          f"{args.warmup:.0f} s not scored), seed {args.seed}: Se / PPV (+-150 ms)")
    print(f"{'group':10s} {'condition':18s} " + " ".join(f"{m:>15s}" for m in methods))
    pooled: dict[tuple[str, str], list[dict]] = {}
    for group, name, counts, peaks in conditions(args.seconds, rng):
        cells = []
        for m in methods:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x = DC - counts.astype(float)  # pulse up for the baselines
                if m == "firmware":
                    det = run_firmware_mp(counts, FS)
                elif m == "heartpy":
                    with contextlib.redirect_stdout(io.StringIO()):
                        det = run_heartpy(x, FS)
                else:
                    det = run_nk(x, FS, "elgendi")
            # scored window [warm-up, end - 1 s] for truth; detections get the detectors'
            # delay as margin at both edges (the median delay is removed in score())
            w, end = args.warmup, args.seconds - 1.0
            ref = peaks[(peaks >= w) & (peaks < end)]
            d = det[(det >= ref[0] - 0.3) & (det < ref[-1] + 0.3)] if len(ref) else det[:0]
            r = score(d - w, ref - w, end - w)
            pooled.setdefault((m, group), []).append(r)
            pooled.setdefault((m, "all"), []).append(r)
            pooled.setdefault((m, band_of(peaks)), []).append(r)
            s = summary([r])
            cells.append(f"{s['se']:.3f}/{s['ppv']:.3f}")
        print(f"{group:10s} {name:18s} " + " ".join(f"{c:>15s}" for c in cells))
    print("\npooled per group: Se / PPV / F1 / HR MAE bpm")
    for group in ("rate", "step", "perfusion", "ectopic", "shape", "all"):
        cells = []
        for m in methods:
            s = summary(pooled[(m, group)])
            cells.append(f"{s['se']:.3f}/{s['ppv']:.3f}/{s['f1']:.3f}/{s['hr_mae']:.2f}")
        print(f"{group:10s} {'':18s} " + " ".join(f"{c:>24s}" for c in cells))
    print("\npooled per HR band (all conditions whose median rate is in the band): "
          "Se / PPV / F1 / HR MAE bpm")
    for _lo, _hi, band in BANDS:
        if (methods[0], band) not in pooled:
            continue
        cells = []
        for m in methods:
            s = summary(pooled[(m, band)])
            cells.append(f"{s['se']:.3f}/{s['ppv']:.3f}/{s['f1']:.3f}/{s['hr_mae']:.2f}")
        print(f"{band:29s} " + " ".join(f"{c:>24s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
