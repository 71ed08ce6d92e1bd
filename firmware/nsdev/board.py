# The board: the only module that imports machine/network/esp32. It builds buses, pins and PWM
# from the pin map and offers the few board services the application needs.
import machine

from nsdev import pinmap

try:
    import network  # ESP32; absent on the unix port, where sockets reach the host directly
except ImportError:
    network = None

_RESET_CAUSES = {
    getattr(machine, "PWRON_RESET", 1): "power-on",
    getattr(machine, "HARD_RESET", 2): "hard",
    getattr(machine, "WDT_RESET", 3): "watchdog",
    getattr(machine, "DEEPSLEEP_RESET", 4): "deepsleep",
    getattr(machine, "SOFT_RESET", 5): "soft",
}

RESET_NOTE = "reset_why.txt"  # read back (and removed) at boot by nsdev.bootfiles


class Board:
    def __init__(self):
        self.i2c = machine.I2C(
            pinmap.I2C_BUS,
            scl=machine.Pin(pinmap.I2C_SCL),
            sda=machine.Pin(pinmap.I2C_SDA),
            freq=pinmap.I2C_FREQ_HZ,
        )
        # Lamp channels start dark: duty 0 before anything else can run (the gate pull-downs
        # keep them dark while the board boots); 4 kHz is the lamp driver's carrier.
        self.pwm_warm = machine.PWM(machine.Pin(pinmap.LAMP_WARM), freq=4000, duty_u16=0)
        self.pwm_amber = machine.PWM(machine.Pin(pinmap.LAMP_AMBER), freq=4000, duty_u16=0)
        self.button_pin = machine.Pin(pinmap.BUTTON, machine.Pin.IN, machine.Pin.PULL_UP)
        self.ppg_int_pin = machine.Pin(pinmap.PPG_INT, machine.Pin.IN)
        self._wdt = None
        self._wlan = None

    def lamp_off(self):
        self.pwm_warm.duty_u16(0)
        self.pwm_amber.duty_u16(0)

    def reset_cause(self):
        return _RESET_CAUSES.get(machine.reset_cause(), "unknown")

    def device_id(self):
        uid = machine.unique_id()
        return "".join("%02x" % b for b in uid)

    def start_watchdog(self, timeout_ms):
        # Cannot be stopped once started (ESP32); minimum timeout 1 s.
        self._wdt = machine.WDT(timeout=timeout_ms)

    def feed_watchdog(self):
        if self._wdt is not None:
            self._wdt.feed()

    def set_clock(self, unix_s):
        """Set the RTC (kept in UTC) from Unix seconds."""
        import time

        from nsdev.compat import EPOCH_OFFSET_S

        t = time.gmtime(unix_s - EPOCH_OFFSET_S)
        machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))

    def reset(self, why):
        """Save why, then reset. Only the application's top level calls this."""
        try:
            with open(RESET_NOTE, "w") as f:
                f.write(why[:200])
        except OSError:
            pass
        machine.reset()

    def wifi_connect(self, ssid, password):
        if network is None:
            return
        self._wlan = network.WLAN(network.STA_IF)
        self._wlan.active(True)
        if not self._wlan.isconnected():
            self._wlan.connect(ssid, password)

    def tcp_host(self):
        """Where the sync server listens: every interface on the board, loopback on unix."""
        return "0.0.0.0" if network is not None else "127.0.0.1"

    def wifi_connected(self):
        if network is None:
            return True  # the unix port's sockets are the host's
        return self._wlan is not None and self._wlan.isconnected()
