# Hardware calibration of one unit, as pure functions: the lamp's electrical power as a fraction
# of full, the enclosure's lagging warm-up from it, and the BME680 temperature offset that
# follows (offset_c = base + k * lamp power fraction). Values and procedures: hardware/
# calibration.md; the lamp's LEDs and resistors: hardware/bom.csv.
from nsdev.compat import const

# Electrical power of each lamp channel at full output (hardware/bom.csv, lamp.md): warm
# 6 branches x 100 mA x 5 V = 3.0 W; amber/red 8 x 100 mA x 5 V = 4.0 W. Only the ratio matters.
WARM_FULL_MW = const(3000)
AMBER_FULL_MW = const(4000)
_MIN_TAU_S = 1.0


def lamp_power_fraction(warm, amber):
    """Electrical power of the lamp (channel levels 0..1, linear duty) as a fraction of both
    channels at full: the LED current, hence the heat, is proportional to the duty cycle."""
    warm = 0.0 if warm < 0.0 else (1.0 if warm > 1.0 else warm)
    amber = 0.0 if amber < 0.0 else (1.0 if amber > 1.0 else amber)
    return (warm * WARM_FULL_MW + amber * AMBER_FULL_MW) / (WARM_FULL_MW + AMBER_FULL_MW)


def temp_offset_c(base_c, lamp_k_c, heat_fraction):
    """BME680 correction (added to the chip's reading): the base self-heating offset plus
    lamp_k_c at full lamp heat (both negative: the enclosure reads warm)."""
    return base_c + lamp_k_c * heat_fraction


class LampHeat:
    """The enclosure's warm-up from the lamp as a first-order lag of the lamp's power fraction
    (time constant tau_s): a lamp switched on heats the sensor bay over minutes, not at once."""

    def __init__(self, tau_s, fraction=0.0):
        self.tau_s = max(_MIN_TAU_S, float(tau_s))
        self.fraction = float(fraction)

    def update(self, power_fraction, dt_s):
        """Advance by dt_s seconds at the given power fraction; returns the heat fraction."""
        if dt_s > 0:
            # Backward-Euler step of dx/dt = (p - x) / tau: stable for any dt, monotonic.
            a = dt_s / (self.tau_s + dt_s)
            self.fraction += (power_fraction - self.fraction) * a
        return self.fraction
