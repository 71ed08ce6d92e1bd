"""CPU cost of the PPG pipeline + arousal + breathing rate under MicroPython (per simulated s).

Usage: python tests/bench/bench_pipeline_cpu.py [--fs 50] [--minutes 10]
Feeds a synthetic 60-bpm pulse (raw counts, red + IR, FIFO reads of 8 samples) through
PPGPipeline, drains beats into ArousalEstimator and closes 30-s epochs; prints us/sample and
ms of CPU per simulated second (target <= 1 ms at 50 Hz).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

SCRIPT = """
import array, time, math
from nsdev.core.ppg import PPGPipeline
from nsdev.core.arousal import ArousalEstimator
from nsdev.core.resp import PPGBreathing
FS = %(fs)d
N = FS * 60 * %(minutes)d
# One pulse period of samples (raw counts: DC 120000, AC dip 1500), precomputed.
per = FS
wave = array.array('i', [0] * per)
for i in range(per):
    ph = i / per
    v = math.exp(-((ph - 0.25) / 0.08) ** 2) + 0.35 * math.exp(-((ph - 0.55) / 0.1) ** 2)
    wave[i] = 120000 - int(1500 * v)
red = array.array('i', [0] * 8)
ir = array.array('i', [0] * 8)
pipe = PPGPipeline(FS)
est = ArousalEstimator()
resp = PPGBreathing()
t_resp = 0
out = array.array('i', [0] * 4)
k = 0
t_feed = 0
t0 = time.ticks_us()
done = 0
nb = 0
while done < N:
    for j in range(8):
        ir[j] = wave[k]
        red[j] = wave[k] - 30000
        k += 1
        if k >= per:
            k = 0
    a = time.ticks_us()
    pipe.feed(red, ir, 8)
    b = time.ticks_us()
    resp.add_samples(pipe.time_ms(), ir, 8)
    t_resp += time.ticks_diff(time.ticks_us(), b)
    while pipe.pop_beat(out):
        nb += 1
        est.add_beat(out[0], out[1], out[2], out[3])
        b = time.ticks_us()
        resp.add_beat(out[0], out[1], out[2], out[3])
        t_resp += time.ticks_diff(time.ticks_us(), b)
    t_feed += time.ticks_diff(time.ticks_us(), a)
    done += 8
    if done %% (30 * FS) < 8:
        a = time.ticks_us()
        ep = pipe.close_epoch()
        est.close_epoch()
        b = time.ticks_us()
        resp.estimate(pipe.time_ms(), ep.hr_bpm)
        t_resp += time.ticks_diff(time.ticks_us(), b)
        t_feed += time.ticks_diff(time.ticks_us(), a)
sim_s = N / FS
print("samples", N, "beats", nb, "pipeline_us", t_feed)
print("us_per_sample %%.2f" %% (t_feed / N))
print("ms_cpu_per_sim_s %%.3f" %% (t_feed / 1000 / sim_s))
print("of which breathing rate (PPGBreathing) ms_cpu_per_sim_s %%.3f" %% (t_resp / 1000 / sim_s))
"""


def main() -> int:
    from nightstand import paths

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fs", type=int, default=50)
    ap.add_argument("--minutes", type=int, default=10)
    a = ap.parse_args()
    script = SCRIPT % {"fs": a.fs, "minutes": a.minutes}
    proc = subprocess.run(
        [paths.micropython_bin(), "-X", "heapsize=128K", "-c", script],
        env={"MICROPYPATH": f"{ROOT / 'firmware'}:.frozen"}, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr)
        return 1
    print(f"PPG pipeline + arousal + breathing rate under MicroPython, fs {a.fs} Hz, "
          f"{a.minutes} simulated min, FIFO reads of 8 samples (red + IR)")
    print(proc.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
