# GENERATED from hardware/pinmap.json by host_tools (nightstand gen-pinmap); do not edit.
from nsdev.compat import const

I2C_BUS = const(0)
I2C_SDA = const(21)
I2C_SCL = const(22)
I2C_FREQ_HZ = const(400000)
ADDR_MAX30102 = const(87)
ADDR_BME680 = const(119)
ADDR_VEML7700 = const(16)
PPG_INT = const(35)
LAMP_WARM = const(32)
LAMP_AMBER = const(33)
BUTTON = const(27)
