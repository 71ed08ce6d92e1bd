# PPG beat rules: candidates from the detector (ppg.py) -> beats for 30-200 bpm (refractory,
# dicrotic window, search-back, rebound/noise), per-beat IBI/PWA/flags, and the ring of beats the
# app drains. Touched once per candidate, never per sample; allocates nothing (docs/ppg-and-
# arousal.md, "Beat rules").
import array

from nsdev.compat import const
from nsdev.core.ppgdefs import MAX_IBI_MS, MIN_IBI_MS, sort_into

BEAT_RING = const(32)  # beats held for the app (more than 10 s at 200 bpm)
BEAT_FIELDS = const(4)  # t_ms, ibi_ms, pwa_ppm, flags

_REFRACTORY_MS = const(250)  # two candidates closer than this are one beat (240 bpm)
_DICROTIC_MS = const(600)  # a dicrotic wave follows the systolic peak by ~250-500 ms


class BeatRules:
    """Candidates in, beats out. candidate() is called by the detector with the candidate's
    time, its band-passed level b, its rise amp (peak minus the trough before it), the flags
    seen since the previous candidate, the DC (counts * 16) and the detector's ring position.
    The detector reads amp_ref (median rise of the last 5 beats, for its motion test) and
    deadline (ring position at which the held beat is released without a successor)."""

    def __init__(self, fs_hz, epoch):
        self.fs_hz = fs_hz
        self._epoch = epoch  # ppgepoch.EpochStats: gets every released beat
        self._beats = array.array("i", [0] * (BEAT_RING * BEAT_FIELDS))
        self._amp_hist = array.array("i", [0] * 5)
        self._b_hist = array.array("i", [0] * 5)
        self._srt = array.array("i", [0] * 5)
        self.dropped = 0  # beats the app did not drain in time (oldest dropped)
        self.reset()

    def reset(self):
        self.amp_ref = 0
        self.deadline = 0
        self._pend_t = -1  # pending candidate time (ms), -1 = none
        self._pend_amp = 0
        self._pend_b = 0
        self._pend_flags = 0
        self._pend_dc = 0
        self._peak_ref = 0
        self._sb_t = -1  # search-back candidate (see candidate()), -1 = none
        self._sb_amp = 0
        self._sb_b = 0
        self._sb_dc = 0
        self._last_t = -1  # time of the last released beat, -1 = none (IBI unknown)
        self._ibi_ref = 0
        self._amp_i = 0
        self._amp_n = 0
        self._n_small = 0
        for i in range(5):
            self._amp_hist[i] = 0
            self._b_hist[i] = 0
        self._b_head = 0
        self._b_count = 0

    def candidate(self, t_ms, b, amp, flags, dc16, pos):
        if amp > (1 << 19):
            amp = 1 << 19
        if amp < 0:
            amp = 0
        # Far smaller than recent beats (filter rebound after a slow beat, noise): not a beat.
        # After 3 rejections in a row the level is accepted, so a real drop in amplitude is
        # followed. Until 5 beats give a median (start-up), the held candidate is the reference.
        pr = self._peak_ref
        if not pr:
            pr = self._pend_b if self._pend_t >= 0 else 0
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
            if self._pend_b * 5 < b or (not ref and self._pend_amp * 5 < amp):
                # The held candidate was noise next to this real beat: its level is under a
                # fifth of this one's, or, until the rhythm is known, its rise (the start-up
                # filter transient's ripple in a slow pulse's diastole: a fair level, no rise).
                self._pend_t = -1
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
        self.deadline = pos + MAX_IBI_MS * self.fs_hz // 1000

    def flush(self):
        """Release the held beat (deadline passed, gap, end of recording)."""
        if self._pend_t >= 0:
            self._release()
        self.deadline = 0

    def gap(self):
        """Samples were lost: release the held beat; the IBI across the gap is unknown."""
        self.flush()
        self._last_t = -1

    def rebase(self, d_ms, d_pos):
        """The clock's origin moved forward by d_ms (times) and d_pos (ring positions)."""
        if self.deadline:
            self.deadline -= d_pos
        if self._pend_t >= 0:
            self._pend_t -= d_ms
        if self._sb_t >= 0:
            self._sb_t -= d_ms
        if self._last_t >= 0:
            self._last_t -= d_ms
        beats = self._beats
        for i in range(self._b_count):
            beats[((self._b_head + i) % BEAT_RING) * BEAT_FIELDS] -= d_ms

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
            self.amp_ref = self._median5(self._amp_hist)
            self._peak_ref = self._median5(self._b_hist)
        # References for the rules above (only from clean beats in range).
        if flags == 0:
            if MIN_IBI_MS <= ibi <= MAX_IBI_MS:
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
            self.dropped += 1
        k = ((self._b_head + self._b_count) % BEAT_RING) * BEAT_FIELDS
        beats[k] = t_ms
        beats[k + 1] = ibi
        beats[k + 2] = pwa
        beats[k + 3] = flags
        self._b_count += 1
        self._epoch.add_beat(ibi, pwa, flags)

    def _median5(self, hist):
        sort_into(hist, 5, self._srt)
        return self._srt[2]

    def available(self):
        return self._b_count

    def pop(self, out):
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
