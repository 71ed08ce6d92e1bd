"""Beat lists in (ECG R peaks or PPG beats) and the firmware's beat-only arousal path on them.

A beat list is a CSV with a `time_s` column (header optional for a single column), optionally
`beat_type` (WFDB/slpdb style: `N` normal; anything else is passed to the device as a flagged
beat). The arousal estimator runs unchanged under the MicroPython unix port (mp_beats.py).
"""

from __future__ import annotations

import csv
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nightstand import paths
from nightstand.errors import UserError

MAX_IBI_MS = 2200  # nsdev.core.arousal._MAX_IBI: a longer interval is a gap, not a beat


@dataclass
class BeatList:
    time_s: np.ndarray
    flagged: np.ndarray  # bool: beat annotated as not normal


@dataclass
class DeviceBeatsResult:
    arousal_score: np.ndarray  # per epoch 0-1, NaN where the device had no valid beat
    events: list[tuple[float, float, float]]  # (onset_s, duration_s, strength 0-1)


def read_beat_list(path: Path) -> BeatList:
    if not path.exists():
        raise UserError(f"{path}: no such file (give a CSV with a time_s column of beat times)")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise UserError(f"{path}: the file is empty")
    head = [h.strip().lower() for h in rows[0]]
    try:
        float(head[0])
        header = ["time_s"]
        data = rows
    except ValueError:
        header, data = head, rows[1:]
    if "time_s" not in header:
        raise UserError(f"{path}: no `time_s` column (found: {', '.join(header)}); give beat "
                        "times in seconds, one per row")
    it = header.index("time_s")
    ib = header.index("beat_type") if "beat_type" in header else None
    times, flagged = [], []
    for line_no, r in enumerate(data, start=2 if header is not rows[0] else 1):
        try:
            times.append(float(r[it]))
        except (ValueError, IndexError):
            raise UserError(f"{path}:{line_no}: expected a number in column time_s") from None
        flagged.append(ib is not None and len(r) > ib and r[ib].strip() not in ("", "N"))
    t = np.asarray(times)
    if not np.all(np.isfinite(t)):
        raise UserError(f"{path}: contains NaN or infinite beat times; remove them first")
    if t.size < 2:
        raise UserError(f"{path}: needs at least two beats")
    if np.any(np.diff(t) <= 0):
        raise UserError(f"{path}: beat times must increase strictly (sort the file, drop "
                        "duplicates)")
    return BeatList(t, np.asarray(flagged, dtype=bool))


def device_beats(beats: BeatList, n_epochs: int, t0_s: float = 0.0) -> DeviceBeatsResult:
    """The firmware's ArousalEstimator under MicroPython on a beat list.

    Epoch k covers [t0_s + 30 k, t0_s + 30 (k + 1)); times in the result are on the list's
    own clock (seconds)."""
    rel_ms = np.round((beats.time_s - t0_s) * 1000).astype(np.int64)
    keep = rel_ms >= 0
    rel_ms, flag = rel_ms[keep], beats.flagged[keep]
    ibi = np.diff(rel_ms, prepend=rel_ms[0] if rel_ms.size else 0)
    ibi[0] = 0
    ibi[ibi > MAX_IBI_MS] = 0  # a gap: the next beat has no interval
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "beats.txt"
        with open(src, "w") as f:
            for t, i, q in zip(rel_ms.tolist(), ibi.tolist(), flag.tolist(), strict=True):
                f.write(f"{t} {i} {1 if q else 0}\n")
        env = dict(os.environ, MICROPYPATH=f"{paths.FIRMWARE_DIR}:.frozen")
        proc = subprocess.run(
            [paths.micropython_bin(), "-X", "heapsize=256K",
             str(Path(__file__).with_name("mp_beats.py")), str(src), str(n_epochs)],
            env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise UserError("the firmware's arousal estimator failed under MicroPython: "
                        + " | ".join(tail))
    score = np.full(n_epochs, np.nan)
    events = []
    for line in proc.stdout.splitlines():
        p = line.split()
        if p[0] == "E":
            k, s = int(p[1]), int(p[2])
            if 0 <= k < n_epochs and s >= 0:
                score[k] = s / 1000.0
        elif p[0] == "A":
            events.append((int(p[1]) / 1000.0 + t0_s, int(p[2]) / 1000.0, int(p[3]) / 1000.0))
    return DeviceBeatsResult(score, events)
