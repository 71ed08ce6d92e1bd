# Hardware calibration: the device config's calibration keys (schema, defaults = the BOM's
# example LEDs = the light controller's defaults) and the pure lamp-heat / temperature-offset
# model (both interpreters).
from nsdev import config
from nsdev.core import hwcal, light

RUN_UNDER_MICROPYTHON = True

_LAMP_KEYS = ("warm_der", "amber_der", "warm_full_lux_at_eye", "amber_full_lux_at_eye",
              "warm_full_lux_at_sensor", "amber_full_lux_at_sensor")


def test_lamp_calibration_defaults_equal_the_light_controllers():
    d = config.defaults()
    for k in _LAMP_KEYS:
        assert d[k] == light.DEFAULTS[k], k
    # hardware/lamp.md: 2200 K white (BRIEF: DER ~0.34), 590 nm amber (~0.02)
    assert d["warm_der"] == 0.34 and d["amber_der"] == 0.02
    assert d["swap_red_ir"] is False


def test_lamp_calibration_reaches_the_light_controller():
    cfg = dict(config.defaults())
    cfg.update({"warm_der": 0.45, "amber_der": 0.002, "warm_full_lux_at_eye": 200.0,
                "amber_full_lux_at_eye": 50.0, "warm_full_lux_at_sensor": 3.0,
                "amber_full_lux_at_sensor": 1.0})
    lc = light.config_from_device(cfg)
    for k in _LAMP_KEYS:
        assert lc[k] == cfg[k], k
    ctrl = light.LightController(lc)
    # the lamp's own light at the sensor is removed from the room estimate with these values
    assert abs(ctrl.lamp_lux_at_sensor(1.0, 1.0) - 4.0) < 1e-9
    assert abs(ctrl.room_mel_edi_lx(10.0, 1.0, 1.0) - 6.0) < 1e-6


def test_schema_rejects_bad_calibration_with_one_line_each():
    d = config.defaults()
    new, errors = config.merge(d, {"warm_der": 0.0, "amber_full_lux_at_eye": -5,
                                   "swap_red_ir": "yes", "temp_lamp_tau_min": 0,
                                   "temp_offset_lamp_c": "cold"})
    assert new == d
    assert len(errors) == 5
    assert any(e.startswith("warm_der:") and "outside" in e for e in errors)
    assert any(e.startswith("amber_full_lux_at_eye:") for e in errors)
    assert any(e == "swap_red_ir: expected true or false" for e in errors)
    assert any(e.startswith("temp_lamp_tau_min:") for e in errors)
    assert any(e == "temp_offset_lamp_c: expected a number" for e in errors)
    new, errors = config.merge(d, {"swap_red_ir": True, "amber_der": 0.002,
                                   "temp_offset_lamp_c": -1})
    assert errors == [] and new["swap_red_ir"] is True
    assert isinstance(new["temp_offset_lamp_c"], float)


def test_lamp_power_fraction_weights_the_channels_by_their_current():
    assert hwcal.lamp_power_fraction(0.0, 0.0) == 0.0
    assert abs(hwcal.lamp_power_fraction(1.0, 1.0) - 1.0) < 1e-9
    assert abs(hwcal.lamp_power_fraction(1.0, 0.0) - 3.0 / 7.0) < 1e-9
    assert abs(hwcal.lamp_power_fraction(0.0, 1.0) - 4.0 / 7.0) < 1e-9
    assert hwcal.lamp_power_fraction(2.0, -1.0) == hwcal.lamp_power_fraction(1.0, 0.0)


def test_temperature_offset_is_base_plus_k_times_heat():
    assert hwcal.temp_offset_c(-3.5, -2.0, 0.0) == -3.5
    assert abs(hwcal.temp_offset_c(-3.5, -2.0, 1.0) + 5.5) < 1e-9
    assert abs(hwcal.temp_offset_c(-3.5, -2.0, 0.25) + 4.0) < 1e-9


def test_lamp_heat_lags_like_a_first_order_system():
    h = hwcal.LampHeat(1200)  # 20 min
    for _ in range(1200):  # one time constant at full power, in 1-s steps
        h.update(1.0, 1.0)
    assert 0.62 < h.fraction < 0.64  # 1 - 1/e = 0.632
    for _ in range(6000):  # five more: settled
        h.update(1.0, 1.0)
    assert 0.99 < h.fraction <= 1.0
    before = h.fraction
    assert h.update(0.0, 0.0) == before  # no time, no change
    for _ in range(1200):
        h.update(0.0, 1.0)
    assert 0.36 < h.fraction < 0.37  # cools the same way
    big = hwcal.LampHeat(60)
    assert 0.0 < big.update(1.0, 1e6) <= 1.0  # a long gap cannot overshoot
