"""Make the SleepECG reference fixtures once (needs tensorflow; NOT run by `make test`).

    python -m venv /tmp/secg && /tmp/secg/bin/pip install sleepecg==0.6.0 tensorflow-cpu==2.21.0
    KERAS_BACKEND=tensorflow /tmp/secg/bin/python tests/tools/make_sleepecg_fixtures.py

For each synthetic night (seeded; no recorded data is copied) it stores the beat times, the
features SleepECG extracts and the class probabilities its own `sleepecg.stage()` returns through
Keras, for each published classifier. tests/host/sleep/test_network.py checks the numpy port
(nightstand.sleep.network) against them.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "data" / "sleepecg_fixtures"
CLASSIFIERS = ("wrn-gru-mesa", "wrn-gru-mesa-weighted")


def synthetic_beats(seed: int, hours: float, gap: tuple[float, float] | None) -> np.ndarray:
    """Beat times with slow HR drifts, RSA, a few HR surges and an optional gap (no beats)."""
    rng = np.random.default_rng(seed)
    t, out = 0.0, []
    surge_at = rng.uniform(0, hours * 3600, size=int(hours * 6))
    while t < hours * 3600:
        hr = 62 + 8 * np.sin(2 * np.pi * t / 5400.0) + 3 * np.sin(2 * np.pi * t / 4.0)
        hr += 18 * np.exp(-np.min(np.abs(surge_at - t)) / 15.0) + rng.normal(0, 1.0)
        t += 60.0 / hr
        if gap is None or not gap[0] <= t < gap[1]:
            out.append(t)
    return np.asarray(out)


def main() -> int:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import sleepecg
    from sleepecg import SleepRecord, extract_features, load_classifier, stage

    nights = {
        "night_a": (synthetic_beats(1, 2.0, None), dt.time(23, 10)),
        "night_b": (synthetic_beats(2, 1.5, (1800.0, 2700.0)), None),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (beats, start) in nights.items():
        rec = SleepRecord(heartbeat_times=beats, recording_start_time=start, id=name)
        arrays = {"beats_s": beats, "start_s": np.array(
            [-1.0 if start is None else start.hour * 3600 + start.minute * 60])}
        for cname in CLASSIFIERS:
            clf = load_classifier(cname, "SleepECG")
            feats = extract_features([rec], **clf.feature_extraction_params)[0][0]
            arrays[f"features__{cname}"] = feats.astype(np.float64)
            arrays[f"prob__{cname}"] = stage(clf, rec, return_mode="prob").astype(np.float32)
        np.savez_compressed(OUT / f"{name}.npz", **arrays)
        print(f"{name}: {len(beats)} beats, {arrays['prob__wrn-gru-mesa'].shape[0]} epochs")
    (OUT / "VERSIONS.txt").write_text(
        f"sleepecg=={sleepecg.__version__}\n"
        f"keras backend {os.environ['KERAS_BACKEND']}\n"
        + "".join(f"{m}=={__import__(m).__version__}\n" for m in ("keras", "tensorflow")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
