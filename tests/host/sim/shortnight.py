"""The fifty minutes around bedtime that the honest-time and chip-clock tests simulate: regular
sinus rhythm (no ectopics), bedtime 22:42, lights out 22:45, wake (the dawn's end) 23:28."""

from __future__ import annotations

from typing import Any


def fifty_minutes(name: str, seed: int) -> dict[str, Any]:
    return {
        "format": 1,
        "name": f"test: fifty minutes, {name}",
        "seed": seed,
        "start": "2026-01-15T22:40:00",
        "utc_offset_s": 0,
        "duration_s": 3000,
        "bedtime": "22:42",
        "lights_out": "22:45",
        "wake": "23:28",
        "person": {"hr_evening_bpm": 62, "hr_sleep_bpm": 56, "rmssd_ms": 40},
        "events": {"ectopic": {"rate_per_hour": 0}},
    }
