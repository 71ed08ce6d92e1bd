# Virtual garbage-collector timing for honest time (docs/simulation.md). The unix port's heap
# holds the firmware's loaded code as well as its data, so a host collection marks far more than
# the ESP32's (code frozen in flash, 56-64 KB of data): host GC time x the speed factor would
# overstate the pause several-fold. Collections are therefore charged at the ESP32's pause:
# explicit gc.collect() through this module (installed as `gc` for the firmware), and the
# automatic ones are taken out of firmware steps: while the board idles, the simulator collects
# when the heap runs low (so the heap never fills inside a firmware step) and charges the pause.
import gc as _gc
import sys
import time

try:  # bytes allocated and not explicitly freed so far (a counter: cheap; the collector's frees
    # are not subtracted), where the port keeps memory statistics
    from micropython import mem_current as _mem_net
except ImportError:
    _mem_net = None

# ESP32 (no SPIRAM) full collection of the MicroPython heap: about 1.8 ms (project brief,
# "Hardware facts").
ESP32_GC_PAUSE_US = 1800
_CHECK_EVERY_US = 2000000  # how often the idle hook looks at the heap (a table walk, ~0.1 ms)
_LOW_FRACTION = 0.3  # collect when the free heap falls below this part of what boot left

collections = 0  # explicit, by the firmware
idle_collections = 0  # by the simulator while the board idled (the ESP32's automatic ones)
host_gc_us = 0  # typical host collection (running mean), for the record
_next_check_us = 0
_low_bytes = 0
# gc.mem_free() walks the whole allocation table (~60 us on the unix port's ~0.7 MB heap): it is
# only asked again once enough has been allocated since the last answer for the free heap to
# have reached the threshold (function frames, freed as soon as the call returns, do not count).
# An allocation of n bytes takes at most 2n of heap (the smallest objects, a boxed float, ask 16
# bytes of a 32-byte block; 8 of 16 on the twin).
_next_net = 0


def _host_collect():
    global host_gc_us
    t0 = time.real_ticks_us()
    _gc.collect()
    d = time.real_ticks_diff(time.real_ticks_us(), t0)
    time.skip(d)
    host_gc_us = d if not host_gc_us else (7 * host_gc_us + d) // 8


def collect():
    global collections
    time.settle()  # the firmware's computation before the call
    _host_collect()
    collections += 1
    time.advance_us(ESP32_GC_PAUSE_US)


def idle():
    """Called by the idle wait (select.ipoll) before the clock jumps: no firmware step runs."""
    global _next_check_us, idle_collections, _low_bytes, _next_net
    if time.now_us < _next_check_us:
        return
    _next_check_us = time.now_us + _CHECK_EVERY_US
    if _low_bytes and _mem_net is not None and _mem_net() < _next_net:
        return  # not enough allocated since the last look for the heap to be low
    t0 = time.real_ticks_us()
    if _low_bytes == 0:  # first idle wait: the firmware is loaded and running
        _gc.collect()
        _low_bytes = int(_gc.mem_free() * _LOW_FRACTION) + 1
    free = _gc.mem_free()
    time.skip(time.real_ticks_diff(time.real_ticks_us(), t0))
    if free < _low_bytes:
        _host_collect()
        idle_collections += 1
        time.stall_us(ESP32_GC_PAUSE_US)
        t0 = time.real_ticks_us()
        free = _gc.mem_free()
        time.skip(time.real_ticks_diff(time.real_ticks_us(), t0))
    if _mem_net is not None:
        _next_net = _mem_net() + (free - _low_bytes) // 2


def mem_free():
    return _gc.mem_free()


def mem_alloc():
    return _gc.mem_alloc()


def enable():
    _gc.enable()


def disable():
    _gc.disable()


def isenabled():
    return _gc.isenabled()


def threshold(*args):
    return _gc.threshold(*args)


def install():
    """The firmware's `import gc` gets this module (checked in sys.modules before built-ins)."""
    sys.modules["gc"] = sys.modules[__name__]
