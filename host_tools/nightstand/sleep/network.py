"""SleepECG's published wake/REM/NREM network (`wrn-gru-mesa*`) run in numpy.

The weights are the ones shipped inside the `sleepecg` package (a `.zip` holding `info.yml` and
`classifier.keras`; the `.keras` file is itself a zip holding `config.json` and
`model.weights.h5`). They are read with h5py; no Keras or TensorFlow is needed at run time.

Architecture (from the classifier's own `config.json`, Zhang/Keras conventions):
Masking(-1) -> BatchNormalization(eps 1e-3) -> Dense(64) -> ReLU -> Bidirectional(GRU 8, concat)
-> Bidirectional(GRU 8, concat) -> Dense(4, softmax). The GRU is Keras' `reset_after=True`
variant: gates ordered update z, reset r, candidate h; the reset gate multiplies the recurrent
part *after* its matrix product, and there are separate input and recurrent biases. A masked
time step (every feature == mask value) keeps the previous state and outputs zeros
(`zero_output_for_mask`). Outputs: probabilities of (undefined, wake, REM, NREM) per epoch.
tests/host/sleep/test_network.py proves this equal to the library's own Keras output on stored
fixtures (tests/tools/make_sleepecg_fixtures.py made them once, with tensorflow-cpu).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from nightstand.errors import UserError

DEFAULT_CLASSIFIER = "wrn-gru-mesa"
CLASS_NAMES = ("undefined", "wake", "rem", "nrem")


@dataclass
class GRUWeights:
    kernel: np.ndarray  # (n_in, 3 units): z, r, h
    recurrent: np.ndarray  # (units, 3 units)
    bias: np.ndarray  # (2, 3 units): input bias, recurrent bias

    @property
    def units(self) -> int:
        return int(self.recurrent.shape[0])


@dataclass
class Network:
    name: str
    info: dict
    bn: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # gamma, beta, mean, var
    bn_eps: float
    dense: tuple[np.ndarray, np.ndarray]
    grus: list[tuple[GRUWeights, GRUWeights]] = field(default_factory=list)  # (forward, back)
    out: tuple[np.ndarray, np.ndarray] = (np.zeros((0, 0)), np.zeros(0))
    mask_value: float = -1.0

    @property
    def n_features(self) -> int:
        return int(self.bn[0].shape[0])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(n_epochs, n_features) -> (n_epochs, 4) class probabilities, in float32 like Keras.

        NaN/inf features are replaced by the mask value first (as `sleepecg.stage` does)."""
        x = np.array(features, dtype=np.float32, copy=True)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected (n, {self.n_features}) features, got {x.shape}")
        x[~np.isfinite(x)] = np.float32(self.mask_value)
        mask = ~np.all(x == np.float32(self.mask_value), axis=1)
        gamma, beta, mean, var = self.bn
        h = (x - mean) / np.sqrt(var + np.float32(self.bn_eps)) * gamma + beta
        h = np.maximum(h @ self.dense[0] + self.dense[1], 0).astype(np.float32)
        for fwd, bwd in self.grus:
            f = _gru(h, mask, fwd, backwards=False)
            b = _gru(h, mask, bwd, backwards=True)
            h = np.concatenate([f, b], axis=1)
        logits = h @ self.out[0] + self.out[1]
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))).astype(np.float32)


def _gru(x: np.ndarray, mask: np.ndarray, w: GRUWeights, *, backwards: bool) -> np.ndarray:
    """One Keras GRU (reset_after=True, return_sequences) over x (T, n_in)."""
    n, u = x.shape[0], w.units
    xin = (x @ w.kernel + w.bias[0]).astype(np.float32)  # all input projections at once
    state = np.zeros(u, dtype=np.float32)
    out = np.zeros((n, u), dtype=np.float32)
    order = range(n - 1, -1, -1) if backwards else range(n)
    for t in order:
        if not mask[t]:
            continue  # state carried over, output stays zero
        rec = state @ w.recurrent + w.bias[1]
        z = _sigmoid(xin[t, :u] + rec[:u])
        r = _sigmoid(xin[t, u:2 * u] + rec[u:2 * u])
        hh = np.tanh(xin[t, 2 * u:] + r * rec[2 * u:])
        state = (z * state + (1 - z) * hh).astype(np.float32)
        out[t] = state
    return out


def sleepecg_classifier_path(name: str) -> Path:
    try:
        import sleepecg
    except ImportError:
        raise UserError("sleep staging needs the `sleepecg` package (run `make setup`)") from None
    path = Path(sleepecg.__file__).resolve().parent / "classifiers" / f"{name}.zip"
    if not path.exists():
        raise UserError(f"sleepecg ships no classifier named {name!r} ({path.parent})")
    return path


@lru_cache(maxsize=4)
def load_network(name: str = DEFAULT_CLASSIFIER) -> Network:
    """The published classifier `name` from the installed sleepecg package."""
    import h5py
    import yaml

    with zipfile.ZipFile(sleepecg_classifier_path(name)) as outer:
        info = yaml.safe_load(outer.read("info.yml"))
        keras_bytes = outer.read("classifier.keras")
    with zipfile.ZipFile(io.BytesIO(keras_bytes)) as inner:
        config = json.loads(inner.read("config.json"))
        weights = inner.read("model.weights.h5")
    layers = {ly["class_name"]: ly["config"] for ly in config["config"]["layers"]}
    kinds = [ly["class_name"] for ly in config["config"]["layers"]]
    expect = ["InputLayer", "Masking", "BatchNormalization", "Dense", "ReLU", "Bidirectional",
              "Bidirectional", "Dense"]
    if kinds != expect:
        raise UserError(f"classifier {name!r} has layers {kinds}; this port runs {expect}")
    with h5py.File(io.BytesIO(weights), "r") as f:
        def v(path: str) -> np.ndarray:
            return np.asarray(f[path], dtype=np.float32)

        def gru(prefix: str) -> GRUWeights:
            return GRUWeights(v(f"{prefix}/cell/vars/0"), v(f"{prefix}/cell/vars/1"),
                              v(f"{prefix}/cell/vars/2"))

        bn = tuple(v(f"layers/batch_normalization/vars/{i}") for i in range(4))
        grus = [(gru(f"layers/{b}/forward_layer"), gru(f"layers/{b}/backward_layer"))
                for b in ("bidirectional", "bidirectional_1")]
        return Network(
            name=name, info=info, bn=bn,  # type: ignore[arg-type]
            bn_eps=float(layers["BatchNormalization"]["epsilon"]),
            dense=(v("layers/dense/vars/0"), v("layers/dense/vars/1")),
            grus=grus,
            out=(v("layers/dense_1/vars/0"), v("layers/dense_1/vars/1")),
            mask_value=float(info.get("mask_value", -1)),
        )
