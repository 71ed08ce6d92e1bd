# MAX30102 pulse-oximeter driver: SpO2 mode (red + IR), allocation-free FIFO reads, die temp.
#
# Register map and semantics from the Maxim MAX30102 datasheet 19-7740 ("DS" below); section or
# table cited next to each use. The driver is handed an I2C bus object (machine.I2C or a stand-in
# with readfrom_mem_into/writeto_mem) and never imports `machine`.
#
# Use (poll well before the 32-sample FIFO fills: 640 ms at 50 Hz):
#     ppg = MAX30102(i2c)                       # buffers only; setup() checks the part
#     ppg.setup(sample_rate_hz=200, averaging=4)  # 50 Hz into the FIFO
#     red, ir = array("i", [0] * 32), array("i", [0] * 32)
#     n = ppg.read_fifo(red, ir)                # red[0:n], ir[0:n]; ppg.overflow = samples lost
#     ppg.start_temperature()                   # die temperature: ~29 ms, do not wait here;
#     t16 = ppg.read_temperature_x16()          # on a later tick: 1/16 degC, None if not ready
import micropython

from nsdev.compat import const, sleep_ms, ticks_ms

ADDR = const(0x57)  # DS "I2C Write Address AE Hex / Read Address AF Hex" -> 7-bit 0x57
PART_ID = const(0x15)  # DS register map: PART_ID (0xFF) = 0x15
FIFO_DEPTH = const(32)  # DS "FIFO Data Register": circular FIFO depth 32 samples
ADC_FULL_SCALE = const(262143)  # DS: 18-bit ADC, FIFO data left-justified at bit 17 (Table 1)
OVF_SATURATED = const(31)  # DS "FIFO Overflow Counter": OVF_COUNTER saturates at 0x1F

# Registers (DS "Register Maps and Descriptions").
_REG_INT_STATUS_1 = const(0x00)  # A_FULL b7, PPG_RDY b6, ALC_OVF b5, PWR_RDY b0
_REG_INT_ENABLE_1 = const(0x02)  # A_FULL_EN b7, PPG_RDY_EN b6, ALC_OVF_EN b5
_REG_FIFO_WR_PTR = const(0x04)  # FIFO_WR_PTR[4:0]
_REG_OVF_COUNTER = const(0x05)  # OVF_COUNTER[4:0]
_REG_FIFO_RD_PTR = const(0x06)  # FIFO_RD_PTR[4:0]
_REG_FIFO_DATA = const(0x07)  # burst reads stay on 0x07 while FIFO_RD_PTR advances
_REG_FIFO_CONFIG = const(0x08)  # SMP_AVE[7:5], FIFO_ROLLOVER_EN b4, FIFO_A_FULL[3:0]
_REG_MODE_CONFIG = const(0x09)  # SHDN b7, RESET b6, MODE[2:0]
_REG_SPO2_CONFIG = const(0x0A)  # SPO2_ADC_RGE[6:5], SPO2_SR[4:2], LED_PW[1:0]
_REG_LED1_PA = const(0x0C)  # LED1 = red (DS Table 9: SLOT "001 LED1 (Red)")
_REG_LED2_PA = const(0x0D)  # LED2 = IR
_REG_TEMP_INT = const(0x1F)  # TINT, two's complement, 1 degC per LSB
_REG_TEMP_FRAC = const(0x20)  # TFRAC[3:0], 0.0625 degC per LSB
_REG_TEMP_CONFIG = const(0x21)  # TEMP_EN b0, self-clearing at the end of the conversion
_REG_REV_ID = const(0xFE)  # REV_ID; 0xFF PART_ID follows, so one 2-byte burst reads both

_INT_A_FULL = const(0x80)
_MODE_SHDN = const(0x80)
_MODE_RESET = const(0x40)
_MODE_SPO2 = const(0x03)  # DS Table 4: 011 = SpO2 mode, red and IR
_TEMP_EN = const(0x01)
_BYTES_PER_SAMPLE = const(6)  # DS "FIFO Data Structure": 2 channels x 3 bytes in SpO2 mode
_RESET_TIMEOUT_MS = const(50)
_TEMP_TIMEOUT_MS = const(100)  # DS "Temperature ADC Acquisition Time" TT = 29 ms typ

# DS Table 6 (SPO2_SR code -> samples per second), Table 7 (LED_PW code -> pulse width us;
# ADC resolution = 15 + code bits), Table 5 (SPO2_ADC_RGE code -> full scale nA), Table 3
# (SMP_AVE code -> samples averaged; codes 101-111 all mean 32, we use 101).
SAMPLE_RATES_HZ = (50, 100, 200, 400, 800, 1000, 1600, 3200)
PULSE_WIDTHS_US = (69, 118, 215, 411)
ADC_RANGES_NA = (2048, 4096, 8192, 16384)
AVERAGING = (1, 2, 4, 8, 16, 32)
# DS Table 11 "SpO2 Mode (Allowed Settings)": highest sample rate allowed for each pulse width.
SPO2_MAX_RATE_HZ = (1600, 1000, 800, 400)
LED_MA_PER_CODE = 0.2  # DS Table 8: LEDx_PA 0x01 = 0.2 mA ... 0xFF = 51.0 mA (typical)
LED_MAX_MA = 51.0


def spo2_config_byte(sample_rate_hz, pulse_width_us, adc_range_na):
    """SPO2_CONFIG (0x0A) value for these settings; ValueError if SpO2 mode does not allow them."""
    if sample_rate_hz not in SAMPLE_RATES_HZ:
        raise ValueError("MAX30102: sample_rate_hz must be one of %s, not %r"
                         % (SAMPLE_RATES_HZ, sample_rate_hz))
    if pulse_width_us not in PULSE_WIDTHS_US:
        raise ValueError("MAX30102: pulse_width_us must be one of %s, not %r"
                         % (PULSE_WIDTHS_US, pulse_width_us))
    if adc_range_na not in ADC_RANGES_NA:
        raise ValueError("MAX30102: adc_range_na must be one of %s, not %r"
                         % (ADC_RANGES_NA, adc_range_na))
    pw = PULSE_WIDTHS_US.index(pulse_width_us)
    if sample_rate_hz > SPO2_MAX_RATE_HZ[pw]:
        raise ValueError("MAX30102: %d sps is not allowed with %d us pulses in SpO2 mode "
                         "(datasheet Table 11: at most %d sps)"
                         % (sample_rate_hz, pulse_width_us, SPO2_MAX_RATE_HZ[pw]))
    rng = ADC_RANGES_NA.index(adc_range_na)
    return (rng << 5) | (SAMPLE_RATES_HZ.index(sample_rate_hz) << 2) | pw


def led_code(current_ma):
    """LEDx_PA register code for an LED current in mA (0.2 mA per LSB, DS Table 8)."""
    if not 0 <= current_ma <= LED_MAX_MA:
        raise ValueError("MAX30102: LED current must be 0..51 mA, not %r" % (current_ma,))
    code = int(current_ma / LED_MA_PER_CODE + 0.5)
    return 255 if code > 255 else code


def resolution_mask(pulse_width_us):
    """Mask of the meaningful bits of an 18-bit left-justified sample (DS Table 1 and 7)."""
    bits = 15 + PULSE_WIDTHS_US.index(pulse_width_us)
    return ADC_FULL_SCALE ^ ((1 << (18 - bits)) - 1)


def counts_to_na(counts, adc_range_na):
    """Photodiode current in nA for an ADC count: LSB = full scale / 2**18 (DS Table 5)."""
    return counts * adc_range_na / 262144


def die_temp_x16(tint, tfrac):
    """Die temperature in 1/16 degC from TINT (0x1F) and TFRAC (0x20) register bytes.

    DS "Temperature Data" (the TINT and TFRAC register descriptions): TINT is two's complement,
    1 degC per LSB (0x7F = +127, 0xFF = -1, 0x80 = -128); TFRAC[3:0] adds 0.0625 degC steps,
    always positive: T = TINT + TFRAC * 0.0625 (e.g. TINT 0xFF, TFRAC 8: -0.5 degC). Integer
    result: no float allocated on the device.
    """
    tint &= 0xFF
    return ((tint - 256 if tint & 0x80 else tint) << 4) + (tfrac & 0x0F)


def _errno(exc):
    a = exc.args
    return a[0] if a and isinstance(a[0], int) else 5  # EIO when the port gave no number


def _unpack(buf, n, first, second, mask):
    # Each SpO2 sample: LED1 (red) then LED2 (IR), 3 bytes each, MSB first (DS Figure 2 and the
    # FIFO read pseudo-code: "Save LED1[23:16] ... LED2[7:0]"); bits 23:18 unused (masked).
    # A while loop: `for i in range(n)` would take the frame past 11 words (see read_fifo).
    i = 0
    while i < n:
        j = 6 * i
        first[i] = ((buf[j] << 16) | (buf[j + 1] << 8) | buf[j + 2]) & mask
        second[i] = ((buf[j + 3] << 16) | (buf[j + 4] << 8) | buf[j + 5]) & mask
        i += 1


class MAX30102:
    """MAX30102 in SpO2 mode. Call setup() first; then read_fifo() at least every ~300 ms.

    After read_fifo(): `overflow` = samples the chip dropped because its FIFO was full (they
    belong right after the last sample returned); `overflow_saturated` = True when the chip's
    counter hit 0x1F, i.e. at least 31 were lost. `samples_lost` and `samples_read` count
    since construction. `swap_red_ir = True` is for clone boards whose LED1 is the IR LED.
    """

    def __init__(self, i2c, addr=ADDR, swap_red_ir=False):
        self.i2c = i2c
        self.addr = addr
        self.swap_red_ir = swap_red_ir
        self.sample_rate_hz = 0
        self.averaging = 1
        self.pulse_width_us = 411
        self.adc_range_na = 16384
        self.red_code = 0
        self.ir_code = 0
        self.rev_id = -1
        self.overflow = 0
        self.overflow_saturated = False
        self.pointers_ms = 0  # ticks_ms of the last pointer read (read_fifo)
        self.samples_read = 0
        self.samples_lost = 0
        self._mask = ADC_FULL_SCALE
        self._buf = bytearray(FIFO_DEPTH * _BYTES_PER_SAMPLE)  # 192 bytes: the whole FIFO
        mv = memoryview(self._buf)
        # One preallocated view per possible sample count: slicing in read_fifo would allocate.
        self._views = [mv[: k * _BYTES_PER_SAMPLE] for k in range(FIFO_DEPTH + 1)]
        self._status = bytearray(7)  # INT_STATUS_1 .. FIFO_RD_PTR in one burst
        self._one = bytearray(1)
        self._two = bytearray(2)
        self._three = bytearray(3)
        self._six = bytearray(6)

    # --- bus helpers: every bus error becomes an OSError naming the chip and the register ---

    @micropython.native  # on every FIFO poll: see read_fifo
    def _read(self, reg, buf, name):
        try:
            self.i2c.readfrom_mem_into(self.addr, reg, buf)
        except OSError as e:
            self._failed(e, "reading %s (0x%02x)" % (name, reg))

    def _write(self, reg, buf, name):
        try:
            self.i2c.writeto_mem(self.addr, reg, buf)
        except OSError as e:
            raise OSError(_errno(e), "MAX30102 at 0x%02x: writing %s (0x%02x) failed: %r"
                          % (self.addr, name, reg, e)) from e

    def _read_reg(self, reg, name):
        self._read(reg, self._one, name)
        return self._one[0]

    def _write_reg(self, reg, value, name):
        self._one[0] = value
        self._write(reg, self._one, name)

    # --- identity, reset, configuration ---

    def check_part_id(self):
        """Read REV_ID/PART_ID (0xFE/0xFF); OSError if nothing answers or it is not a MAX30102."""
        self._read(_REG_REV_ID, self._two, "REV_ID/PART_ID")
        if self._two[1] != PART_ID:
            raise OSError(19, "MAX30102 at 0x%02x: PART_ID is 0x%02x, expected 0x%02x (wrong "
                          "chip at this address?)" % (self.addr, self._two[1], PART_ID))
        self.rev_id = self._two[0]
        return self.rev_id

    def reset(self, timeout_ms=_RESET_TIMEOUT_MS):
        """Power-on reset via MODE_CONFIG.RESET; polls (bounded) until the bit self-clears."""
        # DS "Mode Configuration (0x09)": RESET clears automatically when the reset is done.
        self._write_reg(_REG_MODE_CONFIG, _MODE_RESET, "MODE_CONFIG")
        waited_ms = 0
        while self._read_reg(_REG_MODE_CONFIG, "MODE_CONFIG") & _MODE_RESET:
            if waited_ms >= timeout_ms:
                raise OSError(110, "MAX30102 at 0x%02x: RESET bit still set after %d ms"
                              % (self.addr, waited_ms))
            sleep_ms(1)
            waited_ms += 1

    def setup(self, sample_rate_hz=200, averaging=4, pulse_width_us=411, adc_range_na=16384,
              red_ma=6.4, ir_ma=6.4):
        """Reset, check the part, configure SpO2 mode and start sampling with an empty FIFO.

        Defaults: 200 sps averaged by 4 = 50 Hz into the FIFO, 411 us pulses (18 bit), 16384 nA
        full scale, 6.4 mA per LED. ValueError for settings the datasheet does not allow
        (nothing is written then); OSError for bus errors or a wrong part.
        """
        spo2 = spo2_config_byte(sample_rate_hz, pulse_width_us, adc_range_na)
        if averaging not in AVERAGING:
            raise ValueError("MAX30102: averaging must be one of %s, not %r"
                             % (AVERAGING, averaging))
        red = led_code(red_ma)
        ir = led_code(ir_ma)
        self.check_part_id()
        self.reset()
        # FIFO_A_FULL = 0: A_FULL fires when all 32 slots hold unread data (DS FIFO_A_FULL
        # table), which tells a full FIFO from an empty one when FIFO_WR_PTR == FIFO_RD_PTR.
        # No rollover: when full, new samples are dropped and counted in OVF_COUNTER.
        fifo_cfg = AVERAGING.index(averaging) << 5
        self._write_reg(_REG_FIFO_CONFIG, fifo_cfg, "FIFO_CONFIG")
        self._write_reg(_REG_SPO2_CONFIG, spo2, "SPO2_CONFIG")
        self.sample_rate_hz = sample_rate_hz
        self.averaging = averaging
        self.pulse_width_us = pulse_width_us
        self.adc_range_na = adc_range_na
        self._mask = resolution_mask(pulse_width_us)
        self.set_led_codes(red, ir)
        self._write_reg(_REG_INT_ENABLE_1, _INT_A_FULL, "INT_ENABLE_1")
        self._write_reg(_REG_MODE_CONFIG, _MODE_SPO2, "MODE_CONFIG")
        # DS "Write/Read Pointers": clear FIFO_WR_PTR, OVF_COUNTER, FIFO_RD_PTR on entering
        # SpO2 mode (the write pointer is writable only once MODE is 010/011/111).
        self.clear_fifo()
        # Read back the configuration: a clone or a marginal bus shows up here, not as bad data.
        self._read(_REG_FIFO_CONFIG, self._six, "FIFO_CONFIG..LED2_PA")
        got = self._six
        want_leds = (red, ir) if not self.swap_red_ir else (ir, red)
        if (got[0] != fifo_cfg or got[1] != _MODE_SPO2 or got[2] != spo2
                or got[4] != want_leds[0] or got[5] != want_leds[1]):
            raise OSError(5, "MAX30102 at 0x%02x: configuration did not stick (read back "
                          "%s)" % (self.addr, bytes(got)))

    def clear_fifo(self):
        """Empty the FIFO: FIFO_WR_PTR, OVF_COUNTER, FIFO_RD_PTR = 0 (one 3-byte burst)."""
        t = self._three
        t[0] = t[1] = t[2] = 0
        self._write(_REG_FIFO_WR_PTR, t, "FIFO_WR_PTR..FIFO_RD_PTR")

    def set_led_currents(self, red_ma, ir_ma):
        """LED drive currents in mA (0..51, 0.2 mA steps, DS Table 8)."""
        self.set_led_codes(led_code(red_ma), led_code(ir_ma))

    def set_led_codes(self, red_code, ir_code):
        """LED drive as LEDx_PA codes 0..255 (0.2 mA per LSB); for the LED-current controller."""
        if not (0 <= red_code <= 255 and 0 <= ir_code <= 255):
            raise ValueError("MAX30102: LED codes must be 0..255")
        t = self._two
        if self.swap_red_ir:  # clone boards: LED1 is the IR emitter
            t[0] = ir_code
            t[1] = red_code
        else:
            t[0] = red_code
            t[1] = ir_code
        self._write(_REG_LED1_PA, t, "LED1_PA/LED2_PA")
        self.red_code = red_code
        self.ir_code = ir_code

    @property
    def red_ma(self):
        return self.red_code * LED_MA_PER_CODE

    @property
    def ir_ma(self):
        return self.ir_code * LED_MA_PER_CODE

    @property
    def fifo_rate_hz(self):
        """Samples per second arriving in the FIFO: sample rate / averaging (DS Table 3)."""
        return self.sample_rate_hz / self.averaging

    @property
    def fifo_period_us(self):
        return self.averaging * 1000000 // self.sample_rate_hz if self.sample_rate_hz else 0

    @property
    def resolution_bits(self):
        return 15 + PULSE_WIDTHS_US.index(self.pulse_width_us)

    # --- the hot path ---

    def read_fifo(self, red, ir):
        """Move every unread sample into red[0:n], ir[0:n] (array('i'), capacity >= 32).

        Returns n (0..32), oldest first, in 18-bit counts masked to the pulse width's
        resolution. Allocates nothing. Sets `overflow` (samples lost since the previous read,
        DS "FIFO Overflow Counter") and `overflow_saturated`.
        """
        # Called every FIFO poll: this method and the ones it calls keep their frames within
        # MicroPython's VM_MAX_STATE_ON_STACK (11 words, py/objfun.c); a larger bytecode frame
        # is allocated on the heap at every call on the ESP32 (docs/twin-and-image.md, "Frames
        # on the stack"). A `try/except ... as e` alone takes a frame to 14 words, so the
        # bus calls that need one are @micropython.native (their frames live on the C stack).
        n = self._pointers()
        if n == 0:
            return 0
        self._read_data(n)
        if self.swap_red_ir:
            _unpack(self._buf, n, ir, red, self._mask)
        else:
            _unpack(self._buf, n, red, ir, self._mask)
        self.samples_read += n
        return n

    def _pointers(self):
        # The FIFO pointers and overflow counter -> the number of unread samples.
        st = self._status
        # One burst 0x00..0x06: INT_STATUS_1 (read clears it), ..., FIFO_WR_PTR, OVF_COUNTER,
        # FIFO_RD_PTR. DS "Pseudo-Code Example of Reading Data from FIFO".
        self._read(_REG_INT_STATUS_1, st, "INT_STATUS/FIFO pointers")
        self.pointers_ms = ticks_ms()  # when the FIFO state below was true
        ovf = st[5] & 0x1F
        # DS: NUM_AVAILABLE_SAMPLES = FIFO_WR_PTR - FIFO_RD_PTR, with wraparound
        n = ((st[4] & 0x1F) - (st[6] & 0x1F)) & 0x1F
        if n == 0 and (ovf or st[0] & _INT_A_FULL):
            n = FIFO_DEPTH  # pointers equal and the FIFO is full, not empty
        self.overflow = ovf
        self.overflow_saturated = ovf >= OVF_SATURATED
        self.samples_lost += ovf
        return n

    @micropython.native
    def _read_data(self, n):
        # The n samples' burst from FIFO_DATA into _buf (native: see read_fifo).
        try:
            self.i2c.readfrom_mem_into(self.addr, _REG_FIFO_DATA, self._views[n])
        except OSError as e:
            # DS "FIFO Read Pointer": rewrite it so the samples can be read again next time.
            try:
                self._write_reg(_REG_FIFO_RD_PTR, self._status[6] & 0x1F, "FIFO_RD_PTR")
            except OSError:
                pass
            self._failed(e, "reading FIFO_DATA (0x07), %d samples," % n)

    def _failed(self, e, what):
        # A bus error as an OSError naming the chip and the transfer (raised here, in bytecode:
        # the native emitter has no `raise ... from`).
        raise OSError(_errno(e), "MAX30102 at 0x%02x: %s failed: %r" % (self.addr, what, e)) from e

    # --- power ---

    def shutdown(self):
        """Power-save mode (SHDN): registers kept, sampling stops (DS MODE_CONFIG bit 7)."""
        m = self._read_reg(_REG_MODE_CONFIG, "MODE_CONFIG")
        self._write_reg(_REG_MODE_CONFIG, (m | _MODE_SHDN) & ~_MODE_RESET, "MODE_CONFIG")

    def wake(self):
        """Leave power-save mode; the FIFO is cleared so no stale samples come back."""
        m = self._read_reg(_REG_MODE_CONFIG, "MODE_CONFIG")
        self._write_reg(_REG_MODE_CONFIG, m & ~(_MODE_SHDN | _MODE_RESET), "MODE_CONFIG")
        self.clear_fifo()

    # --- die temperature ---

    def start_temperature(self):
        """Start one die-temperature conversion (TEMP_EN, 29 ms typ); returns at once."""
        self._write_reg(_REG_TEMP_CONFIG, _TEMP_EN, "TEMP_CONFIG")

    def read_temperature_x16(self):
        """Die temperature of the last conversion in 1/16 degC (an int), or None while it is
        still running (TEMP_EN set). Reading TFRAC clears DIE_TEMP_RDY (DS Interrupt Status 2).
        Call it only after start_temperature(): before any conversion the registers read 0."""
        t = self._three
        self._read(_REG_TEMP_INT, t, "TINT/TFRAC/TEMP_CONFIG")  # 0x1F..0x21 in one burst
        if t[2] & _TEMP_EN:
            return None
        return die_temp_x16(t[0], t[1])

    def read_temperature_c(self):
        """Die temperature in degC of the last conversion, or None while it is still running."""
        t16 = self.read_temperature_x16()
        return None if t16 is None else t16 / 16

    def die_temperature_c(self, timeout_ms=_TEMP_TIMEOUT_MS):
        """Blocking die temperature (~29 ms). In asyncio tasks use the non-blocking pair."""
        self.start_temperature()
        waited_ms = 0
        while True:
            sleep_ms(5)
            waited_ms += 5
            temp_c = self.read_temperature_c()
            if temp_c is not None:
                return temp_c
            if waited_ms >= timeout_ms:
                raise OSError(110, "MAX30102 at 0x%02x: temperature not ready after %d ms"
                              % (self.addr, waited_ms))
