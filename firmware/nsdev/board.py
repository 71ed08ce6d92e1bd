# The board: the only module that imports machine/network/esp32. It builds buses, pins and PWM
# from the pin map and offers the few board services the application needs.
import errno
import time

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

# I2C bus clear (NXP UM10204 rev. 7, sec. 3.1.16 "Bus clear"): a slave interrupted mid-read
# (the ESP32 reset, or the finger-clip cable was yanked) keeps driving SDA low and waits for the
# clock to go on. It releases SDA after at most 8 data bits + ACK, so the master sends up to
# nine SCL pulses, watching SDA, then a STOP so every slave resets its state machine.
I2C_CLEAR_CLOCKS = 9
I2C_CLEAR_SCL_LOW = -2  # SCL itself is held low (a short or a stretching slave): nothing to do
I2C_CLEAR_SDA_STUCK = -1  # SDA still low after nine clocks: a broken slave or a short


def i2c_clear_bus(sda_gpio, scl_gpio, half_period_us=5):
    """Free a hung I2C bus by bit-banging its pins (before machine.I2C takes them again).

    half_period_us=5 gives 100 kHz, the bus speed. Returns the number of SCL pulses sent
    (0: SDA was already high; a STOP is sent either way), or I2C_CLEAR_SDA_STUCK /
    I2C_CLEAR_SCL_LOW when the bus cannot be freed from the master side."""
    sda = machine.Pin(sda_gpio, machine.Pin.OPEN_DRAIN, machine.Pin.PULL_UP, value=1)
    scl = machine.Pin(scl_gpio, machine.Pin.OPEN_DRAIN, machine.Pin.PULL_UP, value=1)
    time.sleep_us(half_period_us)
    if not scl.value():
        return I2C_CLEAR_SCL_LOW
    pulses = 0
    while not sda.value():
        if pulses >= I2C_CLEAR_CLOCKS:
            return I2C_CLEAR_SDA_STUCK
        scl.value(0)
        time.sleep_us(half_period_us)
        scl.value(1)
        time.sleep_us(half_period_us)
        pulses += 1
    # STOP: SDA goes low while SCL is low (no START), then SCL high, then SDA rises.
    scl.value(0)
    time.sleep_us(half_period_us)
    sda.value(0)
    time.sleep_us(half_period_us)
    scl.value(1)
    time.sleep_us(half_period_us)
    sda.value(1)
    time.sleep_us(half_period_us)
    return pulses

# Maintenance mode (docs/board.md): this marker in RTC memory makes every boot until the next
# power-on (soft resets, machine.reset(), the watchdog) start the REPL instead of the app. The
# ESP32 port keeps RTC user memory across those resets and clears it at power-on.
MAINT_FLAG = b"nightstand-maint"
_HOLD_SAMPLES = 5  # the button must read pressed this many times, 10 ms apart, at boot


class Board:
    def __init__(self):
        self.i2c = None
        self.i2c_clears = 0  # bus clears that found the bus hung (freed or not)
        self.i2c_last_clear = 0  # result of the last i2c_clear_bus()
        self.i2c_recover()  # a reset can come mid-transfer: free the bus before first use
        # Lamp channels start dark: duty 0 before anything else can run (the gate pull-downs
        # keep them dark while the board boots); 4 kHz is the lamp driver's carrier.
        self.pwm_warm = machine.PWM(machine.Pin(pinmap.LAMP_WARM), freq=4000, duty_u16=0)
        self.pwm_amber = machine.PWM(machine.Pin(pinmap.LAMP_AMBER), freq=4000, duty_u16=0)
        self.button_pin = machine.Pin(pinmap.BUTTON, machine.Pin.IN, machine.Pin.PULL_UP)
        self.ppg_int_pin = machine.Pin(pinmap.PPG_INT, machine.Pin.IN)
        self._wdt = None
        self._wlan = None

    def i2c_recover(self):
        """Clear a hung bus, then (re)build machine.I2C on it (at pinmap.I2C_FREQ_HZ: 100 kHz
        over the 1 m finger-clip cable, hardware/i2c.md). On the ESP32 the constructor returns
        the same bus object, re-initialised; drivers built later use self.i2c. Returns the
        i2c_clear_bus() result."""
        res = i2c_clear_bus(pinmap.I2C_SDA, pinmap.I2C_SCL)
        self.i2c_last_clear = res
        if res != 0:
            self.i2c_clears += 1
        self.i2c = machine.I2C(
            pinmap.I2C_BUS,
            scl=machine.Pin(pinmap.I2C_SCL),
            sda=machine.Pin(pinmap.I2C_SDA),
            freq=pinmap.I2C_FREQ_HZ,
        )
        return res

    def i2c_fault(self, exc):
        """A driver's I2C error: a timeout means the bus hung (the ESP32 port raises ETIMEDOUT
        when SCL/SDA stay low), so clear it. Returns True if a clear was attempted."""
        if isinstance(exc, OSError) and exc.args and exc.args[0] == errno.ETIMEDOUT:
            self.i2c_recover()
            return True
        return False

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

    def maintenance_reason(self):
        """Why this boot must stay in maintenance mode, or None: the host asked (RTC flag, kept
        until power-on or leave_maintenance()), or the button is held (active low) at boot."""
        import time

        rtc = machine.RTC()
        if rtc.memory() == MAINT_FLAG:
            return "maintenance flag set"
        for _ in range(_HOLD_SAMPLES):
            if self.button_pin.value():
                return None
            time.sleep_ms(10)
        rtc.memory(MAINT_FLAG)  # a soft reset (mpremote's Ctrl-D) lands here again
        return "button held at boot"

    def reboot_maintenance(self):
        """Reset into maintenance mode (the sync protocol's REBOOT_MAINT)."""
        self.lamp_off()
        machine.RTC().memory(MAINT_FLAG)
        machine.reset()

    def ntp_time(self):
        """UTC Unix seconds from NTP while Wi-Fi is up, else None. Blocks up to ~1 s."""
        if network is None or not self.wifi_connected():
            return None  # the unix port (simulator): no NTP; the host sets the clock at sync
        try:
            import ntptime  # micropython-lib, frozen in the ESP32 image

            from nsdev.compat import EPOCH_OFFSET_S

            ntptime.timeout = 1
            return ntptime.time() + EPOCH_OFFSET_S  # ntptime counts from the port's epoch
        except (ImportError, OSError, OverflowError, ValueError):
            return None

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


def leave_maintenance():
    """From the maintenance REPL: clear the flag and reset into the application."""
    machine.RTC().memory(b"")
    machine.reset()
