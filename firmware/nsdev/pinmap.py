# GENERATED from hardware/pinmap.json by host_tools/nightstand/pinmap.py; do not edit.
# Regenerate with `python -m nightstand.pinmap`; tests/host/test_pinmap.py checks it.
from nsdev.compat import const

I2C_BUS = const(0)
I2C_SDA = const(21)
I2C_SCL = const(22)
I2C_FREQ_HZ = const(100000)
ADDR_MAX30102 = const(0x57)
ADDR_BME680 = const(0x77)
ADDR_VEML7700 = const(0x10)
PPG_INT = const(35)
LAMP_WARM = const(32)
LAMP_AMBER = const(33)
BUTTON = const(27)
