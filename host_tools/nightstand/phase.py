"""Circadian phase for this person: predicted DLMO and core-temperature minimum per synced night.

The light the person saw is run through a published limit-cycle model of the human circadian
pacemaker, as implemented in the `circadian` package (Arcascope, MIT licence):

- **Forger99** (Forger, Jewett & Kronauer 1999, J Biol Rhythms 14:532-537, "A simpler model of
  the human circadian pacemaker") is the default. It is the model most used to predict DLMO
  from light in field studies, and on a regular 23:00-07:00 schedule with indoor daylight
  (50-1000 lx) it places DLMO 1.7-3.2 h before sleep onset, the range measured in regular
  sleepers (about 2 h: Sletten et al. 2010; Burgess et al. 2003). Published DLMO errors of these
  models on regular schedules are about 0.5-1 h.
- **Hannay19** (Hannay, Booth & Forger 2019, J Biol Rhythms 34:658-671) is offered as an
  alternative (`model="hannay19"`); with the same inputs it predicts DLMO about 1 h earlier.

Both report the core-body-temperature minimum (CBTmin) and DLMO = CBTmin - 7 h.

Inputs per night: sleep onset and offset (from the host's sleep estimate, else the device's
lights-out and the end of the record), and the melanopic EDI at the bedside per 30-s epoch.
During sleep the eyes are closed: the model sees darkness. **Daytime light is not measured**
(the device stays on the night table): it is an explicit, configurable assumption
(`Daylight`), and the uncertainty band of every estimate is the spread of the predictions over
its low and high values. Days without a record repeat the person's median sleep timing.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nightstand.errors import UserError

STEP_H = 0.1  # integration step (6 min): the models' published resolution is ~0.1 h
HISTORY_DAYS = 60  # only the last 60 days of nights drive the estimate (older light has decayed)
EQUILIBRATE_DAYS = 15  # habitual days looped before the first night so the start state is settled
MIN_SLEEP_H = 3.0  # shorter sleep is a nap or a broken record: not used as a sleep time
MAX_SLEEP_H = 16.0
# The models were fit on photopic lux of the white (mostly cool-white fluorescent) light of the
# laboratory studies behind them; their melanopic DER is about 0.6 (CIE S 026, BRIEF: 4000 K
# 0.63-0.75). The device measures melanopic EDI, so model lux = mEDI / 0.6.
MODEL_LIGHT_DER = 0.6
EVENING_H = 3.0  # the evening window for the melanopic dose (Brown et al. 2022: 3 h before bed)
MORNING_H = 2.0  # the morning window after waking


class PhaseError(UserError):
    """The nights cannot give a phase estimate (no usable sleep times)."""


@dataclass(frozen=True)
class Daylight:
    """The assumed photopic-equivalent lux at the eye while awake away from the bedside."""

    typical_lux: float = 250.0  # indoors by a window; Brown et al. 2022 recommend >= 250 lx
    low_lux: float = 50.0  # a dim indoor day
    high_lux: float = 1000.0  # a day with some time outdoors

    def __post_init__(self) -> None:
        if not (0 < self.low_lux <= self.typical_lux <= self.high_lux <= 1e5):
            raise UserError("daylight assumption must satisfy 0 < low <= typical <= high "
                            "<= 100000 lx")


@dataclass(frozen=True)
class NightLight:
    """What the phase model needs from one synced night."""

    night_id: int
    start_unix_s: float
    end_unix_s: float
    utc_offset_s: int
    onset_unix_s: float | None  # sleep onset
    offset_unix_s: float | None  # final awakening
    light: Sequence[tuple[float, float]] = ()  # (unix_s, melanopic EDI lx at the bedside)
    timing_source: str = "sleep estimate"


@dataclass(frozen=True)
class PhaseEstimate:
    night_id: int
    utc_offset_s: int
    onset_unix_s: float
    offset_unix_s: float
    dlmo_unix_s: float  # predicted DLMO before this night's sleep (typical daylight)
    dlmo_band_unix_s: tuple[float, float]  # earliest, latest over the daylight assumption
    cbtmin_unix_s: float  # predicted core-temperature minimum during this night
    cbtmin_band_unix_s: tuple[float, float]
    evening_mel_lx_h: float | None  # melanopic dose in the 3 h before sleep onset (lx*h)
    morning_mel_lx_h: float | None  # melanopic dose in the 2 h after waking, where recorded
    timing_source: str = "sleep estimate"

    @property
    def phase_angle_h(self) -> float:
        """Sleep onset minus DLMO (hours): ~2 h in regular sleepers."""
        return (self.onset_unix_s - self.dlmo_unix_s) / 3600.0


@dataclass
class PhaseResult:
    model: str
    daylight: Daylight
    nights: list[PhaseEstimate] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (night_id, why)

    @property
    def latest(self) -> PhaseEstimate | None:
        return self.nights[-1] if self.nights else None


def _model(name: str):  # noqa: ANN202 - the package's classes are untyped
    # Imported here: the package pulls in matplotlib's pylab.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from circadian import models
    try:
        return {"forger99": models.Forger99, "hannay19": models.Hannay19}[name]()
    except KeyError:
        raise UserError(f"unknown circadian model {name!r}: use forger99 or hannay19") from None


def usable(n: NightLight) -> str | None:
    """Why a night cannot give a sleep time (None: usable)."""
    if n.onset_unix_s is None or n.offset_unix_s is None:
        return "no sleep onset/offset"
    for v in (n.onset_unix_s, n.offset_unix_s, n.start_unix_s, n.end_unix_s):
        if not math.isfinite(v):
            return "impossible times"
    h = (n.offset_unix_s - n.onset_unix_s) / 3600.0
    if h < MIN_SLEEP_H:
        return f"sleep of {h:.1f} h is shorter than {MIN_SLEEP_H:.0f} h"
    if h > MAX_SLEEP_H:
        return f"sleep of {h:.1f} h is longer than {MAX_SLEEP_H:.0f} h"
    return None


def _circular_median_h(hours: list[float]) -> float:
    """Median clock hour of times that wrap at midnight (sleep onsets near 00:00)."""
    ang = [2 * math.pi * h / 24 for h in hours]
    mean = math.atan2(sum(math.sin(a) for a in ang), sum(math.cos(a) for a in ang))
    rel = [((h - mean * 24 / (2 * math.pi) + 12) % 24) - 12 for h in hours]
    return (statistics.median(rel) + mean * 24 / (2 * math.pi)) % 24


def _local_h(unix_s: float, offset_s: int) -> float:
    return ((unix_s + offset_s) / 3600.0) % 24


def _dose(light: Sequence[tuple[float, float]], t0: float, t1: float) -> float | None:
    """Melanopic dose (lx*h) of the 30-s epochs in [t0, t1); None if nothing was measured."""
    sel = [mel for t, mel in light if t0 <= t < t1 and mel is not None and math.isfinite(mel)]
    if not sel:
        return None
    return sum(sel) * 30.0 / 3600.0


def _timeline(nights: list[NightLight], t0: float, t1: float, day_lux: float,
              habit_onset_h: float, habit_sleep_h: float, offset_s: int) -> np.ndarray:
    """Model lux on the grid t0 + k*STEP_H hours (unix seconds)."""
    n = int(round((t1 - t0) / (STEP_H * 3600))) + 1
    t = t0 + np.arange(n) * STEP_H * 3600.0
    lux = np.full(n, day_lux)
    # habitual sleep on every day (overwritten where a record says otherwise)
    local_h = ((t + offset_s) / 3600.0) % 24
    since_onset = (local_h - habit_onset_h) % 24
    lux[since_onset < habit_sleep_h] = 0.0
    for night in nights:
        inside = (t >= night.start_unix_s) & (t < night.end_unix_s)
        if night.offset_unix_s is not None:  # the morning after waking counts as recorded too
            inside |= (t >= night.start_unix_s) & (t < night.offset_unix_s)
        if not inside.any():
            continue
        # measured bedside light, averaged over each grid cell; gaps keep the nearest reading
        lt = np.array([x[0] for x in night.light if x[1] is not None], dtype=float)
        lv = np.array([x[1] for x in night.light if x[1] is not None], dtype=float)
        ok = np.isfinite(lv) & np.isfinite(lt)
        lt, lv = lt[ok], np.clip(lv[ok], 0.0, 1e5)
        idx = np.nonzero(inside)[0]
        if lt.size:
            order = np.argsort(lt)
            lt, lv = lt[order], lv[order]
            cell = STEP_H * 3600.0
            lo = np.searchsorted(lt, t[idx])
            hi = np.searchsorted(lt, t[idx] + cell)
            csum = np.concatenate(([0.0], np.cumsum(lv)))
            mean = np.where(hi > lo, (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1), np.nan)
            near = np.clip(lo, 0, lt.size - 1)
            mean = np.where(np.isnan(mean), lv[near], mean)
            lux[idx] = mean / MODEL_LIGHT_DER
        if night.onset_unix_s is not None and night.offset_unix_s is not None:
            lux[(t >= night.onset_unix_s) & (t < night.offset_unix_s)] = 0.0
    return lux


def _run(model_name: str, nights: list[NightLight], day_lux: float,
         habit_onset_h: float, habit_sleep_h: float, evening_lux: float
         ) -> list[tuple[float, float]]:
    """(DLMO unix s, CBTmin unix s) per night for one daylight assumption."""
    offset_s = nights[-1].utc_offset_s
    first = nights[0]
    # start the grid at the local midnight before the first night's record
    t0 = first.start_unix_s - ((first.start_unix_s + offset_s) % 86400) - 86400
    t1 = max(n.end_unix_s for n in nights) + 12 * 3600
    lux = _timeline(nights, t0, t1, day_lux, habit_onset_h, habit_sleep_h, offset_s)
    model = _model(model_name)
    # equilibrate on the habitual day (local midnight to midnight) with the measured evening
    hours = np.arange(0.0, 24.0, STEP_H)
    since_onset = (hours - habit_onset_h) % 24
    day = np.where(since_onset < habit_sleep_h, 0.0, day_lux)
    day[(since_onset >= 24 - EVENING_H)] = evening_lux
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = model.equilibrate(hours, day, num_loops=EQUILIBRATE_DAYS)
        grid_h = np.arange(lux.size) * STEP_H
        model.integrate(grid_h, state, lux)
        cbt = np.asarray(model.cbt(), dtype=float) * 3600.0 + t0
    out = []
    for night in nights:
        onset = float(night.onset_unix_s)  # type: ignore[arg-type]
        # the temperature minimum of this night: in the sleep period, or nearest to its middle
        mid = (onset + float(night.offset_unix_s)) / 2  # type: ignore[arg-type]
        near = cbt[np.abs(cbt - mid) < 12 * 3600]
        if near.size == 0:
            raise PhaseError("the circadian model found no temperature minimum near night "
                             f"{night.night_id}: the light record is too irregular")
        c = float(near[np.argmin(np.abs(near - mid))])
        out.append((c - model.cbt_to_dlmo * 3600.0, c))
    return out


def estimate(nights: Sequence[NightLight], daylight: Daylight | None = None,
             model: str = "forger99") -> PhaseResult:
    """Predicted DLMO and CBTmin per usable night, oldest first, with the daylight band."""
    daylight = daylight or Daylight()
    result = PhaseResult(model=model, daylight=daylight)
    ordered = sorted(nights, key=lambda n: n.start_unix_s)
    good: list[NightLight] = []
    for n in ordered:
        why = usable(n)
        if why:
            result.skipped.append((n.night_id, why))
        else:
            good.append(n)
    if not good:
        raise PhaseError("no night with a usable sleep time yet: sync at least one whole "
                         "night (3 h of sleep or more) to estimate the circadian phase")
    newest = good[-1].start_unix_s
    dropped = [n for n in good if n.start_unix_s < newest - HISTORY_DAYS * 86400]
    for n in dropped:
        result.skipped.append((n.night_id, f"older than {HISTORY_DAYS} days"))
    good = [n for n in good if n.start_unix_s >= newest - HISTORY_DAYS * 86400]
    onset_h = _circular_median_h([_local_h(n.onset_unix_s, n.utc_offset_s)  # type: ignore
                                  for n in good])
    sleep_h = statistics.median([(n.offset_unix_s - n.onset_unix_s) / 3600.0  # type: ignore
                                 for n in good])
    evening = [d for n in good
               if (d := _dose(n.light, n.onset_unix_s - EVENING_H * 3600,  # type: ignore
                              n.onset_unix_s)) is not None]  # type: ignore[operator]
    evening_lux = (statistics.median(evening) / EVENING_H / MODEL_LIGHT_DER if evening
                   else 10.0 / MODEL_LIGHT_DER)
    runs = {lux: _run(model, good, lux, onset_h, sleep_h, evening_lux)
            for lux in (daylight.low_lux, daylight.typical_lux, daylight.high_lux)}
    for i, n in enumerate(good):
        dl = [runs[lux][i][0] for lux in runs]
        cb = [runs[lux][i][1] for lux in runs]
        onset, offset = float(n.onset_unix_s), float(n.offset_unix_s)  # type: ignore[arg-type]
        result.nights.append(PhaseEstimate(
            night_id=n.night_id, utc_offset_s=n.utc_offset_s,
            onset_unix_s=onset, offset_unix_s=offset,
            dlmo_unix_s=runs[daylight.typical_lux][i][0], dlmo_band_unix_s=(min(dl), max(dl)),
            cbtmin_unix_s=runs[daylight.typical_lux][i][1],
            cbtmin_band_unix_s=(min(cb), max(cb)),
            evening_mel_lx_h=_dose(n.light, onset - EVENING_H * 3600, onset),
            morning_mel_lx_h=_dose(n.light, offset, offset + MORNING_H * 3600),
            timing_source=n.timing_source))
    return result


def hhmm(unix_s: float, utc_offset_s: int) -> str:
    h = _local_h(unix_s, utc_offset_s)
    m = int(round(h * 60)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"
