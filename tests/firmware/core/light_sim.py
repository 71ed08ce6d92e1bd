# Closed-loop simulation of LightController + Lamp (fake PWM) on a virtual clock, for the property
# tests and tests/bench/bench_lamp.py. CPython (or MicroPython: no CPython-only features).
import nsdev  # noqa: F401
from nsdev.core.light import PHASE_NIGHT, PHASE_NO_CLOCK, PHASE_WIND_DOWN, LightController
from nsdev.drivers.lamp import AMBER, VISIBLE_STEP_LSTAR, WARM, Lamp, lightness_from_y


class _PWM:
    def __init__(self):
        self.duty = 0

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        self.duty = d

    def freq(self, f=None):
        return 4000


def simulate(cfg, t0_unix, dur_s, offset_s, presses=(), room=None, arousal=None, hr=None,
             resets=(), lamp_kw=None):
    """Returns a dict of figures and a list of invariant violations."""
    caps = {PHASE_WIND_DOWN: 10.0, PHASE_NIGHT: 1.0, PHASE_NO_CLOCK: 1.0}
    presses = sorted(presses)
    resets = sorted(resets)
    out = {"max_mel": {PHASE_WIND_DOWN: 0.0, PHASE_NIGHT: 0.0}, "visible_steps": 0,
           "max_step_lstar": 0.0, "min_nonzero_frac": None, "frames": 0, "violations": [],
           "events": []}

    def boot():
        w, a = _PWM(), _PWM()
        return LightController(cfg), Lamp(w, a, **(lamp_kw or {})), w, a

    ctrl, lamp, pw, pa = boot()
    t_ms = 0
    next_ctrl = 0
    next_lamp = 0
    last_lamp = 0
    prev_l = [0.0, 0.0]
    end_ms = dur_s * 1000
    while t_ms < end_ms:
        now_s = t0_unix + t_ms // 1000
        if resets and t_ms >= resets[0] * 1000:
            resets.pop(0)
            ctrl, lamp, pw, pa = boot()  # power cycle: everything volatile is gone
            prev_l = [0.0, 0.0]  # the pins drop at reset: dark, not a fade step
            out["resets"] = out.get("resets", 0) + 1
            next_ctrl = t_ms
            last_lamp = t_ms
        pressed = False
        while presses and presses[0] * 1000 <= t_ms:
            presses.pop(0)
            pressed = True
        if pressed or t_ms >= next_ctrl:
            w, a, ev = ctrl.update(now_s, offset_s(now_s) if callable(offset_s) else offset_s,
                                   room_lux=room(now_s) if room else None, pressed=pressed,
                                   hyperarousal=arousal(now_s) if arousal else None,
                                   hr_bpm=hr(now_s) if hr else None)
            for e in ev:
                out["events"].append((now_s, e[0], e[1]))
            lamp.set_target(w, a, 1000)
            next_ctrl = t_ms + 1000
            next_lamp = t_ms
        if t_ms >= next_lamp:
            wait = lamp.update(t_ms - last_lamp)
            last_lamp = t_ms
            next_lamp = t_ms + wait
            out["frames"] += 1
            fp = out.setdefault("frames_by_phase", {})
            fp[ctrl.phase] = fp.get(ctrl.phase, 0) + 1
            for ch, pwm in ((WARM, pw), (AMBER, pa)):
                ls = lightness_from_y(pwm.duty / 65535)
                step = abs(ls - prev_l[ch])
                prev_l[ch] = ls
                if step > out["max_step_lstar"]:
                    out["max_step_lstar"] = step
                if step > VISIBLE_STEP_LSTAR:
                    out["visible_steps"] += 1
                y = lamp.level(ch)
                if y > 0.0 and (out["min_nonzero_frac"] is None or y < out["min_nonzero_frac"]):
                    out["min_nonzero_frac"] = y
            # The light the lamp gave, from the PWM duty it was driven with (LED light under PWM
            # is proportional to duty), not the controller's model of its own output.
            c = ctrl.cfg
            mel = (pw.duty / 65535 * float(c["warm_full_lux_at_eye"]) * float(c["warm_der"])
                   + pa.duty / 65535 * float(c["amber_full_lux_at_eye"]) * float(c["amber_der"]))
            ph = ctrl.phase
            cap = caps.get(ph)
            if cap is not None:
                if ph in out["max_mel"] and mel > out["max_mel"][ph]:
                    out["max_mel"][ph] = mel
                if mel > cap:
                    out["violations"].append(("mel_cap", now_s, ph, mel))
        t_ms = min(next_ctrl, next_lamp)
    return out
