"""The device's hardware calibration applied where it matters, in the real App on the virtual
board: swap_red_ir where the MAX30102 samples are read, the lamp-dependent BME680 offset in the
environment task, and the lamp's heat integrated by the lamp task (MicroPython)."""

from __future__ import annotations

import json

from conftest import check

SCRIPT = r"""
import json, struct, asyncio, world, machine, vmax30102, vbme680
time.progress_every_us = 1 << 60
with open('c.f32', 'wb') as f:
    for k in range(2000):  # red 64 nA/mA, IR 16 nA/mA: red reads 4x IR at equal LED currents
        f.write(struct.pack('<fff', 64.0, 16.0, 0.0))
bus = world.buses[0] = world.VirtualI2CBus(0)
bus.attach(vmax30102.VirtualMAX30102({'stim': 'c.f32', 'stim_fs_hz': 50, 'noise_counts': 0,
                                      'swap_red_ir': @CHIP_SWAP@}, '.'))
bus.attach(vbme680.VirtualBME680({'self_heating_c': 3.5}, '.'))
with open('config.json', 'w') as f:
    json.dump({'swap_red_ir': @CFG_SWAP@, 'temp_offset_c': -3.5, 'temp_offset_lamp_c': -2.0,
               'temp_lamp_tau_min': 1}, f)
from nsdev.board import Board
from nsdev.app import App
app = App(Board())
app.lamp_heat.fraction = @HEAT@

async def main():
    tasks = [asyncio.create_task(app.ppg_task()), asyncio.create_task(app.env_task())]
    await asyncio.sleep_ms(4000)
    temp = app.temp_c
    for t in tasks:
        t.cancel()
    return temp

temp = asyncio.run(main())
app.lamp.level = lambda ch: 1.0  # both channels at full for ten time constants (tau 1 min)
app._heat_update(0)
for s in range(1, 601):
    app._heat_update(s * 1000)
print(json.dumps({"red": app.pipe.dc_red_counts(), "ir": app.pipe.dc_ir_counts(),
                  "temp": temp, "heat": app.lamp_heat.fraction}))
"""


def _run(mp_board, chip_swap: bool, cfg_swap: bool, heat: float) -> dict:
    script = (SCRIPT.replace("@CHIP_SWAP@", str(chip_swap))
              .replace("@CFG_SWAP@", str(cfg_swap)).replace("@HEAT@", repr(heat)))
    out = check(mp_board(script, heapsize="2M"))
    return json.loads(out.strip().splitlines()[-1])


def test_swap_red_ir_is_applied_where_samples_are_read(mp_board) -> None:
    genuine = _run(mp_board, False, False, 0.0)
    clone_uncorrected = _run(mp_board, True, False, 0.0)
    clone_corrected = _run(mp_board, True, True, 0.0)
    assert genuine["red"] > 3 * genuine["ir"] > 0
    assert clone_uncorrected["ir"] > 3 * clone_uncorrected["red"] > 0  # the fault is visible
    assert clone_corrected["red"] > 3 * clone_corrected["ir"] > 0
    assert abs(clone_corrected["red"] - genuine["red"]) <= 0.02 * genuine["red"]


def test_bme680_offset_follows_the_lamp_heat(mp_board) -> None:
    # room 21.0 C (the virtual chip's default), chip 3.5 C above; offset -3.5 - 2.0 * heat
    cold = _run(mp_board, False, False, 0.0)
    warm = _run(mp_board, False, False, 0.5)
    assert abs(cold["temp"] - 21.0) < 0.1
    assert abs(warm["temp"] - 20.0) < 0.1
    # ten time constants (tau 1 min) at full power: the heat fraction has settled near 1
    assert 0.99 < cold["heat"] <= 1.0


LAMP_HEAT_SCRIPT = r"""
import json, asyncio, world, machine, vbme680, vlamp
from nsdev import compat
time.progress_every_us = 1 << 60
for gpio in (32, 33):
    world.pwm_sinks[gpio] = vlamp.VirtualLampChannel({'gpio': gpio}, '.')
bus = world.buses[0] = world.VirtualI2CBus(0)
bus.attach(vbme680.VirtualBME680({'self_heating_c': 3.5, 'lamp_heating_c': 2.0,
                                  'lamp_tau_s': 60, 'lamp_watts': {'32': 3.0, '33': 4.0}}, '.'))
with open('config.json', 'w') as f:
    json.dump({'temp_offset_c': -3.5, 'temp_offset_lamp_c': @K@, 'temp_lamp_tau_min': 1}, f)
from nsdev.board import Board
from nsdev.app import App
app = App(Board())
app.board.pwm_warm.duty_u16(65535)  # the lamp at full, as the lamp task would set it
app.board.pwm_amber.duty_u16(65535)
app.lamp.level = lambda ch: 1.0
temps = []

async def heat():
    while True:
        app._heat_update(compat.ticks_ms())
        await asyncio.sleep_ms(1000)

async def main():
    tasks = [asyncio.create_task(app.env_task()), asyncio.create_task(heat())]
    for _ in range(20):
        await asyncio.sleep_ms(30000)
        temps.append(app.temp_c)
    for t in tasks:
        t.cancel()

asyncio.run(main())
print(json.dumps(temps))
"""


def test_lamp_heat_is_compensated_end_to_end(mp_board) -> None:
    """The virtual BME680 warms with the virtual lamp's PWM (2 C at full, 1 min lag); the
    firmware's offset (temp_offset_lamp_c -2 C, same lag) keeps the room reading at 21 C while
    the uncorrected one (k = 0) drifts up to 23 C."""
    def run(k: float) -> list[float]:
        out = check(mp_board(LAMP_HEAT_SCRIPT.replace("@K@", repr(k)), heapsize="2M"))
        return json.loads(out.strip().splitlines()[-1])

    corrected, uncorrected = run(-2.0), run(0.0)
    assert all(abs(t - 21.0) < 0.25 for t in corrected), corrected
    assert uncorrected[-1] > 22.8 and uncorrected[0] < uncorrected[-1]
