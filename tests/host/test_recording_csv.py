"""The streamed CSV reader of `replay` (nightstand.sim.recording): any valid recording reads back
exactly, in any block size; anything else is one UserError, never another exception."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nightstand.errors import UserError
from nightstand.sim import recording

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def recordings(draw):
    n = draw(st.integers(2, 60))
    steps = draw(st.lists(st.floats(1e-3, 10.0), min_size=n, max_size=n))
    t = np.cumsum(steps) + draw(st.floats(-100.0, 100.0))
    ir = draw(st.lists(finite, min_size=n, max_size=n))
    red = draw(st.none() | st.lists(finite, min_size=n, max_size=n))
    cols = ["time_s", draw(st.sampled_from(["ppg", "ir", " IR ", "Ppg"]))]
    if red is not None:
        cols.append("red")
    extra = draw(st.booleans())
    if extra:
        cols.insert(draw(st.integers(0, len(cols))), "note")
    order = draw(st.permutations(range(len(cols))))
    return t, np.array(ir), None if red is None else np.array(red), [cols[i] for i in order], \
        draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans()), draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(recordings(), st.sampled_from([1, 3, 1 << 16]))
def test_valid_recordings_read_back_exactly(tmp_path_factory, rec, block):
    t, ir, red, cols, eol, blanks, quoted = rec
    values = {"time_s": t, "ppg": ir, "ir": ir, "red": red}
    lines = [",".join(cols)]
    for i in range(len(t)):
        cells = []
        for c in cols:
            key = c.strip().lower()
            cell = "x" if key == "note" else repr(float(values[key][i]))
            cells.append(f'"{cell}"' if quoted else cell)
        lines.append(",".join(cells))
        if blanks and i % 7 == 3:
            lines.append("")
    path = tmp_path_factory.mktemp("csv") / "rec.csv"
    path.write_bytes((eol.join(lines) + eol).encode())
    old = recording.BLOCK_ROWS
    recording.BLOCK_ROWS = block
    try:
        got_t, got_ir, got_red = recording.read_csv_recording(path)
    finally:
        recording.BLOCK_ROWS = old
    assert np.array_equal(got_t, t) and np.array_equal(got_ir, ir)
    assert (got_red is None) == (red is None)
    if red is not None:
        assert np.array_equal(got_red, red)


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_anything_else_is_one_user_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("csv") / "x.csv"
    path.write_bytes(b"time_s,ppg\n" + data if data[:1] == b"0" else data)
    try:
        t, x, _red = recording.read_csv_recording(path)
    except UserError as e:
        assert "\n" not in str(e)
        return
    assert len(t) >= 2 and np.all(np.diff(t) > 0) and np.all(np.isfinite(x))


def test_a_header_line_without_end_is_not_read_whole(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("time_s,ppg" + ",x" * 100000)
    with pytest.raises(UserError, match="not a text CSV"):
        recording.read_csv_recording(path)
