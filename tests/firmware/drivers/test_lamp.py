# Lamp driver (nsdev.drivers.lamp) against a fake PWM: off at start, LEDC resolution, perceptual
# fades without visible steps, sub-LSB sigma-delta mean, idle cadence. CPython and MicroPython.
import nsdev  # noqa: F401
from nsdev.drivers import lamp as lampmod
from nsdev.drivers.lamp import AMBER, WARM, Lamp, ledc_resolution_bits

RUN_UNDER_MICROPYTHON = True


class FakePWM:
    def __init__(self):
        self.duty = 65535  # a pin left high by a crash must be forced off by the driver
        self.freq_hz = 1000
        self.writes = []

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        if not 0 <= d <= 65535:
            raise ValueError("duty")
        self.duty = d
        self.writes.append(d)

    def freq(self, f=None):
        if f is None:
            return self.freq_hz
        self.freq_hz = f


def make(**kw):
    w, a = FakePWM(), FakePWM()
    return Lamp(w, a, **kw), w, a


def lstar_of_duty(d):
    return lampmod.lightness_from_y(d / 65535)


def test_ledc_resolution_matches_brief():
    assert ledc_resolution_bits(1000) == 16
    assert ledc_resolution_bits(100) == 16
    assert ledc_resolution_bits(5000) == 13
    assert ledc_resolution_bits(4000) == 14


def test_off_at_construction_and_carrier_set():
    lamp, w, a = make()
    assert w.duty == 0 and a.duty == 0 and w.writes[0] == 0
    assert w.freq_hz == 4000 and lamp.resolution_bits == 14
    assert lamp.update(10) == lamp.idle_ms
    assert w.duty == 0 and a.duty == 0


def test_flicker_unsafe_frequency_rejected():
    for f in (100, 1000, 50000):
        try:
            make(freq_hz=f)
        except ValueError:
            continue
        raise AssertionError(f)


def test_bad_level_rejected():
    lamp, w, a = make()
    for y in (-0.1, 1.5, float("nan")):
        try:
            lamp.set_target(y, 0.0)
        except ValueError:
            continue
        raise AssertionError(y)


def test_full_fade_has_no_visible_step():
    lamp, w, a = make()
    lamp.set_target(1.0, 1.0, fade_ms=0)  # as fast as allowed
    prev = 0.0
    frames = 0
    while lamp.busy() or frames == 0:
        lamp.update(10)
        frames += 1
        ls = lstar_of_duty(w.duty)
        assert abs(ls - prev) <= lampmod.VISIBLE_STEP_LSTAR, (frames, ls, prev)
        prev = ls
        assert frames < 2000
    assert w.duty == 65535 and a.duty == 65535
    # and down again with late updates (a stalled loop never causes a jump)
    lamp.set_target(0.0, 0.0, fade_ms=0)
    while lamp.busy():
        lamp.update(250)
        ls = lstar_of_duty(w.duty)
        assert abs(ls - prev) <= lampmod.VISIBLE_STEP_LSTAR
        prev = ls
    assert w.duty == 0 and a.duty == 0


def test_fade_time_follows_fade_ms():
    lamp, w, a = make()
    lamp.set_target(0.01, 0.0, fade_ms=1000)  # L* 9: slower than the rate limit
    n = 0
    while lamp.busy():
        lamp.update(10)
        n += 1
    assert 99 <= n <= 102, n
    assert abs(lamp.level(WARM) - 0.01) < 0.0002
    lamp.set_target(0.5, 0.0, fade_ms=1000)  # L* 76 -> 67 more: capped at 12 L*/s
    n = 0
    while lamp.busy():
        lamp.update(10)
        n += 1
    assert abs(n - (76.07 - 8.99) / 12 * 100) < 3, n


def test_sub_lsb_mean_by_sigma_delta():
    lamp, w, a = make()
    lsb = lamp.lsb_fraction()
    target = lsb * 0.3  # 0.0018 % of full scale: below one PWM step
    lamp.set_target(0.0, target, fade_ms=0)
    for _ in range(200):
        lamp.update(10)
    total = 0
    n = 2560
    for _ in range(n):
        assert lamp.update(10) == lamp.frame_ms  # dithering keeps the fast cadence
        total += a.duty
        assert a.duty in (0, 4)  # only ever 0 or one LSB (duty_u16 step 4 at 14 bit)
    mean = total / n / 65535
    assert abs(mean - target) < 0.05 * target, (mean, target)
    assert mean <= 0.001  # lowest output far below 0.1 % of full scale


def test_steady_level_snaps_and_idles():
    lamp, w, a = make()
    lamp.set_target(0.3, 0.0, fade_ms=200)
    for _ in range(600):
        nxt = lamp.update(10)
    assert nxt == lamp.idle_ms
    d = w.duty
    for _ in range(10):
        lamp.update(10)
    assert w.duty == d and d % 4 == 0


def test_off_resets_dither_state():
    lamp, w, a = make()
    lamp.set_target(0.0, 0.00003, fade_ms=0)
    for _ in range(50):
        lamp.update(10)
    lamp.set_target(0.0, 0.0, fade_ms=0)
    for _ in range(50):
        lamp.update(10)
    for _ in range(100):
        lamp.update(10)
        assert a.duty == 0
    lamp.off()
    assert w.duty == 0 and a.duty == 0 and lamp.level(AMBER) == 0.0


def test_update_allocates_nothing():
    try:
        import micropython

        lock, unlock = micropython.heap_lock, micropython.heap_unlock
    except (ImportError, AttributeError):
        return
    lamp, w, a = make()
    w.writes = a.writes = None  # the fake's log would allocate; keep only the duty

    def dw(d=None):
        if d is not None:
            w.duty = d

    def da(d=None):
        if d is not None:
            a.duty = d

    w.duty_u16 = dw
    a.duty_u16 = da
    lamp.set_target(0.5, 0.00002, fade_ms=500)
    lamp.update(10)
    ok = True
    lock()
    try:
        for _ in range(300):
            lamp.update(10)
    except MemoryError:
        ok = False
    unlock()
    assert ok, "Lamp.update allocated"
