"""BME680 driver against the register-level virtual BME680 on the virtual board (virtual clock)."""

from __future__ import annotations

import json
import struct

from conftest import check

SETUP = """
import machine, vbme680
from nsdev.drivers import bme680
bus = world.buses[0] = world.VirtualI2CBus(0)
def make(spec, sim_dir="."):
    chip = vbme680.VirtualBME680(spec, sim_dir)
    bus.devices.clear()
    bus.attach(chip)
    return chip
i2c = machine.I2C(0)
"""


def _results(out: str) -> list[dict]:
    return [json.loads(line[2:]) for line in out.splitlines() if line.startswith("R ")]


def test_room_values_recovered_for_many_calibrations(mp_board):
    script = SETUP + """
import json
for seed in [None] + list(range(12)):
    spec = {"name": "bme680"}
    if seed is not None:
        spec["calib_seed"] = seed
    chip = make(spec)
    dev = bme680.BME680(i2c)  # default temp_offset_c -3.5 == the chip's default self-heating
    t0 = time.now_us
    time.sleep_ms(dev.start())
    assert dev.ready() and dev.read()
    print("R " + json.dumps({"seed": seed, "t": dev.temp_c, "chip_t": dev.chip_temp_c,
          "p": dev.pressure_hpa, "rh": dev.rh_pct, "gas": dev.gas_ohm, "st": dev.gas_status,
          "ctrl": chip.regs[0x74], "n": chip.measurements}))
"""
    rows = _results(check(mp_board(script)))
    assert len(rows) == 13
    for r in rows:
        assert abs(r["t"] - 21.0) < 0.05, r
        assert abs(r["chip_t"] - 24.5) < 0.05, r
        assert abs(r["p"] - 1013.25) < 0.1, r
        assert abs(r["rh"] - 45.0) < 0.1, r
        assert r["st"] == "ok" and abs(r["gas"] - 50000.0) < 0.01 * 50000.0, r
        assert r["ctrl"] & 3 == 0, r  # forced mode went back to sleep
        assert r["n"] == 1


def test_env_file_is_interpolated_on_the_virtual_clock(mp_board, tmp_path):
    rows = [
        (0.0, 18.0, 40.0, 1000.0, 20000.0, 0.0, 2700.0),
        (100.0, 22.0, 60.0, 1010.0, 200000.0, 5.0, 2700.0),
        (200.0, 22.0, 60.0, 1010.0, 200000.0, 5.0, 2700.0),
    ]
    (tmp_path / "env.f32").write_bytes(b"".join(struct.pack("<7f", *r) for r in rows))
    script = SETUP + """
import json
chip = make({"name": "bme680", "env": "env.f32", "self_heating_c": 4.0}, ".")
dev = bme680.BME680(i2c, temp_offset_c=-4.0, heater_c=None)
for at_s in (10, 50, 150, 400):
    time.sleep_ms(at_s * 1000 - time.now_us // 1000)
    time.sleep_ms(dev.start())
    assert dev.read()
    print("R " + json.dumps({"s": time.now_us / 1e6, "t": dev.temp_c, "rh": dev.rh_pct,
          "p": dev.pressure_hpa, "gas": dev.gas_ohm}))
"""
    got = _results(check(mp_board(script)))
    assert len(got) == 4
    for r in got:
        f = min(r["s"], 100.0) / 100.0
        assert abs(r["t"] - (18.0 + 4.0 * f)) < 0.05, r
        assert abs(r["rh"] - (40.0 + 20.0 * f)) < 0.15, r
        assert abs(r["p"] - (1000.0 + 10.0 * f)) < 0.1, r
        assert r["gas"] is None


def test_timing_not_ready_and_status_bits(mp_board):
    script = SETUP + """
chip = make({"name": "bme680"})
dev = bme680.BME680(i2c)
wait = dev.start()
print("wait", wait)
assert not dev.ready() and not dev.read()
assert chip.regs[0x74] & 3 == 1  # forced while measuring
time.sleep_ms(wait - 150)  # in the heater phase: gas_measuring + measuring
s = bytearray(1); i2c.readfrom_mem_into(0x77, 0x1D, s)
print("mid", s[0])
time.sleep_ms(149)  # 1 ms before the computed deadline may still be measuring
time.sleep_ms(1)
assert dev.ready() and dev.read()
first = dev.temp_c
# A new trigger clears new_data until it finishes.
dev.start()
assert not dev.ready()
print("ok", first)
"""
    out = check(mp_board(script))
    assert "wait 181" in out  # 33 ms TPH (8x/4x/2x) + 148 ms heater (gas_wait 0x65)
    mid = int(out.split("mid ")[1].split()[0])
    assert mid & 0x60 == 0x60 and not mid & 0x80
    assert "ok 21.0" in out


def test_heater_unstable_and_self_heating_visible(mp_board):
    script = SETUP + """
chip = make({"name": "bme680", "heater_min_ms": 500})
dev = bme680.BME680(i2c, temp_offset_c=0)
time.sleep_ms(dev.start()); dev.read()
print("status", dev.gas_status, dev.gas_ohm)
print("raw", dev.temp_c, dev.rh_pct)
"""
    out = check(mp_board(script))
    assert "status heater unstable None" in out
    t, rh = (float(x) for x in out.split("raw ")[1].split()[:2])
    assert abs(t - 24.5) < 0.05  # 3.5 degC self-heating, uncorrected
    assert 35.0 < rh < 38.0  # same water at 24.5 degC: ~36.4 %RH


def test_chip_id_error_and_nack(mp_board):
    script = SETUP + """
make({"name": "bme280-not-680", "chip_id": 0x60})
try:
    bme680.BME680(i2c)
except OSError as e:
    print("idErr", e)
chip = make({"name": "bme680"})
bus.fail[0x77] = 1
try:
    bme680.BME680(i2c)
except OSError as e:
    print("nack", e.args[0])
dev = bme680.BME680(i2c)
dev.start()
bus.fail[0x77] = 1
try:
    dev.ready()
except OSError as e:
    print("nack2", e.args[0])
time.sleep_ms(200)
print("after", dev.read())
chip.present = False
try:
    dev.start()
except OSError as e:
    print("gone", e.args[0])
"""
    out = check(mp_board(script))
    assert "idErr" in out and "chip id 0x60" in out
    assert "nack 19" in out and "nack2 19" in out and "gone 19" in out
    assert "after True" in out


def test_soft_reset_and_cost(mp_board):
    script = SETUP + """
chip = make({"name": "bme680"})
dev = bme680.BME680(i2c)
assert chip.resets == 1
i2c.writeto_mem(0x77, 0x72, b"\\x05")
i2c.writeto_mem(0x77, 0xE0, b"\\xb6")
assert chip.regs[0x72] == 0 and chip.regs[0xD0] == 0x61 and chip.regs[0x8A] != 0
# Interleaved burst write (register, value pairs) as on the real chip.
i2c.writeto(0x77, bytes([0x72, 0x02, 0x75, 0x08]))
assert chip.regs[0x72] == 2 and chip.regs[0x75] == 8
dev.configure()
world.vhw_us = 0
for i in range(20):
    time.sleep_ms(dev.start()); dev.read()
print("vhw_us_per_measurement", world.vhw_us // 20)
print(chip.stats())
"""
    out = check(mp_board(script))
    assert "'bme680_measurements': 20" in out
    print(out)
