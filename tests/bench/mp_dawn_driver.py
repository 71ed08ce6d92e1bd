# MicroPython driver for the smart-dawn bench: beats -> the firmware's beat-only arousal path and
# per-epoch HR -> nsdev.core.smartdawn.SmartDawn, as the device would run them.
# Usage: micropython mp_dawn_driver.py IN.txt N_EPOCHS WAKE_S WINDOW_S
# IN.txt: "t_ms ibi_ms flags" per beat (ibi 0: none). Prints "S start_s reason" once.
import sys

from nsdev.core.arousal import ArousalEstimator
from nsdev.core.smartdawn import SmartDawn

_EPOCH_MS = 30000


def main():
    n_epochs = int(sys.argv[2])
    sd = SmartDawn(int(sys.argv[3]), 1800, int(sys.argv[4]))
    est = ArousalEstimator()
    k = 0
    acc = [0, 0]  # sum of valid IBIs, count

    def close(k):
        score = est.close_epoch()
        hr = 60000.0 * acc[1] / acc[0] if acc[1] >= 5 else None
        acc[0] = acc[1] = 0
        if sd.update((k + 1) * 30, hr, score, 0):
            print("S", sd.started_s, sd.reason)

    with open(sys.argv[1]) as f:
        for line in f:
            p = line.split()
            t_ms, ibi, q = int(p[0]), int(p[1]), int(p[2])
            while k < n_epochs and t_ms >= (k + 1) * _EPOCH_MS:
                close(k)
                k += 1
            if ibi <= 0:
                continue
            est.add_beat(t_ms, ibi, None, q)
            if q == 0 and 273 <= ibi <= 2200:
                acc[0] += ibi
                acc[1] += 1
    while k < n_epochs:
        close(k)
        k += 1


main()
