"""A week of a delayed sleeper's mornings under "advance 15 min/day towards 07:00": the whole
firmware on the virtual board, synced every morning by `nightstand sync` (which pushes the
plan's step). Prints the device's schedule per day and the dawn its lamp actually gave."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host" / "sim"))

from plan_week import run_mornings  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_mornings(Path(tmp), 7)
    print("plan week: delayed sleeper (bedtime 01:30, wake 09:30), advance towards 07:00 "
          "by <= 15 min/day")
    print(f"{'morning':<12}{'bedtime':>9}{'wake':>7}{'dawn seen':>11}  -> next sync sets")
    for r in rows:
        print(f"{r['day']:<12}{r['bedtime']:>9}{r['wake']:>7}{r['dawn_seen'] or '-':>11}  -> "
              f"bedtime {r['next_bedtime']}, wake {r['next_wake']}")


if __name__ == "__main__":
    main()
