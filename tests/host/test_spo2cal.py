"""nightstand.spo2cal: least-squares fit of SpO2 = a - b R, cross-validated A_RMS, acceptance
and one-line errors for bad CSVs."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nightstand import spo2cal
from nightstand.errors import UserError


@settings(max_examples=60, deadline=None)
@given(a=st.floats(80, 130), b=st.floats(5, 50),
       rs=st.lists(st.floats(0.3, 2.0), min_size=3, max_size=40, unique=True))
def test_noiseless_pairs_give_back_the_curve(a: float, b: float, rs: list[float]) -> None:
    if max(rs) - min(rs) < 0.05:
        return
    ref = [a - b * x for x in rs]
    fa, fb = spo2cal.least_squares(rs, ref)
    assert fa == pytest.approx(a, abs=1e-6) and fb == pytest.approx(b, abs=1e-6)
    assert spo2cal.arms(rs, ref, fa, fb) == pytest.approx(0.0, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(shift=st.floats(-5, 5), rs=st.lists(st.floats(0.3, 2.0), min_size=3, max_size=30))
def test_least_squares_beats_any_other_line(shift: float, rs: list[float]) -> None:
    if max(rs) - min(rs) < 0.05:
        return
    rnd = random.Random(len(rs))
    ref = [110 - 25 * x + rnd.gauss(0, 1.5) for x in rs]
    a, b = spo2cal.least_squares(rs, ref)
    best = spo2cal.arms(rs, ref, a, b)
    assert best <= spo2cal.arms(rs, ref, a + shift, b) + 1e-9
    assert best <= spo2cal.arms(rs, ref, a, b + shift) + 1e-9


def _desaturation_study(noise: float, seed: int = 1) -> tuple[list[float], list[float], list[str]]:
    """12 subjects, plateaus from 100 to 70 %, device curve 108 - 24 R plus reading noise."""
    rnd = random.Random(seed)
    r, ref, subj = [], [], []
    for s in range(12):
        for level in (99, 95, 90, 85, 80, 75, 70):
            y = level + rnd.uniform(-1, 1)
            r.append((108 - y) / 24 + rnd.gauss(0, noise / 24))
            ref.append(y)
            subj.append(f"S{s}")
    return r, ref, subj


def test_a_good_study_passes_and_a_noisy_one_fails() -> None:
    r, ref, subj = _desaturation_study(noise=1.5)
    f = spo2cal.fit(r, ref, subj)
    assert f.passed and f.cv == "leave-one-subject-out"
    assert f.spo2_a == pytest.approx(108, abs=1.5) and f.spo2_b == pytest.approx(24, abs=1.5)
    assert f.arms_fit_pct <= f.arms_cv_pct < 2.5
    r, ref, subj = _desaturation_study(noise=6.0)
    bad = spo2cal.fit(r, ref, subj)
    assert not bad.passed and any("A_RMS" in p and "4 %" in p for p in bad.problems)


def test_resting_data_cannot_calibrate_the_slope() -> None:
    rnd = random.Random(3)
    ref = [rnd.uniform(95, 99) for _ in range(30)]
    r = [(110 - y) / 25 for y in ref]
    f = spo2cal.fit(r, ref)
    assert not f.passed and f.cv == "leave-one-out"
    assert any("spans" in p for p in f.problems)


def test_swapped_channels_give_an_impossible_curve() -> None:
    r, ref, _ = _desaturation_study(noise=0.5)
    f = spo2cal.fit([1 / x for x in r], ref)  # R inverted, as with red and IR exchanged
    assert not f.passed and any("swap_red_ir" in p for p in f.problems)


def test_cli_from_device_readings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r, ref, subj = _desaturation_study(noise=1.0)
    p = tmp_path / "pairs.csv"
    rows = ["subject,device_spo2,ref_spo2"]
    rows += [f"{s},{100 - 25 * x:.1f},{y:.1f}" for s, x, y in zip(subj, r, ref, strict=True)]
    p.write_text("\n".join(rows) + "\n")
    assert spo2cal.main([str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] and math.isclose(out["spo2_b"], 24, abs_tol=1.5)
    assert spo2cal.main([str(p)]) == 0
    assert '"spo2_a"' in capsys.readouterr().out


@pytest.mark.parametrize("text, msg", [
    ("", "no rows"),
    ("a,b\n1,2\n", "needs columns ref_spo2 and r"),
    ("r,ref_spo2\n0.5,97\nx,96\n", "line 3: ref_spo2 and r/device_spo2 must be numbers"),
    ("r,ref_spo2\n0.5,197\n", "line 2: ref_spo2 must be in 0..100"),
])
def test_bad_csv_is_one_clear_line(tmp_path: Path, text: str, msg: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(UserError, match=msg):
        spo2cal.read_csv(p)
    assert spo2cal.main([str(p)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg.split(":")[0] in err
    assert spo2cal.main([str(tmp_path / "missing.csv")]) == 1
