"""A recorded night as readable text and JSON: a rendering of the night model
(`nightstand.report.metrics.night_metrics`): the same figures as the HTML report and exports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nsdev.core import light, vocab

from nightstand.night import DISCLAIMER, Night
from nightstand.report.metrics import NightData, night_metrics

EVENING_LIMIT_LX = float(light.DEFAULTS["evening_cap_mel_lx"])  # Brown et al. 2022
NIGHT_LIMIT_LX = float(light.DEFAULTS["night_cap_mel_lx"])


def _local(night: Night, unix_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix_s + night.utc_offset_s, dt.UTC).replace(tzinfo=None)


def _hhmm(night: Night, unix_s: float) -> str:
    return _local(night, unix_s).strftime("%H:%M")


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "unknown" if v is None else f"{v:{spec}}{unit}"


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
    """The night model's figures for one decoded night, plus what only the file knows, and its
    sleep (night_sleep_of) when given."""
    m = night_metrics(NightData.from_night(n))
    return {**m, "start_unix_s": n.start_unix_s, "end_unix_s": n.end_unix_s(),
            "closed": n.closed, "bytes": n.size_bytes,
            "sleep": None if sleep is None else {**sleep.metrics.to_dict(),
                                                 "arousal_index_per_h": sleep.arousal_index_per_h,
                                                 "window_source": sleep.window_source}}


def night_text(n: Night) -> str:
    ns = night_sleep_of(n)
    d = night_dict(n, ns)
    start = _local(n, n.start_unix_s)
    epochs = d.get("epochs_recorded", 0)
    lines = [
        f"Night {n.night_id} — {start:%a %d %b %Y}, {_hhmm(n, n.start_unix_s)}–"
        f"{_hhmm(n, n.end_unix_s())} local ({(d['end_unix_s'] - d['start_unix_s']) / 3600:.1f} h"
        f"{'' if n.closed else ', still open'})",
        f"  recording   {epochs} epochs of {vocab.EPOCH_S} s, heart rate valid in "
        f"{d.get('epochs_valid_hr', 0)} ({d.get('valid_hr_pct', 0.0):.0f}%), "
        f"{d.get('beats_stored', 0)} beats stored, file {d['bytes'] / 1024:.0f} KiB",
    ]
    if not epochs:
        lines.append(f"  {DISCLAIMER}")
        return "\n".join(lines)
    lo = d.get("lights_out_unix_s")
    lon = d.get("lights_on_unix_s")
    src = str(d.get("lights_source") or "").split("/")[0]
    how = {"events": "from the device", "light": "estimated from the room light",
           "lamp": "estimated from the lamp"}.get(src, src)
    lights = f"{_hhmm(n, lo)}–{_hhmm(n, lon)} ({how})" if lo and lon else "not found"
    lines += [
        f"  lights out  {lights}",
        f"  heart       while lights out: mean {_fmt(d.get('sleep_hr_mean_bpm'), '.1f', ' bpm')}, "
        f"lowest 5-min {_fmt(d.get('sleep_hr_lowest_bpm'), '.1f', ' bpm')}, RMSSD median "
        f"{_fmt(d.get('sleep_rmssd_median_ms'), '.0f', ' ms')}, SpO2 median "
        f"{_fmt(d.get('sleep_spo2_median_pct'), '.0f', '%')} (uncalibrated)",
        f"  arousals    {d.get('arousal_events_total', 0)} autonomic arousal events "
        f"({_fmt(d.get('arousal_index_per_h'), '.1f', ' per hour of valid sleep recording')})",
        *_sleep_lines(ns),
    ]
    if d.get("temp_c_range"):
        t, rh = d["temp_c_range"], d.get("rh_pct_range")
        lines.append(
            f"  room        {t[0]:.1f}–{t[1]:.1f} °C"
            + (f", {rh[0]:.0f}–{rh[1]:.0f} %RH" if rh else "")
            + f", light up to {_fmt(d.get('lux_max'), '.1f', ' lx')}")
    else:
        lines.append("  room        unknown (environment sensor not read)")
    if d.get("clip_temp_rise_c") is not None:
        lines.append(f"  clip temp   {d['clip_temp_evening_c']:.1f} °C before lights out → "
                     f"{d['clip_temp_sleep_c']:.1f} °C after ({d['clip_temp_rise_c']:+.1f} °C; "
                     "a proxy of finger skin temperature)")
    lamp = d.get("lamp_phases") or {}
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
    sd = d.get("smart_dawn")  # the night model's (report.metrics.smart_dawn)
    if sd is not None:
        lines.append(f"  smart dawn  started {_hhmm(n, sd['unix_s'])}, "
                     f"{sd['advance_min']:.0f} min before the fixed dawn ({sd['reason']})")
    if not lamp:
        lines.append("  lamp        no lamp data")
    if d.get("flag_epochs"):
        lines.append("  quality     " + ", ".join(f"{k} in {v} epochs"
                                                   for k, v in sorted(d["flag_epochs"].items())))
    if d.get("event_counts"):
        counts = ", ".join(f"{k} ×{v}" for k, v in sorted(d["event_counts"].items()))
        lines.append("  events      " + counts)
    if d["skipped_ranges"]:
        lines.append(f"  damaged     {d['skipped_ranges']} byte ranges skipped while decoding")
    lines.append(f"  {DISCLAIMER}")
    return "\n".join(lines)
