# The simulated board's world: virtual I2C buses and chips, pins, the lamp's PWM log, the reset
# cause, and the simulator's own cost accounting. Built by simboot; read by the virtual `machine`.
import time


class SimReset(BaseException):
    """The board resets (watchdog or machine.reset()); simboot reboots the firmware."""

    def __init__(self, cause, why=""):
        super().__init__(why)
        self.cause = cause


buses = {}  # I2C bus id -> VirtualI2CBus
pwm_sinks = {}  # GPIO number -> object with .set(now_us, duty_u16, freq_hz)
pin_inputs = {}  # GPIO number -> object with .value() (virtual buttons)
reset_cause = 1  # machine.PWRON_RESET
vhw_us = 0  # real microseconds spent inside virtual hardware (excluded from firmware CPU)
config = {}  # the simulation config (sim.json)


class VirtualI2CBus:
    """Routes I2C transactions to virtual chips by address; models transfer time and faults."""

    def __init__(self, bus_id, freq_hz=400000):
        self.bus_id = bus_id
        self.freq_hz = freq_hz
        self.devices = {}
        self.fail = {}  # addr -> number of upcoming transactions that fail (NACK: ENODEV)
        self.transactions = 0

    def attach(self, dev):
        self.devices[dev.addr] = dev

    def _device(self, addr, nbytes):
        self.transactions += 1
        # Start + address + payload bytes, 9 clocks each, at the bus frequency.
        time.advance_us((nbytes + 2) * 9 * 1000000 // self.freq_hz)
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
        t0 = time.real_ticks_us()
        dev.read(reg, buf)
        charge(t0)

    def write(self, addr, reg, data):
        dev = self._device(addr, len(data) + 1)
        t0 = time.real_ticks_us()
        dev.write(reg, data)
        charge(t0)


def charge(t0):
    """Count real time since t0 (time.real_ticks_us()) as virtual hardware, not firmware."""
    global vhw_us
    vhw_us += time.real_ticks_diff(time.real_ticks_us(), t0)


class VirtualChip:
    """Base of register-level virtual chips: 8-bit register addresses, auto-increment."""

    addr = 0
    present = True

    def read(self, reg, buf):
        raise NotImplementedError

    def write(self, reg, data):
        raise NotImplementedError
