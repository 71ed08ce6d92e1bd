"""Benchmark: a whole night of the MAX30102 driver reading the virtual chip (no other firmware).

Usage: .venv/bin/python tests/bench/bench_vmax30102.py [--hours 8] [--fs 50]
Prints wall time, time inside the virtual chip, samples, and the MicroPython heap peak, for the
driver reading the FIFO every 200 ms under -X heapsize=128K.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conftest import TESTS, check, run_micropython  # noqa: E402
from nightstand import paths  # noqa: E402

SCRIPT = """
import time, world, array, micropython, gc
time.setup(1767225600, -1, 0)
time.progress_every_us = 1 << 60
import vmax30102, machine
from nsdev.drivers.max30102 import MAX30102
chip = vmax30102.VirtualMAX30102({{"stim": "night.f32", "stim_fs_hz": {fs}}}, ".")
bus = world.buses[0] = world.VirtualI2CBus(0)
bus.attach(chip)
d = MAX30102(machine.I2C(0))
d.setup()
red = array.array('i', [0] * 32)
ir = array.array('i', [0] * 32)
gc.collect()
t0 = time.real_ticks_us()
total = 0
end = {end_us}
while time.now_us < end:
    time.advance_us(200000)
    total += d.read_fifo(red, ir)
wall = time.real_ticks_diff(time.real_ticks_us(), t0)
print("samples", total, "lost", d.samples_lost)
print("wall_s %.3f chip_s %.3f" % (wall / 1e6, world.vhw_us / 1e6))
print("heap_peak", micropython.mem_peak() if hasattr(micropython, "mem_peak") else -1)
print("stats", chip.stats())
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--fs", type=float, default=50.0)
    a = ap.parse_args()
    import numpy as np

    n = int(a.hours * 3600 * a.fs)
    t = np.arange(n) / a.fs
    red = 150 + 5 * np.sin(2 * np.pi * 1.1 * t)
    ir = 250 + 8 * np.sin(2 * np.pi * 1.1 * t)
    amb = np.full(n, 20.0)
    with tempfile.TemporaryDirectory() as tmp:
        np.stack([red, ir, amb], axis=1).astype("<f4").tofile(Path(tmp) / "night.f32")
        script = Path(tmp) / "bench.py"
        script.write_text(SCRIPT.format(fs=a.fs, end_us=int(a.hours * 3600e6)))
        out = check(
            run_micropython(
                [str(script)], path=paths.micropython_path(TESTS), heapsize="128K", cwd=Path(tmp)
            )
        )
    print(f"MAX30102 driver + virtual chip, {a.hours:g} h at {a.fs:g} Hz stimulus:")
    print(out.strip())


if __name__ == "__main__":
    main()
