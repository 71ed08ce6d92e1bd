"""Exports of a stored night for clinicians' and researchers' tools: CSV (epochs, beats, events,
with a README of columns and units) and EDF+ (epoch signals at 1/30 Hz, events, signal-quality
spans and every beat as annotations). Layout: docs/reports-and-exports.md."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from nsdev.core import vocab

from nightstand.errors import UserError
from nightstand.night import Night
from nightstand.report import prepare_out_dir
from nightstand.report.metrics import (
    EPOCH_S,
    Grid,
    NightData,
    build_grid,
    load_night,
    local_time,
    runs,
)
from nightstand.store import Store

MAX_IBI_MS = 3000  # a longer interval is a gap in the beat stream, not a heartbeat

# EDF+ signals: (label, grid field, unit, physical minimum = "unknown", physical maximum, factor).
# Digital range -32768..32767; the digital minimum (= physical minimum) marks unknown samples.
EDF_SIGNALS = (
    ("HR", "hr_bpm", "bpm", -1.0, 300.0, 1.0),
    ("RMSSD", "rmssd_ms", "ms", -1.0, 2000.0, 1.0),
    ("SDNN", "sdnn_ms", "ms", -1.0, 2000.0, 1.0),
    ("SpO2", "spo2_pct", "%", -1.0, 105.0, 1.0),
    ("SQI", "sqi", "0-1", -1.0, 2.0, 1.0),
    ("Arousal score", "arousal_score", "0-1", -1.0, 2.0, 1.0),
    ("PWA", "pwa_mean", "counts", -1.0, 300000.0, 1.0),
    ("Lamp warm", "lamp_warm", "%", -1.0, 100.0, 100.0),
    ("Lamp amber", "lamp_amber", "%", -1.0, 100.0, 100.0),
    ("Temperature", "temp_c", "degC", -41.0, 165.0, 1.0),
    ("Humidity", "rh_pct", "%RH", -1.0, 105.0, 1.0),
    ("Pressure", "pressure_hpa", "hPa", -1.0, 1200.0, 1.0),
    ("Gas resistance", "gas_ohm", "ohm", -1.0, 4000000, 1.0),
    ("Illuminance", "lux", "lx", -1.0, 5000.0, 1.0),
    ("Melanopic EDI", "mel_edi_lx", "lx", -1.0, 5000.0, 1.0),
    ("Clip temperature", "clip_temp_c", "degC", -21.0, 108.0, 1.0),  # vocab: -20..107.94
)
DIG_MIN, DIG_MAX = -32768, 32767
QUALITY_FLAGS = (vocab.FLAG_CONTACT_OFF, vocab.FLAG_MOTION, vocab.FLAG_FIFO_OVERFLOW,
                 vocab.FLAG_PPG_CLIPPED, vocab.FLAG_SENSOR_FAULT, vocab.FLAG_BEATS_DROPPED,
                 vocab.FLAG_INVALID_VALUE)
MAX_ANNOTATION_SIGNALS = 64  # EDFlib's limit
UNKNOWN_NOTE = "unknown = physical minimum"  # EDFlib keeps 40 characters per annotation
MAX_TEXT = 40


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.10g}"
    return str(v)


def _iso(unix_s: float, utc_offset_s: int) -> str:
    t = local_time(unix_s, utc_offset_s)
    sign = "+" if utc_offset_s >= 0 else "-"
    off = abs(utc_offset_s)
    return (t.isoformat(timespec="milliseconds" if unix_s % 1 else "seconds")
            + f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}")


def _ascii(text: str) -> str:
    return "".join(c if 33 <= ord(c) < 127 else "_" for c in text)[:40]


def _values_text(kind: int, values: list[int]) -> str:
    names = vocab.EVENT_KINDS.get(kind, ("", ()))[1]
    return ";".join(f"{names[i] if i < len(names) else f'v{i}'}={v}"
                    for i, v in enumerate(values))


def _field_units() -> dict[str, str]:
    return {f[0]: str(f[-1]) for f in vocab.EPOCH_FIELDS + vocab.EPOCH_EXT_FIELDS}


# What a column means when its unit alone does not say it.
FIELD_NOTES = {"clip_temp_c": "the MAX30102 die in the finger clip, a proxy of finger skin "
                              "temperature (+-1 degC; empty while the finger is out)"}


def _lamp_channels(night: Night) -> int:
    return max([2, *(len(e.get("lamp_level") or []) for e in night.epochs)])


def beat_rows(nd: NightData) -> list[tuple[int, int, int | None, float | None]]:
    """(unix_ms, t_off_ms, IBI from the previous beat or None, PWA or None) per stored beat."""
    out = []
    prev = None
    start_ms = nd.start_unix_s * 1000
    for t, pwa in zip(nd.beat_t_ms, nd.beat_pwa, strict=False):
        ibi = t - prev if prev is not None and 0 < t - prev <= MAX_IBI_MS else None
        out.append((int(t), int(t - start_ms), ibi,
                    float(pwa) if pwa is not None and pwa > 0 else None))
        prev = t
    return out


def _open_csv(path: Path):  # noqa: ANN202 - a text file
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None


def _sleep(store: Store, nd: NightData) -> Any:
    """The night's estimated sleep (nightstand.sleep.night.NightSleep or None)."""
    from nightstand.report.metrics import lights
    from nightstand.sleep.night import store_night_sleep

    g = build_grid(nd.epochs)
    return store_night_sleep(store, nd, g, lights(nd, g)) if g.n else None


SLEEP_STAGE_TEXT = {"wake": "Sleep stage W", "rem": "Sleep stage R", "nrem": "Sleep stage N",
                    "unknown": "Sleep stage ?"}  # EDF+ annotation texts (Kemp et al. 2003)


def export_csv(store: Store, row_id: int, out_dir: Path | str) -> list[Path]:
    """Write epochs.csv, beats.csv, events.csv and README.txt into out_dir. -> their paths."""
    out = prepare_out_dir(out_dir)
    nd, night = load_night(store, row_id)
    units = _field_units()
    n_lamp = _lamp_channels(night)
    lamp_names = (["lamp_warm_level", "lamp_amber_level"]
                  + [f"lamp_ch{i}_level" for i in range(2, n_lamp)])
    fields = [f[0] for f in vocab.EPOCH_FIELDS + vocab.EPOCH_EXT_FIELDS if f[0] != "lamp_level"]
    paths = [out / "epochs.csv", out / "beats.csv", out / "events.csv", out / "README.txt"]
    sleep = _sleep(store, nd)
    with _open_csv(paths[0]) as f:
        w = csv.writer(f)
        w.writerow(["local_time", "unix_s", "t_off_s", *fields, *lamp_names, "flags",
                    "flag_names", "sleep_stage"])
        for e in night.epochs:
            lamp = list(e.get("lamp_level") or [])
            lamp += [None] * (n_lamp - len(lamp))
            flags = int(e.get("flags") or 0)
            names = ";".join(name for bit, name in vocab.FLAG_NAMES.items() if flags & bit)
            w.writerow([_iso(e["unix_s"], nd.utc_offset_s), e["unix_s"], e.get("t_off_s"),
                        *(_num(e.get(k)) for k in fields), *(_num(x) for x in lamp), flags,
                        names, "" if sleep is None else sleep.stage_at(e["unix_s"] + 1)])
    with _open_csv(paths[1]) as f:
        w = csv.writer(f)
        w.writerow(["local_time", "unix_ms", "t_off_ms", "ibi_ms", "pwa_counts"])
        for t, off, ibi, pwa in beat_rows(nd):
            w.writerow([_iso(t / 1000.0, nd.utc_offset_s), t, off, _num(ibi), _num(pwa)])
    with _open_csv(paths[2]) as f:
        w = csv.writer(f)
        w.writerow(["local_time", "unix_ms", "t_off_ms", "kind", "kind_name", "values", "text"])
        for e in sorted(night.events, key=lambda e: e.get("unix_ms") or 0):
            w.writerow([_iso(e["unix_ms"] / 1000.0, nd.utc_offset_s), e["unix_ms"],
                        e.get("t_off_ms"), e.get("kind"), e.get("kind_name"),
                        _values_text(e.get("kind", 0), list(e.get("values") or [])),
                        e.get("text") or ""])
    lines = [
        f"nightstand export: device {nd.device_id}, night {nd.night_id} (store id {row_id}), "
        f"night of {nd.night_date().isoformat()}; local times are UTC{nd.utc_offset_s / 3600:+g}"
        " h. Empty cell = unknown. This data measures; it is not a diagnosis.",
        "",
        "epochs.csv - one row per stored 30-s epoch (t_off_s: epoch start, s after the night's "
        "start)",
        *(f"  {k}: {units[k]}" + (f" ({FIELD_NOTES[k]})" if k in FIELD_NOTES else "")
          for k in fields),
        *(f"  {k}: 0..1 (linear output fraction)" for k in lamp_names),
        "  flags: bit mask; flag_names: " + ", ".join(
            f"{name}=0x{bit:04x}" for bit, name in vocab.FLAG_NAMES.items()),
        "  sleep_stage: wake, rem, nrem or unknown, estimated from the heartbeats on the host "
        "(nightstand.sleep: SleepECG's network + a layer fit on slpdb; not EEG staging)",
        "",
        "beats.csv - one row per stored heartbeat (pulse peak)",
        "  unix_ms: beat time (ms since 1970 UTC); t_off_ms: ms after the night's start",
        f"  ibi_ms: interval from the previous stored beat (empty: first beat or a gap > "
        f"{MAX_IBI_MS} ms)",
        "  pwa_counts: pulse-wave amplitude (ADC counts)",
        "",
        "events.csv - kind: event code; kind_name: its name; values: name=value pairs:",
        *(f"  {name}: {', '.join(vals) or '-'}" for _k, (name, vals) in
          sorted(vocab.EVENT_KINDS.items())),
    ]
    try:
        paths[3].write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {paths[3]}: {e.strerror}") from None
    return paths


# ---- EDF+ ---------------------------------------------------------------------------------------

def edf_digital(values: np.ndarray, pmin: float, pmax: float) -> tuple[np.ndarray, int]:
    """Physical values -> EDF digital samples; NaN -> DIG_MIN (unknown). Values above pmax are
    clipped (counted). -> (int16-range samples, number clipped)."""
    gain = (DIG_MAX - DIG_MIN) / (pmax - pmin)
    d = np.round((values - pmin) * gain + DIG_MIN)
    clipped = int(np.count_nonzero(d[~np.isnan(d)] > DIG_MAX))
    d = np.where(np.isnan(d), DIG_MIN, np.clip(d, DIG_MIN + 1, DIG_MAX))
    return d.astype(np.int32), clipped


def _annotations(nd: NightData, g: Grid, t0: float, pad: int) -> list[tuple[float, float, str]]:
    ann: list[tuple[float, float, str]] = [(0.0, -1.0, UNKNOWN_NOTE)]
    for e in sorted(nd.events, key=lambda e: e.get("unix_ms") or 0):
        if e.get("unix_ms") is None:
            continue
        vals = list(e.get("values") or [])
        dur = -1.0
        if e.get("kind") == vocab.EV_AROUSAL and vals and vals[0] > 0:
            dur = vals[0] / 1000.0
        name = str(e.get("kind_name") or e.get("kind"))
        note = f" {e['text']}" if e.get("text") else ""
        text = f"{name} {_values_text(e.get('kind', 0), vals)}".rstrip() + note
        if len(text) > MAX_TEXT:  # too long with value names: values only, in vocab order
            text = f"{name} {','.join(str(v) for v in vals)}".rstrip() + note
        ann.append((e["unix_ms"] / 1000.0 - t0, dur, text[:MAX_TEXT]))
    for bit in QUALITY_FLAGS:
        for a, b in runs((g.flags & bit) != 0):
            ann.append(((a + pad) * EPOCH_S, (b - a) * EPOCH_S,
                        f"quality {vocab.FLAG_NAMES[bit]}"))
    for a, b in runs(~g.present):
        ann.append(((a + pad) * EPOCH_S, (b - a) * EPOCH_S, "quality no_record"))
    return ann


def export_edf(store: Store, row_id: int, out_dir: Path | str) -> Path:
    """Write night-<date>-<id>.edf (EDF+C). -> its path."""
    import pyedflib

    out = prepare_out_dir(out_dir)
    nd, _night = load_night(store, row_id)
    g = build_grid(nd.epochs)
    if not g.n:
        raise UserError(f"night {row_id} has no epochs: nothing to export as EDF+")
    times = [e["unix_ms"] / 1000.0 for e in nd.events if e.get("unix_ms") is not None]
    times += [nd.beat_t_ms[0] / 1000.0] if nd.beat_t_ms else []
    earliest = min([g.t0_s, *times])
    pad = int(math.ceil((g.t0_s - earliest) / EPOCH_S))
    t0 = g.t0_s - pad * EPOCH_S
    n_rec = g.n + pad
    ann = _annotations(nd, g, t0, pad)
    sleep = _sleep(store, nd)
    if sleep is not None:  # one annotation per run of the same estimated stage
        k = 0
        while k < len(sleep.stages):
            j = k
            while j + 1 < len(sleep.stages) and sleep.stages[j + 1] == sleep.stages[k]:
                j += 1
            ann.append((sleep.t0_unix_s - t0 + k * EPOCH_S, (j - k + 1) * EPOCH_S,
                        SLEEP_STAGE_TEXT[sleep.stages[k]]))
            k = j + 1
    beats = [(t / 1000.0 - t0, -1.0, "beat") for t in nd.beat_t_ms]
    samples = []
    headers = []
    for label, key, unit, pmin, pmax, factor in EDF_SIGNALS:
        v = np.concatenate([np.full(pad, np.nan), g.values[key] * factor])
        d, clipped = edf_digital(v, pmin, pmax)
        if clipped:
            ann.append((0.0, -1.0, f"{label} clipped at {pmax:g} x{clipped}"[:MAX_TEXT]))
        samples.append(d)
        headers.append({"label": label, "dimension": unit, "sample_frequency": 1 / EPOCH_S,
                        "physical_min": pmin, "physical_max": pmax, "digital_min": DIG_MIN,
                        "digital_max": DIG_MAX, "transducer": "nightstand",
                        "prefilter": "30-s epoch value"})
    slots = n_rec * MAX_ANNOTATION_SIGNALS
    if len(ann) + len(beats) > slots - n_rec:
        ann.append((0.0, -1.0, "beats omitted: see beats.csv"))
        beats = []
    n_ann = min(MAX_ANNOTATION_SIGNALS, max(1, -(-(len(ann) + len(beats)) // n_rec) + 1))
    path = out / f"night-{nd.night_date().isoformat()}-{row_id}.edf"
    try:
        w = pyedflib.EdfWriter(str(path), len(EDF_SIGNALS), file_type=pyedflib.FILETYPE_EDFPLUS)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e}") from None
    try:
        w.set_number_of_annotation_signals(n_ann)
        w.setSignalHeaders(headers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # 30-s records are what we want
            w.setDatarecordDuration(EPOCH_S)
        w.setStartdatetime(local_time(t0, nd.utc_offset_s))
        # EDF+ header subfields are separated by spaces: none inside a subfield
        w.setEquipment(_ascii(f"nightstand_{nd.device_id}"))
        w.setRecordingAdditional(_ascii(f"night_{nd.night_id}_UTC{nd.utc_offset_s / 3600:+g}h"))
        w.writeSamples(samples, digital=True)
        for onset, dur, text in sorted(ann + beats, key=lambda a: a[0]):
            w.writeAnnotation(max(0.0, onset), dur, text)
    finally:
        w.close()
    return path


def export_nights(store: Store, row_ids: list[int], fmt: str,
                  out_dir: Path | str) -> tuple[list[Path], list[str]]:
    """Export each night (CSV: one folder per night when there are several; EDF: one file each),
    going on past a night that cannot be exported. -> (files written, "night ID: why" for each
    night that failed). A problem that fails every night (the folder, the store) is raised."""
    if len(row_ids) > 1:
        prepare_out_dir(out_dir)  # a folder that cannot be written fails once, not per night
    from nightstand.report import each_night

    def write(row_id: int) -> list[Path]:
        if fmt == "csv":
            out = Path(out_dir) / f"night-{row_id}" if len(row_ids) > 1 else Path(out_dir)
            return export_csv(store, row_id, out)
        return [export_edf(store, row_id, out_dir)]

    return each_night(row_ids, write)
