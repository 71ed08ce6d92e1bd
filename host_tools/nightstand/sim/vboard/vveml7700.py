# Virtual VEML7700 ambient light sensor on the simulated I2C bus: register semantics, counts that
# integrate the room + lamp light over the configured time on the virtual clock, saturation and
# the chip's compression at high lux (the inverse of the app note's correction polynomial).
#
# Model (Vishay datasheet 84286, application note 84323):
# - 16-bit registers, LSB first: 0x00 ALS_CONF (gain 12:11, IT 9:6, INT_EN 1, SD 0; power-on
#   default 0x0001 = shut down), 0x01 WH, 0x02 WL, 0x03 PSM, 0x04 ALS, 0x05 WHITE, 0x06 ALS_INT,
#   0x07 ID (0xC481: low byte 0x81).
# - Clearing ALS_SD (or changing gain/IT while running) starts integrating after STARTUP_US;
#   cycles then repeat every IT (+ the PSM pause when PSM_EN). ALS/WHITE hold the result of the
#   last completed cycle (stale values are kept across a restart, as a conservative model).
# - counts = floor(raw_lux / (0.0036 lx * (2/gain) * (800 ms/IT))), capped at 65535, where
#   raw_lux = p^-1(mean illuminance over the cycle) and p is the [AN] correction polynomial.
# - WHITE = 1.25 x ALS (a placeholder ratio, not a spectral model). ALS_INT flags are set at the
#   end of each cycle when INT_EN (persistence is not modelled) and cleared by reading 0x06.
# Light = the env file's lux column (linear interpolation, 0 when absent) + the sum of
# `world.light_sources` callables(now_us) -> lux at the sensor (the lamp registers one).
# The register read path uses integers only: without light sources it allocates nothing.
import struct
import time
from array import array

import world

STARTUP_US = 3000
_SAMPLES = 16  # midpoint samples of the illuminance per integration cycle
_IT_US = {0b1100: 25000, 0b1000: 50000, 0b0000: 100000, 0b0001: 200000, 0b0010: 400000,
          0b0011: 800000}
_IT_LOG2 = {0b1100: 5, 0b1000: 4, 0b0000: 3, 0b0001: 2, 0b0010: 1, 0b0011: 0}  # 800 ms / IT
_GAIN_LOG2 = (1, 0, 4, 3)  # gain code (x1, x2, x1/8, x1/4) -> log2(2 / gain)
_PSM_US = (500000, 1000000, 2000000, 4000000)
_KNOT_SHIFT = 18  # inverse-correction table: knots every 2**18 mlux (262 lx)
_KNOTS = 800  # up to ~210 klx true illuminance


def _poly(x):
    # [AN] correction: corrected lux from the linear (raw) lux x.
    return (((6.0135e-13 * x - 9.3924e-9) * x + 8.1488e-5) * x + 1.0023) * x


def _dpoly(x):
    return ((4 * 6.0135e-13 * x - 3 * 9.3924e-9) * x + 2 * 8.1488e-5) * x + 1.0023


def raw_lux(true_lux):
    """Inverse of the correction polynomial (strictly increasing): Newton from x = L."""
    x = true_lux / 1.0023
    for _ in range(60):
        step = (_poly(x) - true_lux) / _dpoly(x)
        x -= step
        if abs(step) < 1e-9 * (1 + x):
            break
    return x


_ratio_q20 = None


def _ratio_table():
    # raw/true lux ratio in Q20 at the knots: smooth, so linear interpolation is accurate.
    global _ratio_q20
    if _ratio_q20 is None:
        t = array("i", bytes(4 * _KNOTS))
        t[0] = int(1048576 / 1.0023 + 0.5)
        for k in range(1, _KNOTS):
            lux = (k << _KNOT_SHIFT) / 1000
            t[k] = int(raw_lux(lux) / lux * 1048576 + 0.5)
        _ratio_q20 = t
    return _ratio_q20


def _load_env(path):
    # Lists of small ints: indexing them allocates nothing (array('q') items would).
    try:
        f = open(path, "rb")
    except OSError:
        return [], []
    # Row by row into lists sized once, times in ms (float32 seconds hold no more): on the twin
    # (31-bit small ints) microseconds would be one heap object per row, a sieve of small
    # blocks that leaves the firmware no contiguous heap (docs/simulation.md).
    with f:
        n = f.seek(0, 2) // 28
        f.seek(0)
        t_ms = [0] * n
        mlux = [0] * n
        row_buf = bytearray(28)
        for i in range(n):
            f.readinto(row_buf)
            row = struct.unpack_from("<7f", row_buf, 0)
            t_ms[i] = int(row[0] * 1000 + 0.5)
            mlux[i] = int(row[5] * 1000 + 0.5) if row[5] > 0 else 0
    return t_ms, mlux


class VirtualVEML7700(world.VirtualChip):
    chip_id = 0xC481

    def __init__(self, spec, sim_dir):
        self.name = spec.get("name", "veml7700")
        self.addr = spec.get("addr", 0x10)
        self.present = True
        env = spec.get("env")
        if env:
            self._env_t, self._env_mlux = _load_env(sim_dir + "/" + env)
        else:
            self._env_t, self._env_mlux = [], []
        self._env_i = 0
        if getattr(world, "light_sources", None) is None:
            world.light_sources = []
        self._ratio = _ratio_table()
        self.conf = 0x0001
        self.wh = 0
        self.wl = 0
        self.psm = 0
        self.als = 0
        self.white = 0
        self.int_flags = 0
        self._on_us = -1  # start of the first integration of this run (-1: shut down)
        self._cycle = -1  # index of the last completed cycle already latched
        self.reads = 0
        self.writes = 0
        self.early_reads = 0  # ALS reads after a (re)start before the first cycle completed
        self.restarts = 0
        self.saturated = 0

    # --- light at the sensor ---
    def _env_mlux_at(self, t_us):
        t = t_us // 1000
        ts = self._env_t
        n = len(ts)
        if n == 0:
            return 0
        i = self._env_i
        while i + 1 < n and ts[i + 1] <= t:
            i += 1
        while i > 0 and ts[i] > t:
            i -= 1
        self._env_i = i
        if t <= ts[i] or i + 1 >= n:
            return self._env_mlux[i]
        t0 = ts[i]
        t1 = ts[i + 1]
        v0 = self._env_mlux[i]
        return v0 + (self._env_mlux[i + 1] - v0) * (t - t0) // (t1 - t0)

    def lux_mlux_at(self, t):
        """True illuminance at the sensor at virtual time t (µs), in milli-lux."""
        m = self._env_mlux_at(t)
        for src in world.light_sources:
            m += int(src(t) * 1000)
        return m if m > 0 else 0

    def _raw_mlux(self, true_mlux):
        # Compression at high lux: raw = true * ratio(true), ratio interpolated in Q20.
        k = true_mlux >> _KNOT_SHIFT
        if k >= _KNOTS - 1:
            return (true_mlux * self._ratio[_KNOTS - 1]) >> 20
        r0 = self._ratio[k]
        r = r0 + (((self._ratio[k + 1] - r0) * (true_mlux & 0x3FFFF)) >> _KNOT_SHIFT)
        return (true_mlux * r) >> 20

    # --- integration cycles ---
    def _it_us(self):
        return _IT_US.get((self.conf >> 6) & 0xF, 100000)

    def _shift(self):
        return _GAIN_LOG2[(self.conf >> 11) & 3] + _IT_LOG2.get((self.conf >> 6) & 0xF, 3)

    def _update(self):
        if self._on_us < 0:
            return
        now = time.now_us
        it = self._it_us()
        first_end = self._on_us + it
        if now < first_end:
            return
        period = it + (_PSM_US[(self.psm >> 1) & 3] if self.psm & 1 else 0)
        j = (now - first_end) // period
        if j == self._cycle:
            return
        self._cycle = j
        start = self._on_us + j * period
        acc = 0
        for s in range(_SAMPLES):
            acc += self.lux_mlux_at(start + (2 * s + 1) * it // (2 * _SAMPLES))
        raw = self._raw_mlux(acc // _SAMPLES)
        counts = raw * 10 // (36 << self._shift())
        if counts > 65535:
            counts = 65535
            self.saturated += 1
        self.als = counts
        w = counts * 5 // 4
        self.white = w if w < 65535 else 65535
        if self.conf & 2:
            if counts > self.wh:
                self.int_flags |= 0x4000
            if counts < self.wl:
                self.int_flags |= 0x8000

    def _value(self, reg):
        if reg == 0x00:
            return self.conf
        if reg == 0x01:
            return self.wh
        if reg == 0x02:
            return self.wl
        if reg == 0x03:
            return self.psm
        if reg == 0x04:
            if self._on_us >= 0 and self._cycle < 0 and time.now_us < self._on_us + self._it_us():
                self.early_reads += 1
            return self.als
        if reg == 0x05:
            return self.white
        if reg == 0x06:
            v = self.int_flags
            self.int_flags = 0
            return v
        if reg == 0x07:
            return self.chip_id
        return 0

    # --- register interface ---
    def read(self, reg, buf):
        n = len(buf)
        if n == 0:
            return
        self.reads += 1
        self._update()
        v = self._value(reg)
        buf[0] = v & 0xFF
        if n > 1:
            buf[1] = (v >> 8) & 0xFF
        for i in range(2, n):
            buf[i] = 0

    def write(self, reg, data):
        if len(data) < 2:
            return  # the command code alone (a read pointer): nothing to store
        self.writes += 1
        self._update()
        v = data[0] | (data[1] << 8)
        if reg == 0x00:
            old = self.conf
            self.conf = v
            if v & 1:
                self._on_us = -1
            elif (old & 1) or (old & 0x1BC0) != (v & 0x1BC0):
                self._on_us = time.now_us + STARTUP_US
                self._cycle = -1
                self.restarts += 1
        elif reg == 0x01:
            self.wh = v
        elif reg == 0x02:
            self.wl = v
        elif reg == 0x03:
            self.psm = v & 7

    def stats(self):
        return {"reads": self.reads, "writes": self.writes, "restarts": self.restarts,
                "early_reads": self.early_reads, "saturated": self.saturated}
