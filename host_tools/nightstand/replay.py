"""A recorded PPG through the virtual MAX30102 into the unchanged firmware: beats.csv, epochs.csv.

The library behind `nightstand replay` (commands/replay.py only parses)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from nsdev import config as device_config
from nsdev.core.ppgdefs import MAX_IBI_MS

from nightstand.errors import UserError
from nightstand.night import Night, flag_names
from nightstand.progress import progress_bar
from nightstand.sim import runner
from nightstand.sim.generate import RecordingBlock, ReplayStimulus, write_ppg_stimulus

# The replayed recording is placed at 01:00 UTC (device UTC offset 0), inside the default
# night window, so the device records from its first sample.
REPLAY_START = dt.datetime(2026, 1, 15, 1, 0, tzinfo=dt.UTC)
TAIL_S = 40  # run past the end so the last epoch is closed and flushed
PPG_COLUMNS = ("ppg", "ir")
EPOCH_COLUMNS = ("hr_bpm", "rmssd_ms", "sdnn_ms", "pwa_mean", "spo2_pct", "sqi", "arousal_score")


def read_recording(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(time_s, ir, red or None) from a CSV (time_s + ppg|ir [+ red]) or a WFDB record."""
    if path.suffix.lower() in (".hea", ".dat") or (
        not path.exists() and path.with_suffix(".hea").exists()
    ):
        return _read_wfdb(path.with_suffix(""))
    if not path.exists():
        raise UserError(f"{path}: no such file (give a CSV file or a WFDB record)")
    return _read_csv(path)


def iter_recording(path: Path, block_rows: int | None = None) -> Iterator[RecordingBlock]:
    """read_recording() in blocks of rows (time_s, ir, red or None). A CSV is streamed (nothing
    held beyond a block; bad rows raise when reached); a WFDB record is read whole."""
    from nightstand.sim.recording import BLOCK_ROWS, iter_csv_recording

    rows = block_rows or BLOCK_ROWS
    if path.suffix.lower() in (".hea", ".dat") or (
        not path.exists() and path.with_suffix(".hea").exists()
    ):
        t, ir, red = _read_wfdb(path.with_suffix(""))
        for a in range(0, t.size, rows):
            yield t[a:a + rows], ir[a:a + rows], None if red is None else red[a:a + rows]
        return
    if not path.exists():
        raise UserError(f"{path}: no such file (give a CSV file or a WFDB record)")
    yield from iter_csv_recording(path, rows)


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    from nightstand.sim.recording import read_csv_recording

    return read_csv_recording(path)


def _read_wfdb(record: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    import wfdb

    try:
        rec = wfdb.rdrecord(str(record))
    except (OSError, ValueError) as e:
        raise UserError(f"{record}: cannot read the WFDB record ({e})") from None
    names = [n.lower() for n in rec.sig_name]
    idx = next((i for i, n in enumerate(names) if "pleth" in n or "ppg" in n), None)
    if idx is None:
        raise UserError(f"{record}: no PPG channel (looked for PLETH or PPG in "
                        f"{', '.join(rec.sig_name)})")
    x = rec.p_signal[:, idx].astype(float)
    ok = np.isfinite(x)
    t = np.arange(x.size) / float(rec.fs)
    return t[ok], x[ok], None


def replay(recording: Path, out: Path, *, heapsize: str = runner.DEFAULT_HEAPSIZE,
           quiet: bool = False) -> tuple[Path, Path]:
    """Run the recording through the firmware; write out/beats.csv, epochs.csv, events.csv."""
    sim_dir = out / "sim"
    settings = device_config.defaults()
    stim = _stimulus(recording, out, float(settings["ppg_rate_hz"]))
    duration = stim.n_samples / stim.fs_hz + TAIL_S
    start_unix_s = int(REPLAY_START.timestamp())
    flash = sim_dir / "flash"
    flash.mkdir()
    (flash / device_config.CONFIG_FILE).write_text(json.dumps(settings))
    runner.write_sim_config(sim_dir, {
        "start_unix_s": start_unix_s,
        "duration_s": duration,
        "ticks_start_ms": (1 << 30) - 60_000,
        "devices": runner.board_devices(ppg_stim="stim/ppg.f32", ppg_fs_hz=stim.fs_hz,
                                        env_stim=None),
    })
    with progress_bar("replaying", duration, " s") as update:
        runner.run(sim_dir, heapsize=heapsize, on_progress=None if quiet else update)
    nights = _nights(sim_dir)
    if not nights:
        raise UserError("the firmware recorded no night; see " + str(sim_dir / "console.log"))
    t0_s = stim.t0_s
    beats_csv = out / "beats.csv"
    epochs_csv = out / "epochs.csv"
    _write_beats(nights, start_unix_s, t0_s, beats_csv)
    _write_epochs(nights, start_unix_s, t0_s, epochs_csv)
    from nightstand.sleep.replay import finish_ppg_replay

    finish_ppg_replay(nights, start_unix_s, t0_s, out)  # events.csv + a stage column
    return beats_csv, epochs_csv


def _stimulus(recording: Path, out: Path, fs_hz: float) -> ReplayStimulus:
    """Stream the recording into out/sim/stim/ppg.f32 (out/sim made afresh). The recording's
    header and first block are checked before anything is created, the rest before out/sim is
    touched; a bad row further on removes again the folders this call made."""
    blocks = iter_recording(recording)
    first = next(blocks, None)
    if first is None:
        raise UserError(f"{recording}: no samples")
    blocks = itertools.chain([first], blocks)
    made = None
    for p in (out, *out.parents):
        if p.exists():
            break
        made = p
    out.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".replay-", dir=out) as tmp:
            stim = write_ppg_stimulus(blocks, Path(tmp), fs_hz)
            sim_dir = out / "sim"
            if sim_dir.exists():
                shutil.rmtree(sim_dir)
            sim_dir.mkdir()
            os.replace(Path(tmp) / "stim", sim_dir / "stim")
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise
    return dataclasses.replace(stim, path=sim_dir / "stim" / stim.path.name)


def _nights(sim_dir: Path) -> list[Night]:
    from nightstand.sim.session import nights_in_flash

    return nights_in_flash(sim_dir)


def _write_beats(nights: list[Night], start_unix_s: int, t0_s: float, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "ibi_ms", "pwa"])
        prev = None
        for n in nights:
            for t_ms, pwa in zip(n.beat_t_ms, n.beat_pwa, strict=True):
                # An interval longer than the detector's slowest beat (27 bpm) spans missed
                # beats (artefact, no contact): not an IBI.
                ibi = "" if prev is None or t_ms - prev > MAX_IBI_MS else t_ms - prev
                prev = t_ms
                w.writerow([f"{(t_ms - start_unix_s * 1000) / 1000 + t0_s:.3f}", ibi,
                            "" if pwa is None else f"{pwa:g}"])


def _write_epochs(nights: list[Night], start_unix_s: int, t0_s: float, path: Path) -> None:
    def cell(v: object) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", *EPOCH_COLUMNS, "flags"])
        for n in nights:
            for e in n.epochs:
                w.writerow([f"{e['unix_s'] - start_unix_s + t0_s:.1f}",
                            *(cell(e.get(k)) for k in EPOCH_COLUMNS),
                            "|".join(flag_names(int(e.get("flags", 0))))])
