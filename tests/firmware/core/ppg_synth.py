# Synthetic raw MAX30102-like PPG (counts; a pulse is a dip) for the PPG pipeline tests.
import array
import math


def pulse(t_s, period_s):
    # One beat: systolic wave and a dicrotic wave (widths grow a little at slow rates).
    w = 0.05 + 0.03 * min(1.0, period_s)
    sys_t = 0.10 + 0.08 * min(1.0, period_s)
    dic_t = sys_t + 0.12 + 0.1 * min(1.0, period_s)
    v = math.exp(-0.5 * ((t_s - sys_t) / w) ** 2)
    v += 0.4 * math.exp(-0.5 * ((t_s - dic_t) / (1.3 * w)) ** 2)
    return v


def train(bpm, fs, seconds, phase_s=0.0, dc=120000, ac=1500, red_dc=90000):
    """(red, ir) array('i') of raw counts and the list of true systolic-peak times (ms)."""
    period = 60.0 / bpm
    n = int(seconds * fs)
    ir = array.array("i", [0] * n)
    red = array.array("i", [0] * n)
    sys_t = 0.10 + 0.08 * min(1.0, period)
    peaks = []
    k = -int(phase_s / period) - 2
    while k * period + phase_s + sys_t < seconds:
        t_pk = k * period + phase_s + sys_t
        if t_pk >= 0:
            peaks.append(int(1000 * t_pk + 0.5))
        k += 1
    for i in range(n):
        t = i / fs - phase_s
        b = math.floor(t / period)
        v = pulse(t - (b - 1) * period, period) + pulse(t - b * period, period)
        ir[i] = dc - int(ac * v)
        red[i] = red_dc - int(ac * 0.5 * v)
    return red, ir, peaks


def run(pipe, red, ir, chunk=8, flush=True):
    """Feed in FIFO-sized chunks; return the list of beats as tuples (t, ibi, pwa, flags)."""
    out = array.array("i", [0] * 4)
    rb = array.array("i", [0] * chunk)
    ib = array.array("i", [0] * chunk)
    beats = []
    n = len(ir)
    i = 0
    while i < n:
        m = min(chunk, n - i)
        for j in range(m):
            ib[j] = ir[i + j]
            rb[j] = red[i + j] if red is not None else 0
        pipe.feed(rb if red is not None else None, ib, m)
        i += m
        while pipe.pop_beat(out):
            beats.append((out[0], out[1], out[2], out[3]))
    if flush:
        pipe.flush()
        while pipe.pop_beat(out):
            beats.append((out[0], out[1], out[2], out[3]))
    return beats
