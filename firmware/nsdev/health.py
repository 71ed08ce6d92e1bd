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
        self.last_error = "%s: %s" % (type(exc).__name__, exc)
        self.state = FAILED if self.consecutive >= fatal_after else DEGRADED
        compat.log("[%s] %s (%s, %d errors)" % (self.name, self.last_error, _NAMES[self.state],
                                               self.errors))
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
