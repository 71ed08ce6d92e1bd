"""Cross-check: our pure BME680 compensation vs the installed Adafruit CircuitPython driver.

Both read the same register image (a fake I2C bus, no hardware) for 1500 seeded random
calibration + raw data sets. Known, documented differences (docs/drivers/bme680.md):
  * Adafruit splits 0xE2 the other way round (par_h1 gets the high nibble, as a fraction; par_h2
    the low nibble); Bosch's API gives par_h1 the low nibble and par_h2 the high one.
  * Adafruit reads range_sw_err (0x04 bits 7:4) and res_heat_val (0x00) unsigned; Bosch: signed.
  * Adafruit truncates t_fine to an integer and evaluates Bosch's integer formulas in floating
    point; the gas path uses the integer lookup tables.
The formulas are compared with each driver's own coefficient reading; the size of the register
reading differences is measured and bounded separately.
"""

from __future__ import annotations

import random
import struct

import adafruit_bme680
import pytest
from nsdev.drivers import bme680 as ours

N_SETS = 1500


class FakeBus:
    """busio.I2C look-alike serving a 256-byte register map (pointer write, then read)."""

    def __init__(self, regs: bytearray) -> None:
        self.regs = regs
        self.ptr = 0

    def try_lock(self) -> bool:
        return True

    def unlock(self) -> None:
        pass

    def writeto(self, addr: int, buf, *, start: int = 0, end: int | None = None) -> None:
        data = bytes(buf[start:end])
        if len(data) == 1:
            self.ptr = data[0]
            return
        for i in range(0, len(data) - 1, 2):  # BME680 burst write: (register, value) pairs
            reg, val = data[i], data[i + 1]
            if reg == 0xE0:
                continue  # soft reset: nothing to clear in this static image
            self.regs[reg] = val

    def readfrom_into(self, addr: int, buf, *, start: int = 0, end: int | None = None) -> None:
        end = len(buf) if end is None else end
        for i in range(start, end):
            buf[i] = self.regs[(self.ptr + i - start) & 0xFF]

    def writeto_then_readfrom(self, addr, out_buf, in_buf, **kw) -> None:
        self.writeto(addr, out_buf)
        self.readfrom_into(addr, in_buf)


class _Clock:
    """Stands in for adafruit_bme680's `time`: no real sleeps; every reading is a fresh one."""

    def __init__(self) -> None:
        self.t = 1000.0

    def sleep(self, s: float) -> None:
        self.t += s

    def monotonic(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture(autouse=True)
def _no_wall_clock(monkeypatch):
    monkeypatch.setattr(adafruit_bme680, "time", _Clock())


def _s(rng: random.Random, centre: int, spread: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, centre + rng.randint(-spread, spread)))


def random_registers(rng: random.Random) -> tuple[bytearray, dict]:
    """A plausible calibration (broad spreads around a real chip's values) and raw data."""
    r = bytearray(256)
    c = {
        "t1": _s(rng, 26000, 4000, 0, 65535), "t2": _s(rng, 26500, 3000, 1, 32767),
        "t3": _s(rng, 3, 10, -128, 127), "p1": _s(rng, 36000, 5000, 1, 65535),
        "p2": _s(rng, -10300, 1500, -32768, 32767), "p3": _s(rng, 88, 30, -128, 127),
        "p4": _s(rng, 7000, 3000, -32768, 32767), "p5": _s(rng, -150, 150, -32768, 32767),
        "p6": _s(rng, 30, 20, -128, 127), "p7": _s(rng, 40, 40, -128, 127),
        "p8": _s(rng, -500, 500, -32768, 32767), "p9": _s(rng, -3000, 1500, -32768, 32767),
        "p10": _s(rng, 30, 20, 0, 255),
    }
    struct.pack_into("<hb", r, 0x8A, c["t2"], c["t3"])
    struct.pack_into("<Hhb", r, 0x8E, c["p1"], c["p2"], c["p3"])
    struct.pack_into("<hhbb", r, 0x94, c["p4"], c["p5"], c["p7"], c["p6"])
    struct.pack_into("<hhB", r, 0x9C, c["p8"], c["p9"], c["p10"])
    r[0xE1] = rng.randint(0x38, 0x44)  # par_h2 high byte (par_h2 ~ 900..1100)
    r[0xE2] = rng.randint(0, 255)  # the shared nibble byte
    r[0xE3] = rng.randint(0x2E, 0x34)  # par_h1 high byte (par_h1 ~ 740..840)
    struct.pack_into("<bbbBb", r, 0xE4, rng.randint(-10, 10), rng.randint(20, 70),
                     rng.randint(-10, 40), rng.randint(80, 160), rng.randint(-120, -60))
    struct.pack_into("<Hhbb", r, 0xE9, c["t1"], rng.randint(-15000, -5000),
                     rng.randint(-60, 30), rng.randint(0, 30))
    r[0x00] = rng.randint(0, 255)  # res_heat_val
    r[0x02] = rng.randint(0, 255)  # res_heat_range in bits 5:4
    r[0x04] = rng.randint(0, 255)  # range_sw_err in bits 7:4
    r[0xD0] = 0x61
    r[0xF0] = 0x00  # variant_id: BME680 (low-gas variant)
    r[0x1D] = 0x80  # new data ready
    # Raw data chosen to span the sensor's range: -40..85 degC, 300..1100 hPa, 1..99 %RH (the
    # ADC codes found by bisection on our formulas; only the choice of inputs depends on them),
    # and every gas range and code.
    cal = _our_cal(r)
    adc_t = _bisect(lambda a: ours.compensate_temperature(cal, a)[0], rng.uniform(-40, 85))
    temp_c, t_fine = ours.compensate_temperature(cal, adc_t)
    adc_p = _bisect(lambda a: -ours.compensate_pressure(cal, a, t_fine),
                    -100.0 * rng.uniform(300, 1100))
    adc_h = _bisect(lambda a: ours.compensate_humidity(cal, a, temp_c), rng.uniform(1, 99),
                    0xFFFF)
    adc_g = rng.randint(0, 1023)
    gas_range = rng.randint(0, 15)
    r[0x1F], r[0x20], r[0x21] = adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4
    r[0x22], r[0x23], r[0x24] = adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4
    r[0x25], r[0x26] = adc_h >> 8, adc_h & 0xFF
    r[0x2A], r[0x2B] = adc_g >> 2, ((adc_g & 3) << 6) | 0x30 | gas_range
    return r, {"adc_t": adc_t, "adc_p": adc_p, "adc_h": adc_h, "adc_g": adc_g, "range": gas_range}


def _bisect(f, target: float, hi: int = 0xFFFFF) -> int:
    """Smallest code in [0, hi] with f(code) >= target (f non-decreasing)."""
    lo = 0
    while lo < hi:
        mid = (lo + hi) // 2
        if f(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _our_cal(r: bytearray) -> tuple:
    return ours.parse_calibration(bytes(r[0x8A:0xA1]), bytes(r[0xE1:0xEF]), bytes(r[0x00:0x05]))


def _as_adafruit_reads_it(cal: tuple, r: bytearray) -> list:
    """Our calibration with Adafruit's readings of the shared nibble and the unsigned fields."""
    c = list(cal)
    c[ours.H1] = r[0xE3] * 16 + r[0xE2] / 16.0
    c[ours.H2] = r[0xE1] * 16 + (r[0xE2] & 0x0F)
    c[ours.RANGE_SW_ERR] = (r[0x04] & 0xF0) >> 4
    c[ours.RES_HEAT_VAL] = r[0x00]
    return c


def test_cross_check_against_adafruit_driver():
    rng = random.Random(680)
    worst = {"t": 0.0, "p": 0.0, "rh": 0.0, "gas": 0.0, "heat": 0}
    read_diff = {"rh": 0.0, "gas": 0.0, "heat": 0}
    compared = {"rh": 0, "gas": 0, "p": 0}
    heat_read_differs = 0
    for _ in range(N_SETS):
        regs, raw = random_registers(rng)
        bus = FakeBus(regs)
        ada = adafruit_bme680.Adafruit_BME680_I2C(bus, 0x77)
        heat_written, wait_written = regs[0x5A], regs[0x64]
        cal = _our_cal(regs)
        acal = _as_adafruit_reads_it(cal, regs)

        temp_c, t_fine = ours.compensate_temperature(cal, raw["adc_t"])
        a_temp = ada.temperature
        worst["t"] = max(worst["t"], abs(a_temp - temp_c))

        pa = ours.compensate_pressure(cal, raw["adc_p"], t_fine)
        if 30000.0 <= pa <= 110000.0:  # the sensor's range
            compared["p"] += 1
            worst["p"] = max(worst["p"], abs(ada.pressure - pa / 100.0))

        a_rh = ada.humidity
        rh_same_coeffs = ours.compensate_humidity(acal, raw["adc_h"], temp_c)
        rh_bosch = ours.compensate_humidity(cal, raw["adc_h"], temp_c)
        if 0.0 < rh_same_coeffs < 100.0:
            compared["rh"] += 1
            worst["rh"] = max(worst["rh"], abs(a_rh - rh_same_coeffs))
            read_diff["rh"] = max(read_diff["rh"], abs(rh_bosch - rh_same_coeffs))

        a_gas = ada.gas
        g_same = ours.compensate_gas(acal[ours.RANGE_SW_ERR], raw["adc_g"], raw["range"])
        g_bosch = ours.compensate_gas(cal[ours.RANGE_SW_ERR], raw["adc_g"], raw["range"])
        if g_same > 0:
            compared["gas"] += 1
            worst["gas"] = max(worst["gas"], abs(a_gas - g_same) / g_same)
            read_diff["gas"] = max(read_diff["gas"], abs(g_bosch - g_same) / g_same)

        # Heater: Adafruit writes res_heat_0 for 320 degC at 25 degC ambient, gas_wait_0 for
        # 150 ms, at construction.
        h_same = ours.heater_res_code(acal, 320, 25)
        worst["heat"] = max(worst["heat"], abs(((heat_written - h_same + 128) & 0xFF) - 128))
        h_bosch = ours.heater_res_code(cal, 320, 25)
        read_diff["heat"] = max(read_diff["heat"], abs(((h_bosch - h_same + 128) & 0xFF) - 128))
        heat_read_differs += h_bosch != h_same
        assert wait_written == ours.gas_wait_code(150)

    print("\nBME680 vs Adafruit", N_SETS, "sets, compared", compared)
    print("max |diff| same coefficients:", worst)
    print("max effect of Adafruit's register reading:", read_diff,
          "heater code differs in", heat_read_differs, "sets")
    assert compared["p"] > 0.95 * N_SETS and compared["rh"] > 0.9 * N_SETS
    assert worst["t"] <= 0.05
    assert worst["p"] <= 0.1
    assert worst["rh"] <= 0.1
    assert worst["gas"] <= 0.01
    assert worst["heat"] <= 1
    # The reading differences are real and of the documented size (not zero, not wild).
    assert 0.05 < read_diff["rh"] < 5.0
    assert 0.005 < read_diff["gas"] < 0.05


def test_nibble_split_matches_bosch_for_a_known_byte():
    # 0xE1..0xE3 = 0x3E 0xF5 0x31: Bosch par_h1 = 0x315, par_h2 = 0x3EF.
    regs, _ = random_registers(random.Random(1))
    regs[0xE1], regs[0xE2], regs[0xE3] = 0x3E, 0xF5, 0x31
    cal = _our_cal(regs)
    assert (cal[ours.H1], cal[ours.H2]) == (0x315, 0x3EF)
    acal = _as_adafruit_reads_it(cal, regs)
    assert (acal[ours.H1], acal[ours.H2]) == (0x31 * 16 + 0xF5 / 16, 0x3E5)
