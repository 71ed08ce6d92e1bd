"""Night scenarios: JSON format, validation with defaults, and seeded random nights."""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nightstand.errors import UserError

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
FORMAT_VERSION = 1

Scenario = dict[str, Any]

# Person defaults (units in the key names). Sources and meaning: docs/simulation-scenarios.md.
PERSON_DEFAULTS: dict[str, Any] = {
    "hr_evening_bpm": 66.0,  # relaxed evening HR in bed before lights-out, without hyperarousal
    "hr_sleep_bpm": 56.0,  # settled sleeping HR
    "hr_excess_bpm": 0.0,  # evening hyperarousal: HR above the person's own evening baseline
    "hr_decline_tau_min": 12.0,  # time constant of HR decline after lights-out (slow = wired)
    "hr_drift_sd_bpm": 1.5,  # slow random HR wander (Ornstein-Uhlenbeck), standard deviation
    "hr_drift_tau_min": 20.0,  # correlation time of that wander
    "rmssd_ms": 40.0,  # target RMSSD in stable sleep (RSA + beat-to-beat jitter)
    "rsa_bpm": 4.0,  # respiratory sinus arrhythmia, peak-to-trough HR swing
    "lf_bpm": 1.0,  # ~0.1 Hz (Mayer wave) HR oscillation amplitude
    "resp_rate_bpm": 14.0,  # breaths per minute
    "resp_rate_sd_bpm": 0.8,  # slow variation of the breathing rate
    "pat_ms": 220.0,  # pulse arrival time: cardiac beat -> pulse foot at the finger
    "perfusion_index_pct": 1.5,  # IR AC/DC, peak-to-trough, in percent
    "sleep_vasodilation": 0.25,  # relative PWA rise after lights-out (distal vasodilation)
    "pwa_resp_mod": 0.08,  # respiratory amplitude modulation of the pulse (fraction)
    "baseline_resp_mod": 0.3,  # respiratory baseline wander, as a fraction of the AC amplitude
    "dicrotic_ratio": 0.45,  # diastolic/systolic wave amplitude
    "spo2_pct": 97.0,
    "skin_type": 3,  # Fitzpatrick I-VI: melanin attenuates red more than IR
    "finger_temp_c": 32.0,  # finger skin temperature in bed before lights-out
    "finger_temp_rise_c": 1.0,  # its rise after lights-out (distal vasodilation, Kraeuchi 1999)
    "finger_temp_tau_min": 20.0,  # time constant of that rise
    "ir_dc_na_per_ma": None,  # None: derived from skin_type
    "red_dc_na_per_ma": None,  # None: derived from skin_type
}

ROOM_DEFAULTS: dict[str, Any] = {
    "temp_c": [{"at": "start", "value": 21.5}, {"at": "end", "value": 20.0}],
    "rh_pct": 45.0,
    "pressure_hpa": 1013.25,
    "gas_ohm": [{"at": "start", "value": 45000.0}, {"at": "end", "value": 18000.0}],
    "light": None,  # None: evening 100 lx 3000 K, dark after lights-out, 250 lx 5500 K at wake
}

SENSOR_DEFAULTS: dict[str, Any] = {
    "noise_na_per_ma": 0.3,  # white noise on each LED channel's photocurrent
    "ambient_noise_na": 0.1,
    "ambient_coupling_on": 0.01,  # nA per lux reaching the photodiode through the finger
    "ambient_coupling_off": 1.0,  # nA per lux on the bare photodiode
    "off_stim_na_per_ma": 2.0,  # LED light reflected back by bedding when the finger is off
    "clip_tau_s": 120.0,  # the clip's (die's) thermal time constant toward finger or room
}

AROUSAL_DEFAULTS: dict[str, Any] = {
    "hr_surge_bpm": 10.0,
    "pwa_drop": 0.35,
    "duration_s": 14.0,
    "lead_beats": 5.0,
}

TOP_KEYS = (
    "format", "name", "seed", "start", "utc_offset_s", "utc_offset_changes", "duration_s",
    "bedtime", "lights_out", "wake", "person", "events", "room", "sensor", "button_presses",
)
EVENT_KEYS = ("arousals", "ectopic", "motion", "finger_off", "hr_drift", "pwa_dips", "hr_surges")


class _Ctx:
    """Error reporting for one scenario source."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, msg: str) -> UserError:
        return UserError(f"scenario {self.source}: {where}: {msg}")


def _check_keys(ctx: _Ctx, where: str, obj: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ctx.fail(where, f"must be a JSON object, got {type(obj).__name__}")
    for key in obj:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean '{near[0]}'?" if near else "known: " + ", ".join(allowed)
            raise ctx.fail(where, f"unknown key '{key}' ({hint})")
    return obj


def _num(ctx: _Ctx, where: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ctx.fail(where, f"must be a number between {lo:g} and {hi:g}, got {value!r}")
    if not lo <= value <= hi:
        raise ctx.fail(where, f"{value:g} is out of range: use a value between {lo:g} and {hi:g}")
    return float(value)


def _int(ctx: _Ctx, where: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ctx.fail(where, f"must be a whole number between {lo} and {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise ctx.fail(where, f"{value} is out of range: use a value between {lo} and {hi}")
    return int(value)


# A night must start where its whole length, the UTC offsets and the device's calendar (2000-2099,
# as the ESP32 RTC and the MicroPython time functions keep it) all fit.
START_MIN = dt.datetime(2000, 1, 1)
START_MAX = dt.datetime(2099, 12, 1)


def _parse_start(ctx: _Ctx, value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ctx.fail("start", f"must be a local date-time string like '2026-01-15T22:00', "
                       f"got {value!r}")
    try:
        start = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ctx.fail("start", f"'{value}' is not an ISO date-time: write e.g. "
                       "'2026-01-15T22:00'") from None
    if start.tzinfo is not None:
        raise ctx.fail("start", "give the local time without a UTC offset and put the offset "
                       "in 'utc_offset_s'")
    if not START_MIN <= start <= START_MAX:
        raise ctx.fail("start", f"'{value}' is out of range: the device's calendar runs from "
                       f"{START_MIN:%Y-%m-%d} to {START_MAX:%Y-%m-%d}")
    return start


class _Clock:
    """Maps scenario times (seconds, 'HH:MM[:SS]', local ISO date-time) to seconds from start."""

    def __init__(self, start: dt.datetime, offset0_s: int,
                 changes: list[tuple[float, int]], duration_s: float | None) -> None:
        self.start = start
        self.offset0_s = offset0_s
        self.changes = changes  # (t_s, new offset), sorted
        self.duration_s = duration_s

    def offset_at(self, t_s: float) -> int:
        off = self.offset0_s
        for at_s, new in self.changes:
            if t_s >= at_s:
                off = new
        return off

    def _segments(self) -> list[tuple[float, float, int]]:
        bounds = [0.0] + [c[0] for c in self.changes] + [math.inf]
        offs = [self.offset0_s] + [c[1] for c in self.changes]
        return [(bounds[i], bounds[i + 1], offs[i]) for i in range(len(offs))]

    def from_local(self, local: dt.datetime) -> float:
        """Seconds from start of the first instant whose wall-clock reads `local`."""
        naive = (local - self.start).total_seconds()
        for a_s, b_s, off in self._segments():
            t_s = naive - (off - self.offset0_s)
            if a_s <= t_s < b_s:
                return t_s
        if naive < 0:
            return naive  # before the start (the caller tries the next day)
        # Wall-clock time skipped by a spring-forward change: map it to just after the gap.
        for a_s, _b, off in self._segments():
            if a_s > 0 and naive - (off - self.offset0_s) < a_s:
                return a_s
        return naive

    def resolve(self, ctx: _Ctx, where: str, value: Any, allow_end: bool = False) -> float:
        if isinstance(value, str) and value in ("start", "end"):
            if value == "start":
                return 0.0
            if self.duration_s is None:
                raise ctx.fail(where, "'end' cannot be used here")
            return self.duration_s
        if isinstance(value, bool):
            raise ctx.fail(where, f"must be seconds from the start or a local time, got {value!r}")
        if isinstance(value, int | float):
            t_s = float(value)
            if not math.isfinite(t_s):
                raise ctx.fail(where, "must be a finite number of seconds")
        elif isinstance(value, str):
            t_s = self._resolve_text(ctx, where, value)
        else:
            raise ctx.fail(where, "must be seconds from the start (number) or a local time "
                           f"'HH:MM', got {value!r}")
        if t_s < 0:
            raise ctx.fail(where, f"{value!r} is before the start of the night")
        if self.duration_s is not None:
            limit = self.duration_s
            if t_s > limit or (t_s == limit and not allow_end):
                raise ctx.fail(where, f"{value!r} ({t_s:g} s) is after the end of the night "
                               f"({limit:g} s): move it or lengthen 'duration_s'")
        return t_s

    def _resolve_text(self, ctx: _Ctx, where: str, text: str) -> float:
        if "T" in text or " " in text or "-" in text[:10]:
            try:
                local = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ctx.fail(where, f"'{text}' is not a time: use 'HH:MM', 'HH:MM:SS', a local "
                               "ISO date-time or seconds from the start") from None
            if local.tzinfo is not None:
                raise ctx.fail(where, "local times must not carry a UTC offset")
            return self.from_local(local)
        try:
            tod = dt.time.fromisoformat(text)
        except ValueError:
            raise ctx.fail(where, f"'{text}' is not a time: use 'HH:MM', 'HH:MM:SS', a local "
                           "ISO date-time or seconds from the start") from None
        if tod.tzinfo is not None:
            raise ctx.fail(where, "local times must not carry a UTC offset: write 'HH:MM' "
                           "and put the offset in 'utc_offset_s'")
        day = self.start.date()
        for _ in range(3):
            cand = self.from_local(dt.datetime.combine(day, tod))
            if cand >= 0:
                return cand
            day = day + dt.timedelta(days=1)
        return -1.0  # not reached: 3 days always contain a later occurrence


def _series(ctx: _Ctx, clock: _Clock, where: str, value: Any, lo: float,
            hi: float) -> list[dict[str, float]]:
    """A constant or a list of {"at", "value"} points, linearly interpolated."""
    if not isinstance(value, list):
        v = _num(ctx, where, value, lo, hi)
        return [{"at": 0.0, "value": v}]
    if not value:
        raise ctx.fail(where, "needs at least one point {\"at\": ..., \"value\": ...}")
    out = []
    for i, point in enumerate(value):
        w = f"{where}[{i}]"
        _check_keys(ctx, w, point, ("at", "value"))
        if "at" not in point or "value" not in point:
            raise ctx.fail(w, "needs both 'at' and 'value'")
        out.append({"at": clock.resolve(ctx, w + ".at", point["at"], allow_end=True),
                    "value": _num(ctx, w + ".value", point["value"], lo, hi)})
    _check_sorted(ctx, where, [p["at"] for p in out])
    return out


def _check_sorted(ctx: _Ctx, where: str, times: list[float]) -> None:
    for i in range(1, len(times)):
        if times[i] < times[i - 1]:
            raise ctx.fail(f"{where}[{i}]", f"time {times[i]:g} s is before the previous entry "
                           f"({times[i - 1]:g} s): list entries in time order")


def _light(ctx: _Ctx, clock: _Clock, value: Any) -> list[dict[str, float]]:
    if not isinstance(value, list) or not value:
        raise ctx.fail("room.light", "must be a non-empty list of {\"at\", \"lux\", \"cct_k\"}")
    out = []
    for i, seg in enumerate(value):
        w = f"room.light[{i}]"
        _check_keys(ctx, w, seg, ("at", "lux", "cct_k", "ramp_s", "note"))
        if "at" not in seg or "lux" not in seg:
            raise ctx.fail(w, "needs 'at' and 'lux'")
        item: dict[str, Any] = {
            "at": clock.resolve(ctx, w + ".at", seg["at"]),
            "lux": _num(ctx, w + ".lux", seg["lux"], 0.0, 150000.0),
            "cct_k": _num(ctx, w + ".cct_k", seg.get("cct_k", 2700.0), 1000.0, 20000.0),
            "ramp_s": _num(ctx, w + ".ramp_s", seg.get("ramp_s", 0.0), 0.0, 7200.0),
        }
        if "note" in seg:
            item["note"] = str(seg["note"])
        out.append(item)
    _check_sorted(ctx, "room.light", [s["at"] for s in out])
    return out


def _event_list(ctx: _Ctx, where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ctx.fail(where, f"must be a list, got {type(value).__name__}")
    return value


def _periods(ctx: _Ctx, clock: _Clock, where: str, value: Any, duration_s: float,
             extra: dict[str, tuple[float, float, float]]) -> list[dict[str, float]]:
    out = []
    for i, item in enumerate(_event_list(ctx, where, value)):
        w = f"{where}[{i}]"
        _check_keys(ctx, w, item, ("at", "duration_s", *extra.keys()))
        if "at" not in item or "duration_s" not in item:
            raise ctx.fail(w, "needs 'at' and 'duration_s'")
        at_s = clock.resolve(ctx, w + ".at", item["at"])
        dur_s = _num(ctx, w + ".duration_s", item["duration_s"], 0.1, duration_s)
        if at_s + dur_s > duration_s + 1e-6:
            raise ctx.fail(w, f"ends at {at_s + dur_s:g} s, after the end of the night "
                           f"({duration_s:g} s): shorten it")
        rec: dict[str, float] = {"at": at_s, "duration_s": dur_s}
        for key, (default, lo, hi) in extra.items():
            rec[key] = _num(ctx, f"{w}.{key}", item.get(key, default), lo, hi)
        out.append(rec)
    return sorted(out, key=lambda r: r["at"])


def validate(raw: Any, source: str = "<dict>") -> Scenario:
    """Check a scenario and return it fully resolved (defaults filled, times in s from start).

    The result is itself a valid scenario: validate(validate(x)) == validate(x).
    """
    ctx = _Ctx(source)
    top = _check_keys(ctx, "top level", raw, TOP_KEYS)
    fmt = _int(ctx, "format", top.get("format", FORMAT_VERSION), 1, 1000)
    if fmt != FORMAT_VERSION:
        raise ctx.fail("format", f"version {fmt} is not supported: this tool reads version "
                       f"{FORMAT_VERSION}")
    name = top.get("name", "scenario")
    if not isinstance(name, str):
        raise ctx.fail("name", "must be a string")
    seed = _int(ctx, "seed", top.get("seed", 0), 0, 2**63 - 1)
    start = _parse_start(ctx, top.get("start", "2026-01-15T22:00:00"))
    offset0 = _int(ctx, "utc_offset_s", top.get("utc_offset_s", 0), -14 * 3600, 14 * 3600)

    pre_clock = _Clock(start, offset0, [], None)
    changes: list[tuple[float, int]] = []
    for i, ch in enumerate(_event_list(ctx, "utc_offset_changes",
                                       top.get("utc_offset_changes", []))):
        w = f"utc_offset_changes[{i}]"
        _check_keys(ctx, w, ch, ("at", "utc_offset_s"))
        if "at" not in ch or "utc_offset_s" not in ch:
            raise ctx.fail(w, "needs 'at' (when, in the offset before the change) and "
                           "'utc_offset_s' (the new offset)")
        pre_clock.changes = list(changes)
        at_s = pre_clock.resolve(ctx, w + ".at", ch["at"])
        changes.append((at_s, _int(ctx, w + ".utc_offset_s", ch["utc_offset_s"],
                                   -14 * 3600, 14 * 3600)))
    _check_sorted(ctx, "utc_offset_changes", [c[0] for c in changes])

    clock = _Clock(start, offset0, changes, None)
    wake_given = "wake" in top
    wake_pre = clock.resolve(ctx, "wake", top["wake"]) if wake_given else None
    if "duration_s" in top:
        duration_s = _num(ctx, "duration_s", top["duration_s"], 60.0, 3 * 86400.0)
    elif wake_pre is not None:
        duration_s = wake_pre + 900.0
    else:
        duration_s = 8 * 3600.0
    clock.duration_s = duration_s

    bedtime_s = clock.resolve(ctx, "bedtime", top.get("bedtime", 0.0))
    # Default lights-out: 15 min after bedtime, or halfway to wake (or the end) if that is sooner.
    lo_end = wake_pre if wake_pre is not None else duration_s
    lo_default = bedtime_s + max(0.0, min(900.0, (lo_end - bedtime_s) / 2))
    lights_out_s = clock.resolve(ctx, "lights_out", top.get("lights_out", lo_default))
    wake_s = clock.resolve(ctx, "wake", top["wake"], allow_end=True) if wake_given else max(
        duration_s - 900.0, lights_out_s)
    if not bedtime_s <= lights_out_s <= wake_s:
        raise ctx.fail("bedtime/lights_out/wake", f"must be in order bedtime <= lights_out <= "
                       f"wake (got {bedtime_s:g} s, {lights_out_s:g} s, {wake_s:g} s from start)")

    person_raw = _check_keys(ctx, "person", top.get("person", {}), tuple(PERSON_DEFAULTS))
    ranges: dict[str, tuple[float, float]] = {
        "hr_evening_bpm": (30, 150), "hr_sleep_bpm": (30, 130), "hr_excess_bpm": (0, 50),
        "hr_decline_tau_min": (0.5, 240), "hr_drift_sd_bpm": (0, 15),
        "hr_drift_tau_min": (1, 240), "rmssd_ms": (1, 250), "rsa_bpm": (0, 30),
        "lf_bpm": (0, 15), "resp_rate_bpm": (3, 40), "resp_rate_sd_bpm": (0, 5),
        "pat_ms": (50, 700), "perfusion_index_pct": (0.05, 20), "sleep_vasodilation": (0, 2),
        "pwa_resp_mod": (0, 0.5), "baseline_resp_mod": (0, 5), "dicrotic_ratio": (0, 1),
        "spo2_pct": (70, 100), "ir_dc_na_per_ma": (10, 10000), "red_dc_na_per_ma": (10, 10000),
        "finger_temp_c": (15, 40), "finger_temp_rise_c": (-3, 5), "finger_temp_tau_min": (1, 240),
    }
    person: dict[str, Any] = {}
    for key, default in PERSON_DEFAULTS.items():
        value = person_raw.get(key, default)
        if key == "skin_type":
            person[key] = _int(ctx, "person.skin_type", value, 1, 6)
        elif value is None:
            person[key] = None
        else:
            lo, hi = ranges[key]
            person[key] = _num(ctx, f"person.{key}", value, lo, hi)
    ir_f, red_f = skin_factors(person["skin_type"])
    if person["ir_dc_na_per_ma"] is None:
        person["ir_dc_na_per_ma"] = round(1200.0 * ir_f, 1)
    if person["red_dc_na_per_ma"] is None:
        person["red_dc_na_per_ma"] = round(1000.0 * red_f, 1)

    ev_raw = _check_keys(ctx, "events", top.get("events", {}), EVENT_KEYS)
    arousals = []
    for i, item in enumerate(_event_list(ctx, "events.arousals", ev_raw.get("arousals", []))):
        w = f"events.arousals[{i}]"
        _check_keys(ctx, w, item, ("at", *AROUSAL_DEFAULTS))
        if "at" not in item:
            raise ctx.fail(w, "needs 'at' (onset of the PWA drop)")
        arousals.append({
            "at": clock.resolve(ctx, w + ".at", item["at"]),
            "hr_surge_bpm": _num(ctx, w + ".hr_surge_bpm",
                                 item.get("hr_surge_bpm", AROUSAL_DEFAULTS["hr_surge_bpm"]),
                                 0, 60),
            "pwa_drop": _num(ctx, w + ".pwa_drop",
                             item.get("pwa_drop", AROUSAL_DEFAULTS["pwa_drop"]), 0, 0.95),
            "duration_s": _num(ctx, w + ".duration_s",
                               item.get("duration_s", AROUSAL_DEFAULTS["duration_s"]), 3, 120),
            "lead_beats": _num(ctx, w + ".lead_beats",
                               item.get("lead_beats", AROUSAL_DEFAULTS["lead_beats"]), 0, 15),
        })
    arousals.sort(key=lambda a: a["at"])

    ect_raw = _check_keys(ctx, "events.ectopic", ev_raw.get("ectopic", {}),
                          ("rate_per_hour", "times", "prematurity", "amplitude"))
    ectopic = {
        "rate_per_hour": _num(ctx, "events.ectopic.rate_per_hour",
                              ect_raw.get("rate_per_hour", 0.0), 0, 600),
        "times": sorted(clock.resolve(ctx, f"events.ectopic.times[{i}]", t)
                        for i, t in enumerate(_event_list(ctx, "events.ectopic.times",
                                                          ect_raw.get("times", [])))),
        "prematurity": _num(ctx, "events.ectopic.prematurity",
                            ect_raw.get("prematurity", 0.65), 0.3, 0.95),
        "amplitude": _num(ctx, "events.ectopic.amplitude", ect_raw.get("amplitude", 0.5),
                          0.0, 1.5),
    }
    motion = _periods(ctx, clock, "events.motion", ev_raw.get("motion", []), duration_s,
                      {"intensity": (0.5, 0.0, 1.0)})
    finger_off = _periods(ctx, clock, "events.finger_off", ev_raw.get("finger_off", []),
                          duration_s, {})
    hr_drift = _periods(ctx, clock, "events.hr_drift", ev_raw.get("hr_drift", []), duration_s,
                        {"delta_bpm": (5.0, -40.0, 40.0)})
    # Arousal confounders: a PWA drop with no HR change (vasomotion, posture) and an HR rise
    # with no vasoconstriction.
    pwa_dips = _periods(ctx, clock, "events.pwa_dips", ev_raw.get("pwa_dips", []), duration_s,
                        {"drop": (0.3, 0.0, 0.95)})
    hr_surges = _periods(ctx, clock, "events.hr_surges", ev_raw.get("hr_surges", []),
                         duration_s, {"rise_bpm": (12.0, 0.0, 60.0)})

    room_raw = _check_keys(ctx, "room", top.get("room", {}), tuple(ROOM_DEFAULTS))
    light_raw = room_raw.get("light", ROOM_DEFAULTS["light"])
    if light_raw is None:
        light_raw = [{"at": 0.0, "lux": 100.0, "cct_k": 3000.0},
                     {"at": lights_out_s, "lux": 0.05, "cct_k": 2700.0}]
        if wake_s < duration_s:
            light_raw.append({"at": wake_s, "lux": 250.0, "cct_k": 5500.0})
    room = {
        "temp_c": _series(ctx, clock, "room.temp_c",
                          room_raw.get("temp_c", ROOM_DEFAULTS["temp_c"]), -10, 50),
        "rh_pct": _series(ctx, clock, "room.rh_pct",
                          room_raw.get("rh_pct", ROOM_DEFAULTS["rh_pct"]), 0, 100),
        "pressure_hpa": _series(ctx, clock, "room.pressure_hpa",
                                room_raw.get("pressure_hpa", ROOM_DEFAULTS["pressure_hpa"]),
                                300, 1100),
        "gas_ohm": _series(ctx, clock, "room.gas_ohm",
                           room_raw.get("gas_ohm", ROOM_DEFAULTS["gas_ohm"]), 100, 1e7),
        "light": _light(ctx, clock, light_raw),
    }
    sensor_raw = _check_keys(ctx, "sensor", top.get("sensor", {}), tuple(SENSOR_DEFAULTS))
    sensor = {k: _num(ctx, f"sensor.{k}", sensor_raw.get(k, d), 0.0, 1e4)
              for k, d in SENSOR_DEFAULTS.items()}
    buttons = sorted(clock.resolve(ctx, f"button_presses[{i}]", t)
                     for i, t in enumerate(_event_list(ctx, "button_presses",
                                                       top.get("button_presses", []))))

    return {
        "format": FORMAT_VERSION,
        "name": name,
        "seed": seed,
        "start": start.isoformat(),
        "utc_offset_s": offset0,
        "utc_offset_changes": [{"at": a, "utc_offset_s": o} for a, o in changes],
        "duration_s": duration_s,
        "bedtime": bedtime_s,
        "lights_out": lights_out_s,
        "wake": wake_s,
        "person": person,
        "events": {"arousals": arousals, "ectopic": ectopic, "motion": motion,
                   "finger_off": finger_off, "hr_drift": hr_drift, "pwa_dips": pwa_dips,
                   "hr_surges": hr_surges},
        "room": room,
        "sensor": sensor,
        "button_presses": buttons,
    }


def skin_factors(skin_type: int) -> tuple[float, float]:
    """(IR, red) DC attenuation for Fitzpatrick type 1-6 (model assumption, see docs)."""
    return 1.0 - 0.06 * (skin_type - 1), 1.0 - 0.12 * (skin_type - 1)


def start_unix_s(scenario: Scenario) -> float:
    """UTC seconds since 1970 of the scenario's start (local start minus utc_offset_s)."""
    start = dt.datetime.fromisoformat(scenario["start"]).replace(tzinfo=dt.UTC)
    return start.timestamp() - scenario["utc_offset_s"]


MAX_SCENARIO_BYTES = 4 << 20  # a scenario is a small hand-written JSON file


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file; errors are one-line UserErrors naming the file."""
    p = Path(path)
    try:
        if p.is_file() and p.stat().st_size > MAX_SCENARIO_BYTES:
            raise UserError(f"scenario {p}: too big ({p.stat().st_size / 1e6:.0f} MB) for a "
                            "scenario file: give a scenario JSON file")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"scenario {p}: file not found: check the path") from None
    except IsADirectoryError:
        raise UserError(f"scenario {p}: is a folder: give a scenario JSON file") from None
    except UnicodeDecodeError:
        raise UserError(f"scenario {p}: not a text file (binary data?): give a scenario JSON "
                        "file") from None
    except OSError as exc:
        raise UserError(f"scenario {p}: cannot read it ({exc.strerror})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"scenario {p}: not valid JSON at line {exc.lineno} column "
                        f"{exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise UserError(f"scenario {p}: nested too deeply to be a scenario") from None
    return validate(raw, str(p))


def default_scenario() -> Scenario:
    """The shipped default night (scenarios/default.json), resolved."""
    return load_scenario(SCENARIO_DIR / "default.json")


def _hhmm(t: dt.datetime) -> str:
    return t.strftime("%H:%M:%S")


def random_scenario(seed: int) -> Scenario:
    """A varied, plausible night with confounders, deterministic for a given seed (raw form)."""
    rng = np.random.default_rng([seed, 0x5EED])
    u: Callable[[float, float], float] = lambda lo, hi: float(rng.uniform(lo, hi))
    day = dt.date(2026, 1, 5) + dt.timedelta(days=int(rng.integers(0, 300)))
    start = dt.datetime.combine(day, dt.time(21, 0)) + dt.timedelta(
        minutes=int(rng.integers(0, 120)))
    bedtime_s = round(u(5, 30) * 60)
    lights_out_s = bedtime_s + round(u(5, 45) * 60)
    sleep_h = u(6.0, 8.5)
    wake_s = lights_out_s + round(sleep_h * 3600)
    duration_s = float(wake_s + round(u(5, 20) * 60))
    wired = rng.random() < 0.4
    hr_sleep = u(45, 68)
    person = {
        "hr_sleep_bpm": round(hr_sleep, 1),
        "hr_evening_bpm": round(hr_sleep + u(5, 15), 1),
        "hr_excess_bpm": round(u(6, 18), 1) if wired else round(u(0, 3), 1),
        "hr_decline_tau_min": round(u(30, 70), 1) if wired else round(u(6, 18), 1),
        "hr_drift_sd_bpm": round(u(0.5, 3.0), 2),
        "rmssd_ms": round(u(15, 80), 1),
        "rsa_bpm": round(u(1, 8), 2),
        "lf_bpm": round(u(0, 2.5), 2),
        "resp_rate_bpm": round(u(10, 18), 1),
        "pat_ms": round(u(180, 320)),
        "perfusion_index_pct": round(u(0.6, 3.0), 2),
        "sleep_vasodilation": round(u(0.0, 0.5), 2),
        "dicrotic_ratio": round(u(0.2, 0.6), 2),
        "spo2_pct": round(u(94, 99), 1),
        "skin_type": int(rng.integers(1, 7)),
    }
    # finger temperature from its own stream, so the rest of a seed's night is unchanged; a
    # wired evening gets a blunted distal vasodilation (a model assumption)
    trng = np.random.default_rng([seed, 0x7E4D])
    person["finger_temp_c"] = round(float(trng.uniform(30.0, 34.0)), 1)
    person["finger_temp_rise_c"] = round(float(trng.uniform(0.6, 1.6)) * (0.5 if wired else 1.0),
                                         2)
    person["finger_temp_tau_min"] = round(float(trng.uniform(10, 40)), 1)
    busy: list[tuple[float, float]] = []

    def free(a: float, b: float, margin: float) -> bool:
        return all(b + margin <= s or a - margin >= e for s, e in busy)

    sleep_a, sleep_b = lights_out_s + 600.0, wake_s - 300.0
    finger_off = []
    for _ in range(int(rng.integers(0, 3))):
        d = round(u(60, 600))
        a = round(u(sleep_a, sleep_b - d))
        if free(a, a + d, 120):
            finger_off.append({"at": a, "duration_s": d})
            busy.append((a, a + d))
    trip = rng.random() < 0.5
    light: list[dict[str, Any]] = []
    tv_end = min(lights_out_s, bedtime_s + round(u(0, 40) * 60))
    light.append({"at": 0, "lux": round(u(60, 200), 1), "cct_k": round(u(2700, 4000)),
                  "note": "evening room light"})
    if rng.random() < 0.6 and tv_end > bedtime_s:
        light.append({"at": bedtime_s, "lux": round(u(20, 90), 1), "cct_k": round(u(4500, 7000)),
                      "note": "TV in bed"})
    light.append({"at": tv_end, "lux": round(u(2, 8), 2), "cct_k": 2700, "note": "reading lamp"})
    light.append({"at": lights_out_s, "lux": round(u(0.0, 0.5), 3), "cct_k": 2700,
                  "note": "dark"})
    if trip:
        d = round(u(180, 480))
        a = round(u(sleep_a + 3600, sleep_b - 3600 - d))
        if free(a - 60, a + d + 60, 120):
            busy.append((a - 30, a + d + 30))
            finger_off.append({"at": a, "duration_s": d})
            light.append({"at": a, "lux": round(u(50, 200), 1), "cct_k": round(u(2700, 4000)),
                          "note": "bathroom light"})
            light.append({"at": a + d, "lux": light[-2]["lux"], "cct_k": 2700, "note": "dark"})
    light.append({"at": wake_s, "lux": round(u(150, 600), 1), "cct_k": round(u(5000, 6500)),
                  "note": "daylight"})
    light.sort(key=lambda s: s["at"])

    n_hours = (sleep_b - sleep_a) / 3600.0
    rate = u(5, 25)
    arousals = []
    for _ in range(int(rng.poisson(rate * n_hours))):
        dur = float(np.clip(rng.lognormal(math.log(14), 0.35), 5, 40))
        a = u(sleep_a, sleep_b - dur)
        if free(a - 10, a + dur, 25):
            arousals.append({"at": round(a, 1), "duration_s": round(dur, 1),
                             "hr_surge_bpm": round(u(5, 25), 1),
                             "pwa_drop": round(u(0.2, 0.6), 2),
                             "lead_beats": round(u(2, 10), 1)})
            busy.append((a - 10, a + dur + 10))
    arousals.sort(key=lambda e: e["at"])
    motion = []
    for _ in range(int(rng.poisson(u(0.5, 3) * n_hours))):
        d = round(u(2, 30), 1)
        a = round(u(sleep_a, sleep_b - d), 1)
        if free(a, a + d, 60):
            motion.append({"at": a, "duration_s": d, "intensity": round(u(0.2, 1.0), 2)})
            busy.append((a, a + d))
    motion.sort(key=lambda e: e["at"])
    hr_drift = []
    for _ in range(int(rng.integers(0, 4))):
        d = round(u(600, 3600))
        a = round(u(sleep_a, sleep_b - d))
        hr_drift.append({"at": a, "duration_s": d, "delta_bpm": round(u(-6, 10), 1)})
    hr_drift.sort(key=lambda e: e["at"])
    buttons = [bedtime_s + 5] + ([wake_s + 60] if rng.random() < 0.5 else [])
    room = {
        "temp_c": [{"at": 0, "value": round(u(18, 24), 2)},
                   {"at": duration_s, "value": round(u(16, 22), 2)}],
        "rh_pct": [{"at": 0, "value": round(u(30, 55), 1)},
                   {"at": duration_s, "value": round(u(35, 65), 1)}],
        "pressure_hpa": [{"at": 0, "value": round(u(990, 1030), 1)},
                         {"at": duration_s, "value": round(u(990, 1030), 1)}],
        "gas_ohm": [{"at": 0, "value": round(u(30000, 120000))},
                    {"at": duration_s, "value": round(u(8000, 30000))}],
        "light": light,
    }
    scen: Scenario = {
        "format": FORMAT_VERSION,
        "name": f"random-{seed}",
        "seed": int(seed),
        "start": start.isoformat(),
        "utc_offset_s": int(rng.choice([-18000, 0, 3600, 7200, 19800, 32400])),
        "duration_s": duration_s,
        "bedtime": bedtime_s,
        "lights_out": lights_out_s,
        "wake": wake_s,
        "person": person,
        "events": {
            "arousals": arousals,
            "ectopic": {"rate_per_hour": round(u(0, 30), 1) if rng.random() < 0.7 else 0.0},
            "motion": motion,
            "finger_off": sorted(finger_off, key=lambda e: e["at"]),
            "hr_drift": hr_drift,
        },
        "room": room,
        "button_presses": buttons,
    }
    return copy.deepcopy(scen)


def confounder_scenario(seed: int) -> Scenario:
    """random_scenario(seed) plus arousal confounders in free stretches of sleep: PWA drops of
    20-60 % with no HR change (vasomotion waves, posture; 15-120 s) and HR rises of +8-20 bpm
    with no PWA drop (8-30 s). Its arousals are those of random_scenario (HR +5-25 bpm, PWA
    drop 20-60 %); an own random stream, so the base night is unchanged."""
    scen = random_scenario(seed)
    rng = np.random.default_rng([seed, 0xC0F0])
    u: Callable[[float, float], float] = lambda lo, hi: float(rng.uniform(lo, hi))
    ev = scen["events"]
    busy = [(a["at"], a["at"] + a["duration_s"]) for a in ev["arousals"]]
    busy += [(m["at"], m["at"] + m["duration_s"]) for m in ev["motion"] + ev["finger_off"]]
    sleep_a, sleep_b = scen["lights_out"] + 600.0, scen["wake"] - 300.0
    n_hours = (sleep_b - sleep_a) / 3600.0

    def place(dur: float) -> float | None:
        for _ in range(20):
            a = u(sleep_a, sleep_b - dur)
            if all(a + dur + 40.0 <= s or a - 40.0 >= e for s, e in busy):
                busy.append((a, a + dur))
                return round(a, 1)
        return None

    dips, surges = [], []
    for _ in range(int(rng.poisson(u(3, 8) * n_hours))):
        dur = round(u(15, 120), 1)
        a = place(dur)
        if a is not None:
            dips.append({"at": a, "duration_s": dur, "drop": round(u(0.2, 0.6), 2)})
    for _ in range(int(rng.poisson(u(2, 5) * n_hours))):
        dur = round(u(8, 30), 1)
        a = place(dur)
        if a is not None:
            surges.append({"at": a, "duration_s": dur, "rise_bpm": round(u(8, 20), 1)})
    ev["pwa_dips"] = sorted(dips, key=lambda e: e["at"])
    ev["hr_surges"] = sorted(surges, key=lambda e: e["at"])
    scen["name"] = f"confounders-{seed}"
    return scen
