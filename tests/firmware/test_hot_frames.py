# Hot-path methods keep their bytecode frames off the heap: MicroPython 1.28 (no pystack, as
# ports/esp32) allocates a function's state on the heap at every call when it exceeds
# VM_MAX_STATE_ON_STACK, 11 words (py/objfun.c, fun_bc_call), and frees it on return; under
# heap_lock() it falls back to the C stack, so the heap-lock tests cannot see it. Measured here
# as the bytes allocated and freed again during the calls (micropython.mem_total() minus
# mem_current(): a frame is freed at return, the boxed floats and events a call returns stay).
# docs/twin-and-image.md, "Frames on the stack". CPython and MicroPython (the measurement is
# MicroPython's; under CPython the scenarios still run).
import array

import nsdev  # noqa: F401
from nsdev.core.arousal import ArousalEstimator, ArousalEvent
from nsdev.core.light import MIN_VALID_UNIX_S, LightController
from nsdev.drivers.max30102 import MAX30102

RUN_UNDER_MICROPYTHON = True

try:
    from micropython import mem_current, mem_total
except (ImportError, AttributeError):  # CPython (nsdev's shim) or a build without MEM_STATS
    mem_current = mem_total = None

_DAY0 = 1767225600  # 2026-01-01T00:00Z


def transient_bytes(call, n):
    """Bytes allocated and freed again within n calls of call() (0: every frame on the stack)."""
    if mem_total is None:
        for _ in range(n):
            call()
        return 0
    t0 = mem_total()
    c0 = mem_current()
    for _ in range(n):
        call()
    return (mem_total() - t0) - (mem_current() - c0)


def _twelve_words(a, b, c, d, e, f, g, h, i, j, k, m):
    return a + b + c + d + e + f + g + h + i + j + k + m


def test_the_measurement_sees_a_frame_of_twelve_words():
    # The control: 12 arguments are 12 words of state (plus its stack), so each call allocates.
    n = transient_bytes(lambda: _twelve_words(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 10)
    if mem_total is not None:
        assert n >= 10 * 12 * 4, n


class _Bus:
    # A MAX30102 whose FIFO always holds 8 samples: pointers WR = 8, RD = 0, no overflow.
    def __init__(self):
        self.status = bytes([0, 0, 0, 0, 8, 0, 0])

    def readfrom_mem_into(self, addr, reg, buf):
        if reg == 0:
            buf[:] = self.status
        else:
            buf[0] = reg

    def writeto_mem(self, addr, reg, buf):
        pass


def test_max30102_read_fifo_allocates_nothing():
    bus = _Bus()
    drv = MAX30102(bus)
    red = array.array("i", [0] * 32)
    ir = array.array("i", [0] * 32)
    for swap in (False, True):
        drv.swap_red_ir = swap
        drv.read_fifo(red, ir)  # warm-up
        if mem_total is not None:
            t0, c0 = mem_total(), mem_current()
        for _ in range(50):
            assert drv.read_fifo(red, ir) == 8
        if mem_total is not None:
            assert (mem_total() - t0, mem_current() - c0) == (0, 0), "read_fifo allocated"
    bus.status = bytes(7)  # empty FIFO
    assert transient_bytes(lambda: drv.read_fifo(red, ir), 50) == 0
    assert drv.samples_read == 2 * 51 * 8


class _Evening:
    # Calls LightController.update() once a second with inputs held here. Its own frames stay
    # within 11 words too (a `**kw` call or a closure over many names would allocate).
    def __init__(self, lc):
        self.lc = lc
        self.t = 0
        self.seen = []
        self.set()

    def set(self, room_lux=None, pressed=False, hyperarousal=None, hr_bpm=None, rmssd_ms=None):
        self.room_lux = room_lux
        self.pressed = pressed
        self.arousal = hyperarousal
        self.hr_bpm = hr_bpm
        self.rmssd_ms = rmssd_ms

    def step(self):
        r = self.lc.update(self.t, 0, self.room_lux, self.pressed, self.arousal, self.hr_bpm,
                           self.rmssd_ms)
        self.t += 1
        self._note(r[2])

    def _note(self, events):
        for e in events:
            self.seen.append(e[0])

    def run(self, t0, seconds, **kw):
        # -> the events of `seconds` updates from t0 (UTC, offset 0); asserts no frame allocated
        self.t = t0
        self.seen = []
        self.set(**kw)
        n = transient_bytes(self.step, seconds)
        assert n == 0, "LightController.update: %d bytes of frames in %d calls" % (n, seconds)
        return self.seen


def test_light_update_keeps_its_frames_off_the_heap_in_every_phase():
    # The schedule counts seconds from MIN_VALID_UNIX_S (small ints on the ESP32, no long-int
    # temporaries): it must be a whole number of days for the times of day to stay right.
    assert MIN_VALID_UNIX_S % 86400 == 0
    lc = LightController({"session_min_s": 60, "session_max_s": 300})
    ev = _Evening(lc)
    bed = _DAY0 + 23 * 3600
    # day with a manual light (override), then the pre-dim before the wind-down
    lc.update(bed - 4 * 3600, 0)
    lc.update(bed - 4 * 3600 + 1, 0, pressed=True)
    assert ev.run(bed - 4 * 3600 + 2, 60, room_lux=50.0) == []
    assert lc.warm > 0.0
    lc.update(bed - 3 * 3600 - 600, 0)
    ev.run(bed - 3 * 3600 - 599, 60, room_lux=50.0)
    # wind-down: a breathing session starts (high arousal), runs, then settles; room too bright
    seen = ev.run(bed - 3 * 3600 + 60, 150, room_lux=300.0, hyperarousal=0.9,
                      hr_bpm=70.0, rmssd_ms=30.0)
    assert "breathing_start" in seen and "room_light_over_limit" in seen, seen
    assert lc.session_active()
    seen = ev.run(bed - 3 * 3600 + 210, 100, room_lux=5.0, hyperarousal=0.1,
                      hr_bpm=60.0, rmssd_ms=40.0)
    assert "breathing_end" in seen, seen
    # the last minutes of the wind-down, bedtime, the night with a night light
    ev.run(bed - 700, 760)
    lc.update(bed + 61, 0, pressed=True)
    assert ev.run(bed + 62, 60) == []
    assert lc.amber > 0.0  # the night light
    # dawn and morning (wake 07:00, dawn from 06:30), then no clock at all
    lc.update(bed + 7 * 3600 + 1800 - 1200, 0)
    ev.run(bed + 7 * 3600 + 1800 - 1199, 120)
    ev.run(bed + 8 * 3600 - 60, 120)
    assert lc.warm > 0.0
    ev.run(bed + 8 * 3600 + 1800 - 60, 120)
    assert transient_bytes(lambda: lc.update(None, None), 60) == 0


class _Beats:
    # Feeds ArousalEstimator.add_beat() from prepared arrays (small frames, as _Evening).
    # 80 beats of baseline (one flagged), then 20 with a 15 % shorter IBI and a 40 % PWA drop:
    # one arousal every 100 beats.
    def __init__(self, est, n):
        self.est = est
        self.i = 0
        self.t = 0
        self.opened = 0
        self.ibi = array.array("i", [0] * n)
        self.pwa = array.array("i", [0] * n)
        self.flags = array.array("i", [0] * n)
        for i in range(n):
            arousal = i % 100 >= 80
            self.ibi[i] = (850 if arousal else 1000) + (i * 37) % 21 - 10
            self.pwa[i] = 300 if arousal else 500 + (i * 13) % 17
            self.flags[i] = 4 if i % 100 == 50 else 0  # motion

    def step(self):
        i = self.i
        self.i = i + 1
        self.t += self.ibi[i]
        if self.est.add_beat(self.t, self.ibi[i], self.pwa[i], self.flags[i]) is not None:
            self.opened += 1

    def rr(self):  # the beat-only path (no PWA, e.g. ECG RR intervals)
        self.t += 1000
        self.est.add_beat(self.t, 1000, None, 0)


def test_arousal_add_beat_keeps_its_frames_off_the_heap():
    est = ArousalEstimator()
    beats = _Beats(est, 660)
    for _ in range(60):
        beats.step()
    # A beat that ends an arousal makes its ArousalEvent: the VM copies the __init__ arguments
    # and grows the new attribute table through temporary blocks (not frames), once per event.
    new_event = transient_bytes(lambda: ArousalEvent(1, 2, 0.5, 10.0, 20.0), 1)
    for _ in range(600):
        before = beats.opened
        n = transient_bytes(beats.step, 1)
        assert n == (new_event if beats.opened > before else 0), (beats.i, n)
    assert beats.opened >= 5 and est.events == beats.opened, beats.opened
    assert transient_bytes(beats.rr, 100) == 0
