"""The clip temperature in the real App on the virtual board (MicroPython): one MAX30102
die-temperature conversion per epoch, started on one poll and read on a later one by the ppg
task; a conversion that never finishes costs the epoch's value, never the PPG."""

from __future__ import annotations

import json

from conftest import check

SCRIPT = r"""
import json, struct, asyncio, world, machine, vmax30102
time.progress_every_us = 1 << 60
with open('c.f32', 'wb') as f:
    for k in range(2000):
        f.write(struct.pack('<fff', 64.0, 16.0, 0.0))
chip = vmax30102.VirtualMAX30102({'stim': 'c.f32', 'stim_fs_hz': 50, 'noise_counts': 0,
                                  'die_temp_c': 33.25, 'temp_stuck': @STUCK@}, '.')
bus = world.buses[0] = world.VirtualI2CBus(0)
bus.attach(chip)
from nsdev.board import Board
from nsdev.app import App
app = App(Board())
out = {}

async def main():
    task = asyncio.create_task(app.ppg_task())
    await asyncio.sleep_ms(3000)
    out['x16'] = app._clip_x16
    out['conversions'] = chip.temp_conversions
    app._clip_x16 = None  # what closing the epoch does: the next epoch wants its conversion
    chip.die_temp_c = -1.5
    await asyncio.sleep_ms(3000)
    out['x16_next'] = app._clip_x16
    out['conversions_next'] = chip.temp_conversions
    out['pipe_ms'] = app.pipe.time_ms()
    task.cancel()

asyncio.run(main())
out['timeouts'] = app.perf['clip_timeouts']
print(json.dumps(out))
"""


def _run(mp_board, stuck: bool) -> dict:
    out = check(mp_board(SCRIPT.replace("@STUCK@", str(stuck)), heapsize="2M"))
    return json.loads(out.strip().splitlines()[-1])


def test_one_conversion_per_epoch_read_on_a_later_poll(mp_board) -> None:
    r = _run(mp_board, False)
    assert r["x16"] == 33 * 16 + 4  # 33.25 degC in 1/16 degC
    assert r["conversions"] == 1  # not one per poll: the value is kept until the epoch closes
    assert r["x16_next"] == -24 and r["conversions_next"] == 2  # -1.5 degC
    assert r["timeouts"] == 0
    assert r["pipe_ms"] >= 5500  # the PPG ran on without a restart


def test_a_conversion_that_never_finishes_costs_the_value_not_the_ppg(mp_board) -> None:
    r = _run(mp_board, True)
    assert r["x16"] == -32768 and r["x16_next"] == -32768  # gave up: unknown in the epoch
    assert r["timeouts"] == 2 and r["conversions_next"] == 2
    assert r["pipe_ms"] >= 5500  # the driver was not re-created (that restarts the pipeline)
