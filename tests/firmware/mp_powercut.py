# Power-cut driver (MicroPython): records synthetic nights with nsdev.recorder on a littlefs
# vflash, cuts power after a random number of block writes, reboots (remount + recover) and
# checks every night. Used by tests/firmware/test_recorder.py and tests/bench/bench_flash.py.
# Usage: micropython mp_powercut.py SIM_DIR CUTS SEED EPOCHS_PER_NIGHT MAX_WRITES_BETWEEN_CUTS
#        [torn]   (MICROPYPATH = vboard : firmware). Prints one JSON line of results.
import json
import sys

import vflash
from mp_util import Rng, read_all
from nsdev.core import nightfile, vocab
from nsdev.recorder import Recorder

T0 = 1767225600 + 22 * 3600  # 2026-01-01 22:00 UTC
SIZE = 2 * 1024 * 1024


def check_night(rec, nid, committed, full):
    """-> (damaged?, set of epoch unix_s present). full: decode every record (slow in
    MicroPython); otherwise walk the frames and read only the epoch times."""
    data = read_all(rec, nid)
    seen = set()
    dup = False
    if full:
        d = nightfile.decode(data)
        ok = d["header"] is not None and not d["skipped"]
        for r in d["records"]:
            if r["type"] == "epoch" and "unix_s" in r:
                dup = dup or r["unix_s"] in seen
                seen.add(r["unix_s"])
    else:
        ok = bytes(data[:4]) == vocab.MAGIC
        start = None
        for off, rtype, n in nightfile.iter_frames(data, 4):
            if rtype < 0:
                ok = False
            elif rtype == vocab.REC_HEADER and start is None:
                start = nightfile.decode_payload(rtype, data, off + 3, off + 3 + n)[
                    "start_unix_s"]
            elif rtype == vocab.REC_EPOCH and start is not None:
                t = start + nightfile.record_time_beats(rtype, data, off + 3, off + 3 + n)[0]
                dup = dup or t in seen
                seen.add(t)
        ok = ok and start is not None
    missing = [t for t in committed.get(nid, ()) if t not in seen]
    return (not ok) or dup or bool(missing), seen


def make_recorder():
    return Recorder("data", device_id="sim-0001", fw_version="0.1.0",
                    sensor_config="ppg=max30102@100;env=bme680;light=veml7700")


def main():
    sim_dir = sys.argv[1]
    cuts = int(sys.argv[2])
    rng = Rng(int(sys.argv[3]))
    epochs_per_night = int(sys.argv[4])
    max_gap = int(sys.argv[5])
    torn = len(sys.argv) > 6 and sys.argv[6] == "torn"
    dev = vflash.mount_flash(sim_dir, SIZE, 1 + rng.next(max_gap), torn)
    rec = make_recorder()
    t = T0
    committed = {}  # night id -> epoch times whose flush returned
    unflushed = []  # epochs added but not yet durable
    cuts_done = 0
    damaged = set()
    max_lost = 0
    resumed = 0
    formatted = 0
    epochs_total = 0
    ibi = [0] * 120
    pwa = [0] * 120
    in_night = 0
    while cuts_done < cuts:
        try:
            if rec.night_id is None:
                if rec.recover(t, vocab.RESET_POWER_ON) is not None:
                    resumed += 1
                else:
                    rec.start_night(t, 3600)
                    in_night = 0
            while True:
                nid = rec.night_id
                rec.add_epoch(t, hr_bpm=55 + rng.next(200) / 10, rmssd_ms=30 + rng.next(300) / 10,
                              sdnn_ms=None, pwa_mean=900 + rng.next(300), spo2_pct=96.5,
                              sqi=0.9, arousal_score=rng.next(1000) / 1000, temp_c=20.25,
                              rh_pct=45.5, pressure_hpa=1012.3, gas_ohm=150000, lux=0.3,
                              mel_edi_lx=0.1, lamp_level=(0.0, 0.0))
                unflushed.append(t)
                n = 28 + rng.next(6)
                for i in range(n):
                    ibi[i] = 950 + rng.next(100)
                    pwa[i] = 1000 + rng.next(120)
                rec.add_beats(t, rng.next(900), ibi, pwa, n)
                if rng.next(20) == 0:
                    rec.add_event(t, vocab.EV_AROUSAL, (12000, 400), None, 15000)
                if rng.next(10) == 0:
                    rec.add_env(t, 20.25, 45.5, 1012.3, 150000, 0.3, 0.1)
                rec.flush()
                committed.setdefault(nid, []).extend(unflushed)
                epochs_total += len(unflushed)
                unflushed = []
                t += 30
                in_night += 1
                if in_night >= epochs_per_night:
                    done = rec.end_night(t)
                    rec.ack_night(done)  # the host synced it: retention may delete it
                    t += 3600
                    break
        except vflash.PowerCut:
            cuts_done += 1
            cut_night = rec.night_id
            rec = None  # the old firmware's objects are gone
            # Reboot (again and again if the power fails during recovery): remount the image,
            # a new recorder, resume the night, check the nights it touched.
            while True:
                dev = vflash.mount_flash(sim_dir, SIZE, 1 + rng.next(max_gap), torn)
                if dev.formatted:
                    formatted += 1
                t += 5
                try:
                    rec = make_recorder()
                    if rec.recover(t, vocab.RESET_POWER_ON) is not None:
                        resumed += 1
                    break
                except vflash.PowerCut:
                    cuts_done += 1
            # The night being written, and the newest one (a cut can fall while it is created).
            nights = [cut_night] if cut_night is not None else []
            ids = rec.night_ids()
            if ids and ids[-1] not in nights:
                nights.append(ids[-1])
            for nid in nights:
                if rec.night_size(nid) < 0:
                    if committed.get(nid):
                        damaged.add(nid)  # a night with data vanished
                    continue
                bad, seen = check_night(rec, nid, committed, False)
                if bad:
                    damaged.add(nid)
                if nid == cut_night:
                    lost = 0
                    for e in unflushed:
                        if e in seen:
                            committed.setdefault(nid, []).append(e)
                        else:
                            lost += 1
                    max_lost = max(max_lost, lost)
            unflushed = []
            if rec.night_id is None:
                in_night = 0  # the night was closed (or never started): begin a new one
    # Final full check of every night on the flash.
    dev.cut_after_writes = None
    rec = make_recorder()
    for row in rec.list_nights():
        bad, _seen = check_night(rec, row["night_id"], committed, True)
        if bad:
            damaged.add(row["night_id"])
    print(json.dumps({
        "cuts": cuts_done, "nights": len(rec.list_nights()), "nights_damaged": len(damaged),
        "max_epochs_lost": max_lost, "resumed": resumed, "formatted": formatted,
        "epochs": epochs_total, "flash_writes": dev.writes}))


main()
