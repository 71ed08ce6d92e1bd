"""Readable summaries of a simulation run and of a recorded night (text and JSON)."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from nsdev.core import light, vocab

from nightstand.night import Night, flag_names
from nightstand.sim.runner import SimResult

EPOCH_S = vocab.EPOCH_S
DISCLAIMER = "nightstand measures and gives feedback; it does not diagnose or advise treatment."


def _local(night: Night, unix_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix_s + night.utc_offset_s, dt.UTC).replace(tzinfo=None)


def _hhmm(night: Night, unix_s: float) -> str:
    return _local(night, unix_s).strftime("%H:%M")


def _values(night: Night, key: str) -> list[float]:
    return [e[key] for e in night.epochs if e.get(key) is not None]


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "unknown" if v is None else f"{v:{spec}}{unit}"


def sim_dict(r: SimResult) -> dict[str, Any]:
    return {
        "status": r.status,
        "simulated_s": r.sim_s,
        "wall_s": round(r.wall_s, 2),
        "speedup": round(r.speedup, 1),
        "firmware_cpu_ms_per_sim_s": (
            round(1000 * r.firmware_cpu_s / r.sim_s, 3) if r.sim_s else None
        ),
        "heap_peak_bytes": r.heap_peak,
        "resets": r.resets,
    }


def sim_text(r: SimResult, name: str = "") -> str:
    d = sim_dict(r)
    lines = [
        f"Simulation {name}".rstrip() + ":",
        f"  {r.sim_s / 3600:.1f} h simulated in {r.wall_s:.1f} s ({d['speedup']:.0f}x real time),"
        f" firmware CPU {d['firmware_cpu_ms_per_sim_s']:.2f} ms per simulated second,",
        f"  firmware data heap peak {r.heap_peak / 1024:.0f} KiB (live after GC; budget 128 KiB)",
    ]
    if r.resets:
        lines.append(f"  board resets: {len(r.resets)} ({', '.join(str(x[2]) for x in r.resets)})")
    return "\n".join(lines)


_LAMP = light.LightController()  # the firmware's lamp model with its default photometry
EVENING_LIMIT_LX = float(light.DEFAULTS["evening_cap_mel_lx"])  # Brown et al. 2022
NIGHT_LIMIT_LX = float(light.DEFAULTS["night_cap_mel_lx"])


def _phases(night: Night) -> list[tuple[float, str]]:
    """(unix_s, phase name) from the device's LAMP_PHASE events."""
    out = []
    for ev in night.events:
        if ev["kind"] == vocab.EV_LAMP_PHASE:
            code = ev["fields"].get("phase")
            if code is not None and 0 <= code < len(vocab.PHASE_NAMES):
                out.append((ev["unix_ms"] / 1000.0, vocab.PHASE_NAMES[int(code)]))
    return out


def _lamp_phases(night: Night) -> dict[str, Any]:
    """Lamp per part of the night (evening wind-down, night, dawn) from the epochs' per-channel
    peak levels and the device's phase events."""
    rows = []
    for e in night.epochs:
        lv = e.get("lamp_level") or [0.0, 0.0]
        rows.append((e["unix_s"], float(lv[0] or 0.0), float(lv[1] or 0.0)))
    if not rows:
        return {}
    bounds = _phases(night)
    end = night.end_unix_s()

    def phase_at(t: float) -> str:
        name = "wind_down" if not bounds or t < bounds[0][0] else bounds[0][1]
        for when, ph in bounds:
            if when <= t:
                name = ph
        return name

    out: dict[str, Any] = {}
    for name in ("wind_down", "night", "dawn"):
        sel = [r for r in rows if phase_at(r[0] + EPOCH_S / 2) == name]
        if not sel:
            continue
        on = [r for r in sel if r[1] > 0 or r[2] > 0]
        out[name] = {
            "from": sel[0][0], "to": min(end, sel[-1][0] + EPOCH_S),
            "peak_warm": max(r[1] for r in sel), "peak_amber": max(r[2] for r in sel),
            "peak_mel_lx": max(_LAMP.lamp_mel_edi_lx(r[1], r[2]) for r in sel),
            "on_s": EPOCH_S * len(on),
            "on_from": on[0][0] if on else None, "on_to": on[-1][0] + EPOCH_S if on else None,
        }
    return out


def night_sleep_of(n: Night) -> Any:
    """The night's sleep (nightstand.sleep.night.NightSleep or None), lights from the report."""
    from nightstand.report.metrics import NightData, grid_of, lights
    from nightstand.sleep.night import night_sleep

    nd = NightData.from_night(n)
    return night_sleep(n.epochs, n.beat_t_ms, n.events, n.utc_offset_s, lights(nd, grid_of(nd)),
                       n.beat_pwa)


def _sleep_lines(ns: Any) -> list[str]:
    if ns is None:
        return ["  sleep       unknown (no epochs)"]
    m = ns.metrics
    if m.tst_min is None:
        return [f"  sleep       unknown: {m.note}"]

    def hm(v: float | None) -> str:
        return "unknown" if v is None else f"{int(v // 60)} h {int(round(v % 60)):02d} min"

    idx = _fmt(ns.arousal_index_per_h, ".1f", " per hour of sleep")
    return [
        f"  sleep       asleep {hm(m.tst_min)} of {hm(m.tib_min)} in bed (efficiency "
        f"{100 * m.se:.0f}%), fell asleep after {_fmt(m.sol_min, '.0f', ' min')}, awake "
        f"{m.waso_min:.0f} min after sleep onset ({m.awakenings} awakenings)",
        f"  stages      REM {m.rem_min:.0f} min (latency {_fmt(m.rem_latency_min, '.0f', ' min')}"
        f"), NREM {m.nrem_min:.0f} min, wake {m.wake_min:.0f} min"
        + (f", unknown {m.unknown_min:.0f} min" if m.unknown_min else "")
        + f"; arousal index {idx}",
        "  hypnogram   " + _hypno(ns),
        f"  breathing   {_fmt(ns.resp_median_bpm, '.1f', ' breaths/min')} while asleep (median; "
        f"known in {_fmt(ns.resp_known_pct, '.0f', '%')} of sleep epochs, from the pulse)",
    ]


def _hypno(ns: Any) -> str:
    from nightstand.sleep.night import hypnogram_text

    return hypnogram_text(ns) + "  (W wake, R REM, n NREM, ? unknown; estimated from the heart)"


def night_dict(n: Night, sleep: Any = None) -> dict[str, Any]:
    hr = _values(n, "hr_bpm")
    rmssd = _values(n, "rmssd_ms")
    spo2 = _values(n, "spo2_pct")
    temp = _values(n, "temp_c")
    rh = _values(n, "rh_pct")
    lux = _values(n, "lux")
    flags_count: dict[str, int] = {}
    for e in n.epochs:
        for name in flag_names(int(e.get("flags", 0))):
            flags_count[name] = flags_count.get(name, 0) + 1
    events: dict[str, int] = {}
    for ev in n.events:
        events[ev["kind_name"]] = events.get(ev["kind_name"], 0) + 1
    hours = max(1e-9, (n.end_unix_s() - n.start_unix_s) / 3600)
    arousals = sum(1 for ev in n.events if ev["kind"] == vocab.EV_AROUSAL)
    return {
        "night_id": n.night_id,
        "device_id": n.header.get("device_id"),
        "start_unix_s": n.start_unix_s,
        "end_unix_s": n.end_unix_s(),
        "utc_offset_s": n.utc_offset_s,
        "closed": n.closed,
        "epochs": len(n.epochs),
        "epochs_with_hr": len(hr),
        "beats": len(n.beat_t_ms),
        "hr_mean_bpm": statistics.fmean(hr) if hr else None,
        "hr_lowest_bpm": min(hr) if hr else None,
        "rmssd_median_ms": statistics.median(rmssd) if rmssd else None,
        "spo2_median_pct": statistics.median(spo2) if spo2 else None,
        "arousal_events": arousals,
        "arousal_index_per_h": arousals / hours,
        "temp_c_range": [min(temp), max(temp)] if temp else None,
        "rh_pct_range": [min(rh), max(rh)] if rh else None,
        "lux_max": max(lux) if lux else None,
        "flags": flags_count,
        "events": events,
        "lamp": _lamp_phases(n),
        "bytes": n.size_bytes,
        "skipped_ranges": len(n.skipped),
        "sleep": None if sleep is None else {**sleep.metrics.to_dict(),
                                             "arousal_index_per_h": sleep.arousal_index_per_h,
                                             "window_source": sleep.window_source},
    }


def night_text(n: Night) -> str:
    ns = night_sleep_of(n)
    d = night_dict(n, ns)
    start = _local(n, n.start_unix_s)
    lines = [
        f"Night {n.night_id} — {start:%a %d %b %Y}, {_hhmm(n, n.start_unix_s)}–"
        f"{_hhmm(n, n.end_unix_s())} local ({(d['end_unix_s'] - d['start_unix_s']) / 3600:.1f} h"
        f"{'' if n.closed else ', still open'})",
        f"  recording   {d['epochs']} epochs of {EPOCH_S} s, heart rate known in "
        f"{d['epochs_with_hr']} ({100 * d['epochs_with_hr'] / max(1, d['epochs']):.0f}%), "
        f"{d['beats']} beats stored, file {d['bytes'] / 1024:.0f} KiB",
        f"  heart       mean {_fmt(d['hr_mean_bpm'], '.1f', ' bpm')}, lowest epoch "
        f"{_fmt(d['hr_lowest_bpm'], '.1f', ' bpm')}, RMSSD median "
        f"{_fmt(d['rmssd_median_ms'], '.0f', ' ms')}, SpO2 median "
        f"{_fmt(d['spo2_median_pct'], '.0f', '%')} (uncalibrated)",
        f"  arousals    {d['arousal_events']} autonomic arousal events "
        f"({d['arousal_index_per_h']:.1f} per hour of recording)",
        *_sleep_lines(ns),
    ]
    if d["temp_c_range"]:
        lines.append(
            f"  room        {d['temp_c_range'][0]:.1f}–{d['temp_c_range'][1]:.1f} °C, "
            f"{d['rh_pct_range'][0]:.0f}–{d['rh_pct_range'][1]:.0f} %RH, "
            f"light up to {_fmt(d['lux_max'], '.1f', ' lx')}"
        )
    else:
        lines.append("  room        unknown (environment sensor not read)")
    lamp = d["lamp"]
    wd, nt, dw = lamp.get("wind_down"), lamp.get("night"), lamp.get("dawn")
    if wd:
        lines.append(
            f"  evening     lamp wind-down until {_hhmm(n, wd['to'])}: warm up to "
            f"{100 * wd['peak_warm']:.1f}%, amber up to {100 * wd['peak_amber']:.1f}%, "
            f"at most {wd['peak_mel_lx']:.2f} lx melanopic EDI (limit {EVENING_LIMIT_LX:g})")
    if nt:
        lit = (f"on {nt['on_s'] // 60} min in all (night light, at most "
               f"{nt['peak_mel_lx']:.2f} lx melanopic; limit {NIGHT_LIMIT_LX:g})" if nt["on_s"]
               else "off")
        lines.append(f"  night       {_hhmm(n, nt['from'])}–{_hhmm(n, nt['to'])}: lamp {lit}")
    if dw:
        lines.append(
            f"  dawn        {_hhmm(n, dw['from'])}–{_hhmm(n, dw['to'])}: warm white rising to "
            f"{100 * dw['peak_warm']:.0f}% ({dw['peak_mel_lx']:.0f} lx melanopic at wake)")
    for ev in n.events:
        if ev["kind"] == vocab.EV_SMART_DAWN and ev.get("unix_ms") is not None:
            vals = list(ev.get("values") or []) + [0, 0]
            why = ev.get("text") or "?"
            lines.append(f"  smart dawn  started {_hhmm(n, ev['unix_ms'] / 1000)}, "
                         f"{vals[0] / 60:.0f} min before the fixed dawn ({why})")
    if not lamp:
        lines.append("  lamp        no lamp data")
    if d["flags"]:
        lines.append("  quality     " + ", ".join(f"{k} in {v} epochs"
                                                   for k, v in sorted(d["flags"].items())))
    if d["events"]:
        counts = ", ".join(f"{k} ×{v}" for k, v in sorted(d["events"].items()))
        lines.append("  events      " + counts)
    if d["skipped_ranges"]:
        lines.append(f"  damaged     {d['skipped_ranges']} byte ranges skipped while decoding")
    lines.append(f"  {DISCLAIMER}")
    return "\n".join(lines)
