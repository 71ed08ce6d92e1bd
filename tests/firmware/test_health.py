# Subsystem health under the fault it meets most on a full heap: describing a MemoryError must
# not raise one (a twin night at 56 KiB once ended the sampling task from inside fault()).
# Dual test: on MicroPython the heap is locked, so any allocation in fault() raises.
import nsdev  # noqa: F401  (installs the micropython stand-in under CPython)
from nsdev import health

RUN_UNDER_MICROPYTHON = True

try:
    import micropython

    _lock = micropython.heap_lock
    _unlock = micropython.heap_unlock
except (ImportError, AttributeError):  # CPython: nothing to lock, the logic is still checked
    _lock = _unlock = None


def test_a_fault_on_a_full_heap_is_counted_not_raised():
    sub = health.Subsystem("storage", flag_bit=4)
    err = MemoryError("memory allocation failed, allocating 116 bytes")
    backoffs = []
    if _lock:
        _lock()
    try:
        for _ in range(3):
            backoffs.append(sub.fault(err))
    finally:
        if _unlock:
            _unlock()
    assert sub.errors == 3
    assert sub.state == health.FAILED
    assert health.flags([sub]) == 4
    assert backoffs == [1000, 2000, 4000]
    assert sub.last_error.startswith("MemoryError")


def test_a_fault_with_room_keeps_its_text():
    sub = health.Subsystem("env")
    e = OSError(19)
    sub.fault(e)
    assert sub.state == health.DEGRADED
    assert sub.last_error == "OSError: " + str(e)
    sub.ok()
    assert sub.state == health.OK and sub.consecutive == 0 and sub.errors == 1
