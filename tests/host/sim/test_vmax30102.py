"""The virtual MAX30102's register semantics, FIFO model and ADC model (datasheet 19-7740)."""

from conftest import check

PRELUDE = """
import struct, vmax30102
time.progress_every_us = 1 << 60
time.advance_us(1)

def stim(path, rows):
    f = open(path, 'wb')
    for r in rows:
        f.write(struct.pack('<fff', *r))
    f.close()

def chip(**spec):
    s = {'stim_fs_hz': 50, 'noise_counts': 0}
    s.update(spec)
    return vmax30102.VirtualMAX30102(s, '.')

def rd(c, reg, n=1):
    b = bytearray(n)
    c.read(reg, b)
    return list(b)

def wr(c, reg, *vals):
    c.write(reg, bytes(vals))

def samples(c, n, bps=6):
    b = bytearray(n * bps)
    c.read(0x07, b)
    out = []
    for i in range(n):
        j = i * bps
        s = [(b[j] << 16) | (b[j + 1] << 8) | b[j + 2]]
        if bps == 6:
            s.append((b[j + 3] << 16) | (b[j + 4] << 8) | b[j + 5])
        out.append(s)
    return out

def spo2_50hz(c, red=5, ir=5, fifo_cfg=0x00):
    wr(c, 0x08, fifo_cfg)  # SMP_AVE = 1
    wr(c, 0x0A, 0x60 | (0 << 2) | 3)  # 16384 nA, 50 sps, 411 us
    wr(c, 0x0C, red, ir)
    wr(c, 0x09, 0x03)
"""


def run(mp_board, body):
    return check(mp_board(PRELUDE + body))


def test_power_on_state_ids_and_reset(mp_board):
    out = run(
        mp_board,
        "c = chip()\n"
        "print('ids', rd(c, 0xFE, 2))\n"
        "print('status', rd(c, 0x00, 2), rd(c, 0x00))\n"  # PWR_RDY at power-up, cleared by read
        "wr(c, 0x08, 0x5F, 0x03, 0x27)\n"  # burst: FIFO_CONFIG, MODE, SPO2 (auto-increment)
        "wr(c, 0x0C, 0x24, 0x30)\n"
        "print('config', rd(c, 0x08, 6))\n"
        "wr(c, 0x09, 0x40)\n"
        "print('after_reset', rd(c, 0x08, 6), rd(c, 0x04, 3), rd(c, 0x09))\n"
        "print('past_ff', rd(c, 0xFF, 3))\n",
    )
    assert "ids [3, 21]" in out  # REV_ID, PART_ID 0x15
    assert "status [1, 0] [0]" in out
    assert "config [95, 3, 39, 0, 36, 48]" in out
    assert "after_reset [0, 0, 0, 0, 0, 0] [0, 0, 0] [0]" in out
    assert "past_ff [21, 21, 21]" in out  # reads past 0xFF do not wrap to 0x00


def test_sample_rate_too_high_for_pulse_width_is_clamped(mp_board):
    # DS under Table 6: the highest possible sample rate is programmed instead.
    out = run(
        mp_board,
        "c = chip()\n"
        "wr(c, 0x09, 0x03)\n"
        "wr(c, 0x0A, (4 << 2) | 3)\n"  # 800 sps with 411 us in SpO2 mode -> 400 (code 3)
        "print('spo2', (rd(c, 0x0A)[0] >> 2) & 7)\n"
        "wr(c, 0x0A, (7 << 2) | 0)\n"  # 3200 sps, 69 us -> 1600 (code 6) in SpO2 mode
        "print('spo2_69', (rd(c, 0x0A)[0] >> 2) & 7)\n"
        "wr(c, 0x09, 0x02)\n"
        "wr(c, 0x0A, (7 << 2) | 0)\n"  # HR mode allows 3200 sps at 69 us (Table 12)
        "print('hr_69', (rd(c, 0x0A)[0] >> 2) & 7)\n",
    )
    assert "spo2 3" in out
    assert "spo2_69 6" in out
    assert "hr_69 7" in out


def test_fifo_pointers_overflow_and_pop(mp_board):
    out = run(
        mp_board,
        "stim('s.f32', [((1000 + k) / 16, 100.0 / 16, 0.0) for k in range(500)])\n"
        "c = chip(stim='s.f32')\n"
        "spo2_50hz(c)\n"
        "time.advance_us(100000)\n"
        "print('five', rd(c, 0x04, 3))\n"  # WR, OVF, RD
        "print('data', samples(c, 2))\n"
        "print('ptrs', rd(c, 0x04, 3))\n"
        "time.advance_us(1000000)\n"
        "print('full', rd(c, 0x04, 3), c.stats())\n"
        "first = samples(c, 1)\n"
        "print('popped', rd(c, 0x04, 3))\n"  # one pop frees a slot and resets OVF_COUNTER
        "time.advance_us(20000)\n"
        "print('one_more', rd(c, 0x04, 3))\n"
        "wr(c, 0x04, 0, 0, 0)\n"
        "print('cleared', rd(c, 0x04, 3), samples(c, 1))\n",
    )
    assert "five [5, 0, 0]" in out
    # 1 mA LED (code 5): counts = stim * 16; sample k uses stimulus index floor(t * 50).
    data = out.split("data ")[1].split("\n")[0]
    pair = eval(data)  # noqa: S307 (our own printed list)
    assert pair[1][0] == pair[0][0] + 1 and pair[0][1] == 100
    assert "ptrs [5, 0, 2]" in out
    # 55 samples made, 2 read: 3 + 29 fill the FIFO (WR == RD), 21 lost and counted.
    assert "full [2, 21, 2]" in out
    assert "'samples_lost': 21" in out
    assert "popped [2, 0, 3]" in out
    assert "one_more [3, 0, 3]" in out
    assert "cleared [0, 0, 0] [[0, 0]]" in out  # equal pointers: empty, reads as zeros


def test_rollover_keeps_the_newest_samples(mp_board):
    out = run(
        mp_board,
        "stim('s.f32', [((1000 + k) / 16, 100.0 / 16, 0.0) for k in range(500)])\n"
        "c = chip(stim='s.f32')\n"
        "spo2_50hz(c, fifo_cfg=0x10)\n"  # FIFO_ROLLOVER_EN
        "time.advance_us(1000000)\n"  # 50 samples, FIFO holds 32
        "p = rd(c, 0x04, 3)\n"
        "got = samples(c, 32)\n"
        "print('roll', p, got[31][0] - got[0][0], c.stats()['samples_lost'])\n"
        "time.advance_us(20000)\n"
        "print('next', samples(c, 1)[0][0] - got[31][0])\n",
    )
    assert "roll [18, 18, 18] 31 18" in out
    assert "next 1" in out  # the newest were kept: the stream continues without a gap


def test_hr_mode_three_bytes_and_burst_into_fifo_data(mp_board):
    out = run(
        mp_board,
        "stim('s.f32', [(64.0, 32.0, 0.0)] * 100)\n"
        "c = chip(stim='s.f32')\n"
        "wr(c, 0x0A, 0x60 | 3)\n"
        "wr(c, 0x0C, 5, 5)\n"
        "wr(c, 0x09, 0x02)\n"
        "time.advance_us(100000)\n"
        "print('hr', rd(c, 0x04, 3), samples(c, 2, bps=3), rd(c, 0x06))\n"
        "b = rd(c, 0x04, 3 + 3)\n"  # a burst from 0x04 reaches 0x07 and stays there
        "print('burst', b[:3], (b[3] << 16) | (b[4] << 8) | b[5], rd(c, 0x06))\n",
    )
    assert "hr [5, 0, 0] [[1024], [1024]] [2]" in out
    assert "burst [5, 0, 2] 1024 [3]" in out


def test_averaging_mixes_the_sub_samples(mp_board):
    # 200 sps averaged by 4; stimulus at 200 Hz alternating 1000/3000 counts -> mean 2000.
    out = run(
        mp_board,
        "stim('s.f32', [(1000 / 16 if k % 2 else 3000 / 16, 0.0, 0.0) for k in range(400)])\n"
        "c = chip(stim='s.f32', stim_fs_hz=200)\n"
        "wr(c, 0x08, 0x40)\n"
        "wr(c, 0x0A, 0x60 | (2 << 2) | 3)\n"
        "wr(c, 0x0C, 5, 5)\n"
        "wr(c, 0x09, 0x03)\n"
        "time.advance_us(200000)\n"
        "n = rd(c, 0x04)[0]\n"
        "print('avg', n, sorted(set(s[0] for s in samples(c, n))))\n",
    )
    assert "avg 10 [2000]" in out


def test_finger_off_ambient_and_alc_overflow(mp_board):
    out = run(
        mp_board,
        "stim('s.f32', [(0.0, 0.0, 50000.0)] * 50 + [(0.0, 0.0, 300000.0)] * 50)\n"
        "c = chip(stim='s.f32', noise_counts=3)\n"
        "spo2_50hz(c)\n"
        "wr(c, 0x02, 0x20)\n"  # ALC_OVF_EN
        "rd(c, 0x00)\n"  # clear PWR_RDY
        "time.advance_us(500000)\n"
        "s = samples(c, 20)\n"
        "print('ambient', max(max(x) for x in s), rd(c, 0x00))\n"
        "time.advance_us(1000000)\n"
        "rd(c, 0x04, 3)\n"
        "s = samples(c, 32)\n"
        "print('alc', rd(c, 0x00), s[-1][0] > 200000)\n"
        "time.advance_us(3000000)\n"  # past the end of the stimulus
        "wr(c, 0x04, 0, 0, 0)\n"
        "time.advance_us(200000)\n"
        "s = samples(c, 10)\n"
        "print('off', max(max(x) for x in s))\n"
        "c2 = chip(noise_counts=3)\n"  # no stimulus file at all
        "spo2_50hz(c2)\n"
        "time.advance_us(200000)\n"
        "print('nostim', max(max(x) for x in samples(c2, 10)))\n",
    )
    # 50 uA ambient, 1/1024 left by the ALC (MODEL) = 48.8 nA = 781 counts, +- noise.
    amb = int(out.split("ambient ")[1].split()[0])
    assert 770 <= amb <= 790
    assert "[0]" in out.split("ambient ")[1].split("\n")[0]  # ALC_OVF not set below 200 uA
    assert "alc [32] True" in out
    assert int(out.split("off ")[1].split()[0]) <= 3
    assert int(out.split("nostim ")[1].split()[0]) <= 3


def test_temperature_conversion_and_nack_fault(mp_board):
    out = run(
        mp_board,
        "c = chip(die_temp_c=-5.5, nack_after_s=1)\n"
        "wr(c, 0x03, 0x02)\n"
        "wr(c, 0x21, 1)\n"
        "print('busy', rd(c, 0x1F, 3), rd(c, 0x01))\n"
        "time.advance_us(29000)\n"
        "print('done', rd(c, 0x01), rd(c, 0x1F, 3))\n"
        "def answers():\n"
        "    try:\n"
        "        rd(c, 0xFF)\n"
        "        wr(c, 0x02, 0)\n"
        "        return True\n"
        "    except OSError as e:\n"
        "        return e.args[0]\n"
        "print('present', answers())\n"
        "time.advance_us(1000000)\n"
        "print('present', answers())\n",
    )
    assert "busy [0, 0, 1] [0]" in out
    assert "done [2] [250, 8, 0]" in out  # -6 + 8/16 = -5.5; DIE_TEMP_RDY
    assert "present True" in out and "present 19" in out  # then NACKs: ENODEV, as the ESP32


def test_die_temperature_follows_its_stimulus(mp_board):
    # temp_stim: float32 degC every temp_period_s, interpolated, the last row held; the value is
    # taken when TEMP_EN is written (29 ms before it can be read); temp_offset_c = part error.
    out = run(
        mp_board,
        "f = open('t.f32', 'wb')\n"
        "f.write(struct.pack('<3f', 20.0, 32.0, 33.0))\n"
        "f.close()\n"
        "c = chip(temp_stim='t.f32', temp_period_s=10, temp_offset_c=-0.75)\n"
        "def conv(at_us):\n"
        "    time.advance_us(at_us - time.now_us)\n"
        "    wr(c, 0x21, 1)\n"
        "    time.advance_us(1000000)\n"  # the die changes meanwhile: not what is read
        "    return rd(c, 0x1F, 3)\n"
        "print('t0', conv(2))\n"
        "print('t5', conv(5000000))\n"
        "print('t15', conv(15000000))\n"
        "print('t99', conv(99000000))\n"
        "print('n', c.stats()['temp_conversions'])\n",
    )
    assert "t0 [19, 4, 0]" in out  # 20.0 - 0.75 = 19.25
    assert "t5 [25, 4, 0]" in out  # halfway 20 -> 32: 26.0 - 0.75
    assert "t15 [31, 12, 0]" in out  # 32.5 - 0.75 = 31.75
    assert "t99 [32, 4, 0]" in out  # past the end: 33.0 held - 0.75
    assert "n 4" in out


def test_a_whole_chunked_stimulus_streams_in_order(mp_board):
    # 2000 rows (several 320-row chunks) read back in order, with a late read that skips
    # ahead (the chip seeks in the file) in between.
    out = run(
        mp_board,
        "stim('s.f32', [((1000 + k) / 16, 0.0, 0.0) for k in range(2000)])\n"
        "c = chip(stim='s.f32')\n"
        "spo2_50hz(c)\n"
        "prev = None\n"
        "bad = gap = 0\n"
        "for r in range(80):\n"
        "    time.advance_us(200000 if r != 40 else 20000000)\n"
        "    p = rd(c, 0x04, 3)\n"
        "    n = (p[0] - p[2]) & 31 or (32 if p[1] else 0)\n"
        "    for s in samples(c, n):\n"
        "        if gap == 31:\n"  # saturated counter: at least 31 lost
        "            jumps = s[0] - prev - 1\n"
        "        elif prev is not None and s[0] != prev + 1 + gap:\n"
        "            bad += 1\n"
        "        prev = s[0]\n"
        "        gap = 0\n"
        "    gap = p[1]\n"
        "print('stream', bad, jumps, c.stats()['samples_lost'])\n",
    )
    # 20 s late: 1000 samples due, 32 kept, 968 lost (the counter saturates at 31).
    assert "stream 0 968 968" in out
