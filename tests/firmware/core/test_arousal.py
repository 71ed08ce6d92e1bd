# Arousal estimator on synthetic beat sequences: RSA-only, arousals, rejection, beat-only path.
import math

from floateps import close
from nsdev.core.arousal import ArousalEstimator, Hyperarousal

RUN_UNDER_MICROPYTHON = True


def _beats(minutes, hr_bpm=58.0, rsa_bpm=4.0, arousals=(), pwa_drop=0.4, hr_rise=0.25,
           flag_at=None, ectopic_every=0):
    """(t_ms, ibi_ms, pwa, flags) with RSA at 0.25 Hz; each arousal (onset s): HR +hr_rise for
    ~12 beats, PWA down by pwa_drop starting 3 beats later for ~15 beats."""
    out = []
    t = 0.0
    k = 0
    while t < minutes * 60.0:
        hr = hr_bpm + rsa_bpm * math.sin(2 * math.pi * 0.25 * t)
        pwa = 8000.0 * (1 + 0.05 * math.sin(2 * math.pi * 0.25 * t + 1.0))
        for a in arousals:
            dt = t - a
            if 0 <= dt < 12.0:
                hr *= 1 + hr_rise * min(1.0, dt / 2.0)
            if 3.0 <= dt < 18.0:
                pwa *= 1 - pwa_drop
        ibi = 60000.0 / hr
        if ectopic_every and k % ectopic_every == ectopic_every - 1:
            ibi *= 0.7
        elif ectopic_every and k % ectopic_every == 0 and k:
            ibi *= 1.3
        t += ibi / 1000.0
        flags = 0
        if flag_at is not None and flag_at[0] <= t < flag_at[1]:
            flags = 4
        out.append((int(t * 1000), int(ibi), int(pwa), flags))
        k += 1
    return out


def _run(beats, use_pwa=True):
    est = ArousalEstimator()
    events = []
    scores = []
    next_epoch = 30000
    for t, ibi, pwa, flags in beats:
        ev = est.add_beat(t, ibi, pwa if use_pwa else None, flags)
        if ev is not None:
            events.append(ev)
        if t >= next_epoch:
            scores.append(est.close_epoch())
            next_epoch += 30000
    return est, events, scores


def test_no_events_on_rsa_only():
    for rsa in (2.0, 5.0, 8.0):
        for use_pwa in (True, False):
            _, events, _ = _run(_beats(20, rsa_bpm=rsa), use_pwa)
            assert events == [], (rsa, use_pwa, [e.to_dict() for e in events])


def test_no_events_on_isolated_ectopic_beats():
    for use_pwa in (True, False):
        _, events, _ = _run(_beats(20, ectopic_every=40), use_pwa)
        assert events == [], use_pwa


def test_arousals_found_with_onset_duration_strength():
    onsets = [120 + 75 * i for i in range(12)]
    est, events, scores = _run(_beats(18, arousals=onsets))
    assert len(events) == len(onsets), [e.to_dict() for e in events]
    for i, e in enumerate(events):
        a = onsets[i]
        assert abs(e.onset_ms - a * 1000) < 6000, (e.onset_ms, a)
        assert 4000 <= e.duration_ms <= 30000
        assert 0.3 <= e.strength <= 1.0
        assert e.pwa_drop_pct >= 20
        assert e.hr_rise_pct >= 10
    idx = est.arousal_index()
    assert 35 < idx < 45, idx  # 12 events in 18 min
    assert max(s for s in scores if s is not None) > 0.3
    assert scores[1] == 0.0  # 30-60 s: quiet sleep


def test_hr_rise_without_pwa_drop_is_not_an_arousal():
    _, events, _ = _run(_beats(10, arousals=[120, 300], pwa_drop=0.1))
    assert events == []


def test_beat_only_path_finds_hr_surges():
    onsets = [120 + 75 * i for i in range(8)]
    _, events, _ = _run(_beats(13, arousals=onsets), use_pwa=False)
    assert len(events) == len(onsets)
    assert all(e.pwa_drop_pct is None for e in events)


def test_rejected_during_motion_or_no_contact():
    _, events, _ = _run(_beats(10, arousals=[200], flag_at=(199.0, 215.0)))
    assert events == []
    _, events, _ = _run(_beats(10, arousals=[200], flag_at=(100.0, 110.0)))
    assert len(events) == 1


def test_unknown_before_enough_data():
    est = ArousalEstimator()
    assert est.arousal_index() is None
    assert est.close_epoch() is None


def test_hyperarousal_baseline_persists_and_scores():
    h = Hyperarousal()
    assert h.score()["score"] is None
    for night in range(5):
        for m in range(40):  # evening epochs every 30 s: 62-64 bpm
            h.add_epoch(m * 30000, 62.0 + (night % 3))
        h.lights_out(40 * 30000)
        for m in range(60):  # 30 min after lights-out: falls 6 bpm
            h.add_epoch((40 + m) * 30000, 63.0 - 6.0 * m / 60)
        s = h.score()
        assert s["decline_bpm_30min"] > 5.0
        h.end_night()
    h2 = Hyperarousal.from_dict(h.to_dict())
    assert h2.nights == 5 and abs(h2.base_hr - h.base_hr) < 1e-9
    # A wired evening: HR 8 bpm above baseline, no decline after lights-out.
    for m in range(40):
        h2.add_epoch(m * 30000, h2.base_hr + 8.0)
    h2.lights_out(40 * 30000)
    for m in range(60):
        h2.add_epoch((40 + m) * 30000, h2.base_hr + 8.0)
    s = h2.score()
    assert s["hr_z"] > 2.0
    assert abs(s["decline_bpm_30min"]) < 0.5
    assert s["score"] > 0.9
    # A calm evening scores low.
    h3 = Hyperarousal.from_dict(h.to_dict())
    for m in range(40):
        h3.add_epoch(m * 30000, h3.base_hr)
    h3.lights_out(40 * 30000)
    for m in range(60):
        h3.add_epoch((40 + m) * 30000, h3.base_hr - 7.0 * m / 60)
    assert h3.score()["score"] < 0.2


def test_hyperarousal_decline_on_unix_milliseconds():
    # The app passes wall-clock epochs in Unix ms (~1.8e12). In single precision (ESP32, twin)
    # such a value has a 131-s step, so the fit must run on time since lights-out.
    lo = 1767225600 * 1000 + 22 * 3600000  # 2026-01-01T22:00Z
    h = Hyperarousal()
    for m in range(40):
        h.add_epoch(lo - (40 - m) * 30000, 70.0)
    h.lights_out(lo)
    for m in range(60):  # falls 6 bpm in 30 min, exactly linear
        h.add_epoch(lo + m * 30000, 70.0 - 6.0 * m / 60)
    dec = h.score()["decline_bpm_30min"]
    # Slope (0.1 bpm per 30-s epoch) * 30 min = 6 bpm. Sums over 60 points of times < 2**21 ms
    # since lights-out: each sum rounds ~60 times, EPS/2 each (64 ulps of headroom).
    assert close(dec, 6.0, ulps=64), dec


def _run_epochs(beats):
    """Events and per-epoch scores, epochs closed exactly every 30 s on the beat clock."""
    est = ArousalEstimator()
    events = []
    scores = []
    next_epoch = 30000
    for t, ibi, pwa, flags in beats:
        while t >= next_epoch:
            scores.append(est.close_epoch(next_epoch))
            next_epoch += 30000
        ev = est.add_beat(t, ibi, pwa, flags)
        if ev is not None:
            events.append(ev)
    scores.append(est.close_epoch(next_epoch))
    return events, scores


def test_pwa_led_arousal_with_a_small_hr_rise_is_found():
    # +6 bpm on 70 bpm (8.6 %, under the former 10 % gate) with a clear 40 % PWA drop.
    onsets = [120 + 75 * i for i in range(8)]
    _, events, _ = _run(_beats(13, hr_bpm=70.0, rsa_bpm=2.0, arousals=onsets,
                               hr_rise=6.0 / 70.0, pwa_drop=0.4))
    assert len(events) == len(onsets), [e.to_dict() for e in events]
    for e in events:
        assert e.hr_rise_pct < 10.0 and e.pwa_drop_pct >= 30.0


def test_pwa_drop_without_hr_rise_is_not_an_arousal():
    # Vasomotion / posture: PWA down 30-60 % with the HR unchanged (RSA only).
    for drop in (0.3, 0.45, 0.6):
        for rsa in (2.0, 6.0):
            _, events, _ = _run(_beats(10, rsa_bpm=rsa, arousals=[120, 300, 450],
                                       hr_rise=0.0, pwa_drop=drop))
            assert events == [], (drop, rsa, [e.to_dict() for e in events])


def test_hr_rise_with_small_pwa_dip_is_not_an_arousal():
    for rise in (0.12, 0.25):
        _, events, _ = _run(_beats(10, arousals=[120, 300, 450], hr_rise=rise, pwa_drop=0.12))
        assert events == [], rise


def test_premature_beats_with_small_pulses_make_no_event():
    # A premature beat (70 % IBI) and its compensatory pause: both are off the recent median,
    # so neither their IBI nor their small pulse moves the HR or the PWA test.
    beats = _beats(15, ectopic_every=9)
    beats = [(t, ibi, pwa // 2 if ibi < 0.8 * 60000 / 58.0 else pwa, f)
             for t, ibi, pwa, f in beats]
    _, events, _ = _run(beats)
    assert events == []


def test_epoch_score_belongs_to_the_epoch_of_the_onset():
    # Onsets spread over the epoch (late ones are confirmed after it has closed).
    onsets = [125 + 77.3 * i for i in range(12)]
    events, scores = _run_epochs(_beats(18, arousals=onsets))
    assert len(events) == len(onsets)
    onset_epochs = {e.onset_ms // 30000 for e in events}
    late = 0
    for k, s in enumerate(scores):
        if s:
            assert k in onset_epochs, (k, s, sorted(onset_epochs))
    for e in events:
        k = e.onset_ms // 30000
        if not scores[k]:
            late += 1  # confirmed after its epoch closed: the event carries it (host side)
            assert not scores[k + 1] or k + 1 in onset_epochs
    assert late < len(events)
