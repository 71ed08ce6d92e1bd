"""A lamp plan that moves the person's timing: keep it, or step the wake time towards a target.

Clinical practice for a delayed phase is small daily steps with dim evenings and light soon after
waking (e.g. Auger et al. 2015, AASM clinical practice guideline for intrinsic circadian rhythm
sleep-wake disorders; Burgess et al. 2003: gradual advances of ~1 h/day with morning light are
tolerated, smaller steps are safer). The plan turns the user's choice into the device's own
settings, `bedtime` and `wake` (the wind-down and the dawn follow them on the device: wind-down
starts `winddown_min` before bedtime, the dawn ramp ends at wake), validated with the firmware's
config schema, and the host pushes them at sync.

Rules (each one tested):
- a step moves the wake time by at most `step_min` minutes, and at most one step per local
  calendar day, so a missed sync never makes a bigger jump (the device keeps its last plan);
- bedtime moves with wake (the night keeps its length);
- when advancing, the dawn never starts before the predicted core-temperature minimum (latest
  edge of its band): light before CBTmin delays the clock instead of advancing it (phase
  response curve: Khalsa et al. 2003, J Physiol 549:945), so the plan waits for the phase;
- the dawn is never inside the night's dark window (bedtime to dawn start, <= 1 lx melanopic
  EDI): it is the last `dawn_min` before wake, and the schedule must pass the firmware's own
  `config.check_together` (night longer than the dawn + 10 min).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nsdev import config as devconfig

from nightstand.errors import UserError
from nightstand.phase import PhaseEstimate

MODES = ("keep", "advance")
MAX_STEP_MIN = 60


class PlanError(UserError):
    """A plan that cannot be built or applied; the previous plan stays in force."""


@dataclass(frozen=True)
class PlanSettings:
    mode: str = "keep"
    target_wake: str | None = None  # local "HH:MM" for mode "advance"
    step_min: int = 15

    def check(self) -> PlanSettings:
        if self.mode not in MODES:
            raise PlanError(f"unknown plan mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.mode == "advance":
            if self.target_wake is None:
                raise PlanError("an advancing plan needs a target wake time (--target-wake HH:MM)")
            try:
                devconfig.hhmm_to_min(self.target_wake)
            except ValueError:
                raise PlanError(f"target wake {self.target_wake!r} is not a time: use HH:MM "
                                "between 00:00 and 23:59") from None
        if isinstance(self.step_min, bool) or not isinstance(self.step_min, int) or not (
                1 <= self.step_min <= MAX_STEP_MIN):
            raise PlanError(f"step must be 1..{MAX_STEP_MIN} minutes per day")
        return self


@dataclass(frozen=True)
class Step:
    """What the next sync will set on the device, and why."""

    day: dt.date  # the local day the step belongs to
    changes: dict[str, str]  # device settings to set (empty: nothing changes)
    reason: str
    bedtime: str
    wake: str
    winddown_start: str
    dawn_start: str


def _fmt(minutes: int) -> str:
    m = minutes % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def _signed_gap(frm: int, to: int) -> int:
    """Minutes from clock time `frm` to `to`, the short way round (-719..720)."""
    d = (to - frm) % 1440
    return d - 1440 if d > 720 else d


def _geometry(cfg: dict, bed: int, wake: int) -> tuple[str, str]:
    return _fmt(bed - int(cfg["winddown_min"])), _fmt(wake - int(cfg["dawn_min"]))


def _local_min(unix_s: float, utc_offset_s: int) -> int:
    return int(((unix_s + utc_offset_s) // 60) % 1440)


def next_step(device_cfg: dict, settings: PlanSettings, today: dt.date,
              last_step_day: dt.date | None = None,
              phase: PhaseEstimate | None = None) -> Step:
    """The settings the next sync should give the device (validated with its own schema)."""
    settings.check()
    cfg = devconfig.defaults()
    cfg.update(device_cfg)
    try:
        bed = devconfig.hhmm_to_min(cfg["bedtime"])
        wake = devconfig.hhmm_to_min(cfg["wake"])
    except ValueError as e:
        raise PlanError(f"the device's bedtime/wake are not times ({e}): set them with "
                        "`nightstand config`") from None

    def step(changes: dict[str, str], reason: str, b: int, w: int) -> Step:
        if changes:
            _new, errors = devconfig.merge(cfg, changes)
            if errors:
                raise PlanError("the planned schedule is not valid on the device ("
                                + "; ".join(errors) + "): the previous plan stays in force")
        wd, dawn = _geometry(cfg, b, w)
        return Step(today, changes, reason, _fmt(b), _fmt(w), wd, dawn)

    if settings.mode == "keep":
        return step({}, "keeping the current timing", bed, wake)
    target = devconfig.hhmm_to_min(settings.target_wake)  # type: ignore[arg-type]
    gap = _signed_gap(wake, target)
    if gap == 0:
        return step({}, f"wake time is at the target {_fmt(target)}", bed, wake)
    if last_step_day is not None and last_step_day >= today:
        return step({}, "already stepped today: one step per day", bed, wake)
    move = max(-settings.step_min, min(settings.step_min, gap))
    if move < 0 and phase is not None:
        # the dawn must not start before the (latest) predicted temperature minimum
        cbt = _local_min(phase.cbtmin_band_unix_s[1], phase.utc_offset_s)
        dawn_after = _signed_gap(cbt, wake + move - int(cfg["dawn_min"]))
        if dawn_after < 0:
            move = min(0, move - dawn_after)
            if move == 0:
                return step({}, f"holding: an earlier dawn would start before the body-"
                            f"temperature minimum (predicted {_fmt(cbt)}), when light delays "
                            "the clock", bed, wake)
    new_wake, new_bed = wake + move, bed + move
    verb = "advancing" if move < 0 else "delaying"
    changes = {"bedtime": _fmt(new_bed), "wake": _fmt(new_wake)}
    return step(changes, f"{verb} {abs(move)} min towards wake {_fmt(target)}",
                new_bed, new_wake)
