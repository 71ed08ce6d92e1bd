# Smart dawn: start the dawn early, inside a wake window, at the first epoch that looks like
# light sleep or wake by the device's own signals; else at the latest start that still completes
# the dawn by the wake time (the fixed dawn).
#
# Per 30-s epoch, cheap enough for the ESP32 (a 20-value history, one sort per epoch):
#  - movement: the PPG front end's motion flag (actigraphy scores movement as wake; Cole et al.
#    1992, Sleep 15:461);
#  - an autonomic arousal in the epoch: arousal score >= AROUSAL_MIN (nsdev.core.arousal);
#  - heart rate >= HR_RISE above the median of its own last 10 min: HR is lowest in deep NREM
#    and higher in light NREM, REM and wake (Trinder et al. 2001, J Sleep Res 10:253).
# update() returns True once, at the epoch the dawn should start. Times are seconds on any one
# clock (the app's local seconds); wake_s is the set wake time, dawn_s the ramp length.
from nsdev.compat import const

_HIST = const(20)  # epochs of HR history (10 min)
_MIN_HIST = const(6)  # HR epochs needed before the HR rule applies
HR_RISE = 0.06
AROUSAL_MIN = 0.3
_MOTION = const(4)  # nsdev.core.vocab.FLAG_MOTION (= nsdev.core.ppgdefs.MOTION on epochs)


class SmartDawn:
    def __init__(self, wake_s, dawn_s=1800, window_s=1800):
        if window_s < 0 or dawn_s < 0:
            raise ValueError("dawn_s and window_s must be >= 0")
        self.latest_s = wake_s - dawn_s  # the fixed dawn's start
        self.earliest_s = self.latest_s - window_s
        self._hr = []
        self.started_s = None
        self.reason = None  # "motion", "arousal", "hr" or "latest"

    def _light(self, hr_bpm, arousal_score, flags):
        if flags & _MOTION:
            return "motion"
        if arousal_score is not None and arousal_score >= AROUSAL_MIN:
            return "arousal"
        if hr_bpm is not None and len(self._hr) >= _MIN_HIST:
            s = sorted(self._hr)
            med = s[len(s) // 2]
            if hr_bpm >= med * (1.0 + HR_RISE):
                return "hr"
        return None

    def update(self, now_s, hr_bpm=None, arousal_score=None, flags=0):
        """One epoch (now_s: its end). True once: start the dawn now."""
        if self.started_s is not None:
            return False
        why = None
        if now_s >= self.latest_s:
            why = "latest"
        elif now_s >= self.earliest_s:
            why = self._light(hr_bpm, arousal_score, flags)
        if hr_bpm is not None and not flags & _MOTION:
            self._hr.append(hr_bpm)
            if len(self._hr) > _HIST:
                self._hr.pop(0)
        if why is None:
            return False
        self.started_s = now_s
        self.reason = why
        return True
