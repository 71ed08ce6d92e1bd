"""The epoch median sorts into a preallocated scratch in place: same value as the old
`sorted(...)[m // 2]` for any IBIs the epoch can hold (int16, up to 128)."""

import array

from hypothesis import given
from hypothesis import strategies as st
from nsdev.core import ppgepoch


@given(st.lists(st.integers(-32768, 32767), max_size=128), st.data())
def test_median_equals_sorted_upper_median(values, data):
    m = len(values)
    src = array.array("h", values + [0] * (128 - m))
    stale = data.draw(st.lists(st.integers(-32768, 32767), min_size=128, max_size=128))
    nn = array.array("h", stale)  # the scratch holds the previous epoch's values
    expected = sorted(values)[m // 2] if m else 0
    assert ppgepoch._median(src, m, nn) == expected
    assert list(nn[:m]) == sorted(values)
    assert list(src[:m]) == values  # the epoch's IBIs are not touched
