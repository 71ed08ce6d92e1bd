# VEML7700 conversion maths (app note 84323 table and correction) and ID/bus errors, on both
# interpreters.
from nsdev.drivers import veml7700 as v

RUN_UNDER_MICROPYTHON = True

# [AN] 84323 resolution table, lx/count: rows IT 800..25 ms, columns gain x2, x1, x1/4, x1/8.
_TABLE = (
    (800, (0.0036, 0.0072, 0.0288, 0.0576)),
    (400, (0.0072, 0.0144, 0.0576, 0.1152)),
    (200, (0.0144, 0.0288, 0.1152, 0.2304)),
    (100, (0.0288, 0.0576, 0.2304, 0.4608)),
    (50, (0.0576, 0.1152, 0.4608, 0.9216)),
    (25, (0.1152, 0.2304, 0.9216, 1.8432)),
)


def _close(a, b, rel=1e-6, absolute=0.0):
    return abs(a - b) <= rel * abs(b) + absolute


def test_resolution_table_matches_app_note():
    for it_ms, row in _TABLE:
        for i in range(4):
            gain, res = (2, 1, 0.25, 0.125)[i], row[i]
            assert _close(v.resolution_lx(gain, it_ms), res), (gain, it_ms)
            # the integer path uses 0.0036 * 2**shift
            assert _close(0.0036 * (1 << v.shift_of(gain, it_ms)), res)
    # full scale at the least sensitive setting: ~120 klx (linear)
    assert 120000 < 65535 * v.resolution_lx(0.125, 25) < 121000


def test_correction_polynomial_values():
    assert v.correct_lux(0) == 0
    # 1000 lx: 1000 * (1.0023 + 0.081488 - 0.0093924 + 0.00060135) = 1074.997
    assert _close(v.correct_lux(1000.0), 1074.99695, rel=1e-6)
    # 20000 lx linear reads as ~73.7 klx corrected (strong compression at daylight)
    assert _close(v.correct_lux(20000.0), 73718.0, rel=1e-4)
    prev = -1.0
    for x in range(0, 30000, 250):
        c = v.correct_lux(float(x))
        assert c > prev  # strictly increasing: invertible
        prev = c


def test_counts_to_lux_worked_examples():
    # 100 counts at x2/800 ms = 0.36 lx linear; 0.36 * 1.0023... corrected
    assert _close(v.counts_to_lux(100, 2, 800, corrected=False), 0.36)
    assert _close(v.counts_to_lux(100, 2, 800), 0.36 * 1.0023, rel=1e-4)
    # 10000 counts at x1/8, 25 ms = 18432 lx linear
    assert _close(v.counts_to_lux(10000, 0.125, 25, corrected=False), 18432.0)


def test_integer_path_matches_float_reference():
    for shift in range(10):
        for counts in (0, 1, 2, 13, 100, 999, 5000, 20000, 40000, 59999, 65535):
            x = v.linear_mlux(counts, shift)
            assert x < (1 << 30)
            lin = counts * 0.0036 * (1 << shift)
            assert abs(x - lin * 1000) <= 1.0
            if x > v.X_MAX_MLUX:
                continue
            got = v.corrected_mlux(x)
            want = v.correct_lux(x / 1000) * 1000
            assert got < (1 << 30)
            assert abs(got - want) <= 1 + 1e-3 * want, (counts, shift, got, want)


def test_corrected_mlux_clamps_far_above_range():
    top = v.corrected_mlux(v.X_MAX_MLUX)
    assert v.corrected_mlux(v.X_MAX_MLUX + 10**7) == top
    assert 150e6 < top < (1 << 30)
    assert v.corrected_mlux(-5) == 0


def test_pick_step_ladder():
    # darkness -> the most sensitive step (x2, 800 ms)
    assert v.pick_step(0, 3) == 9
    # 300 lx (counts at x1/8 100 ms) -> a step with gain <= 1/4 (x1/x2 only below ~100 lx)
    s = v.pick_step(651, 7)
    assert v.GAINS[v._LADDER_GAIN[s]] <= 0.25
    # bright: the least sensitive step
    assert v.pick_step(50000, 7) == 0


class _FakeI2C:
    def __init__(self, regs, fail=False):
        self.regs = regs
        self.fail = fail
        self.writes = []

    def readfrom_mem_into(self, addr, reg, buf):
        if self.fail:
            raise OSError(19)
        value = self.regs.get(reg, 0)
        buf[0] = value & 0xFF
        buf[1] = value >> 8

    def writeto_mem(self, addr, reg, data):
        if self.fail:
            raise OSError(19)
        self.writes.append((reg, bytes(data)))


def test_id_check_and_init_writes():
    bus = _FakeI2C({7: 0xC481})
    als = v.VEML7700(bus)
    assert als.check_id() == 0xC481
    # PSM off, then ALS_CONF = x1/8, 100 ms, shut down (app-note starting point), LSB first
    assert bus.writes == [(3, b"\x00\x00"), (0, bytes((0x01, 0x10)))]
    assert als.gain == 0.125 and als.it_ms == 100


def test_wrong_id_raises_oserror():
    try:
        v.VEML7700(_FakeI2C({7: 0x0061}))
    except OSError as e:
        assert "expected low byte 0x81" in str(e)
    else:
        raise AssertionError("no error")


def test_nack_raises_oserror_with_register():
    try:
        v.VEML7700(_FakeI2C({}, fail=True))
    except OSError as e:
        assert e.args[0] == 19
        assert "reg 0x07" in str(e)
    else:
        raise AssertionError("no error")


def test_configure_validates():
    als = v.VEML7700(_FakeI2C({7: 0xC481}))
    als.configure(2, 800)
    assert als.auto_range is False and als.lux_per_count() == 0.0036
    for gain, it_ms in ((3, 100), (1, 30)):
        try:
            als.configure(gain, it_ms)
        except ValueError as e:
            assert "VEML7700" in str(e)
        else:
            raise AssertionError(f"accepted {gain} {it_ms}")
