"""`make bench`: simulate the default night and print the simulator's three figures.

simulated/wall time ratio (target >= 480x: an 8-h night in <= 60 s), firmware CPU per simulated
second (MicroPython process time minus time inside virtual hardware; the scenario generator runs
before and is not counted), and the firmware's peak live data heap, run with a 128 KiB data budget
(-X heapsize = measured code + virtual board + 128K; see docs/simulation.md).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from nightstand.sim.scenario import default_scenario
from nightstand.sim.session import simulate


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        gen, r = simulate(default_scenario(), Path(tmp) / "night", quiet=True)
        total = time.perf_counter() - t0
    print("nightstand simulator benchmark (default scenario, firmware under micropython)")
    print(f"  simulated night              {r.sim_s / 3600:.2f} h")
    print(f"  wall time (simulation)       {r.wall_s:.1f} s   (+ generator etc.: {total:.1f} s)")
    print(f"  simulated / wall time        {r.speedup:.0f}x   (target >= 480x)")
    print(f"  firmware CPU per sim second  {1000 * r.firmware_cpu_s / r.sim_s:.3f} ms"
          f"   (virtual hardware excluded: {1000 * r.vhw_s / r.sim_s:.3f} ms)")
    print(f"  firmware data heap peak      {r.heap_peak / 1024:.1f} KiB live after GC"
          f"   (budget 128 KiB; code + virtual board {r.heap_base / 1024:.0f} KiB not counted)")
    print(f"  board resets                 {len(r.resets)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
