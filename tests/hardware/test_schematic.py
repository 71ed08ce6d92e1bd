"""hardware/schematic.py: the unit's SKiDL schematic passes SKiDL's ERC and our rules, writes a
netlist, agrees with hardware/pinmap.json and hardware/bom.csv, and each rule catches the fault
it is for."""

from __future__ import annotations

import copy
import csv
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HARDWARE = Path(__file__).resolve().parents[2] / "hardware"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nightstand_schematic",
                                                  HARDWARE / "schematic.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


sch = _load()


@pytest.fixture
def pinmap() -> dict[str, Any]:
    return json.loads((HARDWARE / "pinmap.json").read_text())


@pytest.fixture
def design() -> Any:
    return sch.build()


def _nets(design: Any) -> dict[str, Any]:
    return {n.name: n for n in design.circuit.get_nets()}


def _disconnect(design: Any, ref: str, pin_name: str | None = None) -> None:
    for p in design.parts[ref].pins:
        if pin_name is None or p.name == pin_name:
            p.disconnect()


def test_the_design_passes_skidl_erc_and_our_rules(design: Any, pinmap: dict[str, Any]) -> None:
    assert sch.skidl_erc(design) == (0, 0)
    assert sch.check(design, pinmap) == []


def test_main_writes_a_netlist_with_every_part_and_net(tmp_path: Path) -> None:
    assert sch.main(["--out", str(tmp_path)]) == 0
    text = (tmp_path / "nightstand.net").read_text()
    assert (tmp_path / "erc.txt").read_text().strip() == "ERC passed"
    refs = set(re.findall(r'\(ref "([A-Z]+[0-9]+)"\)', text))
    assert refs == set(sch.build().parts)
    for net in ("I2C_SDA", "I2C_SCL", "PPG_INT", "LAMP_WARM", "LAMP_AMBER", "BUTTON", "+3V3",
                "+5V", "GND"):
        assert f'(name "{net}")' in text


def test_skidl_erc_sees_an_unconnected_pin(design: Any) -> None:
    _disconnect(design, "U2", "INT")
    errors, warnings = sch.skidl_erc(design)
    assert errors + warnings >= 1


def test_i2c_at_400_khz_over_the_cable_fails_the_rise_time(design: Any,
                                                           pinmap: dict[str, Any]) -> None:
    pinmap["i2c"]["freq_hz"] = 400_000
    probs = sch.check(design, pinmap)
    assert len(probs) == 2 and all("rise time" in p and "300 ns" in p for p in probs)
    # 100 kHz: 0.8473 * (2.2k || 10k || 10k) * 250 pF = 324 ns, inside Standard mode's 1000 ns
    assert sch.i2c_rules(design, 100_000) == []


def test_exactly_one_pull_up_per_i2c_line(design: Any, pinmap: dict[str, Any]) -> None:
    extra = design.parts["R5"].copy()
    nets = _nets(design)
    extra[1] += nets["+3V3"]
    extra[2] += nets["I2C_SDA"]
    design.parts[extra.ref] = extra
    probs = sch.check(design, pinmap)
    assert any("I2C_SDA: 2 pull-up resistors" in p for p in probs)
    d2 = sch.build()
    _disconnect(d2, "R6")
    assert any("I2C_SCL: 0 pull-up resistors" in p for p in sch.check(d2, pinmap))


def test_pull_up_to_the_wrong_rail(design: Any, pinmap: dict[str, Any]) -> None:
    r5 = design.parts["R5"]
    r5[1].disconnect()
    r5[1] += _nets(design)["+5V"]
    assert any("R5 goes to +5V" in p for p in sch.check(design, pinmap))


def test_floating_inputs_are_found(design: Any, pinmap: dict[str, Any]) -> None:
    _disconnect(design, "R7")  # the PPG INT pull-up (GPIO 35 has none inside)
    _disconnect(design, "R3")  # the warm MOSFET's gate pull-down
    probs = sch.check(design, pinmap)
    assert any("PPG_INT: open-drain output without a pull-up" in p for p in probs)
    assert any("gate of Q1 has no pull-down" in p for p in probs)
    no_pull = copy.deepcopy(pinmap)
    for p in no_pull["pins"]:
        p.pop("pull", None)
    probs = sch.check(sch.build(), no_pull)
    assert probs == ["BUTTON: input with no driver and no pull resistor (floats)"]


def test_power_pins_must_be_on_a_supplied_rail(design: Any, pinmap: dict[str, Any]) -> None:
    _disconnect(design, "U3", "VIN")
    probs = sch.check(design, pinmap)
    assert "U3.VIN: power input not connected" in probs


def test_pinmap_is_checked_against_the_wiring(design: Any, pinmap: dict[str, Any]) -> None:
    assert sch.pinmap_rules(design, pinmap) == []
    moved = copy.deepcopy(pinmap)
    for p in moved["pins"]:
        if p["name"] == "LAMP_WARM":
            p["gpio"] = 25
    probs = sch.pinmap_rules(design, moved)
    assert "GPIO 25: pin map says LAMP_WARM, schematic has nothing" in probs
    assert "GPIO 32 is wired to LAMP_WARM but missing from the pin map" in probs
    addr = copy.deepcopy(pinmap)
    addr["i2c"]["devices"]["bme680"] = 0x76
    probs = sch.pinmap_rules(design, addr)
    assert any("bme680 at 0x76: no part" in p for p in probs)
    assert any("U3 at 0x77 is on the bus but not in the pin map" in p for p in probs)


def test_bom_lists_every_schematic_part_with_its_value(design: Any) -> None:
    with open(HARDWARE / "bom.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    refs: dict[str, dict[str, str]] = {}
    for row in rows:
        assert int(row["qty"]) >= 1, row
        assigned = [r for r in row["refs"].split() if r]
        if assigned:
            assert len(assigned) == int(row["qty"]), row["item"]
        for r in assigned:
            assert r not in refs, f"{r} listed twice"
            refs[r] = row
    assert set(refs) == set(design.parts), "bom.csv refs differ from the schematic"
    for ref, part in design.parts.items():
        assert refs[ref]["value"] == part.value, ref
    items = " ".join(r["item"].lower() for r in rows)
    for must in ("enclosure", "power supply", "cable", "finger clip", "fuse", "esd"):
        assert must in items, must


def test_led_branches_and_resistor_ratings(design: Any) -> None:
    assert sch.lamp_rules(design) == []
    branches = sch.led_branches(design)
    assert len(branches) == 14
    assert all(0.09 < b.current_a < 0.11 for b in branches)
    design.parts["R17"].value = "27 0.5W"  # 0.29 W would be 58 % of a 0.5 W part
    assert sch.lamp_rules(design) == [
        "R17: 0.29 W in a 0.5 W resistor (more than 50% of its rating)"]
    _disconnect(design, "R11")
    assert any(p.startswith("D11: LED without") for p in sch.lamp_rules(design))


def test_firmware_lamp_power_matches_the_led_board(design: Any) -> None:
    """nsdev/core/hwcal.py weighs the lamp's heat by each channel's electrical power: those
    constants must be what the schematic's LEDs and resistors draw (within 10 %)."""
    from nsdev.core import hwcal

    watts = sch.channel_power_w(design)
    assert watts["WARM_K"] == pytest.approx(hwcal.WARM_FULL_MW / 1000, rel=0.10)
    assert watts["AMBER_K"] == pytest.approx(hwcal.AMBER_FULL_MW / 1000, rel=0.10)
