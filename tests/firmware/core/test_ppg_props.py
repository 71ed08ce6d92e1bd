"""Property tests (CPython/hypothesis) for the PPG pipeline: exact recovery, stability, garbage."""

import array
import math

import ppg_synth as S
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nsdev.core.ppg import PPGPipeline

# The range the device claims (docs/ppg-and-arousal.md): 30-200 bpm; any rate PPGPipeline
# accepts (50-400 Hz; the board runs 50 or 100); perfusion index (IR AC/DC) from 0.05 %, where
# the pipeline's LOW_PERFUSION flag starts and the simulator's lowest setting is
# (docs/simulation-scenarios.md), to 25 %; DC 15-88 % of the 18-bit full scale.
# Perfusion is drawn log-uniform so faint pulses get as many draws as strong ones.
PERFUSION_LOG10 = (math.log10(0.0005), math.log10(0.25))
SECONDS = 14
TOL_MS = 5


def _tol_ms(ac, bpm):
    """Timing tolerance: TOL_MS, or the resolution the 18-bit samples give a faint pulse.

    Near its top the synthetic systolic wave is a Gaussian of width w (ppg_synth.pulse), so it
    stays within one ADC count of its maximum for +-w*sqrt(2/ac) around the true peak: inside
    that span the samples cannot tell where the peak is. The detector's 60-ms smoothing does
    better; we ask for half the span. It exceeds TOL_MS only below ~500 counts of pulse and
    reaches ~12 ms at the faintest (0.05 % of a 40000-count DC = 20 counts)."""
    w_s = 0.05 + 0.03 * min(1.0, 60.0 / bpm)
    return max(TOL_MS, 500.0 * w_s * math.sqrt(2.0 / ac))


def _check_clean_train(bpm, phase_s, ac, dc, fs, tol_ms=None):
    ac = min(ac, dc // 4)
    tol = _tol_ms(ac, bpm) if tol_ms is None else tol_ms
    red, ir, peaks = S.train(bpm, fs, SECONDS, phase_s, dc=dc, ac=ac)
    beats = S.run(PPGPipeline(fs), red, ir)
    assert beats
    # One constant offset (the filters' delay) between beat times and true peaks.
    offs = sorted(b[0] - min(peaks, key=lambda p: abs(p - b[0])) for b in beats)
    off = offs[len(offs) // 2]
    hit = set()
    for b in beats:
        p = min(peaks, key=lambda q: abs(b[0] - off - q))
        assert abs(b[0] - off - p) <= tol, ("beat off its peak", b, p, off)
        assert p not in hit, ("two beats for one peak", b, p)
        hit.add(p)
        assert b[3] == 0, ("flags on a clean pulse", b)
        if b[1]:
            assert abs(b[1] - 60000.0 / bpm) <= tol, ("IBI", b, 60000.0 / bpm)
    # Beats in the first 2.5 s may be missed (filters and blanking settle); none after.
    missed = [p for p in peaks if 2500 <= p <= SECONDS * 1000 - 1000 and p not in hit]
    assert not missed


def test_known_false_first_beat_on_a_faint_slow_pulse():
    # Was a strict xfail (a false first beat ~1.2 s after start); the dicrotic test on the
    # pulse's rise (not its level) drops the start-up's flat candidate, so it now passes.
    _check_clean_train(bpm=30.0, phase_s=0.0, ac=150, dc=40000, fs=200)


@pytest.mark.xfail(strict=True, reason="physically ambiguous: a 23-count pulse is flat to one "
                   "ADC count for +-24 ms around its top, so 5-ms beat timing is out of reach")
def test_faint_pulse_timing_to_five_ms():
    # The faintest pulses the device claims (0.05 % of a 44000-count DC: 23 counts): the samples
    # pin the peak down only to the span where the pulse is within one count of its top
    # (+-w*sqrt(2/ac) = +-24 ms here), so two beats can each be a few ms off in opposite
    # directions. Found by the random property below with the plain 5-ms tolerance; the
    # property checks such pulses to half that span (_tol_ms) instead. Strict: if the timing
    # gets that good anyway, this XPASSes and the tolerance should be tightened.
    _check_clean_train(bpm=37.47, phase_s=1.172, ac=int(0.00054 * 43985), dc=43985, fs=200,
                       tol_ms=TOL_MS)


# Random draws over the whole claimed range. Before the start-up fix 20 of 3000 draws failed
# with a 5-ms tolerance: in 17 a detection block already open when the start-up blanking ended
# (its peak blanked) gave the first beat, 15-45 ms off its peak or ~0.9 s before any peak; in
# one the first IBI was 5 ms off; in one a strong pulse stayed clipped at the detection scale
# (one halving per 16 samples) and the second beat went missing; one was a faint pulse's IBI
# (see the xfail above). Four of those draws stay as examples.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bpm=st.floats(30, 200),
    phase_s=st.floats(0, 2),
    perfusion=st.floats(*PERFUSION_LOG10).map(lambda e: 10.0 ** e),
    dc=st.integers(40000, 230000),
    fs=st.integers(50, 400),
)
@example(bpm=64.82, phase_s=1.621, perfusion=0.13769, dc=46330, fs=50)  # first beat 25 ms off
@example(bpm=34.11, phase_s=1.577, perfusion=0.18107, dc=175865, fs=200)  # false first beat
@example(bpm=191.36, phase_s=1.325, perfusion=0.19195, dc=220814, fs=64)  # 2nd beat missed
@example(bpm=31.13, phase_s=1.757, perfusion=0.00298, dc=81981, fs=50)  # false first beat
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
