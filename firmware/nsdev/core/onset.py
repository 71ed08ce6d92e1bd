# Sleep onset on the device: when the lights went out this night (the room stays dark for 2 min
# during wind-down or the night; with no light reading, the scheduled bedtime), and the pre-sleep
# hyperarousal summary 30 min after it (evening HR vs the person's baseline, HR decline; see
# core/arousal.Hyperarousal). Pure: times and readings come in as arguments.
from nsdev.core import light
from nsdev.core.arousal import Hyperarousal

DARK_LUX = 1.0  # below this the room counts as dark
DARK_FOR_S = 120  # ... for this long: lights out
SUMMARY_AFTER_S = 1800  # the pre-sleep summary is final 30 min after lights-out

LIGHTS_OUT = 1  # epoch() result bits: lights-out was found in this epoch
SUMMARY = 2  # ... the pre-sleep summary is due (once per night)


class SleepOnset:
    def __init__(self, hyper=None):
        self.hyper = hyper if hyper is not None else Hyperarousal()  # the person's baseline
        self.score = None  # latest pre-sleep hyperarousal score 0..1 (None: unknown)
        self.lights_out_s = None
        self._dark_since_s = None
        self._summarised = False

    def epoch(self, start_s, hr_bpm, room_lux, phase):
        """One closed epoch of the open night -> LIGHTS_OUT | SUMMARY bits (0: nothing new)."""
        out = 0
        self.hyper.add_epoch(start_s * 1000, hr_bpm)
        if self.lights_out_s is None:
            dark = room_lux is not None and room_lux < DARK_LUX
            self._dark_since_s = (self._dark_since_s or start_s) if dark else None
            if phase in (light.PHASE_WIND_DOWN, light.PHASE_NIGHT):
                if dark and start_s - self._dark_since_s >= DARK_FOR_S:
                    self.lights_out_s = self._dark_since_s
                elif room_lux is None and phase == light.PHASE_NIGHT:
                    self.lights_out_s = start_s  # no light reading: the scheduled bedtime
            if self.lights_out_s is not None:
                self.hyper.lights_out(self.lights_out_s * 1000)
                out |= LIGHTS_OUT
        s = self.hyper.score()
        self.score = s["score"]
        if (not self._summarised and self.lights_out_s is not None
                and start_s - self.lights_out_s >= SUMMARY_AFTER_S):
            self._summarised = True
            out |= SUMMARY
        return out

    def summary(self):
        """{score, evening_hr_bpm, baseline_hr_bpm, decline_bpm_30min} (None: unknown)."""
        return self.hyper.score()

    def end_night(self):
        """Close the night: fold it into the baseline; -> the baseline to keep across nights."""
        self.hyper.end_night()
        self.lights_out_s = None
        self._dark_since_s = None
        self._summarised = False
        return self.hyper.to_dict()
