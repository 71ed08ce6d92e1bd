"""Accuracy benchmark on real recordings: firmware PPG pipeline vs NeuroKit2 and HeartPy.

Usage: python tests/bench/bench_accuracy.py --data ../shared/data [--fs 50] [--path board]

ppg/: by default (--path board) each record goes through `nightstand replay`: resampled into the
virtual MAX30102's stimulus and read by the unchanged firmware on the simulated board under
MicroPython (LED control, FIFO, recorder and all); beats come back from the night file.
--path pipeline feeds raw counts straight to the pipeline under MicroPython (DC at 50% of the
18-bit full scale, pulse as a DIP in counts, 1-99 percentile span = 2000 counts); --cpython runs
that in-process.
Beats are scored against the ECG reference: +-150 ms after removing the median pulse-arrival
delay per record. Baselines run on the same resampled signal.
sleep/: slpdb RR beats go through the arousal estimator's beat-only path.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "firmware"))

TOL_S = 0.150
DC_COUNTS = 131072
SPAN_COUNTS = 2000


# ----------------------------------------------------------------------------- data
def load_ppg(rec: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = np.loadtxt(rec / "ppg.csv", delimiter=",", skiprows=1)
    ref = np.loadtxt(rec / "ref_beats.csv", delimiter=",", skiprows=1, ndmin=1)
    return d[:, 0], d[:, 1], ref


def resample(t: np.ndarray, x: np.ndarray, fs: int) -> np.ndarray:
    from scipy.signal import resample_poly

    fs_in = round(1.0 / np.median(np.diff(t)))
    g = np.gcd(int(fs_in), fs)
    return resample_poly(x, fs // g, int(fs_in) // g)


def to_counts(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, [1, 99])
    span = hi - lo if hi > lo else 1.0
    c = DC_COUNTS - (x - np.median(x)) * (SPAN_COUNTS / span)
    return np.clip(np.round(c), 0, 262143).astype(np.int64)


# ----------------------------------------------------------------------------- detectors
def run_mp_driver(counts: np.ndarray, fs: int) -> list[str]:
    """counts: (n,) IR or (n, 2) red+IR raw counts -> the driver's output lines."""
    sys.path.insert(0, str(ROOT / "host_tools"))
    from nightstand import paths

    ch = 1 if counts.ndim == 1 else 2
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
        f.write(np.ascontiguousarray(counts).astype("<u4").tobytes())
        name = f.name
    env_path = f"{ROOT / 'firmware'}:.frozen"
    proc = subprocess.run(
        [paths.micropython_bin(), "-X", "heapsize=128K",
         str(ROOT / "tests" / "bench" / "mp_ppg_driver.py"), name, str(fs), str(ch)],
        env={"MICROPYPATH": env_path}, capture_output=True, text=True, timeout=1800,
    )
    Path(name).unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"micropython failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout.splitlines()


def run_firmware_mp(counts: np.ndarray, fs: int) -> np.ndarray:
    lines = run_mp_driver(counts, fs)
    beats = [line.split()[1:] for line in lines if line.startswith("B ")]
    return np.array([int(b[0]) / 1000.0 for b in beats])


def run_firmware_cpython(counts: np.ndarray, fs: int) -> np.ndarray:
    import array

    from nsdev.core.ppg import PPGPipeline

    pipe = PPGPipeline(fs)
    out = array.array("i", [0] * 4)
    times = []
    chunk = 8
    for i in range(0, len(counts), chunk):
        buf = array.array("i", counts[i:i + chunk].tolist())
        pipe.feed(None, buf, len(buf))
        while pipe.pop_beat(out):
            times.append(out[0] / 1000.0)
    pipe.flush()
    while pipe.pop_beat(out):
        times.append(out[0] / 1000.0)
    return np.array(times)


def run_firmware_board(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Beat times (s, recording clock) from `nightstand replay` of (t, x) on the virtual board."""
    from nightstand.replay import replay

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "rec.csv"
        np.savetxt(src, np.column_stack([t, x]), delimiter=",", header="time_s,ppg",
                   comments="", fmt="%.6f")
        beats_csv, _ = replay(src, Path(tmp) / "out", quiet=True)
        rows = list(csv.DictReader(open(beats_csv)))
    return np.array([float(r["time_s"]) for r in rows])


def run_nk(x: np.ndarray, fs: int, method: str) -> np.ndarray:
    import neurokit2 as nk

    clean_method = "elgendi"  # NeuroKit2's default cleaning (0.5-8 Hz Butterworth)
    clean = nk.ppg_clean(x, sampling_rate=fs, method=clean_method)
    info = nk.ppg_findpeaks(clean, sampling_rate=fs, method=method)
    return np.asarray(info["PPG_Peaks"], dtype=float) / fs


def run_heartpy(x: np.ndarray, fs: int) -> np.ndarray:
    """HeartPy at its best setting we found: 0.5-8 Hz band-pass, hp.process per 60-s segment.

    (hp.process on a whole 15-min record gives up or fits one threshold to all of it.)"""
    import heartpy as hp

    sig = hp.filter_signal(x, cutoff=[0.5, 8], sample_rate=fs, order=2, filtertype="bandpass")
    out: list[float] = []
    n = int(60 * fs)
    for s in range(0, len(sig), n):
        part = sig[s:s + n]
        if len(part) < 10 * fs:
            continue
        try:
            wd, _ = hp.process(hp.scale_data(part), sample_rate=fs)
        except Exception:  # HeartPy gives up on a segment: no beats from it
            continue
        peaks = np.asarray(wd["peaklist"], dtype=float)
        ok = np.asarray(wd["binary_peaklist"], dtype=bool)
        out.extend((peaks[ok[: len(peaks)]] + s) / fs)
    return np.array(out)


# ----------------------------------------------------------------------------- scoring
def score(det: np.ndarray, ref: np.ndarray, dur_s: float) -> dict:
    det = np.sort(det)
    if len(det) == 0:
        return dict(tp=0, fp=0, fn=len(ref), hr_err=[], ibi_err=[], rmssd_err=np.nan)
    # Median pulse-arrival delay: first detection in [r - 0.1 s, r + 1.0 s] after each R peak.
    idx = np.searchsorted(det, ref - 0.1)
    ok = idx < len(det)
    d = det[idx[ok]] - ref[ok]
    d = d[d < 1.0]
    delay = float(np.median(d)) if len(d) else 0.0
    det = det - delay
    # Greedy one-to-one matching within the tolerance.
    j = 0
    match = np.full(len(ref), -1)
    used = np.zeros(len(det), dtype=bool)
    for i, r in enumerate(ref):
        while j < len(det) and det[j] < r - TOL_S:
            j += 1
        best, bd = -1, TOL_S + 1e-9
        for k in (j, j + 1):
            if k < len(det) and not used[k] and abs(det[k] - r) <= bd:
                best, bd = k, abs(det[k] - r)
        if best >= 0:
            match[i] = best
            used[best] = True
    tp = int((match >= 0).sum())
    fp = int(len(det) - tp)
    fn = int(len(ref) - tp)
    # IBI error on consecutive matched pairs; RMSSD over those pairs.
    ibi_r, ibi_d = [], []
    for i in range(len(ref) - 1):
        a, b = match[i], match[i + 1]
        if a >= 0 and b == a + 1:
            ibi_r.append(ref[i + 1] - ref[i])
            ibi_d.append(det[b] - det[a])
    ibi_r_a, ibi_d_a = np.array(ibi_r) * 1000, np.array(ibi_d) * 1000
    ibi_err = list(np.abs(ibi_d_a - ibi_r_a))
    rmssd_err = np.nan
    if len(ibi_r_a) > 3:
        rr = np.sqrt(np.mean(np.diff(ibi_r_a) ** 2))
        rd = np.sqrt(np.mean(np.diff(ibi_d_a) ** 2))
        rmssd_err = abs(rd - rr)
    # HR over 10-s windows: 60 / mean IBI of intervals ending in the window.
    hr_err = []
    for w0 in np.arange(0, dur_s - 10 + 1e-9, 10.0):
        hr = []
        for s in (ref, det):
            sel = s[(s >= w0) & (s < w0 + 10)]
            hr.append(60.0 / np.mean(np.diff(sel)) if len(sel) >= 3 else np.nan)
        if not np.isnan(hr[0]):
            hr_err.append(abs(hr[1] - hr[0]) if not np.isnan(hr[1]) else abs(hr[0]))
    return dict(tp=tp, fp=fp, fn=fn, hr_err=hr_err, ibi_err=ibi_err, rmssd_err=rmssd_err)


def summary(rows: list[dict]) -> dict:
    tp = sum(r["tp"] for r in rows)
    fp = sum(r["fp"] for r in rows)
    fn = sum(r["fn"] for r in rows)
    se = tp / (tp + fn) if tp + fn else float("nan")
    ppv = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    hr = [e for r in rows for e in r["hr_err"]]
    ibi = [e for r in rows for e in r["ibi_err"]]
    rm = [r["rmssd_err"] for r in rows if not np.isnan(r["rmssd_err"])]
    return dict(se=se, ppv=ppv, f1=f1, hr_mae=float(np.mean(hr)) if hr else float("nan"),
                ibi_mae=float(np.mean(ibi)) if ibi else float("nan"),
                rmssd_err=float(np.mean(rm)) if rm else float("nan"))


def fmt(s: dict) -> str:
    return (f"{s['se']:6.4f} {s['ppv']:6.4f} {s['f1']:6.4f} {s['hr_mae']:6.2f} "
            f"{s['ibi_mae']:7.1f} {s['rmssd_err']:7.1f}")


# ----------------------------------------------------------------------------- ppg/ part
def bench_ppg(folder: Path, fs: int, cpython: bool, only_fw: bool, path: str = "board") -> None:
    recs = sorted(p for p in folder.iterdir() if (p / "ppg.csv").exists())
    # Baselines run on the same 50 Hz signal and on the original 125 Hz one ("@orig").
    # (NeuroKit2's "bishop" method is left out: it needs O(n^2) memory on 15-min records.)
    base = ["nk_elgendi", "nk_charlton", "heartpy"]
    methods = ["firmware"] + ([] if only_fw else base + [m + "@orig" for m in base])
    per: dict[str, list[dict]] = {m: [] for m in methods}
    head = f"{'record':12s} {'method':17s}   Se    PPV     F1   HRMAE  IBIMAE  dRMSSD"
    print(f"\nppg/: {len(recs)} records, fs {fs} Hz, +-{TOL_S * 1000:.0f} ms after median "
          f"delay removal; HR MAE bpm (10-s windows), IBI MAE ms, RMSSD error ms")
    print(head)
    cpu = 0.0
    for rec in recs:
        t, x, ref = load_ppg(rec)
        xr = resample(t, x, fs)
        dur = len(xr) / fs
        fs_orig = int(round(1.0 / np.median(np.diff(t))))
        for m in methods:
            t0 = time.perf_counter()
            sig, f_hz = (x, fs_orig) if m.endswith("@orig") else (xr, fs)
            name = m.split("@")[0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if m == "firmware" and path == "board":
                    det = run_firmware_board(t, x)
                elif m == "firmware":
                    counts = to_counts(xr)
                    det = (run_firmware_cpython if cpython else run_firmware_mp)(counts, fs)
                elif name == "heartpy":
                    with contextlib.redirect_stdout(io.StringIO()):  # its own error banners
                        det = run_heartpy(sig, f_hz)
                else:
                    det = run_nk(sig, f_hz, name[3:])
            if m == "firmware":
                cpu += time.perf_counter() - t0
            r = score(det, ref, dur)
            per[m].append(r)
            print(f"{rec.name:12s} {m:17s} {fmt(summary([r]))}")
    print("\nPOOLED (all records)")
    print(head)
    for m in methods:
        print(f"{'pooled':12s} {m:17s} {fmt(summary(per[m]))}")
    if "nk_elgendi" in per:
        leave_one_out(recs, per["firmware"], per["nk_elgendi"])
    where = ("MicroPython on the simulated board via `nightstand replay`" if path == "board"
             else "CPython" if cpython else "MicroPython (pipeline only)")
    print(f"(firmware ran under {where}; wall time {cpu:.1f} s incl. process start)")


def leave_one_out(recs: list[Path], fw: list[dict], nk: list[dict]) -> None:
    """Leave-one-record-out: the firmware vs NeuroKit2 (elgendi, same 50 Hz signal) pooled over
    the other records, once per left-out record - the comparison must not hinge on one record
    (no constant of the detector is fitted to these records; this shows it)."""
    print("\nLEAVE-ONE-RECORD-OUT: pooled over the other records, firmware vs nk_elgendi")
    print(f"{'left out':12s} {'F1 fw':>7s} {'F1 nk':>7s} {'HRMAE fw':>9s} {'HRMAE nk':>9s}")
    wins_f1 = wins_hr = 0
    for i, rec in enumerate(recs):
        a = summary(fw[:i] + fw[i + 1:])
        b = summary(nk[:i] + nk[i + 1:])
        wins_f1 += a["f1"] >= b["f1"]
        wins_hr += a["hr_mae"] <= b["hr_mae"]
        print(f"{rec.name:12s} {a['f1']:7.4f} {b['f1']:7.4f} {a['hr_mae']:9.2f} "
              f"{b['hr_mae']:9.2f}")
    print(f"firmware ahead or equal in {wins_f1}/{len(recs)} folds on F1, "
          f"{wins_hr}/{len(recs)} on HR MAE")


# ----------------------------------------------------------------------------- sleep/ part
def bench_sleep(folder: Path) -> None:
    from nsdev.core.arousal import ArousalEstimator

    recs = sorted(p.name[: -len("_beats.csv")] for p in folder.glob("*_beats.csv"))
    print(f"\nsleep/: {len(recs)} slpdb records, beat-only arousal path vs annotated arousal "
          "epochs.\n  ar_run = runs of consecutive arousal epochs; Se = runs touched by an event "
          "(+-1 epoch); PPV = events overlapping an arousal epoch or its neighbour")
    print(f"{'record':8s} {'hours':>5s} {'events':>6s} {'ar_run':>6s} {'Se':>6s} {'PPV':>6s} "
          f"{'idx/h':>6s}")
    tot = dict(ev=0, ev_ok=0, runs=0, runs_hit=0)
    stage_hr: dict[str, list[float]] = {}
    for name in recs:
        beats = list(csv.DictReader(open(folder / f"{name}_beats.csv")))
        epochs = list(csv.DictReader(open(folder / f"{name}_epochs.csv")))
        est = ArousalEstimator()
        events = []
        for b in beats:
            if not b["rr_s"]:
                continue
            t_ms = int(float(b["time_s"]) * 1000)
            ibi = int(float(b["rr_s"]) * 1000)
            q = 0 if b["beat_type"] == "N" else 1
            ev = est.add_beat(t_ms, ibi, None, q)
            if ev is not None:
                events.append(ev)
        ep_start = np.array([float(e["epoch_start_s"]) for e in epochs])
        ar = np.array([int(e["arousal"]) for e in epochs])
        # Arousal runs: consecutive arousal epochs form one annotated episode.
        runs = []
        i = 0
        while i < len(ar):
            if ar[i]:
                j = i
                while j + 1 < len(ar) and ar[j + 1]:
                    j += 1
                runs.append((i, j))
                i = j + 1
            else:
                i += 1
        hit = np.zeros(len(runs), dtype=bool)
        ev_ok = 0
        for ev in events:
            k0 = int(np.searchsorted(ep_start, ev.onset_ms / 1000.0, side="right") - 1)
            k1 = int(np.searchsorted(ep_start, (ev.onset_ms + ev.duration_ms) / 1000.0,
                                     side="right") - 1)
            near = range(max(0, k0 - 1), min(len(ar), k1 + 2))
            if any(ar[k] for k in near):
                ev_ok += 1
            for ri, (a, b) in enumerate(runs):
                if a - 1 <= k1 and k0 <= b + 1:
                    hit[ri] = True
        # HR per stage from the beats in each epoch.
        bt = np.array([float(b["time_s"]) for b in beats if b["rr_s"]])
        rr = np.array([float(b["rr_s"]) for b in beats if b["rr_s"]])
        for k, e in enumerate(epochs):
            sel = (bt >= ep_start[k]) & (bt < ep_start[k] + 30) & (rr > 0.27) & (rr < 2.2)
            if sel.sum() >= 5:
                stage_hr.setdefault(e["stage"], []).append(60.0 / float(np.mean(rr[sel])))
        hours = len(epochs) * 30 / 3600
        if not runs:  # e.g. slp41: no arousal annotated at all - not scored for arousals
            print(f"{name:8s} {hours:5.1f} {len(events):6d} {0:6d}  (no arousal annotations: "
                  "left out of the pooled Se/PPV)")
            continue
        se = hit.mean() if len(runs) else float("nan")
        ppv = ev_ok / len(events) if events else float("nan")
        print(f"{name:8s} {hours:5.1f} {len(events):6d} {len(runs):6d} {se:6.3f} {ppv:6.3f} "
              f"{est.arousal_index():6.1f}")
        tot["ev"] += len(events)  # noqa: SIM113
        tot["ev_ok"] += ev_ok
        tot["runs"] += len(runs)
        tot["runs_hit"] += int(hit.sum())
    se = tot["runs_hit"] / tot["runs"] if tot["runs"] else float("nan")
    ppv = tot["ev_ok"] / tot["ev"] if tot["ev"] else float("nan")
    print(f"{'pooled':8s} {'':5s} {tot['ev']:6d} {tot['runs']:6d} {se:6.3f} {ppv:6.3f}")
    print("\nHR per stage (bpm, all records): stage  epochs  mean  sd")
    for st in sorted(stage_hr):
        v = np.array(stage_hr[st])
        print(f"  {st:3s} {len(v):6d} {v.mean():6.1f} {v.std():5.1f}")


# ----------------------------------------------------------------------------- simulator part
def _within(onset: float, t0: float, dur: float) -> bool:
    """An event onset belongs to the episode at t0 lasting dur: [t0 - 15 s, t0 + dur + 10 s]
    (HR leads by up to ~10 beats, Bonnet & Arand 1997)."""
    return t0 - 15.0 <= onset <= t0 + dur + 10.0


def _match(truth: np.ndarray, events: list[tuple[float, float]]) -> tuple[int, int]:
    """(annotated arousals hit, detected events that hit one): onset _within the arousal."""
    hit = np.zeros(len(truth), dtype=bool)
    ok = 0
    for onset, _dur in events:
        good = False
        for i, (t0, d, *_r) in enumerate(truth):
            if _within(onset, t0, d):
                hit[i] = True
                good = True
        ok += good
    return int(hit.sum()), ok


def _near(t: float, periods: list[dict[str, Any]]) -> bool:
    return any(_within(t, c["at"], c["duration_s"]) for c in periods)


def _scenario_table(n: int, title: str, run_seed) -> None:
    """Print Se/PPV per seeded night and pooled; run_seed(seed) -> (hours, truth, events,
    scenario events). False events are split by what they fell on: a PWA-only confounder
    (vasomotion, posture), an HR-only one, or anything else; Se is also given per HR rise."""
    print(f"\nsimulator: {n} seeded random nights with confounders "
          f"(scenario.confounder_scenario: arousals HR +5-25 bpm, PWA -20-60 %; PWA-only dips "
          f"-20-60 %, HR-only rises +8-20 bpm), {title}")
    print(f"{'seed':>4s} {'hours':>5s} {'truth':>5s} {'events':>6s} {'TP':>4s} {'Se':>6s} "
          f"{'PPV':>6s} {'FPpwa':>5s} {'FPhr':>5s} {'FPoth':>5s} {'wall s':>6s}")
    tot_truth = tot_ev = tot_hit = tot_ok = 0
    fp = {"pwa": 0, "hr": 0, "other": 0}
    bands = {(5, 10): [0, 0], (10, 15): [0, 0], (15, 26): [0, 0]}
    for seed in range(1, n + 1):
        t0 = time.perf_counter()
        hours, truth, events, sev = run_seed(seed)
        wall = time.perf_counter() - t0
        hit, ok = _match(truth, events)
        f = {"pwa": 0, "hr": 0, "other": 0}
        for onset, _d in events:
            if any(_within(onset, a, d) for a, d, *_r in truth):
                continue
            k = ("pwa" if _near(onset, sev.get("pwa_dips", [])) else
                 "hr" if _near(onset, sev.get("hr_surges", [])) else "other")
            f[k] += 1
            fp[k] += 1
        for a, d, rise, *_r in truth:
            for (lo, hi), cnt in bands.items():
                if lo <= rise < hi:
                    cnt[0] += 1
                    cnt[1] += any(_within(o, a, d) for o, _d in events)
        se = hit / len(truth) if len(truth) else float("nan")
        ppv = ok / len(events) if events else float("nan")
        print(f"{seed:4d} {hours:5.1f} {len(truth):5d} {len(events):6d} "
              f"{hit:4d} {se:6.3f} {ppv:6.3f} {f['pwa']:5d} {f['hr']:5d} {f['other']:5d} "
              f"{wall:6.1f}")
        tot_truth += len(truth)
        tot_hit += hit
        tot_ev += len(events)
        tot_ok += ok
    se = tot_hit / max(1, tot_truth)
    ppv = tot_ok / max(1, tot_ev)
    print(f"{'all':>4s} {'':5s} {tot_truth:5d} {tot_ev:6d} {tot_hit:4d} "
          f"{se:6.3f} {ppv:6.3f} {fp['pwa']:5d} {fp['hr']:5d} {fp['other']:5d}")
    print("Se per HR rise: " + ", ".join(
        f"+{lo}-{hi - 1} bpm {c[1]}/{c[0]} = {c[1] / c[0]:.3f}" if c[0] else f"+{lo}-{hi} none"
        for (lo, hi), c in bands.items()))
    ok_t = se >= 0.95 and ppv >= 0.90
    print(f"target arousal events Se >= 0.95 with PPV >= 0.90: {'MET' if ok_t else 'NOT MET'} "
          f"(Se {se:.3f}, PPV {ppv:.3f})")


def bench_scenarios_board(n: int) -> None:
    """Seeded random nights simulated whole (`nightstand simulate --seed N`): the firmware on the
    virtual board records arousal events; they are matched to the scenario's ground truth."""
    from nightstand.sim import scenario as scen
    from nightstand.sim.session import nights_in_flash, simulate
    from nsdev.core import vocab

    def run_seed(seed: int):
        with tempfile.TemporaryDirectory() as tmp:
            sc = scen.confounder_scenario(seed)
            night, _result = simulate(sc, Path(tmp) / "run", quiet=True)
            truth = np.loadtxt(night.paths["arousals"], delimiter=",", skiprows=1, ndmin=2)
            start_ms = int(night.start_unix_s) * 1000
            events = [((ev["unix_ms"] - start_ms) / 1000.0, ev["values"][0] / 1000.0)
                      for nt in nights_in_flash(Path(tmp) / "run") for ev in nt.events
                      if ev["kind"] == vocab.EV_AROUSAL]
        return night.duration_s / 3600, truth, events, sc["events"]

    _scenario_table(n, "whole nights through the firmware on the virtual board "
                    "(nightstand simulate --seed N)", run_seed)


def bench_scenarios(n: int, fs: int) -> None:
    """Seeded random nights from the simulator: arousal Se/PPV against the scenario truth.

    The stimulus (photocurrent per mA of LED current) becomes raw counts with a fixed gain per
    channel putting the median in-contact DC at 50% of full scale (as the LED controller would
    settle); the firmware pipeline and arousal estimator then run under MicroPython. An event
    is a true positive if its onset lies within [onset - 15 s, onset + duration + 10 s] of an
    annotated arousal (HR leads the EEG arousal by up to ~10 beats, Bonnet & Arand 1997)."""
    sys.path.insert(0, str(ROOT / "host_tools"))
    from nightstand.sim import generate as gen
    from nightstand.sim import scenario as scen

    def run_seed(seed: int):
        with tempfile.TemporaryDirectory() as tmp:
            sc = scen.confounder_scenario(seed)
            night = gen.generate(sc, Path(tmp), float(fs))
            stim = gen.read_ppg_stimulus(night.paths["ppg"]).astype(np.float64)
            truth = np.loadtxt(night.paths["arousals"], delimiter=",", skiprows=1, ndmin=2)
        counts = np.empty((stim.shape[0], 2))
        for c in (0, 1):
            x = stim[:, c]
            on = x > np.percentile(x, 90) * 0.2
            gain = 131072.0 / float(np.median(x[on])) if on.any() else 1.0
            counts[:, c] = np.clip(np.round(x * gain), 0, 262143)
        lines = run_mp_driver(counts.astype(np.int64), fs)
        events = [(int(p[1]) / 1000.0, int(p[2]) / 1000.0) for p in
                  (line.split() for line in lines if line.startswith("A "))]
        return night.duration_s / 3600, truth, events, sc["events"]

    _scenario_table(n, f"stimulus straight into the pipeline under MicroPython (fs {fs} Hz)",
                    run_seed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--fs", type=int, default=50)
    ap.add_argument("--cpython", action="store_true", help="run the firmware in-process")
    ap.add_argument("--firmware-only", action="store_true")
    ap.add_argument("--skip-sleep", action="store_true")
    ap.add_argument("--skip-ppg", action="store_true")
    ap.add_argument("--scenarios", type=int, default=20, help="seeded simulator nights (0: none)")
    ap.add_argument("--path", choices=("board", "pipeline"), default="board",
                    help="board: the whole firmware on the simulated board (default); "
                    "pipeline: raw counts straight into the PPG pipeline (faster)")
    a = ap.parse_args()
    data = Path(a.data)
    if not data.is_dir():
        print(f"bench-accuracy: SKIP real recordings - data folder {data} not found "
              "(pass --data DIR); the simulator part still runs")
    if not a.skip_ppg and (data / "ppg").is_dir():
        bench_ppg(data / "ppg", a.fs, a.cpython, a.firmware_only,
                  "pipeline" if a.cpython else a.path)
    if not a.skip_sleep and (data / "sleep").is_dir():
        bench_sleep(data / "sleep")
    if a.scenarios > 0 and a.path == "board":
        bench_scenarios_board(a.scenarios)
    elif a.scenarios > 0:
        bench_scenarios(a.scenarios, a.fs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
