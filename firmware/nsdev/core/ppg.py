# Streaming PPG pipeline: band-pass, beat detection, per-beat IBI/PWA, per-epoch HR/HRV/SpO2/SQI.
#
# Method (docs/ppg-and-arousal.md has the details and sources):
#  - input: raw MAX30102 counts (18 bit). More blood = more absorption = FEWER counts, so the
#    pipeline works on the inverted signal (pulse peaks become maxima).
#  - band-pass ~0.5-8 Hz as in Elgendi 2013 (PLoS ONE 8:e76585), made of integer-only stages:
#    first difference (removes DC; a DC step from an LED-current change is cut out here), two
#    leaky integrators (high-pass 0.5 Hz each) and a box low-pass of ~60 ms (-3 dB near 8 Hz).
#  - detection: Elgendi's two moving averages of the clipped, squared signal (111 ms "peak" and
#    667 ms "beat", centred), offset alpha = 0.02 * mean; a block of interest at least W1 wide
#    gives one candidate at its maximum; parabolic interpolation gives sub-sample timing.
#  - beat rules for 30-200 bpm: refractory 250 ms (240 bpm) keeps the larger of two candidates;
#    a candidate sooner than 600 ms (or 60% of the running IBI) with < 50% of the previous
#    peak is a dicrotic wave and dropped; one < 20% of the median of the last 5 peaks is
#    filter rebound/noise. Beats are released one candidate late (so a later, larger
#    candidate can still replace a notch).
# Everything run per sample is integer arithmetic on preallocated arrays: feed() and gap()
# allocate nothing (tests/firmware/core/test_ppg_heap.py runs them under heap_lock()).
# Beat delivery: a fixed ring of BEAT_RING beats; the app drains it with pop_beat(out).
import array

import micropython
from micropython import const

ADC_FULL_SCALE = const(262143)  # 18-bit ADC (MAX30102 datasheet 19-7740)

# Flag bits (per beat and per epoch).
NO_CONTACT = const(1)
SATURATED = const(2)
MOTION = const(4)
OVERFLOW = const(8)
LOW_PERFUSION = const(16)
FLAG_NAMES = ("no_contact", "saturated", "motion", "overflow", "low_perfusion")

BEAT_RING = const(32)  # beats held for the app (more than 10 s at 200 bpm)
BEAT_FIELDS = const(4)  # t_ms, ibi_ms, pwa_ppm, flags

_SAT_COUNTS = const(261000)  # at/above: ADC saturated (full scale 262143)
_NO_CONTACT_COUNTS = const(13107)  # below 5% of full scale: nothing reflects the LED
_MIN_IBI_MS = const(300)  # 200 bpm
_REFRACTORY_MS = const(250)  # two candidates closer than this are one beat (240 bpm)
_DICROTIC_MS = const(600)  # a dicrotic wave follows the systolic peak by ~250-500 ms
_MAX_IBI_MS = const(2200)  # ~27 bpm: a bit of room below the 30 bpm spec
MAX_IBI_MS = _MAX_IBI_MS  # public: hosts use it to tell an IBI from a gap
_EPOCH_IBI_MAX = const(128)  # IBIs kept per epoch (200 bpm * 30 s = 100)
_SDNN_EPOCHS = const(10)  # 10 x 30 s = 5 min SDNN
_Q = const(12)  # fixed-point shift of the high-pass coefficient
_LOW_PERFUSION_PPM = const(500)  # perfusion (AC/DC) below 0.05%
# The sample clock is rebased once it passes a day (see rebase()): times stay small ints
# (< 2**30, no heap allocation on the ESP32) and fit array('i') for any uptime.
REBASE_AFTER_MS = const(86400000)
_REBASE_KEEP_S = const(60)


class Epoch:
    """Summary of one epoch; a field is None when it cannot be known honestly."""

    def __init__(self):
        self.t_start_ms = 0
        self.t_end_ms = 0
        self.hr_bpm = None
        self.rmssd_ms = None
        self.sdnn_ms = None
        self.sdnn5_ms = None  # over the last 5 min (10 epochs), pooled
        self.pwa_mean = None  # mean pulse amplitude, ppm of DC (AC/DC * 1e6)
        self.spo2_pct = None
        self.r_ratio = None  # SpO2 ratio of ratios
        self.beats = 0
        self.sqi = 0  # 0-100
        self.flags = 0

    def to_dict(self):
        return {
            "t_start_ms": self.t_start_ms, "t_end_ms": self.t_end_ms, "hr_bpm": self.hr_bpm,
            "rmssd_ms": self.rmssd_ms, "sdnn_ms": self.sdnn_ms, "sdnn5_ms": self.sdnn5_ms,
            "pwa_mean": self.pwa_mean, "spo2_pct": self.spo2_pct, "r_ratio": self.r_ratio,
            "beats": self.beats, "sqi": self.sqi, "flags": self.flags,
        }


def flag_names(flags):
    """List of names of the bits set in a flags value."""
    return [FLAG_NAMES[i] for i in range(len(FLAG_NAMES)) if flags & (1 << i)]


def _pow2_at_least(n):
    p = 1
    while p < n:
        p <<= 1
    return p


def _isqrt(n):
    x = n
    y = (x + 1) // 2
    while y < x:
        x = y
        y = (x + n // x) // 2
    return x


class PPGPipeline:
    """Streaming beat detector and epoch statistics for one PPG sensor.

    feed(red, ir, n): n new samples (array('i') of raw counts; red may be None).
    gap(n_lost): n_lost samples were lost (FIFO overflow); keeps the sample clock right.
    led_changed(): call right after driver.set_led_currents(); the DC step makes no beat.
    beats_available() / pop_beat(out): out[0..3] = t_ms, ibi_ms (0 = unknown), pwa_ppm, flags.
    close_epoch() -> Epoch for everything fed since the previous call.
    """

    def __init__(self, fs_hz, spo2_a=110.0, spo2_b=25.0):
        # The board runs the FIFO at 50 or 100 Hz; below 50 Hz a 200-bpm beat is < 8 samples and
        # the 667-ms beat window no longer separates beats reliably.
        if not 50 <= fs_hz <= 400:
            raise ValueError("fs_hz must be 50..400, got %r" % (fs_hz,))
        fs = int(fs_hz)
        self.fs_hz = fs
        # SpO2 = a - b * R; uncalibrated default 110 - 25 R (set_spo2_calibration per device).
        self.spo2_a = spo2_a
        self.spo2_b = spo2_b
        self.no_contact_counts = _NO_CONTACT_COUNTS
        # Filter constants.
        self._hk = int(6.2832 * 0.5 / fs * (1 << _Q) + 0.5)  # high-pass 0.5 Hz
        self._hmax = (1 << 29) // self._hk
        self._box = max(2, int(0.06 * fs + 0.5))  # box low-pass, first null at 1/60 ms
        w1 = int(0.111 * fs + 0.5)
        w1 = max(3, (w1 - 1) | 1)  # odd, <= 111 ms
        w2 = int(0.667 * fs + 0.5) | 1  # odd, ~667 ms
        self._w1 = w1
        self._w2 = w2
        self._ring = _pow2_at_least(2 * w2 + 4)
        self._ycap = _isqrt((1 << 29) // (w1 * w2))
        ys = 0
        while (1 << ys) < 8 * fs:  # ~8-10 s mean of the squared signal
            ys += 1
        self._ys = ys
        es = 0
        while (1 << es) < 2 * fs:  # envelope decay ~2-3 s
            es += 1
        self._es = es
        # Delay of the centred detection point behind the newest sample, in 1/256 sample:
        # box low-pass (L-1)/2 samples; the detection centre is (w2-1)/2 samples back (handled
        # by indexing).
        self._delay256 = (self._box - 1) * 128
        self._blank_n = w2 + self._box + fs // 2
        self._box_buf = array.array("i", [0] * self._box)
        self._ry = array.array("i", [0] * self._ring)
        self._rs = array.array("i", [0] * self._ring)
        self._beats = array.array("i", [0] * (BEAT_RING * BEAT_FIELDS))
        self._amp_hist = array.array("i", [0] * 5)
        self._b_hist = array.array("i", [0] * 5)
        self._amp_srt = array.array("i", [0] * 5)
        self._ep_ibi = array.array("h", [0] * _EPOCH_IBI_MAX)
        self._sd_n = array.array("i", [0] * _SDNN_EPOCHS)
        self._sd_sum = array.array("i", [0] * _SDNN_EPOCHS)
        self._sd_sq = array.array("i", [0] * _SDNN_EPOCHS)
        self._sd_pos = 0
        self.beats_dropped = 0
        self.reset()

    def set_spo2_calibration(self, a, b):
        """Per-device curve SpO2 = a - b * R (fitted against a reference oximeter)."""
        self.spo2_a = a
        self.spo2_b = b

    def reset(self):
        """Forget the signal (not the clock): used at start and by the app after a long stop."""
        self.n_samples = 0  # sample clock: samples since start, lost ones included
        self._pos = 0  # samples actually fed (ring position counter)
        self._lost = 0  # sample index minus ring position (lost samples, less rebases)
        self._ir_prev = -1
        self._red_prev = -1
        self._dc_ir = 0  # counts * 16
        self._dc_red = 0
        self._h1 = 0
        self._h2 = 0
        self._h1p = 0
        self._hr1 = 0
        self._bsum = 0
        self._bpos = 0
        for i in range(self._box):
            self._box_buf[i] = 0
        for i in range(self._ring):
            self._ry[i] = 0
            self._rs[i] = 0
        self._sum_beat = 0
        self._sum_peak = 0
        self._ymean = 0
        self._env = 0
        self._gs = 0
        self._blank = self._blank_n
        self._inb = 0
        self._width = 0
        self._bmax = 0
        self._bmpos = 0
        self._trough = 0
        self._foot = 0
        self._bflags = 0
        self._step_pending = 1
        # Beat state (touched once per beat).
        self._pend_t = -1  # pending candidate time (ms), -1 = none
        self._pend_amp = 0
        self._pend_b = 0
        self._peak_ref = 0
        self._pend_flags = 0
        self._pend_dc = 0
        self._pend_deadline = 0
        self._sb_t = -1  # search-back candidate (see _candidate), -1 = none
        self._sb_amp = 0
        self._sb_b = 0
        self._sb_dc = 0
        self._last_t = -1  # time of the last released beat, -1 = none (IBI unknown)
        self._ibi_ref = 0
        self._amp_ref = 0
        self._amp_i = 0
        self._amp_n = 0
        self._n_small = 0
        for i in range(5):
            self._amp_hist[i] = 0
        self._b_head = 0
        self._b_count = 0
        self._new_epoch_accumulators()

    def _new_epoch_accumulators(self):
        self._ep_t0 = self.time_ms()
        self._ep_n = 0
        self._ep_sat = 0
        self._ep_nc = 0
        self._ep_mot = 0
        self._ep_lost = 0
        self._ep_nibi = 0
        self._ep_beats = 0
        self._ep_pwa = 0
        self._ep_ac_ir = 0
        self._ep_ac_red = 0
        self._ep_dc_ir = 0
        self._ep_dc_red = 0
        self._ep_clean = 0

    # ----------------------------------------------------------------- clock and DC
    def time_ms(self):
        """Sample clock in ms since the pipeline started (lost samples included)."""
        s = self.n_samples
        fs = self.fs_hz
        return (s // fs) * 1000 + (s % fs) * 1000 // fs

    def rebase(self, after_ms=REBASE_AFTER_MS):
        """Move the sample clock's origin forward once it passes after_ms, by whole seconds (all
        but the last minute). Without it, times in ms pass 2**30 after 12.4 days (long ints on
        the ESP32) and overflow array('i') after 24.8. Ring positions move by whole rings only,
        so the filters and windows are untouched. Returns the ms subtracted from every time
        this pipeline hands out (0: nothing done); the caller moves its own origin by as much."""
        if self.time_ms() < after_ms:
            return 0
        fs = self.fs_hz
        sec = self.n_samples // fs - _REBASE_KEEP_S
        if sec <= 0:
            return 0
        k = sec * fs
        ring = self._ring
        k_pos = (self._pos - 2 * ring) // ring * ring
        if k_pos > k:
            k_pos = k // ring * ring
        if k_pos < 0:
            k_pos = 0
        d = sec * 1000
        self.n_samples -= k
        self._pos -= k_pos
        self._bmpos -= k_pos
        if self._pend_deadline:
            self._pend_deadline -= k_pos
        self._lost -= k - k_pos
        if self._pend_t >= 0:
            self._pend_t -= d
        if self._sb_t >= 0:
            self._sb_t -= d
        if self._last_t >= 0:
            self._last_t -= d
        self._ep_t0 -= d
        beats = self._beats
        for i in range(self._b_count):
            beats[((self._b_head + i) % BEAT_RING) * BEAT_FIELDS] -= d
        return d

    def dc_ir_counts(self):
        return self._dc_ir >> 4

    def dc_red_counts(self):
        return self._dc_red >> 4

    def led_changed(self):
        """The LED current just changed: treat the next sample as a DC step (no false beat)."""
        self._step_pending = 1

    def gap(self, n_lost):
        """n_lost samples were lost (FIFO overflow): advance the clock, restart detection."""
        if n_lost <= 0:
            return
        self.n_samples += n_lost
        self._lost += n_lost
        self._ep_lost += n_lost
        self._step_pending = 1
        self._flush_pending()
        self._last_t = -1  # the IBI across a gap is unknown
        self._bflags |= OVERFLOW

    # ----------------------------------------------------------------- per-sample path
    @micropython.native
    def feed(self, red, ir, n):
        """Process n samples from array('i') buffers of raw counts (red may be None)."""
        if n <= 0:
            return
        hk = self._hk
        hmax = self._hmax
        hmin = -hmax
        box = self._box
        boxbuf = self._box_buf
        ry = self._ry
        rs = self._rs
        mask = self._ring - 1
        w1 = self._w1
        w2 = self._w2
        h2i = (w2 - 1) >> 1
        h1i = (w1 - 1) >> 1
        w1w2 = w1 * w2
        ycap = self._ycap
        ys = self._ys
        es = self._es
        nocontact = self.no_contact_counts
        ir_prev = self._ir_prev
        red_prev = self._red_prev
        dc_ir = self._dc_ir
        dc_red = self._dc_red
        h1 = self._h1
        h2 = self._h2
        h1p = self._h1p
        hr1 = self._hr1
        bsum = self._bsum
        bpos = self._bpos
        pos = self._pos
        sum_beat = self._sum_beat
        sum_peak = self._sum_peak
        ymean = self._ymean
        env = self._env
        gs = self._gs
        blank = self._blank
        inb = self._inb
        width = self._width
        bmax = self._bmax
        bmpos = self._bmpos
        trough = self._trough
        bflags = self._bflags
        step = self._step_pending
        ep_sat = 0
        ep_nc = 0
        ep_mot = 0
        ep_clean = 0
        ac_ir = 0
        ac_red = 0
        dcs_ir = 0
        dcs_red = 0
        amp_ref = self._amp_ref
        deadline = self._pend_deadline
        has_red = red is not None
        for i in range(n):
            x = ir[i]
            xr = red[i] if has_red else 0
            bad = 0
            if x >= _SAT_COUNTS or xr >= _SAT_COUNTS:
                bad = SATURATED
                ep_sat += 1
            if x < nocontact:
                bad |= NO_CONTACT
                ep_nc += 1
            if x < 0:
                x = 0
            elif x > ADC_FULL_SCALE:  # not an 18-bit sample: clamp (counted as saturated)
                x = ADC_FULL_SCALE
            if xr < 0:
                xr = 0
            elif xr > ADC_FULL_SCALE:
                xr = ADC_FULL_SCALE
            # DC trackers (counts * 16); a large one-sample jump is a step (LED change, motion).
            x16 = x << 4
            steplim = (dc_ir >> 7) + 160  # > 1/8 of DC (+10 counts) in one sample
            dx = ir_prev - x  # inverted: a pulse makes fewer counts
            if ir_prev < 0 or step or dx > steplim or -dx > steplim:
                if not step and ir_prev >= 0:
                    bad |= MOTION
                step = 0
                dx = 0
                dc_ir = x16
                dc_red = xr << 4
                blank = self._blank_n
                red_prev = xr
            dc_ir += (x16 - dc_ir) >> es
            ir_prev = x
            # Band-pass: two leaky integrators (0.5 Hz high-pass each) and a box low-pass.
            h1 += (dx << 4) - ((h1 * hk) >> _Q)
            if h1 > hmax:
                h1 = hmax
            elif h1 < hmin:
                h1 = hmin
            h2 += (h1 - h1p) - ((h2 * hk) >> _Q)
            h1p = h1
            if h2 > hmax:
                h2 = hmax
            elif h2 < hmin:
                h2 = hmin
            bsum += h2 - boxbuf[bpos]
            boxbuf[bpos] = h2
            bpos += 1
            if bpos >= box:
                bpos = 0
            f = bsum // box
            # Red: one high-pass stage is enough for the ratio of ratios.
            if has_red:
                dc_red += ((xr << 4) - dc_red) >> es
                hr1 += ((red_prev - xr) << 4) - ((hr1 * hk) >> _Q)
                if hr1 > hmax:
                    hr1 = hmax
                elif hr1 < hmin:
                    hr1 = hmin
                red_prev = xr
            # Envelope of |f| and motion: far above the pulse amplitude seen in recent beats.
            af = f if f >= 0 else -f
            if af > env:
                env = af
            else:
                env -= env >> es
            if amp_ref > 0 and af > 3 * amp_ref:
                bad |= MOTION
            if bad & MOTION:
                ep_mot += 1
            if bad:
                bflags |= bad
            else:
                ep_clean += 1
                a1 = h1 if h1 >= 0 else -h1
                ac_ir += a1 >> 4
                dcs_ir += dc_ir >> 8
                if has_red:
                    a1 = hr1 if hr1 >= 0 else -hr1
                    ac_red += a1 >> 4
                    dcs_red += dc_red >> 8
            # Detection signal: clipped, scaled, squared (Elgendi 2013).
            v = (f >> gs) if f > 0 else 0
            if v > ycap:
                v = ycap
            y = v * v
            p = pos & mask
            ry[p] = y
            rs[p] = f
            sum_beat += y - ry[(pos - w2) & mask]
            sum_peak += ry[(pos - h2i + h1i) & mask] - ry[(pos - h2i - h1i - 1) & mask]
            ymean += (y - ymean) >> ys
            cpos = pos - h2i
            sc = rs[cpos & mask]
            pos += 1
            if blank > 0:
                blank -= 1
                inb = 0
                trough = sc
            elif sum_peak * w2 > sum_beat * w1 + (ymean * w1w2) // 50:
                if not inb:
                    inb = 1
                    width = 0
                    bmax = sc
                    bmpos = cpos
                width += 1
                if sc > bmax:
                    bmax = sc
                    bmpos = cpos
                if width > mask - h2i - 2:  # block longer than the ring: not a pulse
                    inb = 0
                    trough = sc
            else:
                if inb:
                    inb = 0
                    if width >= w1:
                        self._candidate(bmpos, bmax, bmax - trough, bflags, dc_ir, pos)
                        bflags = 0
                        amp_ref = self._amp_ref
                        deadline = self._pend_deadline
                    trough = sc
                elif sc < trough:
                    trough = sc
            if deadline and pos > deadline:
                self._flush_pending()
                deadline = 0
            # Rescale the detection signal so v stays in [ycap/8, ycap] (rare, not per sample).
            if (pos & 15) == 0:
                e = env >> gs
                if e > ycap:
                    gs += 1
                    self._rescale(-2)
                    sum_beat >>= 2
                    sum_peak = self._sum_window(pos, h2i, h1i)
                    sum_beat = self._sum_window(pos, 0, 0)
                    ymean >>= 2
                elif gs > 0 and e < (ycap >> 3):
                    gs -= 1
                    self._rescale(2)
                    sum_peak = self._sum_window(pos, h2i, h1i)
                    sum_beat = self._sum_window(pos, 0, 0)
                    # No sample can exceed ycap**2 at the new scale, so neither can their mean:
                    # the cap keeps the threshold term below 2**30 (a small int on the ESP32,
                    # no heap allocation) after a large burst decays.
                    ymean <<= 2
                    if ymean > ycap * ycap:
                        ymean = ycap * ycap
        self.n_samples += n
        self._pos = pos
        self._ir_prev = ir_prev
        self._red_prev = red_prev
        self._dc_ir = dc_ir
        self._dc_red = dc_red
        self._h1 = h1
        self._h2 = h2
        self._h1p = h1p
        self._hr1 = hr1
        self._bsum = bsum
        self._bpos = bpos
        self._sum_beat = sum_beat
        self._sum_peak = sum_peak
        self._ymean = ymean
        self._env = env
        self._gs = gs
        self._blank = blank
        self._inb = inb
        self._width = width
        self._bmax = bmax
        self._bmpos = bmpos
        self._trough = trough
        self._bflags = bflags
        self._step_pending = step
        self._ep_n += n
        self._ep_sat += ep_sat
        self._ep_nc += ep_nc
        self._ep_mot += ep_mot
        self._ep_clean += ep_clean
        self._ep_ac_ir += ac_ir
        self._ep_ac_red += ac_red
        self._ep_dc_ir += dcs_ir
        self._ep_dc_red += dcs_red

    def _rescale(self, shift):
        ry = self._ry
        if shift > 0:
            for i in range(self._ring):
                ry[i] = ry[i] << shift
        else:
            for i in range(self._ring):
                ry[i] = ry[i] >> -shift

    def _sum_window(self, pos, h2i, h1i):
        # Sum of ry over the beat window (h2i == 0) or the centred peak window.
        ry = self._ry
        mask = self._ring - 1
        s = 0
        if h2i == 0:
            for k in range(1, self._w2 + 1):
                s += ry[(pos - k) & mask]
        else:
            c = pos - 1 - h2i
            for k in range(-h1i, h1i + 1):
                s += ry[(c + k) & mask]
        return s

    # ----------------------------------------------------------------- per-beat path
    def _candidate(self, cpos, b, amp, flags, dc16, pos):
        # A block of interest closed: its maximum is at ring position cpos (value b).
        rs = self._rs
        mask = self._ring - 1
        a = rs[(cpos - 1) & mask]
        c = rs[(cpos + 1) & mask]
        den = a - 2 * b + c
        d256 = 0
        if den < 0:
            d256 = (128 * (a - c)) // den
            if d256 > 128:
                d256 = 128
            elif d256 < -128:
                d256 = -128
        fs = self.fs_hz
        s = cpos + self._lost  # sample index of the maximum
        frac = (s % fs) * 256 + d256 - self._delay256
        t_ms = (s // fs) * 1000 + (frac * 1000) // (fs * 256)
        if amp > (1 << 19):
            amp = 1 << 19
        if amp < 0:
            amp = 0
        # Far smaller than recent beats (filter rebound after a slow beat, noise): not a beat.
        # Each rejection lowers the reference, so a real drop in amplitude is followed in ~6.
        pr = self._peak_ref
        if pr and b * 5 < pr and self._n_small < 3:
            self._n_small += 1
            return
        self._n_small = 0
        pt = self._pend_t
        if pt >= 0:
            dt = t_ms - pt
            ref = self._ibi_ref
            # Dicrotic window: 600 ms until the rhythm is known, then 3/4 of the running IBI
            # (at most 600 ms; 6/10 of it at slow rates): a candidate on time for the next beat
            # is not a dicrotic wave, whatever its size.
            win = _DICROTIC_MS
            if ref:
                win = (ref * 3) >> 2
                if win > _DICROTIC_MS:
                    win = _DICROTIC_MS
                if win * 10 < ref * 6:
                    win = (ref * 6) // 10
            if dt < _REFRACTORY_MS or (dt < win and amp * 2 < self._pend_amp):
                # Too soon for a new beat: keep the larger of the two (dicrotic wave, noise).
                if b > self._pend_b and dt < _REFRACTORY_MS:
                    self._pend_t = t_ms
                    self._pend_amp = amp
                    self._pend_b = b
                    self._pend_flags |= flags
                    self._pend_dc = dc16
                else:
                    self._pend_flags |= flags
                    # Kept for the search-back below: the largest dropped candidate.
                    if dt >= _REFRACTORY_MS and amp > self._sb_amp:
                        self._sb_t = t_ms
                        self._sb_amp = amp
                        self._sb_b = b
                        self._sb_dc = dc16
                return
            if self._pend_b * 5 < b:
                self._pend_t = -1  # the held candidate was noise next to this real beat
            else:
                pa = self._pend_amp
                self._release()
                # Search-back (Pan & Tompkins 1985): no beat for 1.5 running IBIs, but a
                # candidate was dropped as a dicrotic wave in between - it was a premature
                # beat (its pulse is smaller: less filling) and this is its compensatory pause.
                sb = self._sb_t
                if (sb >= 0 and ref and dt * 2 > ref * 3 and t_ms - sb >= _REFRACTORY_MS
                        and self._sb_amp * 4 >= pa):
                    self._pend_t = sb
                    self._pend_amp = self._sb_amp
                    self._pend_b = self._sb_b
                    self._pend_flags = 0
                    self._pend_dc = self._sb_dc
                    self._release()
        self._sb_t = -1
        self._sb_amp = 0
        self._pend_t = t_ms
        self._pend_amp = amp
        self._pend_b = b
        self._pend_flags = flags
        self._pend_dc = dc16
        # Released at the next candidate or after the longest IBI (in ring positions).
        self._n_small = 0
        self._pend_deadline = pos + _MAX_IBI_MS * fs // 1000

    def _flush_pending(self):
        if self._pend_t >= 0:
            self._release()
        self._pend_deadline = 0

    def _release(self):
        t_ms = self._pend_t
        amp = self._pend_amp
        b = self._pend_b
        flags = self._pend_flags
        dc16 = self._pend_dc
        self._pend_t = -1
        ibi = 0
        if self._last_t >= 0:
            ibi = t_ms - self._last_t
            if ibi > 30000:
                ibi = 0
        self._last_t = t_ms
        q = dc16 // 1000
        pwa = (amp * 1000) // q if q > 0 else 0
        # Motion and peak references: medians of the last 5 beats (any flags, so they recover).
        i = self._amp_i
        self._amp_hist[i] = amp
        self._b_hist[i] = b
        self._amp_i = (i + 1) % 5
        self._amp_n += 1
        if self._amp_n >= 5:
            self._amp_ref = self._median5(self._amp_hist)
            self._peak_ref = self._median5(self._b_hist)
        # References for the rules above (only from clean beats in range).
        if flags == 0:
            if _MIN_IBI_MS <= ibi <= _MAX_IBI_MS:
                ref = self._ibi_ref
                if ref == 0:
                    self._ibi_ref = ibi
                else:
                    self._ibi_ref = ref + ((ibi - ref) >> 3)
        # Into the app's ring (the oldest beat is dropped when full).
        beats = self._beats
        if self._b_count >= BEAT_RING:
            self._b_head = (self._b_head + 1) % BEAT_RING
            self._b_count -= 1
            self.beats_dropped += 1
        k = ((self._b_head + self._b_count) % BEAT_RING) * BEAT_FIELDS
        beats[k] = t_ms
        beats[k + 1] = ibi
        beats[k + 2] = pwa
        beats[k + 3] = flags
        self._b_count += 1
        # Epoch accumulators.
        self._ep_beats += 1
        if flags == 0 and _MIN_IBI_MS <= ibi <= _MAX_IBI_MS and self._ep_nibi < _EPOCH_IBI_MAX:
            self._ep_ibi[self._ep_nibi] = ibi
            self._ep_nibi += 1
            self._ep_pwa += pwa

    def _median5(self, hist):
        srt = self._amp_srt
        for i in range(5):
            v = hist[i]
            j = i
            while j > 0 and srt[j - 1] > v:
                srt[j] = srt[j - 1]
                j -= 1
            srt[j] = v
        return srt[2]

    # ----------------------------------------------------------------- app side
    def flush(self):
        """Release the beat held back for the refractory rule (end of recording/night)."""
        self._flush_pending()

    def beats_available(self):
        return self._b_count

    def pop_beat(self, out):
        """Copy the oldest beat into out[0..3] (t_ms, ibi_ms, pwa_ppm, flags); False if none."""
        if self._b_count == 0:
            return False
        k = self._b_head * BEAT_FIELDS
        beats = self._beats
        out[0] = beats[k]
        out[1] = beats[k + 1]
        out[2] = beats[k + 2]
        out[3] = beats[k + 3]
        self._b_head = (self._b_head + 1) % BEAT_RING
        self._b_count -= 1
        return True

    def close_epoch(self):
        """Statistics of the samples and beats since the previous call (allocates; not hot)."""
        ep = Epoch()
        ep.t_start_ms = self._ep_t0
        ep.t_end_ms = self.time_ms()
        n = self._ep_n + self._ep_lost
        flags = 0
        if n > 0:
            if self._ep_nc * 10 > n:
                flags |= NO_CONTACT
            if self._ep_sat * 100 > n:
                flags |= SATURATED
            if self._ep_mot * 20 > n:
                flags |= MOTION
        if self._ep_lost > 0:
            flags |= OVERFLOW
        ibis = self._ep_ibi
        m = self._ep_nibi
        ep.beats = self._ep_beats
        # Normal-to-normal IBIs: within 30% of the epoch median (artefact/ectopic rejection).
        nn = sorted(ibis[i] for i in range(m))
        med = nn[m // 2] if m else 0
        s = 0
        sq = 0
        k = 0
        ssd = 0
        nsd = 0
        prev = 0
        for i in range(m):
            v = ibis[i]
            if abs(v - med) * 10 <= med * 3:
                s += v
                sq += v * v
                k += 1
                if prev:
                    ssd += (v - prev) * (v - prev)
                    nsd += 1
                prev = v
            else:
                prev = 0
        clean_frac = self._ep_clean / n if n else 0.0
        if k >= 3 and clean_frac >= 0.5:
            ep.hr_bpm = 60000.0 * k / s
            mean = s / k
            ep.sdnn_ms = (max(0.0, sq / k - mean * mean)) ** 0.5
            if nsd >= 2:
                ep.rmssd_ms = (ssd / nsd) ** 0.5
            ep.pwa_mean = self._ep_pwa / m
            if ep.pwa_mean < _LOW_PERFUSION_PPM:
                flags |= LOW_PERFUSION
        # 5-minute SDNN, pooled over the last 10 epochs' normal IBIs.
        j = self._sd_pos
        self._sd_n[j] = k if ep.hr_bpm is not None else 0
        self._sd_sum[j] = s if ep.hr_bpm is not None else 0
        self._sd_sq[j] = (sq // 16) if ep.hr_bpm is not None else 0
        self._sd_pos = (j + 1) % _SDNN_EPOCHS
        tn = sum(self._sd_n)
        if tn >= 20:
            ts = sum(self._sd_sum)
            tq = 16.0 * sum(self._sd_sq)
            mean = ts / tn
            ep.sdnn5_ms = (max(0.0, tq / tn - mean * mean)) ** 0.5
        # SpO2 by ratio of ratios from the clean samples.
        c = self._ep_clean
        if (self._ep_ac_red > 0 and self._ep_ac_ir > 0 and c >= n // 2 and c > 0
                and self._ep_dc_red > 0 and ep.hr_bpm is not None):
            r = (self._ep_ac_red / self._ep_dc_red) / (self._ep_ac_ir / self._ep_dc_ir)
            ep.r_ratio = r
            spo2 = self.spo2_a - self.spo2_b * r
            if spo2 > 100.0:
                spo2 = 100.0
            if spo2 >= 50.0:
                ep.spo2_pct = spo2
        # Signal quality 0-100: clean fraction times fraction of normal IBIs.
        norm_frac = k / m if m else 0.0
        ep.sqi = int(100 * clean_frac * norm_frac + 0.5) if ep.hr_bpm is not None else 0
        ep.flags = flags
        self._new_epoch_accumulators()
        return ep


class LEDController:
    """Proposes LED currents that keep the DC level in the ADC's useful range.

    Codes are the MAX30102 LED pulse-amplitude register values (0.2 mA per LSB, 0x00-0xFF,
    datasheet 19-7740). Call update() about once per second with the pipeline's DC levels;
    it returns None (no change) or (red_code, ir_code). Hysteresis: a change is proposed only
    when DC has been outside lo..hi % of full scale for `hold` consecutive calls (at once when
    near saturation), and it aims at target %. With no contact (DC < 5% FS) it keeps quiet.
    """

    def __init__(self, red_code=0x24, ir_code=0x24, lo_pct=30, hi_pct=80, target_pct=55,
                 hold=3, min_code=1, max_code=255):
        self.red_code = red_code
        self.ir_code = ir_code
        self.lo = ADC_FULL_SCALE * lo_pct // 100
        self.hi = ADC_FULL_SCALE * hi_pct // 100
        self.target = ADC_FULL_SCALE * target_pct // 100
        self.hold = hold
        self.min_code = min_code
        self.max_code = max_code
        self._out_red = 0
        self._out_ir = 0

    def _one(self, dc, code, count):
        if dc < _NO_CONTACT_COUNTS:
            return code, 0
        if self.lo <= dc <= self.hi:
            return code, 0
        count += 1
        if count < self.hold and dc < _SAT_COUNTS * 95 // 100:
            return code, count
        new = code * self.target // dc if dc > 0 else self.max_code
        if new < self.min_code:
            new = self.min_code
        if new > self.max_code:
            new = self.max_code
        if new == code and dc > self.hi and code > self.min_code:
            new = code - 1
        elif new == code and dc < self.lo and code < self.max_code:
            new = code + 1
        return new, 0

    def update(self, dc_red, dc_ir):
        red, self._out_red = self._one(dc_red, self.red_code, self._out_red)
        ir, self._out_ir = self._one(dc_ir, self.ir_code, self._out_ir)
        if red == self.red_code and ir == self.ir_code:
            return None
        self.red_code = red
        self.ir_code = ir
        return red, ir
