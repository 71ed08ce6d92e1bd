# The simulated board's world: virtual I2C buses and chips, pins, the lamp's PWM log, the reset
# cause, and the simulator's own cost accounting. Built by simboot; read by the virtual `machine`.
import errno
import time

from utime import ticks_diff as _host_diff  # the host's clock: the simulator's own cost
from utime import ticks_us as _host_us


class SimReset(BaseException):
    """The board resets (watchdog or machine.reset()); simboot reboots the firmware."""

    def __init__(self, cause, why=""):
        super().__init__(why)
        self.cause = cause


buses = {}  # I2C bus id -> VirtualI2CBus
pwm_sinks = {}  # GPIO number -> object with .set(now_us, duty_u16, freq_hz)
pin_inputs = {}  # GPIO number -> object with .value() (virtual buttons)
i2c_lines = {}  # GPIO number -> VirtualI2CBus whose SDA or SCL it is (bit-banged bus clear)
reset_cause = 1  # machine.PWRON_RESET
vhw_us = 0  # real microseconds spent inside virtual hardware (excluded from firmware CPU)
config = {}  # the simulation config (sim.json)
on_reset = None  # serve mode: callable(cause) that ends this boot (see simboot._serve)
wdt_armed = False  # machine.WDT was started (it cannot be stopped)
rtc_memory = b""  # machine.RTC().memory(): kept across resets, lost at power-on
# Honest-time figures (docs/simulation.md): worst lateness of an asyncio task behind its due
# time, and the watchdog's longest gap between feeds.
lateness_max_ms = 0
lateness_max_at_us = -1
lateness_max_task = None
late_over_100ms = 0
late_by_task_ms = {}  # task name -> its worst lateness, for wake-ups over 100 ms late
wdt_timeout_us = 0
wdt_max_gap_us = 0
wdt_max_gap_at_us = -1
console_bytes = 0


def now_us():
    return time.now_us


class VirtualI2CBus:
    """Routes I2C transactions to virtual chips by address; models transfer time and faults."""

    def __init__(self, bus_id, freq_hz=400000):
        self.bus_id = bus_id
        self.freq_hz = freq_hz
        self.devices = {}
        self.fail = {}  # addr -> number of upcoming transactions that fail (NACK: ENODEV)
        self.transactions = 0
        # Stuck-SDA fault (UM10204 sec. 3.1.16): a slave interrupted mid-read holds SDA low and
        # releases it only after `sda_stuck_clocks` more SCL pulses (> 9: never, a broken slave);
        # the bus works again after a STOP. Meanwhile every transfer times out, as on the ESP32.
        self.sda_stuck_clocks = 0
        self.hung = False
        self.scl_pulses = 0  # SCL rising edges driven through the pins (bit-banged)
        self.stops = 0  # STOP conditions seen on the pins
        self.sda_gpio = self.scl_gpio = None
        self._sda_out = self._scl_out = 1  # what the master drives (1: released, pulled up)

    def hang_sda(self, clocks):
        """Inject the fault: SDA held low until `clocks` SCL pulses and a STOP have been seen."""
        self.sda_stuck_clocks = clocks
        self.hung = True

    def attach_lines(self, sda_gpio, scl_gpio):
        """Make the bus's SDA/SCL visible as GPIOs (machine.Pin), for bit-banging."""
        self.sda_gpio, self.scl_gpio = sda_gpio, scl_gpio
        i2c_lines[sda_gpio] = self
        i2c_lines[scl_gpio] = self

    def release_lines(self):
        """The I2C peripheral takes the pins over: both idle high."""
        self._sda_out = self._scl_out = 1

    def line(self, gpio):
        """Level of SDA or SCL as a GPIO reads it (wired-AND of master and slaves)."""
        if gpio == self.scl_gpio:
            return self._scl_out
        if self.hung and self.sda_stuck_clocks > 0:
            return 0
        return self._sda_out

    def drive(self, gpio, level):
        """The master drives (0) or releases (1) SDA/SCL through a GPIO."""
        level = 1 if level else 0
        if gpio == self.scl_gpio:
            if level and not self._scl_out:
                self.scl_pulses += 1
                if self.hung and self.sda_stuck_clocks > 0:
                    self.sda_stuck_clocks -= 1
            self._scl_out = level
        elif gpio == self.sda_gpio:
            rising = level and not self._sda_out and self.line(gpio) == 0
            self._sda_out = level
            if rising and self._scl_out and self.line(gpio):  # SDA up while SCL high: STOP
                self.stops += 1
                if self.hung and self.sda_stuck_clocks == 0:
                    self.hung = False

    def attach(self, dev):
        self.devices[dev.addr] = dev

    def _device(self, addr, nbytes):
        self.transactions += 1
        # Start + address + payload bytes, 9 clocks each, at the bus frequency.
        time.advance_us((nbytes + 2) * 9 * 1000000 // self.freq_hz)
        if self.hung:  # the ESP32 port waits out its 50 ms I2C timeout, then raises ETIMEDOUT
            time.advance_us(50000)
            raise OSError(errno.ETIMEDOUT)
        n = self.fail.get(addr, 0)
        if n:
            self.fail[addr] = n - 1
            raise OSError(19)  # ENODEV, what the ESP32 port raises on a NACK
        dev = self.devices.get(addr)
        if dev is None or not dev.present:
            raise OSError(19)
        return dev

    def read(self, addr, reg, buf):
        dev = self._device(addr, len(buf) + 1)
        t0 = _host_us()
        dev.read(reg, buf)
        charge(t0)

    def write(self, addr, reg, data):
        dev = self._device(addr, len(data) + 1)
        t0 = _host_us()
        dev.write(reg, data)
        charge(t0)


def charge(t0):
    """Count real time since t0 (time.real_ticks_us()) as virtual hardware, not firmware."""
    global vhw_us
    d = _host_diff(_host_us(), t0)
    vhw_us += d
    time.skip(d)


class VirtualChip:
    """Base of register-level virtual chips: 8-bit register addresses, auto-increment."""

    addr = 0
    present = True

    def read(self, reg, buf):
        raise NotImplementedError

    def write(self, reg, data):
        raise NotImplementedError
