"""Sleep onset latency after a breathing-paced wind-down session vs nights without one.

Two groups of nights (a session started before lights-out, or none), the difference of the mean
estimated SOL with a 95% Welch t interval: the same statistic the journal's before/after uses
(nightstand.report.trends.welch). Observational: the person chose when to use the wind-down,
so a difference is an association, not an effect.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any


@dataclass
class WindDownComparison:
    n_with: int
    n_without: int
    mean_with_min: float | None
    mean_without_min: float | None
    diff_min: float | None  # with - without
    ci_low: float | None
    ci_high: float | None
    note: str


def had_wind_down(row: dict[str, Any]) -> bool:
    """A wind-down session started before lights-out (any session if lights-out is unknown)."""
    lo = row.get("lights_out_unix_s")
    return any(lo is None or s["start_unix_s"] <= lo
               for s in row.get("wind_down_sessions") or [])


def sol_after_wind_down(rows: list[dict[str, Any]], key: str = "sleep_sol_min",
                        ) -> WindDownComparison:
    from nightstand.report.trends import welch

    with_, without = [], []
    for r in rows:
        v = r.get(key)
        if v is None:
            continue
        (with_ if had_wind_down(r) else without).append(float(v))
    mw = statistics.fmean(with_) if with_ else None
    mo = statistics.fmean(without) if without else None
    diff = mw - mo if mw is not None and mo is not None else None
    ci = welch(without, with_)
    if len(with_) < 2 or len(without) < 2:
        note = (f"not enough nights ({len(with_)} with a wind-down, {len(without)} without; "
                "at least 2 in each group are needed)")
    elif ci is None:
        note = "no variation in either group: no interval"
    elif ci[0] > 0 or ci[1] < 0:
        note = "the interval excludes 0 (an association, not proof of an effect)"
    else:
        note = "the interval includes 0: no clear difference"
    return WindDownComparison(len(with_), len(without), mw, mo, diff,
                              ci[0] if ci else None, ci[1] if ci else None, note)
