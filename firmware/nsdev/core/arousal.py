# Autonomic arousal events from beats (HR acceleration + PWA drop) and pre-sleep hyperarousal.
#
# Sources and thresholds (docs/ppg-and-arousal.md):
#  - HR acceleration starts up to ~10 beats before the EEG arousal (Bonnet & Arand 1997), so
#    the PWA drop is searched from 3 beats before to 10 beats after the HR onset.
#  - Peripheral vasoconstriction shows as a PWA drop; >= 20% is the minimum used (Delessert
#    2010, PMC2982739). ~14 s per PWA drop (HypnoLaus, PMC7355400).
#  - AASM: an arousal follows >= 10 s of stable sleep, so events closer than 10 s merge.
#  - Baseline: median of the 30 valid IBIs before the test window; test window: median of the
#    last 5 IBIs (a median over ~1 breath cancels RSA and isolated ectopic beats).
#  - Two signs weighed together on the PWA path (HR rise and PWA drop are partly independent
#    autonomic signs; a clear vasoconstriction with a modest HR rise is an arousal too): an
#    event needs both signs present (HR rise >= 5 % and >= 3 bpm, PWA drop >= 20 %) and a
#    joint score rise / 10 % + drop / 30 % >= 5/3, so 10 % + 20 % (the former hard gates),
#    7 % + 30 % and 5 % + 35 % all count, while a PWA drop alone (vasomotion, posture) or an
#    HR rise alone does not. Pillar 2002 (PAT arousals; HR and PAT changes at arousal),
#    Bonnet & Arand 1997 (HR rise at arousal), Delessert 2010 (PWA drop >= 20 %).
#  - Beat-only path (no PWA): HR rise >= 15 % (ECG-only autonomic arousal detection is weak,
#    Olsen 2018: PPV 0.72, Se 0.63).
#  - The per-epoch score belongs to the epoch holding the event's onset: a confirmation that
#    comes after that epoch closed is carried by the event (its onset time) to the host.
# Runs once per beat (not per sample); small allocations here are fine.
import array

import micropython

from nsdev.compat import const
from nsdev.core.ppgdefs import sort_into

_HIST = const(48)  # beats kept
_BASE_N = const(30)  # baseline IBIs
_TEST_N = const(5)  # test window IBIs
_MIN_BASE = const(15)  # valid baseline beats needed
_PWA_LOOKBACK = const(3)
_PWA_LOOKAHEAD = const(10)  # Bonnet & Arand 1997: HR rise precedes by up to ~10 beats
_MIN_GAP_MS = const(10000)  # AASM: >= 10 s between arousals
_MAX_EVENT_MS = const(60000)
_MIN_IBI = const(273)
_MAX_IBI = const(2200)
_BAD_FLAGS = const(1 | 2 | 4 | 8)  # no contact, saturated, motion, overflow (nsdev.core.ppgdefs)

HR_RISE_PWA = 0.06  # fractional HR rise that opens a candidate on the PWA path
HR_RISE_ONLY = 0.15  # fractional HR rise on the beat-only path
MIN_RISE_BPM = 4.0  # PWA path
MIN_RISE_BPM_ONLY = 4.0
PWA_DROP = 0.20  # Delessert 2010: the smallest PWA drop that counts
HR_RISE_REF = 0.10  # joint score: rise / HR_RISE_REF + drop / PWA_DROP_REF >= JOINT_MIN
PWA_DROP_REF = 0.30
ECTOPIC_PCT = 20  # Malik 1989: 20 % off
SWING_FRAC = 0.5  # a rise must exceed half the baseline IBI swing (10-90 %)
JOINT_MIN = 5.0 / 3.0


class ArousalEvent:
    def __init__(self, onset_ms, duration_ms, strength, hr_rise_pct, pwa_drop_pct):
        self.onset_ms = onset_ms
        self.duration_ms = duration_ms
        self.strength = strength  # 0-1
        self.hr_rise_pct = hr_rise_pct
        self.pwa_drop_pct = pwa_drop_pct  # None on the beat-only path

    def to_dict(self):
        return {"onset_ms": self.onset_ms, "duration_ms": self.duration_ms,
                "strength": self.strength, "hr_rise_pct": self.hr_rise_pct,
                "pwa_drop_pct": self.pwa_drop_pct}


def _median(s, n):
    """Median of s[0..n-1] (0 if n == 0), which it sorts in place (n <= 30, nothing allocated)."""
    sort_into(s, n, s)
    if n == 0:
        return 0
    if n & 1:
        return s[n // 2]
    return (s[n // 2 - 1] + s[n // 2]) / 2


class ArousalEstimator:
    """Feed beats with add_beat(); it returns an ArousalEvent when one is confirmed.

    add_beat(t_ms, ibi_ms, pwa, flags): pwa None or <= 0 means "no PWA" (beat-only path, e.g.
    ECG RR); flags != 0 (no contact, motion, ...) makes the beat invalid.
    """

    def __init__(self):
        self._t = array.array("i", [0] * _HIST)
        self._ibi = array.array("i", [0] * _HIST)
        self._pwa = array.array("i", [0] * _HIST)
        self._ok = bytearray(_HIST)
        # per-beat windows, filled by _window() (no lists on the hot path)
        self._w_test = array.array("i", bytes(4 * _TEST_N))
        self._w_base = array.array("i", bytes(4 * _BASE_N))
        self._w_pwa = array.array("i", bytes(4 * _BASE_N))
        self._w_3 = array.array("i", bytes(4 * 5))  # ectopic test (5), PWA smoothing (3)
        self._n = 0  # beats seen
        self.events = 0
        self.valid_ms = 0
        self._last_t = -1
        self._in_ev = False
        self._ev_onset = 0
        self._ev_peak = 0.0
        self._ev_beat = 0
        self._ev_base_pwa = 0
        self._ev_min_pwa = 0
        self._ev_bad = False
        self._ev_confirmed = False
        self._last_end = -_MIN_GAP_MS
        self._epoch_score = 0.0
        self._epoch_valid = 0
        self._epoch_t0 = None  # start of the open epoch (beat clock), None = from the first beat

    def _get(self, k):
        # k-th most recent beat (0 = newest).
        j = (self._n - 1 - k) % _HIST
        return j

    def rebase(self, d_ms):
        """The beat clock's origin moved forward by d_ms (PPGPipeline.rebase): shift the times
        held here by as much, so later beats continue the same timeline."""
        if not d_ms:
            return
        t = self._t
        for i in range(len(t)):
            t[i] -= d_ms
        if self._last_t >= 0:
            self._last_t -= d_ms
        self._ev_onset -= d_ms
        self._last_end -= d_ms
        if self._epoch_t0 is not None:
            self._epoch_t0 -= d_ms

    # add_beat, _step and _window run at every beat: @micropython.native keeps their frames
    # (15, 27 and 13 words as bytecode) on the C stack; a bytecode frame over 11 words is
    # allocated on the heap at every call (py/objfun.c VM_MAX_STATE_ON_STACK; see
    # LightController.update and docs/twin-and-image.md, "Frames on the stack").
    @micropython.native  # every beat
    def add_beat(self, t_ms, ibi_ms, pwa=None, flags=0):
        j = self._n % _HIST
        self._n += 1
        ok = (flags & _BAD_FLAGS) == 0 and _MIN_IBI <= ibi_ms <= _MAX_IBI
        # Ectopic/artefact: more than ECTOPIC_PCT off the median of the previous 5 IBIs (all
        # beats: a premature beat and its compensatory pause are both off it, while the median
        # follows a real HR change within ~3 beats). Malik 1989 uses 20 % of the previous IBI.
        if ok and self._n > 5:
            w = self._w_3
            for k in range(1, 6):
                w[k - 1] = self._ibi[self._get(k)]
            ref = _median(w, 5)
            if abs(ibi_ms - ref) * 100 > ECTOPIC_PCT * ref:
                ok = False
        self._t[j] = t_ms
        self._ibi[j] = ibi_ms
        self._pwa[j] = int(pwa) if (pwa is not None and pwa > 0) else 0
        self._ok[j] = 1 if ok else 0
        if ok:
            self.valid_ms += ibi_ms
            self._epoch_valid += 1
        self._last_t = t_ms
        return self._step(t_ms, flags)

    @micropython.native  # every beat
    def _window(self, k0, k1, arr, out):
        """The valid, positive arr values of beats k0..k1-1 back into out; -> their count."""
        n = 0
        for k in range(k0, min(k1, self._n)):
            j = self._get(k)
            if self._ok[j] and arr[j] > 0:
                out[n] = arr[j]
                n += 1
        return n

    @micropython.native  # every beat
    def _step(self, t_ms, flags):
        if self._n < _TEST_N + _MIN_BASE:
            return None
        test = self._w_test
        base = self._w_base
        n_test = self._window(0, _TEST_N, self._ibi, test)
        n_base = self._window(_TEST_N, _TEST_N + _BASE_N, self._ibi, base)
        if self._in_ev:
            self._ev_beat += 1
            if flags & _BAD_FLAGS:
                self._ev_bad = True
        if n_test < 3 or n_base < _MIN_BASE:
            if self._in_ev:
                return self._end_event(t_ms)
            return None
        b_ibi = _median(base, n_base)  # base[0..n_base-1] sorted from here on
        t_ibi = _median(test, n_test)
        rise = b_ibi / t_ibi - 1.0
        rise_bpm = 60000.0 / t_ibi - 60000.0 / b_ibi
        bpwa = self._w_pwa
        n_bpwa = self._window(_TEST_N, _TEST_N + _BASE_N, self._pwa, bpwa)
        use_pwa = n_bpwa >= _MIN_BASE
        thr = HR_RISE_PWA if use_pwa else HR_RISE_ONLY
        min_bpm = MIN_RISE_BPM if use_pwa else MIN_RISE_BPM_ONLY
        if not self._in_ev:
            if use_pwa and rise >= thr:
                # The rise must also stand out of the person's own beat-to-beat swing (RSA):
                # half the 10-90 % spread of the baseline IBIs.
                sb = base  # sorted by _median
                q = n_base // 10
                swing = (sb[n_base - 1 - q] - sb[q]) / b_ibi
                if rise < swing * SWING_FRAC:
                    rise = 0.0
            if rise >= thr and rise_bpm >= min_bpm and t_ms - self._last_end >= _MIN_GAP_MS:
                self._in_ev = True
                self._ev_beat = 0
                self._ev_onset = self._t[self._get(_TEST_N // 2)]
                self._ev_peak = rise
                self._ev_bad = False
                self._ev_confirmed = not use_pwa
                self._ev_base_pwa = _median(bpwa, n_bpwa) if use_pwa else 0
                self._ev_min_pwa = self._ev_base_pwa
                if use_pwa:
                    for k in range(0, _TEST_N // 2 + _PWA_LOOKBACK):
                        self._pwa_check(k)
            return None
        if rise > self._ev_peak:
            self._ev_peak = rise
        if self._ev_base_pwa:
            self._pwa_check(0)
            if not self._ev_confirmed and self._joint_ok():
                self._ev_confirmed = True
        if self._ev_confirmed:
            self._score_epoch()
        ended = rise < thr / 2 or t_ms - self._ev_onset > _MAX_EVENT_MS
        if ended:
            return self._end_event(t_ms)
        if self._ev_base_pwa and not self._ev_confirmed and self._ev_beat > _PWA_LOOKAHEAD:
            self._in_ev = False  # HR rise without vasoconstriction: not an arousal
        return None

    def _joint_ok(self):
        # Both signs present and, weighed together, large enough (see the header).
        drop = 1.0 - self._ev_min_pwa / self._ev_base_pwa
        rise = self._ev_peak
        if drop < PWA_DROP or rise < HR_RISE_PWA:
            return False
        return rise / HR_RISE_REF + drop / PWA_DROP_REF >= JOINT_MIN

    def _score_epoch(self):
        # The score goes to the open epoch only if the onset lies in it; an onset in an epoch
        # already closed reaches the host through the event (which carries the onset).
        if self._epoch_t0 is not None and self._ev_onset < self._epoch_t0:
            return
        st = self._ev_strength()
        if st > self._epoch_score:
            self._epoch_score = st

    def _pwa_check(self, k):
        # Smoothed PWA (median of 3 beats ending k beats back) for the drop test.
        vals = self._w_3
        n = self._window(k, k + 3, self._pwa, vals)
        if n >= 2:
            m = _median(vals, n)
            if m < self._ev_min_pwa:
                self._ev_min_pwa = m

    def _ev_strength(self):
        s_hr = min(1.0, self._ev_peak / 0.3)
        if not self._ev_base_pwa:
            return s_hr
        drop = 1.0 - self._ev_min_pwa / self._ev_base_pwa
        return 0.5 * s_hr + 0.5 * min(1.0, max(0.0, drop) / 0.5)

    def _end_event(self, t_ms):
        self._in_ev = False
        if not self._ev_confirmed or self._ev_bad:
            return None
        self._last_end = t_ms
        self.events += 1
        drop = None
        if self._ev_base_pwa:
            drop = 100.0 * (1.0 - self._ev_min_pwa / self._ev_base_pwa)
        strength = self._ev_strength()
        self._score_epoch()
        return ArousalEvent(self._ev_onset, t_ms - self._ev_onset, strength,
                            100.0 * self._ev_peak, drop)

    def arousal_index(self):
        """Events per hour of valid recording (None before 10 min of valid beats)."""
        if self.valid_ms < 600000:
            return None
        return self.events * 3600000.0 / self.valid_ms

    def close_epoch(self, end_ms=None):
        """Arousal score 0-1 of the epoch since the last call (None: no valid beats): the
        largest strength of the events whose onset lies in this epoch and that were confirmed
        by now. end_ms: the epoch's end on the beat clock (default: the last beat's time);
        events with an onset before it no longer score the next epoch."""
        score = self._epoch_score if self._epoch_valid else None
        self._epoch_score = 0.0
        self._epoch_valid = 0
        if end_ms is not None:
            self._epoch_t0 = end_ms
        elif self._last_t >= 0:
            self._epoch_t0 = self._last_t
        return score


# ------------------------------------------------------------------------ pre-sleep score
EXPECTED_DECLINE_BPM = 4.0  # over the first 30 min after lights-out, until own baseline known
_MIN_NIGHTS = const(3)
_NIGHTS_WEIGHT = const(14)  # baseline ~ last two weeks (exponential)
# Points kept per phase: one per 30-s epoch, and 30 min (1800 s) inclusive of both ends is 61.
_PTS = const(64)
# HRs are kept exactly as given: 'f' where floats are single precision (the ESP32 and the twin:
# half the RAM there), 'd' where they are double (CPython, the 64-bit unix port).
_HR_BYTES = 4 if 1.0 + 1e-10 == 1.0 else 8
_HR_TYPE = "f" if _HR_BYTES == 4 else "d"


# Stored baseline fields and their plausible ranges (a NaN fails every comparison, so it is
# refused too): nights counted, evening HR (bpm; 0 = none yet), its variance (bpm^2), and the
# HR decline after lights-out (bpm per 30 min).
_BASELINE_FIELDS = (("nights", 0, 100000), ("base_hr", 0.0, 250.0), ("base_var", 0.0, 10000.0),
                    ("base_decline", -100.0, 100.0))


class Hyperarousal:
    """Pre-sleep hyperarousal: evening HR vs the person's own baseline and HR decline slope.

    add_epoch(t_ms, hr_bpm) for every epoch (None HR is skipped); lights_out(t_ms) once;
    score() -> dict (values None when unknown); end_night() folds the night into the baseline.
    to_dict()/from_dict() persist the baseline across nights.
    """

    def __init__(self):
        self.nights = 0
        self.base_hr = 0.0
        self.base_var = 0.0
        self.base_decline = 0.0
        # One point per epoch in fixed arrays (RAM: a list of (unix ms, hr) tuples cost ~100 B
        # a point on the ESP32: a tuple, a long int and a boxed float). Times are ms from a
        # reference (small ints); HRs are kept as given (_HR_TYPE: exact on every VM).
        # Evening: a ring of the last _PTS points before lights-out, the oldest dropped.
        self._eve_t = array.array("i", bytes(4 * _PTS))
        self._eve_h = array.array(_HR_TYPE, bytes(_HR_BYTES * _PTS))
        # After lights-out: ms since lights-out, the first _PTS points of the 30 min.
        self._post_t = array.array("i", bytes(4 * _PTS))
        self._post_h = array.array(_HR_TYPE, bytes(_HR_BYTES * _PTS))
        self._new_night()

    def _new_night(self):
        self._lo_ms = None
        self._ref_ms = None  # time of the night's first point (the evening's times count from it)
        self._eve_i = 0  # ring position of the oldest evening point
        self._eve_n = 0
        self._post_n = 0

    def to_dict(self):
        return {"nights": self.nights, "base_hr": self.base_hr, "base_var": self.base_var,
                "base_decline": self.base_decline}

    @classmethod
    def from_dict(cls, d):
        """The baseline stored by to_dict(); ValueError naming the first bad field otherwise
        (a wrongly shaped file must not stop the device: the caller starts a fresh baseline)."""
        if not isinstance(d, dict):
            raise ValueError("not an object")
        h = cls()
        for key, low, high in _BASELINE_FIELDS:
            v = d.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high:
                raise ValueError("%s: expected a number in %s..%s" % (key, low, high))
            setattr(h, key, v)
        if h.nights != int(h.nights):
            raise ValueError("nights: expected a whole number")
        h.nights = int(h.nights)
        h.base_hr = float(h.base_hr)
        h.base_var = float(h.base_var)
        h.base_decline = float(h.base_decline)
        return h

    def lights_out(self, t_ms):
        self._lo_ms = t_ms

    def add_epoch(self, t_ms, hr_bpm):
        if hr_bpm is None:
            return
        if self._lo_ms is None:
            if self._ref_ms is None:
                self._ref_ms = t_ms
            t = t_ms - self._ref_ms
            et = self._eve_t
            n = self._eve_n
            # Only the last 30 min before lights-out count as "evening".
            while n and t - et[self._eve_i] > 1800000:
                self._eve_i = (self._eve_i + 1) % _PTS
                n -= 1
            if n == _PTS:  # faster than one point per epoch: the oldest goes
                self._eve_i = (self._eve_i + 1) % _PTS
                n -= 1
            j = (self._eve_i + n) % _PTS
            et[j] = t
            self._eve_h[j] = hr_bpm
            self._eve_n = n + 1
        elif 0 <= t_ms - self._lo_ms <= 1800000 and self._post_n < _PTS:
            # Time since lights-out (< 2**21 ms, exact in float32): absolute Unix ms (~1.8e12)
            # have a 131-s step in the ESP32's single precision and would ruin the fit.
            self._post_t[self._post_n] = t_ms - self._lo_ms
            self._post_h[self._post_n] = hr_bpm
            self._post_n += 1

    def evening_hr(self):
        n = self._eve_n
        if n < 6:
            return None
        h = self._eve_h
        s = 0
        for k in range(n):  # oldest first, as the points came
            s += h[(self._eve_i + k) % _PTS]
        return s / n

    def decline_bpm(self):
        """HR decline over the first 30 min after lights-out (least-squares slope * 30 min)."""
        n = self._post_n
        if n < 20:
            return None
        ts = self._post_t
        hs = self._post_h
        st = 0
        sh = 0
        for k in range(n):
            st += ts[k]
            sh += hs[k]
        mt = st / n
        mh = sh / n
        sxx = 0
        sxy = 0
        for k in range(n):
            d = ts[k] - mt
            sxx += d * d
            sxy += d * (hs[k] - mh)
        if sxx <= 0:
            return None
        slope = sxy / sxx  # bpm per ms
        return -slope * 1800000.0

    def score(self):
        eve = self.evening_hr()
        dec = self.decline_bpm()
        z = None
        s_hr = None
        if eve is not None and self.nights >= _MIN_NIGHTS:
            sd = max(2.0, self.base_var ** 0.5)
            z = (eve - self.base_hr) / sd
            s_hr = min(1.0, max(0.0, z / 2.0))  # 0 at baseline, 1 at +2 SD
        s_dec = None
        if dec is not None:
            expect = EXPECTED_DECLINE_BPM
            if self.nights >= _MIN_NIGHTS and self.base_decline > 2.0:
                expect = self.base_decline
            s_dec = min(1.0, max(0.0, 1.0 - dec / expect))  # 1 = no decline at all
        parts = [p for p in (s_hr, s_dec) if p is not None]
        return {"evening_hr_bpm": eve, "baseline_hr_bpm": self.base_hr if self.nights else None,
                "hr_z": z, "decline_bpm_30min": dec,
                "score": sum(parts) / len(parts) if parts else None}

    def end_night(self):
        eve = self.evening_hr()
        dec = self.decline_bpm()
        if eve is not None:
            w = 1.0 / min(self.nights + 1, _NIGHTS_WEIGHT)
            d = eve - self.base_hr
            self.base_hr += w * d
            self.base_var = (1.0 - w) * (self.base_var + w * d * d)
            if dec is not None:
                self.base_decline += w * (dec - self.base_decline)
            self.nights += 1
        self._new_night()
