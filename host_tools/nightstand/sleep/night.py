"""A recorded night's sleep: staging over its epoch grid, metrics over lights-out..lights-on.

Inputs are plain (the epochs' Unix start times, flags, room lux, the device's arousal scores,
the stored beat times, the device's events) so summaries, reports, trends and exports share one
computation. A small JSON cache (keyed by the night's content) keeps `nightstand nights` and
trends fast: staging one night costs about a second (SleepECG's feature extraction).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from nsdev.core import vocab

from nightstand.sleep import staging as st
from nightstand.sleep.breathing import breathing_per_epoch
from nightstand.sleep.metrics import SleepMetrics, sleep_metrics

CACHE_VERSION = 3  # bump when staging, metrics or the breathing rate change


@dataclass
class NightSleep:
    t0_unix_s: float  # start of staged epoch 0
    stages: list[str]  # per 30-s epoch of the whole recording
    p_wake: list[float | None]
    window_from_unix_s: float  # the sleep window the metrics cover (lights-out .. lights-on)
    window_to_unix_s: float
    window_source: str
    metrics: SleepMetrics
    arousals_in_sleep: int
    arousal_index_per_h: float | None  # device arousal events per hour of sleep
    notes: list[str] = field(default_factory=list)
    resp_bpm: list[float | None] = field(default_factory=list)  # breaths/min per epoch
    resp_median_bpm: float | None = None  # over the window's sleep epochs
    resp_known_pct: float | None = None  # of the window's sleep epochs
    def to_dict(self) -> dict[str, Any]:
        return {"t0_unix_s": self.t0_unix_s, "stages": self.stages, "p_wake": self.p_wake,
                "window_from_unix_s": self.window_from_unix_s,
                "window_to_unix_s": self.window_to_unix_s, "window_source": self.window_source,
                "metrics": self.metrics.to_dict(), "arousals_in_sleep": self.arousals_in_sleep,
                "arousal_index_per_h": self.arousal_index_per_h, "notes": self.notes,
                "resp_bpm": self.resp_bpm, "resp_median_bpm": self.resp_median_bpm,
                "resp_known_pct": self.resp_known_pct}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NightSleep:
        return cls(d["t0_unix_s"], list(d["stages"]), list(d["p_wake"]),
                   d["window_from_unix_s"], d["window_to_unix_s"], d["window_source"],
                   SleepMetrics(**d["metrics"]), d["arousals_in_sleep"],
                   d["arousal_index_per_h"], list(d["notes"]), list(d["resp_bpm"]),
                   d["resp_median_bpm"], d["resp_known_pct"])

    def stage_at(self, unix_s: float) -> str:
        k = int(math.floor((unix_s - self.t0_unix_s) / st.EPOCH_S))
        return self.stages[k] if 0 <= k < len(self.stages) else st.UNKNOWN

    def flat(self, prefix: str = "sleep_") -> dict[str, Any]:
        """Metrics as flat keys (sleep_tst_min, ...) for tables, trends and JSON summaries."""
        out: dict[str, Any] = {f"{prefix}{k}": v for k, v in self.metrics.to_dict().items()}
        out[f"{prefix}arousal_index_per_h"] = self.arousal_index_per_h
        out[f"{prefix}window_source"] = self.window_source
        out[f"{prefix}resp_median_bpm"] = self.resp_median_bpm
        out[f"{prefix}resp_known_pct"] = self.resp_known_pct
        return out


def _grid(epoch_unix_s: Sequence[float]) -> tuple[float, np.ndarray, int]:
    t = np.asarray(epoch_unix_s, dtype=np.float64)
    t0 = float(t.min())
    idx = np.round((t - t0) / st.EPOCH_S).astype(np.int64)
    return t0, idx, int(idx.max()) + 1


def night_sleep(epochs: Sequence[dict[str, Any]], beat_unix_ms: Sequence[int],
                events: Iterable[dict[str, Any]], utc_offset_s: int = 0,
                window: tuple[float | None, float | None, str] | None = None,
                beat_pwa: Sequence[float | None] | None = None) -> NightSleep | None:
    """Stage a night and compute its sleep metrics. None when the night has no epochs.

    window: (lights-out, lights-on, source) from the report's lights(); None or unknown ends:
    the whole recording."""
    epochs = [e for e in epochs if e.get("unix_s") is not None]
    if not epochs:
        return None
    t0, idx, n = _grid([e["unix_s"] for e in epochs])
    flags = np.zeros(n, np.int64)
    lux = np.full(n, np.nan)
    score = np.full(n, np.nan)
    for k, e in zip(idx, epochs, strict=True):
        flags[k] = int(e.get("flags") or 0)
        if e.get("lux") is not None:
            lux[k] = float(e["lux"])
        if e.get("arousal_score") is not None:
            score[k] = float(e["arousal_score"])
    beats = np.asarray(beat_unix_ms, dtype=np.float64) / 1000.0 - t0
    local = dt.datetime.fromtimestamp(t0 + utc_offset_s, dt.UTC)
    res = st.stage_night(st.NightSignals(beats, n, local.time().replace(microsecond=0), score,
                                         flags, lux))
    end = t0 + n * st.EPOCH_S
    lo, lon, src = window if window is not None else (None, None, "recording")
    if lo is None or lon is None or lon <= lo:
        lo, lon, src = t0, end, "whole recording"
    k0 = max(0, int(math.floor((lo - t0) / st.EPOCH_S)))
    k1 = min(n, int(math.ceil((lon - t0) / st.EPOCH_S)))
    part = res.stages[k0:k1]
    m = sleep_metrics(part)
    onsets = [e["unix_ms"] / 1000.0 for e in events if e.get("kind") == vocab.EV_AROUSAL]
    n_ar = sum(1 for t in onsets if lo <= t < lon and
               res.stages[min(n - 1, max(0, int((t - t0) // st.EPOCH_S)))] in (st.REM, st.NREM))
    idx_h = n_ar / (m.tst_min / 60.0) if m.tst_min else None
    p_wake = [None if not np.isfinite(p) else round(float(p), 3) for p in res.prob[:, 0]]
    ends_ms = ((t0 + st.EPOCH_S * (np.arange(n) + 1)) * 1000).astype(np.int64)
    rates = breathing_per_epoch(list(beat_unix_ms), list(beat_pwa) if beat_pwa else None,
                                ends_ms)
    # the device's own per-epoch rate (nsdev.core.resp.PPGBreathing: raw PPG, baseline included)
    # when the night carries it; the beats-only recomputation above for older nights
    device: list[float | None] = [None] * n
    for k, e in zip(idx, epochs, strict=True):
        if e.get("resp_per_min") is not None:
            device[k] = round(float(e["resp_per_min"]), 2)
    if any(r is not None for r in device):
        rates = device
    asleep = [rates[k] for k in range(k0, k1) if res.stages[k] in (st.REM, st.NREM)]
    known = [r for r in asleep if r is not None]
    return NightSleep(t0, res.stages, p_wake, t0 + k0 * st.EPOCH_S, t0 + k1 * st.EPOCH_S, src,
                      m, n_ar, idx_h, res.notes, rates,
                      float(np.median(known)) if known else None,
                      100.0 * len(known) / len(asleep) if asleep else None)


def cache_key(n_epochs: int, first_s: float | None, last_s: float | None,
              beat_unix_ms: Sequence[int], n_events: int,
              window: tuple[float | None, float | None, str] | None) -> str:
    """A summary of the night's content and of the staging code's constants."""
    h = hashlib.sha256()
    h.update(st.LAYER_COEF.tobytes())  # a refit or a changed rule invalidates the cache
    h.update(repr((st.MIN_BEATS_EPOCH, st.MIN_BEATS_OWN, st.MIN_BEATS_NIGHT, st.LIT_LUX,
                   st.SMOOTH_EPOCHS, st.EXTRA_FEATURES)).encode())
    h.update(json.dumps([CACHE_VERSION, n_epochs, len(beat_unix_ms), first_s, last_s, n_events,
                         int(beat_unix_ms[0]) if len(beat_unix_ms) else None,
                         int(beat_unix_ms[-1]) if len(beat_unix_ms) else None,
                         list(window) if window else None]).encode())
    return h.hexdigest()[:24]


def cached_night_sleep(cache_dir: Path | None,
                       epochs: Sequence[dict[str, Any]] | Callable[[], list[dict[str, Any]]],
                       beat_unix_ms: Sequence[int], events: Sequence[dict[str, Any]],
                       utc_offset_s: int = 0,
                       window: tuple[float | None, float | None, str] | None = None,
                       beat_pwa: Sequence[float | None] | None = None,
                       key: str | None = None) -> NightSleep | None:
    """night_sleep() with a JSON cache in cache_dir (None: no cache). epochs may be a callable
    building them (only called on a cache miss; then give `key`). A cache that cannot be read
    or written is ignored (the result is recomputed), never an error."""
    def get_epochs() -> Sequence[dict[str, Any]]:
        return epochs() if callable(epochs) else epochs

    if cache_dir is None:
        return night_sleep(get_epochs(), beat_unix_ms, events, utc_offset_s, window, beat_pwa)
    if key is None:
        ep = get_epochs()
        key = cache_key(len(ep), ep[0].get("unix_s") if ep else None,
                        ep[-1].get("unix_s") if ep else None, beat_unix_ms, len(events), window)
    path = cache_dir / f"{key}.json"
    try:
        return NightSleep.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    res = night_sleep(get_epochs(), beat_unix_ms, events, utc_offset_s, window, beat_pwa)
    if res is not None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(res.to_dict()))
        except OSError:
            pass
    return res


def hypnogram_text(ns: NightSleep, width: int = 60) -> str:
    """A one-line text hypnogram (W wake, R REM, n NREM, ? unknown) squeezed to `width`."""
    sym = {st.WAKE: "W", st.REM: "R", st.NREM: "n", st.UNKNOWN: "?"}
    n = len(ns.stages)
    if n == 0:
        return ""
    step = max(1, math.ceil(n / width))
    out = []
    for i in range(0, n, step):
        chunk = ns.stages[i:i + step]
        out.append(sym[max(set(chunk), key=chunk.count)])
    return "".join(out)


def store_night_sleep(store: Any, nd: Any, g: Any,
                      window: tuple[float | None, float | None, str] | None,
                      ) -> NightSleep | None:
    """The sleep of a stored night for reports and trends (nd: report NightData, g: its Grid).

    Epochs and beats come from the decoded night when loaded (reports) or else from the store's
    tables (trends); results are cached beside the store (sleep-cache/)."""
    def from_grid() -> list[dict[str, Any]]:
        return [{"unix_s": float(g.unix_s[i]), "flags": int(g.flags[i]),
                 "lux": _num(g.values["lux"][i]),
                 "arousal_score": _num(g.values["arousal_score"][i])}
                for i in range(g.n) if g.present[i]]

    present = np.flatnonzero(g.present) if g.n else np.zeros(0, np.int64)
    first = float(g.unix_s[present[0]]) if present.size else None
    last = float(g.unix_s[present[-1]]) if present.size else None
    epochs: Sequence[dict[str, Any]] | Callable[[], list[dict[str, Any]]] = (
        nd.epochs if nd.epochs else from_grid)
    beats, pwa = nd.beat_t_ms, nd.beat_pwa
    if not beats and nd.row_id:
        rows = store.db.execute(
            "SELECT unix_ms, pwa FROM beats WHERE night=? AND unix_ms IS NOT NULL "
            "ORDER BY unix_ms", (nd.row_id,)).fetchall()
        beats, pwa = [r[0] for r in rows], [r[1] for r in rows]
    cache = Path(store.root) / "sleep-cache" if getattr(store, "root", None) else None
    key = cache_key(int(present.size), first, last, beats, len(nd.events), window)
    return cached_night_sleep(cache, epochs, beats, nd.events, nd.utc_offset_s, window, pwa, key)


def _num(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def store_sleep_by_row(store: Any) -> dict[int, NightSleep | None]:
    """Every decoded night's sleep, by store row id (for `nightstand nights`; cached)."""
    from nightstand.report.metrics import grid_of, lights, load_light

    rows = [r for r in store.nights() if r["start_unix_s"] is not None and not r["decode_error"]]
    out: dict[int, NightSleep | None] = {}
    for nd in load_light(store, rows):
        g = grid_of(nd)
        out[nd.row_id] = store_night_sleep(store, nd, g, lights(nd, g)) if g.n else None
    return out


def tst_se_cells(ns: NightSleep | None) -> tuple[str, str]:
    """("6:42", "87%") for a table; "?" where unknown."""
    if ns is None or ns.metrics.tst_min is None or ns.metrics.se is None:
        return "?", "?"
    t = ns.metrics.tst_min
    return f"{int(t // 60)}:{int(round(t % 60)):02d}", f"{100 * ns.metrics.se:.0f}%"
