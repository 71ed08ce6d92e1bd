"""The arousal estimator's median sorts a preallocated window in place: the same value as the
previous definition over a fresh sorted() list, for any window the estimator fills (int, <= 30)."""

import array

from hypothesis import given
from hypothesis import strategies as st
from nsdev.core import arousal


def _old_median(vals):
    s = sorted(vals)
    n = len(s)
    if n == 0:
        return 0
    if n & 1:
        return s[n // 2]
    return (s[n // 2 - 1] + s[n // 2]) / 2


@given(st.lists(st.integers(0, 2**31 - 1), max_size=30), st.integers(0, 10))
def test_median_in_place_equals_sorted_copy(values, spare):
    n = len(values)
    buf = array.array("i", values + [7] * spare)  # scratch longer than the window
    assert arousal._median(buf, n) == _old_median(values)
    assert list(buf[:n]) == sorted(values)  # the swing test reads the sorted baseline
