"""feed() in viper (machine words, ptr32 reads sign-extended) gives exactly what the previous
@micropython.native feed gave (tests/firmware/core/ppg_ref.py): the same beats (time, IBI, PWA,
flags), epoch statistics, DC and clock, for random streams with motion, clipping, contact loss,
out-of-range and negative samples, gaps and LED changes, fed in random chunk sizes. Dual test:
CPython, the 64-bit unix port (where a ptr32 load is zero-extended) and the twin (32-bit)."""
import array

import ppg_ref
from nsdev.core.ppg import PPGPipeline

RUN_UNDER_MICROPYTHON = True


class _Rng:
    # LCG (Numerical Recipes constants), the same draws on every interpreter
    def __init__(self, seed):
        self.x = seed & 0x7FFFFFFF

    def below(self, n):
        self.x = (1103515245 * self.x + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


def _stream(seed, seconds, fs):
    r = _Rng(seed)
    n = seconds * fs
    ir = array.array("i", [0] * n)
    red = array.array("i", [0] * n)
    period = fs * (40 + r.below(120)) // 60 + 1  # samples per beat: 40-160 bpm
    amp = 50 + r.below(4000)
    dc = 20000 + r.below(200000)
    for i in range(n):
        ph = i % period
        pulse = amp * (period - ph) // period if ph < period // 3 else 0
        noise = r.below(2 * (amp // 20) + 1) - amp // 20
        ir[i] = dc - pulse + noise
        red[i] = dc * 3 // 4 - pulse * 2 // 3 + noise
    # artefacts: motion, clipping, no contact, out-of-range and negative samples, a DC step
    for _ in range(r.below(4)):
        a = r.below(n)
        kind = r.below(5)
        for i in range(a, min(n, a + r.below(5 * fs) + 1)):
            if kind == 0:
                ir[i] += r.below(60000) - 30000
            elif kind == 1:
                ir[i] = 262143
            elif kind == 2:
                ir[i] = 900
                red[i] = 700
            elif kind == 3:
                ir[i] = -r.below(5000) if r.below(2) else 300000 + r.below(1000)
            else:
                ir[i] += dc // 3
    return ir, red


def _run(cls, ir, red, seed, fs, with_red):
    r = _Rng(seed * 7 + 1)
    pipe = cls(fs)
    bi = array.array("i", [0] * 32)
    br = array.array("i", [0] * 32)
    out = array.array("i", [0] * 4)
    got = []
    n = len(ir)
    i = 0
    while i < n:
        m = 1 + r.below(32)
        if m > n - i:
            m = n - i
        for j in range(m):
            bi[j] = ir[i + j]
            br[j] = red[i + j]
        pipe.feed(br if with_red else None, bi, m)
        i += m
        ev = r.below(40)
        if ev == 0:
            pipe.gap(1 + r.below(40))
        elif ev == 1:
            pipe.led_changed()
        while pipe.pop_beat(out):
            got.append(tuple(out))
        if r.below(25) == 0:
            ep = pipe.close_epoch()
            got.append((ep.hr_bpm, ep.rmssd_ms, ep.sdnn_ms, ep.pwa_mean, ep.spo2_pct, ep.beats,
                        ep.sqi, ep.flags))
            got.append((pipe.dc_ir_counts(), pipe.dc_red_counts(), pipe.time_ms()))
    pipe.flush()
    while pipe.pop_beat(out):
        got.append(tuple(out))
    return got


def test_viper_feed_equals_previous_feed():
    fs = 50
    beats = 0
    for seed in range(1, 25):
        ir, red = _stream(seed, 40, fs)
        for with_red in (True, False):
            new = _run(PPGPipeline, ir, red, seed, fs, with_red)
            old = _run(ppg_ref.PPGPipeline, ir, red, seed, fs, with_red)
            diff = [(new[k], old[k]) for k in range(min(len(new), len(old))) if new[k] != old[k]]
            assert new == old, (seed, with_red, len(new), len(old), diff[:3])
            beats += sum(1 for g in new if len(g) == 4)
    assert beats > 500, beats  # the streams do make beats


def test_viper_feed_equals_previous_feed_at_100_hz():
    ir, red = _stream(99, 30, 100)
    assert _run(PPGPipeline, ir, red, 5, 100, True) == _run(ppg_ref.PPGPipeline, ir, red, 5, 100,
                                                            True)
