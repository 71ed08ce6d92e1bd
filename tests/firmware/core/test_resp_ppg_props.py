"""Property test (CPython/hypothesis): on synthetic breathing PPG the breathing rate is within
2 /min of the truth or unknown, never wildly wrong, over rates, heart rates and perfusion."""

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
    if rate <= 0.3 * bpm and noise == 0.0 and ac >= 1000.0 and mod >= 1.0:
        assert got[-1] is not None  # a clean, strong rhythm well under Nyquist is found
