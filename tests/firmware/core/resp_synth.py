# Synthetic PPG with breathing, and the device's breathing-rate path, for resp tests and bench.
import array
import math

import ppg_synth as S
from nsdev.core.ppg import PPGPipeline
from nsdev.core.resp import PPGBreathing

EPOCH_MS = 30000


def breathing_ppg(rate_per_min, bpm=66.0, fs=50, seconds=150, rsa_bpm=5.0, amp_mod=0.15,
                  base_mod=0.5, ac=1500.0, noise=0.0, seed=1):
    """Raw IR counts (array 'i'; a pulse is a dip) breathing at rate_per_min: RSA (HR swing
    rsa_bpm peak to trough), pulse amplitude (+-amp_mod) and baseline (+-base_mod x ac)."""
    n = int(seconds * fs)
    fr = rate_per_min / 60.0
    x = array.array("f", [0.0] * n)
    t_beat = 0.0
    while t_beat < seconds:
        ph = 2 * math.pi * fr * t_beat
        period = 60.0 / (bpm + 0.5 * rsa_bpm * math.sin(ph))
        amp = ac * (1 + amp_mod * math.cos(ph))
        i0 = int(t_beat * fs)
        for i in range(i0, min(n, i0 + int(2 * period * fs) + 1)):
            x[i] += amp * S.pulse(i / fs - t_beat, period)
        t_beat += period
    out = array.array("i", [0] * n)
    rnd = seed
    for i in range(n):
        ph = 2 * math.pi * fr * i / fs
        rnd = (rnd * 75 + 74) % 65537  # ZX81 LCG: stays in small ints (the 31-bit twin)
        nz = noise * ac * (rnd / 65536.0 - 0.5)
        out[i] = int(120000 - x[i] - base_mod * ac * math.sin(ph) + nz)
    return out


def run_device(counts, fs, chunk=8, with_hr=False, rebase_after_ms=None, stepped=False):
    """The firmware path (PPGPipeline -> PPGBreathing, as app.py feeds it), epochs of 30 s:
    -> list of (epoch end ms, breaths/min or None[, the pipeline knew the heart rate]).
    stepped: as the app runs it, one step of estimate_steps() per chunk of samples, new beats
    and baseline samples arriving in between (then -> (end, rate, steps) triples)."""
    pipe = PPGPipeline(fs)
    est = PPGBreathing()
    out = array.array("i", [0] * 4)
    buf = array.array("i", [0] * chunk)
    res = []
    next_end = EPOCH_MS
    n = len(counts)
    steps = None
    end = n_steps = 0
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        for j in range(m):
            buf[j] = counts[i + j]
        pipe.feed(None, buf, m)
        t = pipe.time_ms()
        est.add_samples(t, buf, m)
        while pipe.pop_beat(out):
            est.add_beat(out[0], out[1], out[2], out[3])
        if steps is not None:
            try:
                next(steps)
                n_steps += 1
            except StopIteration as e:
                res.append((end, e.value, n_steps))
                steps = None
            continue
        if t >= next_end:
            ep = pipe.close_epoch()
            rate = None
            if stepped:
                end = next_end
                next_end += EPOCH_MS
                if ep.hr_bpm is not None and not ep.flags:
                    steps = est.estimate_steps(t, ep.hr_bpm)
                    n_steps = 0
                else:
                    res.append((end, None, 0))
                continue
            if ep.hr_bpm is not None and not ep.flags:
                rate = est.estimate(t, ep.hr_bpm)
            res.append((next_end, rate, ep.hr_bpm is not None) if with_hr else (next_end, rate))
            next_end += EPOCH_MS
            if rebase_after_ms is not None:  # as app.py: the pipeline's clock origin moves
                d = pipe.rebase(rebase_after_ms)
                if d:
                    est.rebase(d)
                    next_end -= d
    return res
