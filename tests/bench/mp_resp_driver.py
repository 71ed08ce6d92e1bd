# MicroPython driver for the breathing-rate bench: nsdev.core.resp under the unix port.
# Usage: micropython mp_resp_driver.py IN.txt [beat-only]
# IN.txt lines: "B t_ms ibi_ms pwa flags" (a beat) or "Q now_ms" (estimate now).
# Prints "R now_ms rate|-" per query.
import sys

from nsdev.core.resp import BreathingRate


def main():
    beat_only = len(sys.argv) > 2 and sys.argv[2] == "beat-only"
    br = BreathingRate()
    with open(sys.argv[1]) as f:
        for line in f:
            p = line.split()
            if p[0] == "B":
                br.add_beat(int(p[1]), int(p[2]), None if beat_only else float(p[3]), int(p[4]))
            elif p[0] == "Q":
                v = br.estimate(int(p[1]))
                print("R", p[1], "-" if v is None else f"{v:.3f}")


main()
