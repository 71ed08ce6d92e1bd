# Virtual `machine` module of the simulated board: I2C, Pin, PWM, RTC, WDT and reset, backed by
# the register-level virtual chips in `world`. Used only in simulation, in place of the port's.
import time

import world

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, pin_id, mode=-1, pull=-1, value=None):
        self.id = pin_id
        self.mode = mode
        self.pull = pull
        self._value = 0
        self._irq = None
        if value is not None:
            self.value(value)

    def init(self, mode=-1, pull=-1, value=None):
        self.mode = mode
        self.pull = pull
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            src = world.pin_inputs.get(self.id)
            if src is not None:
                return src.value()
            bus = world.i2c_lines.get(self.id)
            if bus is not None:
                return bus.line(self.id)
            return self._value
        self._value = 1 if v else 0
        bus = world.i2c_lines.get(self.id)
        if bus is not None:
            bus.drive(self.id, self._value)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=IRQ_FALLING):
        src = world.pin_inputs.get(self.id)
        if src is not None:
            src.set_irq(self, handler, trigger)
        self._irq = handler


class I2C:
    def __init__(self, bus_id=0, scl=None, sda=None, freq=400000, timeout=50000):
        bus = world.buses.get(bus_id)
        if bus is None:
            raise ValueError("I2C(%s) doesn't exist" % bus_id)
        bus.freq_hz = freq
        if isinstance(sda, Pin) and isinstance(scl, Pin):
            bus.attach_lines(sda.id, scl.id)
        bus.release_lines()
        self._bus = bus
        self._ptr = {}  # register pointer per device, for plain writeto/readfrom

    def scan(self):
        found = []
        for addr in sorted(self._bus.devices):
            try:
                self._bus.read(addr, 0, bytearray(0))
                found.append(addr)
            except OSError:
                pass
        return found

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        self._bus.read(addr, memaddr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        buf = bytearray(nbytes)
        self._bus.read(addr, memaddr, buf)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self._bus.write(addr, memaddr, buf)

    def writeto(self, addr, buf, stop=True):
        if len(buf):
            self._ptr[addr] = buf[0]
            if len(buf) > 1:
                self._bus.write(addr, buf[0], memoryview(buf)[1:])
            else:
                self._bus.write(addr, buf[0], b"")
        else:
            self._bus.read(addr, 0, bytearray(0))
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        self._bus.read(addr, self._ptr.get(addr, 0), buf)

    def readfrom(self, addr, nbytes, stop=True):
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf)
        return bytes(buf)


SoftI2C = I2C


class PWM:
    def __init__(self, pin, freq=1000, duty_u16=0, **kw):
        self._gpio = pin.id if isinstance(pin, Pin) else pin
        self._freq = freq
        self._duty = 0
        self._sink = world.pwm_sinks.get(self._gpio)
        self.duty_u16(duty_u16)

    def init(self, freq=None, duty_u16=None, **kw):
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, hz=None):
        if hz is None:
            return self._freq
        self._freq = hz
        self._emit()

    def duty_u16(self, duty=None):
        if duty is None:
            return self._duty
        duty = int(duty)
        if not 0 <= duty <= 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        if duty != self._duty:
            self._duty = duty
            self._emit()

    def duty(self, d=None):  # 10-bit legacy API
        if d is None:
            return self._duty >> 6
        self.duty_u16(min(1023, max(0, d)) * 65535 // 1023)

    def deinit(self):
        self._duty = 0
        self._emit()

    def _emit(self):
        if self._sink is not None:
            time.settle()
            t0 = time.real_ticks_us()
            self._sink.set(time.now_us, self._duty, self._freq)
            world.charge(t0)


class RTC:
    def datetime(self, dt=None):
        if dt is None:
            t = time.gmtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        # (year, month, day, weekday, hours, minutes, seconds, subseconds)
        secs = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        time.set_unix_now_s(secs + 946684800)

    def init(self, dt):
        self.datetime(dt)

    def memory(self, data=None):
        if data is None:
            return world.rtc_memory
        world.rtc_memory = bytes(data)



class WDT:
    def __init__(self, id=0, timeout=5000):
        if timeout < 1000:
            raise ValueError("ESP32 WDT timeout must be at least 1000 ms")
        self._timeout_us = timeout * 1000
        time.settle()
        self._fed_us = time.now_us
        self._deadline = time.now_us + self._timeout_us
        world.wdt_armed = True
        world.wdt_timeout_us = self._timeout_us
        time.add_listener(self._check)

    def feed(self):
        time.settle()  # the feed happens after the computation before it
        now = time.now_us
        gap = now - self._fed_us
        if gap > world.wdt_max_gap_us:
            world.wdt_max_gap_us = gap
            world.wdt_max_gap_at_us = now
        self._fed_us = now
        self._deadline = now + self._timeout_us

    def _check(self, now_us):
        if now_us > self._deadline:
            ms = self._timeout_us // 1000
            raise world.SimReset(WDT_RESET, "watchdog not fed for %d ms" % ms)
        return self._deadline + 1  # nothing to do before (a feed only moves it later)


def reset_cause():
    return world.reset_cause


def reset():
    if world.on_reset is not None:  # serve mode: also from the REPL, where nothing catches it
        world.on_reset(HARD_RESET)
    raise world.SimReset(HARD_RESET, "machine.reset()")


def soft_reset():
    if world.on_reset is not None:
        world.on_reset(SOFT_RESET)
    raise world.SimReset(SOFT_RESET, "machine.soft_reset()")


def unique_id():
    return world.config.get("device_uid", b"\x24\x0a\xc4\x00\x00\x01")


def freq(hz=None):
    return 240000000 if hz is None else None


def idle():
    time.advance_us(1000)


def lightsleep(ms=None):
    time.sleep_ms(ms or 0)


def deepsleep(ms=None):
    raise world.SimReset(DEEPSLEEP_RESET, "deepsleep")


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
