# BME680 driver: calibration parsing, float compensation vs Bosch's integer path and a published
# real-chip vector, heater/timing encodings, self-heating RH correction, driver on a fake bus.
import math
import struct

from floateps import close
from nsdev.drivers import bme680

RUN_UNDER_MICROPYTHON = True

# Calibration of a real BME680 and what Bosch-API code printed for one reading of it, float and
# integer builds (github.com/wrclark/bme680 README): 22.7519 degC / 2275; 99711.8 Pa / 99708 Pa;
# 62.3145 %RH / 62289. The raw ADC values were not published; these reproduce all six outputs.
REAL = {
    "t1": 26203, "t2": 26519, "t3": 3, "p1": 35008, "p2": -10284, "p3": 88, "p4": 9692,
    "p5": -202, "p6": 30, "p7": 24, "p8": -516, "p9": -3469, "p10": 30, "h1": 794, "h2": 1007,
    "h3": 0, "h4": 45, "h5": 20, "h6": 120, "h7": -100, "gh1": -20, "gh2": -10000, "gh3": 18,
    "res_heat_range": 1, "res_heat_val": 40, "range_sw_err": 0,
}
REAL_ADC_T, REAL_ADC_P, REAL_ADC_H = 491209, 332556, 24347
ORDER = ("t1", "t2", "t3", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10",
         "h1", "h2", "h3", "h4", "h5", "h6", "h7", "gh1", "gh2", "gh3", "res_heat_range",
         "res_heat_val", "range_sw_err")


def pack_regs(c, regs=None):
    """Register image (256 bytes) holding calibration dict c, laid out per the datasheet."""
    r = regs if regs is not None else bytearray(256)
    struct.pack_into("<hb", r, 0x8A, c["t2"], c["t3"])
    struct.pack_into("<Hhb", r, 0x8E, c["p1"], c["p2"], c["p3"])
    struct.pack_into("<hhbb", r, 0x94, c["p4"], c["p5"], c["p7"], c["p6"])
    struct.pack_into("<hhB", r, 0x9C, c["p8"], c["p9"], c["p10"])
    r[0xE1] = c["h2"] >> 4
    r[0xE2] = ((c["h2"] & 15) << 4) | (c["h1"] & 15)
    r[0xE3] = c["h1"] >> 4
    struct.pack_into("<bbbBbHhbb", r, 0xE4, c["h3"], c["h4"], c["h5"], c["h6"], c["h7"],
                     c["t1"], c["gh2"], c["gh1"], c["gh3"])
    r[0x00] = c["res_heat_val"] & 0xFF
    r[0x02] = 0x40 | (c["res_heat_range"] << 4)  # bits outside 0x30 must be ignored
    r[0x04] = ((c["range_sw_err"] & 15) << 4) | 0x05
    return r


def cal_of(c):
    r = pack_regs(c)
    return bme680.parse_calibration(r[0x8A:0xA1], r[0xE1:0xEF], r[0x00:0x05])


# ---- Bosch integer compensation (BME68x_SensorAPI non-FPU build), an independent reference ----
def _cdiv(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def int_temp(c, adc):
    v1 = (adc >> 3) - (c["t1"] << 1)
    v2 = (v1 * c["t2"]) >> 11
    v3 = ((((v1 >> 1) * (v1 >> 1)) >> 12) * (c["t3"] << 4)) >> 14
    t_fine = v2 + v3
    return (t_fine * 5 + 128) >> 8, t_fine


def int_press(c, adc, t_fine):
    v1 = (t_fine >> 1) - 64000
    v2 = ((((v1 >> 2) * (v1 >> 2)) >> 11) * c["p6"]) >> 2
    v2 = ((v2 + ((v1 * c["p5"]) << 1)) >> 2) + (c["p4"] << 16)
    v1 = (((((v1 >> 2) * (v1 >> 2)) >> 13) * (c["p3"] << 5)) >> 3) + ((c["p2"] * v1) >> 1)
    v1 = ((32768 + (v1 >> 18)) * c["p1"]) >> 15
    p = (1048576 - adc - (v2 >> 12)) * 3125
    p = _cdiv(p, v1) << 1 if p >= 0x40000000 else _cdiv(p << 1, v1)
    v1 = (c["p9"] * (((p >> 3) * (p >> 3)) >> 13)) >> 12
    v2 = ((p >> 2) * c["p8"]) >> 13
    v3 = ((p >> 8) * (p >> 8) * (p >> 8) * c["p10"]) >> 17
    return p + ((v1 + v2 + v3 + (c["p7"] << 7)) >> 4)


def int_hum(c, adc, t_fine):
    ts = (t_fine * 5 + 128) >> 8
    v1 = adc - c["h1"] * 16 - (_cdiv(ts * c["h3"], 100) >> 1)
    v2 = (c["h2"] * (_cdiv(ts * c["h4"], 100) + _cdiv((ts * _cdiv(ts * c["h5"], 100)) >> 6, 100)
                     + 16384)) >> 10
    v3 = v1 * v2
    v4 = ((c["h6"] << 7) + _cdiv(ts * c["h7"], 100)) >> 4
    v5 = ((v3 >> 14) * (v3 >> 14)) >> 10
    h = (((v3 + ((v4 * v5) >> 1)) >> 10) * 1000) >> 12
    return max(0, min(100000, h))


def int_res_heat(c, temp, amb):
    v1 = _cdiv(amb * c["gh3"], 1000) * 256
    v2 = (c["gh1"] + 784) * _cdiv(_cdiv((c["gh2"] + 154009) * temp * 5, 100) + 3276800, 10)
    v4 = _cdiv(v1 + _cdiv(v2, 2), c["res_heat_range"] + 4)
    v5 = 131 * c["res_heat_val"] + 65536
    x100 = (_cdiv(v4, v5) - 250) * 34
    return _cdiv(x100 + 50, 100)


# ---- calibration parsing ---------------------------------------------------------------------
def test_parse_calibration_layout_and_signs():
    c = dict(REAL)
    c.update(h1=0x31A, h2=0x3EF, res_heat_val=-7, range_sw_err=-3, p7=-5, p6=12, gh1=-20)
    cal = cal_of(c)
    for i, k in enumerate(ORDER):
        assert cal[i] == c[k], (k, cal[i], c[k])
    # 0xE2 carries par_h1 in its LOW nibble and par_h2 in its HIGH nibble.
    r = pack_regs(c)
    assert r[0xE2] == 0xFA


def test_parse_calibration_rejects_blank_chip():
    for fill in (0x00, 0xFF):
        try:
            bme680.parse_calibration(bytes([fill]) * 23, bytes([fill]) * 14, bytes([fill]) * 5)
        except OSError as e:
            assert "calibration" in str(e)
        else:
            raise AssertionError("blank calibration accepted")


def test_parse_calibration_short_block():
    try:
        bme680.parse_calibration(bytes(22), bytes(14), bytes(5))
    except ValueError:
        return
    raise AssertionError("short block accepted")


# ---- compensation ----------------------------------------------------------------------------
def test_published_real_chip_vector_float_and_integer():
    cal = cal_of(REAL)
    temp_c, t_fine = bme680.compensate_temperature(cal, REAL_ADC_T)
    assert abs(temp_c - 22.7519) < 0.0005
    assert abs(bme680.compensate_pressure(cal, REAL_ADC_P, t_fine) - 99711.8) < 0.2
    assert abs(bme680.compensate_humidity(cal, REAL_ADC_H, temp_c) - 62.3145) < 0.0005
    t100, ti = int_temp(REAL, REAL_ADC_T)
    assert t100 == 2275
    assert int_press(REAL, REAL_ADC_P, ti) == 99708
    assert int_hum(REAL, REAL_ADC_H, ti) == 62289


def test_float_agrees_with_bosch_integer_path():
    cal = cal_of(REAL)
    worst = [0.0, 0.0, 0.0]
    for adc_t in range(380000, 600001, 20000):  # about -12..+56 degC
        temp_c, t_fine = bme680.compensate_temperature(cal, adc_t)
        t100, ti = int_temp(REAL, adc_t)
        worst[0] = max(worst[0], abs(temp_c * 100 - t100))
        for adc_p in range(200000, 500001, 50000):
            pa = bme680.compensate_pressure(cal, adc_p, t_fine)
            worst[1] = max(worst[1], abs(pa - int_press(REAL, adc_p, ti)))
        for adc_h in range(15000, 40001, 2500):
            rh = bme680.compensate_humidity(cal, adc_h, temp_c)
            worst[2] = max(worst[2], abs(rh * 1000 - int_hum(REAL, adc_h, ti)))
    assert worst[0] <= 1.0, worst  # 0.01 degC
    assert worst[1] <= 8.0, worst  # Pa (integer path truncates at several steps)
    assert worst[2] <= 50.0, worst  # 0.05 %RH


def test_temperature_monotonic_and_t_fine_scale():
    cal = cal_of(REAL)
    prev = -1e9
    for adc_t in range(300000, 700000, 7919):
        temp_c, t_fine = bme680.compensate_temperature(cal, adc_t)
        assert temp_c > prev
        assert abs(t_fine / 5120.0 - temp_c) < 1e-9
        prev = temp_c


def test_pressure_degenerate_calibration_returns_zero():
    cal = list(cal_of(REAL))
    cal[bme680.P1] = 0
    assert bme680.compensate_pressure(cal, 300000, 100000.0) == 0.0


def test_humidity_is_clamped():
    cal = cal_of(REAL)
    assert bme680.compensate_humidity(cal, 0, 20.0) == 0.0
    assert bme680.compensate_humidity(cal, 65535, 20.0) == 100.0


def test_gas_resistance_range_scaling():
    # adc 512 is the midpoint: R = 1 / (k2 * 125e-9 * 2**range) exactly.
    # Eight float operations, each within EPS/2 relative (float32 on the twin and the ESP32).
    assert close(bme680.compensate_gas(0, 512, 0), 8000000.0)
    assert close(bme680.compensate_gas(0, 512, 4), 500000.0 / 1.001)
    assert close(bme680.compensate_gas(0, 512, 15), 8000000.0 / 32768)
    # Higher ADC -> lower resistance; range_sw_err widens the span.
    assert bme680.compensate_gas(0, 800, 6) < bme680.compensate_gas(0, 300, 6)
    assert bme680.compensate_gas(4, 800, 6) > bme680.compensate_gas(0, 800, 6)


def test_heater_code_matches_bosch_integer_calc():
    for gh1, gh2, gh3, rng, val in ((-20, -10000, 18, 1, 40), (-35, -9000, 12, 0, -20),
                                     (10, -12000, 20, 3, 60), (-5, -5000, 5, 2, 0)):
        c = dict(REAL, gh1=gh1, gh2=gh2, gh3=gh3, res_heat_range=rng, res_heat_val=val)
        cal = cal_of(c)
        for target in (200, 320, 400, 450):
            code = bme680.heater_res_code(cal, target, 25)
            ref = int_res_heat(c, min(target, 400), 25)
            assert abs(code - ref) <= 1, (c, target, code, ref)
            assert 0 <= code <= 255


def test_gas_wait_encoding_datasheet_example():
    assert bme680.gas_wait_ms(0x59) == 100  # 0x59 = 0b01_011001: 25 ms x 4 (DS encoding)
    assert bme680.gas_wait_code(100) == 0x59
    assert bme680.gas_wait_code(150) == 0x65 and bme680.gas_wait_ms(0x65) == 148
    assert bme680.gas_wait_code(63) == 63
    assert bme680.gas_wait_code(5000) == 0xFF and bme680.gas_wait_ms(0xFF) == 4032
    for ms in range(0, 4100, 7):
        got = bme680.gas_wait_ms(bme680.gas_wait_code(ms))
        assert got <= max(ms, 0) and (ms >= 4032 or got > ms * 0.9 - 4), (ms, got)


def test_measurement_duration():
    # 8x T, 4x P, 2x H: 14 cycles x 1963 us + 4 x 477 + 5 x 477 + 1000 us.
    assert bme680.measurement_us(4, 3, 2) == 14 * 1963 + 9 * 477 + 1000
    assert bme680.measurement_us(1, 0, 0, gas=False) == 1963 + 4 * 477 + 1000


def test_rh_correction_keeps_vapour_pressure():
    assert abs(bme680.rh_at_temperature(45.0, 21.0, 21.0) - 45.0) < 1e-9
    for rh, t_chip, t_room in ((36.4, 24.5, 21.0), (60.0, 30.0, 26.0), (20.0, 5.0, 1.5)):
        out = bme680.rh_at_temperature(rh, t_chip, t_room)
        e_chip = rh * bme680.saturation_hpa(t_chip)
        e_room = out * bme680.saturation_hpa(t_room)
        assert abs(e_chip - e_room) < 1e-6 * e_chip
        assert out > rh  # cooler air, same water: higher RH
    assert bme680.rh_at_temperature(90.0, 25.0, 20.0) == 100.0
    # Reference saturation pressure over water at 20 degC is 23.39 hPa; Magnus with the WMO
    # coefficients stays within about 0.35 % of it between -45 and 60 degC.
    assert abs(bme680.saturation_hpa(20.0) - 23.39) < 0.0035 * 23.39


# ---- driver on a fake register bus -----------------------------------------------------------
class FakeBus:
    """Register map behind readfrom_mem_into/writeto_mem; forced writes complete when told."""

    def __init__(self, regs, addr=0x77):
        self.regs = regs
        self.addr = addr
        self.fail = 0
        self.writes = []

    def _check(self, addr):
        if addr != self.addr or self.fail:
            self.fail = max(0, self.fail - 1)
            raise OSError(19)

    def readfrom_mem_into(self, addr, reg, buf):
        self._check(addr)
        for i in range(len(buf)):
            buf[i] = self.regs[reg + i]

    def writeto_mem(self, addr, reg, data):
        self._check(addr)
        self.writes.append((reg, data[0]))
        self.regs[reg] = data[0]


def _patch_sleep():
    calls = []
    bme680.sleep_ms = calls.append
    return calls


def _chip(adc_t=REAL_ADC_T, adc_p=REAL_ADC_P, adc_h=REAL_ADC_H, gas=(400, 5, 0x30)):
    r = pack_regs(REAL)
    r[0xD0] = 0x61
    r[0x1F], r[0x20], r[0x21] = adc_p >> 12, (adc_p >> 4) & 255, (adc_p & 15) << 4
    r[0x22], r[0x23], r[0x24] = adc_t >> 12, (adc_t >> 4) & 255, (adc_t & 15) << 4
    r[0x25], r[0x26] = adc_h >> 8, adc_h & 255
    adc_g, rng, bits = gas
    r[0x2A], r[0x2B] = adc_g >> 2, ((adc_g & 3) << 6) | bits | rng
    return r


def test_driver_reads_and_compensates():
    sleeps = _patch_sleep()
    regs = _chip()
    bus = FakeBus(regs)
    dev = bme680.BME680(bus, temp_offset_c=-2.0)
    assert sleeps == [bme680.RESET_MS]
    assert (0xE0, 0xB6) in bus.writes
    assert regs[0x72] == 2 and regs[0x71] == 0x10 and regs[0x64] == 0x65 and regs[0x70] == 0
    wait = dev.start()
    assert wait == (bme680.measurement_us(4, 3, 2) + 999) // 1000 + 148
    assert regs[0x74] == (4 << 5) | (3 << 2) | 1
    regs[0x1D] = 0x20  # measuring
    assert not dev.ready() and not dev.read() and dev.temp_c is None
    regs[0x1D] = 0x80
    assert dev.ready() and dev.read()
    cal = dev.cal
    chip_c, t_fine = bme680.compensate_temperature(cal, REAL_ADC_T)
    assert abs(dev.chip_temp_c - 22.7519) < 0.0005
    assert abs(dev.temp_c - (chip_c - 2.0)) < 1e-9
    assert abs(dev.pressure_hpa - 997.118) < 0.002
    assert abs(dev.chip_rh_pct - 62.3145) < 0.0005
    assert abs(dev.rh_pct - bme680.rh_at_temperature(dev.chip_rh_pct, chip_c, chip_c - 2)) < 1e-9
    assert dev.gas_status == "ok"
    assert abs(dev.gas_ohm - bme680.compensate_gas(0, 400, 5)) < 1e-6
    assert dev.measurements == 1
    # The heater code follows the measured temperature at the next start().
    dev.start()
    assert regs[0x5A] == bme680.heater_res_code(cal, 320, dev.chip_temp_c)


def test_driver_gas_flags_and_heater_off():
    _patch_sleep()
    regs = _chip(gas=(400, 5, 0x20))  # valid, heater not stable
    dev = bme680.BME680(FakeBus(regs))
    regs[0x1D] = 0x80
    assert dev.read() and dev.gas_ohm is None and dev.gas_status == "heater unstable"
    regs[0x2B] &= 0xCF
    assert dev.read() and dev.gas_status == "invalid"
    dev = bme680.BME680(FakeBus(regs), heater_c=None)
    assert regs[0x70] == 0x08 and regs[0x71] == 0
    assert dev.wait_ms() == (bme680.measurement_us(4, 3, 2, gas=False) + 999) // 1000
    regs[0x1D] = 0x80
    assert dev.read() and dev.gas_status == "off" and dev.gas_ohm is None


def test_driver_chip_id_and_nack_errors():
    _patch_sleep()
    regs = _chip()
    regs[0xD0] = 0x60  # a BME280
    try:
        bme680.BME680(FakeBus(regs))
    except OSError as e:
        assert "chip id 0x60" in str(e)
    else:
        raise AssertionError("wrong chip accepted")
    regs[0xD0] = 0x61
    bus = FakeBus(regs)
    bus.fail = 1
    try:
        bme680.BME680(bus)
    except OSError as e:
        assert e.args[0] == 19 and "not responding" in str(e)
    else:
        raise AssertionError("NACK not reported")
    dev = bme680.BME680(FakeBus(regs))
    dev.i2c.fail = 1
    try:
        dev.read()
    except OSError as e:
        assert e.args[0] == 19
    else:
        raise AssertionError("NACK on read not reported")


def test_bme688_variant_keeps_tph_and_disables_gas():
    _patch_sleep()
    regs = _chip()
    regs[0xF0] = 0x01
    dev = bme680.BME680(FakeBus(regs))
    assert dev.variant == 1 and regs[0x71] == 0 and regs[0x70] == 0x08
    regs[0x1D] = 0x80
    assert dev.read() and dev.temp_c is not None and dev.gas_ohm is None
    assert dev.gas_status == "unsupported variant"


def test_driver_rejects_bad_settings():
    _patch_sleep()
    regs = _chip()
    for kw in ({"temp_os": 3}, {"temp_os": 0}, {"filter_size": 2}, {"heater_c": 500}):
        try:
            bme680.BME680(FakeBus(regs), **kw)
        except ValueError:
            continue
        raise AssertionError("accepted " + repr(kw))


def test_skipped_pressure_and_humidity():
    _patch_sleep()
    regs = _chip(adc_p=0x80000, adc_h=0x8000)
    dev = bme680.BME680(FakeBus(regs), press_os=0, hum_os=0)
    regs[0x1D] = 0x80
    assert dev.read()
    assert dev.pressure_hpa is None and dev.rh_pct is None and dev.temp_c is not None
    assert not math.isnan(dev.temp_c)
