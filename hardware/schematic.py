"""The nightstand unit as a schematic in code (SKiDL), with our own electrical-rules check.

One circuit holds the carrier board (ESP32-DevKitC-32E, power entry, lamp drivers, I2C pull-ups,
ESD protection, sensor headers, button), the LED board and the finger clip at the end of its
1 m cable. The parts are defined here with SKiDL's Part/Pin API (SKIDL tool, no KiCad
libraries needed); pin numbers follow the datasheets named in hardware/bom.csv.

    python hardware/schematic.py [--out build/hardware]

writes nightstand.net (a KiCad netlist) and erc.txt there and exits 1 if a rule fails. The
rules (tests/hardware/test_schematic.py runs them): SKiDL's ERC with no warnings or errors,
exactly one pull-up per I2C line on the carrier and an effective pull-up (with the breakouts'
own) within the I2C specification for the pin map's bus speed and the cable's capacitance,
every power pin on a supplied rail, no floating inputs (at reset too: MOSFET gates pulled down),
every LED with one series resistor run at most at half its rating, and hardware/pinmap.json
equal to the wiring drawn here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PINMAP_JSON = HERE / "pinmap.json"

# --- design figures (hardware/i2c.md) -------------------------------------------------------
V_BUS = 3.3  # the I2C bus and sensor rail
I2C_VOL_V = 0.4  # UM10204 rev. 7 Table 10: VOL at 3 mA sink (Standard and Fast mode)
I2C_IOL_A = 0.003
# Rise time 30 % -> 70 % of an RC: t = R C ln(0.7/0.3) = 0.8473 R C (UM10204 sec. 7.1).
RC_30_70 = 0.8473
I2C_RISE_MAX_S = {100_000: 1000e-9, 400_000: 300e-9, 1_000_000: 120e-9}  # UM10204 Table 10
# Bus capacitance, worst case: 1 m of shielded multi-core cable (core to shield + neighbours,
# 100-200 pF/m for common PVC control cable), 3 sensor pins + the ESP32 pad (~10 pF each),
# connectors and traces. BRIEF: 150-250 pF; we design for the top of that range.
I2C_BUS_CAPACITANCE_F = 250e-12


@dataclass
class Design:
    """The built circuit and what our rules need to know beyond the netlist."""

    circuit: Any
    parts: dict[str, Any]
    # ref -> declared on-module I2C pull-up (ohm) to the module's VIN, per line name
    module_pullups: dict[str, dict[str, float]] = field(default_factory=dict)
    # ref -> 7-bit I2C address of the chip on that part
    i2c_addresses: dict[str, int] = field(default_factory=dict)
    # ref -> {pin name on the DevKitC: GPIO number}
    gpio_of_pin: dict[str, int] = field(default_factory=dict)
    mcu_ref: str = "U1"
    rails: tuple[str, ...] = ("+5V_IN", "+5V", "+5V_MCU", "+3V3", "GND")
    i2c_lines: tuple[str, str] = ("I2C_SDA", "I2C_SCL")
    i2c_rail: str = "+3V3"
    # resistors that are pull-ups/downs on the carrier by design: ref -> (signal net, rail)
    pulls: dict[str, tuple[str, str]] = field(default_factory=dict)


def _quiet_skidl() -> Any:
    """Import SKiDL without its warnings about absent KiCad libraries (we use none) and
    without the log files it opens in the current folder on import (closed and removed in a
    private temporary folder, so parallel test workers cannot trip over each other's)."""
    if "skidl" in sys.modules:
        return sys.modules["skidl"]
    here = os.getcwd()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            import skidl
            from skidl.logger import stop_log_file_output

            stop_log_file_output()
            # SKiDL records where each part and net was made by walking the whole Python stack
            # (inspect.stack) every time: seconds inside pytest. We track no source lines.
            import skidl.circuit

            skidl.circuit.get_skidl_trace = lambda: []
        finally:
            os.chdir(here)
            logging.disable(logging.NOTSET)
    return skidl


def build() -> Design:
    """Build the whole unit's circuit. Part values and MPNs: hardware/bom.csv."""
    skidl = _quiet_skidl()
    from skidl import SKIDL, TEMPLATE, Circuit, Net, Part, Pin

    T = Pin.types
    ckt = Circuit()
    ckt.no_files = True
    ckt.track_src = False
    parts: dict[str, Any] = {}

    def template(name: str, prefix: str, pins: list[tuple[str, str, Any]]) -> Any:
        return Part(tool=SKIDL, name=name, ref_prefix=prefix, dest=TEMPLATE,
                    pins=[Pin(num=n, name=nm, func=f) for n, nm, f in pins])

    def place(tpl: Any, ref: str, value: str, footprint: str) -> Any:
        p = tpl(circuit=ckt, ref=ref, value=value, footprint=footprint, tag=ref)
        parts[ref] = p
        return p

    def net(name: str) -> Any:
        return Net(name, circuit=ckt)

    # ---- part definitions (pin numbers from the datasheets / board user guides) -------------
    # ESP32-DevKitC V4 (ESP32-DevKitC-32E) headers, Espressif user guide "Header Block":
    # J2 (left) and J3 (right), pin 1 at the antenna end.
    j2 = ["3V3", "EN", "IO36", "IO39", "IO34", "IO35", "IO32", "IO33", "IO25", "IO26", "IO27",
          "IO14", "IO12", "GND", "IO13", "IO9", "IO10", "IO11", "5V"]
    j3 = ["GND", "IO23", "IO22", "IO1", "IO3", "IO21", "GND", "IO19", "IO18", "IO5", "IO17",
          "IO16", "IO4", "IO0", "IO2", "IO15", "IO8", "IO7", "IO6"]

    def mcu_func(name: str) -> Any:
        if name == "3V3":
            return T.PWROUT  # the DevKitC's own 3.3 V regulator
        if name in ("5V", "GND"):
            return T.PWRIN
        if name == "EN":
            return T.INPUT
        gpio = int(name[2:])
        return T.INPUT if 34 <= gpio <= 39 else T.BIDIR

    mcu_pins = [(f"J2.{i + 1}", n, mcu_func(n)) for i, n in enumerate(j2)]
    mcu_pins += [(f"J3.{i + 1}", n, mcu_func(n)) for i, n in enumerate(j3)]
    devkitc = template("ESP32-DevKitC-32E", "U", mcu_pins)
    resistor = template("R", "R", [("1", "1", T.PASSIVE), ("2", "2", T.PASSIVE)])
    capacitor = template("C", "C", [("1", "1", T.PASSIVE), ("2", "2", T.PASSIVE)])
    polar_cap = template("CP", "C", [("1", "+", T.PASSIVE), ("2", "-", T.PASSIVE)])
    ptc = template("Polyfuse", "F", [("1", "1", T.PASSIVE), ("2", "2", T.PASSIVE)])
    diode = template("D", "D", [("1", "K", T.PASSIVE), ("2", "A", T.PASSIVE)])  # KiCad order
    led = template("LED", "D", [("1", "K", T.PASSIVE), ("2", "A", T.PASSIVE)])
    # AO3400A (Alpha & Omega datasheet, SOT-23): 1 gate, 2 source, 3 drain
    nmos = template("AO3400A", "Q", [("1", "G", T.INPUT), ("2", "S", T.PASSIVE),
                                      ("3", "D", T.PASSIVE)])
    # CUI PJ-002AH: 1 centre pin (+5 V), 2 sleeve, 3 sleeve switch (unused)
    jack = template("PJ-002AH", "J", [("1", "+", T.PWROUT), ("2", "-", T.PWROUT),
                                      ("3", "SW", T.NOCONNECT)])
    # TI TPD4E05U06 (USON-10): channels on 1, 2, 4, 5; GND 3 and 8; 6, 7, 9, 10 not connected
    # inside (flow-through routing).
    tvs4 = template("TPD4E05U06", "U", [("1", "IO1", T.PASSIVE), ("2", "IO2", T.PASSIVE),
                                        ("3", "GND", T.PASSIVE), ("4", "IO3", T.PASSIVE),
                                        ("5", "IO4", T.PASSIVE), ("6", "NC6", T.NOCONNECT),
                                        ("7", "NC7", T.NOCONNECT), ("8", "GND", T.PASSIVE),
                                        ("9", "NC9", T.NOCONNECT), ("10", "NC10", T.NOCONNECT)])
    # JST PH 6-pin (B6B-PH-K-S) for the finger-clip cable, pin order chosen here (wiring.md)
    clip_conn = template("Conn_01x06", "J", [(str(i + 1), n, T.PASSIVE) for i, n in enumerate(
        ("3V3", "GND", "SDA", "GND2", "SCL", "INT"))])
    led_conn = template("Conn_01x04", "J", [(str(i + 1), n, T.PASSIVE) for i, n in enumerate(
        ("5V_A", "5V_B", "WARM_K", "AMBER_K"))])
    button = template("SW_Push", "SW", [("1", "1", T.PASSIVE), ("2", "2", T.PASSIVE)])
    # Breakouts and the clip module, as their header pins
    max30102 = template("MAX30102 module", "U", [
        ("1", "VIN", T.PWRIN), ("2", "SCL", T.INPUT), ("3", "SDA", T.BIDIR),
        ("4", "INT", T.OPENCOLL), ("5", "IRD", T.NOCONNECT), ("6", "RD", T.NOCONNECT),
        ("7", "GND", T.PWRIN)])
    bme680 = template("Adafruit BME680 (3660)", "U", [
        ("1", "VIN", T.PWRIN), ("2", "3Vo", T.PWROUT), ("3", "GND", T.PWRIN),
        ("4", "SCK", T.INPUT), ("5", "SDO", T.BIDIR), ("6", "SDI", T.BIDIR),
        ("7", "CS", T.INPUT)])
    veml7700 = template("Adafruit VEML7700 (4162)", "U", [
        ("1", "VIN", T.PWRIN), ("2", "3Vo", T.PWROUT), ("3", "GND", T.PWRIN),
        ("4", "SCL", T.INPUT), ("5", "SDA", T.BIDIR)])

    # ---- nets -------------------------------------------------------------------------------
    v5_in, v5, v5_mcu, v3 = net("+5V_IN"), net("+5V"), net("+5V_MCU"), net("+3V3")
    gnd = net("GND")
    sda, scl, ppg_int = net("I2C_SDA"), net("I2C_SCL"), net("PPG_INT")
    lamp_warm, lamp_amber, btn = net("LAMP_WARM"), net("LAMP_AMBER"), net("BUTTON")
    g_warm, g_amber = net("GATE_WARM"), net("GATE_AMBER")
    k_warm, k_amber = net("WARM_K"), net("AMBER_K")
    # +5V_MCU is fed through D2 (a diode, not a PWROUT pin): say it is a supply for ERC.
    v5_mcu.drive = skidl.POWER
    v5.drive = skidl.POWER  # through F1

    # ---- power entry ------------------------------------------------------------------------
    j1 = place(jack, "J1", "PJ-002AH", "Connector_BarrelJack:BarrelJack_CUI_PJ-002AH_Horizontal")
    j1[1] += v5_in
    j1[2] += gnd
    j1["SW"] += ckt.NC
    f1 = place(ptc, "F1", "2.5A hold", "Fuse:Fuse_1812_4532Metric")
    f1[1] += v5_in
    f1[2] += v5
    d1 = place(diode, "D1", "SMAJ5.0A", "Diode_SMD:D_SMA")  # TVS across the 5 V input
    d1["K"] += v5
    d1["A"] += gnd
    c1 = place(polar_cap, "C1", "470uF 10V", "Capacitor_THT:CP_Radial_D8.0mm_P3.50mm")
    c1["+"] += v5
    c1["-"] += gnd
    c2 = place(capacitor, "C2", "100nF", "Capacitor_SMD:C_0805_2012Metric")
    c2[1] += v5
    c2[2] += gnd
    d2 = place(diode, "D2", "SS34", "Diode_SMD:D_SMA")  # 5 V to the DevKitC, no USB back-feed
    d2["A"] += v5
    d2["K"] += v5_mcu

    # ---- the ESP32 module -------------------------------------------------------------------
    u1 = place(devkitc, "U1", "ESP32-DevKitC-32E", "nightstand:ESP32-DevKitC_2x19")
    u1["5V"] += v5_mcu
    for p in u1["GND"]:
        p += gnd
    u1["3V3"] += v3
    wiring = {"IO21": sda, "IO22": scl, "IO35": ppg_int, "IO32": lamp_warm,
              "IO33": lamp_amber, "IO27": btn}
    gpio_of_pin: dict[str, int] = {}
    for pin in u1.pins:
        if pin.name.startswith("IO"):
            gpio_of_pin[pin.name] = int(pin.name[2:])
            if pin.name in wiring:
                pin += wiring[pin.name]
            else:
                pin += ckt.NC  # free GPIOs, strapping, flash and UART0 pins: not wired
    u1["EN"] += ckt.NC  # the DevKitC has its own EN pull-up, RC and button

    # ---- I2C pull-ups (one per line, at the ESP32) and the PPG interrupt pull-up ------------
    pulls: dict[str, tuple[str, str]] = {}
    for ref, line in (("R5", sda), ("R6", scl)):
        r = place(resistor, ref, "2.2k", "Resistor_SMD:R_0805_2012Metric")
        r[1] += v3
        r[2] += line
        pulls[ref] = (line.name, v3.name)
    r7 = place(resistor, "R7", "10k", "Resistor_SMD:R_0805_2012Metric")
    r7[1] += v3
    r7[2] += ppg_int
    pulls["R7"] = (ppg_int.name, v3.name)

    # ---- lamp drivers (low side, one per channel) -------------------------------------------
    lamp_conn = place(led_conn, "J5", "B4B-XH-A", "Connector_JST:JST_XH_B4B-XH-A_1x04_P2.50mm")
    lamp_conn["5V_A"] += v5
    lamp_conn["5V_B"] += v5
    lamp_conn["WARM_K"] += k_warm
    lamp_conn["AMBER_K"] += k_amber
    for q_ref, rg_ref, rpd_ref, gpio_net, gate, drain in (
            ("Q1", "R1", "R3", lamp_warm, g_warm, k_warm),
            ("Q2", "R2", "R4", lamp_amber, g_amber, k_amber)):
        q = place(nmos, q_ref, "AO3400A", "Package_TO_SOT_SMD:SOT-23")
        rg = place(resistor, rg_ref, "100", "Resistor_SMD:R_0805_2012Metric")
        rpd = place(resistor, rpd_ref, "100k", "Resistor_SMD:R_0805_2012Metric")
        rg[1] += gpio_net
        rg[2] += gate
        rpd[1] += gate
        rpd[2] += gnd
        pulls[rpd_ref] = (gate.name, gnd.name)
        q["G"] += gate
        q["S"] += gnd
        q["D"] += drain

    # ---- LED board: one series resistor per LED, all from +5V -------------------------------
    p1 = place(led_conn, "J6", "B4B-XH-A", "Connector_JST:JST_XH_B4B-XH-A_1x04_P2.50mm")
    p1["5V_A"] += v5
    p1["5V_B"] += v5
    p1["WARM_K"] += k_warm
    p1["AMBER_K"] += k_amber
    leds = ([("warm", "LUXEON 3030 2D 2200K 90CRI", "20 0.5W", k_warm)] * 6
            + [("amber", "LUXEON Rebel amber 590nm", "27 1W", k_amber)] * 4
            + [("red", "LUXEON Rebel red 630nm", "27 1W", k_amber)] * 4)
    for i, (kind, led_value, r_value, cathode) in enumerate(leds):
        anode = net(f"LED{i + 1}_A")
        r = place(resistor, f"R{11 + i}", r_value,
                  "Resistor_SMD:R_2010_5025Metric" if kind == "warm"
                  else "Resistor_SMD:R_2512_6332Metric")
        d = place(led, f"D{11 + i}", led_value,
                  "LED_SMD:LED_Lumileds_Luxeon_3030" if kind == "warm"
                  else "LED_SMD:LED_Luxeon_Rebel")
        r[1] += v5
        r[2] += anode
        d["A"] += anode
        d["K"] += cathode

    # ---- finger clip: connector, ESD array, 1 m cable, MAX30102 module -----------------------
    j2c = place(clip_conn, "J2", "B6B-PH-K-S", "Connector_JST:JST_PH_B6B-PH-K_1x06_P2.00mm")
    j2c["3V3"] += v3
    j2c["GND"] += gnd
    j2c["GND2"] += gnd  # a ground core between SDA and SCL; the shield drain lands here too
    j2c["SDA"] += sda
    j2c["SCL"] += scl
    j2c["INT"] += ppg_int
    u5 = place(tvs4, "U5", "TPD4E05U06", "Package_SON:USON-10_2.5x1.0mm_P0.5mm")
    u5["IO1"] += sda
    u5["IO2"] += scl
    u5["IO3"] += ppg_int
    u5["IO4"] += v3
    for p in u5["GND"]:
        p += gnd
    for name in ("NC6", "NC7", "NC9", "NC10"):
        u5[name] += ckt.NC
    c3 = place(capacitor, "C3", "100nF", "Capacitor_SMD:C_0805_2012Metric")
    c3[1] += v3
    c3[2] += gnd
    u2 = place(max30102, "U2", "MAX30102 module", "nightstand:finger_clip_module")
    u2["VIN"] += v3
    u2["GND"] += gnd
    u2["SDA"] += sda
    u2["SCL"] += scl
    u2["INT"] += ppg_int
    u2["IRD"] += ckt.NC
    u2["RD"] += ckt.NC

    # ---- environment and light sensors (breakouts on headers) -------------------------------
    u3 = place(bme680, "U3", "Adafruit 3660", "Connector_PinHeader_2.54mm:PinHeader_1x07_P2.54mm")
    u3["VIN"] += v3
    u3["GND"] += gnd
    u3["SCK"] += scl
    u3["SDI"] += sda
    for name in ("3Vo", "SDO", "CS"):  # SDO pulled up on the board: 0x77; CS high: I2C mode
        u3[name] += ckt.NC
    u4 = place(veml7700, "U4", "Adafruit 4162",
               "Connector_PinHeader_2.54mm:PinHeader_1x05_P2.54mm")
    u4["VIN"] += v3
    u4["GND"] += gnd
    u4["SCL"] += scl
    u4["SDA"] += sda
    u4["3Vo"] += ckt.NC
    for ref in ("C4", "C5"):
        c = place(capacitor, ref, "100nF", "Capacitor_SMD:C_0805_2012Metric")
        c[1] += v3
        c[2] += gnd

    # ---- button -----------------------------------------------------------------------------
    sw1 = place(button, "SW1", "B3F-1000", "Button_Switch_THT:SW_PUSH_6mm")
    sw1[1] += btn
    sw1[2] += gnd
    c6 = place(capacitor, "C6", "100nF", "Capacitor_SMD:C_0805_2012Metric")
    c6[1] += btn
    c6[2] += gnd

    return Design(
        circuit=ckt,
        parts=parts,
        # Adafruit 3660 and 4162: 10 kOhm pull-ups to VIN on SDA and SCL (their schematics).
        # MAX30102 modules: the generic boards' 4.7 kOhm pull-ups go to a 1.8 V rail and must be
        # removed (BOM note), so none are declared for U2.
        module_pullups={"U3": {"I2C_SDA": 10e3, "I2C_SCL": 10e3},
                        "U4": {"I2C_SDA": 10e3, "I2C_SCL": 10e3}},
        i2c_addresses={"U2": 0x57, "U3": 0x77, "U4": 0x10},
        gpio_of_pin=gpio_of_pin,
        pulls=pulls,
    )


# --- helpers over the built circuit ----------------------------------------------------------
def nets_by_name(design: Design) -> dict[str, list[tuple[str, str, str]]]:
    """net name -> [(part ref, pin name, pin function)] (NC pins left out)."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for n in design.circuit.get_nets():
        if type(n).__name__ == "NCNet":
            continue
        out[n.name] = [(p.part.ref, p.name, p.func.name) for p in n.pins]
    return out


def pin_net(pin: Any) -> str | None:
    """Name of the net a pin is on (None: not connected or marked no-connect)."""
    nets = [n for n in pin.nets if type(n).__name__ != "NCNet"]
    return nets[0].name if nets else None


def net_of(design: Design, ref: str, pin_name: str) -> str | None:
    """Name of the net a part's pin (by exact name; the first of several) is on."""
    for pin in design.parts[ref].pins:
        if pin.name == pin_name:
            return pin_net(pin)
    raise KeyError(f"{ref} has no pin {pin_name}")


def ohms(value: str) -> float:
    """'2.2k' / '100' / '27 0.5W' / '100k' -> ohms."""
    v = value.split()[0].lower()
    mult = {"k": 1e3, "m": 1e6}.get(v[-1], 1.0)
    return float(v[:-1] if mult != 1.0 else v) * mult


def parallel(values: list[float]) -> float:
    return 1.0 / sum(1.0 / v for v in values)


# --- the rules --------------------------------------------------------------------------------
def skidl_erc(design: Design) -> tuple[int, int]:
    """SKiDL's own ERC (pin-type conflicts, unconnected pins, undriven nets): (errors,
    warnings)."""
    from skidl import erc_logger

    logging.disable(logging.CRITICAL)
    try:
        design.circuit.ERC()
    finally:
        logging.disable(logging.NOTSET)
    return erc_logger.error.count, erc_logger.warning.count


def i2c_rules(design: Design, freq_hz: int) -> list[str]:
    """Exactly one carrier pull-up per I2C line, to the bus rail; effective pull-up (with the
    modules' own) between the sink-current minimum and the rise-time maximum at freq_hz."""
    problems: list[str] = []
    nets = nets_by_name(design)
    modes = [f for f in I2C_RISE_MAX_S if freq_hz <= f]
    if not modes:
        return [f"I2C at {freq_hz} Hz: above Fast-mode Plus (1 MHz)"]
    rise_max = I2C_RISE_MAX_S[min(modes)]  # the slowest mode that allows this speed
    r_min = (V_BUS - I2C_VOL_V) / I2C_IOL_A
    for line in design.i2c_lines:
        pins = nets.get(line, [])
        pullups = []
        for ref, _pin, _func in pins:
            if not ref.startswith("R"):
                continue
            part = design.parts[ref]
            other = [pin_net(p) for p in part.pins]
            other = [o for o in other if o != line]
            if other and other[0] in design.rails:
                if other[0] != design.i2c_rail:
                    problems.append(f"{line}: pull-up {ref} goes to {other[0]}, not "
                                    f"{design.i2c_rail} (the bus's rail)")
                pullups.append(ref)
        if len(pullups) != 1:
            problems.append(f"{line}: {len(pullups)} pull-up resistors on the carrier "
                            f"({', '.join(pullups) or 'none'}); the design has exactly one")
            if not pullups:
                continue
        values = [ohms(design.parts[r].value) for r in pullups]
        values += [mp[line] for mp in design.module_pullups.values() if line in mp]
        rp = parallel(values)
        rise_s = RC_30_70 * rp * I2C_BUS_CAPACITANCE_F
        r_max = rise_max / (RC_30_70 * I2C_BUS_CAPACITANCE_F)
        if rp < r_min:
            problems.append(f"{line}: effective pull-up {rp:.0f} ohm is below {r_min:.0f} ohm "
                            f"(a 3 mA sink must pull the line to {I2C_VOL_V} V)")
        if rise_s > rise_max:
            problems.append(
                f"{line}: rise time {rise_s * 1e9:.0f} ns with {rp:.0f} ohm and "
                f"{I2C_BUS_CAPACITANCE_F * 1e12:.0f} pF exceeds {rise_max * 1e9:.0f} ns allowed "
                f"at {freq_hz // 1000} kHz (pull-up must be <= {r_max:.0f} ohm, or lower the "
                "bus speed)")
    return problems


def power_rules(design: Design) -> list[str]:
    """Every power-input pin sits on a named rail that has a source."""
    problems: list[str] = []
    nets = nets_by_name(design)
    sources = {n for n, pins in nets.items() if any(f == "PWROUT" for _r, _p, f in pins)}
    sources |= {n.name for n in design.circuit.get_nets() if n.drive >= _power_drive()}
    for name, pins in nets.items():
        for ref, pin, func in pins:
            if func != "PWRIN":
                continue
            if name not in design.rails:
                problems.append(f"{ref}.{pin}: power input on {name}, not on a supply rail")
            elif name not in sources:
                problems.append(f"{ref}.{pin}: rail {name} has no source")
    for ref, part in design.parts.items():
        for p in part.pins:
            if p.func.name == "PWRIN" and pin_net(p) is None:
                problems.append(f"{ref}.{p.name}: power input not connected")
    return problems


def _power_drive() -> Any:
    from skidl.pin import pin_drives

    return pin_drives.POWER


def input_rules(design: Design, pinmap: dict[str, Any]) -> list[str]:
    """No floating inputs: a net with an input (or an ESP32 GPIO) has a driver, a pull resistor
    to a rail, or an internal pull the pin map declares; open-drain nets have a pull-up; a
    MOSFET gate is pulled down (the ESP32's GPIOs float through boot)."""
    problems: list[str] = []
    nets = nets_by_name(design)
    internal_pull = {p["name"] for p in pinmap["pins"] if p.get("pull") in ("up", "down")}
    for name, pins in nets.items():
        if name in design.rails:
            continue
        funcs = {f for _r, _p, f in pins}
        pulled = any(design.pulls.get(r, ("", ""))[0] == name for r, _p, _f in pins)
        if "OPENCOLL" in funcs and not pulled:
            problems.append(f"{name}: open-drain output without a pull-up")
        drivers = [(r, p) for r, p, f in pins if f in ("OUTPUT", "PWROUT")]
        mcu_driven = any(r == design.mcu_ref and f == "BIDIR" for r, _p, f in pins)
        if "INPUT" in funcs or mcu_driven:
            if not (drivers or pulled or name in internal_pull
                    or (mcu_driven and name in _mcu_outputs(pinmap))):
                problems.append(f"{name}: input with no driver and no pull resistor (floats)")
        for ref, pin, _f in pins:
            if ref.startswith("Q") and pin == "G":
                down = any(design.pulls.get(r, ("", ""))[0] == name
                           and design.pulls[r][1] == "GND" for r, _p, _f2 in pins)
                if not down:
                    problems.append(f"{name}: gate of {ref} has no pull-down (floats at reset)")
    return problems


def _mcu_outputs(pinmap: dict[str, Any]) -> set[str]:
    return {p["name"] for p in pinmap["pins"] if p["direction"] in ("out", "bidir")}


def pinmap_rules(design: Design, pinmap: dict[str, Any]) -> list[str]:
    """hardware/pinmap.json says exactly what the schematic wires: each named GPIO is on the
    net of that name, every other GPIO is unconnected, each I2C device sits on the bus at the
    address the pin map gives."""
    problems: list[str] = []
    named = {p["gpio"]: p["name"] for p in pinmap["pins"]}
    i2c = pinmap["i2c"]
    if named.get(i2c["sda"]) != "I2C_SDA" or named.get(i2c["scl"]) != "I2C_SCL":
        problems.append("pinmap: i2c.sda/scl do not match the I2C_SDA/I2C_SCL pins")
    for pin_name, gpio in sorted(design.gpio_of_pin.items(), key=lambda kv: kv[1]):
        wired = net_of(design, design.mcu_ref, pin_name)
        want = named.get(gpio)
        if want is None and wired is not None:
            problems.append(f"GPIO {gpio} is wired to {wired} but missing from the pin map")
        elif want is not None and wired != want:
            problems.append(f"GPIO {gpio}: pin map says {want}, schematic has "
                            f"{wired or 'nothing'}")
    addr_of = {v: k for k, v in design.i2c_addresses.items()}
    for dev, addr in i2c["devices"].items():
        ref = addr_of.get(addr)
        if ref is None:
            problems.append(f"I2C device {dev} at 0x{addr:02x}: no part at that address")
            continue
        lines = {pin_net(p) for p in design.parts[ref].pins}
        if not set(design.i2c_lines) <= lines:
            problems.append(f"I2C device {dev} ({ref}) is not on {'/'.join(design.i2c_lines)}")
    for ref, addr in design.i2c_addresses.items():
        if addr not in i2c["devices"].values():
            problems.append(f"{ref} at 0x{addr:02x} is on the bus but not in the pin map")
    return problems


# Forward voltage at ~100 mA of the example LEDs (bom.csv values; check the bin's datasheet)
LED_VF_V = {"LUXEON 3030 2D 2200K 90CRI": 3.0, "LUXEON Rebel amber 590nm": 2.2,
            "LUXEON Rebel red 630nm": 2.2}
LED_SUPPLY_V = 5.0
RESISTOR_DERATING = 0.5  # run resistors at most at half their rated power (enclosed, warm)


@dataclass(frozen=True)
class LedBranch:
    led: str
    resistor: str
    channel: str  # the MOSFET drain net (WARM_K / AMBER_K)
    current_a: float
    resistor_w: float
    rating_w: float


def led_branches(design: Design) -> list[LedBranch]:
    """Each LED with its series resistor from +5V: current (5 V - Vf)/R and the resistor's
    dissipation, from the part values."""
    out = []
    for ref, part in design.parts.items():
        if not ref.startswith("D") or part.name != "LED":
            continue
        anode = net_of(design, ref, "A")
        channel = net_of(design, ref, "K") or "?"
        res = [r for r, p in design.parts.items() if r.startswith("R")
               and anode in {pin_net(x) for x in p.pins}]
        if len(res) != 1 or part.value not in LED_VF_V:
            continue
        r_ohm = ohms(design.parts[res[0]].value)
        rating = next((float(w[:-1]) for w in design.parts[res[0]].value.split()[1:]
                       if w.endswith("W")), 0.125)
        i = (LED_SUPPLY_V - LED_VF_V[part.value]) / r_ohm
        out.append(LedBranch(ref, res[0], channel, i, i * i * r_ohm, rating))
    return out


def lamp_rules(design: Design) -> list[str]:
    """Every LED has exactly one series resistor from +5V and a known Vf; no resistor runs
    above half its rating."""
    problems = []
    branches = {b.led: b for b in led_branches(design)}
    for ref, part in design.parts.items():
        if ref.startswith("D") and part.name == "LED" and ref not in branches:
            problems.append(f"{ref}: LED without exactly one series resistor from +5V "
                            "(or with an unknown Vf)")
    for b in branches.values():
        if b.resistor_w > RESISTOR_DERATING * b.rating_w:
            problems.append(f"{b.resistor}: {b.resistor_w:.2f} W in a {b.rating_w:g} W resistor "
                            f"(more than {RESISTOR_DERATING:.0%} of its rating)")
    return problems


def channel_power_w(design: Design) -> dict[str, float]:
    """Electrical power of each lamp channel at full duty: 5 V x the sum of its LED currents."""
    out: dict[str, float] = {}
    for b in led_branches(design):
        out[b.channel] = out.get(b.channel, 0.0) + LED_SUPPLY_V * b.current_a
    return out


def check(design: Design, pinmap: dict[str, Any]) -> list[str]:
    """All our rules at once; [] when the design passes."""
    return (i2c_rules(design, int(pinmap["i2c"]["freq_hz"])) + power_rules(design)
            + input_rules(design, pinmap) + pinmap_rules(design, pinmap) + lamp_rules(design))


def netlist(design: Design) -> str:
    """The KiCad netlist text (SKiDL's KiCad 9 writer)."""
    logging.disable(logging.CRITICAL)
    try:
        return str(design.circuit.generate_netlist(tool="kicad9", do_backup=False))
    finally:
        logging.disable(logging.NOTSET)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/hardware"),
                    help="folder for nightstand.net and erc.txt (default %(default)s)")
    args = ap.parse_args(argv)
    pinmap = json.loads(PINMAP_JSON.read_text())
    design = build()
    errors, warnings = skidl_erc(design)
    problems = check(design, pinmap)
    if errors or warnings:
        problems.insert(0, f"SKiDL ERC: {errors} error(s), {warnings} warning(s)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nightstand.net").write_text(netlist(design))
    report = "\n".join(problems) if problems else "ERC passed"
    (args.out / "erc.txt").write_text(report + "\n")
    print(f"{len(design.parts)} parts, {len(nets_by_name(design))} nets -> "
          f"{args.out / 'nightstand.net'}")
    print(report)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
