"""The host's vectorised breathing rate equals the firmware's nsdev.core.resp.BreathingRate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nightstand.sleep.breathing import breathing_per_epoch
from nsdev.core.resp import BreathingRate


def beats(seconds: float, resp_bpm: float, seed: int, with_pwa: bool, gap: bool) -> tuple:
    rng = np.random.default_rng(seed)
    t, ts, pw = 0.0, [], []
    while t < seconds:
        hr = 60 + 5 * np.sin(2 * np.pi * resp_bpm / 60 * t) + rng.normal(0, 1.5)
        t += 60.0 / hr
        if rng.random() < 0.02:
            t += 0.6 * 60.0 / hr  # a missed beat now and then
        if gap and 200 < t < 260:
            continue
        ts.append(int(t * 1000))
        pw.append(8000 * (1 + 0.06 * np.cos(2 * np.pi * resp_bpm / 60 * t)) if with_pwa else None)
    return ts, pw


def firmware(ts: list[int], pw: list, ends: list[int]) -> list:
    br = BreathingRate()
    out, i, prev = [], 0, None
    for end in ends:
        while i < len(ts) and ts[i] <= end:
            ibi = 0 if prev is None else ts[i] - prev
            br.add_beat(ts[i], ibi, pw[i], 0)
            prev = ts[i]
            i += 1
        v = br.estimate(end)
        out.append(None if v is None else round(v, 2))
    return out


@settings(max_examples=15, deadline=None)
@given(st.floats(7.0, 24.0), st.integers(0, 1000), st.booleans(), st.booleans())
def test_host_equals_firmware(resp_bpm: float, seed: int, with_pwa: bool, gap: bool) -> None:
    ts, pw = beats(420, resp_bpm, seed, with_pwa, gap)
    ends = list(range(30000, 420000, 30000))
    host = breathing_per_epoch(ts, pw, ends)
    fw = firmware(ts, pw, ends)
    assert [h is None for h in host] == [f is None for f in fw]
    for h, f in zip(host, fw, strict=True):
        if h is not None:
            assert h == pytest.approx(f, abs=0.011)


def test_known_rate_and_unknown_in_a_gap() -> None:
    ts, pw = beats(420, 14.0, 3, True, True)
    est = breathing_per_epoch(ts, pw, [180000, 262000, 400000])
    assert est[0] is not None and abs(est[0] - 14.0) < 1.0
    assert est[1] is None  # the last 64 s hold a 60-s gap: too few beats
    assert breathing_per_epoch([1000], None, [30000]) == [None]
