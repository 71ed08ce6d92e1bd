"""Property tests (CPython/hypothesis) for the PPG pipeline: exact recovery, stability, garbage."""

import array

import ppg_synth as S
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nsdev.core.ppg import PPGPipeline

# derandomize: the same examples on every run, so CI cannot flake on a rare input; a known
# failing input is kept below as a strict xfail instead of being searched for at random.
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _check_clean_train(bpm, phase_s, ac, dc, fs):
    seconds = 14
    red, ir, peaks = S.train(bpm, fs, seconds, phase_s, dc=dc, ac=min(ac, dc // 4))
    beats = S.run(PPGPipeline(fs), red, ir)
    assert beats
    offs = sorted(b[0] - min(peaks, key=lambda p: abs(p - b[0])) for b in beats)
    off = offs[len(offs) // 2]
    hit = set()
    for b in beats:
        p = min(peaks, key=lambda q: abs(b[0] - off - q))
        assert abs(b[0] - off - p) <= 5, (b, p)
        assert p not in hit
        hit.add(p)
        assert b[3] == 0
        if b[1]:
            assert abs(b[1] - 60000.0 / bpm) <= 5
    missed = [p for p in peaks if 2500 <= p <= seconds * 1000 - 1000
              and p not in hit]
    assert not missed


def test_known_false_first_beat_on_a_faint_slow_pulse():
    # Was a strict xfail (a false first beat ~1.2 s after start); the dicrotic test on the
    # pulse's rise (not its level) drops the start-up's flat candidate, so it now passes.
    _check_clean_train(bpm=30.0, phase_s=0.0, ac=150, dc=40000, fs=200)


@SETTINGS
@given(
    bpm=st.floats(30, 200),
    phase_s=st.floats(0, 2),
    perfusion=st.floats(0.005, 0.25),  # AC/DC; fainter slow pulses: the xfail above
    dc=st.integers(40000, 230000),
    fs=st.sampled_from([50, 64, 100, 125, 200]),
)
def test_clean_train_recovered_exactly(bpm, phase_s, perfusion, dc, fs):
    _check_clean_train(bpm, phase_s, int(perfusion * dc), dc, fs)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=1, max_size=400),
       st.integers(0, 100), st.sampled_from([50, 100, 400]))
def test_garbage_never_raises_and_state_stays_bounded(values, lost, fs):
    pipe = PPGPipeline(fs)
    buf = array.array("i", values)
    for _ in range(3):
        pipe.feed(buf, buf, len(buf))
        pipe.gap(lost)
    ep = pipe.close_epoch()
    assert 0 <= ep.sqi <= 100
    assert ep.hr_bpm is None or 25 <= ep.hr_bpm <= 240
    # Filter state stays inside the 31-bit small-int range of the device.
    for name in ("_h1", "_h2", "_hr1", "_bsum", "_sum_beat", "_sum_peak", "_ymean", "_env",
                 "_dc_ir", "_dc_red"):
        assert abs(getattr(pipe, name)) < (1 << 30), name


@settings(max_examples=8, deadline=None)
@given(bpm=st.floats(30, 200), ac=st.integers(20, 60000))
def test_detection_state_bounded_on_extreme_pulses(bpm, ac):
    red, ir, _ = S.train(bpm, 50, 15, 0.0, dc=200000, ac=min(ac, 190000))
    pipe = PPGPipeline(50)
    S.run(pipe, red, ir)
    for name in ("_h1", "_h2", "_bsum", "_sum_beat", "_sum_peak", "_ymean", "_env"):
        assert abs(getattr(pipe, name)) < (1 << 30), name
    assert max(pipe._ry) * pipe._w1 * pipe._w2 < (1 << 30)
