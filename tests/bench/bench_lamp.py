"""Lamp benchmark (CPython): >= 1000 random simulated evenings and nights through the unchanged
LightController + Lamp driver (fake PWM, 4 kHz / 14-bit), frame by frame on a virtual clock.

Prints: max lamp melanopic EDI in wind-down and at night, visible steps (> 0.5 L* between two
driver updates), largest step, lowest non-zero output as % of full scale, invariant violations.
Usage: python tests/bench/bench_lamp.py [--nights 1000] [--seed 1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware"))

from light_sim import simulate  # noqa: E402
from nsdev.core.light import PHASE_NIGHT, PHASE_WIND_DOWN  # noqa: E402

BASE = 1774656000  # 2026-03-28T00:00Z (EU DST starts the next night)


def one_night(seed: int) -> dict:
    r = random.Random(seed)
    bed = r.randrange(20 * 60, 24 * 60, 5)
    wake = (bed + r.randrange(6 * 60, 10 * 60, 5)) % (24 * 60)
    cfg = {
        "bedtime": f"{bed // 60:02d}:{bed % 60:02d}",
        "wake": f"{wake // 60:02d}:{wake % 60:02d}",
        "dawn_s": r.choice([900, 1200, 1800, 2700]),
        "warm_full_lux_at_eye": r.uniform(30, 400),
        "amber_full_lux_at_eye": r.uniform(10, 200),
        "warm_der": r.uniform(0.24, 0.5),
        "amber_der": r.choice([0.02, 0.002]),
        "winddown_start_lux": r.uniform(5, 200),
        "winddown_end_lux": r.uniform(0.5, 10),
        "night_light_lux": r.uniform(0.5, 60),
        "night_light_s": r.randrange(60, 1800),
        "dawn_peak_lux": r.uniform(50, 250),
    }
    night_s = ((wake - bed) % 1440) * 60
    dur = 3 * 3600 + 1200 + night_s + 600
    presses = sorted(r.randrange(0, dur) for _ in range(r.randrange(0, 5)))
    resets = sorted(r.randrange(0, dur) for _ in range(r.choice([0, 0, 0, 1, 2])))
    room_level = r.choice([0.0, 0.5, 3.0, 20.0, 150.0])
    aroused = r.random() < 0.3
    dst = r.random() < 0.5

    def offset(t: int) -> int:
        return 3600 + (3600 if dst and t >= BASE + 25 * 3600 else 0)

    t0 = BASE + bed * 60 - 3600 - 3 * 3600 - 1200
    res = simulate(cfg, t0, dur, offset, presses=presses, resets=resets,
                   room=lambda t: room_level * (1.0 if (t // 1800) % 2 else 0.2),
                   arousal=(lambda t: 0.8) if aroused else (lambda t: 0.1),
                   hr=lambda t: 72.0 - 4.0 * ((t // 300) % 3))
    return {
        "wd": res["max_mel"][PHASE_WIND_DOWN], "night": res["max_mel"][PHASE_NIGHT],
        "steps": res["visible_steps"], "max_step": res["max_step_lstar"],
        "min_nz": res["min_nonzero_frac"], "viol": len(res["violations"]),
        "frames": res["frames"],
        "sessions": sum(1 for e in res["events"] if e[1] == "breathing_start"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nights", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    t = time.time()
    seeds = [a.seed * 1000003 + i for i in range(a.nights)]
    with Pool(a.jobs) as p:
        rows = p.map(one_night, seeds, chunksize=8)
    min_nz = min(x["min_nz"] for x in rows if x["min_nz"] is not None)
    frames = sum(x["frames"] for x in rows)
    print(f"lamp bench: {len(rows)} simulated evenings+nights (CPython, controller + driver, "
          "4 kHz/14-bit)")
    print(f"  max lamp mEDI in wind-down : {max(x['wd'] for x in rows):.3f} lx (limit 10)")
    print(f"  max lamp mEDI at night     : {max(x['night'] for x in rows):.3f} lx (limit 1)")
    print(f"  visible steps (>0.5 L*)    : {sum(x['steps'] for x in rows)}")
    print(f"  largest step between frames: {max(x['max_step'] for x in rows):.3f} L*")
    print(f"  lowest non-zero output     : {min_nz * 100:.5f} % of full scale")
    print(f"  invariant violations       : {sum(x['viol'] for x in rows)}")
    print(f"  breathing sessions         : {sum(x['sessions'] for x in rows)}")
    print(f"  driver frames              : {frames} ({frames / len(rows):.0f} per night)")
    print(f"  wall time                  : {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
