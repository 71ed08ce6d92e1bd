# Device configuration: one schema with defaults and limits, validated on the device (and by the
# host before sending). Stored on flash as JSON; set over the sync protocol.
import json

PPG_RATE_HZ = 50  # default PPG FIFO output rate: MAX30102 200 sps averaged by 4 (app.ppg_task)

# key: (kind, default, low, high, help). kind: "hhmm" (local clock time "HH:MM"), "int",
# "float", "bool", "str". Times of day are local; the host sets the UTC offset with the clock.
SCHEMA = {
    "bedtime": ("hhmm", "22:30", None, None, "habitual bedtime (local)"),
    "wake": ("hhmm", "06:30", None, None, "wake time (local); the dawn ends here"),
    "winddown_min": ("int", 180, 30, 240, "evening wind-down before bedtime, minutes"),
    "dawn_min": ("int", 30, 5, 90, "dawn ramp before wake, minutes"),
    "smart_wake_min": ("int", 0, 0, 45,
                       "smart dawn: start the dawn up to this many minutes early at a sign of "
                       "light sleep or wake (0 off)"),
    "dawn_peak_lux": ("float", 100.0, 0.0, 250.0, "photopic lux at the eye at the end of dawn"),
    "night_light_s": ("int", 180, 10, 1800, "button night light duration, seconds"),
    "utc_offset_s": ("int", 0, -14 * 3600, 14 * 3600, "local time minus UTC, seconds"),
    "ppg_rate_hz": ("int", PPG_RATE_HZ, 50, 100, "PPG FIFO output rate"),
    "hyperarousal_on": ("float", 0.6, 0.0, 1.0, "score that starts breathing-paced wind-down"),
    "temp_offset_c": ("float", -3.5, -10.0, 10.0, "BME680 self-heating correction"),
    "spo2_a": ("float", 110.0, 50.0, 150.0, "SpO2 = a - b * R calibration"),
    "spo2_b": ("float", 25.0, 0.0, 60.0, "SpO2 = a - b * R calibration"),
    # Hardware calibration of this unit (hardware/calibration.md). Defaults: the example parts
    # of hardware/bom.csv (2200 K white, 590 nm amber + 630 nm red; lamp.md) and equal to the
    # light controller's own defaults (nsdev/core/light.py).
    "warm_der": ("float", 0.34, 0.001, 1.5, "melanopic DER (mEDI per lux) of the warm channel"),
    "amber_der": ("float", 0.02, 0.001, 1.5, "melanopic DER of the amber/red channel"),
    "warm_full_lux_at_eye": ("float", 130.0, 1.0, 2000.0, "lux at the eye, warm at full"),
    "amber_full_lux_at_eye": ("float", 80.0, 1.0, 2000.0, "lux at the eye, amber at full"),
    "warm_full_lux_at_sensor": ("float", 6.5, 0.0, 500.0, "lux at own light sensor, warm full"),
    "amber_full_lux_at_sensor": ("float", 4.0, 0.0, 500.0, "lux at own sensor, amber full"),
    "temp_offset_lamp_c": ("float", -2.0, -10.0, 10.0,
                           "BME680 correction added at full lamp heat (offset = base + k * heat)"),
    "temp_lamp_tau_min": ("int", 20, 1, 240, "enclosure warm-up time constant for the lamp heat"),
    "swap_red_ir": ("bool", False, None, None, "clone MAX30102 board: LED1 is the IR LED"),
    "wifi": ("bool", False, None, None, "join Wi-Fi and serve sync over TCP"),
    "tcp_port": ("int", 7853, 1024, 65535, "TCP port of the sync server"),
}

CONFIG_FILE = "config.json"


def defaults():
    return {k: v[1] for k, v in SCHEMA.items()}


def hhmm_to_min(text):
    """'HH:MM' -> minutes after midnight; ValueError with the reason otherwise."""
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        raise ValueError("expected HH:MM")
    hh, mm = text[:2], text[3:]
    if not (hh.isdigit() and mm.isdigit()):
        raise ValueError("expected HH:MM")
    h, m = int(hh), int(mm)
    if h > 23 or m > 59:
        raise ValueError("expected HH:MM between 00:00 and 23:59")
    return h * 60 + m


def check_value(key, value):
    """Return the value converted to the schema's kind, or raise ValueError('key: reason')."""
    spec = SCHEMA.get(key)
    if spec is None:
        raise ValueError("%s: unknown setting" % key)
    kind, _default, low, high, _help = spec
    if kind == "hhmm":
        try:
            hhmm_to_min(value)
        except ValueError as e:
            raise ValueError("%s: %s" % (key, e)) from None
        return value
    if kind == "bool":
        if value is True or value is False:
            return value
        raise ValueError("%s: expected true or false" % key)
    if kind == "str":
        if isinstance(value, str) and len(value) <= 64:
            return value
        raise ValueError("%s: expected text of at most 64 characters" % key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("%s: expected a number" % key)
    if kind == "int":
        if value != int(value):
            raise ValueError("%s: expected a whole number" % key)
        value = int(value)
    else:
        value = float(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError("%s: %s is outside %s..%s" % (key, value, low, high))
    return value


def check_together(cfg):
    """Settings valid one by one can still clash (a night shorter than the dawn): the light
    schedule is built from them as the device would. Returns an error text or None."""
    from nsdev.core import light

    try:
        light.LightController(light.config_from_device(cfg))
    except ValueError as e:
        return "schedule: %s" % e
    return None


def merge(current, changes):
    """Validate every change; return (new_config, []) or (current, ['key: reason', ...])."""
    errors = []
    new = dict(current)
    for key in changes:
        try:
            new[key] = check_value(key, changes[key])
        except ValueError as e:
            errors.append(str(e))
    if not errors:
        clash = check_together(new)
        if clash:
            errors.append(clash)
    return (current, errors) if errors else (new, [])


def load(path=CONFIG_FILE, problems=None):
    """Defaults overlaid with the stored file; a missing or corrupt file gives the defaults.
    A stored value this firmware rejects keeps its default; `problems` (a list) collects why."""
    cfg = defaults()
    try:
        with open(path) as f:
            stored = json.load(f)
    except (OSError, ValueError):
        return cfg, False
    if not isinstance(stored, dict):
        return cfg, False
    for key in stored:
        if key in SCHEMA:
            try:
                cfg[key] = check_value(key, stored[key])
            except ValueError as e:  # keep the default for a value this firmware rejects
                if problems is not None:
                    problems.append(str(e))
    if check_together(cfg):
        return defaults(), False  # a stored set that clashes must not stop the device booting
    return cfg, True


def save(cfg, path=CONFIG_FILE):
    """Write-then-rename so a power cut leaves the old or the new file, never a torn one."""
    from nsdev.compat import write_atomic

    write_atomic(path, json.dumps(cfg))
