"""`nightstand replay`: a real recording through the virtual MAX30102 into the firmware."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from nightstand.errors import UserError
from nightstand.replay import read_recording, replay

DATA = Path(__file__).resolve().parent.parent / "data" / "bidmc01"


def _beat_f1(ref: np.ndarray, det: np.ndarray, tol_s: float = 0.15) -> float:
    """F1 after removing the median pulse-arrival delay (as docs/ppg-and-arousal.md scores)."""
    nearest = ref[np.clip(np.searchsorted(ref, det), 1, len(ref) - 1) - 1]
    delay = float(np.median(det - nearest))
    det = det - delay
    used = set()
    tp = 0
    for t in det:
        i = int(np.argmin(np.abs(ref - t)))
        if abs(ref[i] - t) <= tol_s and i not in used:
            used.add(i)
            tp += 1
    se, ppv = tp / len(ref), tp / len(det)
    return 2 * se * ppv / (se + ppv)


def test_replay_of_a_real_recording_finds_the_ecg_beats(tmp_path):
    beats_csv, epochs_csv = replay(DATA / "ppg.csv", tmp_path, quiet=True)
    rows = list(csv.DictReader(open(beats_csv)))
    det = np.array([float(r["time_s"]) for r in rows])
    ref = np.loadtxt(DATA / "ref_beats.csv", skiprows=1)
    ref = ref[(ref > det[0] - 1) & (ref < det[-1] + 1)]
    assert _beat_f1(ref, det) >= 0.97
    ibis = [int(r["ibi_ms"]) for r in rows[1:] if r["ibi_ms"]]
    assert all(300 < i < 2000 for i in ibis)
    epochs = list(csv.DictReader(open(epochs_csv)))
    assert len(epochs) >= 10
    hr = [float(e["hr_bpm"]) for e in epochs if e["hr_bpm"]]
    ref_hr = 60 / np.median(np.diff(ref))
    assert abs(np.median(hr) - ref_hr) < 3


def test_recording_formats_and_errors(tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_text("time_s,IR,red\n0,1,2\n0.01,1.5,2.5\n")
    t, ir, red = read_recording(ok)
    assert list(t) == [0, 0.01] and list(ir) == [1, 1.5] and list(red) == [2, 2.5]
    bad = {
        "nocol.csv": ("time_s,ecg\n0,1\n1,2\n", "no `ppg` or `ir` column"),
        "notime.csv": ("t,ppg\n0,1\n1,2\n", "no `time_s` column"),
        "text.csv": ("time_s,ppg\n0,1\n1,abc\n", ":3: expected numbers"),
        "empty.csv": ("", "empty"),
    }
    for name, (text, message) in bad.items():
        f = tmp_path / name
        f.write_text(text)
        with pytest.raises(UserError, match=message):
            read_recording(f)
    with pytest.raises(UserError, match="no such file"):
        read_recording(tmp_path / "missing.csv")


def test_cli_reports_a_bad_rate_in_one_line(tmp_path):
    f = tmp_path / "slow.csv"
    f.write_text("time_s,ppg\n" + "".join(f"{i / 10},{i % 7}\n" for i in range(200)))
    proc = subprocess.run(
        [sys.executable, "-m", "nightstand.cli", "replay", str(f), "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "25 Hz to 2 kHz" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wfdb_records_are_read_by_their_ppg_channel(tmp_path):
    import wfdb

    t, x, _ = read_recording(DATA / "ppg.csv")
    fs = 125
    ecg = np.sin(np.arange(x.size) / 10.0)
    wfdb.wrsamp("rec", fs=fs, units=["mV", "NU"], sig_name=["II", "PLETH"],
                p_signal=np.column_stack([ecg, x]), fmt=["16", "16"], write_dir=str(tmp_path))
    for path in (tmp_path / "rec", tmp_path / "rec.hea"):
        t2, x2, red = read_recording(path)
        assert red is None and len(x2) == len(x)
        assert np.allclose(t2, np.arange(len(x)) / fs)
        assert np.corrcoef(x2, x)[0, 1] > 0.999
    wfdb.wrsamp("ecgonly", fs=fs, units=["mV"], sig_name=["II"], p_signal=ecg[:, None],
                fmt=["16"], write_dir=str(tmp_path))
    with pytest.raises(UserError, match="no PPG channel"):
        read_recording(tmp_path / "ecgonly")
