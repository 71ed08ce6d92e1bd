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

from micropython import const

_HIST = const(128)  # beats kept (64 s at up to 120 bpm)
_WIN_MS = const(64000)
_MIN_BEATS = const(32)  # in the window
_MIN_IBI = const(273)
_MAX_IBI = const(2200)
_BAD_FLAGS = const(1 | 2 | 4 | 8)  # no contact, saturated, motion, overflow (nsdev.core.ppg)
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
