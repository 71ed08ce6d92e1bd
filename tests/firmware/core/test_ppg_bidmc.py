"""Real data: the PPG pipeline (CPython) on BIDMC record 01 reaches beat F1 >= 0.98 vs ECG."""

import array
import csv
from pathlib import Path

from nsdev.core.ppg import PPGPipeline

DATA = Path(__file__).resolve().parents[2] / "data" / "bidmc01"
TOL_MS = 150


def _load():
    with open(DATA / "ppg.csv") as f:
        ppg = [float(r["ppg"]) for r in csv.DictReader(f)]
    with open(DATA / "ref_beats.csv") as f:
        ref = [round(1000 * float(r["time_s"])) for r in csv.DictReader(f)]
    return ppg, ref


def _f1(det, ref):
    # Median pulse-arrival delay: first detection from 100 ms before each R peak, < 1 s.
    delays = []
    for r in ref:
        later = [d - r for d in det if d >= r - 100]
        if later and later[0] < 1000:
            delays.append(later[0])
    delays.sort()
    delay = delays[len(delays) // 2]
    shifted = [d - delay for d in det]
    used = set()
    tp = 0
    for r in ref:
        best = None
        for i, d in enumerate(shifted):
            if i not in used and abs(d - r) <= TOL_MS and (
                    best is None or abs(d - r) < abs(shifted[best] - r)):
                best = i
        if best is not None:
            used.add(best)
            tp += 1
    fp = len(det) - tp
    fn = len(ref) - tp
    return 2 * tp / (2 * tp + fp + fn)


def test_bidmc01_f1_at_125_hz():
    ppg, ref = _load()
    lo, hi = min(ppg), max(ppg)
    # To raw sensor counts: DC at 50% of full scale, pulse as a dip of ~2000 counts.
    counts = [int(131072 - 2000 * (v - lo) / (hi - lo)) for v in ppg]
    pipe = PPGPipeline(125)
    out = array.array("i", [0] * 4)
    det = []
    buf = array.array("i", [0] * 16)
    for i in range(0, len(counts), 16):
        m = min(16, len(counts) - i)
        for j in range(m):
            buf[j] = counts[i + j]
        pipe.feed(None, buf, m)
        while pipe.pop_beat(out):
            det.append(out[0])
    pipe.flush()
    while pipe.pop_beat(out):
        det.append(out[0])
    f1 = _f1(det, ref)
    assert f1 >= 0.98, f1
    print("bidmc01 F1", f1)
