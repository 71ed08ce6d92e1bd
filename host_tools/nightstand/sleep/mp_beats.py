# Runs under MicroPython (not imported by the host): a beat list through the firmware's own
# beat-only arousal path, nsdev.core.arousal.ArousalEstimator, exactly as nsdev.app feeds it.
# Usage: micropython mp_beats.py IN.txt N_EPOCHS
# IN.txt: one beat per line, "t_ms ibi_ms flags" (ibi_ms 0 for the first beat after a gap).
# Prints "A onset_ms duration_ms strength_permille" per arousal event as the device records it,
# and "E k score_permille" for every 30-s epoch k (-1: no valid beats, the device's None).
import sys

from nsdev.core.arousal import ArousalEstimator
from nsdev.core.vocab import EPOCH_S

_EPOCH_MS = EPOCH_S * 1000


def main():
    path = sys.argv[1]
    n_epochs = int(sys.argv[2])
    est = ArousalEstimator()
    k = 0

    def close(k):
        s = est.close_epoch()
        print("E", k, -1 if s is None else int(s * 1000))

    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 3:
                continue
            t_ms = int(p[0])
            while k < n_epochs and t_ms >= (k + 1) * _EPOCH_MS:
                close(k)
                k += 1
            ibi = int(p[1])
            if ibi <= 0:
                continue  # no interval to the previous beat: the device has none either
            ev = est.add_beat(t_ms, ibi, None, int(p[2]))
            if ev is not None:
                print("A", ev.onset_ms, ev.duration_ms, int(ev.strength * 1000))
    while k < n_epochs:
        close(k)
        k += 1


main()
