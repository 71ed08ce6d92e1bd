# Two-channel bedside lamp (warm white + amber) on ESP32 LEDC PWM: perceptual fades, sub-LSB
# sigma-delta dithering, flicker-safe carrier; allocation-free update path.
#
# Design (details and sources in docs/light-and-melatonin.md):
# - Carrier 4 kHz by default. IEEE Std 1789-2015 recommended practice: low-risk when
#   Mod% < 0.08 * f for 90-1250 Hz, no observable effect (NOEL) when Mod% < 0.0333 * f for
#   90-3000 Hz, and any modulation above 3 kHz. PWM is 100 % modulation, so >= 3 kHz is NOEL.
# - ESP32 LEDC on the 80 MHz APB clock gives floor(log2(80 MHz / f)) bits (BRIEF: 16 bit at
#   <= 1 kHz, 13 bit at 5 kHz); 4 kHz -> 14 bit, 1 LSB = 0.0061 % of full scale.
# - Brightness is faded in CIE 1976 lightness L* (CIE 15:2004): Y = ((L*+16)/116)^3 above
#   L* = 8, Y = L*/903.3 below. A visible step is defined as > 0.5 L* between two updates; the
#   fade rate is capped so one update never moves more than 0.5 L*.
# - Sub-LSB resolution: first-order sigma-delta on 8 extra fraction bits at the update rate; the
#   dither swings by 1 LSB (<= 903.3 / 2**14 = 0.055 L*), ~9x below the visible-step threshold.
# - Slack on request (a flash erase blocks the interpreter for up to 400 ms): update(dt,
#   slack_ms) may answer "no frame needed for slack_ms". The hold's frame writes the fade where
#   it will be halfway through the hold and rounds a dithering level to the nearest code (error
#   <= 0.5 LSB = 0.028 L*); the fade goes on from there when the hold ends. Granted when each of
#   the hold's two moves stays <= 0.4 L* (rate x slack <= 0.8 L*), or when forced (the fade then
#   pauses for the rest of the hold, never jumping); docs/light-and-melatonin.md.
#
# Use (the board hands over two PWM objects; update() says when it wants to run again):
#     lamp = Lamp(machine.PWM(pin_warm), machine.PWM(pin_amber))   # off
#     lamp.set_target(0.2, 0.05, fade_ms=1000)  # linear output fractions of full
#     while True:
#         due_ms = lamp.update(dt_ms)           # dt_ms since the last call
#         await asyncio.sleep_ms(due_ms)
#     due_ms = lamp.update(dt_ms, 250)          # may the next frame wait 250 ms? yes if >= 250
from array import array

from nsdev.compat import const

WARM = const(0)
AMBER = const(1)

_APB_HZ = const(80000000)
_MAX_BITS = const(16)
_Y_BITS = const(24)  # linear output in units of 2**-24 of full scale
_Y_FULL = const(1 << 24)
_L_FULL = const(100000000)  # lightness in micro-L* (0..100 L*)
_L_STEP = const(500000)  # table spacing: 0.5 L*
_TABLE_N = const(201)
_FRAC_BITS_MAX = const(8)
_SNAP_CODES = const(16)  # levels >= 16 LSB (0.1 %) are rounded to whole codes, no dither
_MAX_MOVE = const(400000)  # one update never moves more than 0.4 L* (a late update slows)
_FADE_STEP = const(200000)  # fades: one update per 0.2 L* (10..250 ms apart)
_SLOW_FRAME_MS = const(250)
_MIN_FREQ_HZ = const(1250)  # IEEE 1789 low-risk bound for 100 % modulation
_MAX_FREQ_HZ = const(40000)
_KAPPA = 903.3  # CIE: (29/3)**3
_EPS = 0.008856  # CIE: (6/29)**3

VISIBLE_STEP_LSTAR = 0.5  # the documented threshold: a jump above this between updates shows


def ledc_resolution_bits(freq_hz):
    """Duty resolution the ESP32 LEDC reaches at freq_hz on the 80 MHz clock (max 16)."""
    q = _APB_HZ // int(freq_hz)
    bits = 0
    while q > 1:
        q >>= 1
        bits += 1
    return min(bits, _MAX_BITS)


def lightness_from_y(y):
    """CIE 1976 L* (0..100) from relative luminance y (0..1)."""
    if y <= _EPS:
        return _KAPPA * y
    return 116.0 * y ** (1.0 / 3.0) - 16.0


def y_from_lightness(lstar):
    """Relative luminance (0..1) from CIE 1976 L*."""
    if lstar <= 8.0:
        return lstar / _KAPPA
    f = (lstar + 16.0) / 116.0
    return f * f * f


def _build_table():
    t = array("i", bytearray(4 * _TABLE_N))
    for i in range(_TABLE_N):
        t[i] = int(y_from_lightness(i * 0.5) * _Y_FULL + 0.5)
    t[_TABLE_N - 1] = _Y_FULL
    return t


_TABLE = _build_table()


class Lamp:
    """Warm + amber lamp. Off at construction; set_target() then call update() at its cadence."""

    def __init__(self, pwm_warm, pwm_amber, freq_hz=4000, resolution_bits=None,
                 max_rate_lps=12, frame_ms=10, idle_ms=1000):
        freq_hz = int(freq_hz)
        if not _MIN_FREQ_HZ <= freq_hz <= _MAX_FREQ_HZ:
            raise ValueError("lamp PWM freq_hz must be 1250..40000 (IEEE 1789 low-risk for 100%% "
                             "modulation needs >= 1250 Hz), got %d" % freq_hz)
        bits = ledc_resolution_bits(freq_hz) if resolution_bits is None else int(resolution_bits)
        if not 8 <= bits <= _MAX_BITS:
            raise ValueError("lamp resolution_bits must be 8..16, got %d" % bits)
        # one update moves <= 0.4 L*; 1 LSB and the table's interpolation add < 0.1 L*
        if max_rate_lps * frame_ms > 400:  # L*/s * ms = milli-L* per frame
            raise ValueError("max_rate_lps too fast: a frame would step more than 0.4 L*")
        self._pwm = (pwm_warm, pwm_amber)
        self.freq_hz = freq_hz
        self.resolution_bits = bits
        self._frac_bits = min(_FRAC_BITS_MAX, _Y_BITS - bits)
        self._shift = _Y_BITS - bits - self._frac_bits
        self._max_rate = int(max_rate_lps * 1000)  # micro-L* per ms
        self.frame_ms = frame_ms
        self.idle_ms = idle_ms
        self._cur = array("i", (0, 0))  # lightness now, micro-L*
        self._tgt = array("i", (0, 0))  # lightness target, micro-L*
        self._rate = array("i", (1, 1))  # micro-L* per ms for the current fade
        self._res = array("i", (0, 0))  # sigma-delta residual, in 2**-frac_bits LSB
        self._y = array("i", (0, 0))  # mean linear output now, 2**-24 of full scale
        self._duty = array("i", (0, 0))  # last duty_u16 written
        self._busy = False
        self._hold = 0  # ms of a granted hold still to run (no frame due before)
        self._owed = 0  # ms of fade the hold's end still owes (the hold less its frame's lead)
        self.holds = 0  # holds granted (slack without a visible effect)
        self.forced_holds = 0  # holds forced on a fast fade: it paused (lagging, never jumping)
        for pwm in self._pwm:  # OFF first, then the carrier, then OFF again (some ports reset)
            pwm.duty_u16(0)
            pwm.freq(freq_hz)
            pwm.duty_u16(0)

    # --- targets (called ~1 Hz by the lamp task; may allocate) -----------------------------
    def set_target(self, warm_y, amber_y, fade_ms=1000):
        """Fade to linear output fractions (0..1 of full) in fade_ms (bounded by max rate)."""
        self._set(WARM, warm_y, fade_ms)
        self._set(AMBER, amber_y, fade_ms)

    def _set(self, ch, y, fade_ms):
        if not (0.0 <= y <= 1.0):  # also rejects NaN
            raise ValueError("lamp level must be 0..1, got %r" % (y,))
        tgt = int(lightness_from_y(y) * 1000000 + 0.5)
        if y > 0.0 and tgt == 0:
            tgt = 1
        tgt = min(tgt, _L_FULL)
        self._tgt[ch] = tgt
        dist = abs(tgt - self._cur[ch])
        if fade_ms <= 0:
            rate = self._max_rate
        else:
            rate = (dist + fade_ms - 1) // fade_ms
        self._rate[ch] = max(1, min(rate, self._max_rate))
        if dist:
            self._busy = True

    def off(self):
        """Dark now (safety/deinit): both channels to 0 without a fade."""
        for ch in (WARM, AMBER):
            self._cur[ch] = self._tgt[ch] = self._res[ch] = self._y[ch] = 0
            self._write(ch, 0)
        self._hold = self._owed = 0

    deinit = off

    # --- hot path (every frame while fading/dithering): no allocation ----------------------
    def update(self, dt_ms, slack_ms=0, force=False):
        """Advance fades by dt_ms, write the duties; return ms until the next call is due.

        slack_ms > 0 asks for that long without a frame (the app's flash work: an erase blocks
        the interpreter). Granted (the return value is then >= slack_ms) when the lamp is
        steady, or when every fade is slow enough that this frame and the one after the hold
        each move <= 0.4 L* (_MAX_MOVE): this frame is written at the fade's position halfway
        through the hold, a dithering level at its nearest whole code. force=True grants it
        regardless: a faster fade then moves <= 0.4 L* now and at the end and pauses between.
        While a hold runs, calls before its end only return the ms left of it."""
        if dt_ms < 0:
            dt_ms = 0
        hold = self._hold
        if hold:
            if dt_ms < hold:
                self._hold = hold - dt_ms
                return hold - dt_ms
            self._hold = 0
            # the hold's frame was written half a hold ahead: the fade owes the other half,
            # and whatever the hold overran
            dt_ms = self._owed + dt_ms - hold
        grant = 0
        slow = True
        if slack_ms > 0:
            slow = self._holdable(WARM, slack_ms) and self._holdable(AMBER, slack_ms)
            if slow or force:
                grant = slack_ms
        lead = grant >> 1
        a = self._step(WARM, dt_ms + lead, grant)
        b = self._step(AMBER, dt_ms + lead, grant)
        if a or b:
            self._busy = True
            if grant:
                self._hold = grant
                self._owed = grant - lead
                self.holds += 1
                if not slow:
                    self.forced_holds += 1
                return grant
            if not a or (b and b < a):
                a = b
            return a
        self._busy = False
        return self.idle_ms

    def _holdable(self, ch, ms):
        # a fade this slow moves <= _MAX_MOVE in half of ms (the hold's frame is centred)
        return self._cur[ch] == self._tgt[ch] or self._rate[ch] * ms <= 2 * _MAX_MOVE

    def _step(self, ch, dt_ms, snap=0):
        # returns 0 when steady, else the ms until this channel needs its next update;
        # snap: a hold begins, a level between two codes is written at the nearest one
        cur = self._cur[ch]
        tgt = self._tgt[ch]
        rate = self._rate[ch]
        if cur != tgt:
            move = rate * dt_ms
            if move > _MAX_MOVE:  # a late update (GC, stall) never jumps
                move = _MAX_MOVE
            if cur < tgt:
                cur = tgt if tgt - cur <= move else cur + move
            else:
                cur = tgt if cur - tgt <= move else cur - move
            self._cur[ch] = cur
        fading = cur != tgt
        # lightness -> linear output by the L* table (0.5 L* spacing, linear interpolation)
        i = cur // _L_STEP
        if i >= _TABLE_N - 1:
            y = _Y_FULL
        else:
            t0 = _TABLE[i]
            y = t0 + ((_TABLE[i + 1] - t0) * ((cur - i * _L_STEP) // 1000)) // (_L_STEP // 1000)
        if cur > 0 and y == 0:
            y = 1
        self._y[ch] = y
        fb = self._frac_bits
        fine = y >> self._shift  # output in 2**-frac_bits LSB
        if fine == 0:
            self._res[ch] = 0
            self._write(ch, 0)
            return self._fade_ms(rate) if fading else 0
        dither = (fine >> fb) < _SNAP_CODES and (fine & ((1 << fb) - 1)) != 0
        if snap or not dither:
            fine = ((fine + (1 << (fb - 1))) >> fb) << fb
            self._res[ch] = 0
        total = fine + self._res[ch]
        code = total >> fb
        self._res[ch] = total - (code << fb)
        self._write(ch, code)
        if dither:
            return self.frame_ms
        return self._fade_ms(rate) if fading else 0

    def _fade_ms(self, rate):
        # frames just often enough that each moves <= 0.2 L*, between frame_ms and 250 ms
        ms = _FADE_STEP // rate
        if ms < self.frame_ms:
            return self.frame_ms
        return ms if ms < _SLOW_FRAME_MS else _SLOW_FRAME_MS

    def _write(self, ch, code):
        bits = self.resolution_bits
        if code >= (1 << bits):
            duty = 65535
        else:
            duty = code << (16 - bits)
        if duty != self._duty[ch]:
            self._duty[ch] = duty
            self._pwm[ch].duty_u16(duty)

    # --- read-back ----------------------------------------------------------------------------
    def busy(self):
        return self._busy

    def holding(self):
        """ms left of a granted hold (0: none)."""
        return self._hold

    def level(self, ch):
        """Mean linear output of channel ch now, 0..1 of full scale."""
        return self._y[ch] / _Y_FULL

    def lightness(self, ch):
        """Current CIE L* of channel ch (0..100)."""
        return self._cur[ch] / 1000000

    def target_lightness(self, ch):
        return self._tgt[ch] / 1000000

    def duty(self, ch):
        return self._duty[ch]

    def lsb_fraction(self):
        """One PWM step as a fraction of full scale."""
        return 1.0 / (1 << self.resolution_bits)
