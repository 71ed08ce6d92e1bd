"""Virtual lamp channels + virtual button on the simulated board: the firmware's Lamp, Button and
LightController driven through the virtual machine.PWM/Pin on the virtual clock (MicroPython)."""

from __future__ import annotations

import json
import struct

from conftest import check

SCRIPT = r"""
import json
import world, machine, vlamp, vbutton, asyncio
from nsdev.compat import ticks_ms, ticks_diff
from nsdev.drivers.lamp import Lamp
from nsdev.drivers.button import Button
from nsdev.core.light import LightController

SIM = "{sim}"
warm = vlamp.VirtualLampChannel({{"name": "warm", "gpio": 32, "full_lux_at_eye": 130,
                                  "full_lux_at_sensor": 6.5, "log": "warm.bin"}}, SIM)
amber = vlamp.VirtualLampChannel({{"name": "amber", "gpio": 33, "full_lux_at_eye": 80,
                                   "full_lux_at_sensor": 4.0, "log": "amber.bin"}}, SIM)
world.pwm_sinks[32] = warm
world.pwm_sinks[33] = amber
# 2026-01-01T00:00Z; UTC offset 0; bedtime 01:00, wake 02:30 -> wind-down from 22:00 the day
# before, so the 3 h run covers wind-down end, night with a button press, dawn and wake.
btn = vbutton.VirtualButton({{"name": "button", "gpio": 27, "presses_s": [{press}],
                             "hold_ms": 200}})
world.pin_inputs[27] = btn
lamp = Lamp(machine.PWM(machine.Pin(32), freq=4000, duty_u16=0),
            machine.PWM(machine.Pin(33), freq=4000, duty_u16=0))
button = Button(machine.Pin(27, machine.Pin.IN, machine.Pin.PULL_UP))
ctrl = LightController({{"bedtime": "01:00", "wake": "02:30", "winddown_s": 3600,
                        "morning_hold_s": 600, "dawn_s": 1800}})
events = []

async def lamp_task():
    last = ticks_ms()
    next_ctrl = last
    while True:
        now = ticks_ms()
        dt = ticks_diff(now, last)
        last = now
        pressed = button.take()
        if pressed or ticks_diff(now, next_ctrl) >= 0:
            w, a, ev = ctrl.update(time.time() + 946684800, 0,
                                   room_lux=sum(f() for f in world.light_sources),
                                   pressed=pressed)
            for e in ev:
                events.append((time.now_us // 1000000, e[0]))
            lamp.set_target(w, a, 1000)
            next_ctrl = now + 1000
        wait = min(lamp.update(dt), max(1, ticks_diff(next_ctrl, now)))
        await asyncio.sleep_ms(wait)

async def main():
    t = asyncio.create_task(lamp_task())
    await asyncio.sleep(3 * 3600)
    t.cancel()

asyncio.run(main())
warm.finish()
amber.finish()
print(json.dumps({{"warm": warm.stats(), "amber": amber.stats(), "events": events,
                  "presses": button.presses}}))
"""


def test_night_on_the_virtual_board(mp_board, tmp_path):
    press_s = 3600 + 1200  # 01:20 UTC: night
    out = check(mp_board(SCRIPT.format(sim=str(tmp_path), press=press_s), timeout=120))
    res = json.loads(out.strip().splitlines()[-1])
    kinds = [k for t, k in res["events"]]
    assert res["presses"] == 1
    assert "night_light" in kinds and "evening_dose" in kinds
    w, a = res["warm"], res["amber"]
    # no visible per-second step, PWM carrier as chosen, near-dark lowest level
    assert w["max_step_lstar_per_s"] < 13 and a["max_step_lstar_per_s"] < 13
    assert w["min_freq_on_hz"] == 4000
    assert w["min_nonzero_pct"] < 0.1 and a["min_nonzero_pct"] < 0.1
    # hour 0 (wind-down end): dim; hour 1: night (only the amber night light); hour 2: dawn
    hw, ha = w["hourly_mean_lux_at_eye"], a["hourly_mean_lux_at_eye"]
    assert hw["0"] * 0.34 + ha.get("0", 0) * 0.02 <= 10.0
    assert hw.get("1", 0.0) == 0.0 or hw["1"] < 0.01 * 130
    assert 0 < ha["1"] * 0.02 <= 1.0
    assert hw["2"] > 20.0
    # the log: run-length records of per-second means
    data = (tmp_path / "warm.bin").read_bytes()
    recs = [struct.unpack_from("<IQ", data, i) for i in range(0, len(data), 12)]
    assert recs and recs[0][0] == 0
    assert all(recs[i + 1][0] > recs[i][0] for i in range(len(recs) - 1))
    # the night light: on at the press, off within its time-out (900 s + 60 s fade)
    arecs = [struct.unpack_from("<IQ", (tmp_path / "amber.bin").read_bytes(), i)
             for i in range(0, len((tmp_path / "amber.bin").read_bytes()), 12)]
    on = [s for s, q in arecs if q > 0 and s >= press_s]
    off_after = [s for s, q in arecs if q == 0 and s > press_s]
    assert on and on[0] <= press_s + 2
    assert off_after and off_after[0] <= press_s + 900 + 60 + 5
