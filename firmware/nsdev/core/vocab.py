# Shared vocabulary of the night format: record types, field names, units, scales, flags, events.
# Pure (no I/O); the host tools import this module so that nothing here is re-implemented there.
# Full specification: docs/night-format.md.

MAGIC = b"NSNF"  # first 4 bytes of every night file
FORMAT_VERSION = 4  # 4: epoch extension field clip_temp_c (docs/night-format.md)
# Versions 2 and 3 read unchanged (3 added typed events EV_PRESLEEP and EV_LAMP_PHASE); version 1
# (record types 2/4/5) is not read any more.
READ_VERSIONS = (2, 3, 4)
EPOCH_S = 30  # epoch length used by the EPOCH time code (t_off_s = 30 * index)

# Record types (1 byte). Decoders skip types they do not know (by length), so new types can be
# added without breaking old readers.
# Types 2 (EPOCH), 4 (BEATS) and 5 (ENV) were format version 1 and are never reused.
REC_HEADER = 1
REC_EVENT = 3
REC_NIGHT_END = 6
REC_EPOCH = 7  # epoch summary, with that epoch's beat stream when the device had it
REC_BEATS = 8  # a beat block not attached to an epoch
REC_ENV = 9
REC_V1 = (2, 4, 5)
RECORD_NAMES = {
    REC_HEADER: "header",
    REC_EPOCH: "epoch",
    REC_EVENT: "event",
    REC_BEATS: "beats",
    REC_ENV: "env",
    REC_NIGHT_END: "night_end",
}

MAX_PAYLOAD = 2048  # bytes; a frame whose length field says more is invalid
FRAME_OVERHEAD = 7  # type (1) + length (2) + CRC32 (4)

# Field tables: (name, bits, scale, low, knee, unit). Each known value is one unsigned integer
# code of `bits` bits in the record's bit stream; an unknown value is absent (its bit in the
# record's presence mask is 0). Two codings (docs/night-format.md, section 2):
#   knee == 0, linear:     code = round(value * scale) - low;  value = (code + low) / scale
#   knee > 0, logarithmic: code = round(scale * log2(1 + value / knee));
#                          value = knee * (2 ** (code / scale) - 1)   (relative step 2^(1/scale))
# A value whose code does not fit (or NaN, inf, negative) is stored as unknown and flagged.
# Resolutions are chosen against what the sensors resolve and what the analyses need (sources in
# docs/night-format.md, section 8).
EPOCH_FIELDS = (
    ("hr_bpm", 12, 10, 0, 0, "bpm"),  # 0..409.5, 0.1 bpm
    ("rmssd_ms", 13, 4, 0, 0, "ms"),  # 0..2047.75, 0.25 ms
    ("sdnn_ms", 13, 4, 0, 0, "ms"),  # 0..2047.75, 0.25 ms
    ("pwa_mean", 10, 32, 0, 1, "ADC counts"),  # log, 2.2 % steps, up to 4.2e9
    ("spo2_pct", 10, 10, 0, 0, "%"),  # 0..102.3, 0.1 %
    ("sqi", 7, 100, 0, 0, "0..1"),  # 0..1.27, 0.01
    ("arousal_score", 10, 1000, 0, 0, "0..1"),  # 0..1.023, 0.001
    ("temp_c", 12, 20, -800, 0, "degC"),  # -40..164.75, 0.05 degC
    ("rh_pct", 10, 10, 0, 0, "%RH"),  # 0..102.3, 0.1 %
    ("pressure_hpa", 13, 10, 3000, 0, "hPa"),  # 300..1119.1, 0.1 hPa
    ("gas_ohm", 10, 32, 0, 1, "ohm"),  # log, 2.2 % steps, up to 4.2e9
    ("lux", 10, 32, 0, 0.001, "lx"),  # log, 2.2 % steps above ~0.01 lx, up to 4.2e6
    ("mel_edi_lx", 10, 32, 0, 0.001, "lx (melanopic EDI)"),  # as lux
    ("lamp_level", 14, 10000, 0, 0, "0..1 per channel"),  # 0..1, 1e-4; a list (below)
)
EPOCH_LAMP_INDEX = 13  # lamp_level: 4-bit channel count, per channel 1 bit (non-zero) + 14 bits
MAX_LAMP_CHANNELS = 15

# Epoch extension fields (added after format version 2 shipped): written after the fields above
# only when at least one is known, announced by FLAG_EPOCH_EXT in the flags; then a 4-bit count
# of extension fields the writer knew, their presence mask and values. Older nights have none,
# so they decode as before. Appended fields keep their index forever.
EPOCH_EXT_FIELDS = (
    ("resp_per_min", 9, 10, 0, 0, "breaths/min"),  # 0..51.1, 0.1 /min (core/resp.py)
    # version 4: the MAX30102's die temperature in the finger clip, a proxy of the finger's
    # skin temperature; unknown without contact. 0.0625 degC = the chip's LSB (DS 19-7740
    # TFRAC), so storing adds no rounding; -20..107.9375 degC.
    ("clip_temp_c", 11, 16, -320, 0, "degC"),
)

ENV_FIELDS = EPOCH_FIELDS[7:13]  # temp_c, rh_pct, pressure_hpa, gas_ohm, lux, mel_edi_lx

# Beat stream defaults (per block in the record, so a device may change them).
IBI_RES_MS = 4  # beat-time resolution stored: 1, 2, 4 or 8 ms (docs/night-format.md, section 8)
PWA_SHIFT = 4  # per-beat amplitude step: 2^e <= max amplitude of the block >> 4 (3..6 %)

# Epoch flag bits (uvarint in every EPOCH record).
FLAG_CONTACT_OFF = 0x0001  # no finger/wrist contact for part of the epoch
FLAG_FIFO_OVERFLOW = 0x0002  # PPG samples were lost (MAX30102 FIFO overflow)
FLAG_MOTION = 0x0004  # motion artefact detected
FLAG_PPG_CLIPPED = 0x0008  # PPG ADC saturated
FLAG_SENSOR_FAULT = 0x0010  # a sensor failed during the epoch (see EVENT sensor_fault)
FLAG_LAMP_ON = 0x0020
FLAG_WIND_DOWN = 0x0040  # a wind-down (breathing light) session was running
FLAG_BEATS_DROPPED = 0x0080  # beat stream not stored for this epoch (flash full of unsynced)
FLAG_CLOCK_UNSET = 0x0100  # the RTC had not been set: times are device-relative
FLAG_RESUMED = 0x0200  # first epoch after a reboot in the middle of the night
FLAG_LIGHT_LIMIT = 0x0400  # melanopic EDI above the limit during the epoch
FLAG_EPOCH_EXT = 0x4000  # format only: extension fields follow (never reported as a flag)
FLAG_INVALID_VALUE = 0x8000  # a value given to the encoder was invalid and stored as unknown
FLAG_NAMES = {
    FLAG_CONTACT_OFF: "contact_off",
    FLAG_FIFO_OVERFLOW: "fifo_overflow",
    FLAG_MOTION: "motion",
    FLAG_PPG_CLIPPED: "ppg_clipped",
    FLAG_SENSOR_FAULT: "sensor_fault",
    FLAG_LAMP_ON: "lamp_on",
    FLAG_WIND_DOWN: "wind_down",
    FLAG_BEATS_DROPPED: "beats_dropped",
    FLAG_CLOCK_UNSET: "clock_unset",
    FLAG_RESUMED: "resumed",
    FLAG_LIGHT_LIMIT: "light_limit",
    FLAG_INVALID_VALUE: "invalid_value",
}

# Event kinds: code -> (name, names of the integer values in order, with their units/scales).
EV_AROUSAL = 1
EV_LIGHTS_OUT = 2
EV_LIGHTS_ON = 3
EV_IN_BED = 4
EV_OUT_OF_BED = 5
EV_LAMP_CHANGE = 6
EV_BUTTON = 7
EV_SENSOR_FAULT = 8
EV_RESET = 9
EV_WIND_DOWN = 10
EV_LIGHT_LIMIT = 11
EV_BEATS_DROPPED = 12
EV_CLOCK_SET = 13
EV_CONTACT = 14
EV_RECORD_LOSS = 15
EV_PRESLEEP = 16  # version 3
EV_LAMP_PHASE = 17  # version 3
EV_SMART_DAWN = 18
EVENT_KINDS = {
    EV_AROUSAL: ("arousal", ("duration_ms", "strength_permille")),
    EV_LIGHTS_OUT: ("lights_out", ()),
    EV_LIGHTS_ON: ("lights_on", ()),
    EV_IN_BED: ("in_bed", ()),
    EV_OUT_OF_BED: ("out_of_bed", ()),
    EV_LAMP_CHANGE: ("lamp_change", ("channel", "level_e4", "fade_ms")),
    EV_BUTTON: ("button", ("button", "press")),  # press: 0 short, 1 long, 2 double
    EV_SENSOR_FAULT: ("sensor_fault", ("sensor", "errno")),  # sensor: SENSOR_* code
    EV_RESET: ("reset", ("cause", "gap_s")),  # cause: RESET_* code; gap_s: -1 unknown
    EV_WIND_DOWN: ("wind_down", ("started", "duration_s")),  # started: 1 start, 0 end
    EV_LIGHT_LIMIT: ("light_limit", ("mel_edi_lx_e2", "limit_lx_e2")),
    EV_BEATS_DROPPED: ("beats_dropped", ("beats", "blocks")),
    EV_CLOCK_SET: ("clock_set", ("delta_s",)),  # new clock minus old clock
    EV_CONTACT: ("contact", ("on",)),
    EV_RECORD_LOSS: ("record_loss", ("records", "bytes")),  # RAM buffer full or write failed
    # the smart dawn's start: advance_s before the fixed dawn; reason: SMART_DAWN_REASONS index
    EV_SMART_DAWN: ("smart_dawn", ("advance_s", "reason")),
    # the pre-sleep hyperarousal summary, 30 min after lights-out (core/onset.py)
    EV_PRESLEEP: ("presleep", ("score", "evening_hr_bpm", "baseline_hr_bpm",
                               "decline_bpm_30min")),
    EV_LAMP_PHASE: ("lamp_phase", ("phase", "from_phase")),  # PHASE_* codes (below)
}
# Typed events store each value as round(value * scale); EV_UNKNOWN marks a value not known.
# Decoders give every event a `fields` dict: name -> value / scale (None when unknown).
EVENT_SCALES = {EV_PRESLEEP: (1000, 10, 10, 10)}  # score 0.001, HR 0.1 bpm
EV_UNKNOWN = -0x40000000
MAX_EVENT_TEXT = 64  # bytes of UTF-8; longer text is cut

# Codes used in event values.
SENSOR_PPG = 1
SENSOR_ENV = 2
SENSOR_LIGHT = 3
SENSOR_RTC = 4
SENSOR_FLASH = 5
RESET_POWER_ON = 1
RESET_WATCHDOG = 2
RESET_SOFT = 3
RESET_CRASH = 4
RESET_BROWNOUT = 5
RESET_UNKNOWN = 0
SMART_DAWN_REASONS = ("latest", "motion", "arousal", "hr")  # latest: no sign, the fixed dawn

# Lamp schedule phases (core/light.py; values of EV_LAMP_PHASE).
PHASE_NO_CLOCK = 0  # no valid clock/offset yet (or lost): lamp off, night light only
PHASE_DAY = 1
PHASE_WIND_DOWN = 2
PHASE_NIGHT = 3
PHASE_DAWN = 4
PHASE_MORNING = 5  # after wake: dawn peak held, then faded out
PHASE_NAMES = ("no_clock", "day", "wind_down", "night", "dawn", "morning")

# NIGHT_END reasons.
END_SCHEDULE = 0
END_CONTACT_LOST = 1
END_MANUAL = 2
END_NEW_NIGHT = 3  # a new night started while this one was open
END_CLOCK_LOST = 4  # power and the clock were lost: the night cannot go on at its wall time
