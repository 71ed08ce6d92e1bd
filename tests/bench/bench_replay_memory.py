"""Peak memory of `nightstand replay`'s host side on long recordings (issue 15, item 12).

For 1 M and 10 M CSV rows (125 Hz: 2.2 h and 22 h), each stage runs in a fresh process and reports
its peak RSS (ru_maxrss): reading the CSV (streamed into float64 arrays), and reading plus
writing the replay stimulus (resampled to the device's rate). The firmware run itself is a
separate MicroPython process, not measured here.

Usage: .venv/bin/python tests/bench/bench_replay_memory.py [--rows 1000000 10000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FS_HZ = 125.0

CHILD = r"""
import resource, sys, time
from pathlib import Path
stage, csv_path, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from nightstand.replay import read_recording
from nsdev import config
from nightstand.sim.generate import write_ppg_stimulus_from_recording
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after the imports
t0 = time.perf_counter()
t, ir, red = read_recording(csv_path)
if stage == "stimulus":
    write_ppg_stimulus_from_recording(t, ir, red, out, float(config.defaults()["ppg_rate_hz"]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(t), base, peak, time.perf_counter() - t0)
"""


def write_csv(path: Path, rows: int) -> None:
    """A plausible PPG (pulse at 1.1 Hz on a DC level), written in blocks."""
    with open(path, "w") as f:
        f.write("time_s,ppg\n")
        block = 1_000_000
        for s in range(0, rows, block):
            i = np.arange(s, min(rows, s + block))
            t = i / FS_HZ
            x = 1000.0 + 20.0 * np.sin(2 * np.pi * 1.1 * t) + np.round(np.sin(i * 0.37), 2)
            np.savetxt(f, np.column_stack([t, x]), fmt=("%.3f", "%.2f"), delimiter=",")


def measure(stage: str, csv_path: Path, out: Path) -> tuple[int, float, float]:
    res = subprocess.run([sys.executable, "-c", CHILD, stage, str(csv_path), str(out)],
                         capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(res.stderr)
    n, base_kib, peak_kib, secs = res.stdout.split()
    return int(n), (int(peak_kib) - int(base_kib)) * 1024 / int(n), float(secs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = ap.parse_args()
    print(f"replay memory: CSV rows at {FS_HZ:g} Hz; peak RSS above the imports, per row")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            csv_path = Path(tmp) / f"rec{rows}.csv"
            t0 = time.perf_counter()
            write_csv(csv_path, rows)
            made = time.perf_counter() - t0
            size_mb = csv_path.stat().st_size / 1e6
            for stage in ("read", "stimulus"):
                out = Path(tmp) / f"out{rows}{stage}"
                n, per_row, secs = measure(stage, csv_path, out)
                print(f"  {rows:>10,d} rows ({size_mb:.0f} MB CSV, made in {made:.0f} s), "
                      f"{stage:<8}: {per_row:6.1f} B/row = {per_row * n / 2**20:7.1f} MiB peak, "
                      f"{secs:.1f} s")
            csv_path.unlink()


if __name__ == "__main__":
    main()
