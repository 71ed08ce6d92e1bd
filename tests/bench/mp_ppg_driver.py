# MicroPython driver for the accuracy benchmark: feeds a recording through PPGPipeline.
# Usage: micropython mp_ppg_driver.py IN.bin FS_HZ [CHUNK]
# IN.bin: little-endian uint32 IR counts, one per sample (< 2**24). Prints one
# line per beat "B t_ms ibi_ms pwa_ppm flags" and one per 30-s epoch "E <json>".
import array
import json
import sys

from nsdev.core.ppg import PPGPipeline


def main():
    path = sys.argv[1]
    fs = int(sys.argv[2])
    chunk = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    pipe = PPGPipeline(fs)
    buf = array.array("i", [0] * chunk)
    raw = bytearray(4 * chunk)
    out = array.array("i", [0] * 4)
    epoch_n = 30 * fs
    since = 0
    with open(path, "rb") as f:
        while True:
            k = f.readinto(raw)
            if not k:
                break
            n = k // 4
            for i in range(n):
                buf[i] = raw[4 * i] | (raw[4 * i + 1] << 8) | (raw[4 * i + 2] << 16)
            pipe.feed(None, buf, n)
            since += n
            while pipe.pop_beat(out):
                print("B", out[0], out[1], out[2], out[3])
            if since >= epoch_n:
                since -= epoch_n
                print("E", json.dumps(pipe.close_epoch().to_dict()))
    pipe.flush()
    while pipe.pop_beat(out):
        print("B", out[0], out[1], out[2], out[3])


main()
