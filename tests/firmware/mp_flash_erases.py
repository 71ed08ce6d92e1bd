# Erase counter (MicroPython): records a night with nsdev.recorder on a littlefs vflash the way
# the app does (flush_write until it returns 0, then flush_commit, a FIFO read between any two
# calls) and counts the sector erases of every call. A W25Q32 sector erase takes up to 400 ms
# (tSE max) and the MAX30102 FIFO holds 640 ms, so no call may erase twice. Night start and
# end run as generators of steps (start_night_steps, end_night_steps): no step may either.
# Usage: micropython mp_flash_erases.py SIM_DIR EPOCHS   (MICROPYPATH = vboard : firmware)
# Prints one JSON line.
import json
import sys
from array import array

import vflash
from mp_util import read_all
from nsdev.core import nightfile
from nsdev.recorder import Recorder

T0 = 1767225600 + 22 * 3600
erases = [0]
_ioctl = vflash.VFlash.ioctl


def _count(self, op, arg):
    if op == 6:
        erases[0] += 1
    return _ioctl(self, op, arg)


vflash.VFlash.ioctl = _count


def main():
    sim_dir = sys.argv[1]
    epochs = int(sys.argv[2])
    vflash.mount_flash(sim_dir)
    rec = Recorder("data", device_id="test", fw_version="t", sensor_config="s")
    nid = rec.start_night(T0)
    ibi = array("i", [900 + (i * 37) % 200 for i in range(64)])
    pwa = array("i", [1000 + (i * 53) % 120 for i in range(64)])
    out = {"write_calls": 0, "write_max": 0, "commit_max": 0, "write_erases": 0,
           "commit_erases": 0, "split_flushes": 0}
    for e in range(epochs):
        t = T0 + 30 * e
        rec.add_epoch(t, hr_bpm=60.5, rmssd_ms=40.0, sdnn_ms=50.0, pwa_mean=1000,
                      spo2_pct=97.0, sqi=0.9, arousal_score=0.1, temp_c=21.0, rh_pct=40.0,
                      pressure_hpa=1000.0, gas_ohm=10000, lux=0.5, mel_edi_lx=0.1,
                      lamp_level=[0.0, 0.0], flags=0)
        rec.add_beats(t, e % 900, ibi, pwa, 30 + e % 30)
        pieces = 0
        while True:
            erases[0] = 0
            k = rec.flush_write()
            out["write_erases"] += erases[0]
            out["write_max"] = max(out["write_max"], erases[0])
            if not k:
                break
            pieces += 1
            out["write_calls"] += 1
        if pieces > 1:
            out["split_flushes"] += 1
        erases[0] = 0
        rec.flush_commit()
        out["commit_erases"] += erases[0]
        out["commit_max"] = max(out["commit_max"], erases[0])
    out["night_step_max"] = _steps(rec.end_night_steps(T0 + 30 * epochs))
    d = nightfile.decode(read_all(rec, nid))
    out["epochs"] = sum(1 for r in d["records"] if r["type"] == "epoch")
    out["skipped"] = len(d["skipped"])
    # more nights: the index outgrows its directory entry (then it takes a block of its own)
    for k in range(8):
        t = T0 + 86400 * (k + 1)
        m = _steps(rec.start_night_steps(t))
        for e in range(3):
            rec.add_epoch(t + 30 * e, hr_bpm=60.5)
            rec.flush()
        m = max(m, _steps(rec.end_night_steps(t + 90)))
        out["night_step_max"] = max(out["night_step_max"], m)
    out["nights"] = len(rec.night_ids())
    print(json.dumps(out))


def _steps(gen):
    """Run a *_steps() generator as the app does. -> the most erases in one step."""
    most = 0
    while True:
        erases[0] = 0
        try:
            next(gen)
        except StopIteration:
            return max(most, erases[0])
        most = max(most, erases[0])


main()
