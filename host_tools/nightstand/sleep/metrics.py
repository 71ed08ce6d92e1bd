"""Sleep metrics from a hypnogram of 30-s epochs (wake / rem / nrem / unknown).

Definitions (AASM Manual for the Scoring of Sleep and Associated Events v2.6, "Summary
statistics"; Consensus Sleep Diary, Carney et al. 2012, Sleep 35:287):
- time in bed (TIB): lights-out to lights-on (here: the epochs given, i.e. the staged period).
- sleep onset: the first epoch scored as sleep (any NREM or REM), from lights-out;
  sleep onset latency (SOL) = its start - lights-out. No sleep: SOL unknown, TST 0.
- final awakening: the end of the last sleep epoch. Sleep period = onset .. final awakening.
- total sleep time (TST): REM + NREM epochs.
- wake after sleep onset (WASO): wake epochs inside the sleep period.
- sleep efficiency (SE): TST / TIB. Epochs whose stage is unknown (finger off, gaps) are left
  out of TIB's denominator and reported as `unknown_min`, so SE = TST / (TIB - unknown).
- awakenings: runs of >= 2 consecutive wake epochs (>= 1 min) inside the sleep period (a single
  30-s wake epoch between sleep epochs is an arousal-scale event, counted by the arousal index).
- REM latency: sleep onset to the first REM epoch.
Invariants (tests/host/sleep): TST <= TIB, 0 <= SE <= 1, SOL + TST + WASO <= TIB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from nightstand.sleep.staging import EPOCH_S, NREM, REM, UNKNOWN, WAKE

MIN_KNOWN_FRACTION = 0.5  # below half the epochs staged, the night's metrics are unknown
SLEEP = (REM, NREM)


@dataclass
class SleepMetrics:
    tib_min: float
    tst_min: float | None
    sol_min: float | None
    waso_min: float | None
    se: float | None
    awakenings: int | None
    rem_latency_min: float | None
    wake_min: float
    rem_min: float
    nrem_min: float
    unknown_min: float
    note: str = ""

    def to_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)


def _runs(mask: list[bool]) -> list[tuple[int, int]]:
    out, i, n = [], 0, len(mask)
    while i < n:
        if mask[i]:
            j = i
            while j + 1 < n and mask[j + 1]:
                j += 1
            out.append((i, j))
            i = j + 1
        else:
            i += 1
    return out


def sleep_metrics(stages: Sequence[str], epoch_s: float = EPOCH_S) -> SleepMetrics:
    """Metrics of one staged period (lights-out = start of epoch 0, lights-on = end)."""
    for s in stages:
        if s not in (WAKE, REM, NREM, UNKNOWN):
            raise ValueError(f"unknown stage {s!r} (expected wake, rem, nrem or unknown)")
    m = epoch_s / 60.0
    n = len(stages)
    count = {k: sum(1 for s in stages if s == k) for k in (WAKE, REM, NREM, UNKNOWN)}
    base = dict(tib_min=n * m, wake_min=count[WAKE] * m, rem_min=count[REM] * m,
                nrem_min=count[NREM] * m, unknown_min=count[UNKNOWN] * m)
    if n == 0 or (n - count[UNKNOWN]) < MIN_KNOWN_FRACTION * n:
        note = "no epochs" if n == 0 else (
            f"sleep unknown: only {n - count[UNKNOWN]} of {n} epochs could be staged")
        return SleepMetrics(tst_min=None, sol_min=None, waso_min=None, se=None, awakenings=None,
                            rem_latency_min=None, note=note, **base)
    tst = (count[REM] + count[NREM]) * m
    se = tst / ((n - count[UNKNOWN]) * m)
    sleep_idx = [i for i, s in enumerate(stages) if s in SLEEP]
    if not sleep_idx:
        return SleepMetrics(tst_min=0.0, sol_min=None, waso_min=0.0, se=se, awakenings=0,
                            rem_latency_min=None, note="no sleep scored", **base)
    onset, last = sleep_idx[0], sleep_idx[-1]
    period = stages[onset:last + 1]
    waso = sum(1 for s in period if s == WAKE) * m
    awakenings = sum(1 for a, b in _runs([s == WAKE for s in period]) if b - a + 1 >= 2)
    first_rem = next((i for i in range(onset, n) if stages[i] == REM), None)
    return SleepMetrics(tst_min=tst, sol_min=onset * m, waso_min=waso, se=se,
                        awakenings=awakenings,
                        rem_latency_min=None if first_rem is None else (first_rem - onset) * m,
                        **base)
