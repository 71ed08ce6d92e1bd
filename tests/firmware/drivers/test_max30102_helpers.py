# MAX30102 driver's pure helpers (register encodings, datasheet tables) on both interpreters.
from nsdev.drivers import max30102 as m

RUN_UNDER_MICROPYTHON = True

# DS Table 11 "SpO2 Mode (Allowed Settings)", transcribed row by row: rate -> pulse widths.
TABLE_11 = {
    50: (69, 118, 215, 411),
    100: (69, 118, 215, 411),
    200: (69, 118, 215, 411),
    400: (69, 118, 215, 411),
    800: (69, 118, 215),
    1000: (69, 118),
    1600: (69,),
    3200: (),
}


def _raises_value_error(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def test_spo2_config_matches_table_11_exhaustively():
    for sr in m.SAMPLE_RATES_HZ:
        for pw in m.PULSE_WIDTHS_US:
            for rng in m.ADC_RANGES_NA:
                if pw in TABLE_11[sr]:
                    b = m.spo2_config_byte(sr, pw, rng)
                    # DS 0x0A: SPO2_ADC_RGE[6:5], SPO2_SR[4:2], LED_PW[1:0]; bit 7 reserved 0
                    assert b < 0x80
                    assert m.ADC_RANGES_NA[(b >> 5) & 3] == rng
                    assert m.SAMPLE_RATES_HZ[(b >> 2) & 7] == sr
                    assert m.PULSE_WIDTHS_US[b & 3] == pw
                else:
                    assert _raises_value_error(m.spo2_config_byte, sr, pw, rng)


def test_spo2_config_defaults_byte():
    # 16384 nA (11), 200 sps (010), 411 us (11) -> 0b0_11_010_11
    assert m.spo2_config_byte(200, 411, 16384) == 0x6B


def test_bad_values_are_rejected():
    assert _raises_value_error(m.spo2_config_byte, 60, 411, 16384)
    assert _raises_value_error(m.spo2_config_byte, 200, 400, 16384)
    assert _raises_value_error(m.spo2_config_byte, 200, 411, 10000)
    assert _raises_value_error(m.led_code, 51.1)
    assert _raises_value_error(m.led_code, -0.1)


def test_led_codes_follow_table_8():
    # DS Table 8: 0x00 0.0 mA, 0x01 0.2, 0x0F 3.0, 0x1F 6.2, 0x3F 12.6, 0x7F 25.4, 0xFF 51.0
    for code, ma in ((0, 0.0), (1, 0.2), (0x0F, 3.0), (0x1F, 6.2), (0x3F, 12.6),
                     (0x7F, 25.4), (0xFF, 51.0)):
        assert m.led_code(ma) == code
    assert m.led_code(6.4) == 0x20
    assert m.led_code(0.29) == 1  # nearest step


def test_resolution_masks_table_7():
    # Left-justified data (DS Table 1): 18/17/16/15 bits for 411/215/118/69 us.
    assert m.resolution_mask(411) == 0x3FFFF
    assert m.resolution_mask(215) == 0x3FFFE
    assert m.resolution_mask(118) == 0x3FFFC
    assert m.resolution_mask(69) == 0x3FFF8


def test_counts_to_na_uses_table_5_lsb():
    # DS Table 5: LSB 7.81 pA at 2048 nA, 62.5 pA at 16384 nA full scale.
    assert abs(m.counts_to_na(1000, 2048) - 7.8125) < 1e-6
    assert abs(m.counts_to_na(16000, 16384) - 1000.0) < 1e-6
    assert abs(m.counts_to_na(262144, 8192) - 8192.0) < 1e-3


def test_unpack_orders_led1_then_led2_and_masks():
    import array

    buf = bytearray([0xFF, 0x12, 0x34, 0x00, 0x00, 0x07, 0x01, 0x00, 0x00, 0x02, 0xFF, 0xFF])
    a = array.array("i", [0] * 2)
    b = array.array("i", [0] * 2)
    m._unpack(buf, 2, a, b, m.resolution_mask(69))
    # bits 23:18 unused (DS "FIFO Data Contains 3 Bytes per Channel"); 15-bit keeps 17:3
    assert list(a) == [0x31230, 0x10000]
    assert list(b) == [0, 0x2FFF8]


# DS "Temperature Integer (TINT)" table: two's complement, 1 degC per LSB.
TINT_TABLE = ((0x00, 0), (0x01, 1), (0x7E, 126), (0x7F, 127), (0x80, -128), (0x81, -127),
              (0xFE, -2), (0xFF, -1))


def test_die_temperature_follows_the_datasheet_tables():
    for code, deg in TINT_TABLE:
        assert m.die_temp_x16(code, 0) == 16 * deg
    # DS "Temperature Fraction (TFRAC)": 0.0625 degC increments, added (always positive)
    assert m.die_temp_x16(0x20, 0x01) == 32 * 16 + 1  # 32.0625 degC
    assert m.die_temp_x16(0xFF, 0x08) == -8  # -1 + 0.5 = -0.5 degC
    assert m.die_temp_x16(0x21, 0xF3) == 33 * 16 + 3  # TFRAC bits 7:4 are not data


def test_die_temperature_is_exact_for_every_register_pair():
    for tint in range(256):
        signed = tint - 256 if tint >= 128 else tint
        for tfrac in range(16):
            assert m.die_temp_x16(tint, tfrac) / 16 == signed + tfrac * 0.0625


class _FakeBus:
    """Register file of a MAX30102 as I2C transactions see it (no timing)."""

    def __init__(self):
        self.regs = bytearray(256)
        self.log = []

    def readfrom_mem_into(self, addr, reg, buf):
        self.log.append(("r", addr, reg, len(buf)))
        for i in range(len(buf)):
            buf[i] = self.regs[reg + i]

    def writeto_mem(self, addr, reg, data):
        self.log.append(("w", addr, reg, bytes(data)))
        for i in range(len(data)):
            self.regs[reg + i] = data[i]


def test_temperature_start_then_read_on_a_later_tick_at_register_level():
    bus = _FakeBus()
    d = m.MAX30102(bus)
    d.start_temperature()
    assert bus.log == [("w", 0x57, 0x21, b"\x01")]  # DIE_TEMP_CONFIG.TEMP_EN
    # converting: TEMP_EN still set -> not ready, one 3-byte burst 0x1F..0x21, nothing else
    assert d.read_temperature_x16() is None
    assert bus.log[-1] == ("r", 0x57, 0x1F, 3) and len(bus.log) == 2
    bus.regs[0x1F], bus.regs[0x20], bus.regs[0x21] = 0x20, 0x0C, 0x00  # done: 32.75 degC
    assert d.read_temperature_x16() == 32 * 16 + 12
    assert d.read_temperature_c() == 32.75
    bus.regs[0x1F], bus.regs[0x20] = 0xF6, 0x04  # -10 + 0.25
    assert d.read_temperature_c() == -9.75
    assert all(e[0] == "r" for e in bus.log[1:])  # reading never restarts a conversion
