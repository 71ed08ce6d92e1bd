"""Whole-signal operations done in chunks, so memory stays flat in the signal's length.

Each helper gives the same numbers as its whole-array NumPy/SciPy counterpart (tests/host/sim/
test_stream.py checks it over random chunk boundaries): a float64 column spooled to disk
(`Spool`), exact order statistics, `np.percentile`/`np.median` (`Quantiles`), `np.interp` onto a
uniform grid, and `scipy.signal.sosfiltfilt` (filter state carried across chunks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import signal

Array = NDArray[np.float64]

CHUNK = 1 << 16  # samples a helper holds at a time (0.5 MiB of float64)
_F8 = np.dtype("<f8")


class Spool:
    """A float64 column in a file: appended in chunks, read back by index range."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "w+b")  # noqa: SIM115 - closed by close()
        self.n = 0

    def append(self, x: Array) -> None:
        self._f.seek(self.n * 8)
        self._f.write(np.ascontiguousarray(x, dtype=_F8).tobytes())
        self.n += len(x)

    def write_at(self, start: int, x: Array) -> None:
        """Overwrite (or extend to) samples start .. start + len(x)."""
        self._f.seek(start * 8)
        self._f.write(np.ascontiguousarray(x, dtype=_F8).tobytes())
        self.n = max(self.n, start + len(x))

    def read(self, start: int, stop: int) -> Array:
        start, stop = max(start, 0), min(stop, self.n)
        if stop <= start:
            return np.empty(0)
        self._f.flush()
        self._f.seek(start * 8)
        return np.frombuffer(self._f.read((stop - start) * 8), dtype=_F8).astype(np.float64)

    def chunks(self, chunk: int = CHUNK) -> Iterator[Array]:
        for a in range(0, self.n, chunk):
            yield self.read(a, a + chunk)

    def close(self) -> None:
        self._f.close()


# Exact order statistics ---------------------------------------------------------------------

_SIGN = np.uint64(1 << 63)
_DIGIT_BITS = 16


def _keys(x: Array) -> NDArray[np.uint64]:
    """float64 -> uint64 whose unsigned order is the numeric order (NaN excluded)."""
    b = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
    return np.where((b & _SIGN) != 0, ~b, b | _SIGN)


def _value(key: int) -> float:
    b = key ^ (1 << 63) if key >> 63 else ~key & ((1 << 64) - 1)
    return float(np.array([b], dtype=np.uint64).view(np.float64)[0])


def order_stats(chunks: Callable[[], Iterable[Array]], ranks: Sequence[int]) -> list[float]:
    """The values at 0-based `ranks` of the sorted data that `chunks()` yields (no NaN), exactly,
    holding one chunk at a time: a radix selection on the values' bit patterns, 16 bits per pass
    over the data (at most four passes; ranks that share a prefix share the pass)."""
    state = {k: (0, 0, k) for k in set(ranks)}  # rank -> (key prefix, its bits, rank within)
    done: dict[int, float] = {}
    while state:
        groups: dict[tuple[int, int], NDArray[np.int64]] = {
            (p, bits): np.zeros(1 << _DIGIT_BITS, dtype=np.int64) for p, bits, _ in
            state.values()}
        for x in chunks():
            keys = _keys(x)
            for (prefix, bits), hist in groups.items():
                sel = keys if bits == 0 else keys[(keys >> np.uint64(64 - bits)) == prefix]
                digit = (sel >> np.uint64(64 - bits - _DIGIT_BITS)) & np.uint64(0xFFFF)
                hist += np.bincount(digit.astype(np.int64), minlength=1 << _DIGIT_BITS)
        for k, (prefix, bits, r) in list(state.items()):
            cum = np.cumsum(groups[(prefix, bits)])
            if r >= int(cum[-1]):
                raise ValueError(f"rank {k} is beyond the data")
            d = int(np.searchsorted(cum, r, side="right"))
            r -= int(cum[d - 1]) if d else 0
            prefix, bits = (prefix << _DIGIT_BITS) | d, bits + _DIGIT_BITS
            if bits == 64:
                done[k] = _value(prefix)
                del state[k]
            else:
                state[k] = (prefix, bits, r)
    return [done[k] for k in ranks]


class Quantiles:
    """`np.percentile(x, q)` (linear method) and `np.median(x)` of n values from chunks(), with
    NumPy's own index and interpolation arithmetic, so results are bit for bit NumPy's."""

    def __init__(self, chunks: Callable[[], Iterable[Array]], n: int,
                 percentiles: Sequence[float] = (), median: bool = False) -> None:
        if n < 1:
            raise ValueError("no values")
        plans = [self._plan(n, q) for q in percentiles]
        mid = [n // 2 - 1, n // 2] if n % 2 == 0 else [(n - 1) // 2]
        ranks = sorted({r for p in plans for r in p[:2]} | (set(mid) if median else set()))
        values = dict(zip(ranks, order_stats(chunks, ranks), strict=True))
        self.percentiles = [self._lerp(values[a], values[b], g) for a, b, g in plans]
        self.median = float("nan")
        if median:
            # np.median: the mean of the middle one or two values
            self.median = float(np.mean(np.array([values[r] for r in mid])))

    @staticmethod
    def _plan(n: int, q: float) -> tuple[int, int, float]:
        qf = float(np.true_divide(q, 100))
        vi = (n - 1) * qf  # numpy's virtual index for the linear method
        prev = math.floor(vi)
        gamma = vi - prev
        if vi >= n - 1:
            return n - 1, n - 1, gamma
        if vi < 0:
            return 0, 0, gamma
        return prev, prev + 1, gamma

    @staticmethod
    def _lerp(a: float, b: float, t: float) -> float:
        diff = np.float64(b) - np.float64(a)
        if t >= 0.5:
            return float(np.float64(b) - diff * (1 - np.float64(t)))
        return float(np.float64(a) + diff * np.float64(t))


# Interpolation -----------------------------------------------------------------------------


def _grid_count(t0: float, dt: float, n: int, limit: float) -> int:
    """How many of the grid points t0 + i * dt (i < n) are <= limit."""
    i = min(max(math.floor((limit - t0) / dt), -1), n - 1)
    while i + 1 < n and t0 + (i + 1) * dt <= limit:
        i += 1
    while i >= 0 and t0 + i * dt > limit:
        i -= 1
    return i + 1


def interp_uniform(pairs: Iterable[tuple[Array, Array]], t0: float, dt: float, n: int,
                   out: Spool, chunk: int = CHUNK) -> None:
    """out gets np.interp(t0 + arange(n) * dt, t, x) for (t, x) given in increasing-t chunks
    (NaN in x skipped, as a gap bridged by the samples either side)."""
    g = 0
    xp = fp = np.empty(0)
    for t, x in pairs:
        ok = np.isfinite(x)
        if not ok.any():
            continue
        tt, xx = t[ok], x[ok]
        if xp.size:
            xp, fp = np.concatenate([xp[-1:], tt]), np.concatenate([fp[-1:], xx])
        else:
            xp, fp = tt, xx
        g_end = _grid_count(t0, dt, n, float(xp[-1]))
        for a in range(g, g_end, chunk):
            grid = t0 + np.arange(a, min(a + chunk, g_end)) * dt
            out.append(np.interp(grid, xp, fp))
        g = max(g, g_end)
    if not xp.size:
        raise ValueError("no finite samples")
    for a in range(g, n, chunk):
        grid = t0 + np.arange(a, min(a + chunk, n)) * dt
        out.append(np.interp(grid, xp, fp))


def resample(src: Spool, fs_in: float, fs_out: float, out: Spool, chunk: int = CHUNK) -> int:
    """out gets np.interp(arange(m) / fs_out, arange(src.n) / fs_in, src) with
    m = floor(last source time * fs_out + 1e-6) + 1; returns m."""
    m = int(math.floor((src.n - 1) / fs_in * fs_out + 1e-6)) + 1
    for a in range(0, m, chunk):
        dst = np.arange(a, min(a + chunk, m)) / fs_out
        lo = max(0, math.floor(float(dst[0]) * fs_in) - 2)
        hi = min(src.n, math.ceil(float(dst[-1]) * fs_in) + 3)
        out.append(np.interp(dst, np.arange(lo, hi) / fs_in, src.read(lo, hi)))
    return m


# Zero-phase filtering ----------------------------------------------------------------------


def sosfiltfilt(sos: Array, src: Spool, padlen: int, work: Spool, out: Spool,
                chunk: int = CHUNK) -> None:
    """out gets scipy.signal.sosfiltfilt(sos, src, padlen=padlen) (odd extension): the forward
    pass streams into `work`, the backward pass reads it back from the end, each carrying the
    filter state (zi) from chunk to chunk."""
    n = src.n
    if not 0 <= padlen < n:
        raise ValueError("padlen must be below the signal length")
    head, tail = src.read(0, padlen + 1), src.read(n - padlen - 1, n)
    left = 2 * head[:1] - head[padlen:0:-1]
    right = 2 * tail[-1:] - tail[-2::-1][:padlen]
    zi = signal.sosfilt_zi(sos)
    z = zi * (left[:1] if padlen else head[:1])

    def pieces() -> Iterator[Array]:
        yield left
        yield from src.chunks(chunk)
        yield right

    y = np.empty(0)
    for piece in pieces():
        if piece.size:
            y, z = signal.sosfilt(sos, piece, zi=z)
            work.append(y)
    z = zi * y[-1:]
    total = work.n
    for b in range(total, 0, -chunk):
        a = max(0, b - chunk)
        yb, z = signal.sosfilt(sos, work.read(a, b)[::-1], zi=z)
        yb = yb[::-1]
        lo, hi = max(a, padlen), min(b, padlen + n)
        if hi > lo:
            out.write_at(lo - padlen, yb[lo - a:hi - a])
