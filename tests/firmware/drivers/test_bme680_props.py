"""Property tests (CPython, hypothesis) for the BME680 pure functions: calibration parsing round
trip, monotonic compensation, single-precision safety, self-heating RH correction."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from nsdev.drivers import bme680
from test_bme680 import ORDER, REAL, cal_of

u16 = st.integers(0, 65535)
s16 = st.integers(-32768, 32767)
s8 = st.integers(-128, 127)
u8 = st.integers(0, 255)

CAL_FIELDS = {
    "t1": st.integers(1, 65534), "t2": st.integers(1, 32767), "t3": s8,
    "p1": st.integers(1, 65534), "p2": s16, "p3": s8, "p4": s16, "p5": s16, "p6": s8, "p7": s8,
    "p8": s16, "p9": s16, "p10": u8, "h1": st.integers(0, 4095), "h2": st.integers(0, 4095),
    "h3": s8, "h4": s8, "h5": s8, "h6": u8, "h7": s8, "gh1": s8, "gh2": s16, "gh3": s8,
    "res_heat_range": st.integers(0, 3), "res_heat_val": s8, "range_sw_err": st.integers(-8, 7),
}


@given(st.fixed_dictionaries(CAL_FIELDS))
def test_calibration_round_trip(c):
    cal = cal_of(c)
    assert cal == tuple(c[k] for k in ORDER)


def _near_real():
    """Calibrations within a few percent of a real chip's."""
    return st.fixed_dictionaries({
        k: st.integers(int(v - abs(v) * 0.05) - 2, int(v + abs(v) * 0.05) + 2)
        for k, v in REAL.items()
    }).map(lambda c: dict(c, res_heat_range=REAL["res_heat_range"], h3=max(-128, c["h3"])))


@settings(max_examples=60)
@given(_near_real(), st.integers(300000, 650000))
def test_compensation_monotonic(c, adc_t):
    cal = cal_of(c)
    t1, f1 = bme680.compensate_temperature(cal, adc_t)
    t2, f2 = bme680.compensate_temperature(cal, adc_t + 64)
    assert t2 > t1
    p_lo = bme680.compensate_pressure(cal, 300000, f1)
    p_hi = bme680.compensate_pressure(cal, 300100, f1)
    assert p_hi < p_lo  # more ADC counts = lower pressure
    h_lo = bme680.compensate_humidity(cal, 25000, t1)
    h_hi = bme680.compensate_humidity(cal, 25100, t1)
    assert h_hi >= h_lo


def _f32_cal(cal):
    return tuple(np.float32(v) for v in cal)


@settings(max_examples=80)
@given(_near_real(), st.integers(-20, 60), st.integers(200000, 500000), st.integers(15000, 40000),
       st.integers(0, 1023), st.integers(0, 15))
def test_single_precision_is_enough(c, temp_step, adc_p, adc_h, adc_g, rng):
    """The ESP32 computes in float32: run the same code on numpy float32 inputs and compare."""
    cal = cal_of(c)
    cal32 = _f32_cal(cal)
    adc_t = 16 * c["t1"] + 3000 * temp_step
    t64, f64 = bme680.compensate_temperature(cal, adc_t)
    t32, f32 = bme680.compensate_temperature(cal32, np.float32(adc_t))
    assert isinstance(t32, np.float32)
    assert abs(float(t32) - t64) < 0.01
    p64 = bme680.compensate_pressure(cal, adc_p, f64)
    p32 = bme680.compensate_pressure(cal32, np.float32(adc_p), f32)
    assert abs(float(p32) - p64) < 5.0  # Pa (0.05 hPa)
    h64 = bme680.compensate_humidity(cal, adc_h, t64)
    h32 = bme680.compensate_humidity(cal32, np.float32(adc_h), t32)
    assert abs(float(h32) - h64) < 0.02
    g64 = bme680.compensate_gas(cal[bme680.RANGE_SW_ERR], adc_g, rng)
    g32 = bme680.compensate_gas(cal32[bme680.RANGE_SW_ERR], np.float32(adc_g), rng)
    assert abs(float(g32) - g64) < 1e-5 * g64


@given(st.floats(0.5, 99.5), st.floats(-10, 45), st.floats(-6, 6))
def test_rh_correction_round_trip_and_direction(rh, t_chip, offset):
    t_room = t_chip + offset
    out = bme680.rh_at_temperature(rh, t_chip, t_room)
    assert 0.0 <= out <= 100.0
    if out < 100.0:
        back = bme680.rh_at_temperature(out, t_room, t_chip)
        assert abs(back - rh) < 1e-6 * max(1.0, rh)
    if offset < 0:
        assert out >= rh
    elif offset > 0:
        assert out <= rh


@given(st.integers(0, 5000))
def test_gas_wait_code_never_exceeds_request(ms):
    code = bme680.gas_wait_code(ms)
    assert 0 <= code <= 255
    assert bme680.gas_wait_ms(code) <= max(ms, 0) or code == 0xFF
    assert bme680.gas_wait_ms(code) >= min(ms, 4032) - 3 * 64  # coarsest step: 64 ms
