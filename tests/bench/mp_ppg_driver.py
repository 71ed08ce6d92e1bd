# MicroPython driver for the accuracy benchmark: a recording through PPGPipeline (+ arousal).
# Usage: micropython mp_ppg_driver.py IN.bin FS_HZ [CHANNELS]
# IN.bin: little-endian uint32 counts (< 2**24), one per sample (CHANNELS=1: IR only) or
# interleaved red, IR (CHANNELS=2). Prints "B t_ms ibi_ms pwa_ppm flags" per beat,
# "E <json>" per 30-s epoch and "A onset_ms duration_ms strength" per arousal event.
import array
import json
import sys

from nsdev.core.arousal import ArousalEstimator
from nsdev.core.ppg import PPGPipeline

_CHUNK = 8  # samples per FIFO read


def main():
    path = sys.argv[1]
    fs = int(sys.argv[2])
    ch = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    pipe = PPGPipeline(fs)
    est = ArousalEstimator()
    red = array.array("i", [0] * _CHUNK) if ch == 2 else None
    ir = array.array("i", [0] * _CHUNK)
    raw = bytearray(4 * ch * _CHUNK)
    out = array.array("i", [0] * 4)
    epoch_n = 30 * fs
    since = 0

    def drain():
        while pipe.pop_beat(out):
            print("B", out[0], out[1], out[2], out[3])
            ev = est.add_beat(out[0], out[1], out[2], out[3])
            if ev is not None:
                print("A", ev.onset_ms, ev.duration_ms, ev.strength)

    with open(path, "rb") as f:
        while True:
            k = f.readinto(raw)
            if not k:
                break
            n = k // (4 * ch)
            for i in range(n):
                j = 4 * ch * i
                if ch == 2:
                    red[i] = raw[j] | (raw[j + 1] << 8) | (raw[j + 2] << 16)
                    j += 4
                ir[i] = raw[j] | (raw[j + 1] << 8) | (raw[j + 2] << 16)
            pipe.feed(red, ir, n)
            since += n
            drain()
            if since >= epoch_n:
                since -= epoch_n
                ep = pipe.close_epoch().to_dict()
                ep["arousal_score"] = est.close_epoch()
                print("E", json.dumps(ep))
    pipe.flush()
    drain()


main()
