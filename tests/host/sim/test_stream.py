"""Chunked whole-signal helpers (sim/stream.py) against their whole-array NumPy/SciPy versions,
over random signals and random chunk boundaries: the same numbers, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nightstand.sim import stream
from scipy import signal

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


def _spool(tmp_path: Path, name: str, x: np.ndarray, chunk: int) -> stream.Spool:
    s = stream.Spool(tmp_path / name)
    for a in range(0, x.size, chunk):
        s.append(x[a:a + chunk])
    return s


@SETTINGS
@given(x=hnp.arrays(np.float64, st.integers(1, 400), elements=finite | st.sampled_from(
    [0.0, -0.0, 1.0, 1.0 + 2**-52])), chunk=st.integers(1, 500),
       q=st.lists(st.floats(0, 100), min_size=1, max_size=4))
def test_quantiles_are_numpys(x: np.ndarray, chunk: int, q: list[float]) -> None:
    def chunks() -> list[np.ndarray]:
        return [x[a:a + chunk] for a in range(0, x.size, chunk)]

    got = stream.Quantiles(chunks, x.size, q, median=True)
    want = np.percentile(x, q)
    assert np.array_equal(np.array(got.percentiles), want)
    assert got.median == np.median(x)
    ranks = sorted({0, x.size - 1, x.size // 2})
    assert stream.order_stats(chunks, ranks) == [float(v) for v in np.sort(x)[ranks]]


@SETTINGS
@given(n_src=st.integers(2, 300), n_grid=st.integers(1, 400), seed=st.integers(0, 2**32 - 1),
       chunk=st.integers(1, 64), gaps=st.booleans())
def test_interp_uniform_is_np_interp(tmp_path: Path, n_src: int, n_grid: int, seed: int,
                                     chunk: int, gaps: bool) -> None:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.001, 0.02, n_src)) + rng.uniform(-5, 5)
    x = rng.normal(0, 100, n_src)
    if gaps:
        x[rng.random(n_src) < 0.3] = np.nan
        x[rng.integers(n_src)] = 1.0  # at least one finite sample
    t0, dt = float(t[0]) + rng.uniform(-0.05, 0.05), float(np.median(np.diff(t)))
    cuts = np.sort(rng.integers(0, n_src, size=rng.integers(0, 6)))
    pairs = [(tc, xc) for tc, xc in zip(np.split(t, cuts), np.split(x, cuts), strict=True)]
    out = stream.Spool(tmp_path / f"u{seed}")
    stream.interp_uniform(pairs, t0, dt, n_grid, out, chunk)
    ok = np.isfinite(x)
    want = np.interp(t0 + np.arange(n_grid) * dt, t[ok], x[ok])
    assert out.n == n_grid and np.array_equal(out.read(0, out.n), want)


@SETTINGS
@given(n=st.integers(2, 700), chunk=st.integers(1, 800), seed=st.integers(0, 2**32 - 1),
       fs_in=st.sampled_from([125.0, 250.0, 1000.0, 87.3]), fs_out=st.sampled_from([50.0, 100.0]))
def test_sosfiltfilt_and_resample_are_scipys(tmp_path: Path, n: int, chunk: int, seed: int,
                                             fs_in: float, fs_out: float) -> None:
    rng = np.random.default_rng(seed)
    x = 1000 + np.cumsum(rng.normal(0, 1, n))
    sos = signal.butter(8, 0.4 * fs_out, fs=fs_in, output="sos")
    padlen = min(n - 1, 180)
    src = _spool(tmp_path, f"x{seed}", x, chunk)
    work, filt = stream.Spool(tmp_path / f"w{seed}"), stream.Spool(tmp_path / f"f{seed}")
    stream.sosfiltfilt(sos, src, padlen, work, filt, chunk)
    want = signal.sosfiltfilt(sos, x, padlen=padlen)
    assert filt.n == n and np.array_equal(filt.read(0, n), want)
    res = stream.Spool(tmp_path / f"r{seed}")
    m = stream.resample(filt, fs_in, fs_out, res, chunk)
    src_t = np.arange(n) / fs_in
    dst = np.arange(int(np.floor(src_t[-1] * fs_out + 1e-6)) + 1) / fs_out
    assert m == dst.size and np.array_equal(res.read(0, m), np.interp(dst, src_t, want))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), chunk=st.integers(40, 3000),
       fs_in=st.sampled_from([30.0, 125.0, 500.0]), dc=st.booleans(), red=st.booleans(),
       gaps=st.booleans())
def test_replay_stimulus_is_the_same_in_any_chunks(tmp_path: Path, seed: int, chunk: int,
                                                   fs_in: float, dc: bool, red: bool,
                                                   gaps: bool) -> None:
    """write_ppg_stimulus_from_recording end to end: random chunks give the one-chunk file."""
    from nightstand.sim import generate as gen

    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 2500))
    t = np.cumsum(rng.uniform(0.95, 1.05, n) / fs_in) + rng.uniform(0, 100)
    level = 40000.0 if dc else 0.0
    ir = level + 300 * np.sin(2 * np.pi * 1.2 * t) + rng.normal(0, 10, n)
    r = level * 0.8 + 200 * np.sin(2 * np.pi * 1.2 * t) if red else None
    if gaps:
        ir[rng.random(n) < 0.05] = np.nan
    whole = gen.write_ppg_stimulus_from_recording(t, ir, r, tmp_path / f"w{seed}", 50.0,
                                                  chunk=1 << 20)
    parts = gen.write_ppg_stimulus_from_recording(t, ir, r, tmp_path / f"p{seed}", 50.0,
                                                  chunk=chunk)
    assert parts.path.read_bytes() == whole.path.read_bytes()
    assert (parts.n_samples, parts.had_dc, parts.scale_na_per_unit) == (
        whole.n_samples, whole.had_dc, whole.scale_na_per_unit)
