# PPG pipeline on synthetic raw counts: rates 30-200 bpm, timing, gaps, quality flags, SpO2.
import array

import ppg_synth as S
from nsdev.core import ppgdefs
from nsdev.core.ppg import PPGPipeline
from nsdev.core.ppgbeats import BEAT_RING
from nsdev.core.ppgled import LEDController

RUN_UNDER_MICROPYTHON = True


def _check_train(bpm, fs, seconds=30, phase_s=0.37, dc=120000, ac=1500, ibi_tol_ms=3):
    red, ir, peaks = S.train(bpm, fs, seconds, phase_s, dc=dc, ac=ac)
    beats = S.run(PPGPipeline(fs), red, ir)
    period_ms = 60000.0 / bpm
    # A constant delay (filter phase) is allowed; after it each beat sits on its own true peak
    # within 4 ms, and every peak from 2.5 s to 1 s before the end (detection lag) is found.
    offs = sorted(b[0] - min(peaks, key=lambda p: abs(p - b[0])) for b in beats)
    off = offs[len(offs) // 2]
    assert abs(off) < 60, (bpm, off)
    hit = []
    for b in beats:
        p = min(peaks, key=lambda q: abs(b[0] - off - q))
        assert abs(b[0] - off - p) <= 4, (bpm, fs, b, p)
        assert p not in hit, (bpm, fs, "double", b)
        hit.append(p)
    missed = [p for p in peaks if 2500 <= p <= seconds * 1000 - 1000 and p not in hit]
    assert not missed, (bpm, fs, missed)
    for b in beats:
        assert b[3] == 0, (bpm, b)
        if b[1]:
            assert abs(b[1] - period_ms) <= ibi_tol_ms, (bpm, b[1], period_ms)
    return beats


def test_rates_30_to_200_bpm_recovered_exactly():
    for bpm in (30, 37, 45, 60, 75, 100, 130, 160, 185, 200):
        _check_train(bpm, 50)


def test_other_sample_rates():
    for fs in (64, 100):
        for bpm in (33, 72, 190):
            _check_train(bpm, fs, seconds=20)


def test_small_and_large_pulses():
    _check_train(65, 50, dc=60000, ac=40, ibi_tol_ms=5)  # 0.07% perfusion
    _check_train(65, 50, dc=200000, ac=30000)


def test_pwa_is_ac_over_dc_in_ppm():
    beats = _check_train(60, 50, dc=100000, ac=1000)
    pwa = [b[2] for b in beats[3:]]
    # Band-passed peak-to-trough: close to the raw 1% (10000 ppm) pulse, same for all beats.
    assert 6000 < min(pwa) and max(pwa) < 14000, pwa
    assert max(pwa) - min(pwa) < 300


def test_gap_keeps_the_clock_and_marks_overflow():
    fs = 50
    red, ir, peaks = S.train(70, fs, 60)
    pipe = PPGPipeline(fs)
    cut0, cut1 = 20 * fs, 20 * fs + 37
    first = S.run(pipe, red[:cut0], ir[:cut0], flush=False)
    pipe.gap(cut1 - cut0)
    second = S.run(pipe, red[cut1:], ir[cut1:])
    assert pipe.n_samples == len(ir)
    assert pipe.time_ms() == len(ir) * 1000 // fs
    beats = first + second
    off = beats[3][0] - min(peaks, key=lambda p: abs(p - beats[3][0]))
    for b in second:
        assert min(abs(b[0] - off - p) for p in peaks) <= 4, b
    # The first beat after the gap has no IBI (unknown), and carries the overflow flag.
    after = [b for b in beats if b[0] > 20000]
    assert after[0][1] == 0
    assert after[0][3] & ppgdefs.OVERFLOW
    assert all(b[3] == 0 for b in after[1:])


def test_epoch_values_and_spo2_curve():
    fs = 50
    red, ir, _ = S.train(60, fs, 60)
    pipe = PPGPipeline(fs)
    S.run(pipe, red[:30 * fs], ir[:30 * fs], flush=False)
    pipe.close_epoch()  # start-up epoch
    S.run(pipe, red[30 * fs:], ir[30 * fs:], flush=False)
    ep = pipe.close_epoch()
    assert ep.flags == 0
    assert abs(ep.hr_bpm - 60.0) < 0.3
    assert ep.rmssd_ms < 2 and ep.sdnn_ms < 2
    assert 28 <= ep.beats <= 31
    assert ep.sqi >= 95
    # R = (0.5 AC / 90000) / (AC / 120000) = 0.667 -> 110 - 25 R = 93.3 (uncalibrated curve).
    assert abs(ep.r_ratio - 0.6667) < 0.02, ep.r_ratio
    assert abs(ep.spo2_pct - 93.3) < 0.6, ep.spo2_pct
    pipe.set_spo2_calibration(104.0, 17.0)
    S.run(pipe, red[30 * fs:], ir[30 * fs:], flush=False)
    ep = pipe.close_epoch()
    assert abs(ep.spo2_pct - (104.0 - 17.0 * ep.r_ratio)) < 1e-6


def test_no_contact_gives_unknown():
    fs = 50
    n = 30 * fs
    ir = array.array("i", [2000 + (i * 7919) % 300 for i in range(n)])
    red = array.array("i", [1500 + (i * 104729) % 200 for i in range(n)])
    pipe = PPGPipeline(fs)
    S.run(pipe, red, ir)
    ep = pipe.close_epoch()
    assert ep.flags & ppgdefs.NO_CONTACT
    assert ep.hr_bpm is None and ep.spo2_pct is None and ep.rmssd_ms is None
    assert ep.pwa_mean is None and ep.sqi == 0


def test_saturation_flagged_not_no_contact():
    fs = 50
    red, ir, _ = S.train(60, fs, 30, dc=262143 + 800, ac=1500)
    for i in range(len(ir)):
        ir[i] = min(ir[i], 262143)
    pipe = PPGPipeline(fs)
    S.run(pipe, red, ir)
    ep = pipe.close_epoch()
    assert ep.flags & ppgdefs.SATURATED
    assert not ep.flags & ppgdefs.NO_CONTACT
    assert ep.spo2_pct is None and ep.hr_bpm is None


def test_motion_flagged():
    fs = 50
    red, ir, _ = S.train(60, fs, 40)
    seed = 12345
    for i in range(15 * fs, 25 * fs):  # 10 s of large, irregular movement
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        ir[i] += (seed % 40000) - 20000 + (8000 if (i // 13) % 2 else -8000)
    pipe = PPGPipeline(fs)
    beats = S.run(pipe, red, ir, flush=False)
    ep = pipe.close_epoch()
    assert ep.flags & ppgdefs.MOTION
    assert not ep.flags & (ppgdefs.NO_CONTACT | ppgdefs.SATURATED | ppgdefs.OVERFLOW)
    assert any(b[3] & ppgdefs.MOTION for b in beats if 15000 <= b[0] <= 27000)
    assert all(b[3] == 0 for b in beats if 3000 <= b[0] <= 14000)


def test_led_current_step_makes_no_false_beat():
    fs = 50
    for announce in (True, False):
        red, ir, peaks = S.train(60, fs, 40)
        k = 20 * fs + 13
        for i in range(k, len(ir)):  # LED current x0.6: DC and AC scale together
            ir[i] = ir[i] * 6 // 10
        pipe = PPGPipeline(fs)
        beats = S.run(pipe, red[:k], ir[:k], flush=False)
        if announce:
            pipe.led_changed()
        beats += S.run(pipe, red[k:], ir[k:])
        off = beats[3][0] - min(peaks, key=lambda p: abs(p - beats[3][0]))
        for b in beats:
            assert min(abs(b[0] - off - p) for p in peaks) <= 4, (announce, b)
            assert b[1] == 0 or abs(b[1] - 1000) <= 3 or b[1] > 1900, (announce, b)
        assert len(beats) >= len(peaks) - 3


def test_beat_ring_drops_oldest_when_not_drained():
    fs = 50
    red, ir, _ = S.train(120, fs, 30)
    pipe = PPGPipeline(fs)
    pipe.feed(red, ir, len(ir))
    assert pipe.beats_available() == BEAT_RING
    assert pipe.beats_dropped > 0
    out = array.array("i", [0] * 4)
    last = -1
    while pipe.pop_beat(out):
        assert out[0] > last
        last = out[0]
    assert not pipe.pop_beat(out)


def test_garbage_input_never_raises():
    pipe = PPGPipeline(50)
    seed = 7
    buf = array.array("i", [0] * 32)
    for _ in range(200):
        for j in range(32):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            buf[j] = (seed % 600000) - 200000 if seed & 1 else (seed & 0x3FFFF)
        pipe.feed(buf, buf, 32)
        if seed & 3 == 0:
            pipe.gap(seed % 40)
    ep = pipe.close_epoch()
    assert 0 <= ep.sqi <= 100


def test_bad_rate_rejected():
    for fs in (5, 25, 49, 1000):
        try:
            PPGPipeline(fs)
        except ValueError:
            continue
        raise AssertionError("accepted fs " + str(fs))


def test_led_controller_keeps_dc_in_range_with_hysteresis():
    c = LEDController(red_code=40, ir_code=40, hold=3)
    fs = ppgdefs.ADC_FULL_SCALE
    # In range: nothing to do.
    assert c.update(fs // 2, fs // 2) is None
    # Too dark: only after `hold` consecutive calls, then aims at 55% of full scale.
    assert c.update(fs // 5, fs // 2) is None
    assert c.update(fs // 5, fs // 2) is None
    red, ir = c.update(fs // 5, fs // 2)
    assert ir == 40 and red == 40 * 55 // 20
    # Near saturation: at once.
    red, ir = c.update(fs // 2, fs * 97 // 100)
    assert ir < 40 and red == c.red_code
    # No contact: leave the LEDs alone; never beyond the register range.
    assert c.update(1000, 1000) is None
    c = LEDController(red_code=250, ir_code=2, hold=1)
    red, ir = c.update(fs // 10, fs)
    assert red == 255 and ir == 1
