"""Numbers for reports: a night's epochs on a regular 30-s grid (NaN = unknown, never filled in),
lights-out/on, sleeping heart rate, arousal index, evening melanopic dose, pre-sleep score.

Definitions are documented in docs/reports-and-exports.md; the vocabulary (fields, flags, event
kinds) is nsdev.core.vocab, the melanopic lamp model and limits nsdev.core.light, and the pre-sleep
hyperarousal score nsdev.core.arousal.Hyperarousal (the firmware's own code, run on the host)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from nsdev.core import arousal as ns_arousal
from nsdev.core import light as ns_light
from nsdev.core import vocab
from nsdev.core.nfdecode import event_fields

from nightstand.errors import UserError
from nightstand.night import Night, decode_night
from nightstand.store import Store, damaged

EPOCH_S = vocab.EPOCH_S
# Flags that make an epoch's heart values unreliable (the value may be stored, it is not used).
ARTEFACT_FLAGS = (vocab.FLAG_CONTACT_OFF | vocab.FLAG_FIFO_OVERFLOW | vocab.FLAG_MOTION
                  | vocab.FLAG_PPG_CLIPPED | vocab.FLAG_SENSOR_FAULT)
EVENING_LIMIT_LX = float(ns_light.DEFAULTS["evening_cap_mel_lx"])  # Brown et al. 2022
NIGHT_LIMIT_LX = float(ns_light.DEFAULTS["night_cap_mel_lx"])
EVENING_WINDOW_S = int(ns_light.DEFAULTS["winddown_s"])  # 3 h before lights-out
DARK_LUX = 3.0  # photopic lux at the sensor below which the room counts as dark
DARK_MIN_S = 1800  # a dark stretch must last 30 min to count as lights-out
LOWEST_HR_WINDOW = 10  # epochs: lowest sleeping HR is the lowest 5-min mean
LOWEST_HR_MIN_VALID = 6  # valid epochs needed in such a window
MIN_VALID_SLEEP_S = 600  # below 10 min of valid sleep recording an index is unknown
BASELINE_NIGHTS = 28  # previous nights replayed for the pre-sleep baseline
# Clip temperature (the MAX30102 die in the finger clip, a proxy of finger skin temperature):
CLIP_SETTLE_S = 600  # the clip warms up for minutes after the finger goes in: left out
CLIP_EVENING_S = 3600  # "evening": the hour before lights-out
CLIP_SLEEP_FROM_S, CLIP_SLEEP_TO_S = 1800, 5400  # "after lights-out": 30-90 min after it
CLIP_MIN_EPOCHS = 10  # known epochs (5 min) needed for each median

# The lamp's melanopic EDI at the eye per unit channel level, from the firmware's model with its
# default photometry (the device's own lamp configuration is not in the night file).
_LAMP_MODEL = ns_light.LightController()
LAMP_MEL_PER_LEVEL = (_LAMP_MODEL.lamp_mel_edi_lx(1.0, 0.0), _LAMP_MODEL.lamp_mel_edi_lx(0.0, 1.0))

GRID_FIELDS = ("hr_bpm", "rmssd_ms", "sdnn_ms", "pwa_mean", "spo2_pct", "sqi", "arousal_score",
               "temp_c", "rh_pct", "pressure_hpa", "gas_ohm", "lux", "mel_edi_lx",
               "clip_temp_c")


@dataclass
class NightData:
    """What the report needs of a night, from a decoded night file or from the store's tables."""
    row_id: int
    device_id: str
    night_id: int
    start_unix_s: int
    utc_offset_s: int
    epochs: list[dict[str, Any]]
    events: list[dict[str, Any]]
    beat_t_ms: list[int] = field(default_factory=list)
    beat_pwa: list[float | None] = field(default_factory=list)
    skipped_ranges: int = 0
    closed: bool = False
    grid: Grid | None = None  # set by load_light (epochs then stay empty); else built on demand
    header_recovered: bool = False  # the night's header record was damaged

    @classmethod
    def from_night(cls, night: Night, row_id: int = 0) -> NightData:
        return cls(row_id, str(night.header.get("device_id", "")), night.night_id,
                   night.start_unix_s, night.utc_offset_s, night.epochs, night.events,
                   night.beat_t_ms, night.beat_pwa, len(night.skipped), night.closed,
                   header_recovered=night.header_recovered)

    def night_date(self) -> dt.date:
        return night_date(self.start_unix_s, self.utc_offset_s)

    def local(self, unix_s: float) -> dt.datetime:
        return local_time(unix_s, self.utc_offset_s)


def local_time(unix_s: float, utc_offset_s: int) -> dt.datetime:
    """Naive local wall-clock time (the night's own UTC offset)."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=unix_s + utc_offset_s)


def night_date(start_unix_s: int, utc_offset_s: int) -> dt.date:
    """A night belongs to the date of its evening: local start time minus 12 h."""
    return local_time(start_unix_s - 43200, utc_offset_s).date()


# ---- loading ------------------------------------------------------------------------------------

def _night_row(store: Store, row_id: int) -> dict[str, Any]:
    for row in store.nights():
        if row["id"] == row_id:
            return row
    raise UserError(f"no night with id {row_id} in the store: see `nightstand nights`")


def load_night(store: Store, row_id: int) -> tuple[NightData, Night]:
    """Decode the stored raw night file (authoritative; includes the beats)."""
    _night_row(store, row_id)
    try:
        data = store.raw_bytes(row_id)
    except OSError as e:
        raise UserError(f"night {row_id}: its raw file is missing from the store ({e})") from None
    night = decode_night(data, store.fallback_header(row_id))
    return NightData.from_night(night, row_id), night


def load_light(store: Store, rows: Iterable[dict[str, Any]]) -> list[NightData]:
    """Epoch grids and events (no beats) of the given nights from the store's decoded tables:
    fast enough for a year of trends (decoding every raw file again would take minutes)."""
    cols = ", ".join(f"json_extract(data_json, '$.{k}')" for k in GRID_FIELDS)
    q = (f"SELECT unix_s, flags, {cols}, json_extract(data_json, '$.lamp_level[0]'), "
         "json_extract(data_json, '$.lamp_level[1]') FROM epochs WHERE night=? ORDER BY rowid")
    out = []
    for row in rows:
        if row.get("start_unix_s") is None:
            continue  # never decoded: no header, no times
        rid = row["id"]
        grid = _grid_from_rows(store.db.execute(q, (rid,)).fetchall())
        events = []
        for unix_ms, kind, name, values, text in store.db.execute(
                "SELECT unix_ms, kind, kind_name, values_json, text FROM events WHERE night=? "
                "ORDER BY rowid", (rid,)):
            try:
                vals = json.loads(values or "[]")
            except ValueError:
                raise damaged(store.db_path, f"night {rid}: an event row is not JSON") from None
            events.append({"unix_ms": unix_ms, "kind": kind, "kind_name": name,
                           "values": vals, "fields": event_fields(kind, vals), "text": text})
        out.append(NightData(rid, row["device_id"], row["night_id"], int(row["start_unix_s"]),
                             int(row["utc_offset_s"] or 0), [], events,
                             skipped_ranges=int(row.get("n_skipped") or 0), grid=grid))
    return out


# ---- choosing nights ----------------------------------------------------------------------------

def decoded_rows(store: Store) -> list[dict[str, Any]]:
    rows = [r for r in store.nights() if r["start_unix_s"] is not None and not r["decode_error"]]
    if not store.nights():
        raise UserError(f"the store {store.db_path} holds no nights yet: run `nightstand sync`")
    if not rows:
        raise UserError("no night in the store could be decoded (see `nightstand nights`)")
    return rows


def select_rows(store: Store, night: str | None = None, last: bool = False,
                every: bool = False) -> list[dict[str, Any]]:
    """Nights by store id ("12"), by date ("2026-01-15", the date of the evening), the last one,
    or all. Raises UserError when nothing matches."""
    rows = decoded_rows(store)
    if every:
        return rows
    if night is None or last:
        return [rows[-1]]
    text = night.strip()
    if text.isdigit():
        found = [r for r in rows if r["id"] == int(text)]
        if not found:
            raise UserError(f"no night with id {text}: see `nightstand nights` (ids "
                            f"{rows[0]['id']}..{rows[-1]['id']})")
        return found
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"bad night {night!r}: give a store id (e.g. 3) or a date "
                        "YYYY-MM-DD") from None
    found = [r for r in rows if night_date(r["start_unix_s"], r["utc_offset_s"] or 0) == day]
    if not found:
        raise UserError(f"no night on {day.isoformat()} in the store: see `nightstand nights`")
    return found


# ---- the regular epoch grid ---------------------------------------------------------------------

@dataclass
class Grid:
    """Epochs on a regular 30-s grid from t0_s. NaN (or present=False) = unknown/missing."""
    t0_s: int
    unix_s: np.ndarray  # start of each grid epoch (float64, Unix s)
    present: np.ndarray  # bool: an epoch record exists
    flags: np.ndarray  # int64, 0 where missing
    values: dict[str, np.ndarray]  # GRID_FIELDS + lamp_warm, lamp_amber (0..1)

    @property
    def n(self) -> int:
        return len(self.unix_s)

    def valid(self) -> np.ndarray:
        """Epochs whose heart values are usable: HR known and no artefact flag."""
        return self.present & ~np.isnan(self.values["hr_bpm"]) & ((self.flags & ARTEFACT_FLAGS)
                                                                  == 0)

    def heart(self, key: str) -> np.ndarray:
        """A heart field with NaN where the epoch is not valid."""
        return np.where(self.valid(), self.values[key], np.nan)

    def lamp_mel_lx(self) -> np.ndarray:
        return (self.values["lamp_warm"] * LAMP_MEL_PER_LEVEL[0]
                + self.values["lamp_amber"] * LAMP_MEL_PER_LEVEL[1])

    def total_mel_lx(self) -> np.ndarray:
        """Melanopic EDI at the eye: room (recorded, lamp subtracted) + lamp (model)."""
        return self.values["mel_edi_lx"] + self.lamp_mel_lx()

    def index(self, unix_s: float) -> int:
        return int(math.floor((unix_s - self.t0_s) / EPOCH_S))

    def span(self, from_s: float | None, to_s: float | None) -> np.ndarray:
        """Bool mask of grid epochs starting in [from_s, to_s)."""
        if from_s is None or to_s is None:
            return np.zeros(self.n, bool)
        return (self.unix_s >= from_s) & (self.unix_s < to_s)


def build_grid(epochs: list[dict[str, Any]]) -> Grid:
    def lamp(e: dict[str, Any], i: int) -> float | None:
        levels = e.get("lamp_level")
        return levels[i] if levels and len(levels) > i else None

    return _grid_from_rows([(e["unix_s"], e.get("flags") or 0, *(e.get(k) for k in GRID_FIELDS),
                             lamp(e, 0), lamp(e, 1)) for e in epochs])


def grid_of(nd: NightData) -> Grid:
    if nd.grid is None:
        nd.grid = build_grid(nd.epochs)
    return nd.grid


def _grid_from_rows(rows: list[tuple[Any, ...]]) -> Grid:
    """rows: (unix_s, flags, *GRID_FIELDS, lamp warm, lamp amber), None = unknown."""
    keys = (*GRID_FIELDS, "lamp_warm", "lamp_amber")
    rows = [r for r in rows if r[0] is not None]
    if not rows:
        return Grid(0, np.zeros(0), np.zeros(0, bool), np.zeros(0, np.int64),
                    {k: np.zeros(0) for k in keys})
    a = np.array(rows, dtype=np.float64)  # None -> NaN
    times = a[:, 0].astype(np.int64)
    t0 = int(times.min())
    n = int((times.max() - t0) // EPOCH_S + 1)
    idx = (times - t0 + EPOCH_S // 2) // EPOCH_S  # a later duplicate wins, as in the file
    present = np.zeros(n, bool)
    present[idx] = True
    flags = np.zeros(n, np.int64)
    flags[idx] = np.nan_to_num(a[:, 1]).astype(np.int64)
    vals = {}
    for j, k in enumerate(keys):
        col = np.full(n, np.nan)
        col[idx] = a[:, 2 + j]
        vals[k] = col
    unix = t0 + EPOCH_S * np.arange(n, dtype=np.float64)
    return Grid(t0, unix, present, flags, vals)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where mask is True."""
    if not len(mask):
        return []
    m = np.concatenate(([False], mask.astype(bool), [False]))
    d = np.flatnonzero(m[1:] != m[:-1])
    return [(int(d[i]), int(d[i + 1])) for i in range(0, len(d), 2)]


# ---- the night's numbers ------------------------------------------------------------------------

def _events(nd: NightData, kind: int) -> list[dict[str, Any]]:
    return [e for e in nd.events if e.get("kind") == kind and e.get("unix_ms") is not None]


def _dark_runs(g: Grid) -> tuple[float | None, float | None, str]:
    """First and last 30-min stretch with the lamp off and the room dark (< DARK_LUX)."""
    if not g.n:
        return None, None, "unknown"
    lamp_off = (g.values["lamp_warm"] == 0) & (g.values["lamp_amber"] == 0)
    lux = g.values["lux"]
    if np.isnan(lux).all():
        dark, source = lamp_off, "lamp"
    else:
        dark, source = lamp_off & (lux < DARK_LUX), "light"
    long_runs = [r for r in runs(dark & g.present) if (r[1] - r[0]) * EPOCH_S >= DARK_MIN_S]
    if not long_runs:
        return None, None, "unknown"
    return (float(g.unix_s[long_runs[0][0]]),
            float(g.unix_s[long_runs[-1][1] - 1] + EPOCH_S), source)


def lights(nd: NightData, g: Grid) -> tuple[float | None, float | None, str]:
    """(lights-out, lights-on, source). LIGHTS_OUT/LIGHTS_ON events (the device's own detection)
    win; otherwise each is estimated from light: the start of the first and the end of the last
    30-min stretch with the lamp off and the room dark. Lights-on defaults to the end of the
    recording."""
    est_out, est_on, est_src = _dark_runs(g)
    out_ev = _events(nd, vocab.EV_LIGHTS_OUT)
    lo = out_ev[0]["unix_ms"] / 1000.0 if out_ev else est_out
    if lo is None:
        return None, None, "unknown"
    on_ev = [e["unix_ms"] / 1000.0 for e in _events(nd, vocab.EV_LIGHTS_ON)
             if e["unix_ms"] / 1000.0 > lo]
    end = float(g.unix_s[-1] + EPOCH_S) if g.n else lo
    if on_ev:
        lon, on_src = on_ev[-1], "events"
    elif est_on is not None and est_on > lo:
        lon, on_src = est_on, est_src
    else:
        lon, on_src = end, "end"
    return lo, lon, f"{'events' if out_ev else est_src}/{on_src}"


def lowest_mean(values: np.ndarray, window: int = LOWEST_HR_WINDOW,
                min_valid: int = LOWEST_HR_MIN_VALID) -> float | None:
    """Lowest mean of `window` consecutive epochs with >= min_valid known values."""
    if len(values) < window:
        return None
    known = ~np.isnan(values)
    csum = np.concatenate(([0.0], np.cumsum(np.where(known, values, 0.0))))
    ccount = np.concatenate(([0], np.cumsum(known)))
    sums = csum[window:] - csum[:-window]
    counts = ccount[window:] - ccount[:-window]
    ok = counts >= min_valid
    if not ok.any():
        return None
    return float((sums[ok] / counts[ok]).min())


def _f(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _nanmean(a: np.ndarray) -> float | None:
    a = a[~np.isnan(a)]
    return float(a.mean()) if len(a) else None


def _nanmedian(a: np.ndarray) -> float | None:
    a = a[~np.isnan(a)]
    return float(np.median(a)) if len(a) else None


def smart_dawn(nd: NightData) -> dict[str, Any] | None:
    """The smart dawn's start (EV_SMART_DAWN): time, minutes early and why; None if off."""
    evs = _events(nd, vocab.EV_SMART_DAWN)
    if not evs:
        return None
    e = evs[-1]
    vals = list(e.get("values") or []) + [0, 0]
    names = vocab.SMART_DAWN_REASONS
    return {"unix_s": e["unix_ms"] / 1000.0, "advance_min": vals[0] / 60.0,
            "reason": names[vals[1]] if 0 <= vals[1] < len(names) else "unknown"}


SMART_DAWN_WHY = {"latest": "no sign of light sleep in the window: the fixed dawn",
                  "motion": "started early on movement", "arousal": "started early on an arousal",
                  "hr": "started early on a heart-rate rise"}


def wind_down_sessions(nd: NightData) -> list[dict[str, Any]]:
    """Breathing-paced wind-down sessions: WIND_DOWN events (started=1 opens, 0 closes)."""
    sessions: list[dict[str, Any]] = []
    for e in sorted(nd.events, key=lambda e: e.get("unix_ms") or 0):
        t = (e.get("unix_ms") or 0) / 1000.0
        vals = list(e.get("values") or [])
        start = end = False
        dur = None
        if e.get("kind") == vocab.EV_WIND_DOWN:
            start = bool(vals[0]) if vals else True
            end = not start
            dur = float(vals[1]) if len(vals) > 1 and vals[1] >= 0 else None
        if start:
            sessions.append({"start_unix_s": t, "duration_s": None})
        elif end and sessions and sessions[-1]["duration_s"] is None:
            s = sessions[-1]
            s["duration_s"] = dur if dur is not None else t - s["start_unix_s"]
    return sessions


def _nanrange(a: np.ndarray) -> list[float] | None:
    a = a[~np.isnan(a)]
    return [float(a.min()), float(a.max())] if len(a) else None


def event_counts(nd: NightData) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in nd.events:
        name = e.get("kind_name") or f"kind_{e.get('kind')}"
        out[name] = out.get(name, 0) + 1
    return out


def lamp_phases(nd: NightData, g: Grid | None = None) -> dict[str, dict[str, Any]]:
    """The lamp per part of the night (wind_down, night, dawn), from the epochs' per-channel
    peak levels and the device's LAMP_PHASE events (a night without them, e.g. format version 2,
    counts as one wind-down): span, peak levels, peak melanopic EDI at the eye (the firmware's
    lamp model), and how long the lamp was on."""
    g = g if g is not None else grid_of(nd)
    if not g.n:
        return {}
    bounds = [(e["unix_ms"] / 1000.0, vocab.PHASE_NAMES[int(e["fields"]["phase"])])
              for e in _events(nd, vocab.EV_LAMP_PHASE)
              if (e.get("fields") or {}).get("phase") in range(len(vocab.PHASE_NAMES))]
    mid = g.unix_s + EPOCH_S / 2
    phase = np.full(g.n, "wind_down", dtype=object)
    for when, name in sorted(bounds):
        phase[mid >= when] = name
    warm = np.nan_to_num(g.values["lamp_warm"])
    amber = np.nan_to_num(g.values["lamp_amber"])
    end = float(g.unix_s[-1] + EPOCH_S)
    out: dict[str, dict[str, Any]] = {}
    for name in ("wind_down", "night", "dawn"):
        sel = g.present & (phase == name)
        if not sel.any():
            continue
        idx = np.flatnonzero(sel)
        on = np.flatnonzero(sel & ((warm > 0) | (amber > 0)))
        mel = warm[sel] * LAMP_MEL_PER_LEVEL[0] + amber[sel] * LAMP_MEL_PER_LEVEL[1]
        out[name] = {
            "from": float(g.unix_s[idx[0]]), "to": min(end, float(g.unix_s[idx[-1]] + EPOCH_S)),
            "peak_warm": float(warm[sel].max()), "peak_amber": float(amber[sel].max()),
            "peak_mel_lx": float(mel.max()), "on_s": EPOCH_S * len(on),
            "on_from": float(g.unix_s[on[0]]) if len(on) else None,
            "on_to": float(g.unix_s[on[-1]] + EPOCH_S) if len(on) else None,
        }
    return out


def clip_temp_settled(g: Grid) -> np.ndarray:
    """The clip temperature with NaN in the first CLIP_SETTLE_S of every stretch of known
    values (the finger just went in; the device stores unknown while it is out)."""
    clip = g.values["clip_temp_c"].copy()
    skip = CLIP_SETTLE_S // EPOCH_S
    for a, _b in runs(~np.isnan(clip)):
        clip[a:a + skip] = np.nan
    return clip


def clip_temperature(g: Grid, lo: float | None) -> dict[str, Any]:
    """Clip temperature (format version 4): medians over the hour before lights-out and 30-90
    min after it, and the change between them; None when < CLIP_MIN_EPOCHS are known."""
    clip = clip_temp_settled(g)

    def median(sel: np.ndarray) -> float | None:
        v = clip[sel]
        v = v[~np.isnan(v)]
        return float(np.median(v)) if len(v) >= CLIP_MIN_EPOCHS else None

    known = clip[~np.isnan(clip)]
    out: dict[str, Any] = {"clip_temp_range_c": [float(known.min()), float(known.max())]
                           if len(known) else None,
                           "clip_temp_evening_c": None, "clip_temp_sleep_c": None,
                           "clip_temp_rise_c": None}
    if lo is not None:
        eve = median(g.span(lo - CLIP_EVENING_S, lo))
        slp = median(g.span(lo + CLIP_SLEEP_FROM_S, lo + CLIP_SLEEP_TO_S))
        out.update(clip_temp_evening_c=eve, clip_temp_sleep_c=slp,
                   clip_temp_rise_c=slp - eve if eve is not None and slp is not None else None)
    return out


def night_metrics(nd: NightData, g: Grid | None = None) -> dict[str, Any]:
    """The summary numbers of one night (None = unknown). Times are Unix s."""
    g = g if g is not None else grid_of(nd)
    m: dict[str, Any] = {"row_id": nd.row_id, "device_id": nd.device_id,
                         "night_id": nd.night_id, "date": nd.night_date().isoformat(),
                         "utc_offset_s": nd.utc_offset_s, "skipped_ranges": nd.skipped_ranges,
                         "header_recovered": nd.header_recovered}
    if not g.n:
        m.update(epochs_grid=0, epochs_recorded=0)
        return m
    valid = g.valid()
    rec_start, rec_end = float(g.unix_s[0]), float(g.unix_s[-1] + EPOCH_S)
    m.update(recording_start_unix_s=rec_start, recording_end_unix_s=rec_end,
             recording_h=(rec_end - rec_start) / 3600.0, epochs_grid=g.n,
             epochs_recorded=int(g.present.sum()), epochs_missing=int((~g.present).sum()),
             epochs_valid_hr=int(valid.sum()), valid_hr_pct=100.0 * float(valid.sum()) / g.n)
    m["flag_epochs"] = {name: int(((g.flags & bit) != 0).sum())
                        for bit, name in vocab.FLAG_NAMES.items() if ((g.flags & bit) != 0).any()}
    # time in bed: IN_BED/OUT_OF_BED events, else first..last epoch with sensor contact
    ib, ob = _events(nd, vocab.EV_IN_BED), _events(nd, vocab.EV_OUT_OF_BED)
    if ib:
        bed_from = ib[0]["unix_ms"] / 1000.0
        later = [e["unix_ms"] / 1000.0 for e in ob if e["unix_ms"] / 1000.0 > bed_from]
        bed_to, bed_src = (later[-1] if later else rec_end), "events"
    else:
        contact = g.present & ~np.isnan(g.values["hr_bpm"]) & (
            (g.flags & vocab.FLAG_CONTACT_OFF) == 0)
        idx = np.flatnonzero(contact)
        bed_from = float(g.unix_s[idx[0]]) if len(idx) else None
        bed_to = float(g.unix_s[idx[-1]] + EPOCH_S) if len(idx) else None
        bed_src = "sensor contact"
    m.update(in_bed_from_unix_s=bed_from, in_bed_to_unix_s=bed_to, in_bed_source=bed_src,
             time_in_bed_h=(bed_to - bed_from) / 3600.0 if bed_from is not None else None)
    # the sleep period: lights-out .. lights-on
    lo, lon, src = lights(nd, g)
    m.update(lights_out_unix_s=lo, lights_on_unix_s=lon, lights_source=src)
    sleep = g.span(lo, lon)
    hr = g.heart("hr_bpm")
    sleep_valid = sleep & valid
    m["sleep_valid_h"] = float(sleep_valid.sum()) * EPOCH_S / 3600.0
    m["sleep_hr_mean_bpm"] = _nanmean(hr[sleep])
    m["sleep_hr_lowest_bpm"] = lowest_mean(hr[sleep]) if sleep.any() else None
    m["sleep_rmssd_median_ms"] = _nanmedian(g.heart("rmssd_ms")[sleep])
    m["sleep_spo2_median_pct"] = _nanmedian(g.heart("spo2_pct")[sleep])
    m["arousal_score_mean"] = _nanmean(g.values["arousal_score"][sleep])
    ar = [e["unix_ms"] / 1000.0 for e in _events(nd, vocab.EV_AROUSAL)]
    m["arousal_events_total"] = len(ar)
    if lo is not None and lon is not None:
        n_sleep = sum(1 for t in ar if lo <= t < lon)
        m["arousal_events_sleep"] = n_sleep
        ok = m["sleep_valid_h"] * 3600 >= MIN_VALID_SLEEP_S
        m["arousal_index_per_h"] = n_sleep / m["sleep_valid_h"] if ok else None
    else:
        m["arousal_events_sleep"] = None
        m["arousal_index_per_h"] = None
    # evening light: the 3 h before lights-out (or from the start of the recording)
    total_mel = g.total_mel_lx()
    if lo is not None:
        ev_from = max(rec_start, lo - EVENING_WINDOW_S)
        eve = g.span(ev_from, lo)
        known = eve & ~np.isnan(total_mel)
        known_h = float(known.sum()) * EPOCH_S / 3600.0
        dose = float(total_mel[known].sum()) * EPOCH_S / 3600.0 if known.any() else None
        m.update(
            evening_from_unix_s=ev_from, evening_to_unix_s=lo, evening_known_h=known_h,
            evening_coverage_pct=100.0 * known.sum() / max(1, eve.sum()),
            evening_dose_lx_h=dose,
            evening_limit_lx_h=EVENING_LIMIT_LX * known_h if known.any() else None,
            evening_mean_mel_lx=dose / known_h if dose is not None and known_h else None,
            evening_minutes_over_limit=float((total_mel[known] > EVENING_LIMIT_LX).sum())
            * EPOCH_S / 60.0 if known.any() else None)
        known_night = sleep & ~np.isnan(total_mel)
        m["night_minutes_over_limit"] = (float((total_mel[known_night] > NIGHT_LIMIT_LX).sum())
                                         * EPOCH_S / 60.0 if known_night.any() else None)
    else:
        m.update(evening_from_unix_s=None, evening_to_unix_s=None, evening_known_h=None,
                 evening_coverage_pct=None, evening_dose_lx_h=None, evening_limit_lx_h=None,
                 evening_mean_mel_lx=None, evening_minutes_over_limit=None,
                 night_minutes_over_limit=None)
    m["wind_down_sessions"] = wind_down_sessions(nd)
    m["smart_dawn"] = smart_dawn(nd)
    m["lamp_phases"] = lamp_phases(nd, g)
    m["event_counts"] = event_counts(nd)
    m["beats_stored"] = len(nd.beat_t_ms)
    temp, rh, lux = (g.values[k][g.present] for k in ("temp_c", "rh_pct", "lux"))
    m["temp_c_range"] = _nanrange(temp)
    m["rh_pct_range"] = _nanrange(rh)
    lux_range = _nanrange(lux)
    m["lux_max"] = lux_range[1] if lux_range else None
    m["temp_c_median"] = _nanmedian(g.values["temp_c"][sleep]) if sleep.any() else None
    m["rh_pct_median"] = _nanmedian(g.values["rh_pct"][sleep]) if sleep.any() else None
    m.update(clip_temperature(g, lo))
    return m


# ---- pre-sleep hyperarousal (the firmware's estimator, replayed over the nights in order) ----

def _feed(h: ns_arousal.Hyperarousal, nd: NightData, lo: float) -> None:
    """Valid epoch HR (known at each epoch's end) and lights-out into the estimator. Only the
    hour around lights-out matters to it (30 min before, 30 min after), so only that is fed."""
    g = grid_of(nd)
    hr = g.heart("hr_bpm")
    near = np.flatnonzero((g.unix_s >= lo - 2400) & (g.unix_s <= lo + 1860))
    called = False
    for i in near:
        t = float(g.unix_s[i])
        if not called and t >= lo:
            h.lights_out(int(lo * 1000))
            called = True
        v = hr[i]
        h.add_epoch(int((t + EPOCH_S) * 1000), None if math.isnan(v) else float(v))
    if not called:
        h.lights_out(int(lo * 1000))


def hyperarousal_series(nights: list[NightData],
                        lights_out: list[float | None]) -> list[dict[str, Any]]:
    """The pre-sleep score of each night (chronological), the baseline built from the nights
    before it exactly as the device's estimator would; nights without lights-out are skipped."""
    h = ns_arousal.Hyperarousal()
    out = []
    for nd, lo in zip(nights, lights_out, strict=True):
        if lo is None:
            out.append({"score": None, "decline_bpm_30min": None, "evening_hr_bpm": None,
                        "baseline_hr_bpm": None, "hr_z": None, "baseline_nights": h.nights})
            continue
        _feed(h, nd, lo)
        s = h.score()
        s["baseline_nights"] = h.nights
        s["source"] = "host"
        out.append(device_presleep(nd) or s)
        h.end_night()
    return out


def device_presleep(nd: NightData) -> dict[str, Any] | None:
    """The pre-sleep score the device itself recorded (its PRESLEEP event, format version 3), or
    None if the night has none (older nights: the host computes it, hyperarousal_series)."""
    for e in nd.events:
        if e.get("kind") == vocab.EV_PRESLEEP:
            fields = e.get("fields") or event_fields(vocab.EV_PRESLEEP, e.get("values") or [])
            vals = {name: fields.get(name)
                    for name in vocab.EVENT_KINDS[vocab.EV_PRESLEEP][1]}
            return {**vals, "hr_z": None, "baseline_nights": None, "source": "device"}
    return None


def hyperarousal_for(store: Store, nd: NightData, lo: float | None) -> dict[str, Any]:
    """This night's pre-sleep score with the baseline from up to BASELINE_NIGHTS earlier nights
    of the same device (read from the store's tables)."""
    recorded = device_presleep(nd)
    if recorded is not None:
        return recorded
    rows = [r for r in decoded_rows(store)
            if r["device_id"] == nd.device_id and r["start_unix_s"] < nd.start_unix_s]
    before = load_light(store, rows[-BASELINE_NIGHTS:])
    los = [lights(b, grid_of(b))[0] for b in before]
    return hyperarousal_series([*before, nd], [*los, lo])[-1]
