"""Sleep staging accuracy on slpdb: nightstand vs SleepECG's published classifier, same beats.

Usage: python tests/bench/bench_sleep.py --data ../shared/data [--fit]

For each slpdb night (ECG R-peak times with 30-s reference stages; severe sleep apnoea):
- SleepECG: its published `wrn-gru-mesa` run through its own API (`sleepecg.stage`, Keras) when
  Keras and a backend import here, else "n/a"; and always the numpy port of the same network
  (nightstand.sleep.network, proven equal to Keras on tests/data/sleepecg_fixtures).
- nightstand: the same network + the logistic layer (HR relative to the night, IBI variability,
  time of night), fit LEAVE-ONE-NIGHT-OUT: each night is scored by a layer fit on the other 8.
- +arousal: the same plus the firmware's beat-only arousal score (run under MicroPython) as an
  input: the measured test of whether that device signal helps wake detection.
Cohen's kappa and accuracy for wake/sleep and wake/REM/NREM, per night and pooled; TST, WASO and
SE errors vs the reference hypnogram. Movement-time (MT) epochs are left out of the scores.
--fit prints the layer fit on all nights (the coefficients shipped in staging.LAYER_COEF).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))
sys.path.insert(0, str(ROOT / "firmware"))

from nightstand.sleep import beats as sbeats  # noqa: E402
from nightstand.sleep import metrics as smetrics  # noqa: E402
from nightstand.sleep import staging as st  # noqa: E402

REF_MAP = {"W": st.WAKE, "R": st.REM, "1": st.NREM, "2": st.NREM, "3": st.NREM, "4": st.NREM}
CODE = {st.WAKE: 0, st.REM: 1, st.NREM: 2}
TF_PIN = "tensorflow-cpu==2.21.0"


def kappa(y: np.ndarray, p: np.ndarray, k: int) -> float:
    cm = np.zeros((k, k))
    np.add.at(cm, (y, p), 1)
    n = cm.sum()
    po = np.trace(cm) / n
    pe = float((cm.sum(0) * cm.sum(1)).sum()) / n / n
    return float((po - pe) / (1 - pe)) if pe < 1 else float("nan")


def scores(ref: list[str], pred: list[str]) -> dict[str, float]:
    """kappa/accuracy wake-sleep and W/R/N over epochs with a reference stage; an epoch we
    could not stage counts as wrong (called wake) so coverage is not free."""
    pairs = [(r, p if p != st.UNKNOWN else st.WAKE) for r, p in zip(ref, pred, strict=True)
             if r != st.UNKNOWN]
    y = np.array([CODE[r] for r, _ in pairs])
    x = np.array([CODE[p] for _, p in pairs])
    ys, xs = (y > 0).astype(int), (x > 0).astype(int)
    return dict(k2=kappa(ys, xs, 2), a2=float((ys == xs).mean()), k3=kappa(y, x, 3),
                a3=float((y == x).mean()), n=len(y))


def load_night(folder: Path, name: str) -> tuple[sbeats.BeatList, list[str]]:
    b = sbeats.read_beat_list(folder / f"{name}_beats.csv")
    ref = [REF_MAP.get(r["stage"].strip(), st.UNKNOWN)
           for r in csv.DictReader(open(folder / f"{name}_epochs.csv"))]
    return b, ref


def sleepecg_keras(beat_times: np.ndarray, n: int) -> list[str] | str:
    """SleepECG's own API (Keras); a reason string when it cannot run here."""
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sleepecg import SleepRecord, load_classifier, stage

            clf = load_classifier("wrn-gru-mesa", "SleepECG")
    except Exception:  # no keras / no backend installed: that column is n/a
        return f"n/a (pip install {TF_PIN})"
    rec = SleepRecord(sleep_stages=np.zeros(n, dtype=int), sleep_stage_duration=30,
                      heartbeat_times=beat_times)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = stage(clf, rec, return_mode="int")
    names = {1: st.WAKE, 2: st.REM, 3: st.NREM}
    return [names.get(int(c), st.UNKNOWN) for c in pred]


def fit_layer(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
    m.fit(x, y)
    coef = np.zeros((3, x.shape[1] + 1))
    for row, cls in enumerate(m.classes_):
        coef[int(cls), :-1] = m.coef_[row]
        coef[int(cls), -1] = m.intercept_[row]
    return coef


def metric_errors(ref: list[str], pred: list[str]) -> tuple[float, float, float]:
    r = smetrics.sleep_metrics(ref)
    p = smetrics.sleep_metrics(pred)
    def d(a: float | None, b: float | None) -> float:
        return float("nan") if a is None or b is None else a - b
    return d(p.tst_min, r.tst_min), d(p.waso_min, r.waso_min), 100 * d(p.se, r.se)


# ----------------------------------------------------------------------------- breathing rate
def _ref_resp_bpm(ref: np.ndarray, t_end: float, win_s: float = 64.0) -> float:
    """Reference breathing rate: the impedance signal's spectral peak (6-30 /min, Hann window)
    over the same 64-s window the device uses."""
    sel = (ref[:, 0] >= t_end - win_s) & (ref[:, 0] < t_end)
    x = ref[sel, 1] - ref[sel, 1].mean()
    fs = (ref.shape[0] - 1) / float(ref[-1, 0] - ref[0, 0])  # times in the file are rounded
    n = 1 << 16
    sp = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    f = np.fft.rfftfreq(n, 1.0 / fs) * 60.0
    band = (f >= 6.0) & (f <= 30.0)
    return float(f[band][np.argmax(sp[band])])


def bench_breathing(data: Path) -> None:
    """bidmc01 PPG through the firmware on the virtual board (`nightstand replay`), then the
    firmware's breathing-rate estimator under MicroPython on the replayed beats, every 30 s."""
    import subprocess
    import tempfile

    from nightstand import paths
    from nightstand.replay import replay

    rec = data / "ppg" / "bidmc01"
    if not (rec / "resp.csv").exists():
        print(f"\nbreathing rate: SKIP - {rec / 'resp.csv'} not found")
        return
    ref = np.loadtxt(rec / "resp.csv", delimiter=",", skiprows=1)
    with tempfile.TemporaryDirectory() as tmp:
        beats_csv, _ = replay(rec / "ppg.csv", Path(tmp) / "out", quiet=True)
        rows = list(csv.DictReader(open(beats_csv)))
        ends = np.arange(64.0, float(rows[-1]["time_s"]) + 1e-9, 30.0)
        lines, j = [], 0
        for end in ends:
            while j < len(rows) and float(rows[j]["time_s"]) <= end:
                r = rows[j]
                lines.append(f"B {round(float(r['time_s']) * 1000)} {r['ibi_ms'] or 0} "
                             f"{r['pwa'] or 0} 0")
                j += 1
            lines.append(f"Q {round(end * 1000)}")
        src = Path(tmp) / "resp.txt"
        src.write_text("\n".join(lines) + "\n")
        print(f"\nbreathing rate on bidmc01 (PPG replayed through the firmware; estimator under "
              f"MicroPython; reference: impedance respiration, spectral peak over the same 64 s),"
              f" {len(ends)} estimates every 30 s")
        print(f"{'path':12s} {'MAE /min':>8s} {'max err':>7s} {'coverage':>8s}")
        env = dict(os.environ, MICROPYPATH=f"{paths.FIRMWARE_DIR}:.frozen")
        for mode in ("fused", "beat-only"):
            out = subprocess.run(
                [paths.micropython_bin(), "-X", "heapsize=256K",
                 str(Path(__file__).with_name("mp_resp_driver.py")), str(src), mode],
                env=env, capture_output=True, text=True, timeout=600, check=True).stdout
            est = [(int(p[1]) / 1000.0, None if p[2] == "-" else float(p[2]))
                   for p in (ln.split() for ln in out.splitlines() if ln.startswith("R "))]
            err = [abs(v - _ref_resp_bpm(ref, t)) for t, v in est if v is not None]
            mae = f"{np.mean(err):8.2f} {np.max(err):7.2f}" if err else f"{'-':>8s} {'-':>7s}"
            print(f"{mode:12s} {mae} {len(err):4d}/{len(est):<3d}")


# ----------------------------------------------------------------------------- smart dawn
DEPTH = {"W": "wake", "1": "light", "2": "light", "R": "REM", "3": "deep", "4": "deep",
         "MT": "wake"}


def bench_dawn(folder: Path, names: list[str]) -> None:
    """Each slpdb night with a 30-min wake window over its last 30 min: the reference stage of
    the epoch at which the device's smart dawn starts vs the fixed dawn (the window's end)."""
    import subprocess
    import tempfile

    from nightstand import paths

    print("\nsmart dawn on slpdb (the firmware's arousal path + nsdev.core.smartdawn under "
          "MicroPython, beats only, no motion channel): window = the last 30 min; reference "
          "stage of the epoch that started the dawn")
    print(f"{'night':8s} {'fixed':>6s} {'smart':>6s} {'earlier':>8s}  reason")
    tally: dict[str, dict[str, int]] = {"fixed": {}, "smart": {}}
    env = dict(os.environ, MICROPYPATH=f"{paths.FIRMWARE_DIR}:.frozen")
    for name in names:
        b = sbeats.read_beat_list(folder / f"{name}_beats.csv")
        stages = [r["stage"].strip() for r in csv.DictReader(open(folder / f"{name}_epochs.csv"))]
        n = len(stages)
        end_s = n * 30
        ms = np.round(b.time_s * 1000).astype(np.int64)
        ibi = np.diff(ms, prepend=ms[0])
        ibi[0] = 0
        ibi[ibi > sbeats.MAX_IBI_MS] = 0
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "b.txt"
            src.write_text("".join(f"{t} {i} {int(q)}\n" for t, i, q in
                                   zip(ms.tolist(), ibi.tolist(), b.flagged.tolist(),
                                       strict=True)))
            out = subprocess.run(
                [paths.micropython_bin(), "-X", "heapsize=256K",
                 str(Path(__file__).with_name("mp_dawn_driver.py")), str(src), str(n),
                 str(end_s + 1800), "1800"],
                env=env, capture_output=True, text=True, timeout=600, check=True).stdout
        p = next(ln.split() for ln in out.splitlines() if ln.startswith("S "))
        start_s, reason = int(p[1]), p[2]
        fixed = DEPTH.get(stages[n - 1], "?")
        smart = DEPTH.get(stages[start_s // 30 - 1], "?")
        for k, v in (("fixed", fixed), ("smart", smart)):
            tally[k][v] = tally[k].get(v, 0) + 1
        print(f"{name:8s} {fixed:>6s} {smart:>6s} {(end_s - start_s) / 60:6.1f} min  {reason}")
    for k in ("fixed", "smart"):
        print(f"  {k:5s} dawn started in: " + ", ".join(
            f"{s} {tally[k].get(s, 0)}" for s in ("wake", "light", "REM", "deep")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--fit", action="store_true", help="print the layer fit on all nights")
    a = ap.parse_args()
    folder = Path(a.data) / "sleep"
    bench_breathing(Path(a.data))
    if not folder.is_dir():
        print(f"bench-sleep: SKIP - {folder} not found (pass --data DIR)")
        return 0
    names = sorted(p.name[: -len("_beats.csv")] for p in folder.glob("*_beats.csv"))
    nights = []
    for name in names:
        b, ref = load_night(folder, name)
        n = len(ref)
        dev = sbeats.device_beats(b, n)
        sig = st.NightSignals(b.time_s, n, None, dev.arousal_score)
        net_only = st.stage_night(sig, coef=None)
        p3 = np.where(np.isnan(net_only.prob[:, :1]), 1 / 3, net_only.net_prob)  # as staging
        x = st.extra_features(p3, sig)
        xa = st.extra_features(p3, sig, with_arousal=True)
        y = np.array([CODE.get(r, -1) for r in ref])
        nights.append(dict(name=name, ref=ref, sig=sig, net=net_only, x=x, xa=xa, y=y, beats=b,
                           events=dev.events))
    bench_dawn(folder, names)
    if a.fit:
        xa = np.vstack([nt["x"][nt["y"] >= 0] for nt in nights])
        ya = np.concatenate([nt["y"][nt["y"] >= 0] for nt in nights])
        coef = fit_layer(xa, ya)
        print("LAYER_COEF (columns: " + ", ".join(st.EXTRA_FEATURES) + ", bias):")
        print("np.array([\n" + "".join(
            "    [" + ", ".join(f"{v:.4f}" for v in row) + "],\n" for row in coef) + "])")
    cols = ("sleepecg", "port", "+arousal", "nightstand")
    res: dict[str, dict[str, list]] = {c: {"ref": [], "pred": []} for c in cols}
    keras_reason = ""
    print(f"\nsleep staging on slpdb: {len(nights)} nights (ECG beats; severe sleep apnoea). "
          "kappa2/acc2: wake vs sleep; kappa3/acc3: wake/REM/NREM.")
    print("  sleepecg = SleepECG wrn-gru-mesa via its own API (Keras); port = the same network "
          "in numpy;\n  nightstand = port + night-relative HR, IBI variability, time of night, "
          "layer fit leave-one-night-out;\n"
          "  +arousal = nightstand plus the firmware's beat-only arousal score (ablation)")
    print(f"{'night':8s} {'h':>4s} {'method':10s} {'kappa2':>6s} {'acc2':>5s} {'kappa3':>6s} "
          f"{'acc3':>5s} {'dTST':>6s} {'dWASO':>6s} {'dSE%':>6s}")
    for i, nt in enumerate(nights):
        train = [o for j, o in enumerate(nights) if j != i]
        xa = np.vstack([o["x"][o["y"] >= 0] for o in train])
        ya = np.concatenate([o["y"][o["y"] >= 0] for o in train])
        coef = fit_layer(xa, ya)
        ours = st.stage_night(nt["sig"], coef=coef).stages
        # Ablation: the same layer plus the firmware's arousal score (fit with it too).
        xa = np.vstack([o["xa"][o["y"] >= 0] for o in train])
        with_ar = st.stage_night(nt["sig"], coef=fit_layer(xa, ya), with_arousal=True).stages
        keras = sleepecg_keras(nt["beats"].time_s, len(nt["ref"]))
        preds = {"port": nt["net"].beats_only_stages(), "+arousal": with_ar, "nightstand": ours}
        if isinstance(keras, str):
            keras_reason = keras
        else:
            preds["sleepecg"] = keras
        hours = len(nt["ref"]) / 120
        for c in cols:
            if c not in preds:
                print(f"{nt['name']:8s} {hours:4.1f} {c:10s} {keras_reason}")
                continue
            s = scores(nt["ref"], preds[c])
            e = metric_errors(nt["ref"], preds[c])
            res[c]["ref"] += nt["ref"]
            res[c]["pred"] += preds[c]
            res[c].setdefault("err", []).append(e)
            print(f"{nt['name']:8s} {hours:4.1f} {c:10s} {s['k2']:6.3f} {s['a2']:5.3f} "
                  f"{s['k3']:6.3f} {s['a3']:5.3f} {e[0]:6.1f} {e[1]:6.1f} {e[2]:6.1f}")
    print("\npooled over all nights (errors: mean absolute, min / SE points)")
    for c in cols:
        if not res[c]["ref"]:
            print(f"{'pooled':8s} {'':4s} {c:10s} {keras_reason}")
            continue
        s = scores(res[c]["ref"], res[c]["pred"])
        e = np.abs(np.array(res[c]["err"]))
        mae = np.nanmean(e, axis=0)
        print(f"{'pooled':8s} {'':4s} {c:10s} {s['k2']:6.3f} {s['a2']:5.3f} {s['k3']:6.3f} "
              f"{s['a3']:5.3f} {mae[0]:6.1f} {mae[1]:6.1f} {mae[2]:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
