"""Synthetic nights for tests and benchmarks, written by the firmware's own Recorder (so they are
real night files): known heart rate, gaps, lamp/room light, lights-out and events."""

from __future__ import annotations

import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from nightstand.store import Store
from nsdev.core import nightfile, vocab
from nsdev.recorder import Recorder


class _Free:
    def __call__(self, root: str) -> int:
        return 1 << 40


@dataclass
class SynthNight:
    """A night of `epochs` 30-s epochs from start_unix_s (a multiple of 30). The first
    `evening_epochs` have the lamp and room light on, then it is dark. HR is `hr_bpm` +
    `hr_step_bpm` * (epoch index % 4) (mean hr_bpm + 1.5 * hr_step_bpm over whole cycles)."""
    start_unix_s: int
    utc_offset_s: int = 3600
    night_id: int = 1
    device_id: str = "synth-01"
    epochs: int = 240
    evening_epochs: int = 60
    hr_bpm: float = 60.0
    hr_step_bpm: float = 0.0
    rmssd_ms: float = 40.0
    spo2_pct: float = 96.0
    contact_off: tuple[tuple[int, int], ...] = ()  # [from, to) epoch index ranges
    motion: tuple[int, ...] = ()  # epochs flagged motion (HR still stored)
    missing: tuple[int, ...] = ()  # epochs with no record at all
    arousals: tuple[tuple[int, int, int], ...] = ()  # (epoch index, duration_ms, strength 0-1000)
    wind_down: tuple[tuple[int, int], ...] = ()  # (epoch index, duration_s)
    lamp_warm: float = 0.3
    lamp_amber: float = 0.5
    evening_lux: float = 20.0
    evening_mel_lx: float = 5.0
    dark_lux: float = 0.05
    arousal_score: float | None = 0.1
    beats: bool = True
    extra_events: list[tuple[int, int, tuple[int, ...], str | None]] = field(default_factory=list)
    clip_temp_c: float | None = None  # clip temperature in the evening (None: not recorded)
    clip_rise_c: float = 0.0  # added from the first dark epoch on

    def clip_at(self, k: int) -> float | None:
        if self.clip_temp_c is None or not self.contact(k):
            return None
        return self.clip_temp_c + (self.clip_rise_c if k >= self.evening_epochs else 0.0)

    def hr_at(self, k: int) -> float:
        return self.hr_bpm + self.hr_step_bpm * (k % 4)

    def contact(self, k: int) -> bool:
        return not any(a <= k < b for a, b in self.contact_off)


def make_night(s: SynthNight) -> bytes:
    """The night file bytes, as the device would have written them."""
    with tempfile.TemporaryDirectory() as tmp:
        rec = Recorder(str(Path(tmp) / "data"), device_id=s.device_id, fw_version="synth",
                       free_fn=_Free())
        rec._idx["next_id"] = s.night_id
        nid = rec.start_night(s.start_unix_s, s.utc_offset_s)
        for k in range(s.epochs):
            t = s.start_unix_s + 30 * k
            for ek, dur, strength in s.arousals:
                if ek == k:
                    rec.add_event(t, vocab.EV_AROUSAL, (dur, strength), None, 12000)
            for ek, dur_s in s.wind_down:
                if ek == k:
                    rec.add_event(t, vocab.EV_WIND_DOWN, (1, 0), None, 0)
                if ek + dur_s // 30 == k:
                    rec.add_event(t, vocab.EV_WIND_DOWN, (0, dur_s), None, 0)
            for ek, kind, values, text in s.extra_events:
                if ek == k:
                    rec.add_event(t, kind, values, text)
            if k in s.missing:
                continue
            evening = k < s.evening_epochs
            flags = 0
            hr = rmssd = spo2 = None
            if s.contact(k):
                hr, rmssd, spo2 = s.hr_at(k), s.rmssd_ms, s.spo2_pct
            else:
                flags |= vocab.FLAG_CONTACT_OFF
            if k in s.motion:
                flags |= vocab.FLAG_MOTION
            lamp = [s.lamp_warm, s.lamp_amber] if evening else [0.0, 0.0]
            if evening:
                flags |= vocab.FLAG_LAMP_ON
            rec.add_epoch(
                t, hr_bpm=hr, rmssd_ms=rmssd, sdnn_ms=rmssd, pwa_mean=1000 if hr else None,
                spo2_pct=spo2, sqi=1.0 if hr else 0.0,
                arousal_score=s.arousal_score if hr else None, temp_c=20.5, rh_pct=45.0,
                pressure_hpa=1010.0, gas_ohm=50000, lux=s.evening_lux if evening else s.dark_lux,
                mel_edi_lx=s.evening_mel_lx if evening else s.dark_lux / 2,
                lamp_level=lamp, flags=flags, clip_temp_c=s.clip_at(k))
            if s.beats and hr:
                ibi = int(round(60000 / hr))
                n = max(2, 30000 // ibi)
                rec.add_beats(t, 0, [ibi] * (n - 1), [1000] * n, n)
            rec.flush()
        rec.end_night(s.start_unix_s + 30 * s.epochs)
        return Path(rec._path(nid)).read_bytes()


def store_night(store: Store, data: bytes, device_id: str, night_id: int) -> int:
    """Put a night file into the store the way sync does (commit + decode). -> row id."""
    part = store.partial_path(device_id, night_id)
    part.write_bytes(data)
    return store.commit_night(device_id, night_id, part, zlib.crc32(data))


def restamp(data: bytes, start_unix_s: int, night_id: int, device_id: str = "synth-01",
            utc_offset_s: int = 3600) -> bytes:
    """The same night moved to another start time and id: a new header record (the firmware's
    encoder) in front of the template's other records, whose times are relative to the start."""
    end = len(data)
    n = nightfile.check_frame(data, len(vocab.MAGIC), end)
    if n < 0 or data[len(vocab.MAGIC)] != vocab.REC_HEADER:
        raise ValueError("template does not start with a header record")
    buf = bytearray(512)
    p = nightfile.write_magic(buf, 0)
    p = nightfile.encode_header(buf, p, device_id, night_id, start_unix_s, utc_offset_s,
                                "synth", 30, "")
    return bytes(buf[:p]) + data[len(vocab.MAGIC) + n + vocab.FRAME_OVERHEAD:]
