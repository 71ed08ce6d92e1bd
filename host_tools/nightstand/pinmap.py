"""The board's pin map (hardware/pinmap.json): load, check against ESP32 rules, render pinmap.py.

hardware/pinmap.json is the single source of truth for pins and I2C addresses; the firmware's
nsdev/pinmap.py is generated from it (`python -m nightstand.pinmap`), and a test keeps the two
equal. ESP32 rules (Espressif ESP32 datasheet, sec. "Strapping Pins" and "GPIO & RTC GPIO";
ESP32-WROOM-32E datasheet, pin description):
- GPIO 6-11 are wired to the module's SPI flash: never usable.
- GPIO 34-39 are input-only and have no internal pull resistors.
- Strapping pins 0, 2, 5, 12, 15 are sampled at reset: nothing may drive them or pull them away
  from their default level (0: pull-up -> SPI boot, 2: pull-down, 5: pull-up, 12 (MTDI):
  pull-down -> 3.3 V flash; pulled high the module boots with 1.8 V flash and fails, 15 (MTDO):
  pull-up). We therefore forbid them as outputs/bidirectional and allow a pull only in the
  default direction.
- ADC2 (GPIO 0, 2, 4, 12-15, 25-27) cannot be read while Wi-Fi is on: no analog inputs there.
- A GPIO is used once; an I2C address once per bus; addresses are 7-bit (0x08-0x77 usable).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from nightstand import paths
from nightstand.errors import UserError

HARDWARE_DIR = paths.FIRMWARE_DIR.parent / "hardware"
PINMAP_JSON = HARDWARE_DIR / "pinmap.json"
GENERATED_PY = paths.FIRMWARE_DIR / "nsdev" / "pinmap.py"

ESP32_GPIOS = frozenset([*range(0, 20), 21, 22, 23, 25, 26, 27, *range(32, 40)])
FLASH_GPIOS = frozenset(range(6, 12))
INPUT_ONLY_GPIOS = frozenset(range(34, 40))
STRAPPING_DEFAULT_PULL = {0: "up", 2: "down", 5: "up", 12: "down", 15: "up"}
ADC2_GPIOS = frozenset([0, 2, 4, 12, 13, 14, 15, 25, 26, 27])
DIRECTIONS = ("in", "out", "bidir", "analog")
PULLS = ("up", "down")
I2C_ADDR_MIN = 0x08  # 0x00-0x07 and 0x78-0x7F are reserved by the I2C specification
I2C_ADDR_MAX = 0x77

# Names the board module imports from nsdev.pinmap: the pin map must keep providing them.
REQUIRED_PINS = ("PPG_INT", "LAMP_WARM", "LAMP_AMBER", "BUTTON")
REQUIRED_DEVICES = ("max30102", "bme680", "veml7700")


class PinmapError(UserError):
    """Every violation found, one per line."""

    def __init__(self, problems: list[str], source: str = "hardware/pinmap.json") -> None:
        self.problems = problems
        super().__init__(
            f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems)
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_i2c(i2c: Any, problems: list[str]) -> None:
    if not isinstance(i2c, dict):
        problems.append('"i2c" must be an object with bus, sda, scl, freq_hz, devices')
        return
    for key in ("bus", "sda", "scl", "freq_hz"):
        if not _is_int(i2c.get(key)):
            problems.append(f'i2c.{key} must be an integer')
    if _is_int(i2c.get("bus")) and i2c["bus"] not in (0, 1):
        problems.append(f"i2c.bus {i2c['bus']}: the ESP32 has I2C buses 0 and 1")
    freq = i2c.get("freq_hz")
    if _is_int(freq) and not 10_000 <= freq <= 1_000_000:
        problems.append(f"i2c.freq_hz {freq}: outside 10 kHz..1 MHz")
    if _is_int(freq) and freq > 400_000:
        problems.append(f"i2c.freq_hz {freq}: MAX30102 and VEML7700 allow at most 400 kHz")
    devices = i2c.get("devices")
    if not isinstance(devices, dict) or not devices:
        problems.append('i2c.devices must be a non-empty object {name: 7-bit address}')
        return
    seen: dict[int, str] = {}
    for name, addr in devices.items():
        if not name.isidentifier() or name != name.lower():
            problems.append(f"i2c device name {name!r}: use a lower-case identifier")
        if not _is_int(addr):
            problems.append(f"i2c device {name}: address {addr!r} is not an integer")
            continue
        if not I2C_ADDR_MIN <= addr <= I2C_ADDR_MAX:
            problems.append(
                f"i2c device {name}: address 0x{addr:02x} is not a usable 7-bit address "
                f"(0x{I2C_ADDR_MIN:02x}-0x{I2C_ADDR_MAX:02x}; 8-bit write addresses are 2x)"
            )
        if addr in seen:
            problems.append(f"i2c address 0x{addr:02x} used twice ({seen[addr]} and {name})")
        else:
            seen[addr] = name
    for name in REQUIRED_DEVICES:
        if name not in devices:
            problems.append(f"i2c device {name!r} missing (firmware uses ADDR_{name.upper()})")


def _check_pin(pin: Any, wifi: bool, problems: list[str]) -> None:
    gpio = pin.get("gpio")
    name = pin.get("name", "?")
    direction = pin.get("direction")
    pull = pin.get("pull")
    where = f"GPIO {gpio} ({name})"
    if direction not in DIRECTIONS:
        problems.append(f"{where}: direction {direction!r} not one of {', '.join(DIRECTIONS)}")
    if pull is not None and pull not in PULLS:
        problems.append(f"{where}: pull {pull!r} not one of up, down (or absent)")
    if gpio not in ESP32_GPIOS:
        problems.append(f"{where}: the ESP32 has no such GPIO")
        return
    if gpio in FLASH_GPIOS:
        problems.append(f"{where}: GPIO 6-11 are connected to the SPI flash")
    if gpio in INPUT_ONLY_GPIOS:
        if direction in ("out", "bidir"):
            problems.append(f"{where}: GPIO 34-39 are input-only, cannot be {direction}")
        if pull is not None:
            problems.append(
                f"{where}: GPIO 34-39 have no internal pull resistors (use an external one)"
            )
    if gpio in STRAPPING_DEFAULT_PULL:
        if direction in ("out", "bidir"):
            problems.append(
                f"{where}: strapping pin (sampled at reset) must not be driven: not as {direction}"
            )
        default = STRAPPING_DEFAULT_PULL[gpio]
        if pull is not None and pull != default:
            problems.append(
                f"{where}: strapping pin defaults to pull-{default} at reset; pull-{pull} "
                "changes the boot mode"
            )
    if direction == "analog" and wifi and gpio in ADC2_GPIOS:
        problems.append(f"{where}: ADC2 cannot be read while Wi-Fi is on; use an ADC1 pin (32-39)")


def validate(pinmap: Any) -> None:
    """Raise PinmapError listing every violation of the schema and the ESP32 rules."""
    problems: list[str] = []
    if not isinstance(pinmap, dict):
        raise PinmapError(["the pin map must be a JSON object"])
    wifi = pinmap.get("wifi", True)
    if not isinstance(wifi, bool):
        problems.append('"wifi" must be true or false')
        wifi = True
    i2c = pinmap.get("i2c")
    _check_i2c(i2c, problems)
    pins = pinmap.get("pins")
    if not isinstance(pins, list) or not pins:
        problems.append('"pins" must be a non-empty list')
        raise PinmapError(problems)
    by_gpio: dict[int, str] = {}
    by_name: dict[str, int] = {}
    for i, pin in enumerate(pins):
        if not isinstance(pin, dict):
            problems.append(f"pins[{i}] must be an object")
            continue
        name, gpio = pin.get("name"), pin.get("gpio")
        if not isinstance(name, str) or not name.isidentifier() or name != name.upper():
            problems.append(f"pins[{i}]: name {name!r} must be an UPPER_CASE identifier")
            name = f"pins[{i}]"
        if not _is_int(gpio):
            problems.append(f"{name}: gpio {gpio!r} is not an integer")
            continue
        if not isinstance(pin.get("use"), str) or not pin["use"]:
            problems.append(f"{name}: describe its \"use\"")
        if gpio in by_gpio:
            problems.append(f"GPIO {gpio} used twice ({by_gpio[gpio]} and {name})")
        else:
            by_gpio[gpio] = name
        if name in by_name:
            problems.append(f"pin name {name} used twice (GPIO {by_name[name]} and {gpio})")
        else:
            by_name[name] = gpio
        _check_pin(pin, wifi, problems)
    if isinstance(i2c, dict):
        for key, pname in (("sda", "I2C_SDA"), ("scl", "I2C_SCL")):
            if by_name.get(pname) != i2c.get(key):
                problems.append(
                    f"i2c.{key} is GPIO {i2c.get(key)}: list it in pins as {pname} with that gpio"
                )
    for pname in REQUIRED_PINS:
        if pname not in by_name:
            problems.append(f"pin {pname} missing (the board module uses it)")
    if problems:
        raise PinmapError(problems)


def load(path: Path = PINMAP_JSON) -> dict[str, Any]:
    """Read and validate the pin map; UserError/PinmapError with every problem if it is bad."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise UserError(f"{path}: pin map not found") from e
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from e
    try:
        validate(data)
    except PinmapError as e:
        raise PinmapError(e.problems, str(path)) from None
    return data


def render(pinmap: dict[str, Any]) -> str:
    """The text of firmware/nsdev/pinmap.py for a validated pin map."""
    i2c = pinmap["i2c"]
    lines = [
        "# GENERATED from hardware/pinmap.json by host_tools/nightstand/pinmap.py; do not edit.",
        "# Regenerate with `python -m nightstand.pinmap`; tests/host/test_pinmap.py checks it.",
        "from nsdev.compat import const",
        "",
        f"I2C_BUS = const({i2c['bus']})",
        f"I2C_SDA = const({i2c['sda']})",
        f"I2C_SCL = const({i2c['scl']})",
        f"I2C_FREQ_HZ = const({i2c['freq_hz']})",
    ]
    for name, addr in i2c["devices"].items():
        lines.append(f"ADDR_{name.upper()} = const(0x{addr:02x})")
    for pin in pinmap["pins"]:
        if pin["name"] in ("I2C_SDA", "I2C_SCL"):
            continue
        lines.append(f"{pin['name']} = const({pin['gpio']})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Regenerate firmware/nsdev/pinmap.py (or, with --check, fail if it is out of date)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        text = render(load())
    except UserError as e:
        print(f"nightstand: {e}", file=sys.stderr)
        return 1
    if "--check" in args:
        if GENERATED_PY.read_text() != text:
            print(f"nightstand: {GENERATED_PY} is out of date; run python -m nightstand.pinmap",
                  file=sys.stderr)
            return 1
        return 0
    GENERATED_PY.write_text(text)
    print(f"wrote {GENERATED_PY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
