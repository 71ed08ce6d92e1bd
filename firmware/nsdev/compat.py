# The one place that shims what differs between CPython (tests, host tools) and MicroPython.
import sys
import time

from micropython import const  # nsdev/__init__ provides a stand-in under CPython

IS_MICROPYTHON = sys.implementation.name == "micropython"

# Device ticks wrap at 2**30 (ESP32). Under CPython we emulate that period so wraparound bugs
# show up in host-side tests too; under MicroPython we use the port's own (the simulator's
# virtual clock wraps at 2**30 as well; the plain unix port at 2**62).
_TICKS_MAX = const((1 << 30) - 1)
_TICKS_HALF = const(1 << 29)

if hasattr(time, "ticks_ms"):
    ticks_ms = time.ticks_ms
    ticks_us = time.ticks_us
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
    sleep_ms = time.sleep_ms
else:
    _T0 = time.monotonic_ns()

    def ticks_ms():
        return ((time.monotonic_ns() - _T0) // 1000000) & _TICKS_MAX

    def ticks_us():
        return ((time.monotonic_ns() - _T0) // 1000) & _TICKS_MAX

    def ticks_diff(a, b):
        return ((a - b + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF

    def ticks_add(t, delta):
        return (t + delta) & _TICKS_MAX

    def sleep_ms(ms):
        time.sleep(ms / 1000)


TICKS_PERIOD = ticks_add(0, -1) + 1


# Seconds between the port's epoch and the Unix epoch (ESP32: 2000-01-01; unix/CPython: 1970).
EPOCH_OFFSET_S = 946684800 if time.gmtime(0)[0] == 2000 else 0


def unix_time():
    """Seconds since 1970-01-01 UTC from the device clock (int)."""
    return int(time.time()) + EPOCH_OFFSET_S


def unix_time_ms():
    """Milliseconds since 1970-01-01 UTC from the device clock (int)."""
    if hasattr(time, "time_ns"):
        return time.time_ns() // 1000000 + EPOCH_OFFSET_S * 1000
    return int(time.time()) * 1000 + EPOCH_OFFSET_S * 1000


# While the sync protocol owns the USB console, log lines must not reach it: they are kept in a
# small ring instead (the host can read them in the status reply).
console_quiet = False
log_ring = []
_LOG_RING = const(16)


def log(msg):
    """One line for the console (or the ring while the console carries the sync protocol)."""
    if console_quiet:
        if len(log_ring) >= _LOG_RING:
            log_ring.pop(0)
        log_ring.append(msg)
    else:
        print(msg)


def print_exception(exc, file=None):
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc, file or sys.stdout)
    else:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=file or sys.stdout)


def write_atomic(path, data):
    """Write a whole file so that a power cut leaves the old or the new one, never a torn one:
    write path.tmp, then rename it over path (atomic on littlefs and POSIX)."""
    import os

    tmp = path + ".tmp"
    with open(tmp, "wb" if isinstance(data, (bytes, bytearray, memoryview)) else "w") as f:
        f.write(data)
    os.rename(tmp, path)


def collect():
    """Run the garbage collector at a known point (cheap no-op cost under CPython)."""
    import gc

    gc.collect()


def heap_free():
    """Free heap bytes, or -1 where the interpreter cannot tell."""
    import gc

    return gc.mem_free() if hasattr(gc, "mem_free") else -1


def run_steps(steps):
    """Run a generator of steps (work split where other tasks may run between pieces: flash
    erases, the breathing estimate) to its end at once. -> its return value."""
    try:
        while True:
            next(steps)
    except StopIteration as e:
        return e.value
