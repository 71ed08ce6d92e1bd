"""Sleep metrics on constructed hypnograms with hand-computed answers, and their invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nightstand.sleep.metrics import sleep_metrics

W, R, N, U = "wake", "rem", "nrem", "unknown"


def test_hand_computed_night() -> None:
    # 10 min awake, 20 min NREM, 2 min wake, 30 s wake, 10 min NREM, 5 min REM, 3 min wake.
    h = [W] * 20 + [N] * 40 + [W] * 4 + [N] * 2 + [W] + [N] * 18 + [R] * 10 + [W] * 6
    m = sleep_metrics(h)
    assert m.tib_min == 50.5
    assert m.sol_min == 10.0
    assert m.tst_min == 35.0  # 20 + 1 + 9 NREM + 5 REM
    assert m.waso_min == 2.5  # 2 min + 30 s inside the sleep period; final 3 min is not WASO
    assert m.awakenings == 1  # the 30-s wake epoch is too short to count
    assert m.rem_latency_min == 32.5  # onset 10 min; first REM at epoch 85 = 42.5 min
    assert m.se == pytest.approx(35.0 / 50.5)
    assert (m.wake_min, m.rem_min, m.nrem_min, m.unknown_min) == (15.5, 5.0, 30.0, 0.0)


def test_unknown_epochs_leave_the_denominator() -> None:
    h = [W] * 4 + [N] * 10 + [U] * 6 + [N] * 10
    m = sleep_metrics(h)
    assert m.unknown_min == 3.0
    assert m.tst_min == 10.0
    assert m.se == pytest.approx(10.0 / 12.0)
    assert m.waso_min == 0.0


def test_mostly_unknown_night_has_unknown_metrics() -> None:
    m = sleep_metrics([U] * 30 + [N] * 10)
    assert m.tst_min is None and m.se is None and m.sol_min is None
    assert "10 of 40" in m.note


def test_no_sleep_at_all() -> None:
    m = sleep_metrics([W] * 40)
    assert m.tst_min == 0.0 and m.se == 0.0 and m.sol_min is None and m.rem_latency_min is None


def test_empty_and_bad_labels() -> None:
    assert sleep_metrics([]).tst_min is None
    with pytest.raises(ValueError, match="stage"):
        sleep_metrics(["N2"])


@given(st.lists(st.sampled_from([W, R, N, U]), max_size=400))
def test_invariants(h: list[str]) -> None:
    m = sleep_metrics(h)
    assert m.tib_min == pytest.approx(len(h) / 2)
    assert m.wake_min + m.rem_min + m.nrem_min + m.unknown_min == pytest.approx(m.tib_min)
    if m.tst_min is None:
        return
    assert 0 <= m.tst_min <= m.tib_min
    assert m.se is not None and 0.0 <= m.se <= 1.0
    assert m.waso_min is not None and m.waso_min <= m.wake_min
    total = m.tst_min + m.waso_min + (m.sol_min or 0.0)
    assert total <= m.tib_min + 1e-9
    if m.rem_latency_min is not None:
        assert m.sol_min is not None
        assert m.sol_min + m.rem_latency_min < m.tib_min
    assert m.awakenings is not None and 0 <= m.awakenings <= m.waso_min
