# Reference for tests/firmware/core/test_ppg_viper.py: the PPG pipeline as it was before feed()
# became viper (main 0775bf6, @micropython.native on object ints), kept verbatim below this
# header so the new feed() can be checked against it sample for sample on every interpreter.
# Not firmware: nothing imports it but that test.
# Streaming PPG pipeline: band-pass filters, beat detection (the per-sample hot loop), the
# sample clock; per-beat rules in ppgbeats, per-epoch HR/HRV/SpO2/SQI in ppgepoch, flags and ADC
# limits in ppgdefs, LED control in ppgled.
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
#  - the candidates go to ppgbeats.BeatRules (refractory, dicrotic, search-back), which releases
#    beats one candidate late into a fixed ring the app drains with pop_beat(out).
# Everything run per sample is integer arithmetic on preallocated arrays: feed() and gap()
# allocate nothing (tests/firmware/core/test_ppg_heap.py runs them under heap_lock()).
import array

import micropython
from nsdev.compat import const
from nsdev.core import ppgdefs
from nsdev.core.ppgbeats import BeatRules
from nsdev.core.ppgepoch import EpochStats

_Q = const(12)  # fixed-point shift of the high-pass coefficient
# The sample clock is rebased once it passes a day (see rebase()): times stay small ints
# (< 2**30, no heap allocation on the ESP32) and fit array('i') for any uptime.
REBASE_AFTER_MS = const(86400000)
_REBASE_KEEP_S = const(60)


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
    """Streaming beat detector for one PPG sensor, with its beat rules and epoch statistics.

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
        self.no_contact_counts = ppgdefs.NO_CONTACT_COUNTS
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
        # SpO2 = a - b * R; uncalibrated default 110 - 25 R (set_spo2_calibration per device).
        self._epoch = EpochStats(spo2_a, spo2_b)
        self._rules = BeatRules(fs, self._epoch)
        self.reset()

    def set_spo2_calibration(self, a, b):
        """Per-device curve SpO2 = a - b * R (fitted against a reference oximeter)."""
        self._epoch.spo2_a = a
        self._epoch.spo2_b = b

    @property
    def beats_dropped(self):
        """Beats dropped because the app did not drain the ring in time."""
        return self._rules.dropped

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
        self._warm = 1 << self._ys  # start-up: the threshold's mean is settling
        self._inb = 0
        self._width = 0
        self._bmax = 0
        self._bmpos = 0
        self._trough = 0
        self._bflags = 0
        self._step_pending = 1
        self._rules.reset()
        self._epoch.start(self.time_ms())

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
        self._lost -= k - k_pos
        self._rules.rebase(d, k_pos)
        self._epoch.t0_ms -= d
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
        self._epoch.lost += n_lost
        self._step_pending = 1
        self._rules.gap()  # the IBI across a gap is unknown
        self._bflags |= ppgdefs.OVERFLOW

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
        sat_counts = ppgdefs.SAT_COUNTS  # read once, not per sample
        full_scale = ppgdefs.ADC_FULL_SCALE
        f_sat = ppgdefs.SATURATED
        f_nc = ppgdefs.NO_CONTACT
        f_mot = ppgdefs.MOTION
        rules = self._rules
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
        warm = self._warm
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
        amp_ref = rules.amp_ref
        deadline = rules.deadline
        has_red = red is not None
        for i in range(n):
            x = ir[i]
            xr = red[i] if has_red else 0
            bad = 0
            if x >= sat_counts or xr >= sat_counts:
                bad = f_sat
                ep_sat += 1
            if x < nocontact:
                bad |= f_nc
                ep_nc += 1
            if x < 0:
                x = 0
            elif x > full_scale:  # not an 18-bit sample: clamp (counted as saturated)
                x = full_scale
            if xr < 0:
                xr = 0
            elif xr > full_scale:
                xr = full_scale
            # DC trackers (counts * 16); a large one-sample jump is a step (LED change, motion).
            x16 = x << 4
            steplim = (dc_ir >> 7) + 160  # > 1/8 of DC (+10 counts) in one sample
            dx = ir_prev - x  # inverted: a pulse makes fewer counts
            if ir_prev < 0 or step or dx > steplim or -dx > steplim:
                if not step and ir_prev >= 0:
                    bad |= f_mot
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
                bad |= f_mot
            if bad & f_mot:
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
                        amp_ref = rules.amp_ref
                        deadline = rules.deadline
                    trough = sc
                elif sc < trough:
                    trough = sc
            if deadline and pos > deadline:
                rules.flush()
                deadline = 0
            # Rescale the detection signal so v stays in [ycap/8, ycap] (rare, not per sample).
            if (pos & 15) == 0:
                e = env >> gs
                if warm > 0:
                    warm -= 16
                if e > ycap:
                    # One halving per 16 samples: clipping v at ycap meanwhile keeps a motion
                    # burst from swamping the threshold's 8-s mean. At start-up there is no
                    # history to protect: as many halvings as needed at once (one step at a time
                    # left a strong pulse clipped, flat-topped and its second beat undetected).
                    k = 1
                    while warm > 0 and (e >> k) > ycap:
                        k += 1
                    gs += k
                    self._rescale(-2 * k)
                    sum_peak = self._sum_window(pos, h2i, h1i)
                    sum_beat = self._sum_window(pos, 0, 0)
                    ymean >>= 2 * k
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
        self._warm = warm
        self._inb = inb
        self._width = width
        self._bmax = bmax
        self._bmpos = bmpos
        self._trough = trough
        self._bflags = bflags
        self._step_pending = step
        ep = self._epoch
        ep.n += n
        ep.sat += ep_sat
        ep.nc += ep_nc
        ep.mot += ep_mot
        ep.clean += ep_clean
        ep.ac_ir += ac_ir
        ep.ac_red += ac_red
        ep.dc_ir += dcs_ir
        ep.dc_red += dcs_red

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

    # ----------------------------------------------------------------- per-candidate path
    def _candidate(self, cpos, b, amp, flags, dc16, pos):
        # A block of interest closed: its maximum is at ring position cpos (value b). Its time
        # by parabolic interpolation, less the box low-pass delay; the rules decide the rest.
        rs = self._rs
        mask = self._ring - 1
        a = rs[(cpos - 1) & mask]
        c = rs[(cpos + 1) & mask]
        if a > b or c > b or amp <= 0:
            # Not a pulse's peak: not a local maximum, or no rise before it. The block opened
            # on a falling edge or a flat (its peak blanked, e.g. at start-up) or closed on a
            # rising one: its time would be an edge, not a beat.
            return
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
        self._rules.candidate(t_ms, b, amp, flags, dc16, pos)

    # ----------------------------------------------------------------- app side
    def flush(self):
        """Release the beat held back for the refractory rule (end of recording/night)."""
        self._rules.flush()

    def beats_available(self):
        return self._rules.available()

    def pop_beat(self, out):
        """Copy the oldest beat into out[0..3] (t_ms, ibi_ms, pwa_ppm, flags); False if none."""
        return self._rules.pop(out)

    def close_epoch(self):
        """Statistics of the samples and beats since the previous call (allocates; not hot)."""
        return self._epoch.close(self.time_ms())
