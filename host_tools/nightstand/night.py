"""A decoded night on the host: header, epochs, events, beats, environment and what was skipped.

Decoding is the firmware's own `nsdev.core.nightfile.decode`; this module only arranges the
records for reports, exports and the store.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsdev.core import nightfile, vocab

from nightstand.errors import UserError

# What every rendering of a night (text, HTML, exports) says.
DISCLAIMER = "nightstand measures and gives feedback; it does not diagnose or advise treatment."


@dataclass
class Night:
    header: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    env: list[dict[str, Any]] = field(default_factory=list)
    beat_t_ms: list[int] = field(default_factory=list)  # Unix ms of every stored beat
    beat_pwa: list[float | None] = field(default_factory=list)
    end: dict[str, Any] | None = None
    skipped: list[tuple[int, int, str]] = field(default_factory=list)
    size_bytes: int = 0
    header_recovered: bool = False  # the header record was damaged: see with_header()

    @property
    def night_id(self) -> int:
        return int(self.header["night_id"])

    @property
    def start_unix_s(self) -> int:
        return int(self.header["start_unix_s"])

    @property
    def utc_offset_s(self) -> int:
        return int(self.header["utc_offset_s"])

    @property
    def closed(self) -> bool:
        return self.end is not None

    def end_unix_s(self) -> int:
        if self.end is not None:
            return self.start_unix_s + int(self.end["t_off_s"])
        last = self.epochs[-1]["unix_s"] + vocab.EPOCH_S if self.epochs else self.start_unix_s
        return int(last)

    def ibis_ms(self) -> list[tuple[int, int]]:
        """(beat Unix ms, IBI ms to the next beat) for consecutive stored beats."""
        t = self.beat_t_ms
        return [(t[i], t[i + 1] - t[i]) for i in range(len(t) - 1) if 0 < t[i + 1] - t[i] < 3000]


def with_header(decoded: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """A decoded night whose header record was damaged, completed with a header recovered from
    elsewhere (the store's row: device, night number and the start time the device listed). The
    records carry their times as offsets from the start (docs/night-format.md, Times), so every
    absolute time follows; the header is marked `recovered`."""
    header = {**header, "recovered": True}
    start = int(header["start_unix_s"])
    for rec in decoded["records"]:
        if "t_off_s" in rec:
            rec["unix_s"] = start + rec["t_off_s"]
        if "t_off_ms" in rec:
            rec["unix_ms"] = start * 1000 + rec["t_off_ms"]
    return {**decoded, "header": header}


def decode_night(data: bytes, fallback_header: dict[str, Any] | None = None) -> Night:
    """Decode a night file; if its header record is damaged, use `fallback_header` (with
    device_id, night_id, start_unix_s, utc_offset_s) when given."""
    decoded = nightfile.decode(data)
    header = decoded["header"]
    if header is None and fallback_header is not None and \
            fallback_header.get("start_unix_s") is not None:
        decoded = with_header(decoded, fallback_header)
        header = decoded["header"]
    if header is None:
        raise UserError("night file has no readable header: it is not a nightstand night, or "
                        "its header is damaged and its start time is not known")
    night = Night(header=header, skipped=list(decoded["skipped"]), size_bytes=len(data),
                  header_recovered=bool(header.get("recovered")))
    start_ms = night.start_unix_s * 1000
    for rec in decoded["records"]:
        kind = rec["type"]
        if kind == "epoch":
            night.epochs.append(rec)
        elif kind == "event":
            night.events.append(rec)
        elif kind == "env":
            night.env.append(rec)
        elif kind == "beats":
            night.beat_t_ms.extend(start_ms + t for t in rec["t_ms"])
            pwa = rec["pwa"] or [None] * rec["n"]
            night.beat_pwa.extend(pwa)
        elif kind == "night_end":
            night.end = rec
    arousal_scores_at_onset(night.epochs, night.events)
    return night


def arousal_scores_at_onset(epochs: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """Give each arousal event's strength to the epoch holding its onset (in place).

    The device scores an epoch only with the arousals whose onset lies in it and that were
    confirmed before it closed; one confirmed later is carried by its EV_AROUSAL event (the
    onset time, duration and strength), so it is attributed here. An epoch's score is the
    largest strength of its arousals (docs/ppg-and-arousal.md)."""
    starts = sorted((e["unix_s"], i) for i, e in enumerate(epochs) if e.get("unix_s") is not None)
    keys = [t for t, _ in starts]
    for ev in events:
        vals = ev.get("values") or ()
        if ev.get("kind") != vocab.EV_AROUSAL or ev.get("unix_ms") is None or len(vals) < 2:
            continue
        onset_s = ev["unix_ms"] / 1000.0
        k = bisect.bisect_right(keys, onset_s) - 1
        if k < 0 or onset_s >= keys[k] + vocab.EPOCH_S:
            continue  # no epoch recorded around the onset
        e = epochs[starts[k][1]]
        strength = min(1.0, max(0.0, vals[1] / 1000.0))
        if e.get("arousal_score") is None or e["arousal_score"] < strength:
            e["arousal_score"] = strength


def read_night_file(path: Path) -> Night:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read night file {path}: {e.strerror}") from e
    return decode_night(data)


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in vocab.FLAG_NAMES.items() if flags & bit]
