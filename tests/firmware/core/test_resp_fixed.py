"""The breathing estimate's spectrum in fixed point (core/resp.py, _goertzel_q) gives the rates
of the float recurrence it replaced (tests/firmware/core/resp_ref.py): per modality and fused,
every epoch of synthetic breathing PPG over the rates, heart rates, noise and modulation depths
the device meets, with the same known/unknown decisions. Tolerance, derived in resp.py's notes:
rounding the 2-Hz series to 13 bits and each recurrence step to one unit moves the powers by
~1e-4 relative near the peak, the parabola's rate by ~1e-3 /min; 0.01 /min is ten times below
the night format's resolution (0.1 /min, vocab resp_per_min). Dual test: CPython, the unix port
(double) and the twin (float32)."""
import array

import resp_ref
from nsdev.core.ppg import PPGPipeline
from nsdev.core.resp import PPGBreathing
from resp_synth import breathing_ppg

RUN_UNDER_MICROPYTHON = True

TOL_PER_MIN = 0.01
CASES = (  # (breaths/min, bpm, noise, amplitude modulation, baseline modulation)
    (6.0, 60.0, 0.0, 0.15, 0.5), (9.5, 72.0, 0.1, 0.1, 0.3), (12.0, 55.0, 0.2, 0.2, 0.6),
    (15.0, 66.0, 0.0, 0.15, 0.5), (18.0, 80.0, 0.3, 0.05, 0.2), (22.0, 95.0, 0.1, 0.15, 0.5),
    (25.0, 110.0, 0.0, 0.25, 0.8), (14.0, 50.0, 0.1, 0.15, 0.5), (8.0, 45.0, 0.5, 0.1, 0.1),
    (30.0, 120.0, 0.2, 0.2, 0.4),
)


def _epochs(counts, fs=50):
    """Both estimators on the same beats and baseline: per 30-s epoch, (rate, rates) of each."""
    pipe = PPGPipeline(fs)
    new = PPGBreathing()
    old = resp_ref.PPGBreathing()
    out = array.array("i", [0] * 4)
    buf = array.array("i", [0] * 8)
    res = []
    next_end = 30000
    for i in range(0, len(counts), 8):
        m = min(8, len(counts) - i)
        for j in range(m):
            buf[j] = counts[i + j]
        pipe.feed(None, buf, m)
        t = pipe.time_ms()
        new.add_samples(t, buf, m)
        old.add_samples(t, buf, m)
        while pipe.pop_beat(out):
            new.add_beat(out[0], out[1], out[2], out[3])
            old.add_beat(out[0], out[1], out[2], out[3])
        if t >= next_end:
            next_end += 30000
            ep = pipe.close_epoch()
            if ep.hr_bpm is None:
                continue
            a = new.estimate(t, ep.hr_bpm)
            b = old.estimate(t, ep.hr_bpm)
            res.append((a, list(new.rates), b, list(old.rates)))
    return res


def test_fixed_point_spectrum_gives_the_float_rates():
    known = 0
    worst = 0.0
    for rate, bpm, noise, amp_mod, base_mod in CASES:
        counts = breathing_ppg(rate, bpm=bpm, seconds=150, noise=noise, amp_mod=amp_mod,
                               base_mod=base_mod, seed=int(rate * 10))
        for a, ra, b, rb in _epochs(counts):
            assert (a is None) == (b is None), (rate, bpm, a, b, ra, rb)
            if a is not None:
                known += 1
                worst = max(worst, abs(a - b))
                assert abs(a - b) <= TOL_PER_MIN, (rate, bpm, a, b)
            for k in range(3):
                assert (ra[k] == 0.0) == (rb[k] == 0.0), (rate, bpm, k, ra, rb)
                assert abs(ra[k] - rb[k]) <= TOL_PER_MIN, (rate, bpm, k, ra, rb)
    assert known >= 10, known  # the cases do give rates
    print("fixed vs float: %d epochs with a rate, worst difference %.5f /min" % (known, worst))
