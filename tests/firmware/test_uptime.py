# Device uptime across tick wraps (ticks_ms wraps every 2**30 ms on the ESP32): the sync status's
# uptime_s must stay right after 6.2 days (half a wrap) and 12.4 days (a wrap). Dual test.
import nsdev  # noqa: F401  (installs the micropython stand-in under CPython)
from nsdev import compat, health

RUN_UNDER_MICROPYTHON = True

_WRAP = 1 << 30  # the ESP32's ticks period


class _Clock:
    def __init__(self, start_ms):
        self.ms = start_ms  # true milliseconds since boot + start offset

    def ticks(self):
        # The interpreter's ticks: they wrap at 2**30 on CPython (compat), the twin and the
        # ESP32; the 64-bit unix port's period is 2**62 (no wrap in 30 days).
        return self.ms % compat.TICKS_PERIOD


def test_uptime_right_after_many_tick_wraps():
    clock = _Clock(_WRAP - 5000)  # ticks start close to a wrap, as the simulator does
    up = health.Uptime(clock.ticks)
    start = clock.ms
    day = 86400 * 1000
    checks = (1000, 6 * day + 5 * 3600 * 1000, 7 * day, 13 * day, 30 * day + 1234)
    for target in checks:
        while clock.ms - start < target:  # the watchdog task calls it every second; 10 min here
            clock.ms += min(600000, start + target - clock.ms)
            up.seconds()
        assert up.seconds() == target // 1000, (target, up.seconds())
