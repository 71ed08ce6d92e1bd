# Breathing rate from beats: respiratory modulation of the beat intervals (respiratory sinus
# arrhythmia: frequency modulation) and of the pulse amplitude (amplitude modulation), fused.
#
# Method (docs/sleep.md, "Breathing rate"):
#  - a 64-s window of valid beats (no artefact flag, IBI 273-2200 ms, within 35% of the previous);
#  - per modulation, the power spectrum of the mean-removed beat series (unevenly sampled at the
#    beat times: a direct Fourier sum, as in Lomb's periodogram without its normalisation) over
#    6-30 breaths/min in 0.25/min steps; the peak must hold >= PEAK_SHARE of the band's power and
#    lie below half the heart rate (the beat series samples the breathing once per beat);
#  - fusion ("smart fusion", Karlen et al. 2013, IEEE TBME 60:1946): both modulations known and
#    within 4 breaths/min of each other -> their mean; they disagree -> unknown; only the
#    interval modulation (beat-only path, no PWA) -> it alone, with a stricter peak share.
#    Unknown rather than wrong: estimate() returns None when the evidence is weak.
# Runs once per beat (storing) and once per epoch (estimate: ~97 frequencies x <= 128 beats).
import array
import math

import micropython

from nsdev.compat import IS_MICROPYTHON, const, run_steps

_HIST = const(128)  # beats kept (64 s at up to 120 bpm)
_WIN_MS = const(64000)
_MIN_BEATS = const(32)  # in the window
_MIN_IBI = const(273)
_MAX_IBI = const(2200)
_BAD_FLAGS = const(1 | 2 | 4 | 8)  # no contact, saturated, motion, overflow (nsdev.core.ppgdefs)
F_LO_BPM = 6.0
F_HI_BPM = 30.0
F_STEP_BPM = 0.25
PEAK_SHARE = 0.12  # share of the band's power in the peak (+-1 step) for one modulation
PEAK_SHARE_ONLY = 0.2  # when the interval modulation is the only one
AGREE_BPM = 4.0  # Karlen et al. 2013


class BreathingRate:
    """add_beat(t_ms, ibi_ms, pwa, flags) for every beat; estimate(now_ms) -> breaths/min or
    None. pwa None or <= 0: no amplitude (beat-only path)."""

    def __init__(self):
        self._t = array.array("i", [0] * _HIST)
        self._ibi = array.array("i", [0] * _HIST)
        self._pwa = array.array("i", [0] * _HIST)
        self._n = 0
        self._prev_ibi = 0
        self.last_ibi_bpm = None  # last estimates per modulation (for tests and the bench)
        self.last_pwa_bpm = None

    def add_beat(self, t_ms, ibi_ms, pwa=None, flags=0):
        ok = (flags & _BAD_FLAGS) == 0 and _MIN_IBI <= ibi_ms <= _MAX_IBI
        if ok and self._prev_ibi and abs(ibi_ms - self._prev_ibi) * 100 > 35 * self._prev_ibi:
            ok = False
        self._prev_ibi = ibi_ms if _MIN_IBI <= ibi_ms <= _MAX_IBI else 0
        if not ok:
            return
        j = self._n % _HIST
        self._t[j] = t_ms
        self._ibi[j] = ibi_ms
        self._pwa[j] = int(pwa) if (pwa is not None and pwa > 0) else 0
        self._n += 1

    def _window(self, now_ms):
        idx = []
        for k in range(min(self._n, _HIST)):
            j = (self._n - 1 - k) % _HIST
            d = now_ms - self._t[j]
            if d < 0:
                continue
            if d > _WIN_MS:
                break
            idx.append(j)
        idx.reverse()
        return idx

    def estimate(self, now_ms):
        idx = self._window(now_ms)
        self.last_ibi_bpm = None
        self.last_pwa_bpm = None
        if len(idx) < _MIN_BEATS:
            return None
        t0 = self._t[idx[0]]
        ts = [(self._t[j] - t0) / 1000.0 for j in idx]
        mean_ibi = sum(self._ibi[j] for j in idx) / len(idx)
        nyq_bpm = 0.5 * 60000.0 / mean_ibi  # breaths/min: half the heart rate
        f_ibi, q_ibi = _peak(ts, [float(self._ibi[j]) for j in idx], nyq_bpm)
        pw = [float(self._pwa[j]) for j in idx]
        have_pwa = min(pw) > 0
        f_pwa, q_pwa = _peak(ts, pw, nyq_bpm) if have_pwa else (None, 0.0)
        if f_ibi is not None and q_ibi >= PEAK_SHARE:
            self.last_ibi_bpm = f_ibi
        if f_pwa is not None and q_pwa >= PEAK_SHARE:
            self.last_pwa_bpm = f_pwa
        a, b = self.last_ibi_bpm, self.last_pwa_bpm
        if a is not None and b is not None:
            return 0.5 * (a + b) if abs(a - b) <= AGREE_BPM else None
        if not have_pwa and a is not None and q_ibi >= PEAK_SHARE_ONLY:
            return a
        return None


def _peak(ts, xs, nyq_bpm):
    """(frequency of the spectral peak in breaths/min, its share of the band power)."""
    n = len(xs)
    m = sum(xs) / n
    xs = [x - m for x in xs]
    hi = min(F_HI_BPM, nyq_bpm * 0.9)
    if hi <= F_LO_BPM + F_STEP_BPM:
        return None, 0.0
    steps = int((hi - F_LO_BPM) / F_STEP_BPM) + 1
    power = []
    total = 0.0
    for s in range(steps):
        w = 2.0 * math.pi * (F_LO_BPM + s * F_STEP_BPM) / 60.0
        c = 0.0
        si = 0.0
        for i in range(n):
            a = w * ts[i]
            c += xs[i] * math.cos(a)
            si += xs[i] * math.sin(a)
        p = c * c + si * si
        power.append(p)
        total += p
    if total <= 0.0:
        return None, 0.0
    k = 0
    for s in range(1, steps):
        if power[s] > power[k]:
            k = s
    if k == 0 or k == steps - 1:
        return None, 0.0  # at the edge of the band: not a breathing peak
    share = (power[k - 1] + power[k] + power[k + 1]) / total
    # parabolic interpolation of the peak between the grid steps
    den = power[k - 1] - 2.0 * power[k] + power[k + 1]
    off = 0.5 * (power[k - 1] - power[k + 1]) / den if den != 0.0 else 0.0
    return F_LO_BPM + (k + off) * F_STEP_BPM, share


# --- PPGBreathing: the device's estimate, stored in every epoch record (resp_per_min) -------
# BreathingRate above works from beats alone (what the host recomputes from stored beats and
# `replay --beats`); its direct Fourier sum costs ~24 ms of MicroPython per epoch (0.8 ms per
# second: the whole pipeline's budget). On the device PPGBreathing is used instead: it also
# sees the baseline (RIIV: raw samples are not stored, so only the device can), and costs a
# third (uniform grid + Goertzel: no trigonometry in the inner loop).

# Method (docs/breathing-and-smart-dawn.md has the details and sources):
#  - inputs, from the PPG pipeline: per beat its time, IBI and pulse amplitude (RIFV: the
#    respiratory sinus arrhythmia; RIAV: amplitude modulation), and the raw samples' mean every
#    ~200 ms (RIIV: respiratory-induced intensity variation, the baseline). Karlen et al. 2013
#    (IEEE TBME 60:1946) and Charlton et al. 2016 (Physiol Meas 37:610) describe the three.
#  - per epoch, for each modulation: the last WINDOW_S (48) seconds are resampled on a 4 Hz
#    grid (linear interpolation), detrended by a centred ~25 s moving mean, averaged to 2 Hz
#    and Hann-windowed; the power spectrum at every 1 /min from 4 to 40 /min (Goertzel's
#    recurrence: no FFT buffers) gives the rate at its peak, refined by a parabola through the
#    log power of its neighbours (as Karlen's and Charlton's spectral estimators do with an FFT
#    or AR spectrum). RIIV is first averaged over one cardiac cycle, which cancels the pulse.
#  - smart fusion (after Karlen 2013): the mean of the three when they all lie within
#    FUSE_SPREAD (4 breaths/min) of each other, else unknown.
#  - quality gates (unknown rather than wrong): fewer than one beat per 2 s, any flagged beat
#    (motion, contact, clipping) or a hole over 4 s in the window, no clear peak (under 12 % of
#    the band's power, or at the band's edge), a rate outside 4-40 /min or above 0.45 x heart
#    rate (a per-beat series cannot carry it: Nyquist). The app also gives up on any epoch the
#    PPG pipeline flagged.
# add_beat()/add_samples() allocate nothing; estimate() runs once per epoch on preallocated
# arrays (the float arithmetic of MicroPython still allocates there; not a hot path).

WINDOW_S = const(48)
GRID_HZ = const(4)
_N = const(192)  # WINDOW_S * GRID_HZ
_STEP_MS = const(250)  # 1000 // GRID_HZ
_TREND_HALF = const(50)  # centred moving mean of 2 * 50 + 1 samples = 25.25 s
_KEEP = const(52)  # originals kept while detrending in place: the mean's trailing edge (51)
_BEAT_RING = const(176)  # 48 s at 220 bpm (RAM: the rings are ~3.2 KB in all)
_BASE_RING = const(272)  # 51 s at the densest baseline rate (one sample per 190 ms)
_BASE_MIN_MS = const(190)  # baseline samples closer than this are not stored
_MAX_GAP_MS = const(4000)  # a hole in the beats or baseline larger than this: unknown
# Ring times are kept as the ms since the entry before (array 'H', half of 'i'), anchored at
# the newest entry's time; a longer step is stored as _SAT_MS and the time of the entry before
# the newest such step is kept aside, so every time the estimate reads is exact: the window's
# own steps are <= _MAX_GAP_MS, and the one step into it can be longer (docs/ppg-and-arousal.md).
_SAT_MS = const(65535)
MIN_PER_MIN = 4.0
MAX_PER_MIN = 40.0
FUSE_SPREAD = 4.0  # no estimate when the three differ by more (breaths/min; Karlen 2013 used
# a standard deviation of 4, which lets one outlier 6-7 /min away through)
_F_LO = const(4)  # lowest rate searched (/min)
_BINS_PER_STEP = const(10)  # spectral bins between two yields of estimate_steps()
_MIN_PEAK = 0.12  # the peak's share of the band's power below this: no clear rhythm

RIIV = const(0)
RIAV = const(1)
RIFV = const(2)
NAMES = ("riiv", "riav", "rifv")


def _before(t0, n, ring, dd, t_last, sat_n, sat_t):
    """-> (k, time of entry k, time of entry k + 1) for the last of the ring's entries at or
    before t0 (the oldest kept if none is): steps back from the newest entry (time t_last)."""
    stop = max(0, n - ring)
    k = n - 1
    t = t_last
    tb = t
    while k > stop and t > t0:
        tb = t
        t = sat_t if k == sat_n else t - dd[k % ring]
        k -= 1
    return k, t, tb


class PPGBreathing:
    """add_beat(t_ms, ibi_ms, pwa, flags) for every beat the PPG pipeline releases,
    add_baseline(t_ms, dc) a few times a second (any rate; kept at most every 180 ms),
    estimate(t_end_ms, hr_bpm) -> breaths/min (float) or None. Times: the pipeline's ms.
    After estimate(), rates[i] holds each modulation's own rate (0 = none)."""

    def __init__(self):
        self._bd = array.array("H", bytes(2 * _BEAT_RING))  # ms since the beat before
        self._bi = array.array("h", bytes(2 * _BEAT_RING))  # the pipeline's IBIs are <= 30000
        self._ba = array.array("i", bytes(4 * _BEAT_RING))
        self._bf = array.array("b", bytes(_BEAT_RING))
        self._dd = array.array("H", bytes(2 * _BASE_RING))  # ms since the sample before
        self._dv = array.array("i", bytes(4 * _BASE_RING))
        self._x = array.array("f", [0.0] * _N)  # the 4-Hz series, detrended in place
        # Originals still needed once x is overwritten: the trend's trailing edge
        # (_count_start) and the cardiac-cycle mean's (_smooth, w <= 8). Not a second series:
        # 0.5 KB less RAM.
        self._y = array.array("f", [0.0] * _KEEP)
        self.rates = array.array("f", [0.0] * 3)
        self._q = array.array("h", bytes(_N))  # the 2-Hz series in fixed point (_goertzel_q)
        self._gs = array.array("i", (0, 0))  # its Goertzel state at the end of a bin
        self._scan = [0.0, -1, 0.0, 0.0, 0.0, 0.0]  # the spectrum's scan (_count_start)
        self.reset()

    def reset(self):
        self._bn = 0  # beats stored (ring head = _bn % ring)
        self._dn = 0
        self._last_t = -1  # the newest beat's time, for add_beat's restart check
        self._b_last = 0  # the newest beat's time, the ring's anchor (also moved when < 0)
        self._d_last = 0  # the newest baseline sample's time
        # (count of the entry after the newest _SAT_MS step, the time of the entry before it)
        self._bsat_n = self._dsat_n = -1
        self._bsat_t = self._dsat_t = 0
        self._acc = 0
        self._acc_n = 0

    def rebase(self, d_ms):
        """The pipeline moved its clock's origin forward by d_ms (PPGPipeline.rebase): move the
        stored times by as much, so the window survives it."""
        self._b_last -= d_ms
        self._d_last -= d_ms
        self._bsat_t -= d_ms
        self._dsat_t -= d_ms
        if self._last_t >= 0:
            self._last_t -= d_ms

    def add_beat(self, t_ms, ibi_ms, pwa, flags):
        if t_ms < self._last_t:
            self.reset()  # the pipeline restarted: its clock is new
        i = self._bn % _BEAT_RING
        d = t_ms - self._b_last
        if self._bn == 0 or d >= _SAT_MS:
            d = _SAT_MS
            self._bsat_n = self._bn
            self._bsat_t = self._b_last
        self._bd[i] = d
        self._b_last = self._last_t = t_ms
        self._bi[i] = ibi_ms if 0 < ibi_ms <= 30000 else 0
        self._ba[i] = pwa
        self._bf[i] = 1 if flags else 0
        self._bn += 1

    def add_samples(self, t_ms, buf, n):
        """Raw PPG samples just fed to the pipeline (t_ms: the pipeline's time after them);
        their running mean becomes a baseline sample every ~200 ms."""
        s = 0
        for j in range(n):
            s += buf[j]
        self._acc += s
        self._acc_n += n
        if self._acc_n and (self._dn == 0 or t_ms - self._d_last >= _BASE_MIN_MS):
            self.add_baseline(t_ms, self._acc // self._acc_n)
            self._acc = 0
            self._acc_n = 0

    def add_baseline(self, t_ms, dc):
        n = self._dn
        last = self._d_last
        if n:
            if t_ms < last:
                self.reset()
                n = 0
            elif t_ms - last < _BASE_MIN_MS:
                return
        i = n % _BASE_RING
        d = t_ms - last
        if n == 0 or d >= _SAT_MS:
            d = _SAT_MS
            self._dsat_n = n
            self._dsat_t = last
        self._dd[i] = d
        self._d_last = t_ms
        self._dv[i] = dc
        self._dn = n + 1

    # --- per epoch -------------------------------------------------------------------------
    def estimate(self, t_end_ms, hr_bpm=None):
        """-> breaths/min or None (all of estimate_steps() at once)."""
        return run_steps(self.estimate_steps(t_end_ms, hr_bpm))

    def estimate_steps(self, t_end_ms, hr_bpm=None):
        """estimate() as a generator that yields between pieces of ~1/13 of the work (a grid,
        a few spectral bins), so the app can read the PPG FIFO in between: the whole estimate
        takes ~0.6-0.9 s of ESP32 time (docs/simulation.md, "Honest time"), longer than the
        MAX30102's FIFO holds (640 ms). Beats and baseline samples may be added between the
        steps (the rings hold more than the window). Its return value (StopIteration.value) is
        the estimate."""
        rates = self.rates
        rates[0] = rates[1] = rates[2] = 0.0
        t0 = t_end_ms - WINDOW_S * 1000
        if not self._beats_ok(t0, t_end_ms):
            return None
        lim = MAX_PER_MIN
        if hr_bpm:
            lim = min(lim, 0.45 * hr_bpm)
        # fusion needs all three: stop at the first modality without a rate (saves CPU)
        for m in (RIFV, RIAV, RIIV):
            yield
            if m != RIIV:
                if not self._grid_beats(t0, m):
                    return None
            else:
                if not self._grid_base(t0, t_end_ms):
                    return None
                # one cardiac cycle's mean cancels the pulse itself (4 grid steps = 1 s)
                self._smooth(max(1, min(int(GRID_HZ * 60.0 / hr_bpm + 0.5) if hr_bpm else GRID_HZ,
                                        8)))
                # the baseline is not sampled per beat: its band is not limited by the heart
                # rate, so a rate the beats alias below 0.45 x HR disagrees here and the fusion
                # says unknown
                lim = MAX_PER_MIN
            # the spectrum, _BINS_PER_STEP bins per step (the scan's state is in self._scan:
            # a generator's frame is heap for its whole run, docs/twin-and-image.md)
            n = self._count_start(lim)
            i = 0
            while i < n:
                yield
                self._count_bins(i, i + _BINS_PER_STEP if i + _BINS_PER_STEP < n else n, lim)
                i += _BINS_PER_STEP
            rates[m] = self._count_end(lim) if n else 0.0
            if rates[m] <= 0.0 and m != RIIV:
                return None
        return fuse3(rates[0], rates[1], rates[2])

    def _beats_ok(self, t0, t1):
        # At least one beat per 2 s, none flagged, no hole, the window covered at both ends.
        n = self._bn
        k = n - 1
        stop = max(0, n - _BEAT_RING)
        cnt = 0
        prev = t1
        t = self._b_last  # beat k's time
        while k >= stop:
            i = k % _BEAT_RING
            if t < t0:
                break
            if self._bf[i] or prev - t > _MAX_GAP_MS:
                return False
            prev = t
            cnt += 1
            t = self._bsat_t if k == self._bsat_n else t - self._bd[i]
            k -= 1
        if prev - t0 > _MAX_GAP_MS:
            return False
        return cnt >= WINDOW_S // 2

    def _grid_beats(self, t0, m):
        # Resample modulation m (RIAV: amplitude, RIFV: IBI) of the beats on the 4 Hz grid.
        n = self._bn
        val = self._ba if m == RIAV else self._bi
        # the last beat at or before t0 (or the oldest): its time and the next one's
        k, tk, tb = _before(t0, n, _BEAT_RING, self._bd, self._b_last, self._bsat_n,
                            self._bsat_t)
        # an IBI across a gap (stored as <= 0) is unknown
        return self._interp(t0, k, tk, tb, n, _BEAT_RING, self._bd, val, m == RIFV)

    def _interp(self, t0, k, ta, tb, n, ring, dd, vv, positive):
        # x[j] = vv linearly interpolated at t0 + j * _STEP_MS over the ring (entries k..n-1 of
        # `ring`, steps dd; ta, tb: the times of entries k and k + 1); False if `positive` and
        # a value used is <= 0.
        x = self._x
        g = t0
        for j in range(_N):
            while k < n - 2 and tb <= g:
                k += 1
                ta = tb
                tb += dd[(k + 1) % ring]  # a step inside the window: exact
            i = k % ring
            i2 = (k + 1) % ring
            va = vv[i]
            vb = vv[i2]
            if positive and (va <= 0 or vb <= 0):
                return False
            if tb > ta and g > ta:
                f = (g - ta) / (tb - ta)
                if f > 1.0:
                    f = 1.0
                x[j] = va + (vb - va) * f
            else:
                x[j] = va
            g += _STEP_MS
        return True

    def _grid_base(self, t0, t1):
        n = self._dn
        if n < 2:
            return False
        dd = self._dd
        stop = max(0, n - _BASE_RING)
        k = n - 1
        prev = t1
        t = self._d_last  # sample k's time
        tb = 0  # sample k + 1's
        while k > stop and t >= t0:
            if prev - t > _MAX_GAP_MS:
                return False
            prev = t
            tb = t
            t = self._dsat_t if k == self._dsat_n else t - dd[k % _BASE_RING]
            k -= 1
        if t - t0 > _MAX_GAP_MS or prev - t0 > _MAX_GAP_MS:
            return False
        return self._interp(t0, k, t, tb, n, _BASE_RING, dd, self._dv, False)

    def _smooth(self, w):
        # x[j] = mean of x[j - w + 1 .. j] (causal; the delay does not change a rate)
        if w < 2:
            return
        x = self._x
        s = 0.0
        for j in range(_N):
            v = x[j]
            s += v
            if j >= w:
                s -= self._y[j % w]
                x[j] = s / w
            else:
                x[j] = s / (j + 1)
            self._y[j % w] = v

    def _count_start(self, max_per_min):
        # Detrend x in place (centred moving mean, shortened at the edges), count cycles:
        # decimate to 2 Hz (pairs averaged, Hann-windowed), then the power spectrum at every
        # 1 /min from 4 to max_per_min by Goertzel's recurrence (_count_bins); the peak, refined
        # by a parabola through its neighbours (log power), is the rate if it holds at least
        # _MIN_PEAK of the band's power (a breathing rhythm, not broadband noise: _count_end).
        # -> the bins to scan: the band and one bin either side (0: no rate).
        if _detrend(self._x, self._y) <= 0.0:
            return 0
        if not _window_q(self._x, self._q, _N // 2):
            return 0
        sc = self._scan  # total, best bin, its power, the power below it (a), above it (c)
        sc[0] = sc[2] = sc[3] = sc[4] = sc[5] = 0.0  # [5]: the previous bin's power
        sc[1] = -1
        return int(max_per_min) - _F_LO + 3

    def _count_bins(self, i0, i1, max_per_min):
        sc = self._scan
        gs = self._gs
        last = int(max_per_min) - _F_LO + 1  # the band's last bin
        for i in range(i0, i1):
            c = 2.0 * math.cos(2.0 * math.pi * (_F_LO - 1 + i) / 120.0)
            cq = int(c * _C_ONE + 0.5) if c >= 0.0 else -int(0.5 - c * _C_ONE)
            _goertzel_q(self._q, _N // 2, cq, gs)
            c = float(gs[0])
            s2 = float(gs[1])
            p = c * c + s2 * s2 - (cq / _C_ONE) * c * s2
            if i == sc[1] + 1:
                sc[4] = p
            if 1 <= i <= last:
                sc[0] += p
                if p > sc[2]:
                    sc[2] = p
                    sc[1] = i
                    sc[3] = sc[5]
            sc[5] = p

    def _count_end(self, max_per_min):
        # -> the rate (breaths/min) from the scanned bins, 0.0 when there is none
        sc = self._scan
        total = sc[0]
        best = sc[1]
        best_p = sc[2]
        a = sc[3]
        c = sc[4]
        if best < 0 or total <= 0.0 or best_p < _MIN_PEAK * total:
            return 0.0
        rate = float(_F_LO - 1 + best)
        if a >= best_p or c >= best_p:
            return 0.0  # rising beyond the band's edge: drift or a faster rhythm, not a peak
        if a > 0.0 and c > 0.0:
            la = math.log(a)
            lb = math.log(best_p)
            lc = math.log(c)
            den = la - 2.0 * lb + lc
            if den < 0.0:
                d = 0.5 * (la - lc) / den
                if -0.5 <= d <= 0.5:
                    rate += d
        if rate < MIN_PER_MIN or rate > max_per_min:
            return 0.0
        return rate


# The two inner loops of the estimate, compiled to machine code (@micropython.native: the same
# float operations in the same order as bytecode, so the same results, ~3x faster; the boxed
# floats they make are the same too). They run ~100 bins x 96 points per epoch.
@micropython.native
def _detrend(x, y):
    # x[j] -= the centred moving mean of 2 * _TREND_HALF + 1 points around it (shortened at the
    # edges), in place; y keeps the originals the mean's trailing edge still needs. -> the sum
    # of squares of the result.
    s = 0.0
    lo = 0
    hi = min(_N, _TREND_HALF + 1)  # the mean covers x[lo:hi]
    for j in range(hi):
        s += x[j]
    ss = 0.0
    for j in range(_N):
        want_hi = j + _TREND_HALF + 1
        if want_hi <= _N and want_hi > hi:
            s += x[hi]
            hi += 1
        want_lo = j - _TREND_HALF
        if want_lo > lo:
            s -= y[lo % _KEEP]
            lo += 1
        xj = x[j]
        y[j % _KEEP] = xj
        v = xj - s / (hi - lo)
        x[j] = v
        ss += v * v
    return ss


# The spectrum in fixed point (issue 10: the float recurrence boxed ~4 floats per point, ~40k a
# breathing estimate, ~70 % of the firmware's garbage over a night). The 2-Hz series is scaled
# so its largest magnitude is _X_MAX (13 bits) and rounded; c = 2 cos(w) is Q14. Bounds, for
# 32-bit machine words (ESP32, twin): the state after n points is a sum of x_j U_k(cos w) with
# |U_k| <= min(k + 1, 1 / sin w) <= 6.4 (the lowest bin, 3 /min at 2 Hz: w = 0.157), so over 96
# points |s| <= 8191 x 594 < 4.9e6 (2**22.2); |c| < 2 gives c = ch * 128 + cl with |ch| <= 254,
# 0 <= cl < 128, and ch * s + (cl * s >> 7) < 1.25e9 < 2**31. Errors: rounding x costs at most
# half a unit in 8191 per point; each step's shift at most one unit of s. Both are far below
# the float32 resolution the ESP32 computes the rest in (tests/firmware/core/test_resp_fixed.py
# compares the rates with the float recurrence).
_X_MAX = 8191.0
_C_ONE = 16384.0  # Q14

if not IS_MICROPYTHON:  # viper's buffer casts, for the same code as plain Python

    def ptr16(buf):
        return buf

    def ptr32(buf):
        return buf


@micropython.native
def _window_q(y, q, m):
    # Decimate y (4 Hz) to 2 Hz (pairs averaged), Hann-window it (computed here, not kept in
    # RAM), scale it to +-_X_MAX and round it into q[0..m-1]. -> False if it is all zero.
    amax = 0.0
    for j in range(m):
        w = 0.5 - 0.5 * math.cos(2.0 * math.pi * (j + 0.5) / m)
        v = (y[2 * j] + y[2 * j + 1]) * w
        y[j] = v
        if v > amax:
            amax = v
        elif -v > amax:
            amax = -v
    if amax <= 0.0:
        return False
    k = _X_MAX / amax
    for j in range(m):
        v = y[j] * k
        q[j] = int(v + 0.5) if v >= 0.0 else -int(0.5 - v)
    return True


@micropython.viper
def _goertzel_q(q, m: int, cq: int, out):
    # Goertzel's recurrence over q[0..m-1] (array 'h') with c = cq / 2**14: out[0], out[1] =
    # the last two states (array 'i'). Machine words only (bounds above); ptr16 loads are
    # zero-extended, so each point is sign-extended from 16 bits.
    x = ptr16(q)
    o = ptr32(out)
    ch = cq >> 7
    cl = cq & 127
    s1 = 0
    s2 = 0
    for j in range(m):
        s0 = ((int(x[j]) & 0xFFFF ^ 0x8000) - 0x8000) + ((ch * s1 + ((cl * s1) >> 7)) >> 7) - s2
        s2 = s1
        s1 = s0
    o[0] = s1
    o[1] = s2


def fuse3(a, b, c):
    """Smart fusion of the three rates (0 = none), after Karlen 2013 but stricter: their mean
    if all three are known and lie within FUSE_SPREAD of each other, else None."""
    if a <= 0.0 or b <= 0.0 or c <= 0.0:
        return None
    if max(a, b, c) - min(a, b, c) > FUSE_SPREAD:
        return None
    return (a + b + c) / 3.0
