"""Breathing rate per epoch on the host: the firmware's method (nsdev.core.resp) in numpy.

The device code runs per beat and once per epoch; reports need it for every epoch of stored
nights, where pure Python would take seconds per night. This is the same computation vectorised
over frequencies and beats; tests/host/sleep/test_sleep_breathing.py proves it equal to
nsdev.core.resp.BreathingRate on the same beats.
"""

from __future__ import annotations

import numpy as np
from nsdev.core import resp

HIST = 128  # nsdev.core.resp._HIST
WIN_MS = 64000
MIN_BEATS = 32
MIN_IBI, MAX_IBI = 273, 2200
BAD_FLAGS = 1 | 2 | 4 | 8


def valid_beats(t_ms: np.ndarray, ibi_ms: np.ndarray, flags: np.ndarray | None = None,
                ) -> np.ndarray:
    """Bool mask of the beats BreathingRate.add_beat keeps."""
    ibi = np.asarray(ibi_ms, dtype=np.int64)
    in_range = (ibi >= MIN_IBI) & (ibi <= MAX_IBI)
    ok = in_range.copy()
    if flags is not None:
        ok &= (np.asarray(flags, dtype=np.int64) & BAD_FLAGS) == 0
    prev = np.concatenate([[0], np.where(in_range, ibi, 0)[:-1]])
    jump = (prev > 0) & (np.abs(ibi - prev) * 100 > 35 * prev)
    return ok & ~jump


def _peak(ts: np.ndarray, xs: np.ndarray, nyq_bpm: float) -> tuple[float | None, float]:
    xs = xs - xs.mean()
    hi = min(resp.F_HI_BPM, nyq_bpm * 0.9)
    if hi <= resp.F_LO_BPM + resp.F_STEP_BPM:
        return None, 0.0
    steps = int((hi - resp.F_LO_BPM) / resp.F_STEP_BPM) + 1
    w = 2.0 * np.pi * (resp.F_LO_BPM + np.arange(steps) * resp.F_STEP_BPM) / 60.0
    a = np.outer(w, ts)
    power = (np.cos(a) @ xs) ** 2 + (np.sin(a) @ xs) ** 2
    total = float(power.sum())
    if total <= 0.0:
        return None, 0.0
    k = int(np.argmax(power))
    if k == 0 or k == steps - 1:
        return None, 0.0
    share = float(power[k - 1] + power[k] + power[k + 1]) / total
    den = float(power[k - 1] - 2.0 * power[k] + power[k + 1])
    off = 0.5 * float(power[k - 1] - power[k + 1]) / den if den != 0.0 else 0.0
    return resp.F_LO_BPM + (k + off) * resp.F_STEP_BPM, share


def estimate_at(t_ms: np.ndarray, ibi_ms: np.ndarray, pwa: np.ndarray, now_ms: int,
                ) -> float | None:
    """BreathingRate.estimate(now_ms) given the VALID beats (t, ibi, pwa; pwa 0 = none)."""
    hi = int(np.searchsorted(t_ms, now_ms, side="right"))
    lo = max(0, hi - HIST)
    sel = slice(lo, hi)
    t, i, p = t_ms[sel], ibi_ms[sel], pwa[sel]
    keep = now_ms - t <= WIN_MS
    t, i, p = t[keep], i[keep], p[keep]
    if t.size < MIN_BEATS:
        return None
    ts = (t - t[0]) / 1000.0
    nyq = 0.5 * 60000.0 / float(i.mean())
    f_ibi, q_ibi = _peak(ts, i.astype(np.float64), nyq)
    have_pwa = bool(p.min() > 0)
    f_pwa, q_pwa = _peak(ts, p.astype(np.float64), nyq) if have_pwa else (None, 0.0)
    a = f_ibi if f_ibi is not None and q_ibi >= resp.PEAK_SHARE else None
    b = f_pwa if f_pwa is not None and q_pwa >= resp.PEAK_SHARE else None
    if a is not None and b is not None:
        return 0.5 * (a + b) if abs(a - b) <= resp.AGREE_BPM else None
    if not have_pwa and a is not None and q_ibi >= resp.PEAK_SHARE_ONLY:
        return a
    return None


def breathing_per_epoch(beat_t_ms: np.ndarray | list[int], beat_pwa: list[float | None] | None,
                        epoch_end_ms: np.ndarray | list[int]) -> list[float | None]:
    """Breaths/min at the end of each epoch from consecutive stored beats (IBI = the interval
    to the previous beat; a gap makes it invalid), None where unknown."""
    t = np.asarray(beat_t_ms, dtype=np.int64)
    if t.size < 2:
        return [None] * len(epoch_end_ms)
    ibi = np.concatenate([[0], np.diff(t)])
    pw = np.zeros(t.size, dtype=np.int64)
    if beat_pwa is not None:
        pw = np.array([int(x) if x is not None and x > 0 else 0 for x in beat_pwa],
                      dtype=np.int64)
    ok = valid_beats(t, ibi)
    tv, iv, pv = t[ok], ibi[ok], pw[ok]
    out: list[float | None] = []
    for end in np.asarray(epoch_end_ms, dtype=np.int64):
        v = estimate_at(tv, iv, pv, int(end))
        out.append(None if v is None else round(v, 2))
    return out
