"""Benchmark: one 8-h night's report render time (target <= 2 s) and the trends page over 365
nights (target <= 10 s). Synthetic nights are written by the firmware's Recorder into a temporary
store. Usage: .venv/bin/python tests/bench/bench_report.py [--nights 365]"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from nightstand.report import write_night_report, write_trends_report
from nightstand.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))  # tests/host/synth.py
from synth import SynthNight, make_night, restamp, store_night  # noqa: E402

START = 1735750800  # 2025-01-01 17:00 UTC (18:00 local), a multiple of 30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nights", type=int, default=365)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "n.sqlite3")
        t = time.perf_counter()
        full = SynthNight(start_unix_s=START, epochs=960, evening_epochs=240, hr_bpm=58,
                          hr_step_bpm=2, contact_off=((500, 530),), motion=(600, 601),
                          arousals=tuple((300 + 40 * i, 12000, 500) for i in range(12)),
                          wind_down=((60, 600),))
        row = store_night(store, make_night(full), full.device_id, 1)
        print(f"one 8-h night with beats written and stored in {time.perf_counter() - t:.2f} s")
        # a year of nights without beats (trends read epochs and events only): 8 templates of
        # different heart rate and bedtime, re-stamped with each night's start time
        t = time.perf_counter()
        templates = [make_night(SynthNight(start_unix_s=START, epochs=960,
                                           evening_epochs=200 + 10 * k, hr_bpm=54 + k,
                                           arousals=((400 + 20 * k, 10000, 500),),
                                           beats=False)) for k in range(8)]
        for i in range(1, args.nights):
            start = START + 86400 * i + 60 * ((i * 7) % 23)
            store_night(store, restamp(templates[(i * 5) % 8], start, i + 1), "synth-01", i + 1)
        print(f"{args.nights} nights generated and stored in {time.perf_counter() - t:.1f} s")
        out = Path(tmp) / "out"
        write_night_report(store, row, out)  # warm-up: imports, font cache
        times = []
        for _ in range(3):
            t = time.perf_counter()
            write_night_report(store, row, out)
            times.append(time.perf_counter() - t)
        print(f"night report (8 h, 960 epochs, beats): best {min(times):.2f} s, "
              f"median {sorted(times)[1]:.2f} s (target <= 2 s)")
        from nightstand import journal

        journal.add_entry(store, "2025-07-01", "started magnesium", "supplement")
        t = time.perf_counter()
        path = write_trends_report(store, out)
        dt = time.perf_counter() - t
        print(f"trends over {args.nights} nights with a journal comparison: {dt:.2f} s "
              f"(target <= 10 s); page {path.stat().st_size / 1024:.0f} KiB")
        store.close()


if __name__ == "__main__":
    main()
