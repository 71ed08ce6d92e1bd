# Register-level virtual BME680 on the simulated I2C bus: forced mode timed on the virtual clock,
# calibration registers, and raw ADC values that encode the room (+ self-heating) through Bosch's
# integer compensation formulas, inverted by bisection.
#
# Facts from Bosch BST-BME680-DS001 (register map, interleaved burst writes, meas_status_0 bits,
# skipped-measurement value 0x80000, gas_wait encoding) and the BME68x_SensorAPI v4.4.x (integer
# compensation: calc_temperature/calc_pressure/calc_humidity/calc_gas_resistance_low; calibration
# layout get_calib_data; forced-mode duration bme68x_get_meas_dur). The chip model deliberately
# uses the INTEGER formulas so that the driver's float formulas are checked against a separate
# implementation, not against themselves.
import math
import struct
import time

import world

_ROW = 28  # env file row: 7 little-endian float32 (t_s, temp_c, rh_pct, pressure_hpa, gas_ohm,
#            lux, cct_k)
_DEFAULT_ENV = (21.0, 45.0, 1013.25, 50000.0)

# A calibration set read from a real BME680 (published in the wrclark/bme680 README); the gas
# heater coefficients are plausible values (that source lists none).
DEFAULT_CAL = {
    "t1": 26203, "t2": 26519, "t3": 3,
    "p1": 35008, "p2": -10284, "p3": 88, "p4": 9692, "p5": -202, "p6": 30, "p7": 24,
    "p8": -516, "p9": -3469, "p10": 30,
    "h1": 794, "h2": 1007, "h3": 0, "h4": 45, "h5": 20, "h6": 120, "h7": -100,
    "gh1": -20, "gh2": -10000, "gh3": 18, "res_heat_range": 1, "res_heat_val": 40,
    "range_sw_err": 0,
}
# calib_seed draws each coefficient uniformly within +-spread of the default.
_SPREAD = {
    "t1": 1500, "t2": 800, "t3": 3, "p1": 2000, "p2": 500, "p3": 10, "p4": 800, "p5": 60,
    "p6": 5, "p7": 10, "p8": 200, "p9": 300, "p10": 5, "h1": 60, "h2": 80, "h3": 4, "h4": 5,
    "h5": 5, "h6": 10, "h7": 10, "gh1": 10, "gh2": 3000, "gh3": 4, "res_heat_range": 1,
    "res_heat_val": 30, "range_sw_err": 2,
}
# [API] calc_gas_resistance_low integer lookup tables (per gas_range).
_GAS_LUT1 = (2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2126008810,
             2147483647, 2130303777, 2147483647, 2147483647, 2143188679, 2136746228,
             2147483647, 2126008810, 2147483647, 2147483647)
_GAS_LUT2 = (4096000000, 2048000000, 1024000000, 512000000, 255744255, 127110228, 64000000,
             32258064, 16016016, 8000000, 4000000, 2000000, 1000000, 500000, 250000, 125000)
_OS = (0, 1, 2, 4, 8, 16)


def _cdiv(a, b):
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def random_calibration(seed):
    """A plausible calibration dict from an int seed (xorshift32; same on every interpreter)."""
    s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1
    cal = {}
    for k in sorted(DEFAULT_CAL):
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        spread = _SPREAD[k]
        cal[k] = DEFAULT_CAL[k] + (s % (2 * spread + 1)) - spread
    cal["res_heat_range"] = min(3, max(0, cal["res_heat_range"]))
    return cal


def pack_calibration(cal, regs):
    """Write a calibration dict into a 256-byte register image ([API] get_calib_data layout)."""
    struct.pack_into("<hb", regs, 0x8A, cal["t2"], cal["t3"])
    struct.pack_into("<Hhb", regs, 0x8E, cal["p1"], cal["p2"], cal["p3"])
    struct.pack_into("<hhbb", regs, 0x94, cal["p4"], cal["p5"], cal["p7"], cal["p6"])
    struct.pack_into("<hhB", regs, 0x9C, cal["p8"], cal["p9"], cal["p10"])
    h1, h2 = cal["h1"], cal["h2"]
    regs[0xE1] = (h2 >> 4) & 0xFF
    regs[0xE2] = ((h2 & 0x0F) << 4) | (h1 & 0x0F)
    regs[0xE3] = (h1 >> 4) & 0xFF
    struct.pack_into("<bbbBbHhbb", regs, 0xE4, cal["h3"], cal["h4"], cal["h5"], cal["h6"],
                     cal["h7"], cal["t1"], cal["gh2"], cal["gh1"], cal["gh3"])
    regs[0x00] = cal["res_heat_val"] & 0xFF
    regs[0x02] = (regs[0x02] & 0xCF) | (cal["res_heat_range"] << 4)
    regs[0x04] = (regs[0x04] & 0x0F) | ((cal["range_sw_err"] << 4) & 0xF0)


# ---- Bosch integer compensation ([API], non-FPU build), used to encode values ---------------
def int_t_fine(c, adc_t):
    var1 = (adc_t >> 3) - (c["t1"] << 1)
    var2 = (var1 * c["t2"]) >> 11
    var3 = ((var1 >> 1) * (var1 >> 1)) >> 12
    var3 = (var3 * (c["t3"] << 4)) >> 14
    return var2 + var3


def int_pressure_pa(c, adc_p, t_fine):
    var1 = (t_fine >> 1) - 64000
    var2 = ((((var1 >> 2) * (var1 >> 2)) >> 11) * c["p6"]) >> 2
    var2 = var2 + ((var1 * c["p5"]) << 1)
    var2 = (var2 >> 2) + (c["p4"] << 16)
    var1 = (((((var1 >> 2) * (var1 >> 2)) >> 13) * (c["p3"] << 5)) >> 3) + ((c["p2"] * var1) >> 1)
    var1 = var1 >> 18
    var1 = ((32768 + var1) * c["p1"]) >> 15
    p = (1048576 - adc_p - (var2 >> 12)) * 3125
    p = _cdiv(p, var1) << 1 if p >= 0x40000000 else _cdiv(p << 1, var1)
    var1 = (c["p9"] * (((p >> 3) * (p >> 3)) >> 13)) >> 12
    var2 = ((p >> 2) * c["p8"]) >> 13
    var3 = ((p >> 8) * (p >> 8) * (p >> 8) * c["p10"]) >> 17
    return p + ((var1 + var2 + var3 + (c["p7"] << 7)) >> 4)


def int_humidity_milli(c, adc_h, t_fine):
    ts = ((t_fine * 5) + 128) >> 8
    var1 = adc_h - c["h1"] * 16 - (_cdiv(ts * c["h3"], 100) >> 1)
    var2 = (c["h2"] * (_cdiv(ts * c["h4"], 100) + _cdiv((ts * _cdiv(ts * c["h5"], 100)) >> 6, 100)
                       + (1 << 14))) >> 10
    var3 = var1 * var2
    var4 = ((c["h6"] << 7) + _cdiv(ts * c["h7"], 100)) >> 4
    var5 = ((var3 >> 14) * (var3 >> 14)) >> 10
    var6 = (var4 * var5) >> 1
    rh = (((var3 + var6) >> 10) * 1000) >> 12
    return 100000 if rh > 100000 else (0 if rh < 0 else rh)


def int_gas_ohm(c, adc_gas, gas_range):
    var1 = ((1340 + 5 * c["range_sw_err"]) * _GAS_LUT1[gas_range]) >> 16
    var2 = (adc_gas << 15) - 16777216 + var1
    var3 = (_GAS_LUT2[gas_range] * var1) >> 9
    return _cdiv(var3 + (var2 >> 1), var2)


def _bisect(f, target, lo, hi, increasing):
    """Smallest x in [lo, hi] with f(x) >= target (increasing) or f(x) <= target (decreasing),
    then the neighbour closer to target."""
    a, b = lo, hi
    while a < b:
        m = (a + b) >> 1
        v = f(m)
        if (v >= target) if increasing else (v <= target):
            b = m
        else:
            a = m + 1
    if a > lo and abs(f(a - 1) - target) < abs(f(a) - target):
        return a - 1
    return a


def _magnus(temp_c):
    # WMO-No. 8 (2008) Annex 4.B exponent; only ratios are used.
    return 17.62 * temp_c / (243.12 + temp_c)


class VirtualBME680(world.VirtualChip):
    """BME680 register model; spec: name, addr (0x77), env, self_heating_c, calib_seed, chip_id,
    heater_min_ms (gas wait below which heat_stab stays 0, default 20), lamp_heating_c (the
    enclosure's extra warmth with the lamp at full, settled; default 0), lamp_watts ({GPIO:
    full-power watts} of the lamp's PWM channels), lamp_tau_s (warm-up time constant, 1200)."""

    def __init__(self, spec, sim_dir):
        self.name = spec.get("name", "bme680")
        self.addr = spec.get("addr", 0x77)
        self.chip_id = spec.get("chip_id", 0x61)
        self.self_heating_c = spec.get("self_heating_c", 3.5)
        # The lamp warms the enclosure (hardware/calibration.md): a first-order lag of the lamp's
        # power fraction, sampled at each measurement (the firmware integrates every second).
        self.lamp_heating_c = float(spec.get("lamp_heating_c", 0.0))
        self.lamp_tau_s = max(1.0, float(spec.get("lamp_tau_s", 1200.0)))
        self.lamp_watts = {int(k): float(v) for k, v in spec.get("lamp_watts", {}).items()}
        self.lamp_heat = 0.0
        self._heat_us = None
        self.heater_min_ms = spec.get("heater_min_ms", 20)
        seed = spec.get("calib_seed")
        self.cal = DEFAULT_CAL if seed is None else random_calibration(seed)
        self._env = None
        env = spec.get("env")
        if env:
            self._env = open(sim_dir.rstrip("/") + "/" + env, "rb")
            self._env.seek(0, 2)
            self._env_rows = self._env.tell() // _ROW
            if self._env_rows < 1:
                raise ValueError("%s: env file %s has no rows" % (self.name, env))
            self._row_i = -1
            self._row_a = self._row_b = None
        self.regs = bytearray(256)
        pack_calibration(self.cal, self.regs)
        self.measurements = 0
        self.resets = 0
        self._reset()

    # ---- registers --------------------------------------------------------------------------
    def _reset(self):
        r = self.regs
        for a in range(0x1D, 0x2C):
            r[a] = 0
        for a in range(0x50, 0x76):  # idac/res_heat/gas_wait/ctrl registers power up as 0
            r[a] = 0
        r[0x1F] = r[0x22] = 0x80  # skipped-measurement values 0x80000 / 0x8000 [DS]
        r[0x25] = 0x80
        r[0xD0] = self.chip_id
        self._start_us = -1
        self._end_us = -1
        self._gas_us = 0

    def read(self, reg, buf):
        self._update()
        r = self.regs
        for i in range(len(buf)):
            buf[i] = r[(reg + i) & 0xFF]

    def write(self, reg, data):
        # [DS] 6.2.1: a burst write sends (register, data) pairs after the first register.
        if len(data) == 0:
            return
        self._update()
        self._write_reg(reg, data[0])
        for i in range(1, len(data) - 1, 2):
            self._write_reg(data[i], data[i + 1])

    def _write_reg(self, reg, value):
        if reg == 0xE0:
            if value == 0xB6:
                self.resets += 1
                self._reset()
            return
        if 0x50 <= reg <= 0x75 and reg != 0x73:
            self.regs[reg] = value
            if reg == 0x74 and value & 0x03:
                self._start()
            elif reg == 0x74 and self._end_us >= 0:
                self._end_us = -1  # back to sleep: the running measurement is abandoned
                self.regs[0x1D] &= 0x8F

    # ---- measurement ------------------------------------------------------------------------
    def _config(self):
        r = self.regs
        nb = r[0x71] & 0x0F
        run_gas = bool(r[0x71] & 0x10) and nb <= 9
        heat_on = not r[0x70] & 0x08
        wait = r[0x64 + nb] if nb <= 9 else 0
        return r[0x74] >> 5, (r[0x74] >> 2) & 7, r[0x72] & 7, nb, run_gas, heat_on, wait

    def _start(self):
        if self._end_us >= 0:
            return  # already measuring: the chip ignores a second trigger
        os_t, os_p, os_h, nb, run_gas, heat_on, wait = self._config()
        cyc = _OS[min(os_t, 5)] + _OS[min(os_p, 5)] + _OS[min(os_h, 5)]
        dur_us = cyc * 1963 + 477 * 4 + 1000
        self._gas_us = 0
        if run_gas:
            self._gas_us = ((wait & 0x3F) << (2 * (wait >> 6))) * 1000 + 477 * 5
        self._start_us = time.now_us
        self._end_us = time.now_us + dur_us + self._gas_us
        r = self.regs
        r[0x1D] = 0x20 | nb  # measuring, new_data cleared

    def _update(self):
        if self._end_us < 0:
            return
        now = time.now_us
        r = self.regs
        if now < self._end_us:
            gas_phase = self._gas_us and now >= self._end_us - self._gas_us
            r[0x1D] = (r[0x1D] & 0x0F) | 0x20 | (0x40 if gas_phase else 0)
            return
        self._complete(self._end_us)

    def _lamp_heat(self, at_us):
        total = sum(self.lamp_watts.values())
        if not total:
            return 0.0
        power = 0.0
        for gpio, watts in self.lamp_watts.items():
            sink = world.pwm_sinks.get(gpio)
            if sink is not None and hasattr(sink, "level"):
                power += watts * sink.level()
        if self._heat_us is not None and at_us > self._heat_us:
            dt_s = (at_us - self._heat_us) / 1000000
            step = 1 - math.exp(-dt_s / self.lamp_tau_s)
            self.lamp_heat += (power / total - self.lamp_heat) * step
        self._heat_us = at_us
        return self.lamp_heat

    def _complete(self, at_us):
        os_t, os_p, os_h, nb, run_gas, heat_on, wait = self._config()
        r = self.regs
        room_c, rh_room, p_hpa, gas_ohm = self.room(at_us)
        chip_c = room_c + self.self_heating_c + self.lamp_heating_c * self._lamp_heat(at_us)
        rh_chip = rh_room * math.exp(_magnus(room_c) - _magnus(chip_c))
        c = self.cal
        adc_t = _bisect(lambda a: int_t_fine(c, a), chip_c * 5120.0, 0, 0xFFFFF, c["t2"] > 0)
        t_fine = int_t_fine(c, adc_t)
        if not os_t:
            adc_t = 0x80000  # skipped [DS]
        adc_p = 0x80000
        if os_p:
            adc_p = _bisect(lambda a: int_pressure_pa(c, a, t_fine), p_hpa * 100.0, 0, 0xFFFFF,
                            False)
        adc_h = 0x8000
        if os_h:
            adc_h = _bisect(lambda a: int_humidity_milli(c, a, t_fine), rh_chip * 1000.0, 0,
                            0xFFFF, True)
        r[0x1F], r[0x20], r[0x21] = adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4
        r[0x22], r[0x23], r[0x24] = adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4
        r[0x25], r[0x26] = adc_h >> 8, adc_h & 0xFF
        lsb = 0
        adc_g = 0
        if run_gas:
            rng = int(math.log(8000000.0 / max(gas_ohm, 1.0)) / math.log(2.0) + 0.5)
            rng = min(15, max(0, rng))
            adc_g = _bisect(lambda a: int_gas_ohm(c, a, rng), gas_ohm, 0, 1023, False)
            stable = heat_on and r[0x5A + nb] != 0 and (self._gas_us // 1000) >= self.heater_min_ms
            lsb = 0x20 | (0x10 if stable else 0) | rng
        r[0x2A] = adc_g >> 2
        r[0x2B] = ((adc_g & 3) << 6) | lsb
        r[0x1D] = 0x80 | nb
        r[0x1E] = (r[0x1E] + 1) & 0xFF  # sub_meas_index
        r[0x74] &= 0xFC  # forced mode returns to sleep
        self._end_us = -1
        self.measurements += 1

    # ---- the room ---------------------------------------------------------------------------
    def room(self, at_us):
        """(temp_c, rh_pct, pressure_hpa, gas_ohm) of the room at virtual time at_us."""
        if self._env is None:
            return _DEFAULT_ENV
        t_s = at_us / 1000000.0
        if self._row_a is None or t_s < self._row_a[0]:
            self._seek(0)
        while self._row_b is not None and t_s >= self._row_b[0] and \
                self._row_i + 1 < self._env_rows:
            self._seek(self._row_i + 1)
        a, b = self._row_a, self._row_b
        if b is None or t_s <= a[0]:
            return a[1], a[2], a[3], a[4]
        f = (t_s - a[0]) / (b[0] - a[0]) if b[0] > a[0] else 0.0
        if f > 1.0:
            f = 1.0
        return (a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2]), a[3] + f * (b[3] - a[3]),
                a[4] + f * (b[4] - a[4]))

    def _seek(self, i):
        """Load rows i and i+1 (row_b None at the last row)."""
        f = self._env
        f.seek(i * _ROW)
        data = f.read(2 * _ROW)
        self._row_i = i
        self._row_a = struct.unpack_from("<7f", data, 0)
        self._row_b = struct.unpack_from("<7f", data, _ROW) if len(data) >= 2 * _ROW else None

    def finish(self):
        if self._env is not None:
            self._env.close()
            self._env = None

    def stats(self):
        return {self.name + "_measurements": self.measurements}
