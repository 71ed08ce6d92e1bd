"""MAX30102 driver against the register-level virtual chip on the virtual board."""

from conftest import check

# Builds a stimulus file, the virtual chip on bus 0 and the driver. Stimulus: red = (R0 + k)/16,
# IR = (I0 - k)/16 nA/mA at 50 Hz, so with 1.0 mA LEDs, 16384 nA full scale (62.5 pA/LSB) and
# 50 sps without averaging, FIFO sample k reads exactly R0 + k and I0 - k counts (18 bit).
PRELUDE = """
import array, struct, micropython
import machine, world, vmax30102
from nsdev.drivers.max30102 import MAX30102
time.progress_every_us = 1 << 60
time.advance_us(1)

def ramp_file(path, n, r0=1000, i0=90000):
    f = open(path, 'wb')
    row = bytearray(12)
    for k in range(n):
        struct.pack_into('<fff', row, 0, (r0 + k) / 16, (i0 - k) / 16, 0.0)
        f.write(row)
    f.close()

def const_file(path, red, ir, amb=0.0, n=100):
    f = open(path, 'wb')
    for k in range(n):
        f.write(struct.pack('<fff', red, ir, amb))
    f.close()

def board(spec=None):
    s = {'stim_fs_hz': 50, 'noise_counts': 0}
    s.update(spec or {})
    chip = vmax30102.VirtualMAX30102(s, '.')
    bus = world.buses[0] = world.VirtualI2CBus(0)
    bus.attach(chip)
    return chip, bus, machine.I2C(0)

red = array.array('i', [0] * 32)
ir = array.array('i', [0] * 32)
"""

RAMP_SETUP = (
    "ramp_file('ramp.f32', 20000)\n"
    "chip, bus, i2c = board({'stim': 'ramp.f32'})\n"
    "d = MAX30102(i2c)\n"
    "d.setup(sample_rate_hz=50, averaging=1, red_ma=1.0, ir_ma=1.0)\n"
)


def run(mp_board, body, heapsize="1M", vm="unix"):
    return check(mp_board(PRELUDE + body, heapsize=heapsize, vm=vm))


def test_constant_stimulus_gives_datasheet_counts_per_resolution(mp_board):
    # 156.298828125 nA/mA x 6.4 mA = 1000.3125 nA = 16005 LSB of 62.5 pA (DS Table 5); the
    # left-justified data keeps 18/17/16/15 bits for 411/215/118/69 us (DS Tables 1 and 7).
    out = run(
        mp_board,
        "const_file('c.f32', 156.298828125, 100.0)\n"
        "for pw in (411, 215, 118, 69):\n"
        "    chip, bus, i2c = board({'stim': 'c.f32'})\n"
        "    d = MAX30102(i2c)\n"
        "    d.setup(pulse_width_us=pw)\n"
        "    time.advance_us(200000)\n"
        "    n = d.read_fifo(red, ir)\n"
        "    print('pw', pw, n, d.fifo_rate_hz, sorted(set(red[:n])), sorted(set(ir[:n])))\n"
        "chip, bus, i2c = board({'stim': 'c.f32'})\n"
        "d = MAX30102(i2c)\n"
        "d.setup(adc_range_na=2048)\n"
        "time.advance_us(100000)\n"
        "n = d.read_fifo(red, ir)\n"
        "print('range2048', n, red[0], ir[0])\n",
    )
    assert "pw 411 10 50.0 [16005] [10240]" in out
    assert "pw 215 10 50.0 [16004] [10240]" in out
    assert "pw 118 10 50.0 [16004] [10240]" in out
    assert "pw 69 10 50.0 [16000] [10240]" in out
    # 2048 nA full scale: LSB 7.8125 pA, eight times the counts.
    assert "range2048 5 128040 81920" in out


def test_saturation_clips_at_full_scale(mp_board):
    out = run(
        mp_board,
        "const_file('c.f32', 10000.0, 100.0)\n"
        "chip, bus, i2c = board({'stim': 'c.f32'})\n"
        "d = MAX30102(i2c)\n"
        "d.setup()\n"
        "time.advance_us(100000)\n"
        "n = d.read_fifo(red, ir)\n"
        "print('sat', n, red[0], red[n - 1], ir[0])\n"
        "d.setup(sample_rate_hz=200, pulse_width_us=69)\n"
        "time.advance_us(100000)\n"
        "n = d.read_fifo(red, ir)\n"
        "print('sat15', red[0])\n",
    )
    assert "sat 5 262143 262143 10240" in out
    assert "sat15 262136" in out


def test_late_read_overflows_and_returns_exactly_the_oldest_32(mp_board):
    # DS "FIFO Overflow Counter": when full, new samples are lost and counted; a pop resets it.
    out = run(
        mp_board,
        RAMP_SETUP + "time.advance_us(100000)\n"
        "n = d.read_fifo(red, ir)\n"
        "last = red[n - 1]\n"
        "print('first', n, d.overflow)\n"
        "time.advance_us(1000000)\n"
        "n = d.read_fifo(red, ir)\n"
        "ok = all(red[i] == last + 1 + i and ir[i] == 91000 - red[i] for i in range(n))\n"
        "print('late', n, ok, d.overflow, d.overflow_saturated)\n"
        "gap = d.overflow\n"
        "last = red[n - 1]\n"
        "time.advance_us(100000)\n"
        "n = d.read_fifo(red, ir)\n"
        "print('after', n, red[0] - last - 1 == gap, d.overflow)\n"
        "time.advance_us(3000000)\n"
        "n = d.read_fifo(red, ir)\n"
        "print('sat', n, d.overflow, d.overflow_saturated)\n"
        "st = chip.stats()\n"
        "print('stats', st['samples_lost'], d.samples_lost, "
        "st['samples_read'] == d.samples_read)\n",
    )
    assert "first 5 0" in out
    # 1 s at 50 Hz = 50 samples: the FIFO keeps the oldest 32, 18 are lost.
    assert "late 32 True 18 False" in out
    # The next batch starts exactly `overflow` samples after the last one returned.
    assert "after 5 True 0" in out
    assert "sat 32 31 True" in out
    # 3 s = 150 samples, 32 kept, 118 lost; the chip's counter stops at 31 (hence "saturated").
    assert "stats 136 49 True" in out


def test_full_fifo_without_loss_is_not_mistaken_for_empty(mp_board):
    # 32 unread samples and no loss: FIFO_WR_PTR == FIFO_RD_PTR and OVF_COUNTER == 0; the
    # driver tells it from empty by A_FULL (FIFO_A_FULL = 0).
    out = run(
        mp_board,
        RAMP_SETUP + "time.advance_us(650000)\n"
        "n = d.read_fifo(red, ir)\n"
        "print('full', n, d.overflow, red[31] - red[0])\n"
        "n = d.read_fifo(red, ir)\n"
        "print('empty', n)\n",
    )
    assert "full 32 0 31" in out
    assert "empty 0" in out


def test_pointer_wraparound_over_many_reads_keeps_a_gapless_stream(mp_board):
    out = run(
        mp_board,
        RAMP_SETUP + "expect = None\n"
        "bad = total = 0\n"
        "for r in range(150):\n"
        "    time.advance_us(130000 + (r % 5) * 20000)\n"
        "    n = d.read_fifo(red, ir)\n"
        "    for i in range(n):\n"
        "        if expect is not None and red[i] != expect:\n"
        "            bad += 1\n"
        "        expect = red[i] + 1\n"
        "    total += n\n"
        "print('stream', total, bad, d.samples_lost, chip.stats()['samples_read'] == total)\n",
    )
    fields = out.split("stream ")[1].split()
    total = int(fields[0])
    assert total > 1000  # ~25 s at 50 Hz: the 5-bit pointers wrap 30+ times
    assert fields[1:] == ["0", "0", "True"]


def test_read_fifo_allocates_nothing(mp_board, vm):
    # heap_lock: any allocation raises MemoryError. 40 s of reads crosses several stimulus
    # chunk loads of the virtual chip, and includes overflowing reads. The heap is roomy on
    # purpose: the board, chip and driver compiled from source take ~110 KiB here, and at 120 or
    # 128 KiB their start-up failed by fragmentation depending on the script's file name (this
    # test is about the read path under heap_lock, not about the heap's size).
    out = run(
        mp_board,
        RAMP_SETUP + "d2 = MAX30102(i2c, swap_red_ir=True)\n"
        "d2.setup(sample_rate_hz=50, averaging=1, red_ma=1.0, ir_ma=1.0)\n"
        "total = 0\n"
        "micropython.heap_lock()\n"
        "try:\n"
        "    for r in range(200):\n"
        "        time.advance_us(200000 if r % 50 else 900000)\n"
        "        total += d2.read_fifo(red, ir) if r % 2 else d.read_fifo(red, ir)\n"
        "finally:\n"
        "    micropython.heap_unlock()\n"
        "print('locked', total, d.samples_lost > 0)\n",
        heapsize="256K",
    )
    assert "locked" in out
    assert "True" in out.split("locked")[1]


def test_part_id_mismatch_absent_chip_and_nack_give_clear_errors(mp_board):
    out = run(
        mp_board,
        "chip, bus, i2c = board({'part_id': 0x11})\n"
        "try:\n"
        "    MAX30102(i2c).setup()\n"
        "except OSError as e:\n"
        "    print('wrong:', e)\n"
        "bus.devices.clear()\n"
        "try:\n"
        "    MAX30102(i2c).check_part_id()\n"
        "except OSError as e:\n"
        "    print('absent:', e.args[0], e)\n"
        "chip, bus, i2c = board()\n"
        "d = MAX30102(i2c)\n"
        "d.setup()\n"
        "time.advance_us(100000)\n"
        "bus.fail[0x57] = 1\n"
        "try:\n"
        "    d.read_fifo(red, ir)\n"
        "except OSError as e:\n"
        "    print('nack:', e)\n"
        "print('retry', d.read_fifo(red, ir))\n"
        "class Flaky:\n"
        "    def __init__(self, i2c):\n"
        "        self.i2c = i2c\n"
        "        self.fail_data = 1\n"
        "    def readfrom_mem_into(self, addr, reg, buf):\n"
        "        if reg == 7 and self.fail_data:\n"
        "            self.fail_data -= 1\n"
        "            raise OSError(116)\n"
        "        self.i2c.readfrom_mem_into(addr, reg, buf)\n"
        "    def writeto_mem(self, addr, reg, buf):\n"
        "        self.i2c.writeto_mem(addr, reg, buf)\n"
        "d.i2c = Flaky(i2c)\n"
        "time.advance_us(100000)\n"
        "try:\n"
        "    d.read_fifo(red, ir)\n"
        "except OSError as e:\n"
        "    print('data:', e)\n"
        "print('reread', d.read_fifo(red, ir))\n"
        "chip, bus, i2c = board({'nack_after_s': 10})\n"
        "d = MAX30102(i2c)\n"
        "d.setup()\n"
        "time.advance_us(11000000)\n"
        "try:\n"
        "    d.read_fifo(red, ir)\n"
        "except OSError as e:\n"
        "    print('gone:', e.args[0])\n",
    )
    assert "wrong: " in out and "PART_ID is 0x11, expected 0x15" in out
    assert "absent: 19 " in out and "MAX30102 at 0x57: reading REV_ID/PART_ID (0xfe)" in out
    assert "nack: " in out and "INT_STATUS/FIFO pointers (0x00)" in out
    assert "retry 5" in out
    assert "data: " in out and "reading FIFO_DATA (0x07), 5 samples" in out
    assert "reread 5" in out  # nothing lost: the samples are still in the FIFO
    assert "gone: 19" in out


def test_setup_rejects_what_the_datasheet_does_not_allow(mp_board):
    out = run(
        mp_board,
        "chip, bus, i2c = board()\n"
        "d = MAX30102(i2c)\n"
        "bad = [dict(sample_rate_hz=800), dict(sample_rate_hz=3200, pulse_width_us=69),\n"
        "       dict(sample_rate_hz=1000, pulse_width_us=215), dict(sample_rate_hz=60),\n"
        "       dict(averaging=3), dict(pulse_width_us=100), dict(adc_range_na=1000),\n"
        "       dict(red_ma=60), dict(ir_ma=-1)]\n"
        "for kw in bad:\n"
        "    try:\n"
        "        d.setup(**kw)\n"
        "        print('accepted', kw)\n"
        "    except ValueError as e:\n"
        "        print('rejected', e)\n"
        "print('untouched', chip._regs[0x0A], chip._regs[0x09], chip._regs[0x0C])\n"
        "d.setup(sample_rate_hz=1600, averaging=32, pulse_width_us=69)\n"
        "print('ok', d.fifo_rate_hz, d.resolution_bits)\n",
    )
    assert "accepted" not in out
    assert out.count("rejected") == 9
    assert "(datasheet Table 11: at most 400 sps)" in out
    assert "untouched 0 0 0" in out
    assert "ok 50.0 15" in out


def test_swapped_red_ir_clone_board(mp_board):
    # Clone board: LED1 is the IR emitter, so the first FIFO channel carries IR light.
    out = run(
        mp_board,
        "const_file('c.f32', 64.0, 32.0)\n"
        "for chip_swap, drv_swap in ((False, False), (True, False), (True, True)):\n"
        "    chip, bus, i2c = board({'stim': 'c.f32', 'swap_red_ir': chip_swap})\n"
        "    d = MAX30102(i2c, swap_red_ir=drv_swap)\n"
        "    d.setup(red_ma=1.0, ir_ma=2.0)\n"
        "    time.advance_us(100000)\n"
        "    n = d.read_fifo(red, ir)\n"
        "    print('swap', chip_swap, drv_swap, red[0], ir[0])\n",
    )
    # red 64 nA/mA x 1 mA = 64 nA = 1024 counts; IR 32 nA/mA x 2 mA = 64 nA... use distinct:
    assert "swap False False 1024 1024" in out
    # Clone, uncorrected: LED1 (1 mA) lights IR (32 nA/mA) -> 512 in "red"; LED2 (2 mA) red.
    assert "swap True False 512 2048" in out
    assert "swap True True 1024 1024" in out


def test_temperature_blocking_and_non_blocking(mp_board):
    out = run(
        mp_board,
        "chip, bus, i2c = board({'die_temp_c': 36.75})\n"
        "d = MAX30102(i2c)\n"
        "d.setup()\n"
        "print('blocking', d.die_temperature_c())\n"
        "chip.die_temp_c = -5.5\n"
        "d.start_temperature()\n"
        "print('early', d.read_temperature_c())\n"
        "time.advance_us(30000)\n"
        "print('later', d.read_temperature_c())\n",
    )
    assert "blocking 36.75" in out
    assert "early None" in out
    assert "later -5.5" in out


def test_shutdown_stops_sampling_and_wake_starts_clean(mp_board):
    out = run(
        mp_board,
        RAMP_SETUP + "time.advance_us(100000)\n"
        "d.shutdown()\n"
        "time.advance_us(2000000)\n"
        "print('asleep', d.read_fifo(red, ir), d.overflow)\n"
        "d.wake()\n"
        "print('woken', d.read_fifo(red, ir))\n"
        "time.advance_us(100000)\n"
        "print('sampling', d.read_fifo(red, ir), d.overflow)\n",
    )
    assert "asleep 5 0" in out
    assert "woken 0" in out
    assert "sampling 5 0" in out


def test_reset_poll_is_bounded(mp_board):
    out = run(
        mp_board,
        "chip, bus, i2c = board({'reset_stuck': True})\n"
        "t0 = time.now_us\n"
        "try:\n"
        "    MAX30102(i2c).setup()\n"
        "except OSError as e:\n"
        "    print('stuck:', e.args[0], e)\n"
        "print('waited_ms', (time.now_us - t0) // 1000)\n",
    )
    assert "stuck: 110 " in out and "RESET bit still set after 50 ms" in out
    assert int(out.split("waited_ms ")[1].split()[0]) < 60
