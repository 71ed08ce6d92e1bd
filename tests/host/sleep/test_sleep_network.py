"""The numpy port of SleepECG's published network equals the library's own Keras output.

Fixtures: tests/data/sleepecg_fixtures/*.npz, made once by tests/tools/make_sleepecg_fixtures.py
with sleepecg 0.6.0 + tensorflow-cpu (see VERSIONS.txt there); no TensorFlow needed here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nightstand.sleep import network, staging

FIX = Path(__file__).resolve().parents[2] / "data" / "sleepecg_fixtures"
NIGHTS = sorted(FIX.glob("*.npz"))
CLASSIFIERS = ("wrn-gru-mesa", "wrn-gru-mesa-weighted")


def _start(d: np.lib.npyio.NpzFile) -> dt.time | None:
    s = float(d["start_s"][0])
    return None if s < 0 else dt.time(int(s // 3600), int(s % 3600 // 60))


def test_fixtures_present() -> None:
    assert len(NIGHTS) >= 2


@pytest.mark.parametrize("path", NIGHTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_network_equals_keras(path: Path, name: str) -> None:
    d = np.load(path)
    prob = network.load_network(name).predict(d[f"features__{name}"])
    ref = d[f"prob__{name}"]
    assert prob.shape == ref.shape
    np.testing.assert_allclose(prob, ref, atol=2e-6)
    assert (prob.argmax(1) == ref.argmax(1)).all()


@pytest.mark.parametrize("path", NIGHTS, ids=lambda p: p.stem)
def test_features_and_staging_match_the_library(path: Path) -> None:
    """Our call of sleepecg's feature extraction reproduces the fixture's features, and the
    beats-only staging gives the library's own probabilities (renormalised over W/R/N)."""
    d = np.load(path)
    beats = d["beats_s"]
    ref = d["prob__wrn-gru-mesa"]
    n = ref.shape[0]
    feats = staging.network_features(beats, n, _start(d))
    np.testing.assert_allclose(feats, d["features__wrn-gru-mesa"], rtol=1e-9, equal_nan=True)
    res = staging.stage_night(staging.NightSignals(beats, n, _start(d)), coef=None)
    want = ref[:, 1:] / ref[:, 1:].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(res.net_prob, want, atol=2e-6)
    names = ("wake", "rem", "nrem")
    assert res.beats_only_stages() == [names[int(i)] for i in want.argmax(1)]


def test_wrong_feature_count_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="expected"):
        network.load_network().predict(np.zeros((4, 5)))


def test_masked_steps_output_zero_state() -> None:
    """An all-mask epoch keeps the GRU state: the epochs around it equal the run without it."""
    d = np.load(NIGHTS[0])
    f = d["features__wrn-gru-mesa"][:40].copy()
    net = network.load_network()
    masked = np.vstack([f[:20], np.full((1, f.shape[1]), -1.0), f[20:]])
    a = net.predict(f)
    b = net.predict(masked)
    np.testing.assert_allclose(np.delete(b, 20, axis=0), a, atol=1e-6)


@settings(max_examples=5, deadline=None)
@given(block=st.integers(20, 239), gap=st.tuples(st.floats(0, 7000), st.floats(0, 2000)))
def test_features_in_blocks_are_the_whole_nights(block: int, gap: tuple[float, float]) -> None:
    """A long night's features are extracted in blocks of epochs (flat memory, issue 15 item
    12): the same numbers as one call over the whole night, gaps in the beats included (this
    failed on pNN50/pNN20 before they were put on the whole night's divisor)."""
    d = np.load(NIGHTS[0])
    beats = d["beats_s"]
    beats = beats[(beats < gap[0]) | (beats > gap[0] + gap[1])]
    n = d["prob__wrn-gru-mesa"].shape[0]
    whole = staging.network_features(beats, n, _start(d))  # n = 240: one block
    old = staging.FEATURE_BLOCK_EPOCHS
    try:
        staging.FEATURE_BLOCK_EPOCHS = block
        parts = staging.network_features(beats, n, _start(d))
    finally:
        staging.FEATURE_BLOCK_EPOCHS = old
    np.testing.assert_allclose(parts, whole, rtol=1e-9, atol=1e-12, equal_nan=True)
