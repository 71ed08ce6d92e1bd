# Breathing rate from beats (nsdev.core.resp) on synthetic beat series with known breathing.
import math

from nsdev.core.resp import BreathingRate

RUN_UNDER_MICROPYTHON = True


def _feed(br, seconds, resp_bpm=15.0, hr_bpm=62.0, rsa_bpm=5.0, pwa_mod=0.08, pwa=True,
          pwa_resp_bpm=None, flag_from=None, noise=0.0):
    """Beats with RSA at resp_bpm and PWA modulated at pwa_resp_bpm (default the same)."""
    t = 0.0
    k = 0
    seed = 1234
    f_pwa = resp_bpm if pwa_resp_bpm is None else pwa_resp_bpm
    while t < seconds:
        hr = hr_bpm + rsa_bpm * math.sin(2 * math.pi * resp_bpm / 60.0 * t)
        seed = (seed * 75 + 74) % 65537  # small LCG: stays in 31-bit ints (the twin)
        hr += noise * ((seed / 65537.0) - 0.5)
        ibi = 60000.0 / hr
        t += ibi / 1000.0
        amp = 8000.0 * (1 + pwa_mod * math.cos(2 * math.pi * f_pwa / 60.0 * t))
        flags = 4 if flag_from is not None and t >= flag_from else 0
        br.add_beat(int(t * 1000), int(ibi), amp if pwa else None, flags)
        k += 1
    return int(t * 1000)


def test_known_rate_with_both_modulations():
    for rate in (9.0, 15.0, 22.0):
        br = BreathingRate()
        now = _feed(br, 120, resp_bpm=rate)
        est = br.estimate(now)
        assert est is not None and abs(est - rate) < 0.5, (rate, est)


def test_beat_only_path():
    br = BreathingRate()
    now = _feed(br, 120, resp_bpm=12.0, pwa=False)
    est = br.estimate(now)
    assert est is not None and abs(est - 12.0) < 0.5
    assert br.last_pwa_bpm is None


def test_disagreeing_modulations_give_unknown():
    br = BreathingRate()
    now = _feed(br, 120, resp_bpm=10.0, pwa_resp_bpm=20.0)
    assert br.estimate(now) is None
    assert abs(br.last_ibi_bpm - 10.0) < 0.5 and abs(br.last_pwa_bpm - 20.0) < 0.5


def test_no_breathing_signal_is_unknown():
    br = BreathingRate()
    now = _feed(br, 120, rsa_bpm=0.0, pwa_mod=0.0, noise=6.0)
    assert br.estimate(now) is None


def test_too_few_or_flagged_beats_are_unknown():
    br = BreathingRate()
    assert br.estimate(10000) is None
    now = _feed(br, 20)
    assert br.estimate(now) is None  # 20 s: fewer beats than the window needs
    br = BreathingRate()
    now = _feed(br, 120, flag_from=30.0)  # motion after 30 s: nothing valid in the last 64 s
    assert br.estimate(now) is None


def test_rate_above_half_the_heart_rate_is_not_reported():
    br = BreathingRate()
    now = _feed(br, 120, resp_bpm=28.0, hr_bpm=45.0, rsa_bpm=3.0, pwa_mod=0.0)
    est = br.estimate(now)
    assert est is None or est < 0.5 * 45.0
