# VEML7700 ambient light sensor: non-blocking, auto-ranging, allocation-free lux driver + maths.
#
# Sources (facts only; the code is our own):
#   [DS] Vishay VEML7700 datasheet, doc. 84286: command codes 0x00 ALS_CONF_0 (gain bits 12:11,
#        integration time bits 9:6, persistence 5:4, INT_EN bit 1, ALS_SD bit 0), 0x01 ALS_WH,
#        0x02 ALS_WL, 0x03 power saving (PSM bits 2:1, PSM_EN bit 0), 0x04 ALS, 0x05 WHITE,
#        0x06 ALS_INT (bit 15 low / bit 14 high threshold flag), 0x07 ID (low byte 0x81).
#        Every register is 16 bits, sent and read LSB first after the command code.
#   [AN] Vishay "Designing the VEML7700 into an application", doc. 84323: resolution table,
#        0.0036 lx/count at gain x2 and 800 ms, doubling with each halving of gain or integration
#        time, 1.8432 lx/count (~120 klx full scale) at x1/8 and 25 ms; gains x1/x2 only for
#        low light (< ~100 lx); start the ranging at x1/8 and 100 ms; non-linearity correction
#        lux_c = 6.0135e-13 x^4 - 9.3924e-9 x^3 + 8.1488e-5 x^2 + 1.0023 x (x = linear lux).
#        Later datasheet revisions quote 0.0042 lx/count at x2/800 ms (resolution differs by
#        part revision): LUX_PER_COUNT_MAX is the one calibration constant to adjust.
#
# Use from asyncio (the driver never waits itself):
#     wait_ms = als.start()
#     while True:
#         await asyncio.sleep_ms(wait_ms)
#         mlux = als.read_mlux()        # or als.read() -> float lux (allocates its result)
#         if mlux is not None:
#             break
#         wait_ms = als.wait_ms         # ranging changed (or we were early): wait again
from array import array

from nsdev.compat import const, ticks_diff, ticks_ms

ADDR = const(0x10)
ID_LOW = const(0x81)

_REG_CONF = const(0x00)
_REG_WH = const(0x01)
_REG_WL = const(0x02)
_REG_PSM = const(0x03)
_REG_ALS = const(0x04)
_REG_WHITE = const(0x05)
_REG_ID = const(0x07)

_SD = const(0x0001)
_GAIN_SHIFT = const(11)
_IT_SHIFT = const(6)

# [DS] gain field codes and [AN] log2 of (2 / gain): resolution doubles per step.
GAINS = (2, 1, 0.25, 0.125)
_GAIN_CODE = (1, 0, 3, 2)
_GAIN_LOG2 = (0, 1, 3, 4)
# [DS] integration-time field codes and log2 of (800 ms / IT).
IT_MS = (800, 400, 200, 100, 50, 25)
_IT_CODE = (0b0011, 0b0010, 0b0001, 0b0000, 0b1000, 0b1100)

LUX_PER_COUNT_MAX = 0.0036  # [AN] gain x2, 800 ms

# Auto-range ladder, least to most sensitive; each step doubles the counts per lux. Steps with
# gain x1/x2 are used only below ~100 lx [AN]. (gain index, IT index) into GAINS / IT_MS.
_LADDER_GAIN = b"\x03\x03\x03\x03\x03\x03\x02\x01\x01\x00"
_LADDER_IT = b"\x05\x04\x03\x02\x01\x00\x00\x01\x00\x00"
_TOP = const(9)
_START_STEP = const(2)  # [AN]: start at x1/8, 100 ms

_LOW_COUNTS = const(200)  # fewer: re-range up before reporting (0.25 % quantisation here)
_SAT_COUNTS = const(60000)  # more: treat as saturated (full scale 65535), re-range down
_GOOD_LOW = const(1000)  # outside [GOOD_LOW, GOOD_HIGH] the next measurement re-ranges
_GOOD_HIGH = const(40000)
_TARGET_COUNTS = const(20000)  # re-range to the most sensitive step expected to stay below
_HIGH_GAIN_MAX_B = const(27778)  # 100 lx in counts at 0.0036 lx/count: limit for gain x1/x2
_STARTUP_MS = const(5)  # after ALS_SD is cleared, before the first integration completes

# Non-linearity correction as a Q16 factor table over linear milli-lux, knots every 2**18 mlux
# (262 lx), linearly interpolated: < 0.1 % from the polynomial (tests check it).
_KNOT_SHIFT = const(18)
_KNOTS = const(97)
X_MAX_MLUX = const(96 * (1 << 18) - 1)  # 25.2 klx linear ~ 175 klx corrected: above the range


def resolution_lx(gain, it_ms):
    """Lux per count for a gain (2, 1, 0.25, 0.125) and an integration time in ms [AN]."""
    return LUX_PER_COUNT_MAX * (2 / gain) * (800 / it_ms)


def correct_lux(lux):
    """[AN] non-linearity correction of a linear lux value (applied over the whole range)."""
    return (((6.0135e-13 * lux - 9.3924e-9) * lux + 8.1488e-5) * lux + 1.0023) * lux


def counts_to_lux(counts, gain, it_ms, corrected=True):
    """Float reference conversion of ALS counts to lux."""
    lux = counts * resolution_lx(gain, it_ms)
    return correct_lux(lux) if corrected else lux


def _build_table():
    t = array("i", bytes(4 * _KNOTS))
    for k in range(_KNOTS):
        x_lux = (k << _KNOT_SHIFT) / 1000
        t[k] = int(correct_lux(x_lux) / x_lux * 65536 + 0.5) if k else int(1.0023 * 65536 + 0.5)
    return t


_FACTOR_Q16 = _build_table()


def shift_of(gain, it_ms):
    """log2 of (lux per count / LUX_PER_COUNT_MAX) for a gain and integration time."""
    return _GAIN_LOG2[_index(GAINS, gain, "gain")] + _index(IT_MS, it_ms, "integration time")


def _index(options, value, what):
    for i in range(len(options)):
        if options[i] == value:
            return i
    raise ValueError("VEML7700: %s %s not one of %s" % (what, value, options))


def linear_mlux(counts, shift):
    """Linear milli-lux of `counts` at 0.0036 * 2**shift lx/count (ints only, < 2**30)."""
    return ((counts << shift) * 18) // 5


def corrected_mlux(x_mlux):
    """[AN]-corrected milli-lux from linear milli-lux; integer-only, every value < 2**30.

    Clamps the input to X_MAX_MLUX (far above daylight: the caller flags over-range).
    """
    if x_mlux > X_MAX_MLUX:
        x_mlux = X_MAX_MLUX
    elif x_mlux < 0:
        x_mlux = 0
    i = x_mlux >> _KNOT_SHIFT
    f0 = _FACTOR_Q16[i]
    f = f0 + (((_FACTOR_Q16[i + 1] - f0) * ((x_mlux & 0x3FFFF) >> 8)) >> 10)
    ff = f & 0xFFFF
    return x_mlux * (f >> 16) + (((x_mlux >> 12) * ff) >> 4) + (((x_mlux & 0xFFF) * ff) >> 16)


def pick_step(counts, shift):
    """Most sensitive ladder step expected to read below the target count (auto-range)."""
    b = counts << shift  # counts as they would be at 0.0036 lx/count
    j = _TOP
    while j > 0:
        s = _GAIN_LOG2[_LADDER_GAIN[j]] + _LADDER_IT[j]
        if (b >> s) <= _TARGET_COUNTS and (_LADDER_GAIN[j] > 1 or b < _HIGH_GAIN_MAX_B):
            return j
        j -= 1
    return 0


class VEML7700:
    """Handed an I2C bus. Call start(), wait `wait_ms`, read_mlux()/read(); repeat on None."""

    def __init__(self, i2c, addr=ADDR):
        self.i2c = i2c
        self.addr = addr
        self._buf = bytearray(2)
        self._wbuf = bytearray(2)
        self.auto_range = True
        self.over_range = False  # last reading clamped (saturated at the least sensitive step)
        self.counts = 0  # raw ALS counts of the last reading
        self.mlux = 0  # last corrected reading in milli-lux
        self.wait_ms = 0  # how long to wait before the next read_mlux() call
        self.restarts = 0  # integrations started (ranging cost, for statistics)
        self._step = _START_STEP
        self._gain_i = 0
        self._it_i = 0
        self._shift = 0
        self._due_ms = 0
        self._t0_ms = 0
        self._running = False
        self.check_id()
        self._write(_REG_PSM, 0)  # no power-saving pause between integrations
        self._use_step(_START_STEP)
        self._write(_REG_CONF, self._conf() | _SD)

    # --- bus helpers (preallocated buffers; errors become specific OSErrors) ---
    def _read(self, reg):
        try:
            self.i2c.readfrom_mem_into(self.addr, reg, self._buf)
        except OSError as e:
            raise OSError(_errno(e), "VEML7700@0x%02x: I2C read of reg 0x%02x failed (no ACK?)"
                          % (self.addr, reg)) from e
        return self._buf[0] | (self._buf[1] << 8)

    def _write(self, reg, value):
        self._wbuf[0] = value & 0xFF
        self._wbuf[1] = (value >> 8) & 0xFF
        try:
            self.i2c.writeto_mem(self.addr, reg, self._wbuf)
        except OSError as e:
            raise OSError(_errno(e), "VEML7700@0x%02x: I2C write of reg 0x%02x failed (no ACK?)"
                          % (self.addr, reg)) from e

    def check_id(self):
        dev_id = self._read(_REG_ID)
        if dev_id & 0xFF != ID_LOW:
            raise OSError(19, "VEML7700@0x%02x: ID register reads 0x%04x, expected low byte 0x%02x"
                          " (wrong chip at this address?)" % (self.addr, dev_id, ID_LOW))
        return dev_id

    # --- configuration ---
    def _conf(self):
        return (_GAIN_CODE[self._gain_i] << _GAIN_SHIFT) | (_IT_CODE[self._it_i] << _IT_SHIFT)

    def _use_step(self, step):
        self._step = step
        self._gain_i = _LADDER_GAIN[step]
        self._it_i = _LADDER_IT[step]
        self._shift = _GAIN_LOG2[self._gain_i] + self._it_i

    def configure(self, gain, it_ms):
        """Fixed gain (2, 1, 0.25, 0.125) and integration time (25..800 ms); auto-range off."""
        self._gain_i = _index(GAINS, gain, "gain")
        self._it_i = _index(IT_MS, it_ms, "integration time")
        self._shift = _GAIN_LOG2[self._gain_i] + self._it_i
        self.auto_range = False
        self._running = False

    @property
    def gain(self):
        return GAINS[self._gain_i]

    @property
    def it_ms(self):
        return IT_MS[self._it_i]

    def lux_per_count(self):
        return LUX_PER_COUNT_MAX * (1 << self._shift)

    # --- measurement ---
    def start(self):
        """Begin a fresh integration with the current setting; returns the ms to wait."""
        if self.auto_range:
            self._use_step(self._step)
        conf = self._conf()
        self._write(_REG_CONF, conf | _SD)  # shut down, then power up: a new integration begins
        self._write(_REG_CONF, conf)
        it_ms = IT_MS[self._it_i]
        self._t0_ms = ticks_ms()
        self._due_ms = it_ms + (it_ms >> 3) + _STARTUP_MS  # + 12 % for oscillator tolerance
        self.wait_ms = self._due_ms
        self._running = True
        self.restarts += 1
        return self._due_ms

    def _restart(self, step):
        self._use_step(step)
        self.start()
        return None

    def read_mlux(self):
        """Corrected milli-lux (int) or None (then wait `wait_ms` and call again). No allocation.

        None means: no integration was running (one is started now), the integration is not
        finished yet, or auto-ranging had to change gain/integration time for a usable reading.
        """
        if not self._running:
            self.start()
            return None
        left = self._due_ms - ticks_diff(ticks_ms(), self._t0_ms)
        if left > 0:
            self.wait_ms = left
            return None
        c = self._read(_REG_ALS)
        self._running = False
        shift = self._shift
        if self.auto_range:
            step = self._step
            if c >= _SAT_COUNTS and step > 0:
                return self._restart(0)
            if c < _LOW_COUNTS and step < _TOP:
                new = pick_step(c, shift)
                if new > step:
                    return self._restart(new)
            if (c < _GOOD_LOW or c > _GOOD_HIGH
                    or (_LADDER_GAIN[step] < 2 and (c << shift) >= _HIGH_GAIN_MAX_B)):
                self._use_step(pick_step(c, shift))  # for the next measurement
        x = linear_mlux(c, shift)
        self.over_range = c >= _SAT_COUNTS or x > X_MAX_MLUX
        self.counts = c
        self.mlux = corrected_mlux(x)
        return self.mlux

    def read(self):
        """Corrected lux (float) or None, as read_mlux(). Allocates only the returned float."""
        m = self.read_mlux()
        if m is None:
            return None
        return m / 1000

    def read_white_counts(self):
        """Raw WHITE channel counts of the last integration (wide-band, not lux)."""
        return self._read(_REG_WHITE)

    def set_thresholds(self, low_counts, high_counts):
        """ALS_WL / ALS_WH window in counts (the interrupt itself is not enabled here)."""
        self._write(_REG_WL, low_counts)
        self._write(_REG_WH, high_counts)

    def shutdown(self):
        """ALS_SD: stop integrating (0.5 uA); start() powers it up again."""
        self._write(_REG_CONF, self._conf() | _SD)
        self._running = False


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else 5
