# A device up for 30 days: PPG beat times and arousal onsets stay right. The pipeline's sample
# clock counts ms since the driver started; without rebasing, ms pass 2**30 (a long int on the
# ESP32) after 12.4 days and overflow array('i') after 24.8, giving negative, dropped beats.
# The app calls pipe.rebase() at every epoch and moves its origin (and the arousal estimator's)
# by what it returns; these tests do the same. Dual test: CPython, unix port and twin.
import ppg_synth as S
from nsdev.core.arousal import ArousalEstimator
from nsdev.core.ppg import PPGPipeline
from test_arousal import _beats

RUN_UNDER_MICROPYTHON = True

DAY_MS = 86400000
UPTIME_MS = 30 * DAY_MS


def test_beats_exact_after_30_days_of_uptime():
    fs = 50
    bpm = 72
    red, ir, peaks = S.train(bpm, fs, 240, 0.37)
    pipe = PPGPipeline(fs)
    pipe.gap(UPTIME_MS // 1000 * fs)  # 30 days of samples since the driver started
    origin = pipe.rebase()  # what the daily rebases did meanwhile
    assert origin > 29 * DAY_MS
    out = [0, 0, 0, 0]
    got = []
    n = len(ir)
    i = 0
    while i < n:
        m = 8 if n - i >= 8 else n - i
        pipe.feed(red[i:i + m], ir[i:i + m], m)
        i += m
        while pipe.pop_beat(out):
            got.append((origin + out[0], out[1], out[3]))
        if i % (30 * fs) == 0:  # an epoch: the app rebases (here after 90 s, not a day)
            pipe.close_epoch()
            d = pipe.rebase(90000)
            assert d % 1000 == 0
            origin += d
            assert 0 <= pipe.time_ms() < 200000, pipe.time_ms()
    pipe.flush()
    while pipe.pop_beat(out):
        got.append((origin + out[0], out[1], out[3]))
    # Every beat sits on a true peak (30 days + peak time) after the filter's constant delay.
    start = UPTIME_MS
    assert got and got[0][0] > start
    offs = sorted(t - start - min(peaks, key=lambda p: abs(p - (t - start))) for t, _, _ in got)
    off = offs[len(offs) // 2]
    assert abs(off) < 60, off
    hit = []
    for t, ibi, flags in got:
        p = min(peaks, key=lambda q: abs(t - start - off - q))
        assert abs(t - start - off - p) <= 4, (t - start, p)
        assert p not in hit
        hit.append(p)
        assert flags == 0 or t == got[0][0], (t - start, flags)  # first: after the gap
        if ibi:
            assert abs(ibi - 60000 / bpm) <= 3, ibi
    missed = [p for p in peaks if 2500 <= p <= 239000 and p not in hit]
    assert not missed, missed


def test_arousals_found_after_30_days_with_rebases():
    onsets = [120 + 75 * i for i in range(6)]
    est = ArousalEstimator()
    origin = UPTIME_MS - 1000 * 60  # the pipeline's origin: ms on its clock = uptime - origin
    events = []
    next_epoch = 30000
    for t, ibi, pwa, flags in _beats(10, arousals=onsets):
        ev = est.add_beat(UPTIME_MS + t - origin, ibi, pwa, flags)
        if ev is not None:
            events.append(origin + ev.onset_ms - UPTIME_MS)
        if t >= next_epoch:
            est.close_epoch()
            next_epoch += 30000
            d = 45000  # the pipeline moved its origin by 45 s (rebase)
            est.rebase(d)
            origin += d
    assert len(events) == len(onsets), events
    for i in range(len(onsets)):
        assert abs(events[i] - onsets[i] * 1000) < 6000, (events[i], onsets[i])
