"""Flash benchmark: >= 1000 random power cuts on a littlefs virtual flash (MicroPython), bytes per
8-hour night, and how many 8-hour nights with beats fit on a 2 MB filesystem.
Usage: .venv/bin/python tests/bench/bench_flash.py [--cuts 1000] [--seed 1]"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import mp_plain_path, run_micropython  # noqa: E402
from nightstand import paths  # noqa: E402

# Records 8-hour nights (960 epochs, ~30k beats with sleep-like HRV) until the flash is full of
# unsynced nights; prints one JSON line per night.
NIGHTS_SCRIPT = r"""
import json, math, sys
import vflash
from nsdev.recorder import Recorder
from nsdev.core import vocab
dev = vflash.mount_flash(sys.argv[1], 2 * 1024 * 1024)
rec = Recorder("data", device_id="sim-0001", fw_version="0.1.0",
               sensor_config="ppg=max30102@100;env=bme680;light=veml7700")
x = 12345
def rnd(n):
    global x
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x % n
ibi = [0] * 80
pwa = [0] * 80
t0 = 1767304800
for night in range(int(sys.argv[2])):
    t = t0 + night * 86400
    nid = rec.start_night(t, 3600)
    tb = 0  # ms since night start of the next beat
    base = 1000
    for e in range(960):
        rec.add_epoch(t + 30 * e, hr_bpm=55 + rnd(100) / 10, rmssd_ms=35 + rnd(100) / 10,
                      sdnn_ms=50 + rnd(100) / 10, pwa_mean=1000 + rnd(100), spo2_pct=96.5,
                      sqi=0.93, arousal_score=rnd(300) / 1000, temp_c=20.1 + rnd(20) / 100,
                      rh_pct=44.0 + rnd(10) / 10, pressure_hpa=1012.0 + rnd(10) / 10,
                      gas_ohm=150000 + rnd(5000), lux=0.05, mel_edi_lx=0.01,
                      lamp_level=(0.0, 0.0))
        n = 0
        first = tb
        end_ms = (e + 1) * 30000
        while tb < end_ms:
            base += rnd(21) - 10
            base = min(1200, max(850, base))
            i = base + int(30 * math.sin(tb / 4000 * 6.283)) + rnd(41) - 20  # RSA + jitter
            pwa[n] = 1000 + int(80 * math.sin(tb / 60000)) + rnd(31) - 15
            ibi[n] = i
            n += 1
            tb += i
        rec.add_beats(t, first, ibi, pwa, n)
        if e % 10 == 0:
            rec.add_env(t + 30 * e, 20.1, 44.0, 1012.0, 150000, 0.05, 0.01)
        if rnd(20) == 0:
            rec.add_event(t + 30 * e, vocab.EV_AROUSAL, (14000, 500))
        rec.flush()
    rec.end_night(t + 28800)
    st = json.dumps({"night": nid, "size": rec.night_size(nid), "beats": rec.n_beats,
                     "beats_dropped": rec.n_beats_dropped, "free": rec.free_bytes()})
    print(st)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cuts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nights", type=int, default=33)
    args = ap.parse_args()
    path = mp_plain_path(paths.VBOARD_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.monotonic()
        proc = run_micropython(
            [str(ROOT / "tests/firmware/mp_powercut.py"), tmp, str(args.cuts), str(args.seed),
             "120", "1500", "torn"], path=path, heapsize="1M", cwd=Path(tmp), timeout=3600)
        if proc.returncode:
            print(proc.stdout.decode()[-2000:], proc.stderr.decode()[-2000:])
            return 1
        res = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        print(f"power cuts (writes torn at a random byte, erases at a random offset; every "
              f"night checked after every cut): cuts tried {res['cuts']} / "
              f"nights damaged {res['nights_damaged']} / "
              f"max epochs lost {res['max_epochs_lost']}  (nights {res['nights']}, "
              f"resumed {res['resumed']}, reformatted {res['formatted']}, "
              f"{time.monotonic() - t:.0f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "nights.py"
        script.write_text(NIGHTS_SCRIPT)
        proc = run_micropython([str(script), tmp, str(args.nights)], path=path, heapsize="1M",
                               cwd=Path(tmp), timeout=3600)
        lines = [json.loads(x) for x in proc.stdout.decode().splitlines() if x.startswith("{")]
        if proc.returncode or not lines:
            print(proc.stdout.decode()[-2000:], proc.stderr.decode()[-2000:])
            return 1
        first = lines[0]
        blocks = -(-first["size"] // 4096)
        print(f"bytes per 8-hour night: {first['size']} ({first['beats']} beats, "
              f"{first['size'] / max(1, first['beats']):.2f} B/beat all-in, {blocks} littlefs "
              f"blocks of 4 KB; format v1 was 87045)")
        full = [x for x in lines if x["beats_dropped"] == 0]
        verdict = "met" if len(full) >= 30 else "MISSED"
        print(f"retention on 2 MB: {len(full)} of {len(lines)} unsynced 8-hour nights kept "
              f"their beats (target >= 30: {verdict}; v1: 22); free after the last night "
              f"{lines[-1]['free']} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
