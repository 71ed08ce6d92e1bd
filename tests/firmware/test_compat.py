# Device tick arithmetic (wraps at 2**30) and epoch handling, under CPython and MicroPython.
from nsdev import compat

RUN_UNDER_MICROPYTHON = True


def test_ticks_diff_across_wrap():
    period = compat.TICKS_PERIOD
    a = period - 10
    b = compat.ticks_add(a, 25)
    assert b == 15
    assert compat.ticks_diff(b, a) == 25
    assert compat.ticks_diff(a, b) == -25


def test_ticks_add_negative_and_large():
    assert compat.ticks_add(5, -10) == compat.TICKS_PERIOD - 5
    for start in (0, 1, 12345, compat.TICKS_PERIOD - 1):
        for d in (-(1 << 29) + 1, -1, 0, 1, (1 << 29) - 1):
            assert compat.ticks_diff(compat.ticks_add(start, d), start) == d


def test_unix_time_is_plausible():
    # Either a real clock (after 2020) or a board clock that restarted at its epoch.
    t = compat.unix_time()
    assert t >= 946684800
