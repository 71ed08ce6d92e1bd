"""Peak memory of `nightstand replay`'s host side on long recordings (issue 15, item 12).

For 1 M and 10 M CSV rows (125 Hz: 2.2 h and 22 h), each stage runs in a fresh process and reports
its peak RSS (ru_maxrss) above the imports:
- arrays:   `read_recording()`, the library call that returns the whole columns (16-24 B/row by
            design: the columns themselves);
- stimulus: what `replay` does before the firmware runs: the CSV streamed through
            `write_ppg_stimulus()` into ppg.f32 at the device's rate (flat in the length);
- replay:   (with --full) the whole `replay()`: stimulus, the firmware run (a separate
            MicroPython process, not counted) and decoding/writing its night.

Target: the stimulus (and replay) peak at 10 M rows within ~10-20 % of the 1 M one.

Usage: .venv/bin/python tests/bench/bench_replay_memory.py [--rows 1000000 10000000] [--full]
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
from nightstand import replay as rp
from nightstand.sim.generate import write_ppg_stimulus
from nsdev import config
with open(csv_path) as f:
    n = sum(1 for _ in f) - 1
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after the imports
t0 = time.perf_counter()
if stage == "arrays":
    assert len(rp.read_recording(csv_path)[0]) == n
elif stage == "stimulus":
    write_ppg_stimulus(rp.iter_recording(csv_path), out, float(config.defaults()["ppg_rate_hz"]))
else:
    rp.replay(csv_path, out, quiet=True)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(n, base, peak, time.perf_counter() - t0)
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
    """(rows, peak KiB above the imports, seconds) of one stage in a fresh process."""
    res = subprocess.run([sys.executable, "-c", CHILD, stage, str(csv_path), str(out)],
                         capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(res.stderr)
    n, base_kib, peak_kib, secs = res.stdout.split()
    return int(n), float(int(peak_kib) - int(base_kib)), float(secs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--full", action="store_true",
                    help="also the whole replay (runs the firmware over the whole recording)")
    args = ap.parse_args()
    stages = ["arrays", "stimulus"] + (["replay"] if args.full else [])
    print(f"replay memory: CSV rows at {FS_HZ:g} Hz; peak RSS above the imports (MiB, B/row)")
    peaks: dict[str, list[float]] = {s: [] for s in stages}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            csv_path = Path(tmp) / f"rec{rows}.csv"
            t0 = time.perf_counter()
            write_csv(csv_path, rows)
            made = time.perf_counter() - t0
            size_mb = csv_path.stat().st_size / 1e6
            for stage in stages:
                out = Path(tmp) / f"out{rows}{stage}"
                n, peak_kib, secs = measure(stage, csv_path, out)
                peaks[stage].append(peak_kib)
                print(f"  {rows:>10,d} rows ({size_mb:.0f} MB CSV, made in {made:.0f} s), "
                      f"{stage:<8}: {peak_kib / 1024:7.1f} MiB peak = "
                      f"{peak_kib * 1024 / n:6.1f} B/row, {secs:.1f} s")
            csv_path.unlink()
    if len(args.rows) > 1:
        for stage in stages[1:]:
            a, b = peaks[stage][0], peaks[stage][-1]
            print(f"  {stage}: {args.rows[-1]:,d} rows peak / {args.rows[0]:,d} rows peak = "
                  f"{b / max(a, 1.0):.2f} (target: flat, within ~1.1-1.2)")


if __name__ == "__main__":
    main()
