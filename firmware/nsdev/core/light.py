# Pure lamp schedule for melatonin timing: wind-down, dark night, night light, dawn, manual
# override, melanopic model and dose, breathing-paced biofeedback. A function of local time,
# configuration and small state; no hardware. Sources: docs/light-and-melatonin.md.
#
# Thresholds: Brown et al. 2022 (PLoS Biol 20:e3001571): melanopic EDI at the eye <= 10 lx from
# 3 h before bedtime, <= 1 lx during sleep. Melanopic DER (mEDI per photopic lux, CIE S 026):
# 2200 K ~0.34, 2700 K ~0.45, amber 590 nm ~0.02, red 630 nm ~0.002 (BRIEF). Breathing pace
# 6/min = 0.1 Hz, sessions ~15 min (Steffen 2017; Shaffer & Meehan 2020).
import math

import micropython

from nsdev.core.smartdawn import SmartDawn
from nsdev.core.vocab import (  # the phases are part of the night format's vocabulary
    PHASE_DAWN,
    PHASE_DAY,
    PHASE_MORNING,
    PHASE_NAMES,
    PHASE_NIGHT,
    PHASE_NO_CLOCK,
    PHASE_WIND_DOWN,
)

_GROUP = (0, 1, 2, 3, 4, 4)  # override lasts while the phase group is unchanged (dawn+morning)

MIN_VALID_UNIX_S = 1704067200  # 2024-01-01: anything earlier is an RTC that was never set
_DAY_S = 86400
_CLOCK_JUMP_S = 300

DEFAULTS = {
    "bedtime": "23:00",  # local HH:MM
    "wake": "07:00",  # local HH:MM; the dawn ramp ends exactly here
    "winddown_s": 10800,  # 3 h before bedtime (Brown 2022)
    "winddown_fade_s": 600,  # the last 10 min of wind-down fade the lamp to off at bedtime
    "pre_dim_s": 900,  # a manual daytime light is dimmed to the evening cap over 15 min
    "dawn_s": 1800,  # dawn ramp length (30 min)
    "smart_wake_s": 0,  # smart dawn: wake window before the fixed dawn (0 = off; smartdawn.py)
    "morning_hold_s": 1800,  # dawn peak held after wake, then faded out
    "morning_fade_s": 120,
    # lamp photometry at the eye / at the ambient sensor at full output (hardware/lamp.md)
    "warm_full_lux_at_eye": 130.0,
    "amber_full_lux_at_eye": 80.0,
    "warm_full_lux_at_sensor": 6.5,
    "amber_full_lux_at_sensor": 4.0,
    "warm_der": 0.34,  # 2200 K white
    "amber_der": 0.02,  # 590 nm amber
    # limits (melanopic EDI at the eye, lx) and the margin the lamp keeps below them
    "evening_cap_mel_lx": 10.0,
    "night_cap_mel_lx": 1.0,
    "cap_margin": 0.8,
    "cap_lookahead_s": 5,
    # levels (photopic lux at the eye)
    "winddown_start_lux": 40.0,
    "winddown_end_lux": 5.0,
    "winddown_amber_start": 0.2,  # amber share of photopic lux: shifts to 1.0 (warmest mix)
    "day_lux": 130.0,  # manual light in the day
    "dawn_peak_lux": 130.0,  # warm white at wake time
    "night_light_lux": 3.0,  # amber night light (3 lux * 0.02 = 0.06 lx mEDI)
    "night_light_s": 900,
    "night_light_fade_s": 60,
    "boot_fade_s": 30,  # after power-on the scheduled level is faded in, never switched on
    # ambient light -> melanopic EDI at the eye
    "room_der": 1.0,  # unknown room spectrum: D65 (DER 1.0) bounds common indoor sources
    "sensor_to_eye": 1.0,  # the sensor's horizontal-plane lux taken as the corneal lux
    "room_hold_s": 120,  # room light must exceed a limit this long to be reported
    # breathing-paced wind-down
    "arousal_on": 0.6,
    "arousal_off": 0.3,
    "breath_per_min": 6.0,  # the pace guided towards (resonance breathing: Steffen 2017)
    "breath_ramp_s": 300,  # from the person's own rate to breath_per_min over this time
    "breath_start_max": 20.0,  # a faster own rate starts the pace from here
    "breath_depth": 0.5,  # L* swings from the wind-down level down to half of it
    "session_max_s": 900,
    "session_min_s": 180,
    "session_cooldown_s": 1800,
    "hr_drop_bpm": 3.0,  # settled when HR is this far below the session's start
}


def config_from_device(dev):
    """Light config from the device config (nsdev.config schema keys), ignoring the rest."""
    out = {}
    for src, dst, scale in (("bedtime", "bedtime", None), ("wake", "wake", None),
                            ("winddown_min", "winddown_s", 60), ("dawn_min", "dawn_s", 60),
                            ("smart_wake_min", "smart_wake_s", 60),
                            ("dawn_peak_lux", "dawn_peak_lux", None),
                            ("night_light_s", "night_light_s", None),
                            ("hyperarousal_on", "arousal_on", None),
                            # the unit's lamp calibration (hardware/calibration.md)
                            ("warm_der", "warm_der", None), ("amber_der", "amber_der", None),
                            ("warm_full_lux_at_eye", "warm_full_lux_at_eye", None),
                            ("amber_full_lux_at_eye", "amber_full_lux_at_eye", None),
                            ("warm_full_lux_at_sensor", "warm_full_lux_at_sensor", None),
                            ("amber_full_lux_at_sensor", "amber_full_lux_at_sensor", None)):
        if src in dev:
            out[dst] = dev[src] * scale if scale else dev[src]
    return out


def parse_hhmm(text):
    """'HH:MM' -> seconds after local midnight."""
    if isinstance(text, int):
        s = text
    else:
        parts = str(text).split(":")
        if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError("time must be HH:MM, got %r" % (text,))
        h, m = int(parts[0]), int(parts[1])
        if h > 23 or m > 59:
            raise ValueError("time out of range: %r" % (text,))
        s = h * 3600 + m * 60
    if not 0 <= s < _DAY_S:
        raise ValueError("time of day out of range: %r" % (text,))
    return s


def lightness(y):
    """CIE 1976 L* (0..100) from relative luminance 0..1."""
    if y <= 0.008856:
        return 903.3 * y
    return 116.0 * y ** (1.0 / 3.0) - 16.0


def from_lightness(lstar):
    if lstar <= 8.0:
        return max(0.0, lstar) / 903.3
    f = (lstar + 16.0) / 116.0
    return f * f * f


def scale_lightness(y, k):
    """Scale a linear level by factor k (0..1) in perceptual (L*) terms."""
    if k >= 1.0:
        return y
    if k <= 0.0 or y <= 0.0:
        return 0.0
    return from_lightness(lightness(y) * k)


def _clamp01(x):
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


def breaths_paced(r0, target, ramp_s, el_s):
    """Breaths guided in the first el_s seconds of a session whose pace starts at r0 /min and
    moves linearly to target /min over ramp_s (the integral of the pace, so the light's phase
    never jumps)."""
    if ramp_s <= 0 or el_s >= ramp_s:
        done = 0.0 if ramp_s <= 0 else (r0 + target) * 0.5 * ramp_s
        return (done + target * (el_s - max(ramp_s, 0))) / 60.0
    return (r0 * el_s + (target - r0) * el_s * el_s / (2.0 * ramp_s)) / 60.0


class LightController:
    """The lamp's schedule as a small state machine; update() about once a second."""

    def __init__(self, config=None):
        cfg = dict(DEFAULTS)
        if config:
            for k in config:
                if k not in DEFAULTS:
                    raise ValueError("unknown light config key %r" % (k,))
                cfg[k] = config[k]
        self.cfg = cfg
        self.bed_s = parse_hhmm(cfg["bedtime"])
        self.wake_s = parse_hhmm(cfg["wake"])
        self.night_s = (self.wake_s - self.bed_s) % _DAY_S
        for k in ("winddown_s", "morning_hold_s", "night_light_s"):
            if int(cfg[k]) <= 0:
                raise ValueError("%s must be > 0" % k)
        if int(cfg["dawn_s"]) < 0:
            raise ValueError("dawn_s must be >= 0 (0: no dawn)")
        if int(cfg["smart_wake_s"]) < 0:
            raise ValueError("smart_wake_s must be >= 0 (0: off)")
        if self.night_s < int(cfg["dawn_s"]) + int(cfg["smart_wake_s"]) + 600:
            raise ValueError("night (bedtime to wake) must be longer than the dawn + the smart "
                             "wake window + 10 min")
        if self.night_s < int(cfg["dawn_s"]) + 600:
            raise ValueError("night (bedtime to wake) must be longer than the dawn + 10 min")
        if int(cfg["winddown_s"]) + self.night_s + int(cfg["morning_hold_s"]) > _DAY_S:
            raise ValueError("wind-down + night + morning hold exceed 24 h")
        if int(cfg["winddown_fade_s"]) >= int(cfg["winddown_s"]):
            raise ValueError("winddown_fade_s must be shorter than winddown_s")
        for k in ("warm_full_lux_at_eye", "amber_full_lux_at_eye"):
            if not float(cfg[k]) > 0.0:
                raise ValueError("%s must be > 0" % k)
        for k in ("warm_der", "amber_der", "room_der", "cap_margin"):
            if not 0.0 < float(cfg[k]) <= 1.5:
                raise ValueError("%s out of range" % k)
        self._w_mel = float(cfg["warm_full_lux_at_eye"]) * float(cfg["warm_der"])
        self._a_mel = float(cfg["amber_full_lux_at_eye"]) * float(cfg["amber_der"])
        self.phase = PHASE_NO_CLOCK
        self.warm = 0.0
        self.amber = 0.0
        self._mono = 0  # seconds this controller has run (timers: immune to clock jumps)
        self._last_unix = None
        self._override = None  # (group, on)
        self._nl_start = -1  # mono s when the night light started, -1 none
        self._nl_cut = -1  # mono s when a press cut the night light short
        self._session = None
        self.dawn_advance_s = 0  # smart dawn: this night's dawn starts this much earlier
        self._smart = None  # this night's SmartDawn (created in the night)
        self.resp_per_min = None  # the wearer's latest breathing rate (app sets it; None unknown)
        self._last_session_end = -(10 ** 9)
        self._dose_lamp = 0.0  # lx*s of the current wind-down
        self._dose_room = 0.0
        self._room_over_since = -1
        self._room_reported = False
        self._room_mel = None
        self.last_room_mel_lx = None

    # --- melanopic model ---------------------------------------------------------------------
    def lamp_mel_edi_lx(self, warm_y, amber_y):
        """Melanopic EDI (lx) the lamp gives at the eye at these linear channel levels."""
        return warm_y * self._w_mel + amber_y * self._a_mel

    def lamp_lux_at_sensor(self, warm_y, amber_y):
        cfg = self.cfg
        return (warm_y * float(cfg["warm_full_lux_at_sensor"])
                + amber_y * float(cfg["amber_full_lux_at_sensor"]))

    def room_mel_edi_lx(self, sensor_lux, warm_y, amber_y):
        """Room light alone at the eye (mEDI estimate): sensor minus the lamp, times DER."""
        room = sensor_lux - self.lamp_lux_at_sensor(warm_y, amber_y)
        if room < 0.0:
            room = 0.0
        return room * float(self.cfg["sensor_to_eye"]) * float(self.cfg["room_der"])

    # --- schedule geometry -------------------------------------------------------------------
    def phase_at(self, d):
        """Phase at d seconds after the most recent bedtime (0..86399)."""
        cfg = self.cfg
        if d < self.night_s - int(cfg["dawn_s"]) - self.dawn_advance_s:
            return PHASE_NIGHT
        if d < self.night_s:
            return PHASE_DAWN
        if d < self.night_s + int(cfg["morning_hold_s"]):
            return PHASE_MORNING
        if d < _DAY_S - int(cfg["winddown_s"]):
            return PHASE_DAY
        return PHASE_WIND_DOWN

    def mel_cap_lx(self, phase):
        """The limit the lamp must respect in this phase (lx mEDI), None if unlimited."""
        if phase == PHASE_WIND_DOWN:
            return float(self.cfg["evening_cap_mel_lx"])
        if phase == PHASE_NIGHT or phase == PHASE_NO_CLOCK:
            return float(self.cfg["night_cap_mel_lx"])
        return None

    @micropython.native  # every second: see update
    def _cap_at(self, d):
        cfg = self.cfg
        ph = self.phase_at(d % _DAY_S)
        cap = self.mel_cap_lx(ph)
        if ph == PHASE_DAY:
            to_wd = _DAY_S - int(cfg["winddown_s"]) - d
            pre = int(cfg["pre_dim_s"])
            if 0 <= to_wd < pre:
                full = self._w_mel + self._a_mel
                ev = float(cfg["evening_cap_mel_lx"])
                if full > ev:  # geometric interpolation: smooth in perceived brightness
                    cap = ev * (full / ev) ** (to_wd / pre)
        return cap

    # --- the state machine -------------------------------------------------------------------
    @micropython.native  # every second: see update
    def update(self, now_unix_s, utc_offset_s, room_lux=None, pressed=False, hyperarousal=None,
               hr_bpm=None, rmssd_ms=None):
        """Advance to now. Returns (warm_y, amber_y, events): linear channel targets 0..1 and a
        list of (kind, dict) events for the app to record (often empty)."""
        # Every second: MicroPython (no pystack, as ports/esp32) allocates a bytecode frame over
        # VM_MAX_STATE_ON_STACK, 11 words (py/objfun.c), on the heap at every call. This method
        # and the large ones it calls each second are @micropython.native, whose frames live on
        # the C stack (same operations, same results; docs/twin-and-image.md, "Frames on the
        # stack"). Splitting them into frames of <= 11 words took 27 more functions, ~0.8 KiB
        # of resident heap on the ESP32.
        cfg = self.cfg
        events = []
        # monotonic seconds: clock jumps (RTC set by the host, DST is not a jump) move it by 1 s
        valid = (now_unix_s is not None and utc_offset_s is not None
                 and int(now_unix_s) >= MIN_VALID_UNIX_S)
        if now_unix_s is not None:
            now_unix_s = int(now_unix_s)
        step = 1
        if now_unix_s is not None and self._last_unix is not None:
            step = now_unix_s - self._last_unix
            if step < 0 or step > _CLOCK_JUMP_S:
                events.append(("clock_jump", {"from_unix_s": self._last_unix,
                                              "to_unix_s": now_unix_s}))
                step = 1
                self._end_session(events, "clock_jump", None)
                self._room_over_since = -1
        self._last_unix = now_unix_s
        self._mono += step
        mono = self._mono

        if valid:
            # From MIN_VALID_UNIX_S, a whole number of days: the sum stays a small int on the
            # ESP32 (31 bits, until 2058), so the modulo makes no long-int temporaries.
            d = (now_unix_s - MIN_VALID_UNIX_S + int(utc_offset_s) - self.bed_s) % _DAY_S
            phase = self.phase_at(d)
        else:
            d = 0
            phase = PHASE_NO_CLOCK

        if phase != self.phase:
            self._phase_change(phase, now_unix_s, events)

        if pressed:
            self._press(phase, mono, events)

        warm, amber = self._scheduled(phase, d, mono, hyperarousal, hr_bpm, rmssd_ms, events)

        # the melanopic cap, looking a few seconds ahead so a fade never lags past a limit
        if valid:
            cap = self._cap_at(d)
            ahead = self._cap_at(d + int(cfg["cap_lookahead_s"]))
            if cap is None or (ahead is not None and ahead < cap):
                cap = ahead
        else:
            cap = self.mel_cap_lx(PHASE_NO_CLOCK)
        if cap is not None:
            capm = cap * float(cfg["cap_margin"])
            mel = self.lamp_mel_edi_lx(warm, amber)
            if mel > capm:
                k = capm / mel
                warm *= k
                amber *= k

        # soft start after power-on
        boot = int(cfg["boot_fade_s"])
        if mono < boot:
            k = mono / boot
            warm = scale_lightness(warm, k)
            amber = scale_lightness(amber, k)

        self._room(phase, room_lux, step, now_unix_s, events)
        self.warm = _clamp01(warm)
        self.amber = _clamp01(amber)
        return self.warm, self.amber, events

    def _phase_change(self, phase, now_unix_s, events):
        old = self.phase
        if old == PHASE_WIND_DOWN:
            self._end_session(events, "phase_end", None)
            events.append(("evening_dose", {
                "unix_s": now_unix_s,
                "lamp_mel_lx_h": self._dose_lamp / 3600.0,
                "room_mel_lx_h": self._dose_room / 3600.0,
                "total_mel_lx_h": (self._dose_lamp + self._dose_room) / 3600.0,
            }))
        if phase == PHASE_WIND_DOWN:
            self._dose_lamp = 0.0
            self._dose_room = 0.0
        if self._override is not None and self._override[0] != _GROUP[phase]:
            self._override = None
        if phase != PHASE_NIGHT and phase != PHASE_NO_CLOCK:
            self._nl_start = -1
        self._room_over_since = -1
        self._room_reported = False
        events.append(("phase", {"unix_s": now_unix_s, "phase": PHASE_NAMES[phase],
                                 "from": PHASE_NAMES[old]}))
        self.phase = phase

    def _press(self, phase, mono, events):
        if phase == PHASE_NIGHT or phase == PHASE_NO_CLOCK:
            if self._nl_active(mono):
                self._nl_cut = mono
                events.append(("night_light", {"on": False, "by": "button"}))
            else:
                self._nl_start = mono
                self._nl_cut = -1
                events.append(("night_light", {"on": True}))
            return
        on = self.warm > 0.0 or self.amber > 0.0
        self._override = (_GROUP[phase], not on)
        if on:
            self._end_session(events, "button", None)
        events.append(("override", {"phase": PHASE_NAMES[phase], "on": not on}))

    def _nl_active(self, mono):
        if self._nl_start < 0 or self._nl_cut >= 0:
            return False
        return mono - self._nl_start < int(self.cfg["night_light_s"])

    @micropython.native  # every second: see update
    def _night_light(self, mono):
        cfg = self.cfg
        if self._nl_start < 0:
            return 0.0
        full = min(1.0, float(cfg["night_light_lux"]) / float(cfg["amber_full_lux_at_eye"]))
        if self._nl_cut >= 0:
            t, fade = mono - self._nl_cut, 3
        else:
            t = mono - self._nl_start - int(cfg["night_light_s"])
            fade = int(cfg["night_light_fade_s"])
        if t <= 0:
            return full
        if t >= fade:
            self._nl_start = -1
            self._nl_cut = -1
            return 0.0
        return scale_lightness(full, 1.0 - t / fade)

    @micropython.native  # every second: see update
    def _scheduled(self, phase, d, mono, arousal, hr_bpm, rmssd_ms, events):
        cfg = self.cfg
        ov = self._override
        if phase == PHASE_NIGHT or phase == PHASE_NO_CLOCK:
            return 0.0, self._night_light(mono)
        if phase == PHASE_DAY:
            if ov is not None and ov[1]:
                return _clamp01(float(cfg["day_lux"]) / float(cfg["warm_full_lux_at_eye"])), 0.0
            return 0.0, 0.0
        if phase == PHASE_DAWN or phase == PHASE_MORNING:
            if (ov is not None and not ov[1]) or int(cfg["dawn_s"]) == 0:
                return 0.0, 0.0
            peak = _clamp01(float(cfg["dawn_peak_lux"]) / float(cfg["warm_full_lux_at_eye"]))
            if phase == PHASE_DAWN:
                dawn_s = int(cfg["dawn_s"])
                p = (d - (self.night_s - dawn_s - self.dawn_advance_s)) / dawn_s
                if p > 1.0:
                    p = 1.0  # an early (smart) dawn holds its peak until wake
                return scale_lightness(peak, p), 0.0  # linear in L*: perceptually even
            left = self.night_s + int(cfg["morning_hold_s"]) - d
            fade = int(cfg["morning_fade_s"])
            if left < fade:
                return scale_lightness(peak, left / fade), 0.0
            return peak, 0.0
        # wind-down
        if ov is not None and not ov[1]:
            self._end_session(events, "button", None)
            return 0.0, 0.0
        wd = int(cfg["winddown_s"])
        t = d - (_DAY_S - wd)  # seconds into wind-down
        p = t / wd
        lux0 = float(cfg["winddown_start_lux"])
        lux1 = float(cfg["winddown_end_lux"])
        lux = lux0 * (lux1 / lux0) ** p  # exponential dimming: even steps in log luminance
        a0 = float(cfg["winddown_amber_start"])
        share = a0 + (1.0 - a0) * p
        warm_lux = (1.0 - share) * lux
        amber_lux = share * lux
        a_full = float(cfg["amber_full_lux_at_eye"])
        if amber_lux > a_full:
            amber_lux = a_full
        warm = _clamp01(warm_lux / float(cfg["warm_full_lux_at_eye"]))
        amber = _clamp01(amber_lux / a_full)
        # cap here too, so the breathing swing stays under the same ceiling
        capm = float(cfg["evening_cap_mel_lx"]) * float(cfg["cap_margin"])
        mel = self.lamp_mel_edi_lx(warm, amber)
        if mel > capm:
            warm *= capm / mel
            amber *= capm / mel
        left = wd - t
        fade = int(cfg["winddown_fade_s"])
        k = 1.0
        if left < fade:
            k = left / fade
        k *= self._breathing(mono, left, arousal, hr_bpm, rmssd_ms, events)
        return scale_lightness(warm, k), scale_lightness(amber, k)

    # --- breathing-paced wind-down -----------------------------------------------------------
    @micropython.native  # every second: see update
    def _breathing(self, mono, left_s, arousal, hr_bpm, rmssd_ms, events):
        cfg = self.cfg
        s = self._session
        if s is None:
            if (arousal is not None and arousal >= float(cfg["arousal_on"])
                    and left_s > int(cfg["winddown_fade_s"]) + int(cfg["session_min_s"])
                    and mono - self._last_session_end >= int(cfg["session_cooldown_s"])):
                target = float(cfg["breath_per_min"])
                r0 = self.resp_per_min
                r0 = target if r0 is None else min(max(float(r0), target),
                                                   float(cfg["breath_start_max"]))
                s = self._session = {"t0": mono, "hr0": hr_bpm, "rmssd0": rmssd_ms, "r0": r0,
                                     "arousal0": arousal, "hr": hr_bpm, "rmssd": rmssd_ms,
                                     "arousal": arousal, "hr_min": hr_bpm}
                events.append(("breathing_start", {"unix_s": self._last_unix,
                                                   "arousal": arousal, "hr_bpm": hr_bpm,
                                                   "rmssd_ms": rmssd_ms, "pace_start": r0}))
            else:
                return 1.0
        el = mono - s["t0"]
        if hr_bpm is not None:
            s["hr"] = hr_bpm if s["hr"] is None else s["hr"] + (hr_bpm - s["hr"]) * 0.1
            if s["hr0"] is None:
                s["hr0"] = hr_bpm
        if rmssd_ms is not None:
            s["rmssd"] = (rmssd_ms if s["rmssd"] is None
                          else s["rmssd"] + (rmssd_ms - s["rmssd"]) * 0.1)
            if s["rmssd0"] is None:
                s["rmssd0"] = rmssd_ms
        if arousal is not None:
            s["arousal"] = arousal
        reason = None
        if el >= int(cfg["session_max_s"]):
            reason = "max_duration"
        elif left_s <= int(cfg["winddown_fade_s"]):
            reason = "bedtime"
        elif el >= int(cfg["session_min_s"]):
            if arousal is not None and arousal <= float(cfg["arousal_off"]):
                reason = "settled"
            elif (s["hr"] is not None and s["hr0"] is not None
                  and s["hr"] <= s["hr0"] - float(cfg["hr_drop_bpm"])):
                reason = "settled"
        if reason is not None:
            self._end_session(events, reason, mono)
            return 1.0
        # L* swings from the wind-down level down by breath_depth and back, at the breath rate
        phase = 2.0 * math.pi * breaths_paced(s["r0"], float(cfg["breath_per_min"]),
                                              int(cfg["breath_ramp_s"]), el)
        return 1.0 - float(cfg["breath_depth"]) * (1.0 - math.cos(phase)) * 0.5

    @micropython.native  # every second: see update
    def _end_session(self, events, reason, mono):
        s = self._session
        if s is None:
            return
        if mono is None:
            mono = self._mono
        self._session = None
        self._last_session_end = mono
        events.append(("breathing_end", {
            "unix_s": self._last_unix, "reason": reason, "duration_s": mono - s["t0"],
            "hr_start_bpm": s["hr0"], "hr_end_bpm": s["hr"],
            "rmssd_start_ms": s["rmssd0"], "rmssd_end_ms": s["rmssd"],
            "arousal_start": s["arousal0"], "arousal_end": s["arousal"],
        }))

    # --- smart dawn ----------------------------------------------------------------------------
    def smart_dawn_epoch(self, now_unix_s, utc_offset_s, hr_bpm=None, arousal_score=None,
                         flags=0):
        """Feed one closed epoch (now_unix_s: its end) to this night's smart dawn. Returns None,
        or (reason, advance_s) once a night when the dawn's start is decided: reason "motion",
        "arousal" or "hr" (a light-sleep sign in the window: the dawn starts now, advance_s
        early) or "latest" (no sign: the fixed dawn, advance 0). Off when smart_wake_s is 0."""
        cfg = self.cfg
        window = int(cfg["smart_wake_s"])
        dawn = int(cfg["dawn_s"])
        if (window <= 0 or dawn <= 0 or now_unix_s is None or utc_offset_s is None
                or int(now_unix_s) < MIN_VALID_UNIX_S):
            return None
        d = (int(now_unix_s) - MIN_VALID_UNIX_S + int(utc_offset_s) - self.bed_s) % _DAY_S
        if d >= self.night_s:  # after wake (day, wind-down): the next night starts afresh
            self._smart = None
            self.dawn_advance_s = 0
            return None
        if self._smart is None:
            self._smart = SmartDawn(self.night_s, dawn, window)
            self.dawn_advance_s = 0
        sd = self._smart
        if not sd.update(d, hr_bpm, arousal_score, flags):
            return None
        adv = self.night_s - dawn - d
        self.dawn_advance_s = adv if sd.reason != "latest" and adv > 0 else 0
        return sd.reason, self.dawn_advance_s

    def session_active(self):
        return self._session is not None

    # --- ambient light: dose and limit events ------------------------------------------------
    @micropython.native  # every second: see update
    def _room(self, phase, room_lux, step, now_unix_s, events):
        # the lamp's share uses the previous targets: the driver reaches them within ~1 s
        lamp_mel = self.lamp_mel_edi_lx(self.warm, self.amber)
        room_mel = None
        if room_lux is not None:
            room_mel = self.room_mel_edi_lx(float(room_lux), self.warm, self.amber)
        self.last_room_mel_lx = room_mel
        if phase == PHASE_WIND_DOWN:
            self._dose_lamp += lamp_mel * step
            if room_mel is not None:
                self._dose_room += room_mel * step
        limit = None
        if phase == PHASE_WIND_DOWN:
            limit = float(self.cfg["evening_cap_mel_lx"])
        elif phase == PHASE_NIGHT:
            limit = float(self.cfg["night_cap_mel_lx"])
        if limit is None or room_mel is None:
            self._room_over_since = -1
            return
        if room_mel > limit:
            if self._room_over_since < 0:
                self._room_over_since = self._mono
            elif (not self._room_reported
                  and self._mono - self._room_over_since >= int(self.cfg["room_hold_s"])):
                self._room_reported = True
                events.append(("room_light_over_limit", {
                    "unix_s": now_unix_s, "phase": PHASE_NAMES[phase],
                    "room_mel_lx": room_mel, "limit_mel_lx": limit,
                    "room_der": float(self.cfg["room_der"]),
                }))
        else:
            self._room_over_since = -1
            self._room_reported = False
