"""Property tests (CPython only) for the VEML7700 integer lux path."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from nsdev.drivers import veml7700 as v


@given(st.integers(0, 65535), st.integers(0, 9))
def test_integer_lux_matches_float_and_fits_31_bits(counts: int, shift: int) -> None:
    x = v.linear_mlux(counts, shift)
    assert 0 <= x < 1 << 30
    got = v.corrected_mlux(x)
    assert 0 <= got < 1 << 30
    if x <= v.X_MAX_MLUX:
        want = v.correct_lux(x / 1000) * 1000
        assert abs(got - want) <= 1 + 1e-3 * want


@given(st.integers(0, v.X_MAX_MLUX - 1))
def test_integer_lux_is_monotonic(x: int) -> None:
    assert v.corrected_mlux(x + 1) >= v.corrected_mlux(x)


@given(st.integers(0, 65535), st.integers(0, 9))
def test_pick_step_keeps_counts_in_range(counts: int, shift: int) -> None:
    step = v.pick_step(counts, shift)
    s = v._GAIN_LOG2[v._LADDER_GAIN[step]] + v._LADDER_IT[step]
    predicted = (counts << shift) >> s
    assert predicted <= 20000 or step == 0
    if v._LADDER_GAIN[step] < 2:  # gain x1/x2 only below ~100 lx
        assert (counts << shift) * 0.0036 < 100.0
