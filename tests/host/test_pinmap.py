"""hardware/pinmap.json passes the ESP32 rules, each rule catches a bad map, and the generated
firmware/nsdev/pinmap.py cannot drift from the JSON."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from nightstand import pinmap
from nightstand.errors import UserError


@pytest.fixture
def good() -> dict[str, Any]:
    return pinmap.load()


def _problems(pm: dict[str, Any]) -> list[str]:
    with pytest.raises(pinmap.PinmapError) as info:
        pinmap.validate(pm)
    return info.value.problems


def _with_pin(pm: dict[str, Any], **pin: Any) -> dict[str, Any]:
    pm = copy.deepcopy(pm)
    pm["pins"].append({"use": "test", **pin})
    return pm


def test_shipped_pinmap_passes(good: dict[str, Any]) -> None:
    pinmap.validate(good)
    assert pinmap.HARDWARE_DIR.name == "hardware"
    names = {p["name"] for p in good["pins"]}
    assert {"I2C_SDA", "I2C_SCL", *pinmap.REQUIRED_PINS} <= names


def test_generated_module_equals_render_of_the_json(good: dict[str, Any]) -> None:
    assert pinmap.GENERATED_PY.read_text() == pinmap.render(good), (
        "firmware/nsdev/pinmap.py is stale: run `python -m nightstand.pinmap`"
    )


def test_generated_module_has_the_board_constants(good: dict[str, Any]) -> None:
    from nsdev import pinmap as fw

    assert fw.I2C_SDA == good["i2c"]["sda"] and fw.I2C_SCL == good["i2c"]["scl"]
    assert fw.I2C_BUS == good["i2c"]["bus"] and fw.I2C_FREQ_HZ == good["i2c"]["freq_hz"]
    assert (fw.ADDR_MAX30102, fw.ADDR_BME680, fw.ADDR_VEML7700) == (0x57, 0x77, 0x10)
    for pin in good["pins"]:
        if pin["name"] not in ("I2C_SDA", "I2C_SCL"):
            assert getattr(fw, pin["name"]) == pin["gpio"]
    text = pinmap.render(good)
    assert text.startswith("# GENERATED from hardware/pinmap.json")
    assert "from nsdev.compat import const" in text


def test_flash_pins_rejected(good: dict[str, Any]) -> None:
    probs = _problems(_with_pin(good, gpio=9, name="X", direction="in"))
    assert any("GPIO 9" in p and "SPI flash" in p for p in probs)


def test_input_only_pins_reject_output_and_pulls(good: dict[str, Any]) -> None:
    probs = _problems(_with_pin(good, gpio=36, name="X", direction="out"))
    assert any("GPIO 36" in p and "input-only" in p for p in probs)
    probs = _problems(_with_pin(good, gpio=39, name="Y", direction="in", pull="up"))
    assert any("GPIO 39" in p and "no internal pull" in p for p in probs)


def test_strapping_pins_not_driven_or_pulled_away(good: dict[str, Any]) -> None:
    for gpio in (0, 2, 5, 12, 15):
        probs = _problems(_with_pin(good, gpio=gpio, name="X", direction="out"))
        assert any(f"GPIO {gpio}" in p and "strapping" in p for p in probs)
    probs = _problems(_with_pin(good, gpio=12, name="X", direction="in", pull="up"))
    assert any("GPIO 12" in p and "boot mode" in p for p in probs)
    # an input with its default pull is allowed
    pinmap.validate(_with_pin(good, gpio=15, name="X", direction="in", pull="up"))


def test_adc2_analog_rejected_only_with_wifi(good: dict[str, Any]) -> None:
    pm = _with_pin(good, gpio=4, name="X", direction="analog")
    probs = _problems(pm)
    assert any("GPIO 4" in p and "ADC2" in p for p in probs)
    pm["wifi"] = False
    pinmap.validate(pm)
    pinmap.validate(_with_pin(good, gpio=34, name="X", direction="analog"))  # ADC1 is fine


def test_gpio_used_twice(good: dict[str, Any]) -> None:
    probs = _problems(_with_pin(good, gpio=32, name="X", direction="out"))
    assert any("GPIO 32 used twice" in p for p in probs)


def test_i2c_address_rules(good: dict[str, Any]) -> None:
    pm = copy.deepcopy(good)
    pm["i2c"]["devices"]["other"] = 0x10
    assert any("0x10 used twice" in p for p in _problems(pm))
    pm = copy.deepcopy(good)
    pm["i2c"]["devices"]["other"] = 0xAE  # an 8-bit address
    assert any("0xae" in p and "7-bit" in p for p in _problems(pm))
    pm["i2c"]["devices"]["other"] = 0x03  # reserved
    assert any("0x03" in p for p in _problems(pm))


def test_every_violation_is_listed_at_once(good: dict[str, Any]) -> None:
    pm = _with_pin(good, gpio=7, name="A", direction="in")
    pm["pins"].append({"gpio": 35, "name": "B", "direction": "out", "use": "x"})
    pm["i2c"]["devices"]["dup"] = 0x57
    with pytest.raises(pinmap.PinmapError) as info:
        pinmap.validate(pm)
    msg = str(info.value)
    assert "GPIO 7" in msg and "GPIO 35" in msg and "0x57 used twice" in msg
    assert isinstance(info.value, UserError)
    assert len(info.value.problems) >= 4


def test_schema_problems_and_required_names(good: dict[str, Any]) -> None:
    pm = copy.deepcopy(good)
    pm["pins"] = [p for p in pm["pins"] if p["name"] != "BUTTON"]
    pm["pins"].append({"gpio": 4, "name": "lower", "direction": "sideways", "use": "x"})
    probs = _problems(pm)
    assert any("BUTTON missing" in p for p in probs)
    assert any("UPPER_CASE" in p for p in probs)
    assert any("sideways" in p for p in probs)
    pm = copy.deepcopy(good)
    pm["i2c"]["sda"] = 23
    assert any("i2c.sda" in p for p in _problems(pm))


def test_load_reports_bad_files(tmp_path) -> None:
    bad = tmp_path / "pinmap.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        pinmap.load(bad)
    with pytest.raises(UserError, match="not found"):
        pinmap.load(tmp_path / "missing.json")
    pm = json.loads(pinmap.PINMAP_JSON.read_text())
    pm["pins"].append({"gpio": 11, "name": "F", "direction": "in", "use": "x"})
    bad.write_text(json.dumps(pm))
    with pytest.raises(pinmap.PinmapError, match=str(bad.name)):
        pinmap.load(bad)


def test_main_check_mode() -> None:
    assert pinmap.main(["--check"]) == 0
