"""Property test (CPython/hypothesis): on synthetic breathing PPG the breathing rate is within
2 /min of the truth or unknown, never wildly wrong, over rates, heart rates and perfusion."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from resp_synth import breathing_ppg, run_device


@settings(max_examples=25, deadline=None)
@given(rate=st.floats(6.0, 30.0), bpm=st.floats(50.0, 100.0), ac=st.floats(150.0, 3000.0),
       mod=st.floats(0.3, 1.5), noise=st.floats(0.0, 0.3), seed=st.integers(1, 1000))
def test_known_rate_or_unknown(rate, bpm, ac, mod, noise, seed):
    counts = breathing_ppg(rate, bpm=bpm, seconds=95, rsa_bpm=5.0 * mod, amp_mod=0.15 * mod,
                           base_mod=0.5 * mod, ac=ac, noise=noise, seed=seed)
    got = [r for end, r in run_device(counts, 50) if end >= 60000]
    assert got
    for r in got:
        assert r is None or abs(r - rate) <= 2.0, (r, rate)


def _clean(rate, bpm):
    counts = breathing_ppg(rate, bpm=bpm, seconds=95, rsa_bpm=6.25, amp_mod=0.1875,
                           base_mod=0.625, ac=1000.0, noise=0.0, seed=1)
    return [r for end, r in run_device(counts, 50) if end >= 60000]


def test_clean_strong_rhythms_are_found():
    # Coverage on a fixed grid of clean, strong signals well under the beats' Nyquist rate. The
    # random property above once asserted this for every draw with rate <= 0.3 x HR and found
    # the case below; coverage is checked here, the no-wrong-answer rule on every draw above.
    for rate, bpm in ((6.0, 50.0), (10.0, 60.0), (14.0, 60.0), (14.0, 70.0), (18.0, 80.0),
                      (20.0, 100.0)):
        got = _clean(rate, bpm)
        assert got[-1] is not None and abs(got[-1] - rate) <= 2.0, (rate, bpm, got)


@pytest.mark.xfail(strict=True, reason="known (found by hypothesis): 14 /min at 50 bpm, the "
                   "pulse-amplitude series aliases to ~8.2 /min, so the fusion says unknown")
def test_fourteen_per_minute_at_fifty_bpm_is_found():
    assert _clean(14.0, 50.0)[-1] is not None
