# Register-level virtual MAX30102 (datasheet 19-7740): FIFO, pointers, overflow, ADC model.
#
# Samples are made lazily: at every register access the chip computes the FIFO samples whose
# time has come on the virtual clock (`time.now_us`), from a stimulus file of little-endian
# float32 triples (red nA/mA, IR nA/mA, ambient nA) sampled at `stim_fs_hz`, sample-and-hold.
# The die temperature (registers 0x1F-0x21) follows an optional second stimulus: float32 clip
# temperatures every `temp_period_s` (the scenario's finger/room model, sim/generate.py).
# The per-sample work runs in viper on integers (Q10 fixed point) so a whole night at 50 Hz costs
# about a second, and the read path allocates nothing (the firmware's heap_lock tests run
# through it). Model choices not fixed by the datasheet are marked "MODEL" and listed in
# docs/drivers/max30102.md.
import array
import time

import micropython
import world
from micropython import const

_PART_ID = const(0x15)  # DS register map: PART_ID 0xFF = 0x15
_REV_ID = const(0x03)  # DS: REV_ID 0xFE "0xXX", product revision; any value is legal
_FULL = const(262143)  # 18-bit ADC full scale
_ALC_MAX_Q10 = const(200000 * 1024)  # DS "SpO2 Subsystem": ALC cancels up to 200 uA ambient
_TEMP_CONV_US = const(29000)  # DS "Temperature ADC Acquisition Time" TT = 29 ms typ
_CHUNK = const(320)  # stimulus triples per chunk: 320 * 12 = 3840 bytes (< 4 KB)

# DS Table 6 / Table 3 / Table 5 decoding.
_SR_HZ = (50, 100, 200, 400, 800, 1000, 1600, 3200)
_AVG = (1, 2, 4, 8, 16, 32, 32, 32)
_RANGE_NA = (2048, 4096, 8192, 16384)
# DS Table 11 (SpO2) and Table 12 (HR): highest SPO2_SR code allowed per LED_PW code. DS text
# under Table 6: "If the user selects a sample rate that is too high for the selected LED_PW
# setting, the highest possible sample rate is programmed instead into the register."
_MAX_SR_SPO2 = (6, 5, 4, 3)  # 69 us: 1600, 118: 1000, 215: 800, 411: 400
_MAX_SR_HR = (7, 6, 5, 4)  # 69 us: 3200, 118: 1600, 215: 1000, 411: 800

# Layout of the int32 state array shared with the viper kernels.
_P_SR = const(0)  # ADC samples per second x 1000 as the chip really makes them (oscillator error)
_P_AVG = const(1)  # samples averaged per FIFO sample
_P_FS = const(2)  # stimulus rate in mHz
_P_K0 = const(3)  # stimulus index of the chunk's first triple
_P_KN = const(4)  # triples valid in the chunk
_P_EOF = const(5)  # 1: the stimulus ends after this chunk (finger off beyond)
_P_C1 = const(6)  # LED1_PA code (drives the first FIFO channel)
_P_C2 = const(7)  # LED2_PA code
_P_SO1 = const(8)  # which stimulus column lights channel 1 (0 red, 1 IR; swapped on clones)
_P_SO2 = const(9)
_P_RANGE = const(10)  # ADC full scale nA
_P_KEEP = const(11)  # resolution mask (left-justified, DS Table 1)
_P_NOISE = const(12)  # noise amplitude in counts (uniform +-)
_P_SEED = const(13)  # LCG state
_P_WR = const(14)  # FIFO write pointer
_P_RD = const(15)  # FIFO read pointer
_P_CNT = const(16)  # unread samples 0..32 (the chip knows full from empty)
_P_N = const(17)  # samples wanted from _produce
_P_NEEDK = const(18)  # out: stimulus index _produce needs loaded (-1 none)
_P_SUB = const(19)  # sub-sample index inside the FIFO sample being averaged
_P_A1 = const(20)  # accumulators of that FIFO sample
_P_A2 = const(21)
_P_BPS = const(22)  # bytes per FIFO sample: 6 SpO2, 3 HR
_P_ALC = const(23)  # out: ambient exceeded the ALC range
# Time of the call's first ADC sample s0, split so the kernel's arithmetic stays within 31 bits
# (exact on the twin's 32-bit viper as on the 64-bit one; docs/simulation.md), set by _make:
_P_RS = const(24)  # (s0 + 1) * 1e6 mod SR: sub-microsecond phase of sample s0
_P_KB = const(25)  # stimulus index at sample s0: t_s0 * fs // 1e9
_P_RK = const(26)  # t_s0 * fs mod 1e9: phase inside that stimulus sample (fs in mHz)
_P_SIZE = const(27)
_I_MAX = const(0x3FFFFFFF)  # photocurrent cap (Q10 nA ~ 1 mA): far beyond full scale, saturates


@micropython.viper
def _decode_q10(buf, n: int):
    # float32 bit patterns -> non-negative Q10 ints in place (negatives, NaN -> 0, huge clamps).
    p = ptr32(buf)  # noqa: F821  (viper built-in)
    for i in range(n):
        b = int(p[i])  # ptr32 loads are zero-extended on the 64-bit unix port
        e = (b >> 23) & 0xFF
        if (b >> 31) != 0 or e == 0:
            p[i] = 0
            continue
        if e == 0xFF:
            p[i] = 0 if (b & 0x7FFFFF) != 0 else 0x3FFFFFFF
            continue
        mant = (b & 0x7FFFFF) | 0x800000
        sh = e - 140  # value * 2**10 = mant * 2**(e - 127 - 23 + 10)
        if sh >= 8:
            p[i] = 0x3FFFFFFF
        elif sh >= 0:
            p[i] = mant << sh
        elif sh > -24:
            p[i] = mant >> (0 - sh)
        else:
            p[i] = 0


@micropython.viper
def _produce(p, stim, fifo) -> int:
    # Make up to p[_P_N] FIFO samples. Each FIFO sample is the mean of AVG ADC samples (DS
    # Table 3), ADC sample s at t0 + (s+1)/SR; _make puts the first one's time in p (_P_RS,
    # _P_KB, _P_RK). Returns how many were completed; stops early (p[_P_NEEDK] = stimulus index)
    # when the chunk must be reloaded. All intermediates < 2**31 for SR <= 3200 Hz, a stimulus
    # <= 1 kHz and <= ~1.2 s of samples per call (_make splits longer runs).
    P = ptr32(p)  # noqa: F821
    S = ptr32(stim)  # noqa: F821
    F = ptr32(fifo)  # noqa: F821
    sr = int(P[_P_SR])
    avg = int(P[_P_AVG])
    fs = int(P[_P_FS])
    k0 = int(P[_P_K0])
    kn = int(P[_P_KN])
    eof = int(P[_P_EOF])
    c1 = int(P[_P_C1])
    c2 = int(P[_P_C2])
    so1 = int(P[_P_SO1])
    so2 = int(P[_P_SO2])
    rng = int(P[_P_RANGE])
    keep = int(P[_P_KEEP])
    noise = int(P[_P_NOISE])
    span = 2 * noise + 1
    seed = int(P[_P_SEED])
    wr = int(P[_P_WR])
    n = int(P[_P_N])
    sub = int(P[_P_SUB])
    a1 = int(P[_P_A1])
    a2 = int(P[_P_A2])
    kb = int(P[_P_KB])
    rk = int(P[_P_RK])
    # dt = microseconds from the first sample, kept as floor((RS + j * 1e9) / SR) for sample j
    # (SR in mHz) by adding 1e9 // SR and carrying the remainder (no j * 1e9 product).
    dt = 0
    rem = int(P[_P_RS])
    dq = 1000000000 // sr  # sr in mHz (the oscillator error included)
    dr = 1000000000 - dq * sr
    alc = 0
    done = 0
    P[_P_NEEDK] = -1
    lastk = -1
    base1 = 0
    base2 = 0
    while done < n:
        # stimulus index = floor(t * stim_fs_hz) = kb + floor((rk + dt * fs) / 1e9), with
        # dt * fs split at 1 ms (dh, dl) so no product passes 2**31.
        dh = dt // 1000
        k = kb + ((rk + (dt - dh * 1000) * fs) // 1000 + dh * fs) // 1000000
        if k != lastk:  # sample-and-hold: counts change only with the stimulus index
            i = k - k0
            if i < 0 or (i >= kn and eof == 0):
                P[_P_NEEDK] = k
                break
            if i >= kn:  # past the end of the stimulus: finger off, nothing reflects
                v1 = 0
                v2 = 0
                amb = 0
            else:
                b = i * 3
                v1 = int(S[b + so1])
                v2 = int(S[b + so2])
                amb = int(S[b + 2])
            # MODEL: ambient light cancellation leaves 1/1024 of the ambient photocurrent,
            # plus all above the 200 uA it can cancel (then ALC_OVF, DS Interrupt Status 1).
            res = amb >> 10
            if amb > _ALC_MAX_Q10:
                res += amb - _ALC_MAX_Q10
                alc = 1
            # photocurrent (Q10 nA) = stim (nA/mA) * LED mA (code / 5) + residual ambient;
            # counts = nA / (full scale / 2**18)  (DS Table 5: LSB = full scale / 262144)
            # rng is 256 times a power of two: * 256 // rng == // (rng >> 8), exactly.
            i1 = _I_MAX - res
            if c1 == 0 or v1 // 5 < i1 // c1:
                i1 = v1 // 5 * c1 + (v1 % 5) * c1 // 5  # == v1 * c1 // 5 without overflow
            i2 = _I_MAX - res
            if c2 == 0 or v2 // 5 < i2 // c2:
                i2 = v2 // 5 * c2 + (v2 % 5) * c2 // 5
            base1 = (i1 + res) // (rng >> 8)
            base2 = (i2 + res) // (rng >> 8)
            lastk = k
        x1 = base1
        x2 = base2
        if noise != 0:
            seed = (seed * 1664525 + 1013904223) & 0x3FFFFFFF
            x1 += (((seed >> 8) * span) >> 22) - noise
            seed = (seed * 1664525 + 1013904223) & 0x3FFFFFFF
            x2 += (((seed >> 8) * span) >> 22) - noise
        if x1 < 0:
            x1 = 0
        elif x1 > _FULL:
            x1 = _FULL  # each conversion saturates at full scale
        if x2 < 0:
            x2 = 0
        elif x2 > _FULL:
            x2 = _FULL
        a1 += x1
        a2 += x2
        dt += dq
        rem += dr
        if rem >= sr:
            rem -= sr
            dt += 1
        sub += 1
        if sub == avg:
            F[wr * 2] = (a1 // avg) & keep  # truncated to the pulse width's resolution
            F[wr * 2 + 1] = (a2 // avg) & keep
            wr = (wr + 1) & 31
            sub = 0
            a1 = 0
            a2 = 0
            done += 1
    P[_P_WR] = wr
    P[_P_SEED] = seed
    P[_P_SUB] = sub
    P[_P_A1] = a1
    P[_P_A2] = a2
    if alc != 0:
        P[_P_ALC] = 1
    return done


@micropython.viper
def _pop(p, fifo, buf, nbytes: int) -> int:
    # Serve nbytes of FIFO_DATA into buf: per sample channel 1 then 2, 3 bytes each, MSB first
    # (DS Figure 2). Each started sample is popped (DS: "The FIFO read pointer is automatically
    # incremented after the first byte of each sample is read"). Empty FIFO reads as zeros
    # (MODEL). Returns the number of samples popped.
    P = ptr32(p)  # noqa: F821
    F = ptr32(fifo)  # noqa: F821
    B = ptr8(buf)  # noqa: F821
    rd = int(P[_P_RD])
    cnt = int(P[_P_CNT])
    bps = int(P[_P_BPS])
    pos = 0
    popped = 0
    while pos < nbytes:
        if cnt == 0:
            B[pos] = 0
            pos += 1
            continue
        v1 = int(F[rd * 2])
        v2 = int(F[rd * 2 + 1])
        rd = (rd + 1) & 31
        cnt -= 1
        popped += 1
        j = 0
        while j < bps and pos < nbytes:
            v = v1 if j < 3 else v2
            sh = 16 - 8 * (j % 3)
            B[pos] = (v >> sh) & 0xFF
            pos += 1
            j += 1
    P[_P_RD] = rd
    P[_P_CNT] = cnt
    return popped


class VirtualMAX30102(world.VirtualChip):
    """The MAX30102 on the virtual I2C bus. spec: name, addr (0x57), stim (file relative to
    sim_dir; absent = finger off), stim_fs_hz, swap_red_ir (clone board: LED1 is the IR
    emitter), die_temp_c (30: the die temperature without temp_stim), temp_stim (file of float32
    die temperatures in degC every temp_period_s (10), linearly interpolated, the last one held),
    temp_offset_c (0: the part's error; DS accuracy +-1 degC), temp_stuck (TEMP_EN never
    self-clears), noise_counts (3), seed, part_id (0x15), rev_id, nack_after_s (the chip stops
    answering then), reset_stuck (RESET never self-clears)."""

    def __init__(self, spec, sim_dir="."):
        self.name = spec.get("name", "max30102")
        self.addr = spec.get("addr", 0x57)
        self.swap_red_ir = bool(spec.get("swap_red_ir", False))
        self.die_temp_c = float(spec.get("die_temp_c", 30.0))
        self.temp_offset_c = float(spec.get("temp_offset_c", 0.0))
        self.temp_stuck = bool(spec.get("temp_stuck", False))
        self._temp_period_us = int(float(spec.get("temp_period_s", 10.0)) * 1000000)
        self._temp_file = None
        self._temp_rows = 0
        tstim = spec.get("temp_stim")
        if tstim:
            self._temp_file = open(tstim if tstim.startswith("/") else sim_dir + "/" + tstim, "rb")
            self._temp_file.seek(0, 2)
            self._temp_rows = self._temp_file.tell() // 4
        self._temp_buf = array.array("f", (0.0, 0.0))  # two rows, float32 little-endian
        self.temp_conversions = 0
        self.part_id = spec.get("part_id", _PART_ID)
        self.rev_id = spec.get("rev_id", _REV_ID)
        nack = spec.get("nack_after_s")
        self._nack_after_us = -1 if nack is None else int(nack * 1000000)
        self.reset_stuck = bool(spec.get("reset_stuck", False))
        # MODEL: the sample clock runs (1 + osc_error) times the nominal rate. The datasheet
        # (19-7740) states no sample-rate tolerance; an uncalibrated on-chip RC oscillator of a
        # few % is assumed (issue 10: +-2 %).
        self._osc_milli = 1000.0 * (1.0 + float(spec.get("osc_error", 0.0)))
        self._p = array.array("i", [0] * _P_SIZE)
        self._fifo = array.array("i", [0] * 64)
        # int32 triples for the viper kernels (ptr32): one 3840-byte buffer, nothing on the way
        # (an array built from a list of 960 ints needed 7.5 KB more, contiguous, at startup)
        self._chunk = bytearray(12 * _CHUNK)
        self._p[_P_FS] = int(float(spec.get("stim_fs_hz", 50)) * 1000 + 0.5)
        self._p[_P_NOISE] = int(spec.get("noise_counts", 3))
        self._p[_P_SEED] = int(spec.get("seed", 12345)) & 0x7FFFFFFF
        self._file = None
        self._file_k = 0  # stimulus index at the file's current position
        stim = spec.get("stim")
        if stim:
            path = stim if stim.startswith("/") else sim_dir + "/" + stim
            self._file = open(path, "rb")
        self.samples_produced = 0
        self.samples_read = 0
        self.samples_lost = 0
        self.overflows = 0  # FIFO overflow episodes (reads that found samples lost)
        self._por()
        self._status1 = 0x01  # PWR_RDY after power-up (DS Interrupt Status 1)
        self._load(0)

    # --- state ---

    def _por(self):
        # DS register map: every register's POR state is 0x00 (except the IDs).
        self._regs = bytearray(256)
        p = self._p
        p[_P_WR] = p[_P_RD] = p[_P_CNT] = 0
        p[_P_SUB] = p[_P_A1] = p[_P_A2] = 0
        self._ovf = 0
        self._status1 = 0
        self._status2 = 0
        self._running = False
        self._t0_us = 0
        self._made = 0  # FIFO samples whose time has come since _t0_us
        self._temp_done_us = -1
        self._temp_next = 0  # TINT << 8 | TFRAC the running conversion will give
        self._config()

    def _config(self):
        r = self._regs
        p = self._p
        mode = r[0x09] & 0x07
        spo2 = r[0x0A]
        p[_P_SR] = int(_SR_HZ[(spo2 >> 2) & 0x07] * self._osc_milli + 0.5)
        p[_P_AVG] = _AVG[r[0x08] >> 5]
        sr, avg = p[_P_SR], p[_P_AVG]
        self._most = (sr // 1000) // avg if sr >= 1000 * avg else 1  # <= ~1 s per _produce
        p[_P_RANGE] = _RANGE_NA[(spo2 >> 5) & 0x03]
        p[_P_KEEP] = _FULL ^ ((1 << (3 - (spo2 & 0x03))) - 1)  # 15..18 bit (DS Table 7)
        c_red, c_ir = r[0x0C], r[0x0D]
        p[_P_C1] = c_red
        p[_P_C2] = c_ir if mode != 2 else 0  # HR mode: red only (DS Table 4)
        p[_P_SO1], p[_P_SO2] = (1, 0) if self.swap_red_ir else (0, 1)
        p[_P_BPS] = 3 if mode == 2 else 6
        was = self._running
        self._running = mode in (2, 3, 7) and not r[0x09] & 0x80
        if self._running and not was:
            self._t0_us = time.now_us
            self._made = 0

    # No properties on this class: with one, MicroPython looks each attribute store (`self._x =
    # ...`, many per register access) up in the class tree first. `nack_after_s` is checked
    # at each access instead (_gone), with the same effect as `present` turning False.

    def _gone(self):
        return 0 <= self._nack_after_us <= time.now_us

    # --- stimulus ---

    def _load(self, k):
        p = self._p
        n = 0
        if self._file is not None and k >= 0:
            if k != self._file_k:
                self._file.seek(k * 12)
            got = self._file.readinto(self._chunk) or 0
            n = got // 12
            self._file_k = k + n
            _decode_q10(self._chunk, n * 3)
        p[_P_K0] = k
        p[_P_KN] = n
        p[_P_EOF] = 1 if n < _CHUNK else 0

    # --- time ---

    # The per-read methods (read, _update, _make) run ~1 M times a night: each keeps its frame
    # within the 11 words MicroPython holds on the C stack (a larger frame is allocated on the
    # heap at every call); the rare parts are methods of their own (docs/simulation.md).
    def _update(self):
        now = time.now_us
        if self._temp_done_us >= 0 and now >= self._temp_done_us:
            self._finish_temperature()
        if not self._running:
            return
        p = self._p
        # FIFO sample m is complete at t0 + (m+1)*AVG*1e9 // (SR in mHz).
        pending = ((now - self._t0_us + 1) * p[_P_SR] - 1) // (p[_P_AVG] * 1000000000) \
            - self._made
        if pending > 0:
            self._fill(pending)

    def _fill(self, pending):
        p = self._p
        cnt = p[_P_CNT]
        if self._regs[0x08] & 0x10:  # DS FIFO_ROLLOVER_EN: the FIFO keeps filling
            make, lost = self._roll(pending, cnt)
            cnt = p[_P_CNT]
        else:  # DS: when full, samples are not pushed and are lost
            make = 32 - cnt if pending > 32 - cnt else pending
            if make:
                self._make(self._made, make)
            lost = pending - make  # never computed: lost anyway
            cnt += make
            p[_P_CNT] = cnt
        self._made += pending
        self.samples_produced += pending
        if lost:
            self.samples_lost += lost
            self.overflows += 1
            lost += self._ovf
            self._ovf = lost if lost < 31 else 31  # DS: saturates at 0x1F
        self._flags(make, cnt)

    def _roll(self, pending, cnt):
        # The write pointer moves over every sample, computed or not; the oldest unread ones
        # are overwritten. MODEL: the read pointer is pushed along so the FIFO holds the newest
        # 32, and OVF_COUNTER counts the overwritten samples. -> (made, lost)
        p = self._p
        make = pending if pending < 32 else 32
        skipped = pending - make  # never computed
        p[_P_WR] = (p[_P_WR] + skipped) & 31
        self._make(self._made + skipped, make)
        lost = cnt + pending - 32
        if lost > 0:
            p[_P_RD] = p[_P_WR]
            cnt = 32
        else:
            lost = 0
            cnt += pending
        p[_P_CNT] = cnt
        return make, lost

    def _flags(self, make, cnt):
        en = self._regs[0x02]
        if make and en & 0x40:
            self._status1 |= 0x40  # PPG_RDY
        if en & 0x80 and cnt >= 32 - (self._regs[0x08] & 0x0F):
            self._status1 |= 0x80  # A_FULL (DS FIFO_A_FULL: that many empty slots left)
        p = self._p
        if p[_P_ALC]:
            p[_P_ALC] = 0
            if en & 0x20:
                self._status1 |= 0x20  # ALC_OVF

    def _make(self, m, n):
        p = self._p
        while n > 0:
            # The first ADC sample's time, exactly (arbitrary-precision ints here); the kernel
            # works relative to it (docs/simulation.md: the virtual board on the twin).
            a = ((m * p[_P_AVG] + p[_P_SUB]) + 1) * 1000000000  # sr in mHz
            t = self._t0_us + a // p[_P_SR]
            p[_P_RS] = a % p[_P_SR]
            t *= p[_P_FS]
            p[_P_KB] = t // 1000000000
            p[_P_RK] = t % 1000000000
            p[_P_N] = n if n < self._most else self._most
            a = _produce(p, self._chunk, self._fifo)  # samples done
            n -= a
            m += a
            if a < p[_P_N]:  # stopped at the end of the loaded stimulus chunk
                self._load(p[_P_NEEDK])

    def die_temp_now_c(self):
        """The die's temperature now: the stimulus (interpolated) or die_temp_c, + the offset."""
        f = self._temp_file
        if f is None or self._temp_rows == 0:
            return self.die_temp_c + self.temp_offset_c
        x = time.now_us / self._temp_period_us
        k = min(int(x), self._temp_rows - 1)
        b = self._temp_buf
        f.seek(k * 4)
        if f.readinto(b) < 8:  # the last row: held
            b[1] = b[0]
        return b[0] + (b[1] - b[0]) * min(1.0, x - k) + self.temp_offset_c

    def _start_temperature(self):
        # The value is fixed when the conversion starts (29 ms later it is the same), so the
        # register reads that may run under the firmware's heap_lock() allocate nothing.
        t = self.die_temp_now_c()
        x16 = int(t * 16 + 0.5) if t >= 0 else -int(-t * 16 + 0.5)  # nearest 1/16 degC
        if x16 > 127 * 16 + 15:  # the registers' range (DS: TINT -128..127)
            x16 = 127 * 16 + 15
        elif x16 < -128 * 16:
            x16 = -128 * 16
        self._temp_next = ((x16 >> 4) & 0xFF) << 8 | (x16 & 0x0F)
        self.temp_conversions += 1

    def _finish_temperature(self):
        v = self._temp_next
        self._regs[0x1F] = v >> 8  # two's complement (DS "Temperature Integer")
        self._regs[0x20] = v & 0x0F  # TFRAC: always-positive 1/16 degC above TINT
        self._regs[0x21] = 0  # TEMP_EN self-clears at the end of the conversion
        self._temp_done_us = -1
        if self._regs[0x03] & 0x02:
            self._status2 |= 0x02  # DIE_TEMP_RDY

    # --- registers ---

    def _get(self, reg):
        p = self._p
        if reg == 0x00:
            v = self._status1
            self._status1 = 0  # DS: reading the status register clears the interrupts
            return v
        if reg == 0x01:
            v = self._status2
            self._status2 = 0
            return v
        if reg == 0x04:
            return p[_P_WR]
        if reg == 0x05:
            return self._ovf
        if reg == 0x06:
            return p[_P_RD]
        if reg == 0x09:
            return self._regs[0x09] | (0x40 if self.reset_stuck and self._resetting else 0)
        if reg == 0x20:
            self._status2 &= ~0x02  # DS: reading TFRAC clears DIE_TEMP_RDY
        if reg == 0xFE:
            return self.rev_id
        if reg == 0xFF:
            return self.part_id
        return self._regs[reg]

    _resetting = False

    def read(self, reg, buf):
        if self._nack_after_us >= 0 and self._gone():
            raise OSError(19)  # ENODEV: the chip stopped answering (as `present` False)
        self._update()
        if reg == 0x00 and len(buf) == 7:  # fast path: the driver's status + pointers burst
            p = self._p
            buf[0] = self._status1
            buf[1] = self._status2
            buf[2] = self._regs[0x02]
            buf[3] = self._regs[0x03]
            buf[4] = p[_P_WR]
            buf[5] = self._ovf
            buf[6] = p[_P_RD]
            self._status1 = 0
            self._status2 = 0
        elif reg == 0x07:
            self._pop_fifo(buf, 0)
        else:
            self._read_regs(reg, buf)

    def _pop_fifo(self, buf, i):
        # FIFO_DATA: the address stays, the read pointer moves
        popped = _pop(self._p, self._fifo, buf if i == 0 else memoryview(buf)[i:], len(buf) - i)
        if popped:
            self._ovf = 0  # DS: a popped sample resets OVF_COUNTER
            self._status1 &= ~0x40  # DS: reading FIFO_DATA clears PPG_RDY
            self.samples_read += popped

    def _read_regs(self, reg, buf):
        n = len(buf)
        i = 0
        while i < n:
            if reg == 0x07:
                self._pop_fifo(buf, i)
                return
            buf[i] = self._get(reg)
            i += 1
            if reg < 0xFF:  # DS: reads past 0xFF do not wrap to 0x00
                reg += 1

    def write(self, reg, data):
        if self._nack_after_us >= 0 and self._gone():
            raise OSError(19)
        self._update()
        r = self._regs
        p = self._p
        for v in data:
            if reg == 0x09:
                if v & 0x40:  # RESET: all registers to their power-on state (DS Mode Config)
                    self._por()
                    self._resetting = True
                else:
                    r[0x09] = v & 0x87
                    self._resetting = False
                self._config()
            elif reg == 0x0A:
                spo2 = v & 0x7F
                table = _MAX_SR_HR if r[0x09] & 0x07 == 2 else _MAX_SR_SPO2
                top = table[spo2 & 0x03]
                if (spo2 >> 2) & 0x07 > top:
                    spo2 = (spo2 & 0x63) | (top << 2)
                r[0x0A] = spo2
                self._restart_clock()
            elif reg == 0x08:
                r[0x08] = v
                self._restart_clock()
            elif reg in (0x0C, 0x0D):
                r[reg] = v
                self._config()
            elif reg == 0x04 or reg == 0x06:
                if reg == 0x04 and r[0x09] & 0x07 not in (2, 3, 7):
                    pass  # DS: FIFO_WR_PTR is writable only in HR/SpO2/multi-LED mode
                else:
                    p[_P_WR if reg == 0x04 else _P_RD] = v & 0x1F
                    p[_P_CNT] = (p[_P_WR] - p[_P_RD]) & 31  # equal pointers: empty
            elif reg == 0x05:
                self._ovf = v & 0x1F
            elif reg == 0x21:
                if v & 0x01 and self._temp_done_us < 0:
                    r[0x21] = 0x01
                    self._start_temperature()
                    if not self.temp_stuck:
                        self._temp_done_us = time.now_us + _TEMP_CONV_US
            elif reg in (0x00, 0x01, 0x07, 0x1F, 0x20, 0xFE, 0xFF):
                pass  # read-only (DS register map); writing FIFO_DATA is not modelled
            else:
                r[reg] = v
            if reg < 0xFF and reg != 0x07:
                reg += 1

    def _restart_clock(self):
        # A new sample rate or averaging starts a fresh sample clock (samples so far were made
        # with the old settings by _update above).
        self._config()
        if self._running:
            self._t0_us = time.now_us
            self._made = 0
            p = self._p
            p[_P_SUB] = p[_P_A1] = p[_P_A2] = 0

    # --- simulator interface ---

    def stats(self):
        return {
            "samples_produced": self.samples_produced,
            "samples_read": self.samples_read,
            "samples_lost": self.samples_lost,
            "overflows": self.overflows,
            "temp_conversions": self.temp_conversions,
        }

    def finish(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temp_file is not None:
            self._temp_file.close()
            self._temp_file = None
