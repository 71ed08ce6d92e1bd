"""Breathing rate (core/resp.py): known rates on synthetic PPG, unknown on bad signal,
fusion, the light's paced-breathing ramp. Plain asserts: also run under MicroPython."""

import array

from nsdev.core import resp as R
from nsdev.core.light import breaths_paced
from resp_synth import breathing_ppg, run_device

RUN_UNDER_MICROPYTHON = True


def _rates(counts, fs=50):
    return [r for end, r in run_device(counts, fs) if end >= 60000]


def test_known_rates_within_half_a_breath():
    for rate in (6.0, 12.0, 20.0):
        got = _rates(breathing_ppg(rate, bpm=66.0, seconds=125))
        assert got and all(r is not None and abs(r - rate) <= 0.5 for r in got), (rate, got)


def test_estimate_in_steps_as_the_app_runs_it():
    """The app runs the estimate one step per FIFO read (~0.6-0.9 s of ESP32 time in all, more
    than the MAX30102 FIFO holds): in many short steps, with beats still arriving, and to the
    same rate as in one piece."""
    counts = breathing_ppg(12.0, bpm=66.0, seconds=125)
    whole = [r for end, r in run_device(counts, 50) if end >= 60000]
    stepped = [(r, k) for end, r, k in run_device(counts, 50, stepped=True) if end >= 60000]
    assert len(stepped) == len(whole) and whole and None not in whole
    for i, w in enumerate(whole):
        r, k = stepped[i]
        assert k >= 12  # one piece is under ~1/12 of the work
        assert r is not None and abs(r - w) <= 0.1, (r, w)


def test_fast_breathing_at_slow_heart_rate_is_unknown_not_wrong():
    # 30 /min at 50 bpm: fewer than 2 beats per breath, so the per-beat series cannot carry it
    got = _rates(breathing_ppg(30.0, bpm=50.0, seconds=125))
    assert all(r is None or abs(r - 30.0) <= 2.0 for r in got), got


def test_no_breathing_is_unknown():
    got = _rates(breathing_ppg(12.0, rsa_bpm=0.0, amp_mod=0.0, base_mod=0.0, seconds=125))
    assert got == [None] * len(got), got


def test_contact_off_is_unknown():
    counts = breathing_ppg(12.0, seconds=125)
    for i in range(70 * 50, 80 * 50):  # finger off for 10 s in the window of both estimates
        counts[i] = 1500
    got = [r for end, r in run_device(counts, 50) if end >= 90000]
    assert got == [None, None], got


def test_flagged_beat_or_gap_in_window_is_unknown():
    est = R.PPGBreathing()
    for k in range(60):
        est.add_beat(1000 * k, 1000, 5000 + (k % 5) * 100, 4 if k == 40 else 0)
        est.add_baseline(1000 * k, 100000)
    assert est.estimate(59000, 60.0) is None
    est.reset()
    for k in range(60):
        if 30 <= k < 36:
            continue  # a 6-s hole
        est.add_beat(1000 * k, 1000, 5000, 0)
    assert not est._beats_ok(59000 - R.WINDOW_S * 1000, 59000)


def test_restarted_pipeline_clock_clears_history():
    est = R.PPGBreathing()
    for k in range(60):
        est.add_beat(100000 + 1000 * k, 1000, 5000, 0)
    est.add_beat(500, 0, 5000, 0)
    assert est._bn == 1


def test_rates_survive_the_pipelines_clock_rebase():
    # the app moves the PPG clock's origin (PPGPipeline.rebase) so times stay small ints on the
    # ESP32; the breathing window must move with it, not restart (or mix two clocks)
    counts = breathing_ppg(12.0, bpm=66.0, seconds=185)
    plain = [r for _end, r in run_device(counts, 50)]
    moved = [r for _end, r in run_device(counts, 50, rebase_after_ms=65000)]
    assert len(plain) == len(moved) and plain[-2:] == moved[-2:] and plain[-1] is not None


def test_fusion_needs_agreement_of_all_three():
    assert R.fuse3(12.0, 13.0, 14.0) == 13.0
    assert R.fuse3(12.0, 0.0, 14.0) is None
    assert R.fuse3(8.0, 12.0, 20.0) is None
    assert R.fuse3(11.0, 11.2, 19.0) is None  # sd 3.7: Karlen's rule would let it through
    assert R.fuse3(10.0, 12.0, 14.0) == 12.0


def test_feeding_allocates_nothing():
    try:
        import micropython
        lock = micropython.heap_lock
    except (ImportError, AttributeError):
        return  # CPython: nothing to check
    est = R.PPGBreathing()
    buf = array.array("i", [120000] * 8)
    est.add_samples(0, buf, 8)
    est.add_beat(0, 0, 0, 0)
    lock()
    try:
        for k in range(1, 400):
            est.add_samples(160 * k, buf, 8)
            est.add_beat(800 * k, 800, 5000, 0)
    finally:
        micropython.heap_unlock()
    assert est._bn == 400


def test_paced_breathing_ramp():
    # starts at the own rate, ends at the target, the phase is continuous and increasing
    assert breaths_paced(15.0, 6.0, 300, 0) == 0.0
    assert abs(breaths_paced(15.0, 6.0, 300, 60) - (15 * 60 - 9 * 3600 / 600) / 60) < 1e-6
    full = (15.0 + 6.0) / 2 * 300 / 60
    assert abs(breaths_paced(15.0, 6.0, 300, 300) - full) < 1e-6
    assert abs(breaths_paced(15.0, 6.0, 300, 360) - (full + 6.0)) < 1e-6
    assert abs(breaths_paced(6.0, 6.0, 300, 120) - 12.0) < 1e-6
    prev = -1.0
    for t in range(0, 600, 7):
        b = breaths_paced(18.0, 6.0, 300, t)
        assert b > prev or t == 0
        prev = b
