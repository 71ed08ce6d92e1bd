"""`nightstand replay --beats`: the firmware's beat-only path under MicroPython + staging."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from nightstand.cli import main
from nightstand.sleep.beats import BeatList, device_beats
from nightstand.sleep.replay import arousal_index

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "firmware"))


def surge_beats(hours: float = 1.0, seed: int = 5) -> np.ndarray:
    """Beats at ~60 bpm with a 25% HR surge for ~10 s every ~3 min (arousal-like)."""
    rng = np.random.default_rng(seed)
    t, out = 5.0, []
    surges = np.arange(120.0, hours * 3600, 180.0) + rng.uniform(-20, 20)
    while t < hours * 3600:
        ibi = 1.0 + 0.03 * np.sin(2 * np.pi * t / 4.0) + rng.normal(0, 0.01)
        if np.any((t >= surges) & (t < surges + 10)):
            ibi *= 0.75
        t += ibi
        out.append(t)
    return np.array(out)


def cpython_events(t: np.ndarray) -> list[tuple[int, int]]:
    from nsdev.core.arousal import ArousalEstimator

    est = ArousalEstimator()
    ms = np.round(t * 1000).astype(int)
    out = []
    for i in range(1, len(ms)):
        ev = est.add_beat(int(ms[i]), int(ms[i] - ms[i - 1]), None, 0)
        if ev is not None:
            out.append((ev.onset_ms, ev.duration_ms))
    return out


def test_replay_beats_writes_stages_and_the_devices_events(tmp_path: Path, capsys) -> None:
    t = surge_beats()
    src = tmp_path / "beats.csv"
    src.write_text("time_s\n" + "".join(f"{x:.3f}\n" for x in t))
    out = tmp_path / "out"
    assert main(["replay", "--beats", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "TST" in printed and "arousal index" in printed
    epochs = list(csv.DictReader(open(out / "epochs.csv")))
    assert len(epochs) == int(np.ceil(t[-1] / 30))
    assert {"stage", "arousal_score"} <= set(epochs[0])
    assert {e["stage"] for e in epochs} <= {"wake", "rem", "nrem", "unknown"}
    events = list(csv.DictReader(open(out / "events.csv")))
    assert list(events[0]) == ["onset_s", "duration_s", "kind"]
    # One row per event the firmware recorded: same as the estimator run in CPython.
    ref = cpython_events(np.round(t, 3))
    assert len(events) == len(ref) >= 10
    for row, (on_ms, dur_ms) in zip(events, ref, strict=True):
        assert float(row["onset_s"]) == pytest.approx(on_ms / 1000.0, abs=1e-3)
        assert float(row["duration_s"]) == pytest.approx(dur_ms / 1000.0, abs=1e-3)
    scores = [float(e["arousal_score"]) for e in epochs if e["arousal_score"]]
    assert max(scores) > 0
    # the beats carry RSA at 0.25 Hz: 15 breaths/min where the breathing rate is known
    resp = [float(e["resp_bpm"]) for e in epochs if e["resp_bpm"]]
    assert len(resp) > len(epochs) // 3 and abs(float(np.median(resp)) - 15.0) < 1.0


def test_epoch_scores_follow_the_beats_clock() -> None:
    t = surge_beats(0.3) + 1000.0  # a list that starts late on its own clock
    r = device_beats(BeatList(t, np.zeros(t.size, bool)), 40, 990.0)
    assert all(990.0 < on < 990.0 + 40 * 30 for on, _d, _s in r.events)


def test_arousal_index_counts_events_in_sleep_only() -> None:
    stages = ["wake"] * 4 + ["nrem"] * 116  # 58 min of sleep
    n, idx = arousal_index([10.0, 200.0, 3000.0, 9999.0], stages)
    assert n == 2 and idx == pytest.approx(2 / (58 / 60))
    assert arousal_index([10.0], ["wake"] * 10) == (0, None)


@pytest.mark.parametrize("text, msg", [
    ("", "empty"),
    ("t,x\n1,2\n", "no `time_s` column"),
    ("time_s\n1\nabc\n", ":3: expected a number"),
    ("time_s\n2\n1\n", "increase strictly"),
    ("time_s\n1\n", "at least two beats"),
    ("time_s\n1\nnan\n", "NaN"),
])
def test_bad_beat_lists_give_one_clear_line(tmp_path: Path, capsys, text: str, msg: str) -> None:
    src = tmp_path / "b.csv"
    src.write_text(text)
    assert main(["replay", "--beats", str(src), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


def test_headerless_list_and_a_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["replay", "--beats", str(tmp_path / "nope.csv"), "--out",
                 str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err
    src = tmp_path / "plain.csv"
    src.write_text("".join(f"{x:.3f}\n" for x in surge_beats(0.2)))
    assert main(["replay", "--beats", str(src), "--out", str(tmp_path / "o")]) == 0
    assert "not staged" in capsys.readouterr().out or (tmp_path / "o" / "epochs.csv").exists()
