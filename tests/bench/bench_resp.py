"""Breathing rate per 30-s epoch (firmware core/resp.py) vs a reference respiration signal.

Usage: python tests/bench/bench_resp.py [--bidmc DIR]
Runs the device path (PPGPipeline -> beats and baseline -> PPGBreathing, epochs of 30 s) on
BIDMC record 01's finger PPG (125 Hz) and compares each epoch's rate with the breaths counted in
the impedance respiration (resp.csv, 125 Hz) by peak detection. Prints MAE (breaths/min) over
the epochs with a rate, and coverage (fraction of epochs with a rate). Then the same on
synthetic PPG (tests/firmware/core/ppg_synth.py with breathing) at a few known rates.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "firmware"))
sys.path.insert(0, str(ROOT / "tests" / "firmware" / "core"))

from resp_synth import breathing_ppg, run_device  # noqa: E402


def load_ppg_counts(path: Path) -> list[int]:
    """BIDMC's normalised PPG (pulse = maximum) as raw sensor counts (pulse = dip)."""
    with open(path) as f:
        ppg = [float(r["ppg"]) for r in csv.DictReader(f)]
    lo, hi = min(ppg), max(ppg)
    return [int(131072 - 2000 * (v - lo) / (hi - lo)) for v in ppg]


def reference_breaths(times: list[float], resp: list[float], fs: float) -> list[float]:
    """Breath (inspiration peak) times of an impedance respiration signal: smoothed (0.5 s),
    peaks at least 1.2 s apart whose prominence over the surrounding troughs is at least
    30 % of the median prominence (Schaefer & Kratky 2008's advanced counting, simplified)."""
    w = max(1, int(0.25 * fs))
    sm = []
    acc = 0.0
    for i, v in enumerate(resp):
        acc += v
        if i > 2 * w:
            acc -= resp[i - 2 * w - 1]
        sm.append(acc / min(i + 1, 2 * w + 1))
    ext: list[tuple[int, float, int]] = []  # (index, value, +1 peak / -1 trough), alternating
    for i in range(1, len(sm) - 1):
        kind = 1 if sm[i] > sm[i - 1] and sm[i] >= sm[i + 1] else (
            -1 if sm[i] < sm[i - 1] and sm[i] <= sm[i + 1] else 0)
        if not kind:
            continue
        if ext and ext[-1][2] == kind:
            if (kind > 0) == (sm[i] > ext[-1][1]):
                ext[-1] = (i, sm[i], kind)
            continue
        ext.append((i, sm[i], kind))
    swings = sorted(abs(ext[k + 1][1] - ext[k][1]) for k in range(len(ext) - 1))
    thr = 0.3 * swings[3 * len(swings) // 4]
    changed = True
    while changed:  # drop the smallest swing below the threshold (both its ends), repeat
        changed = False
        best = -1
        for k in range(len(ext) - 1):
            d = abs(ext[k + 1][1] - ext[k][1])
            if d < thr and (best < 0 or d < abs(ext[best + 1][1] - ext[best][1])):
                best = k
        if best >= 0:
            del ext[best:best + 2]
            changed = True
    peaks = [times[i] for i, _v, kind in ext if kind > 0]
    return [p for k, p in enumerate(peaks) if k == 0 or p - peaks[k - 1] >= 1.2]


def reference_rate(breaths: list[float], t0: float, t1: float) -> float | None:
    """Breaths/min in [t0, t1): 60 / mean interval of the breaths ending inside it."""
    iv = [b - a for a, b in zip(breaths, breaths[1:], strict=False) if t0 <= b < t1]
    return 60.0 / (sum(iv) / len(iv)) if iv else None


def score(dev: list[tuple[int, float | None]], breaths: list[float],
          skip_s: float = 60.0) -> tuple[float | None, float, int]:
    """-> (MAE over epochs with a rate, coverage, epochs scored). The first skip_s are warm-up
    (the estimator needs 48 s of beats) and not scored."""
    err = []
    n = 0
    for end_ms, rate in dev:
        t1 = end_ms / 1000.0
        if t1 < skip_s:
            continue
        ref = reference_rate(breaths, t1 - 30.0, t1)
        if ref is None:
            continue
        n += 1
        if rate is not None:
            err.append(abs(rate - ref))
    mae = sum(err) / len(err) if err else None
    return mae, (len(err) / n if n else 0.0), n


def bidmc(path: Path) -> tuple[float | None, float, int, list[tuple[int, float | None, float]]]:
    counts = load_ppg_counts(path / "ppg.csv")
    dev = run_device(counts, 125, 16)
    with open(path / "resp.csv") as f:
        rows = [(float(r["time_s"]), float(r["resp"])) for r in csv.DictReader(f)]
    breaths = reference_breaths([r[0] for r in rows], [r[1] for r in rows], 125.0)
    mae, cov, n = score(dev, breaths)
    detail = [(e, r, reference_rate(breaths, e / 1000 - 30, e / 1000) or 0.0) for e, r in dev]
    return mae, cov, n, detail


def simulator(seed: int, rate: float, seconds: float = 900.0) -> list[float | None]:
    """The scenario generator's PPG (host_tools/nightstand/sim/generate.py: RSA, amplitude and
    baseline breathing modulation at the scenario's resp_rate_bpm, which wanders by an
    Ornstein-Uhlenbeck process, sd resp_rate_sd_bpm = 0.8 /min) through the device path."""
    import tempfile

    import numpy as np
    from nightstand.sim import generate, scenario

    raw = {"format": 1, "name": "resp", "seed": seed, "start": "2026-01-15T02:00",
           "utc_offset_s": 0, "duration_s": seconds, "person": {"resp_rate_bpm": rate}}
    with tempfile.TemporaryDirectory() as tmp:
        generate.generate(scenario.validate(raw, "bench_resp"), Path(tmp), 50.0)
        ppg = np.fromfile(Path(tmp) / "stim" / "ppg.f32", dtype="<f4").reshape(-1, 3)
    ir = ppg[:, 1]  # IR photocurrent: falls with each pulse, as the counts do
    counts = np.round(ir / ir.mean() * 120000).astype(int).tolist()
    # scored where the pipeline had a pulse (the scenario's finger leaves the sensor later on)
    return [r for e, r, hr in run_device(counts, 50, with_hr=True) if e >= 60000 and hr]


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bidmc", type=Path, default=ROOT / "tests" / "data" / "bidmc01")
    a = ap.parse_args()
    print("breathing rate per 30-s epoch (firmware core/resp.py)")
    if (a.bidmc / "resp.csv").exists():
        mae, cov, n, detail = bidmc(a.bidmc)
        for end, rate, ref in detail:
            print(f"  bidmc01 epoch end {end // 1000:4d} s  device {_f(rate, '.1f'):>5}"
                  f"  reference {ref:5.1f} /min")
        print(f"bidmc01 (impedance reference): MAE {_f(mae)} breaths/min, "
              f"coverage {100 * cov:.0f} % of {n} epochs")
    else:
        print(f"bidmc01: {a.bidmc} has no resp.csv; skipped")
    print("simulator scenarios, epochs with a pulse (reference: the scenario's rate; it wanders, "
          "sd 0.8 /min):")
    for seed, rate in ((3, 14.0), (4, 9.0), (5, 20.0)):
        got = simulator(seed, rate)
        have = [r for r in got if r is not None]
        mae = sum(abs(r - rate) for r in have) / len(have) if have else None
        print(f"  seed {seed}, {rate:4.1f} /min: MAE vs nominal {_f(mae)}, coverage "
              f"{100 * len(have) / max(1, len(got)):.0f} % of {len(got)} epochs")
    print("synthetic (66 bpm, RSA 5 bpm, amplitude 15 %, baseline 0.5 AC):")
    for rate in (6.0, 10.0, 15.0, 20.0, 25.0):
        dev = run_device(breathing_ppg(rate, seconds=300), 50, 8)
        got = [r for e, r in dev if e >= 60000]
        have = [r for r in got if r is not None]
        mae = sum(abs(r - rate) for r in have) / len(have) if have else None
        print(f"  {rate:4.1f} /min: MAE {_f(mae)}, coverage "
              f"{100 * len(have) / max(1, len(got)):.0f} % of {len(got)} epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
