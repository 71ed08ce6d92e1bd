# BME680 temperature/pressure/humidity/gas sensor: forced-mode, non-blocking driver and pure maths.
#
# Sources (facts only; the code is our own):
#   [DS]  Bosch BST-BME680-DS001 datasheet: register map and bit fields, forced-mode TPHG cycle,
#         gas_wait_x encoding, status bits (sec. 5.3.5: new_data, gas_measuring, measuring,
#         gas_valid_r, heat_stab_r).
#   [API] Bosch BME68x_SensorAPI (bme68x.c, bme68x_defs.h, v4.4.x): calibration byte layout
#         (get_calib_data), the floating-point compensation (calc_temperature, calc_pressure,
#         calc_humidity, calc_gas_resistance_low, calc_res_heat), calc_gas_wait and the forced-
#         mode duration (bme68x_get_meas_dur).
#   [WMO] WMO-No. 8 Guide to Instruments and Methods of Observation (2008), Annex 4.B: Magnus
#         saturation vapour pressure over water, e_w = 6.112 hPa * exp(17.62 t / (243.12 + t)).
#
# Use from asyncio (the driver never waits itself):
#     wait_ms = bme.start(); await asyncio.sleep_ms(wait_ms)
#     if bme.ready() and bme.read(): use bme.temp_c, bme.pressure_hpa, bme.rh_pct, bme.gas_ohm
import math
import struct

from nsdev.compat import const, sleep_ms

CHIP_ID = const(0x61)

_REG_RES_HEAT_VAL = const(0x00)  # calibration block 3: 0x00..0x04 (res_heat_val/range, sw_err)
_REG_MEAS_STATUS = const(0x1D)  # meas_status_0; the data field follows up to 0x2B
_REG_RES_HEAT_0 = const(0x5A)
_REG_GAS_WAIT_0 = const(0x64)
_REG_CTRL_GAS_0 = const(0x70)
_REG_CTRL_GAS_1 = const(0x71)
_REG_CTRL_HUM = const(0x72)
_REG_CTRL_MEAS = const(0x74)
_REG_CONFIG = const(0x75)
_REG_COEFF_1 = const(0x8A)  # 23 bytes 0x8A..0xA0
_REG_CHIP_ID = const(0xD0)
_REG_RESET = const(0xE0)
_REG_COEFF_2 = const(0xE1)  # 14 bytes 0xE1..0xEE
_REG_VARIANT = const(0xF0)  # [API] variant_id: 0 = BME680 (gas low), 1 = BME688 (gas high)
_RESET_CMD = const(0xB6)

_FIELD_LEN = const(15)  # 0x1D..0x2B
_NEW_DATA = const(0x80)
_GAS_MEASURING = const(0x40)
_MEASURING = const(0x20)
_GAS_VALID = const(0x20)  # in gas_r_lsb (0x2B)
_HEAT_STAB = const(0x10)
_HEAT_OFF = const(0x08)  # ctrl_gas_0 bit 3
_RUN_GAS = const(0x10)  # ctrl_gas_1 bit 4 (BME680)
_MODE_FORCED = const(0x01)
_SKIPPED_ADC = const(0x80000)  # [DS] output of a skipped (oversampling 0) measurement

RESET_MS = const(10)  # [API] BME68X_PERIOD_RESET (datasheet start-up time is 2 ms)

# Calibration tuple indices (see parse_calibration).
T1, T2, T3 = 0, 1, 2
P1, P2, P3, P4, P5, P6, P7, P8, P9, P10 = 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
H1, H2, H3, H4, H5, H6, H7 = 13, 14, 15, 16, 17, 18, 19
GH1, GH2, GH3, RES_HEAT_RANGE, RES_HEAT_VAL, RANGE_SW_ERR = 20, 21, 22, 23, 24, 25

OVERSAMPLING = (0, 1, 2, 4, 8, 16)  # osrs code -> number of samples [DS]
FILTER_SIZES = (0, 1, 3, 7, 15, 31, 63, 127)  # filter code -> IIR coefficient [DS]

# [API] calc_gas_resistance_low: range-dependent corrections in percent, per gas_range.
_GAS_K1 = (0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, -0.8, 0.0, 0.0, -0.2, -0.5, 0.0, -1.0, 0.0, 0.0)
_GAS_K2 = (0.0, 0.0, 0.0, 0.0, 0.1, 0.7, 0.0, -0.8, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

# Self-heating: the BRIEF measures the BME680 3-4 degC above the room next to the ESP32 and its
# regulator. Default correction: -3.5 degC (tune per enclosure; 0 disables).
DEFAULT_TEMP_OFFSET_C = -3.5


def parse_calibration(c1, c2, c3):
    """Calibration tuple from the 23 bytes at 0x8A, 14 bytes at 0xE1 and 5 bytes at 0x00.

    Layout as in [API] get_calib_data; par_h1 takes the LOW nibble of 0xE2, par_h2 the HIGH one;
    res_heat_val and range_sw_err are signed. Raises OSError if the block is blank (0x00/0xFF).
    """
    if len(c1) < 23 or len(c2) < 14 or len(c3) < 5:
        raise ValueError("BME680 calibration blocks too short")
    t2, t3 = struct.unpack_from("<hb", c1, 0)
    p1, p2, p3 = struct.unpack_from("<Hhb", c1, 4)
    p4, p5, p7, p6 = struct.unpack_from("<hhbb", c1, 10)
    p8, p9, p10 = struct.unpack_from("<hhB", c1, 18)
    h2_msb, h12_lsb, h1_msb, h3, h4, h5, h6, h7, t1, gh2, gh1, gh3 = struct.unpack_from(
        "<BBBbbbBbHhbb", c2, 0
    )
    h1 = (h1_msb << 4) | (h12_lsb & 0x0F)
    h2 = (h2_msb << 4) | (h12_lsb >> 4)
    res_heat_val = c3[0] - 256 if c3[0] > 127 else c3[0]
    res_heat_range = (c3[2] & 0x30) >> 4
    sw = c3[4] & 0xF0
    range_sw_err = (sw - 256 if sw > 127 else sw) // 16
    if t1 in (0, 0xFFFF) or p1 in (0, 0xFFFF) or t2 in (0, -1):
        raise OSError("BME680 calibration data blank (t1=%d p1=%d)" % (t1, p1))
    return (t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10,
            h1, h2, h3, h4, h5, h6, h7, gh1, gh2, gh3, res_heat_range, res_heat_val, range_sw_err)


def compensate_temperature(cal, adc_t):
    """[API] float calc_temperature: raw 20-bit ADC -> (temp_c, t_fine)."""
    d1 = adc_t / 16384.0 - cal[T1] / 1024.0
    d2 = adc_t / 131072.0 - cal[T1] / 8192.0
    t_fine = d1 * cal[T2] + d2 * d2 * (cal[T3] * 16.0)
    return t_fine / 5120.0, t_fine


def compensate_pressure(cal, adc_p, t_fine):
    """[API] float calc_pressure: raw 20-bit ADC -> pressure in Pa (0.0 for a degenerate cal)."""
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * (cal[P6] / 131072.0)
    var2 = var2 + var1 * cal[P5] * 2.0
    var2 = var2 / 4.0 + cal[P4] * 65536.0
    var1 = (cal[P3] * var1 * var1 / 16384.0 + cal[P2] * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * cal[P1]
    if int(var1) == 0:
        return 0.0
    p = (1048576.0 - adc_p - var2 / 4096.0) * 6250.0 / var1
    var1 = cal[P9] * p * p / 2147483648.0
    var2 = p * (cal[P8] / 32768.0)
    q = p / 256.0
    var3 = q * q * q * (cal[P10] / 131072.0)
    return p + (var1 + var2 + var3 + cal[P7] * 128.0) / 16.0


def compensate_humidity(cal, adc_h, temp_c):
    """[API] float calc_humidity: raw 16-bit ADC and compensated temp_c -> %RH in [0, 100]."""
    var1 = adc_h - (cal[H1] * 16.0 + (cal[H3] / 2.0) * temp_c)
    var2 = var1 * (cal[H2] / 262144.0) * (
        1.0 + (cal[H4] / 16384.0) * temp_c + (cal[H5] / 1048576.0) * temp_c * temp_c
    )
    rh = var2 + (cal[H6] / 16384.0 + (cal[H7] / 2097152.0) * temp_c) * var2 * var2
    if rh > 100.0:
        return 100.0
    if rh < 0.0:
        return 0.0
    return rh


def compensate_gas(range_sw_err, adc_gas, gas_range):
    """[API] float calc_gas_resistance_low (BME680): 10-bit ADC, gas_range 0..15 -> ohm."""
    var2 = (1340.0 + 5.0 * range_sw_err) * (1.0 + _GAS_K1[gas_range] / 100.0)
    var3 = 1.0 + _GAS_K2[gas_range] / 100.0
    return 1.0 / (var3 * 0.000000125 * (1 << gas_range) * ((adc_gas - 512.0) / var2 + 1.0))


def heater_res_code(cal, target_c, amb_c=25.0):
    """[API] float calc_res_heat: res_heat_x register value (0..255) for a heater target in degC
    (capped at 400) with the sensor at amb_c."""
    if target_c > 400:
        target_c = 400
    var1 = cal[GH1] / 16.0 + 49.0
    var2 = (cal[GH2] / 32768.0) * 0.0005 + 0.00235
    var4 = var1 * (1.0 + var2 * target_c)
    var5 = var4 + (cal[GH3] / 1024.0) * amb_c
    code = int(3.4 * (var5 * (4.0 / (4 + cal[RES_HEAT_RANGE]))
                      * (1.0 / (1.0 + cal[RES_HEAT_VAL] * 0.002)) - 25))
    return code & 0xFF  # the API stores it in a uint8_t


def gas_wait_code(duration_ms):
    """[DS]/[API] gas_wait_x: 6-bit value in ms times 1/4/16/64 (bits 7:6); 0xFF caps ~4 s."""
    if duration_ms >= 0xFC0:
        return 0xFF
    factor = 0
    while duration_ms > 0x3F:
        duration_ms //= 4
        factor += 1
    return duration_ms + factor * 64


def gas_wait_ms(code):
    """Heater duration in ms encoded by a gas_wait_x byte (e.g. 0x59 -> 100 ms) [DS]."""
    return (code & 0x3F) << (2 * (code >> 6))


def measurement_us(osrs_t, osrs_p, osrs_h, gas=True):
    """[API] bme68x_get_meas_dur, forced mode: TPH conversion time in us (heater time excluded).

    osrs_* are register codes 0..5. Each oversampling cycle takes 1963 us, plus 4 x 477 us TPH
    switching, 5 x 477 us gas conversion and 1 ms wake-up.
    """
    cycles = OVERSAMPLING[osrs_t] + OVERSAMPLING[osrs_p] + OVERSAMPLING[osrs_h]
    return cycles * 1963 + 477 * 4 + (477 * 5 if gas else 0) + 1000


def saturation_hpa(temp_c):
    """[WMO] Magnus formula: saturation vapour pressure over water in hPa (-45..60 degC)."""
    return 6.112 * math.exp(17.62 * temp_c / (243.12 + temp_c))


def rh_at_temperature(rh_pct, from_c, to_c):
    """Relative humidity of the same air (same vapour pressure) moved from from_c to to_c."""
    rh = rh_pct * math.exp(17.62 * from_c / (243.12 + from_c) - 17.62 * to_c / (243.12 + to_c))
    return 100.0 if rh > 100.0 else rh


def _osrs_code(samples, what):
    try:
        return OVERSAMPLING.index(samples)
    except ValueError:
        raise ValueError(
            "BME680 %s oversampling must be one of %r" % (what, OVERSAMPLING)
        ) from None


class BME680:
    """Forced-mode BME680 on an I2C bus. start() -> wait ms, ready(), read() -> attributes.

    temp_c / rh_pct are room values: the self-heating offset temp_offset_c is added to the chip
    temperature and RH is moved to that temperature at constant vapour pressure; chip_temp_c and
    chip_rh_pct keep the uncorrected values. gas_ohm is None when the heater is off, the gas
    conversion is not valid or the heater did not reach its target (gas_status says which).
    """

    def __init__(self, i2c, addr=0x77, temp_os=8, press_os=4, hum_os=2, filter_size=0,
                 heater_c=320, heater_ms=150, temp_offset_c=DEFAULT_TEMP_OFFSET_C):
        self.i2c = i2c
        self.addr = addr
        self.temp_offset_c = temp_offset_c
        self._osrs_t = _osrs_code(temp_os, "temperature")
        self._osrs_p = _osrs_code(press_os, "pressure")
        self._osrs_h = _osrs_code(hum_os, "humidity")
        if self._osrs_t == 0:
            raise ValueError("BME680 temperature oversampling cannot be 0 (t_fine is needed)")
        if filter_size not in FILTER_SIZES:
            raise ValueError("BME680 filter_size must be one of %r" % (FILTER_SIZES,))
        self._filter = FILTER_SIZES.index(filter_size)
        if heater_c is not None and not 200 <= heater_c <= 400:
            raise ValueError("BME680 heater_c must be 200..400 degC or None")
        self.heater_c = heater_c
        self._gas_wait = gas_wait_code(heater_ms) if heater_c is not None else 0
        self._buf = bytearray(_FIELD_LEN)
        self._b1 = bytearray(1)
        self.temp_c = None
        self.pressure_hpa = None
        self.rh_pct = None
        self.gas_ohm = None
        self.gas_status = "off"
        self.chip_temp_c = None
        self.chip_rh_pct = None
        self.measurements = 0
        self._amb_c = 25.0  # heater calculation ambient until the first reading [API amb_temp]
        self._heat_code = -1
        self.cal = None
        self.variant = 0
        self.init()

    # -- bus helpers --------------------------------------------------------------------------
    def _read_reg(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._b1)
        return self._b1[0]

    def _write_reg(self, reg, value):
        self._b1[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._b1)

    # -- set-up -------------------------------------------------------------------------------
    def init(self):
        """Check the chip id, soft-reset (blocks RESET_MS once), read calibration, configure."""
        try:
            chip_id = self._read_reg(_REG_CHIP_ID)
        except OSError as e:
            errno = e.args[0] if e.args else 19
            raise OSError(errno, "BME680 not responding at 0x%02x" % self.addr) from None
        if chip_id != CHIP_ID:
            raise OSError("BME680 at 0x%02x: chip id 0x%02x, expected 0x61" % (self.addr, chip_id))
        self._write_reg(_REG_RESET, _RESET_CMD)
        sleep_ms(RESET_MS)  # boot-time only; measurements never block
        c1 = bytearray(23)
        c2 = bytearray(14)
        c3 = bytearray(5)
        self.i2c.readfrom_mem_into(self.addr, _REG_COEFF_1, c1)
        self.i2c.readfrom_mem_into(self.addr, _REG_COEFF_2, c2)
        self.i2c.readfrom_mem_into(self.addr, _REG_RES_HEAT_VAL, c3)
        self.cal = parse_calibration(c1, c2, c3)
        self.variant = self._read_reg(_REG_VARIANT)
        if self.variant != 0:
            # A BME688 shares chip id 0x61 but has other gas registers and maths: keep T/P/H,
            # switch the heater off rather than report wrong resistances.
            self.heater_c = None
            self.gas_status = "unsupported variant"
        self.configure()

    def configure(self):
        """Write oversampling, filter and heater settings (the chip sleeps after a reset)."""
        self._write_reg(_REG_CTRL_HUM, self._osrs_h)
        self._write_reg(_REG_CONFIG, self._filter << 2)
        self._write_reg(_REG_CTRL_MEAS, (self._osrs_t << 5) | (self._osrs_p << 2))
        if self.heater_c is None:
            self._write_reg(_REG_CTRL_GAS_0, _HEAT_OFF)
            self._write_reg(_REG_CTRL_GAS_1, 0)
        else:
            self._heat_code = -1
            self._set_heater()
            self._write_reg(_REG_GAS_WAIT_0, self._gas_wait)
            self._write_reg(_REG_CTRL_GAS_0, 0)
            self._write_reg(_REG_CTRL_GAS_1, _RUN_GAS)  # nb_conv = 0: heater profile 0

    def _set_heater(self):
        code = heater_res_code(self.cal, self.heater_c, self._amb_c)
        if code != self._heat_code:
            self._write_reg(_REG_RES_HEAT_0, code)
            self._heat_code = code

    # -- measurement --------------------------------------------------------------------------
    def wait_ms(self):
        """Forced measurement duration in ms: TPH conversions plus the heater time."""
        gas = self.heater_c is not None
        us = measurement_us(self._osrs_t, self._osrs_p, self._osrs_h, gas)
        return (us + 999) // 1000 + (gas_wait_ms(self._gas_wait) if gas else 0)

    def start(self):
        """Trigger one forced measurement; returns the ms to wait before ready()/read()."""
        if self.heater_c is not None:
            self._set_heater()  # follows the sensor temperature, as the API's amb_temp
        self._write_reg(_REG_CTRL_MEAS, (self._osrs_t << 5) | (self._osrs_p << 2) | _MODE_FORCED)
        return self.wait_ms()

    def ready(self):
        """True once the forced measurement has finished and new data is waiting."""
        s = self._read_reg(_REG_MEAS_STATUS)
        return bool(s & _NEW_DATA) and not s & (_MEASURING | _GAS_MEASURING)

    def read(self):
        """Read and compensate the last measurement; False (values kept) if none is new."""
        b = self._buf
        self.i2c.readfrom_mem_into(self.addr, _REG_MEAS_STATUS, b)
        if not b[0] & _NEW_DATA or b[0] & (_MEASURING | _GAS_MEASURING):
            return False
        cal = self.cal
        adc_p = (b[2] << 12) | (b[3] << 4) | (b[4] >> 4)
        adc_t = (b[5] << 12) | (b[6] << 4) | (b[7] >> 4)
        adc_h = (b[8] << 8) | b[9]
        chip_c, t_fine = compensate_temperature(cal, adc_t)
        self.chip_temp_c = chip_c
        self._amb_c = chip_c
        if self._osrs_p and adc_p != _SKIPPED_ADC:
            self.pressure_hpa = compensate_pressure(cal, adc_p, t_fine) / 100.0
        else:
            self.pressure_hpa = None
        room_c = chip_c + self.temp_offset_c
        self.temp_c = room_c
        if self._osrs_h and adc_h != 0x8000:
            rh = compensate_humidity(cal, adc_h, chip_c)
            self.chip_rh_pct = rh
            self.rh_pct = rh_at_temperature(rh, chip_c, room_c) if self.temp_offset_c else rh
        else:
            self.chip_rh_pct = self.rh_pct = None
        lsb = b[14]
        if self.heater_c is None:
            self.gas_ohm = None
            if not self.variant:
                self.gas_status = "off"
        elif not lsb & _GAS_VALID:
            self.gas_ohm, self.gas_status = None, "invalid"
        elif not lsb & _HEAT_STAB:
            self.gas_ohm, self.gas_status = None, "heater unstable"
        else:
            self.gas_ohm = compensate_gas(cal[RANGE_SW_ERR], (b[13] << 2) | (lsb >> 6), lsb & 0x0F)
            self.gas_status = "ok"
        self.measurements += 1
        return True
