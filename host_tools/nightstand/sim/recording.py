"""Reading a recorded PPG from CSV for replay, streamed: rows are parsed in blocks straight into
float64 arrays (8 bytes a value, no per-row Python objects), with one clear line for bad input."""

from __future__ import annotations

import csv
import io
import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nightstand.errors import UserError

PPG_COLUMNS = ("ppg", "ir")
BLOCK_ROWS = 1 << 16  # rows parsed at a time
MAX_HEADER_CHARS = 4096  # a header row longer than this is not a recording's


class _Columns:
    """Growable float64 columns, one row of storage per column (so each column is returned as a
    view, never copied); capacity doubles. Pages past the end are never touched, so they take
    no memory."""

    def __init__(self, n_cols: int, capacity: int) -> None:
        self.data = np.empty((n_cols, max(capacity, 16)), dtype=np.float64)
        self.n = 0

    def extend(self, block: np.ndarray) -> None:
        need = self.n + len(block)
        if need > self.data.shape[1]:
            grown = np.empty((self.data.shape[0], max(need, 2 * self.data.shape[1])),
                             dtype=np.float64)
            grown[:, :self.n] = self.data[:, :self.n]
            self.data = grown
        self.data[:, self.n:need] = block.T
        self.n = need

    def columns(self) -> list[np.ndarray]:
        return [self.data[i, :self.n] for i in range(self.data.shape[0])]


def _bad_line(path: Path, lines: list[str], first_line_no: int, cols: list[int],
              names: list[str]) -> UserError:
    """Find the row of a block that did not parse, for the message."""
    for k, row in enumerate(csv.reader(lines)):
        if not row or all(not c.strip() for c in row):
            continue
        try:
            [float(row[i]) for i in cols]
        except (ValueError, IndexError):
            return UserError(f"{path}:{first_line_no + k}: expected numbers in columns "
                             f"{', '.join(names)}")
    return UserError(f"{path}: rows near line {first_line_no} cannot be read as numbers")


def read_csv_recording(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(time_s, ppg or ir, red or None) from a CSV with a header row naming the columns. Checks:
    a text file, the columns present, numbers only, finite, time strictly increasing."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    out: _Columns | None = None
    for block in _csv_blocks(path):
        if out is None:  # a generous guess from the file's size: no regrowth
            out = _Columns(block.shape[1], size // 4)  # a row takes >= 4 characters
        out.extend(block)
    assert out is not None  # _csv_blocks raises on fewer than two rows
    cols = out.columns()
    return cols[0], cols[1], (cols[2] if len(cols) > 2 else None)


def iter_csv_recording(path: Path, block_rows: int = BLOCK_ROWS
                       ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """read_csv_recording() in blocks of rows, as (time_s, ppg or ir, red or None): nothing of
    the file is held beyond the current block. Bad input raises UserError when reached."""
    for block in _csv_blocks(path, block_rows):
        yield block[:, 0], block[:, 1], (block[:, 2] if block.shape[1] > 2 else None)


def _csv_blocks(path: Path, block_rows: int = BLOCK_ROWS) -> Iterator[np.ndarray]:
    if path.is_dir():
        raise UserError(f"{path} is a folder: give a CSV file or a WFDB record")
    try:
        f = open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    with f:
        try:
            yield from _read(path, f, block_rows)
        except UnicodeDecodeError:
            raise UserError(f"{path}: not a text CSV file (binary data?): give a CSV with "
                            "time_s and ppg or ir columns") from None
        except OSError as e:
            raise UserError(f"cannot read {path}: {e.strerror}") from None


def _read(path: Path, f: io.TextIOBase, block_rows: int) -> Iterator[np.ndarray]:
    """The (rows, columns) float64 blocks: time_s, ppg or ir [, red]."""
    first = f.readline(MAX_HEADER_CHARS)
    if not first:
        raise UserError(f"{path}: the file is empty")
    if "\x00" in first or (len(first) == MAX_HEADER_CHARS and not first.endswith("\n")):
        raise UserError(f"{path}: not a text CSV file (binary data?): give a CSV with time_s "
                        "and ppg or ir columns")
    header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    if "time_s" not in header:
        raise UserError(f"{path}: no `time_s` column (found: {', '.join(header)[:200]}); "
                        "the header must be time_s plus ppg or ir, optionally red")
    ppg = next((c for c in PPG_COLUMNS if c in header), None)
    if ppg is None:
        raise UserError(f"{path}: no `ppg` or `ir` column (found: {', '.join(header)[:200]})")
    cols = [header.index("time_s"), header.index(ppg)]
    if "red" in header:
        cols.append(header.index("red"))
    names = [header[i] for i in cols]
    n = 0
    line_no = 2
    last_t = -np.inf
    while True:
        lines = list(itertools.islice(f, block_rows))
        if not lines:
            break
        if any("\x00" in ln for ln in lines):
            raise UserError(f"{path}: not a text CSV file (binary data near line {line_no})")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # blank lines only: handled below
                block = np.loadtxt(lines, delimiter=",", usecols=cols, ndmin=2,
                                   dtype=np.float64, comments=None, quotechar='"')
        except (ValueError, IndexError):
            raise _bad_line(path, lines, line_no, cols, names) from None
        if block.size:
            if not np.all(np.isfinite(block)):
                raise UserError(f"{path}: contains NaN or infinite values; remove or fill them "
                                "first")
            t = block[:, 0]
            steps = np.diff(t, prepend=last_t)
            if np.any(steps <= 0):
                k = int(np.argmax(steps <= 0))
                raise UserError(f"{path}: time_s does not increase at the row with time_s "
                                f"{t[k]:g} (after {last_t if k == 0 else t[k - 1]:g}): rows "
                                "must be in time order, without repeats")
            last_t = float(t[-1])
            n += len(block)
            yield block
        line_no += len(lines)
    if n < 2:
        raise UserError(f"{path}: needs at least two samples")
