"""Numbers across nights: one row of metrics per night (from the store's tables), bedtime
regularity, and the before/after comparison around a journal entry (Welch t interval)."""

from __future__ import annotations

import datetime as dt
import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Any

from scipy import stats

from nightstand.journal import Entry
from nightstand.report.metrics import (
    decoded_rows,
    grid_of,
    hyperarousal_series,
    lights,
    load_light,
    night_metrics,
)
from nightstand.store import Store

# (key, label, unit) of the metrics compared before/after a journal entry
COMPARED = (
    ("sleep_hr_mean_bpm", "mean sleeping heart rate", "bpm"),
    ("sleep_hr_lowest_bpm", "lowest 5-min sleeping heart rate", "bpm"),
    ("sleep_rmssd_median_ms", "sleeping RMSSD (median)", "ms"),
    ("arousal_index_per_h", "arousal index", "per h"),
    ("evening_mean_mel_lx", "evening melanopic EDI (mean)", "lx"),
    ("lights_out_min", "lights-out time", "min from midnight"),
    ("presleep_score", "pre-sleep hyperarousal score", "0–1"),
    ("sleep_tst_min", "total sleep time (estimated)", "min"),
    ("sleep_sol_min", "sleep onset latency (estimated)", "min"),
    ("sleep_waso_min", "wake after sleep onset (estimated)", "min"),
    ("sleep_se", "sleep efficiency (estimated)", "0–1"),
)


def add_sleep(store: Store, nd: Any, g: Any, m: dict[str, Any]) -> None:
    """m["sleep"] (nightstand.sleep.night.NightSleep or None) and its flat sleep_* keys, over
    the night's lights-out..lights-on."""
    from nightstand.sleep.night import store_night_sleep

    window = (m.get("lights_out_unix_s"), m.get("lights_on_unix_s"),
              m.get("lights_source") or "unknown")
    ns = store_night_sleep(store, nd, g, window)
    m["sleep"] = ns
    if ns is not None:
        m.update(ns.flat())


def clock_min(unix_s: float | None, utc_offset_s: int) -> float | None:
    """Local clock time in minutes from midnight, continuous across it (-720..720: 23:00 -> -60,
    01:30 -> 90)."""
    if unix_s is None:
        return None
    m = ((unix_s + utc_offset_s) % 86400) / 60.0
    return m - 1440 if m >= 720 else m


def trend_rows(store: Store) -> list[dict[str, Any]]:
    """Metrics of every decoded night, oldest first; the pre-sleep score is replayed per device
    in order, so each night's baseline is built from the nights before it."""
    rows = decoded_rows(store)
    nights = load_light(store, rows)
    out: list[dict[str, Any]] = []
    grids = [grid_of(nd) for nd in nights]
    metrics = [night_metrics(nd, g) for nd, g in zip(nights, grids, strict=True)]
    for dev in sorted({nd.device_id for nd in nights}):
        idx = [i for i, nd in enumerate(nights) if nd.device_id == dev]
        los = [lights(nights[i], grids[i])[0] for i in idx]
        for i, s in zip(idx, hyperarousal_series([nights[i] for i in idx], los), strict=True):
            metrics[i]["presleep"] = s
    for nd, g, m in zip(nights, grids, metrics, strict=True):
        add_sleep(store, nd, g, m)
        m["presleep_score"] = (m.get("presleep") or {}).get("score")
        m["hr_decline_bpm_30min"] = (m.get("presleep") or {}).get("decline_bpm_30min")
        m["lights_out_min"] = clock_min(m.get("lights_out_unix_s"), m["utc_offset_s"])
        out.append(m)
    return out


def bedtime_sd_min(rows: list[dict[str, Any]]) -> float | None:
    """Bedtime regularity: sample SD of the lights-out clock times (minutes), >= 2 nights."""
    v = [r["lights_out_min"] for r in rows if r.get("lights_out_min") is not None]
    return statistics.stdev(v) if len(v) >= 2 else None


@dataclass
class Comparison:
    key: str
    label: str
    unit: str
    n_before: int
    n_after: int
    mean_before: float | None
    mean_after: float | None
    diff: float | None  # after - before
    ci_low: float | None  # 95 % Welch t interval of the difference
    ci_high: float | None
    note: str


def welch(before: list[float], after: list[float]) -> tuple[float, float] | None:
    """95 % confidence interval of mean(after) - mean(before), Welch's t (unequal variances);
    None when a side has < 2 values or neither side varies."""
    if len(before) < 2 or len(after) < 2:
        return None
    if statistics.pvariance(before) + statistics.pvariance(after) <= 1e-12 * (
            1.0 + statistics.fmean(before) ** 2 + statistics.fmean(after) ** 2):
        return None  # neither side varies: no interval (scipy would warn and give NaN)
    with warnings.catch_warnings():  # near-constant sides: scipy warns, the interval is fine
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(after, before, equal_var=False)
    ci = res.confidence_interval(0.95)
    lo, hi = float(ci.low), float(ci.high)
    if math.isnan(lo) or math.isnan(hi):
        return None
    return lo, hi


def contrast(first: list[float], second: list[float], names: tuple[str, str] = ("before", "after"),
             where: str = "on each side", excludes: str = "the interval excludes 0",
             ) -> tuple[float | None, float | None, float | None, float | None, float | None, str]:
    """Means of two groups of nights, mean(second) - mean(first), its Welch 95 % interval and
    a one-line reading of it: (mean1, mean2, diff, ci_low, ci_high, note)."""
    m1 = statistics.fmean(first) if first else None
    m2 = statistics.fmean(second) if second else None
    diff = m2 - m1 if m1 is not None and m2 is not None else None
    ci = welch(first, second)
    if len(first) < 2 or len(second) < 2:
        note = (f"not enough nights ({len(first)} {names[0]}, {len(second)} {names[1]}; "
                f"at least 2 {where} are needed)")
    elif ci is None:
        note = f"no variation {where.replace('each', 'either')}: no interval"
    elif ci[0] > 0 or ci[1] < 0:
        note = excludes
    else:
        note = "the interval includes 0: no clear change"
    return m1, m2, diff, ci[0] if ci else None, ci[1] if ci else None, note


def sides(rows: list[dict[str, Any]], entry: Entry,
          journal: list[Entry]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Nights from the previous entry's date up to this entry (before) and from this entry's
    date up to the next entry (after); nights are dated by their evening."""
    day = dt.date.fromisoformat(entry.date)
    prev = [dt.date.fromisoformat(e.date) for e in journal if e.date < entry.date]
    nxt = [dt.date.fromisoformat(e.date) for e in journal if e.date > entry.date]
    lo = max(prev) if prev else dt.date.min
    hi = min(nxt) if nxt else dt.date.max
    before = [r for r in rows if lo <= dt.date.fromisoformat(r["date"]) < day]
    after = [r for r in rows if day <= dt.date.fromisoformat(r["date"]) < hi]
    return before, after


def compare(rows: list[dict[str, Any]], entry: Entry,
            journal: list[Entry]) -> tuple[list[Comparison], dict[str, Any]]:
    before, after = sides(rows, entry, journal)
    out = []
    for key, label, unit in COMPARED:
        b = [float(r[key]) for r in before if r.get(key) is not None]
        a = [float(r[key]) for r in after if r.get(key) is not None]
        mb, ma, diff, lo, hi, note = contrast(b, a)
        out.append(Comparison(key, label, unit, len(b), len(a), mb, ma, diff, lo, hi, note))
    info = {"before_n": len(before), "after_n": len(after),
            "before_from": before[0]["date"] if before else None,
            "before_to": before[-1]["date"] if before else None,
            "after_from": after[0]["date"] if after else None,
            "after_to": after[-1]["date"] if after else None,
            "bedtime_sd_before_min": bedtime_sd_min(before),
            "bedtime_sd_after_min": bedtime_sd_min(after)}
    return out, info
