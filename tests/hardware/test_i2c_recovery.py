"""I2C bus clear (UM10204 sec. 3.1.16) in the board layer, on the virtual bus with a slave that
holds SDA low: the real firmware board module under MicroPython with the virtual `machine`."""

from __future__ import annotations

import json

from conftest import check

PRELUDE = r"""
import errno, json, world, machine
from nsdev import board as B, pinmap

class Chip(world.VirtualChip):
    addr = 0x57
    def read(self, reg, buf):
        for i in range(len(buf)):
            buf[i] = 0x15
    def write(self, reg, data):
        pass

bus = world.buses[0] = world.VirtualI2CBus(0)
bus.attach(Chip())
bus.attach_lines(pinmap.I2C_SDA, pinmap.I2C_SCL)

def probe(i2c):
    try:
        return i2c.readfrom_mem(0x57, 0xFF, 1)[0]
    except OSError as e:
        return -e.args[0]
"""


def _run(mp_board, body: str) -> dict:
    out = check(mp_board(PRELUDE + body))
    return json.loads(out.strip().splitlines()[-1])


def test_boot_clocks_a_stuck_sda_free_then_stops(mp_board) -> None:
    res = _run(mp_board, r"""
out = {}
for n in (1, 3, 9):
    bus.hang_sda(n)
    bus.scl_pulses = bus.stops = 0
    before = probe(machine.I2C(0, scl=machine.Pin(pinmap.I2C_SCL),
                               sda=machine.Pin(pinmap.I2C_SDA)))
    b = B.Board()
    out[str(n)] = [before, b.i2c_last_clear, bus.scl_pulses, bus.stops, probe(b.i2c),
                   b.i2c_clears, bus.freq_hz]
print(json.dumps({"runs": out, "etimedout": errno.ETIMEDOUT}))
""")
    etimedout = res["etimedout"]
    for n in (1, 3, 9):
        before, result, pulses, stops, after, clears, freq = res["runs"][str(n)]
        assert before == -etimedout, "the fault must hang the bus before the clear"
        # clocks stop as soon as SDA is released; the STOP's own SCL rise is the +1
        assert result == n and pulses == n + 1
        assert stops == 1
        assert after == 0x15 and clears == 1
        assert freq == 100_000  # hardware/i2c.md: 100 kHz over the 1 m clip cable


def test_a_free_bus_gets_no_clocks_but_a_stop(mp_board) -> None:
    res = _run(mp_board, r"""
b = B.Board()
print(json.dumps([b.i2c_last_clear, bus.scl_pulses, bus.stops, probe(b.i2c), b.i2c_clears]))
""")
    assert res == [0, 1, 1, 0x15, 0]  # the one SCL rise is the STOP's


def test_clocks_without_a_stop_leave_the_bus_hung(mp_board) -> None:
    """The virtual slave insists on the STOP, so a recovery that skips it would fail here."""
    res = _run(mp_board, r"""
bus.hang_sda(2)
scl = machine.Pin(pinmap.I2C_SCL, machine.Pin.OPEN_DRAIN, value=1)
sda = machine.Pin(pinmap.I2C_SDA, machine.Pin.OPEN_DRAIN, value=1)
for _ in range(3):
    scl.value(0); scl.value(1)
released = sda.value()
i2c = machine.I2C(0, scl=machine.Pin(pinmap.I2C_SCL), sda=machine.Pin(pinmap.I2C_SDA))
print(json.dumps([released, probe(i2c), bus.stops, errno.ETIMEDOUT]))
""")
    released, probed, stops, etimedout = res
    assert released == 1 and stops == 0
    assert probed == -etimedout


def test_a_slave_that_never_lets_go_is_reported_and_retried(mp_board) -> None:
    """12 clocks needed: the first clear gives up after nine (SDA still low), the transfer
    times out, the driver's ETIMEDOUT makes the board clear again, and the bus comes back."""
    res = _run(mp_board, r"""
bus.hang_sda(12)
b = B.Board()
first = [b.i2c_last_clear, bus.scl_pulses, probe(b.i2c)]
try:
    b.i2c.readfrom_mem(0x57, 0xFF, 1)
    err = None
except OSError as e:
    err = e
retried = b.i2c_fault(err)
not_timeout = b.i2c_fault(OSError(errno.ENODEV))
print(json.dumps({"first": first, "retried": retried, "second": b.i2c_last_clear,
                  "pulses": bus.scl_pulses, "after": probe(b.i2c), "not_timeout": not_timeout,
                  "clears": b.i2c_clears, "etimedout": errno.ETIMEDOUT,
                  "stuck": B.I2C_CLEAR_SDA_STUCK}))
""")
    assert res["first"] == [res["stuck"], 9, -res["etimedout"]]
    assert res["retried"] is True and res["second"] == 3
    assert res["pulses"] == 9 + 3 + 1  # no STOP after the first, failed clear
    assert res["after"] == 0x15 and res["clears"] == 2
    assert res["not_timeout"] is False  # a NACK (absent chip) is not a hung bus


def test_a_hang_at_run_time_is_cleared_after_the_driver_times_out(mp_board) -> None:
    """The MAX30102 driver keeps the errno, so the app's fault path (board.i2c_fault) sees
    ETIMEDOUT and clears the bus; the re-created driver then works."""
    res = _run(mp_board, r"""
b = B.Board()
bus.hang_sda(5)
try:
    b.i2c.readfrom_mem(0x57, 0x00, 1)
    code = 0
except OSError as e:
    code = e.args[0]
    b.i2c_fault(e)
print(json.dumps([code, errno.ETIMEDOUT, b.i2c_last_clear, probe(b.i2c), bus.hung]))
""")
    code, etimedout, cleared, after, hung = res
    assert code == etimedout and cleared == 5 and after == 0x15 and hung is False


APP_SCRIPT = r"""
import json, struct, asyncio, world, machine, vmax30102
from nsdev import pinmap
time.progress_every_us = 1 << 60
with open('c.f32', 'wb') as f:
    for k in range(3000):
        f.write(struct.pack('<fff', 64.0, 32.0, 0.0))
bus = world.buses[0] = world.VirtualI2CBus(0)
bus.attach(vmax30102.VirtualMAX30102({'stim': 'c.f32', 'stim_fs_hz': 50, 'noise_counts': 0},
                                     '.'))
bus.attach_lines(pinmap.I2C_SDA, pinmap.I2C_SCL)
from nsdev.board import Board
from nsdev.app import App
app = App(Board())

async def main():
    task = asyncio.create_task(app.ppg_task())
    await asyncio.sleep_ms(3000)
    before = app.board.i2c_clears
    bus.hang_sda(6)  # the clip stops mid-read with SDA low
    await asyncio.sleep_ms(8000)
    task.cancel()
    return before

before = asyncio.run(main())
print(json.dumps({"before": before, "after": app.board.i2c_clears, "hung": bus.hung,
                  "last": app.board.i2c_last_clear, "state": app.ppg_health.state,
                  "errors": app.ppg_health.errors, "dc_ir": app.pipe.dc_ir_counts()}))
"""


def test_the_app_clears_a_bus_hung_while_it_runs(mp_board) -> None:
    """The whole path: the PPG task's read times out, the app's fault handler has the board
    clock the bus free, the driver is re-created and the PPG runs again."""
    out = check(mp_board(APP_SCRIPT, heapsize="2M"))
    res = json.loads(out.strip().splitlines()[-1])
    assert res["before"] == 0 and res["after"] == 1 and res["last"] == 6
    assert res["hung"] is False
    assert res["errors"] >= 1 and res["state"] == 0  # faulted once, healthy again
    assert res["dc_ir"] > 0
