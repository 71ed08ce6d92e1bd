"""Wake / REM / NREM per 30-s epoch from beat times, plus the device's own signals.

Two steps (docs/sleep.md):
1. SleepECG's published MESA classifier (`wrn-gru-mesa`): HRV features from the beat times
   (`sleepecg.extract_features`, the library's own code), the network run in numpy
   (`nightstand.sleep.network`, proven equal to Keras on stored fixtures).
2. A small multinomial logistic layer over the network's log-probabilities and what the night
   adds: the epoch's heart rate relative to the night's own median, beat-to-beat variability
   within the epoch and the time of night (smoothed over 5 epochs). The device's arousal score
   was tried as an input and made things worse on slpdb (measured, see the bench), so it is not
   one. Its coefficients were fit on slpdb by tests/bench/bench_sleep.py; the bench scores
   it leave-one-night-out only (never on a night it was fit on).
Then transparent rules for what slpdb cannot teach (no such channels there): an epoch with a
motion flag from the PPG front end, or with room light above the dark threshold while the lamp is
off, counts as wake (actigraphy scores movement as wake; Cole et al. 1992, Sleep 15:461).
Epochs with too few beats around them (finger off, gaps) are "unknown", never guessed.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field

import numpy as np
from nsdev.core.vocab import EPOCH_S

from nightstand.sleep.network import DEFAULT_CLASSIFIER, load_network

WAKE, REM, NREM, UNKNOWN = "wake", "rem", "nrem", "unknown"
STAGES = (WAKE, REM, NREM)  # column order of the probabilities below
MIN_BEATS_EPOCH = 10  # beats needed in the epoch +-1 epoch (90 s) to stage it (>= ~7 bpm)
MIN_BEATS_OWN = 5  # and in the epoch itself (no beat at all: finger off, nothing to stage)
MIN_BEATS_NIGHT = 300  # fewer beats in the whole night: nothing is staged (~5 min of beats)
LIT_LUX = 10.0  # room light above this (lamp off) while staged: lights are on, counted as wake
FLAG_MOTION = 0x0004  # nsdev.core.vocab.FLAG_MOTION
FLAG_CONTACT_OFF = 0x0001  # nsdev.core.vocab.FLAG_CONTACT_OFF
FLAG_LAMP_ON = 0x0020  # nsdev.core.vocab.FLAG_LAMP_ON
SMOOTH_EPOCHS = 5  # centred moving mean for the extra signals (2.5 min)

# Logistic layer: rows = wake, REM, NREM; columns = EXTRA_FEATURES + bias.
# Fit by `python tests/bench/bench_sleep.py --fit` on all 9 slpdb nights (L2, C=1, balanced
# class weights); the bench's scores come from the same fit repeated leave-one-night-out.
EXTRA_FEATURES = ("log_p_wake", "log_p_rem", "log_p_nrem", "hr_rel", "ibi_cv", "night_frac")
# Measured and left out: the device's arousal score (smoothed, and as arousal density over
# 10 min) made leave-one-night-out kappa worse on slpdb (bench_sleep.py "+arousal" row).
AROUSAL_FEATURES = ("arousal", "arousal_10min")
LAYER_COEF = np.array([
    [0.3786, 0.4071, 0.4534, 2.2510, -13.1499, -0.4839, 3.4032],
    [-0.6048, 0.1991, -0.2607, 0.6775, 8.5946, 0.4370, -0.7069],
    [0.2261, -0.6061, -0.1927, -2.9285, 4.5553, 0.0470, -2.6964],
])


@dataclass
class NightSignals:
    """What one night holds, on a regular 30-s epoch grid starting at the recording start.

    beat_times_s: beat (or R-peak) times, s from the start of epoch 0. The optional per-epoch
    arrays (length n_epochs, NaN or 0 where unknown) come from the device's epochs."""

    beat_times_s: np.ndarray
    n_epochs: int
    start_clock: dt.time | None = None  # local clock time of epoch 0 (SleepECG feature)
    arousal_score: np.ndarray | None = None  # device arousal score 0-1 (NaN unknown)
    flags: np.ndarray | None = None  # device epoch flags (nsdev.core.vocab.FLAG_*)
    lux: np.ndarray | None = None  # room light at the sensor, photopic lux


@dataclass
class Staging:
    stages: list[str]  # per epoch: wake / rem / nrem / unknown
    prob: np.ndarray  # (n, 3) wake, REM, NREM after the layer (NaN where unknown)
    net_prob: np.ndarray  # (n, 3) the SleepECG network alone, every epoch (as sleepecg.stage)
    notes: list[str] = field(default_factory=list)  # what was odd about the input

    @property
    def n(self) -> int:
        return len(self.stages)

    def beats_only_stages(self) -> list[str]:
        """The SleepECG network's own call (argmax) for every epoch, as `sleepecg.stage` gives
        it (no unknown epochs except when the night could not be run at all)."""
        return [UNKNOWN if np.isnan(p[0]) else STAGES[int(np.argmax(p))] for p in self.net_prob]


def _clean_beats(t: np.ndarray, notes: list[str]) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64).ravel()
    finite = np.isfinite(t)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} beat times were not numbers and were left out")
        t = t[finite]
    if t.size and np.any(np.diff(t) <= 0):
        notes.append("beat times were not strictly increasing: sorted, duplicates dropped")
        t = np.unique(t)
    return t


FEATURE_BLOCK_EPOCHS = 240  # epochs (2 h) given to sleepecg at a time (its memory ~60 KB/epoch)
_BLOCK_MARGIN_S = 10.0  # beats kept beyond a block's windows (and one more either side)


def network_features(beat_times_s: np.ndarray, n_epochs: int, start_clock: dt.time | None,
                     classifier: str = DEFAULT_CLASSIFIER) -> np.ndarray:
    """SleepECG's features for the classifier (its own extract_features), (n_epochs, 36).

    A long night is given to extract_features in blocks of FEATURE_BLOCK_EPOCHS epochs, each
    with the beats its epochs' windows (lookback/lookforward) reach plus a margin and one more
    beat either side, so every RR interval the windows use is the whole night's: its features
    are local to their windows (RR series resampled between neighbouring beats, NaN over an
    interval outside min/max_rri), so memory stays flat in the night's length and the numbers
    are the whole night's but for the rounding of the block's time shift
    (tests/host/sleep/test_sleep_network.py)."""
    from sleepecg import SleepRecord, extract_features

    net = load_network(classifier)
    params = net.info["feature_extraction_params"]
    beat_times_s = np.asarray(beat_times_s, dtype=np.float64)

    def features(beats: np.ndarray, n: int) -> np.ndarray:
        rec = SleepRecord(sleep_stages=np.zeros(n, dtype=int), sleep_stage_duration=EPOCH_S,
                          heartbeat_times=beats, recording_start_time=start_clock)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # empty windows (gaps) warn; they become NaN
            feats = extract_features([rec], **params)[0][0]
        return np.asarray(feats, dtype=np.float64)

    if n_epochs <= FEATURE_BLOCK_EPOCHS:
        return features(beat_times_s, n_epochs)
    blocks = []
    k0 = 0
    while k0 < n_epochs:
        k1 = min(n_epochs, k0 + FEATURE_BLOCK_EPOCHS)
        if n_epochs - k1 < 2:  # sleepecg needs two epochs: no block of one at the end
            k1 = n_epochs
        while True:
            lo_s = k0 * EPOCH_S - params["lookback"] - _BLOCK_MARGIN_S
            hi_s = (k1 - 1) * EPOCH_S + params["lookforward"] + _BLOCK_MARGIN_S
            i0 = max(int(np.searchsorted(beat_times_s, lo_s)) - 1, 0)
            i1 = int(np.searchsorted(beat_times_s, hi_s, side="right")) + 1
            try:
                blocks.append(features(beat_times_s[i0:i1] - k0 * EPOCH_S, k1 - k0))
                break
            except (ValueError, IndexError):
                # sleepecg fails on a stretch without one complete RR window (a long gap):
                # take it together with the next block, or with everything, as one call
                if k1 == n_epochs:
                    return features(beat_times_s, n_epochs)
                k1 = min(n_epochs, k1 + FEATURE_BLOCK_EPOCHS)
        k0 = k1
    return _whole_night_pnn(np.concatenate(blocks), beat_times_s, n_epochs, params)


def _whole_night_pnn(feats: np.ndarray, beat_times_s: np.ndarray, n_epochs: int,
                     params: dict) -> np.ndarray:
    """pNN50/pNN20 as sleepecg computes them for the whole night. Its nanmean over a boolean
    array counts the NaN padding of its ragged window array as False: the divisor is the
    longest window of the call (minus one), not the epoch's own. So they are NN50/NN20 over
    that width, which this counts for the whole night."""
    from sleepecg.feature_extraction import _FEATURE_GROUPS

    if params["feature_selection"][0] != "hrv-time":
        return feats
    names = list(_FEATURE_GROUPS["hrv-time"])
    stage_s = np.arange(n_epochs) * EPOCH_S
    rri_times = beat_times_s[1:]
    counts = (np.searchsorted(rri_times, stage_s + params["lookforward"])
              - np.searchsorted(rri_times, stage_s - params["lookback"]))
    width = int(counts.max()) - 1 if counts.size else 0
    for nn, pnn in (("NN50", "pNN50"), ("NN20", "pNN20")):
        i, j = names.index(nn), names.index(pnn)
        with np.errstate(invalid="ignore", divide="ignore"):
            feats[:, j] = feats[:, i] / width if width > 0 else np.nan
    return feats


def beats_per_epoch(beat_times_s: np.ndarray, n_epochs: int) -> np.ndarray:
    k = np.floor(beat_times_s / EPOCH_S).astype(np.int64)
    k = k[(k >= 0) & (k < n_epochs)]
    return np.bincount(k, minlength=n_epochs)


def _smooth(x: np.ndarray, w: int = SMOOTH_EPOCHS) -> np.ndarray:
    """Centred moving mean that ignores NaN (NaN where the whole window is NaN)."""
    ok = np.isfinite(x)
    v = np.where(ok, x, 0.0)
    ker = np.ones(w)
    num = np.convolve(v, ker, mode="same")
    den = np.convolve(ok.astype(float), ker, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)


def epoch_hr(beat_times_s: np.ndarray, n_epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean HR bpm, IBI coefficient of variation) per epoch from plausible IBIs (0.3-2 s)."""
    hr = np.full(n_epochs, np.nan)
    cv = np.full(n_epochs, np.nan)
    if beat_times_s.size < 3:
        return hr, cv
    ibi = np.diff(beat_times_s)
    t = beat_times_s[1:]
    ok = (ibi >= 0.3) & (ibi <= 2.0)
    k = np.floor(t[ok] / EPOCH_S).astype(np.int64)
    ibi = ibi[ok]
    sel = (k >= 0) & (k < n_epochs)
    k, ibi = k[sel], ibi[sel]
    cnt = np.bincount(k, minlength=n_epochs)
    s1 = np.bincount(k, weights=ibi, minlength=n_epochs)
    s2 = np.bincount(k, weights=ibi * ibi, minlength=n_epochs)
    have = cnt >= 5
    mean = np.where(have, s1 / np.maximum(cnt, 1), np.nan)
    var = np.where(have, s2 / np.maximum(cnt, 1) - mean ** 2, np.nan)
    hr = 60.0 / mean
    cv = np.sqrt(np.clip(var, 0, None)) / mean
    return hr, cv


def extra_features(net_prob: np.ndarray, sig: NightSignals,
                   with_arousal: bool = False) -> np.ndarray:
    """(n, len(EXTRA_FEATURES)) inputs of the logistic layer; NaN-free (unknown -> neutral).

    with_arousal: append AROUSAL_FEATURES (the bench's ablation)."""
    n = sig.n_epochs
    eps = 1e-4
    logp = np.log(np.clip(net_prob, eps, 1.0))
    ar = np.zeros(n) if sig.arousal_score is None else np.asarray(sig.arousal_score, float)
    ar_known = np.where(np.isfinite(ar), ar, np.nan)
    ar_long = np.nan_to_num(_smooth((ar_known > 0).astype(float), 21), nan=0.0)
    ar = np.nan_to_num(_smooth(ar_known), nan=0.0)
    hr, cv = epoch_hr(sig.beat_times_s, n)
    med = np.nanmedian(hr) if np.isfinite(hr).any() else np.nan
    hr_rel = np.nan_to_num(_smooth(hr / med - 1.0), nan=0.0)
    cv_s = np.nan_to_num(_smooth(cv), nan=float(np.nanmedian(cv)) if np.isfinite(cv).any()
                         else 0.0)
    frac = (np.arange(n) + 0.5) / max(n, 1)
    cols = [logp[:, 0], logp[:, 1], logp[:, 2], hr_rel, cv_s, frac]
    if with_arousal:
        cols += [ar, ar_long]
    return np.column_stack(cols)


def apply_layer(x: np.ndarray, coef: np.ndarray = LAYER_COEF) -> np.ndarray:
    """Softmax of the logistic layer -> (n, 3) probabilities (wake, REM, NREM)."""
    z = x @ coef[:, :-1].T + coef[:, -1]
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def stage_night(sig: NightSignals, classifier: str = DEFAULT_CLASSIFIER,
                coef: np.ndarray | None = LAYER_COEF, with_arousal: bool = False) -> Staging:
    """Stage one night. Never raises on odd data: unknown epochs and notes instead.

    coef=None: the network alone (beats only) decides wake/REM/NREM."""
    notes: list[str] = []
    n = max(0, int(sig.n_epochs))
    nan3 = np.full((n, 3), np.nan)
    beats = _clean_beats(sig.beat_times_s, notes)
    sig = NightSignals(beats, n, sig.start_clock, sig.arousal_score, sig.flags, sig.lux)
    if n == 0:
        return Staging([], nan3, nan3, notes + ["the night has no epochs"])
    inside = beats[(beats >= 0) & (beats < n * EPOCH_S)]
    if inside.size < MIN_BEATS_NIGHT:
        notes.append(f"only {inside.size} beats in {n * EPOCH_S / 60:.0f} min (need "
                     f"{MIN_BEATS_NIGHT}): sleep not staged")
        return Staging([UNKNOWN] * n, nan3, nan3, notes)
    cnt = beats_per_epoch(inside, n)
    near = np.convolve(cnt, np.ones(3, dtype=np.int64), mode="same")
    known = (near >= MIN_BEATS_EPOCH) & (cnt >= MIN_BEATS_OWN)
    if (~known).any():
        notes.append(f"{int((~known).sum())} of {n} epochs have too few beats (finger off or "
                     "gap): unknown")
    try:
        feats = network_features(beats, n, sig.start_clock, classifier)  # beats past the end count
    except (ValueError, IndexError):
        # sleepecg's spectral features raise when no heart-rate window of the call is whole
        # (sleepecg 0.6.0 `_nanpsd` with no full row): gaps everywhere, nothing to stage on
        notes.append("gaps in every heart-rate window (finger contact or lost samples): "
                     "sleep not staged")
        return Staging([UNKNOWN] * n, nan3, nan3, notes)
    p4 = load_network(classifier).predict(feats).astype(np.float64)
    net = p4[:, 1:4] / np.maximum(p4[:, 1:4].sum(axis=1, keepdims=True), 1e-12)
    if coef is None:
        prob = net.copy()
        prob[~known] = np.nan
    else:
        x = extra_features(np.where(known[:, None], net, 1 / 3), sig, with_arousal)
        prob = apply_layer(x, coef)
        prob[~known] = np.nan
    stages = [UNKNOWN if not known[i] else STAGES[int(np.argmax(prob[i]))] for i in range(n)]
    # Rules for signals slpdb has no channel for (not fit, not scored there).
    flags = None if sig.flags is None else np.asarray(sig.flags, dtype=np.int64)
    lux = None if sig.lux is None else np.asarray(sig.lux, dtype=float)
    moved = 0
    for i in range(n):
        if stages[i] == UNKNOWN:
            continue
        motion = flags is not None and bool(flags[i] & FLAG_MOTION)
        lamp = flags is not None and bool(flags[i] & FLAG_LAMP_ON)
        lit = lux is not None and np.isfinite(lux[i]) and lux[i] > LIT_LUX and not lamp
        if (motion or lit) and stages[i] != WAKE:
            stages[i] = WAKE
            moved += 1
    if moved:
        notes.append(f"{moved} epochs set to wake by motion or room light")
    return Staging(stages, prob, net, notes)
