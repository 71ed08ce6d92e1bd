"""`make bench`: the default night on the twin (32-bit, float32, firmware frozen in), memory as
on the ESP32.

Runs the night with the data heap at the ESP32's initial 56 KiB (MICROPY_GC_INITIAL_HEAP_SIZE for
CONFIG_IDF_TARGET_ESP32 in MicroPython v1.28.0's ports/esp32/mpconfigport.h) and, if that fails,
at the smallest 8-KiB step up that runs; prints for each: outcome, MemoryErrors in the console,
resets, the firmware's peak live data heap (module objects of the frozen code included, as on the
board) and the largest GC pause (one full collection at the per-minute heap samples, host time
on this PC; the ESP32's is longer by its speed factor). Skips with one line without a
built, current twin (the tests' own check, tests/conftest.py).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import twin_skip_reason  # noqa: E402
from nightstand.errors import UserError  # noqa: E402
from nightstand.sim import runner  # noqa: E402
from nightstand.sim.scenario import default_scenario  # noqa: E402
from nightstand.sim.session import simulate  # noqa: E402

ESP32_HEAP_KIB = 56
MAX_TRY_KIB = 128


def _run(kib: int, tmp: Path) -> tuple[str, float, float]:
    """-> ("ok" or "failed", peak live data heap KiB (nan if unknown), largest GC pause ms)."""
    out = tmp / f"night_{kib}k"
    peak = "n/a"
    peak_kib = float("nan")
    try:
        _gen, r = simulate(default_scenario(), out, heapsize=f"{kib}K", quiet=True, vm="twin")
        status = "ok"
        peak_kib = r.heap_peak / 1024
        peak = f"{peak_kib:.1f} KiB"
    except UserError as e:
        status = str(e).split(" (details")[0]
    stats = {}
    if (out / "sim_stats.json").exists():
        stats = json.loads((out / "sim_stats.json").read_text())
    console = (out / "console.log").read_text(errors="replace") if out.exists() else ""
    errors = console.count("MemoryError")
    if status == "ok" and errors:  # the night went on after resets (simulation.md: headroom)
        status = f"recorded, but only after {len(stats.get('resets', []))} reset(s)"
    print(f"  heap {kib:3d} KiB: {status[:120]}")
    print(f"      MemoryError x{errors}, resets {len(stats.get('resets', []))}, "
          f"data heap peak {peak}, largest GC pause "
          f"{stats.get('gc_pause_max_us', 0) / 1000:.1f} ms (host)")
    pause_ms = stats.get("gc_pause_max_us", 0) / 1000
    return ("ok" if status == "ok" and errors == 0 else "failed"), peak_kib, pause_ms


def main() -> int:
    reason = twin_skip_reason()
    if reason:
        print(f"twin benchmark skipped: {reason}")
        return 0
    print("nightstand twin benchmark (default scenario, firmware frozen, 32-bit float32)")
    with tempfile.TemporaryDirectory() as tmp:
        kib = ESP32_HEAP_KIB
        while kib <= MAX_TRY_KIB:
            outcome, peak_kib, pause_ms = _run(kib, Path(tmp))
            if outcome == "ok":
                break
            kib += 8
    if kib > MAX_TRY_KIB:
        print(f"  no clean night up to {MAX_TRY_KIB} KiB")
        return 0
    verdict = "fits" if kib == ESP32_HEAP_KIB else f"does not fit yet: clean from {kib} KiB"
    print(f"  ESP32 initial heap {ESP32_HEAP_KIB} KiB: peak live data heap {peak_kib:.1f} KiB, "
          f"largest GC pause {pause_ms:.1f} ms (host); {verdict} "
          f"(twin default {runner.TWIN_HEAPSIZE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
