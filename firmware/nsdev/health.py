# Per-subsystem health: a failing part marks itself degraded/failed, is counted and logged, and
# retries with backoff while the rest of the device keeps running (ESPHome-style).
from nsdev import compat

OK = 0
DEGRADED = 1
FAILED = 2
_NAMES = ("ok", "degraded", "failed")


class Subsystem:
    def __init__(self, name, flag_bit=0):
        self.name = name
        self.flag_bit = flag_bit  # bit in the epoch flags while not OK
        self.state = OK
        self.errors = 0
        self.consecutive = 0
        self.last_error = ""

    def ok(self):
        self.state = OK
        self.consecutive = 0

    def fault(self, exc, fatal_after=3):
        """Count and log an error; FAILED after `fatal_after` in a row. Returns backoff in ms."""
        self.errors += 1
        self.consecutive += 1
        self.state = FAILED if self.consecutive >= fatal_after else DEGRADED
        try:
            self.last_error = "%s: %s" % (type(exc).__name__, exc)
            compat.log("[%s] %s (%s, %d errors)" % (self.name, self.last_error,
                                                   _NAMES[self.state], self.errors))
        except MemoryError:
            # No room to describe it (a full heap is the likeliest fault of all): counted and
            # flagged all the same. Raising from here would end the task that caught the fault.
            self.last_error = "MemoryError"
        # 1 s, 2 s, 4 s ... capped at 60 s
        return min(60000, 1000 << min(6, self.consecutive - 1))

    def status(self):
        return {"state": _NAMES[self.state], "errors": self.errors, "last": self.last_error}


def flags(subsystems):
    f = 0
    for s in subsystems:
        if s.state != OK:
            f |= s.flag_bit
    return f


def describe(exc):
    """One-line text of an exception for the event log."""
    return ("%s: %s" % (type(exc).__name__, exc))[:60]


def print_exc(exc):
    compat.print_exception(exc)


class Uptime:
    """Seconds since boot, right for years. ticks_ms wraps every 2**30 ms on the ESP32 and
    ticks_diff is only right within half of that (2**29 ms, 6.2 days), so elapsed ticks are
    folded into a seconds count at every call; the app calls it at least once a second."""

    def __init__(self, ticks_ms=None):
        self._ticks = ticks_ms or compat.ticks_ms
        self._last = self._ticks()
        self._s = 0  # a small int for 34 years (2**30 s)

    def seconds(self):
        d = compat.ticks_diff(self._ticks(), self._last)
        if d >= 1000:
            whole = d // 1000
            self._s += whole
            self._last = compat.ticks_add(self._last, whole * 1000)
        return self._s
