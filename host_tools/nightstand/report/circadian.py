"""The trends page's circadian section: predicted DLMO per night with its band, sleep timing,
evening and morning melanopic dose, the lamp plan's steps, and nights before vs after the plan
was chosen (Welch 95 % intervals, as for journal entries)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from nightstand import phase as phase_model
from nightstand import planning
from nightstand.journal import Entry
from nightstand.report import figures
from nightstand.report.pages import _cmp_table, _esc, _img, fmt
from nightstand.report.trends import compare
from nightstand.store import Store

C_SLEEP = "#5d6d7e"
C_DLMO = "#8e44ad"
C_CBT = "#2874a6"
C_PLAN = "#d68910"


def _evening_h(unix_s: float, off: int) -> float:
    """Clock hour on an axis from noon to noon (18:00 -> 18, 02:00 -> 26)."""
    h = ((unix_s + off) / 3600.0) % 24
    return h + 24 if h < 12 else h


def _hhmm_h(h: float) -> str:
    m = int(round(h * 60)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def _date(n: dict[str, Any]) -> dt.date:
    """The evening a night belongs to (its sleep onset minus 12 h, local)."""
    local = n["onset_unix_s"] + n["utc_offset_s"] - 12 * 3600
    return dt.datetime.fromtimestamp(local, dt.UTC).date()


def figure(nights: list[dict[str, Any]], log: list[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(figures.WIDTH_IN, 4.2))
    ax = fig.subplots()
    fig.subplots_adjust(left=figures.LEFT, right=figures.RIGHT, top=0.86, bottom=0.1)
    x = np.array([_date(n).toordinal() for n in nights], dtype=float)
    on = np.array([_evening_h(n["onset_unix_s"], n["utc_offset_s"]) for n in nights])
    off = np.array([_evening_h(n["offset_unix_s"], n["utc_offset_s"]) for n in nights])
    ax.vlines(x, on, off, color=C_SLEEP, lw=6, alpha=0.45, label="sleep (onset to final wake)")
    dl = np.array([_evening_h(n["dlmo_unix_s"], n["utc_offset_s"]) for n in nights])
    lo = np.array([_evening_h(n["dlmo_band_unix_s"][0], n["utc_offset_s"]) for n in nights])
    hi = np.array([_evening_h(n["dlmo_band_unix_s"][1], n["utc_offset_s"]) for n in nights])
    ax.errorbar(x, dl, yerr=[dl - lo, hi - dl], fmt="o", color=C_DLMO, ms=4, capsize=2,
                label="predicted DLMO (band: daytime light)")
    cb = np.array([_evening_h(n["cbtmin_unix_s"], n["utc_offset_s"]) for n in nights])
    ax.plot(x, cb, "v", color=C_CBT, ms=4, label="predicted core-temperature minimum")
    steps = [e for e in log if e["status"] == "sent" and e["changes"]]
    if steps:
        sx = [dt.date.fromisoformat(e["date"]).toordinal() for e in steps]
        wake = [devh(e["changes"]["wake"]) for e in steps]
        bed = [devh(e["changes"]["bedtime"]) for e in steps]
        ax.step(sx, wake, where="post", color=C_PLAN, lw=1.2, label="planned wake")
        ax.step(sx, bed, where="post", color=C_PLAN, lw=1.2, ls="--", label="planned bedtime")
    lo_y = float(np.nanmin(np.concatenate([lo, on]))) - 1
    hi_y = float(np.nanmax(np.concatenate([off, cb]))) + 1
    ax.set_ylim(hi_y, lo_y)  # evening at the top, morning below, like a sleep diary
    ax.yaxis.set_major_formatter(lambda v, _p: _hhmm_h(v))
    ax.set_ylabel("local time")
    span = max(3.0, float(x.max() - x.min()) + 1)
    ax.set_xlim(float(x.min()) - 0.05 * span - 0.5, float(x.max()) + 0.05 * span + 0.5)
    ax.xaxis.set_major_formatter(
        lambda v, _p: dt.date.fromordinal(max(1, int(round(v)))).strftime("%d %b"))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncol=3, frameon=False, bbox_to_anchor=(0, 1.12))
    return fig


def devh(hhmm: str) -> float:
    h = int(hhmm[:2]) + int(hhmm[3:]) / 60.0
    return h + 24 if h < 12 else h


@functools.lru_cache(maxsize=8)
def _estimate_cached(db_path: str, device_id: str, n_nights: int,
                     plan_set: int | None) -> dict[str, Any]:
    """One phase estimate per device and store state (report --all renders many nights)."""
    with Store(db_path) as store:
        return planning.overview(store, device_id)


def night_html(store: Store, device_id: str, night_id: int) -> str:
    """The night page's circadian paragraph: this night's predicted phase and the plan."""
    n_nights = sum(1 for r in store.nights() if r["device_id"] == device_id)
    plan_set = planning.get_plan(store, device_id).set_unix_s
    o = _estimate_cached(str(store.db_path), device_id, n_nights, plan_set)
    ph = o["phase"]
    mine = [n for n in (ph["nights"] if ph else []) if n["night_id"] == night_id]
    body = ["<h2>Circadian phase (predicted)</h2>"]
    if not mine:
        why = o["phase_error"] or dict(ph["skipped"] if ph else []).get(night_id,
                                                                    "not estimated")
        body.append(f'<p class="unknown">Unknown for this night: {_esc(why)}</p>')
    else:
        n = mine[0]
        off = n["utc_offset_s"]
        t = lambda u: phase_model.hhmm(u, off)  # noqa: E731
        lo, hi = n["dlmo_band_unix_s"]
        body.append(
            "<table>"
            f'<tr><td>predicted DLMO</td><td class="v" id="dlmo" data-value="'
            f'{n["dlmo_unix_s"]!r}">{t(n["dlmo_unix_s"])}</td><td class="n">band {t(lo)}–'
            f"{t(hi)} over the assumed daytime light</td></tr>"
            f"<tr><td>core-temperature minimum</td><td class=\"v\">{t(n['cbtmin_unix_s'])}"
            "</td><td></td></tr>"
            f"<tr><td>sleep</td><td class=\"v\">{t(n['onset_unix_s'])}–"
            f"{t(n['offset_unix_s'])}</td><td class=\"n\">{_esc(n['timing_source'])}</td></tr>"
            f"<tr><td>sleep onset − DLMO</td><td class=\"v\">"
            f"{fmt((n['onset_unix_s'] - n['dlmo_unix_s']) / 3600, '.1f', 'h')}</td>"
            '<td class="n">about 2 h in regular sleepers</td></tr>'
            f"<tr><td>evening melanopic dose</td><td class=\"v\">"
            f"{fmt(n['evening_mel_lx_h'], '.1f', 'lx·h')}</td><td class=\"n\">3 h before "
            "sleep onset</td></tr>"
            f"<tr><td>morning melanopic dose</td><td class=\"v\">"
            f"{fmt(n['morning_mel_lx_h'], '.1f', 'lx·h')}</td><td class=\"n\">2 h after "
            "waking, where recorded</td></tr></table>")
    body.append(f"<p>Lamp plan in force: {_esc(o['plan']['text'])} "
                "(<code>nightstand plan</code>; the trends page shows its steps).</p>")
    return "\n".join(body)


def section(store: Store, rows: list[dict[str, Any]]) -> str:
    """HTML for every device in the store (empty when there is none)."""
    parts = []
    for dev in planning.devices(store):
        o = planning.overview(store, dev)
        parts.append(_device_section(dev, o, rows))
    if not parts:
        return ""
    return "<h2>Circadian phase and lamp plan</h2>\n" + "\n".join(parts) + (
        '<p class="muted">Predicted with a published model of the human circadian clock '
        "(Forger, Jewett &amp; Kronauer 1999) from the light at the bedside and the sleep "
        "times; daytime light is not measured and is assumed (the band). Model DLMO errors on "
        "regular schedules are about 0.5–1 h. A prediction, not a melatonin measurement.</p>")


def _device_section(dev: str, o: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    body = [f"<h3>{_esc(dev)}</h3>"]
    ph = o["phase"]
    if not ph or not ph["nights"]:
        body.append(f'<p class="unknown">Phase unknown: {_esc(o["phase_error"])}</p>')
    else:
        nights = ph["nights"]
        body.append(_img(figures.png_bytes(figure(nights, o["log"])),
                         "sleep timing, predicted DLMO and the plan per night"))
        head = ("<tr><th>night of</th><th>sleep</th><th>predicted DLMO (band)</th>"
                "<th>core-temp. minimum</th><th>onset − DLMO</th>"
                "<th>evening dose (lx·h)</th><th>morning dose (lx·h)</th></tr>")
        trs = []
        for n in nights:
            off = n["utc_offset_s"]
            t = lambda u, off=off: phase_model.hhmm(u, off)  # noqa: E731
            lo, hi = n["dlmo_band_unix_s"]
            trs.append(
                f"<tr><td>{_date(n).isoformat()}</td>"
                f"<td>{t(n['onset_unix_s'])}–{t(n['offset_unix_s'])}</td>"
                f'<td class="v" data-value="{n["dlmo_unix_s"]!r}">{t(n["dlmo_unix_s"])} '
                f"({t(lo)}–{t(hi)})</td><td>{t(n['cbtmin_unix_s'])}</td>"
                f"<td>{fmt((n['onset_unix_s'] - n['dlmo_unix_s']) / 3600, '.1f', 'h')}</td>"
                f"<td>{fmt(n['evening_mel_lx_h'])}</td><td>{fmt(n['morning_mel_lx_h'])}</td>"
                "</tr>")
        body.append('<table class="phase">' + head + "".join(trs) + "</table>")
        if ph["skipped"]:
            body.append('<p class="muted">Not used: ' + _esc("; ".join(
                f"night {nid}: {why}" for nid, why in ph["skipped"])) + "</p>")
    plan_txt = o["plan"]["text"]
    body.append(f"<p>Plan in force: <strong>{_esc(plan_txt)}</strong>.</p>")
    if o["log"]:
        body.append("<table><tr><th>date</th><th>what</th><th>settings</th><th>why</th></tr>"
                    + "".join(
                        f"<tr><td>{_esc(e['date'])}</td><td>{_esc(e['status'])}</td><td>"
                        + _esc(", ".join(f"{k} {v}" for k, v in e["changes"].items()) or "–")
                        + f"</td><td>{_esc(e['reason'])}</td></tr>" for e in o["log"])
                    + "</table>")
    chosen = o["plan"]["chosen_unix_s"]
    if chosen:
        day = dt.datetime.fromtimestamp(chosen).date().isoformat()
        entry = Entry(id=0, date=day, text=f"lamp plan: {plan_txt}", tag="plan",
                      created_unix_s=chosen)
        mine = [r for r in rows if r.get("device_id") in (None, o["device_id"])]
        table, info = compare(mine, entry, [entry])
        body.append("<h4>Before and after the plan was chosen</h4>")
        body.append(_cmp_table(table, info, entry))
    return "\n".join(body)
