"""The circadian plan against the store: the phase from a device's synced nights, the plan in
force, its log of changes (each with its reason), and the step the next sync gives the device.

Pure model and rules live in `nightstand.phase` and `nightstand.plan`; this module only reads
and writes the store and talks to a connected device."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from nsdev import config as devconfig
from nsdev.core import vocab

from nightstand import phase as phase_model
from nightstand import plan as plan_rules
from nightstand.errors import UserError
from nightstand.night import Night, decode_night
from nightstand.phase import Daylight, NightLight, PhaseError, PhaseResult
from nightstand.plan import PlanError, PlanSettings, Step
from nightstand.store import Store

# store tables (migration in nightstand.store): plans, plan_log, device_configs


@dataclass
class PlanState:
    device_id: str
    settings: PlanSettings
    daylight: Daylight
    set_unix_s: int | None  # None: never chosen (the default is to keep the timing)


def devices(store: Store) -> list[str]:
    rows = store.db.execute(
        "SELECT device_id FROM devices UNION SELECT device_id FROM nights ORDER BY 1")
    return [r[0] for r in rows]


def pick_device(store: Store, device_id: str | None) -> str:
    known = devices(store)
    if device_id:
        if device_id not in known:
            raise UserError(f"no device {device_id!r} in this store (known: "
                            f"{', '.join(known) or 'none'})")
        return device_id
    if not known:
        raise UserError("the store has no device yet: sync one first (`nightstand sync`)")
    if len(known) > 1:
        raise UserError(f"the store holds several devices ({', '.join(known)}): "
                        "choose one with --device")
    return known[0]


def get_plan(store: Store, device_id: str) -> PlanState:
    row = store.db.execute(
        "SELECT mode, target_wake, step_min, daylight_json, set_unix_s FROM plans "
        "WHERE device_id=?", (device_id,)).fetchone()
    if row is None:
        return PlanState(device_id, PlanSettings(), Daylight(), None)
    daylight = Daylight(**json.loads(row[3])) if row[3] else Daylight()
    return PlanState(device_id, PlanSettings(row[0], row[1], int(row[2])), daylight,
                     int(row[4]))


def set_plan(store: Store, device_id: str, settings: PlanSettings,
             daylight: Daylight | None = None) -> PlanState:
    """Choose a plan (checked first: a bad choice keeps the previous plan) and log it."""
    settings.check()
    daylight = daylight or get_plan(store, device_id).daylight
    now = int(time.time())
    with store.db:
        store.db.execute(
            "INSERT INTO plans(device_id, mode, target_wake, step_min, daylight_json, "
            "set_unix_s) VALUES (?,?,?,?,?,?) ON CONFLICT(device_id) DO UPDATE SET "
            "mode=excluded.mode, target_wake=excluded.target_wake, step_min=excluded.step_min, "
            "daylight_json=excluded.daylight_json, set_unix_s=excluded.set_unix_s",
            (device_id, settings.mode, settings.target_wake, settings.step_min,
             json.dumps(asdict(daylight)), now))
        _log(store, device_id, now, dt.date.today(), {}, describe_settings(settings), "chosen")
    return get_plan(store, device_id)


def describe_settings(s: PlanSettings) -> str:
    if s.mode == "keep":
        return "keep the current timing"
    return f"move wake towards {s.target_wake} by at most {s.step_min} min a day"


def _log(store: Store, device_id: str, unix_s: int, day: dt.date, changes: dict[str, Any],
         reason: str, status: str) -> None:
    store.db.execute(
        "INSERT INTO plan_log(device_id, unix_s, local_date, changes_json, reason, status) "
        "VALUES (?,?,?,?,?,?)",
        (device_id, unix_s, day.isoformat(), json.dumps(changes), reason, status))


def log(store: Store, device_id: str, limit: int = 20) -> list[dict[str, Any]]:
    rows = store.db.execute(
        "SELECT unix_s, local_date, changes_json, reason, status FROM plan_log "
        "WHERE device_id=? ORDER BY id DESC LIMIT ?", (device_id, limit)).fetchall()
    return [{"unix_s": r[0], "date": r[1], "changes": json.loads(r[2]), "reason": r[3],
             "status": r[4]} for r in reversed(rows)]


def last_step_day(store: Store, device_id: str) -> dt.date | None:
    row = store.db.execute(
        "SELECT MAX(local_date) FROM plan_log WHERE device_id=? AND status='sent' "
        "AND changes_json != '{}'", (device_id,)).fetchone()
    return dt.date.fromisoformat(row[0]) if row and row[0] else None


def step_day(store: Store, device_id: str) -> dt.date:
    """The day a step at this sync belongs to: the local date of the morning that ended the
    newest synced night (so the plan moves once per night the person slept with the device,
    however often or seldom they sync), else this computer's date."""
    row = store.db.execute(
        "SELECT id FROM nights WHERE device_id=? ORDER BY start_unix_s DESC LIMIT 1",
        (device_id,)).fetchone()
    if row is not None:
        try:
            night = decode_night(store.raw_bytes(row[0]))
            end = night.end_unix_s() + night.utc_offset_s
            return dt.datetime.fromtimestamp(end, dt.UTC).date()
        except (UserError, OSError, ValueError, KeyError):
            pass
    return dt.date.today()


def remember_config(store: Store, device_id: str, cfg: dict[str, Any]) -> None:
    with store.db:
        store.db.execute(
            "INSERT INTO device_configs(device_id, unix_s, config_json) VALUES (?,?,?) "
            "ON CONFLICT(device_id) DO UPDATE SET unix_s=excluded.unix_s, "
            "config_json=excluded.config_json",
            (device_id, int(time.time()), json.dumps(cfg)))


def known_config(store: Store, device_id: str) -> dict[str, Any] | None:
    row = store.db.execute("SELECT config_json FROM device_configs WHERE device_id=?",
                           (device_id,)).fetchone()
    return json.loads(row[0]) if row else None


# ---- nights -> phase ------------------------------------------------------------------------

def sleep_timing(night: Night) -> tuple[float | None, float | None, str]:
    """Sleep onset and final awakening (unix s) of a night, and where they came from.

    The device's lights-out event (room dark or the scheduled bedtime) stands for sleep onset,
    and the last epoch with a pulse reading (the clip came off) or the first lights-on after it
    for the final awakening."""
    onset = next((ev["unix_ms"] / 1000 for ev in night.events
                  if ev["kind"] == vocab.EV_LIGHTS_OUT and ev.get("unix_ms") is not None), None)
    if onset is None:
        return None, None, "no lights-out recorded"
    worn = [e["unix_s"] + vocab.EPOCH_S for e in night.epochs
            if e.get("hr_bpm") is not None and e["unix_s"] >= onset]
    offset = max(worn) if worn else None
    on = [ev["unix_ms"] / 1000 for ev in night.events
          if ev["kind"] == vocab.EV_LIGHTS_ON and ev.get("unix_ms") is not None
          and ev["unix_ms"] / 1000 > onset + phase_model.MIN_SLEEP_H * 3600]
    if on and (offset is None or on[0] < offset):
        offset = on[0]
    if offset is None:
        offset = float(night.end_unix_s())
    return float(onset), float(offset), "lights-out to clip off / lights on"


def staged_timing(store: Store) -> dict[int, tuple[float, float]]:
    """Sleep onset and final awakening (unix s) per store row from the host's sleep staging
    (nightstand.sleep; cached beside the store): onset = lights-out + sleep onset latency,
    final awakening = the end of the last sleep epoch in the lights-out window."""
    from nightstand.sleep import staging as st
    from nightstand.sleep.night import store_sleep_by_row

    out: dict[int, tuple[float, float]] = {}
    for row_id, ns in store_sleep_by_row(store).items():
        if ns is None or ns.metrics.sol_min is None or ns.metrics.tst_min is None:
            continue
        onset = ns.window_from_unix_s + 60.0 * ns.metrics.sol_min
        asleep = [k for k, s in enumerate(ns.stages) if s in (st.REM, st.NREM)
                  and ns.window_from_unix_s <= ns.t0_unix_s + k * vocab.EPOCH_S
                  < ns.window_to_unix_s]
        if asleep:
            out[row_id] = (onset, ns.t0_unix_s + (asleep[-1] + 1) * vocab.EPOCH_S)
    return out


def night_light(night: Night, staged: tuple[float, float] | None = None) -> NightLight:
    if staged is not None:
        (onset, offset), source = staged, "sleep staging"
    else:
        onset, offset, source = sleep_timing(night)
    light = [(float(e["unix_s"]), float(e["mel_edi_lx"])) for e in night.epochs
             if e.get("mel_edi_lx") is not None and math.isfinite(float(e["mel_edi_lx"]))]
    return NightLight(night_id=night.night_id, start_unix_s=float(night.start_unix_s),
                      end_unix_s=float(night.end_unix_s()), utc_offset_s=night.utc_offset_s,
                      onset_unix_s=onset, offset_unix_s=offset, light=light,
                      timing_source=source)


def load_nights(store: Store, device_id: str) -> tuple[list[NightLight], list[tuple[int, str]]]:
    out: list[NightLight] = []
    bad: list[tuple[int, str]] = []
    try:
        staged = staged_timing(store)
    except (ImportError, OSError, ValueError) as e:  # staging unavailable: device events only
        staged = {}
        bad.append((0, f"sleep staging unavailable ({e}): lights-out used for sleep onset"))
    for row in store.nights():
        if row["device_id"] != device_id:
            continue
        try:
            out.append(night_light(decode_night(store.raw_bytes(row["id"])),
                                   staged.get(row["id"])))
        except (UserError, OSError, ValueError, KeyError) as e:
            bad.append((int(row["night_id"]), f"cannot be read ({e})"))
    return out, bad


def estimate(store: Store, device_id: str, model: str = "forger99") -> PhaseResult:
    state = get_plan(store, device_id)
    nights, bad = load_nights(store, device_id)
    result = phase_model.estimate(nights, state.daylight, model)
    result.skipped.extend(bad)
    return result


# ---- the step at sync -----------------------------------------------------------------------

def next_step(store: Store, device_id: str, device_cfg: dict[str, Any],
              today: dt.date | None = None) -> tuple[Step, PhaseResult | None, str | None]:
    """The step the next sync makes; the phase it used (if any) and why there was none."""
    state = get_plan(store, device_id)
    today = today or step_day(store, device_id)
    result: PhaseResult | None = None
    why = None
    try:
        result = estimate(store, device_id)
    except PhaseError as e:
        why = str(e)
    step = plan_rules.next_step(device_cfg, state.settings, today,
                                last_step_day(store, device_id),
                                result.latest if result else None)
    return step, result, why


def apply_at_sync(client: Any, store: Store, device_id: str,
                  today: dt.date | None = None) -> Step | None:
    """Read the device's settings, make today's step and record it. A step the device refuses
    is logged with its reason; the device keeps its previous (valid) settings either way."""
    from nightstand.sync.client import DeviceError

    try:
        cfg = client.get_config()
    except DeviceError:
        return None  # an older firmware without settings over sync: nothing to plan with
    remember_config(store, device_id, cfg)
    if get_plan(store, device_id).set_unix_s is None:
        return None  # no plan chosen: the device keeps the timing it has
    today = today or step_day(store, device_id)
    try:
        step, _res, _why = next_step(store, device_id, cfg, today)
    except PlanError as e:
        with store.db:
            _log(store, device_id, int(time.time()), today, {}, str(e), "refused")
        return None
    if not step.changes:
        return step
    try:
        client.set_config(step.changes)
    except DeviceError as e:
        with store.db:
            _log(store, device_id, int(time.time()), today, step.changes,
                 f"device refused: {e}", "refused")
        return None
    cfg = {**cfg, **step.changes}
    remember_config(store, device_id, cfg)
    with store.db:
        _log(store, device_id, int(time.time()), today, step.changes, step.reason, "sent")
    return step



# ---- what `nightstand plan` and the demo print ------------------------------------------------

def overview(store: Store, device_id: str, today: dt.date | None = None) -> dict[str, Any]:
    """Phase, plan in force and the next step, as plain data (for --json and the text)."""
    state = get_plan(store, device_id)
    cfg = known_config(store, device_id)
    out: dict[str, Any] = {
        "device_id": device_id,
        "plan": {**asdict(state.settings), "chosen_unix_s": state.set_unix_s,
                 "text": describe_settings(state.settings)},
        "daylight": asdict(state.daylight),
        "device_config": ({k: cfg[k] for k in ("bedtime", "wake", "winddown_min", "dawn_min")
                           if k in cfg} if cfg else None),
        "phase": None, "phase_error": None, "next_step": None, "next_step_error": None,
        "log": log(store, device_id, limit=10),
    }
    try:
        res = estimate(store, device_id)
        out["phase"] = {"model": res.model, "nights": [asdict(n) for n in res.nights],
                        "skipped": res.skipped}
    except PhaseError as e:
        res = None
        out["phase_error"] = str(e)
    if cfg is not None:
        try:
            step = plan_rules.next_step(cfg, state.settings, today or step_day(store, device_id),
                                        last_step_day(store, device_id),
                                        res.latest if res else None)
            out["next_step"] = {**asdict(step), "day": step.day.isoformat()}
        except PlanError as e:
            out["next_step_error"] = str(e)
    return out


def overview_text(o: dict[str, Any]) -> str:
    lines = []
    ph = o["phase"]
    dl = o["daylight"]
    if ph and ph["nights"]:
        n = ph["nights"][-1]
        off = n["utc_offset_s"]
        t = lambda u: phase_model.hhmm(u, off)  # noqa: E731
        lines.append(f"Circadian phase ({ph['model']}, {len(ph['nights'])} night(s); daytime "
                     f"light assumed {dl['typical_lux']:.0f} lx, band {dl['low_lux']:.0f}-"
                     f"{dl['high_lux']:.0f} lx):")
        lines.append(f"  last night: sleep {t(n['onset_unix_s'])}-{t(n['offset_unix_s'])} "
                     f"({n['timing_source']})")
        lo, hi = n["dlmo_band_unix_s"]
        clo, chi = n["cbtmin_band_unix_s"]
        lines.append(f"  predicted DLMO {t(n['dlmo_unix_s'])} ({t(lo)}-{t(hi)}), "
                     f"core-temperature minimum {t(n['cbtmin_unix_s'])} ({t(clo)}-{t(chi)})")
        angle = (n["onset_unix_s"] - n["dlmo_unix_s"]) / 3600
        lines.append(f"  sleep onset is {angle:.1f} h after DLMO (regular sleepers: about 2 h)")
        doses = []
        if n["evening_mel_lx_h"] is not None:
            doses.append(f"evening {n['evening_mel_lx_h']:.1f} lx*h in the 3 h before sleep")
        if n["morning_mel_lx_h"] is not None:
            doses.append(f"morning {n['morning_mel_lx_h']:.1f} lx*h after waking")
        if doses:
            lines.append("  melanopic dose at the bedside: " + ", ".join(doses))
    else:
        lines.append(f"Circadian phase: unknown ({o['phase_error']})")
    chosen = o["plan"]["chosen_unix_s"]
    when = (dt.datetime.fromtimestamp(chosen).strftime(" (chosen %Y-%m-%d)") if chosen
            else " (default)")
    lines.append(f"Plan in force: {o['plan']['text']}{when}")
    cfg = o["device_config"]
    if cfg:
        wd, dawn = plan_rules._geometry({**devconfig.defaults(), **cfg},
                                        devconfig.hhmm_to_min(cfg["bedtime"]),
                                        devconfig.hhmm_to_min(cfg["wake"]))
        lines.append(f"  device (at the last sync): bedtime {cfg['bedtime']} (wind-down from "
                     f"{wd}), wake {cfg['wake']} (dawn from {dawn})")
    else:
        lines.append("  device settings unknown until the next sync")
    st = o["next_step"]
    if st and st["changes"]:
        lines.append(f"  next sync: {st['reason']} -> bedtime {st['bedtime']} (wind-down from "
                     f"{st['winddown_start']}), wake {st['wake']} (dawn from {st['dawn_start']})")
    elif st:
        lines.append(f"  next sync changes nothing: {st['reason']}")
    elif o["next_step_error"]:
        lines.append(f"  next sync changes nothing: {o['next_step_error']}")
    recent = [e for e in o["log"] if e["status"] != "chosen" or e is o["log"][-1]]
    for e in recent[-5:]:
        ch = ", ".join(f"{k} {v}" for k, v in e["changes"].items()) or "-"
        lines.append(f"  {e['date']} {e['status']:<7} {ch}: {e['reason']}")
    return "\n".join(lines)
