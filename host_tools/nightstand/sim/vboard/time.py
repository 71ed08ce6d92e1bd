# Virtual clock of the simulated board: replaces MicroPython's `time`; the only time source in
# simulation. Ticks wrap at 2**30 exactly as on the ESP32, and start close to the wrap.
import gc as _gc  # the real collector (the firmware may get vgc as `gc` under honest time)
import sys

import utime as _real  # the port's real clock: used only to measure the simulator's own cost
from micropython import const
from utime import ticks_diff as _host_diff  # bound once: a global load, not a module lookup
from utime import ticks_us as _host_us

# The clock runs ~3 M times a night through the functions below. This port has no cache for
# global-name lookups, so each name a hot path reads costs a dictionary lookup: constants are
# const() (inlined), the host clock is bound to globals, and one flag (_honest) says whether a
# clock read must settle (docs/simulation.md, "Where the simulator's time goes").
TICKS_MASK = const((1 << 30) - 1)
_MASK = const((1 << 30) - 1)
_HALF = const(1 << 29)
_EPOCH_2000_UNIX_S = const(946684800)  # the ESP32 port counts time.time() from 2000-01-01


class SimEnd(BaseException):
    """The scenario is over. A BaseException, so firmware `except Exception` lets it pass."""


now_us = 0  # virtual microseconds since the simulation started
end_us = -1  # reaching it raises SimEnd (negative: never)
ticks0_ms = 0  # ticks_ms() at the start
unix0_s = 0  # UTC Unix seconds at the start of the simulation (RTC may be set later)
rtc_valid = True  # False simulates a board whose RTC was lost (no host has set the clock)
progress_every_us = 60 * 1000000
_next_progress_us = 0
_listeners = []  # callables(now_us) run whenever time advances (virtual chips that need it)
# A listener may return the virtual time before which it has nothing to do (the watchdog's
# deadline, the button's next edge); None: call it at every advance. Listeners run only once
# the earliest of those times is reached (~1 M advances a night: docs/simulation.md).
NEVER = 1 << 60  # a listener's "nothing to do, ever" (a long int on the twin: made once)
_listen_at = 0
# ticks_ms()/ticks_us() kept as small ints, advanced with now_us: on the twin (31-bit small ints)
# computing them from now_us (a long int after 18 min) would allocate on every call, which the
# ESP32's C ticks never do (docs/simulation.md).
_tick_ms = 0
_tick_us = 0
_sub_ms_us = 0  # microseconds of now_us past the last whole millisecond


def _wrap_add(t, d):
    # (t + d) & _MASK for 0 <= t, d <= _MASK without forming t + d (it may pass 2**30 - 1).
    return d - (_MASK - t) - 1 if d > _MASK - t else t + d

# Honest time (docs/simulation.md): the firmware's own computation costs virtual time. Host CPU
# time spent running firmware code is measured on the host's clock between two reads of the
# virtual clock and charged x speed_factor (ESP32 us per host us). Time the simulator spends on
# itself (virtual chips, listeners, bookkeeping) is excluded. 0 = off (computation is free).
# A step longer than _CHECK_US of wall time is checked against the thread's scheduler statistics
# (/proc/thread-self/schedstat), so host time that was not the firmware's is not charged:
# - field 2, the run-queue delay (runnable but waiting for a CPU, updated at each switch-in):
#   time the host spent running other processes;
# - field 1, the thread's CPU time: it is brought up to date only at scheduler ticks and
#   switches, so it bounds a step from above: CPU <= its increase + one tick. Wall time beyond
#   that bound is time the thread was blocked (a page fault or write waiting on a loaded disk,
#   seen under a parallel test run as single steps of 10-30 ms wall with 1-2 ms of CPU: x 1000,
#   a watchdog reset the firmware did not cause).
speed_factor = 0
_factor_milli = 0  # speed_factor * 1000 as an int (no float allocation on this path)
cpu_charged_us = 0  # virtual us charged for firmware computation so far
cpu_host_us = 0  # host us those charges came from
cpu_max_step_us = 0  # the largest single charge (virtual us)
host_off_cpu_us = 0  # host us not charged because the thread was not running
_mark = _real.ticks_us()  # host ticks_us at the last settlement
_skip_us = 0  # host us since _mark spent in the simulator itself (not charged)
_inside = 0  # > 0 while the simulator advances the clock (its own clock reads are free)
_honest = False  # speed_factor and not _inside: a clock read charges the firmware's computation
_CHECK_US = const(500)
_sched = None  # /proc/thread-self/schedstat, kept open (None: not available)
_sched_buf = bytearray(64)
_delay_ref_us = 0  # run-queue delay at _delay_ref_wall
_delay_ref_wall = 0
_exec_ref_us = 0  # the thread's CPU time (field 1) at _delay_ref_wall
_exec_us = 0  # the last read of field 1, us
_tick_bound_us = 10000  # how stale field 1 may be: one scheduler tick (measured, <= 10 ms)


MAX_SPEED_FACTOR = 100000  # settle()'s fast path keeps ticks small ints up to this


def set_speed_factor(f):
    global speed_factor, _factor_milli, _sched, _honest
    if not 0 <= f <= MAX_SPEED_FACTOR:
        raise ValueError("honest_time.speed_factor must be from 0 to %d" % MAX_SPEED_FACTOR)
    speed_factor = f
    _honest = bool(f) and not _inside
    _factor_milli = int(f * 1000 + 0.5)
    if f and _sched is None:
        try:
            _sched = open("/proc/thread-self/schedstat", "rb")
        except OSError:
            _sched = None
        if _sched is not None:
            _measure_tick()
    remark()


def _run_delay_us():
    # -> field 2 of schedstat (ns waiting on a run queue) in us; field 1 (ns on a CPU) goes to
    # _exec_us. Parsed without allocating.
    global _exec_us
    buf = _sched_buf
    _sched.seek(0)
    n = _sched.readinto(buf)
    v = 0
    e = 0
    field = 0
    for i in range(n):
        c = buf[i]
        if c < 48 or c > 57:
            field += 1
            if field > 1:
                break
        elif field == 1:
            v = v * 10 + c - 48
        else:
            e = e * 10 + c - 48
    _exec_us = e // 1000
    return v // 1000


def _measure_tick():
    # Field 1 advances in steps of at most one scheduler tick while this thread spins: the
    # largest of three steps (switches make smaller ones), within 1-10 ms (HZ 1000..100).
    global _tick_bound_us
    _run_delay_us()
    last = _exec_us
    t0 = _real.ticks_us()
    big = 0
    seen = 0
    while seen < 3 and _real.ticks_diff(_real.ticks_us(), t0) < 100000:
        _run_delay_us()
        if _exec_us != last:
            if last and _exec_us - last > big:
                big = _exec_us - last
            last = _exec_us
            seen += 1
    _tick_bound_us = min(10000, max(1000, big)) if seen == 3 else 10000


def _charge(now):
    # -> virtual us for the firmware's computation since _mark (now = host ticks_us)
    global cpu_charged_us, cpu_host_us, cpu_max_step_us, host_off_cpu_us
    d = _host_diff(now, _mark) - _skip_us
    if d <= 0:
        return 0
    if d > _CHECK_US and _sched is not None:
        # Waits for a CPU since the reference point, less the part that may precede _mark (the
        # reference is at most ~_CHECK_US older): conservative, charges rather more than less.
        off = _run_delay_us() - _delay_ref_us - _host_diff(_mark, _delay_ref_wall)
        blocked = d - (_exec_us - _exec_ref_us + _tick_bound_us)
        if blocked > off:
            off = blocked
        if off > 0:
            off = off if off < d else d
            host_off_cpu_us += off
            d -= off
    v = d * _factor_milli // 1000
    cpu_charged_us += v
    cpu_host_us += d
    if v > cpu_max_step_us:
        cpu_max_step_us = v
    return v


rtc_lost_at_us = 0  # when the RTC last restarted from 2000-01-01 (power lost, no battery)


def setup(unix_start_s, duration_s, ticks_start_ms=0, rtc_ok=True, boot_clock_s=0):
    """boot_clock_s: with rtc_ok False, what the unset RTC reads at the start (s since 2000)."""
    global now_us, end_us, ticks0_ms, unix0_s, rtc_valid, _next_progress_us, rtc_lost_at_us
    global _tick_ms, _tick_us, _sub_ms_us
    rtc_lost_at_us = -int(boot_clock_s) * 1000000
    now_us = 0
    end_us = int(duration_s * 1000000) if duration_s > 0 else -1
    ticks0_ms = ticks_start_ms & _MASK
    _tick_ms = ticks0_ms
    _tick_us = (ticks0_ms * 1000) & _MASK
    _sub_ms_us = 0
    unix0_s = unix_start_s
    rtc_valid = rtc_ok
    _next_progress_us = 0


heap_live_peak = 0  # most heap in use right after a collection, sampled once per progress step
heap_reserved = 0  # bytes of simulator ballast currently on the heap (not the firmware's)


gc_pause_max_us = 0  # longest of those collections, host microseconds (docs/simulation.md)


def _sample_heap():
    global heap_live_peak, gc_pause_max_us
    t0 = _host_us()
    _gc.collect()
    pause = _host_diff(_host_us(), t0)
    if pause > gc_pause_max_us:
        gc_pause_max_us = pause
    used = _gc.mem_alloc() - heap_reserved
    if used > heap_live_peak:
        heap_live_peak = used


def add_listener(func):
    _listeners.append(func)
    listen_now()


def listen_now():
    """Run the listeners at the next advance (a listener was added or removed, or one has new
    business earlier than it last said, e.g. a button pressed by a test)."""
    global _listen_at
    _listen_at = 0


def remark():
    """Start measuring firmware CPU from now (after simulator work, a reboot, a long wait)."""
    global _mark, _skip_us, _delay_ref_us, _delay_ref_wall, _exec_ref_us
    _mark = _host_us()
    _skip_us = 0
    if _sched is not None and _host_diff(_mark, _delay_ref_wall) > _CHECK_US:
        _delay_ref_us = _run_delay_us()
        _exec_ref_us = _exec_us
        _delay_ref_wall = _host_us()


def skip(host_us):
    """host_us of host time since the last settlement was the simulator's, not the firmware's."""
    global _skip_us
    _skip_us += host_us


def settle():
    """Charge the firmware's computation since the last settlement to the virtual clock.
    Only the clock moves: listeners (watchdog, button, scheduled resets), progress and the
    scenario's end act at the next advance (a sleep, an I2C transfer, an idle wait), as for a
    flash stall. A clock read, the firmware's most frequent call, stays cheap that way."""
    global now_us, cpu_charged_us, cpu_host_us, cpu_max_step_us, _tick_ms, _tick_us, _sub_ms_us
    global _mark, _skip_us
    if not _honest:
        return  # off, or the simulator itself is reading the clock (a listener, a chip)
    t = _host_us()
    d = _host_diff(t, _mark) - _skip_us
    if d > _CHECK_US:  # a long step: checked against the run queue (_charge), rare
        v = _charge(t)
        if v > 0:
            now_us += v
            _advance_ticks(v)
        remark()
        return
    if d > 0:  # _charge and _advance_ticks inline: v <= _CHECK_US * speed factor < 2**29
        v = d * _factor_milli // 1000
        cpu_charged_us += v
        cpu_host_us += d
        if v > cpu_max_step_us:
            cpu_max_step_us = v
        now_us += v
        room = _MASK - _tick_us
        _tick_us = v - room - 1 if v > room else _tick_us + v
        r = _sub_ms_us + v
        ms = r // 1000
        _sub_ms_us = r - ms * 1000
        room = _MASK - _tick_ms
        _tick_ms = ms - room - 1 if ms > room else _tick_ms + ms
    _mark = _host_us()
    _skip_us = 0
    if _sched is not None and _host_diff(_mark, _delay_ref_wall) > _CHECK_US:
        remark()


def stall_us(delta_us):
    """The interpreter is blocked for delta_us (a flash program or erase): the clock moves, but
    listeners (watchdog, button, scheduled resets) and the scenario's end act at the next
    advance, never inside the filesystem's callback (an exception there would unwind littlefs)."""
    global now_us
    if speed_factor and not _inside:
        v = _charge(_host_us())
        now_us += v
        _advance_ticks(v)
    if delta_us > 0:
        now_us += delta_us
        _advance_ticks(delta_us)
    if speed_factor:
        remark()


def advance_us(delta_us):
    """Move virtual time forward; the simulation ends when it reaches the scenario's end."""
    global _inside, _honest
    if speed_factor:
        if not _inside:  # the firmware's computation since the last settlement comes first
            delta_us += _charge(_host_us())
        _inside += 1  # the simulator's own work (listeners, chips) is not firmware CPU
        _honest = False
        try:
            _advance(delta_us)
        finally:
            _inside -= 1
            _honest = not _inside
            remark()
    else:
        _advance(delta_us)


def _advance(delta_us):
    global now_us, _tick_ms, _tick_us, _sub_ms_us
    if delta_us <= 0:
        return
    now_us += delta_us
    if 0 <= end_us <= now_us:
        _end(delta_us)
    if delta_us < _HALF:  # _advance_ticks inline (every wait and transfer passes here)
        room = _MASK - _tick_us
        _tick_us = delta_us - room - 1 if delta_us > room else _tick_us + delta_us
        r = _sub_ms_us + delta_us
        ms = r // 1000
        _sub_ms_us = r - ms * 1000
        room = _MASK - _tick_ms
        _tick_ms = ms - room - 1 if ms > room else _tick_ms + ms
    else:
        _advance_ticks(delta_us)
    if now_us >= _next_progress_us:
        _progress()
    if _listeners and now_us >= _listen_at:
        _notify(now_us)


# _advance runs at every wait and transfer (~1 M times a night): its rare parts are functions of
# their own, so its frame stays within the 11 words MicroPython keeps on the C stack (a larger
# one is allocated on the heap and freed at every call: docs/simulation.md).
def _progress():
    global _next_progress_us
    _next_progress_us = now_us + progress_every_us
    sys.stderr.write("@progress %d\n" % (now_us // 1000000))
    _sample_heap()


def _notify(now):
    global _listen_at
    nxt = NEVER
    for f in _listeners:
        t = f(now)
        if t is None:
            nxt = 0
        elif t < nxt:
            nxt = t
    _listen_at = nxt


def _end(delta_us):
    global now_us
    back = now_us - end_us  # more than delta_us if a settlement or stall passed the end
    now_us = end_us
    if back < delta_us:
        _advance_ticks(delta_us - back)
    raise SimEnd()


def _advance_ticks(delta_us):
    global _tick_ms, _tick_us, _sub_ms_us
    if delta_us < _HALF:
        _tick_us = _wrap_add(_tick_us, delta_us)
        r = _sub_ms_us + delta_us
        ms = r // 1000
        _sub_ms_us = r - ms * 1000
        _tick_ms = _wrap_add(_tick_ms, ms)
    else:  # a long jump (rare): recompute from now_us, exactly
        _tick_ms = (ticks0_ms + now_us // 1000) & _MASK
        _tick_us = (ticks0_ms * 1000 + now_us) & _MASK
        _sub_ms_us = now_us % 1000


def ticks_ms():
    if _honest:
        # The firmware's most frequent call (~3 M a night). A settlement that would not reach
        # the next millisecond is left pending (charged at the next one, nothing is lost):
        # the value returned is the one a settlement would give.
        d = _host_diff(_host_us(), _mark) - _skip_us
        if d > _CHECK_US or _sub_ms_us + d * _factor_milli // 1000 >= 1000:
            settle()
    return _tick_ms  # == (ticks0_ms + now_us // 1000) & _MASK


def ticks_us():
    if _honest:
        settle()
    return _tick_us  # == (ticks0_ms * 1000 + now_us) & _MASK


def ticks_cpu():
    return ticks_us()


def ticks_diff(a, b):
    return ((a - b + _HALF) & _MASK) - _HALF


def ticks_add(t, delta):
    return (t + delta) & _MASK


def sleep_ms(ms):
    advance_us(int(ms) * 1000)


def sleep_us(us):
    advance_us(int(us))


def sleep(s):
    advance_us(int(s * 1000000))


def unix_now_s():
    return unix0_s + now_us // 1000000


def set_unix_now_s(unix_s):
    """machine.RTC().datetime(...) lands here: re-anchor the wall clock, keep ticks running."""
    global unix0_s, rtc_valid
    unix0_s = unix_s - now_us // 1000000
    rtc_valid = True


def lose_rtc():
    """Power lost on a board without a battery-backed RTC: the clock restarts at 2000-01-01."""
    global rtc_valid, rtc_lost_at_us
    rtc_valid = False
    rtc_lost_at_us = now_us


def time():
    if _honest:
        settle()
    if not rtc_valid:  # counts from 2000-01-01 since the RTC restarted, as a real ESP32 does
        return (now_us - rtc_lost_at_us) // 1000000
    return unix0_s + now_us // 1000000 - _EPOCH_2000_UNIX_S


def time_ns():
    if _honest:
        settle()
    if not rtc_valid:
        return (now_us - rtc_lost_at_us) * 1000
    return (unix0_s - _EPOCH_2000_UNIX_S) * 1000000000 + now_us * 1000


def _days_to_civil(days):
    # Proleptic Gregorian calendar from days since 1970-01-01 (H. Hinnant's civil_from_days).
    days += 719468
    era = (days if days >= 0 else days - 146096) // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def _civil_to_days(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def gmtime(secs=None):
    if secs is None:
        secs = time()
    unix_s = int(secs) + _EPOCH_2000_UNIX_S
    days, rem = divmod(unix_s, 86400)
    y, m, d = _days_to_civil(days)
    yday = days - _civil_to_days(y, 1, 1) + 1
    return (y, m, d, rem // 3600, (rem // 60) % 60, rem % 60, (days + 3) % 7, yday)


localtime = gmtime  # the ESP32 port keeps UTC in the RTC; local time is the firmware's job


def mktime(tt):
    days = _civil_to_days(tt[0], tt[1], tt[2])
    return days * 86400 + tt[3] * 3600 + tt[4] * 60 + tt[5] - _EPOCH_2000_UNIX_S


def real_ticks_us():
    """Host wall clock in microseconds: for the simulator's own cost accounting only."""
    return _host_us()


def real_ticks_diff(a, b):
    return _host_diff(a, b)
