"""Heap taken by importing the firmware (module objects, their globals, and on the unix port the
loaded bytecode), and what one more module costs: the price of splitting a module.

Runs the firmware as .mpy under the MicroPython unix port (64-bit: words are twice the ESP32's).
On the ESP32 the code is frozen into flash, so bytecode costs no heap there, but every module
object and its globals dict still does. Figures and history: docs/architecture.md.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from nightstand import paths
from nightstand.sim.runner import compile_tree

PROBE = """
import gc, sys
gc.collect()
a = gc.mem_alloc()
import nsdev.app
gc.collect()
b = gc.mem_alloc()
mods = [m for m in sys.modules if m.startswith("nsdev")]
n_globals = sum(len(sys.modules[m].__dict__) for m in mods)
gc.collect()
c = gc.mem_alloc()
for i in range(%(k)d):
    __import__("empty%%d" %% i)
gc.collect()
d = gc.mem_alloc()
print(b - a, len(mods), n_globals, (d - c) // %(k)d)
"""
K = 20  # empty modules imported to measure the cost of one module object


def measure() -> tuple[int, int, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp)
        compile_tree(paths.FIRMWARE_DIR, code / "firmware")
        empty = code / "empty_src"
        empty.mkdir()
        for i in range(K):
            (empty / f"empty{i}.py").write_text("X = 1\n")
        compile_tree(empty, code / "empty")
        probe = code / "probe.py"
        probe.write_text(PROBE % {"k": K})
        proc = subprocess.run(
            [paths.micropython_bin(), "-X", "heapsize=4M", str(probe)],
            env={"MICROPYPATH": f"{code / 'firmware'}:{code / 'empty'}:.frozen"},
            capture_output=True, text=True, timeout=120, check=True)
    total, n_mods, n_globals, per_module = (int(x) for x in proc.stdout.split())
    return total, n_mods, n_globals, per_module


def main() -> int:
    total, n_mods, n_globals, per_module = measure()
    print("firmware import heap (MicroPython unix port, 64-bit, .mpy)")
    print(f"  import nsdev.app              {total / 1024:.1f} KiB (bytecode + module objects)")
    print(f"  nsdev modules loaded          {n_mods} ({n_globals} globals in all)")
    print(f"  one more (empty) module       {per_module} bytes on this port "
          f"(~{per_module // 2} bytes with the ESP32's 32-bit words)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
