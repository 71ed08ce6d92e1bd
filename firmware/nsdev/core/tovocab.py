# What the application records, in the night format's vocabulary (core/vocab.py): the epoch's
# quality flags from the PPG pipeline's bits and the device's state, and the light schedule's
# reports as events. Pure.
from nsdev.core import vocab
from nsdev.core.ppgdefs import MOTION, NO_CONTACT, OVERFLOW, SATURATED

# PPG pipeline epoch bits -> epoch flags
_PPG_FLAGS = (
    (NO_CONTACT, vocab.FLAG_CONTACT_OFF),
    (OVERFLOW, vocab.FLAG_FIFO_OVERFLOW),
    (MOTION, vocab.FLAG_MOTION),
    (SATURATED, vocab.FLAG_PPG_CLIPPED),
)


def epoch_flags(ppg_flags, health_flags, clock_valid, wind_down, lamp_on):
    """The EPOCH record's flags: health_flags (the subsystems' bits, health.flags) plus what the
    PPG pipeline saw, an unset clock, a running wind-down session and the lamp being on."""
    flags = health_flags
    for bit, flag in _PPG_FLAGS:
        if ppg_flags & bit:
            flags |= flag
    if not clock_valid:
        flags |= vocab.FLAG_CLOCK_UNSET
    if wind_down:
        flags |= vocab.FLAG_WIND_DOWN
    if lamp_on:
        flags |= vocab.FLAG_LAMP_ON
    return flags


def light_event(kind, info, breath_per_min=6.0):
    """A light-schedule report (core/light.LightController.update) -> (event kind, values, text)
    for the night file. breath_per_min: the configured pace a session slows the breathing to."""
    if kind == "room_light_over_limit":
        return vocab.EV_LIGHT_LIMIT, (int(info["room_mel_lx"] * 100),
                                      int(info["limit_mel_lx"] * 100)), info["phase"]
    if kind == "breathing_start":
        return vocab.EV_WIND_DOWN, (1, 0), "breathing %.0f->%.0f/min" % (
            info.get("pace_start", 6.0), breath_per_min)
    if kind == "breathing_end":
        # the session's response: HR (bpm) and HRV (RMSSD, ms) at its start and end
        text = info["reason"]
        for name, a, b in (("hr", info["hr_start_bpm"], info["hr_end_bpm"]),
                           ("rmssd", info["rmssd_start_ms"], info["rmssd_end_ms"])):
            if a is not None and b is not None:
                text = "%s %s %d->%d" % (text, name, int(a + 0.5), int(b + 0.5))
        return vocab.EV_WIND_DOWN, (0, int(info["duration_s"])), text
    if kind == "phase":
        return vocab.EV_LAMP_PHASE, (vocab.PHASE_NAMES.index(info["phase"]),
                                     vocab.PHASE_NAMES.index(info["from"])), None
    if kind == "evening_dose":
        return vocab.EV_LAMP_CHANGE, (), "dose mel %.2f lx.h (room %.2f)" % (
            info["total_mel_lx_h"], info["room_mel_lx_h"])
    if kind == "night_light":
        return vocab.EV_LAMP_CHANGE, (), "night light %s" % ("on" if info["on"] else "off")
    return vocab.EV_LAMP_CHANGE, (), kind[:vocab.MAX_EVENT_TEXT]


def presleep_event(summary):
    """The pre-sleep summary (core/onset.SleepOnset.summary) -> (EV_PRESLEEP, values, None)."""
    names = vocab.EVENT_KINDS[vocab.EV_PRESLEEP][1]
    scales = vocab.EVENT_SCALES[vocab.EV_PRESLEEP]
    values = []
    for i in range(len(names)):
        v = summary.get(names[i])
        if v is None:
            values.append(vocab.EV_UNKNOWN)
        else:
            v = v * scales[i]
            values.append(int(v + 0.5) if v >= 0 else -int(0.5 - v))
    return vocab.EV_PRESLEEP, values, None
