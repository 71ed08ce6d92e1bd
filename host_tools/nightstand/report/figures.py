"""Figures for the night and trends pages (matplotlib, no pyplot state): aligned panels on one
local-time axis; unknown values are gaps (NaN), never interpolated; PNG bytes out."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MultipleLocator  # noqa: E402
from nsdev.core import vocab  # noqa: E402

from nightstand.report.metrics import (  # noqa: E402
    EPOCH_S,
    EVENING_LIMIT_LX,
    NIGHT_LIMIT_LX,
    Grid,
    NightData,
    runs,
)

WIDTH_IN = 11.0
DPI = 110
LEFT, RIGHT = 0.075, 0.915  # identical margins keep the panels of both figures aligned
C_HR, C_HRV, C_AR, C_SPO2 = "#c0392b", "#2471a3", "#7d3c98", "#117a65"
C_WARM, C_AMBER = "#e6b422", "#e67e22"
C_ROOM, C_LAMP, C_TOTAL = "#566573", "#d35400", "#1b2631"
QUALITY_ROWS = (  # (label, flag bit or None for "no record", colour)
    ("no record", None, "#000000"),
    ("contact off", vocab.FLAG_CONTACT_OFF, "#7f8c8d"),
    ("motion", vocab.FLAG_MOTION, "#f39c12"),
    ("FIFO overflow", vocab.FLAG_FIFO_OVERFLOW, "#c0392b"),
    ("PPG clipped", vocab.FLAG_PPG_CLIPPED, "#8e44ad"),
    ("sensor fault", vocab.FLAG_SENSOR_FAULT, "#922b21"),
    ("beats dropped", vocab.FLAG_BEATS_DROPPED, "#2e4053"),
)

matplotlib.rcParams.update({
    "font.size": 9.5, "axes.titlesize": 10, "axes.labelsize": 9.5, "legend.fontsize": 8.5,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "svg.fonttype": "none",
})


def _x(nd: NightData, unix_s: np.ndarray | float) -> Any:
    """Unix seconds -> matplotlib date numbers of the night's local wall-clock time."""
    return (np.asarray(unix_s, dtype=np.float64) + nd.utc_offset_s) / 86400.0


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _time_axis(ax: Any, nd: NightData, x0: float, x1: float, label: bool) -> None:
    ax.set_xlim(x0, x1)
    hours = (x1 - x0) * 24
    if hours <= 3:
        ax.xaxis.set_major_locator(mdates.MinuteLocator(byminute=[0, 15, 30, 45]))
        ax.xaxis.set_minor_locator(mdates.MinuteLocator(byminute=range(0, 60, 5)))
    else:
        step = 1 if hours <= 14 else 2 if hours <= 28 else 6
        ax.xaxis.set_major_locator(mdates.HourLocator(interval=step))
        ax.xaxis.set_minor_locator(mdates.MinuteLocator(byminute=[0, 30] if step == 1 else [0]))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    if label:
        off_h = nd.utc_offset_s / 3600
        ax.set_xlabel(f"local time (UTC{off_h:+g} h)")
    else:
        ax.tick_params(labelbottom=False)


def _quality_shade(ax: Any, nd: NightData, g: Grid) -> None:
    """Grey bands where the heart values are unknown or unreliable (no contact, artefacts)."""
    bad = ~g.valid()
    for a, b in runs(bad):
        ax.axvspan(_x(nd, g.unix_s[a]), _x(nd, g.unix_s[b - 1] + EPOCH_S), color="#b2babb",
                   alpha=0.25, lw=0, zorder=0)


def _lights(ax: Any, nd: NightData, m: dict[str, Any]) -> None:
    for key in ("lights_out_unix_s", "lights_on_unix_s"):
        t = m.get(key)
        if t is not None:
            ax.axvline(_x(nd, t), color="#34495e", lw=0.9, ls="--", zorder=1)


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555",
            fontsize=9.5, style="italic")


def _legend(ax: Any, **kw: Any) -> None:
    handles, _labels = ax.get_legend_handles_labels()
    if handles:
        _legend_above(ax, handles, _labels, **kw)


def _legend_above(ax: Any, handles: list[Any], labels: list[str], **kw: Any) -> None:
    """The legend in one row just above the panel, right-aligned: it never hides data."""
    ax.legend(handles, labels, loc="lower right", bbox_to_anchor=(1.0, 0.98), frameon=False,
              ncol=kw.pop("ncol", len(handles)), borderaxespad=0.1, handlelength=1.6,
              columnspacing=1.2, markerscale=kw.pop("markerscale", 1.0), **kw)


def _arousal_times(nd: NightData) -> list[tuple[float, float | None]]:
    out = []
    for e in nd.events:
        if e.get("kind") == vocab.EV_AROUSAL and e.get("unix_ms") is not None:
            vals = list(e.get("values") or [])
            strength = vals[1] / 1000.0 if len(vals) > 1 else None
            out.append((e["unix_ms"] / 1000.0, strength))
    return out


def _hypnogram(ax: Any, nd: NightData, g: Grid, sleep: Any) -> None:
    """Estimated sleep stages (nightstand.sleep), room light on shaded behind them."""
    from nightstand.sleep.staging import LIT_LUX

    level = {"wake": 3.0, "rem": 2.0, "nrem": 1.0}
    y = np.array([level.get(s, np.nan) for s in sleep.stages] + [np.nan])
    t = sleep.t0_unix_s + EPOCH_S * np.arange(len(y), dtype=np.float64)
    xs = _x(nd, t)
    ax.step(xs, y, where="post", color="#2e4053", lw=1.0)
    rem = np.where(y == 2.0, 2.0, np.nan)
    ax.step(xs, rem, where="post", color="#c0392b", lw=3.0)
    unknown = np.array([s == "unknown" for s in sleep.stages] + [False])
    for a, b in runs(unknown):
        ax.axvspan(xs[a], xs[b], color="#e5e7e9", lw=0)
    ax.set_yticks([1, 2, 3], ["NREM", "REM", "wake"])
    ax.set_ylim(0.5, 3.5)
    ax.set_ylabel("sleep (estimated)")
    lux = g.values["lux"]
    lit = (lux > LIT_LUX) & ((g.flags & vocab.FLAG_LAMP_ON) == 0)
    gx = _x(nd, np.append(g.unix_s, g.unix_s[-1] + EPOCH_S)) if g.n else []
    for a, b in runs(lit):  # room light on (lamp off): drawn behind the stages
        ax.axvspan(gx[a], gx[b], color="#f9e79f", lw=0, zorder=0)
    if lit.any():
        ax.plot([], [], color="#f9e79f", lw=6, label=f"room light > {LIT_LUX:g} lx")
    ax.plot([], [], color="#c0392b", lw=3, label="REM")
    _legend(ax, ncol=2)
    mt = sleep.metrics
    if mt.tst_min is None:
        _note(ax, f"sleep unknown: {mt.note}")


def main_figure(nd: NightData, g: Grid, m: dict[str, Any]) -> Figure:
    """Sleep stages, heart rate, HRV (RMSSD) and arousal: the panel shared as a PNG."""
    sleep = m.get("sleep")
    fig = Figure(figsize=(WIDTH_IN, 6.6 + (1.4 if sleep is not None else 0.0)))
    ratios = ([0.7] if sleep is not None else []) + [1.4, 1.0, 0.8]
    all_axs = fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    axs = all_axs[1:] if sleep is not None else all_axs
    fig.subplots_adjust(left=LEFT, right=RIGHT, top=0.89, bottom=0.09, hspace=0.22)
    if sleep is not None:
        _hypnogram(all_axs[0], nd, g, sleep)
    start = nd.local(g.unix_s[0]) if g.n else None
    fig.suptitle(f"Night of {nd.night_date():%a %d %b %Y} — "
                 + ("sleep, " if sleep is not None else "") + "heart rate, HRV and arousal"
                 + (f" (recording from {start:%H:%M})" if start else ""), fontsize=11,
                 x=LEFT, ha="left")
    x = _x(nd, g.unix_s)
    x0, x1 = (x[0], x[-1] + EPOCH_S / 86400) if g.n else (0, 1)
    valid = g.valid()
    # heart rate
    ax = axs[0]
    _quality_shade(ax, nd, g)
    t = np.asarray(nd.beat_t_ms, dtype=np.float64)
    if len(t) > 1:
        # beat-to-beat rate only inside valid epochs: beats stored while the contact was off or
        # during artefacts would look like physiology
        d = np.diff(t)
        k = np.floor((t[1:] / 1000.0 - g.t0_s) / EPOCH_S).astype(np.int64)
        inside = (k >= 0) & (k < g.n)
        ok = (d > 0) & (d < 3000) & inside
        ok[inside] &= valid[k[inside]]
        ax.plot(_x(nd, t[1:][ok] / 1000.0), 60000.0 / d[ok], ".", ms=1.2, color="#909497",
                alpha=0.5)
        ax.plot([], [], ".", ms=6, color="#909497", label="beat-to-beat")  # legend proxy
    ax.plot(x, g.heart("hr_bpm"), color=C_HR, lw=1.3, label="heart rate (30-s epochs)")
    flagged = g.present & ~valid & ~np.isnan(g.values["hr_bpm"])
    if flagged.any():
        ax.plot(x[flagged], g.values["hr_bpm"][flagged], "x", ms=3.5, color="#7b7d7d",
                label="unreliable (artefact flag)")
    ax.set_ylabel("heart rate (bpm)")
    hr = g.heart("hr_bpm")
    if np.isnan(hr).all():
        _note(ax, "no valid heart rate in this night")
    else:
        lo, hi = np.nanmin(hr), np.nanmax(hr)
        ax.set_ylim(max(25, lo - 8), min(200, hi + 12))
    ar = _arousal_times(nd)
    if ar:
        ax.plot(_x(nd, np.array([a[0] for a in ar])), [0.95] * len(ar), "v", color=C_AR, ms=6,
                transform=ax.get_xaxis_transform(), label="arousal event")
    _lights(ax, nd, m)
    _legend(ax, ncol=4)
    # HRV
    ax = axs[1]
    _quality_shade(ax, nd, g)
    ax.plot(x, g.heart("rmssd_ms"), color=C_HRV, lw=1.2, label="RMSSD")
    if np.isnan(g.heart("rmssd_ms")).all():
        _note(ax, "HRV unknown all night")
    ax.set_ylabel("HRV: RMSSD (ms)")
    ax.set_ylim(bottom=0)
    _lights(ax, nd, m)
    # arousal
    ax = axs[2]
    score = g.values["arousal_score"]
    if not np.isnan(score).all():
        ax.fill_between(x, score, step="post", color="#d7bde2", lw=0,
                        label="arousal score per epoch")
    for t_ev, strength in ar:
        ax.axvline(_x(nd, t_ev), color=C_AR, lw=1.2, alpha=0.35 + 0.65 * (strength or 0.5),
                   ymax=0.9)
    if ar:
        ax.plot([], [], color=C_AR, lw=1.4, label=f"arousal event ({len(ar)})")
    notes = []
    if np.isnan(score).all():
        notes.append("per-epoch arousal score not recorded")
    if not ar:
        notes.append("no arousal events recorded")
    if notes:
        _note(ax, "; ".join(notes))
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("arousal (0–1)")
    _lights(ax, nd, m)
    _legend(ax)
    _time_axis(axs[-1], nd, x0, x1, label=True)
    for a in all_axs[:-1]:
        _time_axis(a, nd, x0, x1, label=False)
    if sleep is not None:
        _lights(all_axs[0], nd, m)
    for key, text in (("lights_out_unix_s", "lights out"), ("lights_on_unix_s", "lights on")):
        if m.get(key) is not None:
            axs[2].annotate(text, (_x(nd, m[key]), 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -10), textcoords="offset points", fontsize=8,
                            color="#34495e")
    return fig


def detail_figure(nd: NightData, g: Grid, m: dict[str, Any]) -> Figure:
    """SpO2, signal quality, lamp, melanopic light, room climate and room light."""
    fig = Figure(figsize=(WIDTH_IN, 11.5))
    axs = fig.subplots(6, 1, sharex=True,
                       gridspec_kw={"height_ratios": [0.8, 1.0, 0.8, 1.2, 0.9, 0.9]})
    fig.subplots_adjust(left=LEFT, right=RIGHT, top=0.97, bottom=0.05, hspace=0.24)
    x = _x(nd, g.unix_s)
    x0, x1 = (x[0], x[-1] + EPOCH_S / 86400) if g.n else (0, 1)
    # SpO2
    ax = axs[0]
    _quality_shade(ax, nd, g)
    spo2 = g.heart("spo2_pct")
    ax.plot(x, spo2, color=C_SPO2, lw=1.1, label="SpO2 (uncalibrated)")
    if np.isnan(spo2).all():
        _note(ax, "SpO2 unknown all night")
    else:
        ax.set_ylim(max(70, np.nanmin(spo2) - 3), 100.5)
    ax.set_ylabel("SpO2 (%)")
    _lights(ax, nd, m)
    _legend(ax)
    # quality: SQI + one row per problem
    ax = axs[1]
    rows = [(label, bit, c) for label, bit, c in QUALITY_ROWS
            if (bit is None and (~g.present).any()) or (bit is not None and (g.flags & bit).any())]
    n_rows = max(1, len(rows))
    ax.set_ylim(0, 1 + 0.22 * n_rows)
    ax.plot(x, np.where(g.present, g.values["sqi"], np.nan), color="#1f618d", lw=0.9,
            label="signal quality index")
    for k, (label, bit, colour) in enumerate(rows):
        mask = ~g.present if bit is None else (g.flags & bit) != 0
        y = 1.05 + 0.22 * k
        spans = [(x[a], x[b - 1] + EPOCH_S / 86400 - x[a]) for a, b in runs(mask)]
        ax.broken_barh(spans, (y, 0.16), facecolors=colour, alpha=0.8)
        ax.text(1.005, y + 0.08, label, transform=ax.get_yaxis_transform(), fontsize=8,
                va="center", ha="left", color=colour)
    if not rows:
        ax.text(1.005, 1.13, "no problems flagged", transform=ax.get_yaxis_transform(),
                fontsize=8, va="center")
    ax.set_yticks([0, 0.5, 1])
    ax.set_ylabel("quality (0–1)")
    _legend(ax)
    # lamp
    ax = axs[2]
    ax.step(x, 100 * g.values["lamp_warm"], where="post", color=C_WARM, lw=1.3,
            label="warm white channel")
    ax.step(x, 100 * g.values["lamp_amber"], where="post", color=C_AMBER, lw=1.3,
            label="amber channel")
    ax.set_ylabel("lamp level (%)")
    ax.set_ylim(bottom=0)
    _lights(ax, nd, m)
    _legend(ax)
    # melanopic EDI with limits
    ax = axs[3]
    room, lamp = g.values["mel_edi_lx"], g.lamp_mel_lx()
    ax.plot(x, room, color=C_ROOM, lw=1.0, label="room (measured)")
    ax.plot(x, lamp, color=C_LAMP, lw=1.0, label="lamp (model)")
    ax.plot(x, room + lamp, color=C_TOTAL, lw=1.3, label="total at the eye")
    ef, et = m.get("evening_from_unix_s"), m.get("evening_to_unix_s")
    if ef is not None and et is not None:
        ax.hlines(EVENING_LIMIT_LX, _x(nd, ef), _x(nd, et), color="#b03a2e", lw=1.6, ls=":",
                  label=f"evening limit {EVENING_LIMIT_LX:g} lx")
    lo, lon = m.get("lights_out_unix_s"), m.get("lights_on_unix_s")
    if lo is not None and lon is not None:
        ax.hlines(NIGHT_LIMIT_LX, _x(nd, lo), _x(nd, lon), color="#6c3483", lw=1.6, ls=":",
                  label=f"night limit {NIGHT_LIMIT_LX:g} lx")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(0, max(20.0, float(np.nanmax(room + lamp)) * 2 if g.n and
                       not np.isnan(room + lamp).all() else 20.0))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.set_ylabel("melanopic EDI (lx)")
    _lights(ax, nd, m)
    _legend(ax, fontsize=8)
    # room climate
    ax = axs[4]
    ax.plot(x, g.values["temp_c"], color="#cb4335", lw=1.2, label="temperature")
    if not np.isnan(g.values["clip_temp_c"]).all():  # night format 4
        ax.plot(x, g.values["clip_temp_c"], color="#e67e22", lw=1.2,
                label="finger clip (skin proxy)")
    ax.set_ylabel("temperature (°C)", color="#cb4335")
    if np.isnan(g.values["temp_c"]).all():
        _note(ax, "room climate unknown (sensor not read)")
    ax2 = ax.twinx()
    ax2.plot(x, g.values["rh_pct"], color="#2874a6", lw=1.1, label="relative humidity")
    ax2.set_ylabel("humidity (%RH)", color="#2874a6")
    ax2.grid(False)
    ax2.spines["top"].set_visible(False)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    _legend_above(ax, h1 + h2, l1 + l2)
    _lights(ax, nd, m)
    # room light
    ax = axs[5]
    ax.plot(x, g.values["lux"], color="#7e5109", lw=1.1, label="light at the sensor")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0, max(10.0, float(np.nanmax(g.values["lux"])) * 2 if g.n and
                       not np.isnan(g.values["lux"]).all() else 10.0))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.set_ylabel("illuminance (lx)")
    if np.isnan(g.values["lux"]).all():
        _note(ax, "room light unknown (sensor not read)")
    _lights(ax, nd, m)
    _legend(ax)
    _time_axis(axs[-1], nd, x0, x1, label=True)
    for a in axs[:-1]:
        _time_axis(a, nd, x0, x1, label=False)
    return fig


# ---- trends -------------------------------------------------------------------------------------

def _clock_h(unix_s: float | None, utc_offset_s: int) -> float:
    """Local clock hour, continuous across midnight: 12..36 (18:00 -> 18, 01:30 -> 25.5)."""
    if unix_s is None:
        return np.nan
    h = ((unix_s + utc_offset_s) % 86400) / 3600.0
    return h + 24 if h < 12 else h


def trends_figure(rows: list[dict[str, Any]], journal: list[Any],
                  compare_date: dt.date | None) -> Figure:
    fig = Figure(figsize=(WIDTH_IN, 11.0))
    axs = fig.subplots(5, 1, sharex=True)
    fig.subplots_adjust(left=LEFT, right=RIGHT, top=0.95, bottom=0.06, hspace=0.26)
    x = np.array([mdates.date2num(dt.datetime.fromisoformat(r["date"])) for r in rows])
    marker = "o" if len(rows) <= 60 else None
    ms = 3

    def series(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])

    ax = axs[0]
    ax.plot(x, series("sleep_hr_mean_bpm"), color=C_HR, marker=marker, ms=ms, lw=1.2,
            label="mean sleeping HR")
    ax.plot(x, series("sleep_hr_lowest_bpm"), color="#f1948a", marker=marker, ms=ms, lw=1.0,
            label="lowest 5-min HR")
    ax.set_ylabel("heart rate (bpm)")
    _legend(ax)
    ax = axs[1]
    ax.plot(x, series("sleep_rmssd_median_ms"), color=C_HRV, marker=marker, ms=ms, lw=1.2,
            label="median sleeping RMSSD")
    ax.set_ylabel("HRV: RMSSD (ms)")
    _legend(ax)
    ax = axs[2]
    ax.plot(x, series("arousal_index_per_h"), color=C_AR, marker=marker, ms=ms, lw=1.2,
            label="arousal index")
    ax.set_ylabel("arousals per hour")
    ax.set_ylim(bottom=0)
    _legend(ax)
    ax = axs[3]
    ax.plot(x, series("evening_mean_mel_lx"), color=C_TOTAL, marker=marker, ms=ms, lw=1.2,
            label="evening light (mean over 3 h before lights-out)")
    ax.axhline(EVENING_LIMIT_LX, color="#b03a2e", ls=":", lw=1.5,
               label=f"evening limit {EVENING_LIMIT_LX:g} lx")
    ax.set_yscale("symlog", linthresh=1.0)
    eve = series("evening_mean_mel_lx")
    top = float(np.nanmax(eve)) if len(eve) and not np.isnan(eve).all() else 10.0
    ax.set_ylim(0, max(2 * EVENING_LIMIT_LX, 2 * top))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.set_ylabel("melanopic EDI (lx)")
    _legend(ax)
    ax = axs[4]
    bed = np.array([_clock_h(r.get("lights_out_unix_s"), r.get("utc_offset_s", 0))
                    for r in rows])
    ax.plot(x, bed, color="#1a5276", marker=marker or ".", ms=ms, lw=0.8,
            label="lights out")
    if len(rows) >= 7:
        roll = np.array([np.nanstd(bed[max(0, i - 6):i + 1], ddof=1)
                         if np.count_nonzero(~np.isnan(bed[max(0, i - 6):i + 1])) >= 3
                         else np.nan for i in range(len(bed))])
        ax3 = ax.twinx()
        ax3.plot(x, roll * 60, color="#a569bd", lw=1.0, label="SD of the last 7 nights")
        ax3.set_ylabel("7-night SD (min)", color="#a569bd")
        ax3.grid(False)
        ax3.set_ylim(bottom=0)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax3.get_legend_handles_labels()
        _legend_above(ax, h1 + h2, l1 + l2)
    else:
        _legend(ax)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{int(v) % 24:02d}:"
                                               f"{int(round((v % 1) * 60)) % 60:02d}"))
    ax.set_ylabel("bedtime (local)")
    known = bed[~np.isnan(bed)]
    span_h = float(known.max() - known.min()) if len(known) else 1.0
    ax.yaxis.set_major_locator(MultipleLocator(0.25 if span_h <= 1.5 else 0.5 if span_h <= 4
                                               else 1.0))
    ax.invert_yaxis()
    # Journal entries outside the nights' range are listed on the page, not drawn: a far-off
    # date would stretch the axis past what the renderer can draw.
    lo, hi = (min(x) - 1.0, max(x) + 1.0) if len(x) else (-np.inf, np.inf)
    journal = [e for e in journal
               if lo <= mdates.date2num(dt.datetime.fromisoformat(e.date)) <= hi]
    for a in axs:
        for e in journal:
            xe = mdates.date2num(dt.datetime.fromisoformat(e.date))
            is_cmp = compare_date is not None and e.date == compare_date.isoformat()
            a.axvline(xe, color="#1e8449" if is_cmp else "#7f8c8d", lw=1.4 if is_cmp else 0.9,
                      ls="-" if is_cmp else "--", zorder=1)
    for e in journal:
        xe = mdates.date2num(dt.datetime.fromisoformat(e.date))
        axs[0].annotate(f"#{e.id}", (xe, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, 2), textcoords="offset points", fontsize=8, color="#1e8449")
    loc = mdates.AutoDateLocator(minticks=4, maxticks=12)
    axs[-1].xaxis.set_major_locator(loc)
    axs[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    axs[-1].set_xlabel("night of (evening date)")
    if len(x):
        pad = 0.5
        axs[-1].set_xlim(min(x) - pad, max(x) + pad)
    return fig
