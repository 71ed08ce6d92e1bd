# Pure lamp schedule for melatonin timing: wind-down, dark night, night light, dawn, manual
# override, melanopic model and dose, breathing-paced biofeedback. A function of local time,
# configuration and small state; no hardware. Sources: docs/light-and-melatonin.md.
#
# Thresholds: Brown et al. 2022 (PLoS Biol 20:e3001571): melanopic EDI at the eye <= 10 lx from
# 3 h before bedtime, <= 1 lx during sleep. Melanopic DER (mEDI per photopic lux, CIE S 026):
# 2200 K ~0.34, 2700 K ~0.45, amber 590 nm ~0.02, red 630 nm ~0.002 (BRIEF). Breathing pace
# 6/min = 0.1 Hz, sessions ~15 min (Steffen 2017; Shaffer & Meehan 2020).
import math

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

MIN_VALID_UNIX_S = 1704067200  # 2024-01-01T00:00Z: earlier is an RTC that was never set
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
        # update()'s inputs and the values its steps hand on (see update)
        self._in_utc_offset_s = None
        self._in_room_lux = None
        self._in_pressed = False
        self._in_arousal = None
        self._in_hr = None
        self._in_rmssd = None
        self._step_s = 1
        self._d = 0
        self._w = 0.0
        self._a = 0.0

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

    def _cap_at(self, d):
        ph = self.phase_at(d % _DAY_S)
        if ph == PHASE_DAY:
            return self._pre_dim_cap(d)
        return self.mel_cap_lx(ph)

    def _pre_dim_cap(self, d):
        # In the day, the last pre_dim_s before the wind-down lower the cap toward the evening's.
        cfg = self.cfg
        to_wd = _DAY_S - int(cfg["winddown_s"]) - d
        pre = int(cfg["pre_dim_s"])
        if 0 <= to_wd < pre:
            full = self._w_mel + self._a_mel
            ev = float(cfg["evening_cap_mel_lx"])
            if full > ev:  # geometric interpolation: smooth in perceived brightness
                return ev * (full / ev) ** (to_wd / pre)
        return None

    # --- the state machine -------------------------------------------------------------------
    def update(self, now_unix_s, utc_offset_s, room_lux=None, pressed=False, hyperarousal=None,
               hr_bpm=None, rmssd_ms=None):
        """Advance to now. Returns (warm_y, amber_y, events): linear channel targets 0..1 and a
        list of (kind, dict) events for the app to record (often empty)."""
        # Called every second, so every method on its path keeps its frame within MicroPython's
        # VM_MAX_STATE_ON_STACK, 11 words (py/objfun.c): a larger bytecode frame is allocated on
        # the heap at every call on the ESP32 (docs/twin-and-image.md, "Frames on the stack").
        # Eight arguments leave three words, so the inputs wait on self (_in_*) and the work is
        # split into small steps that hand their results on through self (_step_s, _d, _w, _a).
        self._in_utc_offset_s = utc_offset_s
        self._in_room_lux = room_lux
        self._in_pressed = pressed
        self._in_arousal = hyperarousal
        self._in_hr = hr_bpm
        self._in_rmssd = rmssd_ms
        return self._advance(now_unix_s)

    def _advance(self, now_unix_s):
        events = []
        valid = (now_unix_s is not None and self._in_utc_offset_s is not None
                 and int(now_unix_s) >= MIN_VALID_UNIX_S)
        if now_unix_s is not None:
            now_unix_s = int(now_unix_s)
        self._tick(now_unix_s, events)
        phase = self._phase_now(now_unix_s, valid)
        if phase != self.phase:
            self._phase_change(phase, now_unix_s, events)
        if self._in_pressed:
            self._press(phase, self._mono, events)
        self._scheduled(phase, events)
        self._apply_cap(valid)
        self._soft_start()
        self._room(phase, events)
        self.warm = _clamp01(self._w)
        self.amber = _clamp01(self._a)
        return self.warm, self.amber, events

    def _tick(self, now_unix_s, events):
        # monotonic seconds: clock jumps (RTC set by the host, DST is not a jump) move it by 1 s
        step = 1
        if now_unix_s is not None and self._last_unix is not None:
            step = now_unix_s - self._last_unix
            if step < 0 or step > _CLOCK_JUMP_S:
                self._clock_jump(now_unix_s, events)
                step = 1
        self._last_unix = now_unix_s
        self._mono += step
        self._step_s = step

    def _clock_jump(self, now_unix_s, events):
        events.append(("clock_jump", {"from_unix_s": self._last_unix,
                                      "to_unix_s": now_unix_s}))
        self._end_session(events, "clock_jump", None)
        self._room_over_since = -1

    def _phase_now(self, now_unix_s, valid):
        # -> the phase; self._d = seconds since the most recent bedtime (0 without a clock)
        if not valid:
            self._d = 0
            return PHASE_NO_CLOCK
        self._d = self._since_bed(now_unix_s, self._in_utc_offset_s)
        return self.phase_at(self._d)

    def _since_bed(self, now_unix_s, utc_offset_s):
        # Seconds since the most recent bedtime (0..86399) of a valid clock. Counted from
        # MIN_VALID_UNIX_S, a whole number of days, so that the sum stays a small int on the
        # ESP32 (31 bits: until 2058) and the modulo makes no long-int temporaries on the heap.
        return (now_unix_s - MIN_VALID_UNIX_S + int(utc_offset_s) - self.bed_s) % _DAY_S

    def _cap_now(self, valid):
        # the melanopic cap, looking a few seconds ahead so a fade never lags past a limit
        if not valid:
            return self.mel_cap_lx(PHASE_NO_CLOCK)
        cap = self._cap_at(self._d)
        ahead = self._cap_at(self._d + int(self.cfg["cap_lookahead_s"]))
        if cap is None or (ahead is not None and ahead < cap):
            cap = ahead
        return cap

    def _apply_cap(self, valid):
        cap = self._cap_now(valid)
        if cap is None:
            return
        capm = cap * float(self.cfg["cap_margin"])
        mel = self.lamp_mel_edi_lx(self._w, self._a)
        if mel > capm:
            k = capm / mel
            self._w *= k
            self._a *= k

    def _soft_start(self):
        # soft start after power-on
        boot = int(self.cfg["boot_fade_s"])
        if self._mono < boot:
            k = self._mono / boot
            self._w = scale_lightness(self._w, k)
            self._a = scale_lightness(self._a, k)

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

    def _night_light(self, mono):
        if self._nl_start < 0:
            return 0.0
        full = min(1.0, float(self.cfg["night_light_lux"])
                   / float(self.cfg["amber_full_lux_at_eye"]))
        if self._nl_cut >= 0:
            t, fade = mono - self._nl_cut, 3
        else:
            t = mono - self._nl_start - int(self.cfg["night_light_s"])
            fade = int(self.cfg["night_light_fade_s"])
        if t <= 0:
            return full
        if t >= fade:
            self._nl_start = -1
            self._nl_cut = -1
            return 0.0
        return scale_lightness(full, 1.0 - t / fade)

    def _scheduled(self, phase, events):
        # self._w, self._a = the channels' linear levels by the schedule (before the cap)
        ov = self._override
        self._w = 0.0
        self._a = 0.0
        if phase == PHASE_NIGHT or phase == PHASE_NO_CLOCK:
            self._a = self._night_light(self._mono)
        elif phase == PHASE_DAY:
            if ov is not None and ov[1]:
                self._w = _clamp01(float(self.cfg["day_lux"])
                                   / float(self.cfg["warm_full_lux_at_eye"]))
        elif phase == PHASE_DAWN or phase == PHASE_MORNING:
            if not ((ov is not None and not ov[1]) or int(self.cfg["dawn_s"]) == 0):
                self._w = self._dawn(phase)
        elif ov is not None and not ov[1]:  # wind-down, switched off by the button
            self._end_session(events, "button", None)
        else:
            self._wind_down(events)

    def _dawn(self, phase):
        # the dawn's rise (linear in L*: perceptually even) and the morning's hold and fade
        cfg = self.cfg
        peak = _clamp01(float(cfg["dawn_peak_lux"]) / float(cfg["warm_full_lux_at_eye"]))
        if phase == PHASE_DAWN:
            return scale_lightness(peak, self._dawn_progress())
        left = self.night_s + int(cfg["morning_hold_s"]) - self._d
        fade = int(cfg["morning_fade_s"])
        if left < fade:
            return scale_lightness(peak, left / fade)
        return peak

    def _dawn_progress(self):
        dawn_s = int(self.cfg["dawn_s"])
        p = (self._d - (self.night_s - dawn_s - self.dawn_advance_s)) / dawn_s
        return 1.0 if p > 1.0 else p  # an early (smart) dawn holds its peak until wake

    def _wind_down(self, events):
        wd = int(self.cfg["winddown_s"])
        t = self._d - (_DAY_S - wd)  # seconds into wind-down
        self._wind_down_levels(t / wd)
        self._wind_down_cap()
        left = wd - t
        k = self._end_fade(left) * self._breathing(left, events)
        self._w = scale_lightness(self._w, k)
        self._a = scale_lightness(self._a, k)

    def _end_fade(self, left_s):
        # the last winddown_fade_s of the wind-down fade out, linearly
        fade = int(self.cfg["winddown_fade_s"])
        return left_s / fade if left_s < fade else 1.0

    def _wind_down_lux(self, p):
        lux0 = float(self.cfg["winddown_start_lux"])
        # exponential dimming: even steps in log luminance
        return lux0 * (float(self.cfg["winddown_end_lux"]) / lux0) ** p

    def _wind_down_levels(self, p):
        # self._w, self._a at fraction p of the wind-down: dimming while the amber share grows
        lux = self._wind_down_lux(p)
        share = self._amber_share(p)
        a_full = float(self.cfg["amber_full_lux_at_eye"])
        amber_lux = share * lux
        if amber_lux > a_full:
            amber_lux = a_full
        self._w = _clamp01((1.0 - share) * lux / float(self.cfg["warm_full_lux_at_eye"]))
        self._a = _clamp01(amber_lux / a_full)

    def _amber_share(self, p):
        a0 = float(self.cfg["winddown_amber_start"])
        return a0 + (1.0 - a0) * p

    def _wind_down_cap(self):
        # the evening cap here too, so that the breathing swing stays under the same ceiling
        capm = float(self.cfg["evening_cap_mel_lx"]) * float(self.cfg["cap_margin"])
        mel = self.lamp_mel_edi_lx(self._w, self._a)
        if mel > capm:
            self._w *= capm / mel
            self._a *= capm / mel

    # --- breathing-paced wind-down -----------------------------------------------------------
    def _breathing(self, left_s, events):
        # -> the factor on the wind-down's L* (1.0: no session)
        s = self._session
        if s is None:
            if not self._session_due(left_s):
                return 1.0
            s = self._start_session(events)
        self._session_inputs(s)
        reason = self._session_end_reason(s, left_s)
        if reason is not None:
            self._end_session(events, reason, self._mono)
            return 1.0
        return self._pace(s)

    def _session_due(self, left_s):
        cfg = self.cfg
        arousal = self._in_arousal
        return (arousal is not None and arousal >= float(cfg["arousal_on"])
                and left_s > int(cfg["winddown_fade_s"]) + int(cfg["session_min_s"])
                and self._mono - self._last_session_end >= int(cfg["session_cooldown_s"]))

    def _start_session(self, events):
        r0 = self._start_pace()
        hr_bpm = self._in_hr
        s = self._session = {"t0": self._mono, "hr0": hr_bpm, "rmssd0": self._in_rmssd,
                             "r0": r0, "arousal0": self._in_arousal, "hr": hr_bpm,
                             "rmssd": self._in_rmssd, "arousal": self._in_arousal,
                             "hr_min": hr_bpm}
        events.append(("breathing_start", {"unix_s": self._last_unix,
                                           "arousal": self._in_arousal, "hr_bpm": hr_bpm,
                                           "rmssd_ms": self._in_rmssd, "pace_start": r0}))
        return s

    def _start_pace(self):
        # the pace starts at the wearer's own breathing rate (bounded), else at the target
        target = float(self.cfg["breath_per_min"])
        r0 = self.resp_per_min
        return target if r0 is None else min(max(float(r0), target),
                                             float(self.cfg["breath_start_max"]))

    def _session_inputs(self, s):
        hr_bpm = self._in_hr
        if hr_bpm is not None:
            s["hr"] = hr_bpm if s["hr"] is None else s["hr"] + (hr_bpm - s["hr"]) * 0.1
            if s["hr0"] is None:
                s["hr0"] = hr_bpm
        rmssd_ms = self._in_rmssd
        if rmssd_ms is not None:
            s["rmssd"] = (rmssd_ms if s["rmssd"] is None
                          else s["rmssd"] + (rmssd_ms - s["rmssd"]) * 0.1)
            if s["rmssd0"] is None:
                s["rmssd0"] = rmssd_ms
        if self._in_arousal is not None:
            s["arousal"] = self._in_arousal

    def _session_end_reason(self, s, left_s):
        cfg = self.cfg
        el = self._mono - s["t0"]
        if el >= int(cfg["session_max_s"]):
            return "max_duration"
        if left_s <= int(cfg["winddown_fade_s"]):
            return "bedtime"
        if el >= int(cfg["session_min_s"]):
            arousal = self._in_arousal
            if arousal is not None and arousal <= float(cfg["arousal_off"]):
                return "settled"
            if (s["hr"] is not None and s["hr0"] is not None
                    and s["hr"] <= s["hr0"] - float(cfg["hr_drop_bpm"])):
                return "settled"
        return None

    def _pace(self, s):
        # L* swings from the wind-down level down by breath_depth and back, at the breath rate
        el = self._mono - s["t0"]
        n = breaths_paced(s["r0"], float(self.cfg["breath_per_min"]),
                          int(self.cfg["breath_ramp_s"]), el)
        phase = 2.0 * math.pi * n
        return 1.0 - float(self.cfg["breath_depth"]) * (1.0 - math.cos(phase)) * 0.5

    def _end_session(self, events, reason, mono):
        if self._session is not None:  # (a small frame: called every second in some states)
            self._close_session(events, reason, self._mono if mono is None else mono)

    def _close_session(self, events, reason, mono):
        events.append(("breathing_end", self._session_summary(reason, mono)))
        self._session = None
        self._last_session_end = mono

    def _session_summary(self, reason, mono):
        s = self._session
        return {
            "unix_s": self._last_unix, "reason": reason, "duration_s": mono - s["t0"],
            "hr_start_bpm": s["hr0"], "hr_end_bpm": s["hr"],
            "rmssd_start_ms": s["rmssd0"], "rmssd_end_ms": s["rmssd"],
            "arousal_start": s["arousal0"], "arousal_end": s["arousal"],
        }

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
        d = self._since_bed(int(now_unix_s), utc_offset_s)
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
    def _room(self, phase, events):
        # the lamp's share uses the previous targets: the driver reaches them within ~1 s
        room_lux = self._in_room_lux
        room_mel = None
        if room_lux is not None:
            room_mel = self.room_mel_edi_lx(float(room_lux), self.warm, self.amber)
        self.last_room_mel_lx = room_mel
        if phase == PHASE_WIND_DOWN:
            self._dose_lamp += self.lamp_mel_edi_lx(self.warm, self.amber) * self._step_s
            if room_mel is not None:
                self._dose_room += room_mel * self._step_s
        self._room_limit(phase, events)

    def _room_limit(self, phase, events):
        room_mel = self.last_room_mel_lx
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
                self._room_event(phase, limit, events)
        else:
            self._room_over_since = -1
            self._room_reported = False

    def _room_event(self, phase, limit, events):
        events.append(("room_light_over_limit", {
            "unix_s": self._last_unix, "phase": PHASE_NAMES[phase],
            "room_mel_lx": self.last_room_mel_lx, "limit_mel_lx": limit,
            "room_der": float(self.cfg["room_der"]),
        }))
