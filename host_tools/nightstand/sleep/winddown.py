"""Sleep onset latency after a breathing-paced wind-down session vs nights without one.

Two groups of nights (a session started before lights-out, or none), the difference of the mean
estimated SOL with a 95% Welch t interval: the same statistic the journal's before/after uses
(nightstand.report.trends.welch). Observational: the person chose when to use the wind-down,
so a difference is an association, not an effect.
"""

from __future__ import annotations

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
    from nightstand.report.trends import contrast

    with_, without = [], []
    for r in rows:
        v = r.get(key)
        if v is None:
            continue
        (with_ if had_wind_down(r) else without).append(float(v))
    mo, mw, diff, lo, hi, note = contrast(
        without, with_, names=("without", "with a wind-down"), where="in each group",
        excludes="the interval excludes 0 (an association, not proof of an effect)")
    return WindDownComparison(len(with_), len(without), mw, mo, diff, lo, hi, note)
