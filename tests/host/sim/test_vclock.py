"""The virtual board's clock: asyncio on virtual time, 2**30 tick wrap, watchdog, scenario end."""

from conftest import check


def test_asyncio_runs_on_virtual_time_across_the_tick_wrap(mp_board):
    # The clock starts 5 s before ticks wrap at 2**30; 20 s of sleeps must take 20 virtual s
    # (and no real time), tasks wake in deadline order, and ticks_diff stays right across the wrap.
    out = check(
        mp_board(
            "import asyncio\n"
            "log = []\n"
            "async def worker(name, period_ms, n):\n"
            "    for i in range(n):\n"
            "        await asyncio.sleep_ms(period_ms)\n"
            "        log.append((time.now_us // 1000, name))\n"
            "async def main():\n"
            "    t0 = time.ticks_ms()\n"
            "    await asyncio.gather(worker('a', 1000, 20), worker('b', 3000, 6))\n"
            "    print('elapsed', time.ticks_diff(time.ticks_ms(), t0))\n"
            "    print('wrapped', time.ticks_ms() < t0)\n"
            "asyncio.run(main())\n"
            "times = [t for t, _ in log]\n"
            "print('ordered', times == sorted(times))\n"
            "print('b_at', [t for t, n in log if n == 'b'])\n"
        )
    )
    assert "elapsed 20000" in out
    assert "wrapped True" in out
    assert "ordered True" in out
    assert "b_at [3000, 6000, 9000, 12000, 15000, 18000]" in out


def test_watchdog_resets_a_board_that_stops_feeding(mp_board):
    out = check(
        mp_board(
            "import machine, world\n"
            "wdt = machine.WDT(timeout=2000)\n"
            "try:\n"
            "    for i in range(10):\n"
            "        time.sleep_ms(500)\n"
            "        if i < 4:\n"
            "            wdt.feed()\n"
            "    print('no reset')\n"
            "except world.SimReset as r:\n"
            "    print('reset', r.cause, time.now_us // 1000)\n"
        )
    )
    # Last feed at 2000 ms, timeout 2000 ms: the first check after 4000 ms (4500) resets.
    assert "reset 3 4500" in out


def test_scenario_end_is_not_an_exception_firmware_can_swallow(mp_board):
    out = check(
        mp_board(
            "time.end_us = 3000000\n"
            "try:\n"
            "    try:\n"
            "        while True:\n"
            "            time.sleep_ms(100)\n"
            "    except Exception:\n"
            "        print('swallowed')\n"
            "except time.SimEnd:\n"
            "    print('ended at', time.now_us)\n"
        )
    )
    assert "ended at 3000000" in out and "swallowed" not in out


def test_calendar_round_trip(mp_board):
    # gmtime/mktime of the virtual RTC over 400 years of dates (2000 epoch as on the ESP32).
    out = check(
        mp_board(
            "bad = 0\n"
            "for s in range(-100 * 86400 * 365, 300 * 86400 * 365, 86400 * 37 + 3671):\n"
            "    if time.mktime(time.gmtime(s)) != s:\n"
            "        bad += 1\n"
            "print('bad', bad, time.gmtime(0)[:6], time.gmtime(9 * 3600 + 366 * 86400)[:6])\n"
        )
    )
    assert "bad 0 (2000, 1, 1, 0, 0, 0) (2001, 1, 1, 9, 0, 0)" in out


def test_ticks_exact_and_allocation_free_on_both_vms(mp_board, vm):
    # ticks_ms/us are kept as small ints next to now_us: equal to the formula from now_us after
    # random steps (some longer than half a wrap), and allocating nothing on the twin either,
    # where now_us is a long int after 18 min (the ESP32's C ticks never allocate).
    out = check(mp_board(
        "import random, gc, micropython\n"
        "time._next_progress_us = 1 << 60\n"
        "random.seed(3)\n"
        "bad = 0\n"
        "for i in range(5000):\n"
        "    big = (1 << 29) + random.getrandbits(28)\n"
        "    time.advance_us(random.getrandbits(20) if i % 97 else big)\n"
        "    if time.ticks_ms() != (time.ticks0_ms + time.now_us // 1000) & time.TICKS_MASK:\n"
        "        bad += 1\n"
        "    if time.ticks_us() != (time.ticks0_ms * 1000 + time.now_us) & time.TICKS_MASK:\n"
        "        bad += 1\n"
        "print('bad', bad, time.now_us > 1 << 31)\n"
        "gc.collect()\n"
        "micropython.heap_lock()\n"
        "try:\n"
        "    for i in range(100):\n"
        "        t = time.ticks_diff(time.ticks_ms(), time.ticks_us())\n"
        "finally:\n"
        "    micropython.heap_unlock()\n"
        "print('locked ok')\n", vm=vm))
    assert "bad 0 True" in out
    assert "locked ok" in out


def test_a_blocked_step_is_not_charged_as_computation(mp_board):
    # Honest time charges host CPU x speed factor. A step that spends its wall time blocked (a
    # write or page fault waiting on a loaded disk; here a 60-ms sleep of the port's real clock,
    # the stimulus, not a wait for the test) used ~0 CPU: it costs at most two scheduler ticks of
    # CPU (schedstat's CPU time is up to a tick stale at each end), not 60 ms x factor.
    # Before: 60 s at factor 1000, a watchdog reset the firmware never caused.
    out = check(mp_board(
        "time.set_speed_factor(1000)\n"
        "t0 = time.now_us\n"
        "real = time._real\n"
        "real.sleep_ms(60)\n"
        "time.settle()\n"
        "print('charged_ms', (time.now_us - t0) // 1000,\n"
        "      'tick_us', getattr(time, '_tick_bound_us', 10000),\n"
        "      'sched', time._sched is not None)\n"))
    fields = out.split()
    charged_ms, tick_us = int(fields[1]), int(fields[3])
    assert fields[5] == "True"  # the host has /proc/thread-self/schedstat (Linux)
    assert 1000 <= tick_us <= 10000
    assert charged_ms <= 2 * tick_us + 2000  # us of CPU x 1000 = ms: two ticks + 2 ms of CPU


def test_listeners_run_from_the_time_they_name(mp_board):
    # A listener returns the virtual time before which it has nothing to do (the watchdog its
    # deadline, the button its next edge): the clock skips it until then, never later, and
    # listen_now() brings it back at once. The watchdog still resets on time after feeds.
    out = check(mp_board(
        "import machine, world\n"
        "calls = []\n"
        "def lazy(now):\n"
        "    calls.append(now)\n"
        "    return (now // 10000 + 1) * 10000\n"
        "time.add_listener(lazy)\n"
        "for i in range(100):\n"
        "    time.advance_us(1000)\n"
        "print('calls', len(calls), all(c % 10000 == 0 for c in calls[1:]))\n"
        "time.listen_now()\n"
        "time.advance_us(1)\n"
        "print('now', calls[-1] == time.now_us)\n"
        "wdt = machine.WDT(timeout=1000)\n"
        "t0 = time.now_us\n"
        "try:\n"
        "    for i in range(3000):\n"
        "        if i < 1500 and i % 500 == 0:\n"
        "            wdt.feed()\n"
        "        time.advance_us(1000)\n"
        "except world.SimReset as r:\n"
        "    print('reset after_ms', (time.now_us - t0) // 1000)\n"))
    assert "calls 11 True" in out  # at 1 ms (added), then at 10, 20, ..., 100 ms
    assert "now True" in out
    assert "reset after_ms 2001" in out  # last feed at 1000 ms, timeout 1000 ms: due at 2001
