"""`nightstand replay --beats`: a beat list through the firmware's beat-only path and staging.

Writes DIR/epochs.csv (time_s, HR/HRV from the beats, the device's arousal_score, stage and the
stage probabilities) and DIR/events.csv (onset_s, duration_s, kind: one row per arousal the
device recorded). The PPG replay writes events.csv and the stage column with the same helpers.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nightstand.sleep import beats as sbeats
from nightstand.sleep import staging as st
from nightstand.sleep.breathing import breathing_per_epoch
from nightstand.sleep.metrics import SleepMetrics, sleep_metrics

EVENT_COLUMNS = ("onset_s", "duration_s", "kind")


@dataclass
class BeatsReplay:
    epochs_csv: Path
    events_csv: Path
    n_beats: int
    staging: st.Staging
    metrics: SleepMetrics
    events: list[tuple[float, float, float]]
    arousal_index: float | None  # device arousal events per hour of sleep


def arousal_index(onsets_s: Iterable[float], stages: Sequence[str], t0_s: float = 0.0,
                  epoch_s: float = st.EPOCH_S) -> tuple[int, float | None]:
    """(events starting in a sleep epoch, those per hour of total sleep time; None: no sleep).

    AASM: arousal index = arousals during sleep / TST in hours. Counted from events, not epochs."""
    n = 0
    for t in onsets_s:
        k = int(math.floor((t - t0_s) / epoch_s))
        if 0 <= k < len(stages) and stages[k] in (st.REM, st.NREM):
            n += 1
    tst_h = sum(1 for s in stages if s in (st.REM, st.NREM)) * epoch_s / 3600.0
    return n, (n / tst_h if tst_h > 0 else None)


def write_events(path: Path, events: Iterable[tuple[float, float, str]]) -> int:
    rows = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EVENT_COLUMNS)
        for onset, dur, kind in events:
            w.writerow([f"{onset:.3f}", f"{dur:.3f}", kind])
            rows += 1
    return rows


def _hrv(beat_times_s: np.ndarray, t0_s: float, n: int) -> list[tuple[float, float, float]]:
    """(HR bpm, RMSSD ms, SDNN ms) per epoch from plausible consecutive IBIs (NaN unknown)."""
    out = []
    ibi = np.diff(beat_times_s)
    t = beat_times_s[1:]
    ok = (ibi >= 0.273) & (ibi <= 2.2)
    for k in range(n):
        a, b = t0_s + k * st.EPOCH_S, t0_s + (k + 1) * st.EPOCH_S
        sel = ok & (t >= a) & (t < b)
        x = ibi[sel] * 1000.0
        if x.size < 5:
            out.append((math.nan, math.nan, math.nan))
            continue
        out.append((60000.0 / float(x.mean()), float(np.sqrt(np.mean(np.diff(x) ** 2))),
                    float(x.std())))
    return out


def _cell(v: float | None, spec: str = ".4g") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{spec}}"


def replay_beats(path: Path, out: Path) -> BeatsReplay:
    bl = sbeats.read_beat_list(path)
    t0 = math.floor(bl.time_s[0] / st.EPOCH_S) * st.EPOCH_S
    n = max(1, math.ceil((bl.time_s[-1] - t0) / st.EPOCH_S))
    dev = sbeats.device_beats(bl, n, t0)
    res = st.stage_night(st.NightSignals(bl.time_s - t0, n, None, dev.arousal_score))
    m = sleep_metrics(res.stages)
    out.mkdir(parents=True, exist_ok=True)
    epochs_csv = out / "epochs.csv"
    with open(epochs_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "hr_bpm", "rmssd_ms", "sdnn_ms", "arousal_score", "stage",
                    "p_wake", "p_rem", "p_nrem", "resp_bpm"])
        ms = np.round(bl.time_s[~bl.flagged] * 1000).astype(np.int64)
        rates = breathing_per_epoch(ms, None, [round((t0 + (k + 1) * st.EPOCH_S) * 1000)
                                               for k in range(n)])
        for k, (hr, rmssd, sdnn) in enumerate(_hrv(bl.time_s, t0, n)):
            p = res.prob[k]
            w.writerow([f"{t0 + k * st.EPOCH_S:.1f}", _cell(hr), _cell(rmssd), _cell(sdnn),
                        _cell(float(dev.arousal_score[k]), ".3f"), res.stages[k],
                        *(_cell(float(v), ".3f") for v in p), _cell(rates[k], ".1f")])
    events_csv = out / "events.csv"
    write_events(events_csv, ((o, d, "arousal") for o, d, _s in dev.events))
    _n, idx = arousal_index((o for o, _d, _s in dev.events), res.stages, t0)
    return BeatsReplay(epochs_csv, events_csv, int(bl.time_s.size), res, m, dev.events, idx)


def stage_epochs_csv(epochs_csv: Path, beat_times_s: np.ndarray,
                     beat_pwa: list[float | None] | None = None) -> st.Staging | None:
    """Add `stage` and `resp_bpm` columns to a PPG replay's epochs.csv (time_s on the
    recording's clock)."""
    with open(epochs_csv, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        return None
    head, body = rows[0], rows[1:]
    it, ia = head.index("time_s"), head.index("arousal_score")
    t0 = float(body[0][it])
    n = int(round((float(body[-1][it]) - t0) / st.EPOCH_S)) + 1
    score = np.full(n, np.nan)
    k_of = [int(round((float(r[it]) - t0) / st.EPOCH_S)) for r in body]
    for k, r in zip(k_of, body, strict=True):
        if 0 <= k < n and r[ia]:
            score[k] = float(r[ia])
    res = st.stage_night(st.NightSignals(beat_times_s - t0, n, None, score))
    rates = breathing_per_epoch(np.round(beat_times_s * 1000).astype(np.int64), beat_pwa,
                                [round((t0 + (k + 1) * st.EPOCH_S) * 1000) for k in range(n)])
    with open(epochs_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*head, "stage", "resp_bpm"])
        for k, r in zip(k_of, body, strict=True):
            inside = 0 <= k < n
            w.writerow([*r, res.stages[k] if inside else st.UNKNOWN,
                        _cell(rates[k], ".1f") if inside else ""])
    return res


def summary_lines(r: BeatsReplay) -> list[str]:
    m = r.metrics
    lines = [f"{r.n_beats} beats, {r.staging.n} epochs -> {r.epochs_csv}",
             f"{len(r.events)} arousal events -> {r.events_csv}"]
    if m.tst_min is None:
        lines.append(f"sleep: {m.note}")
    else:
        lines.append(
            f"sleep: TIB {m.tib_min:.0f} min, TST {m.tst_min:.0f} min, SOL "
            f"{_cell(m.sol_min, '.0f') or 'unknown'} min, WASO {m.waso_min:.0f} min, SE "
            f"{100 * (m.se or 0):.0f}%, REM {m.rem_min:.0f} min, NREM {m.nrem_min:.0f} min, "
            f"arousal index {_cell(r.arousal_index, '.1f') or 'unknown'} per hour of sleep")
    lines += [f"note: {n}" for n in r.staging.notes]
    return lines


def finish_ppg_replay(nights: Sequence[object], start_unix_s: int, t0_s: float,
                      out: Path) -> Path:
    """After a PPG replay: DIR/events.csv from the device's arousal events and a `stage` column
    in DIR/epochs.csv (from the replayed beats in DIR/beats.csv)."""
    from nsdev.core import vocab

    events = []
    for n in nights:
        for ev in getattr(n, "events", []):
            if ev["kind"] == vocab.EV_AROUSAL:
                onset = (ev["unix_ms"] - start_unix_s * 1000) / 1000.0 + t0_s
                events.append((onset, ev["values"][0] / 1000.0, "arousal"))
    events_csv = out / "events.csv"
    write_events(events_csv, sorted(events))
    # Two columns, not a dict per beat: a long recording has ~100 k beats.
    times_l: list[float] = []
    pwa: list[float | None] = []
    with open(out / "beats.csv", newline="") as f:
        reader = csv.reader(f)
        head = next(reader, [])
        it, ip = head.index("time_s"), head.index("pwa")
        for r in reader:
            times_l.append(float(r[it]))
            pwa.append(float(r[ip]) if len(r) > ip and r[ip] else None)
    times = np.array(times_l)
    del times_l
    stage_epochs_csv(out / "epochs.csv", times, pwa)
    return events_csv
