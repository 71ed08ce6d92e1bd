"""Fit the device's SpO2 curve, SpO2 = a - b * R, to paired readings against a reference.

    python -m nightstand.spo2cal readings.csv [--json]

readings.csv has a header and one row per paired reading: `ref_spo2` (the reference, %) and
either `r` (the device's ratio of ratios) or `device_spo2` (what the device showed while set
to the calibration curve --curve-a/--curve-b, default 100 - 25 R, from which R is recovered);
an optional `subject` column enables leave-one-subject-out validation. Procedure and
acceptance (ISO 80601-2-61: A_RMS <= 4 % over 70-100 % SpO2): hardware/spo2-calibration.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from nightstand.errors import UserError

ARMS_LIMIT_PCT = 4.0  # ISO 80601-2-61: accuracy (A_RMS) <= 4 % SpO2 over 70-100 %
MIN_PAIRS = 10
MIN_SPAN_PCT = 10.0  # a slope needs references spread over at least this many % points
# The device's schema limits (firmware/nsdev/config.py): a fit outside them cannot be set.
A_RANGE = (50.0, 150.0)
B_RANGE = (0.0, 60.0)


@dataclass(frozen=True)
class Fit:
    spo2_a: float
    spo2_b: float
    n: int
    ref_min: float
    ref_max: float
    arms_fit_pct: float  # A_RMS of the fitted curve on its own data (optimistic)
    arms_cv_pct: float  # A_RMS predicting each subject (or point) from a fit without it
    cv: str  # "leave-one-subject-out" or "leave-one-out"
    bias_pct: float  # mean (device - reference) with the fitted curve
    passed: bool
    problems: tuple[str, ...]


def least_squares(r: list[float], ref: list[float]) -> tuple[float, float]:
    """(a, b) minimising sum (ref - (a - b r))^2. ValueError if the R values do not vary."""
    n = len(r)
    mr, my = sum(r) / n, sum(ref) / n
    sxx = sum((x - mr) ** 2 for x in r)
    if sxx <= 1e-12:
        raise ValueError("all R values are equal: the slope cannot be fitted")
    sxy = sum((x - mr) * (y - my) for x, y in zip(r, ref, strict=True))
    slope = sxy / sxx  # ref = my + slope (r - mr)  ->  a = my - slope mr, b = -slope
    return my - slope * mr, -slope


def arms(r: list[float], ref: list[float], a: float, b: float) -> float:
    """Root-mean-square difference between a - b R and the reference (ISO 80601-2-61 A_RMS)."""
    return math.sqrt(sum((a - b * x - y) ** 2 for x, y in zip(r, ref, strict=True)) / len(r))


def fit(r: list[float], ref: list[float], subjects: list[str] | None = None) -> Fit:
    """Fit a, b; validate by leaving out one subject (or one point) at a time; judge."""
    if len(r) != len(ref) or (subjects is not None and len(subjects) != len(r)):
        raise ValueError("r, ref and subjects must have the same length")
    if len(r) < 3:
        raise ValueError(f"{len(r)} paired readings: need at least 3 to fit, "
                         f"{MIN_PAIRS} to judge")
    a, b = least_squares(r, ref)
    groups = subjects if subjects is not None and len(set(subjects)) >= 3 else None
    keys = groups if groups is not None else [str(i) for i in range(len(r))]
    sq = 0.0
    for key in dict.fromkeys(keys):
        train = [i for i, k in enumerate(keys) if k != key]
        test = [i for i, k in enumerate(keys) if k == key]
        try:
            ai, bi = least_squares([r[i] for i in train], [ref[i] for i in train])
        except ValueError:
            ai, bi = a, b
        sq += sum((ai - bi * r[i] - ref[i]) ** 2 for i in test)
    arms_cv = math.sqrt(sq / len(r))
    arms_fit = arms(r, ref, a, b)
    bias = sum(a - b * x - y for x, y in zip(r, ref, strict=True)) / len(r)
    problems = []
    span = max(ref) - min(ref)
    if len(r) < MIN_PAIRS:
        problems.append(f"only {len(r)} paired readings (need >= {MIN_PAIRS})")
    if span < MIN_SPAN_PCT:
        problems.append(f"reference SpO2 spans {span:.1f} % points (need >= {MIN_SPAN_PCT:g}: "
                        "at rest only the offset can be checked, not the slope)")
    if arms_cv > ARMS_LIMIT_PCT:
        problems.append(f"A_RMS {arms_cv:.2f} % exceeds {ARMS_LIMIT_PCT:g} % "
                        "(ISO 80601-2-61)")
    if not A_RANGE[0] <= a <= A_RANGE[1] or not B_RANGE[0] <= b <= B_RANGE[1]:
        problems.append(f"a = {a:.2f}, b = {b:.2f} outside the device's limits "
                        f"(a {A_RANGE[0]:g}..{A_RANGE[1]:g}, b {B_RANGE[0]:g}..{B_RANGE[1]:g}): "
                        "check for swapped red/IR (swap_red_ir) or mislabelled columns")
    return Fit(a, b, len(r), min(ref), max(ref), arms_fit, arms_cv,
               "leave-one-subject-out" if groups is not None else "leave-one-out", bias,
               not problems, tuple(problems))


def read_csv(path: Path, curve_a: float = 100.0, curve_b: float = 25.0
             ) -> tuple[list[float], list[float], list[str] | None]:
    """Paired readings from a CSV; UserError naming the row and column for bad input."""
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise UserError(f"{path}: no rows (expected a header and one row per paired reading)")
    cols = set(rows[0])
    if "ref_spo2" not in cols or not ({"r", "device_spo2"} & cols):
        raise UserError(f"{path}: needs columns ref_spo2 and r (or device_spo2); "
                        f"found {', '.join(sorted(c for c in cols if c)) or 'none'}")
    if "r" not in cols and curve_b <= 0:
        raise UserError("--curve-b must be > 0 to recover R from device_spo2")
    r: list[float] = []
    ref: list[float] = []
    subjects: list[str] = []
    for line, row in enumerate(rows, start=2):
        try:
            y = float(row["ref_spo2"])
            x = (float(row["r"]) if "r" in cols
                 else (curve_a - float(row["device_spo2"])) / curve_b)
        except (TypeError, ValueError):
            raise UserError(f"{path}: line {line}: ref_spo2 and r/device_spo2 must be "
                            "numbers") from None
        if not (math.isfinite(x) and math.isfinite(y)) or not 0.0 < y <= 100.0 or x <= 0.0:
            raise UserError(f"{path}: line {line}: ref_spo2 must be in 0..100 and R > 0 "
                            f"(got {y:g}, {x:g})")
        r.append(x)
        ref.append(y)
        subjects.append((row.get("subject") or "").strip())
    return r, ref, (subjects if "subject" in cols and all(subjects) else None)


def report(f: Fit) -> str:
    lines = [
        f"SpO2 = {f.spo2_a:.2f} - {f.spo2_b:.2f} * R   ({f.n} paired readings, reference "
        f"{f.ref_min:.1f}-{f.ref_max:.1f} %)",
        f"A_RMS {f.arms_cv_pct:.2f} % ({f.cv}); {f.arms_fit_pct:.2f} % on the fitted data; "
        f"bias {f.bias_pct:+.2f} %",
        "PASS: set these on the device: "
        + json.dumps({"spo2_a": round(f.spo2_a, 2), "spo2_b": round(f.spo2_b, 2)})
        if f.passed else "FAIL: " + "; ".join(f.problems),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nightstand.spo2cal",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path, help="paired readings (see hardware/spo2-calibration.md)")
    ap.add_argument("--curve-a", type=float, default=100.0,
                    help="spo2_a the device used while recording device_spo2 (default 100)")
    ap.add_argument("--curve-b", type=float, default=25.0,
                    help="spo2_b the device used while recording device_spo2 (default 25)")
    ap.add_argument("--json", action="store_true", help="print the fit as JSON")
    args = ap.parse_args(argv)
    try:
        r, ref, subjects = read_csv(args.csv, args.curve_a, args.curve_b)
        f = fit(r, ref, subjects)
    except UserError as e:
        print(f"nightstand: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"nightstand: {args.csv}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(f), indent=1) if args.json else report(f))
    return 0 if f.passed else 2


if __name__ == "__main__":
    sys.exit(main())
