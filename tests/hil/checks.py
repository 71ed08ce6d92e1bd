"""Bring-up checks: MicroPython snippets run on the board in maintenance mode, each returning
measured figures as JSON, and the limits they are judged by. Constants are the datasheets'."""

from __future__ import annotations

from hilboard import HilBoard, Result

# I2C addresses (hardware/pinmap.json; datasheets: MAX30102 19-7740 "0xAE/0xAF" = 0x57; BME680
# BST-BME680-DS001 0x76/0x77 by SDO; VEML7700 datasheet 0x10).
ADDR_MAX30102 = 0x57
ADDR_BME680 = (0x76, 0x77)
ADDR_VEML7700 = 0x10
PPG_RATE_HZ = 50  # the firmware's default: 200 sps averaged by 4 into the FIFO
PPG_RATE_TOL_PCT = 5.0
MIN_FLASH_FREE_BYTES = 512 * 1024  # ~ three nights of room before retention must delete
MIN_FLASH_KBPS = 20.0
MIN_HEAP_FREE_BYTES = 16 * 1024  # of the 56 KiB start heap (BRIEF: ESP32 v1.28.0)
LED_STEP_MIN_RATIO = 1.5  # 4x the LED current must raise the IR DC level at least this much

_BUS = """
import json, time, machine
from nsdev import pinmap
i2c = machine.I2C(pinmap.I2C_BUS, scl=machine.Pin(pinmap.I2C_SCL), sda=machine.Pin(pinmap.I2C_SDA),
                  freq=pinmap.I2C_FREQ_HZ)
"""


def i2c_scan(board: HilBoard) -> list[Result]:
    found = board.json(_BUS + "print(json.dumps(i2c.scan()))")
    shown = ", ".join(f"0x{a:02x}" for a in found) or "nothing"
    return [
        Result("I2C: MAX30102 at 0x57", shown, "0x57 answers", ADDR_MAX30102 in found),
        Result("I2C: BME680 at 0x76/0x77", shown, "0x76 or 0x77 answers",
               any(a in found for a in ADDR_BME680)),
        Result("I2C: VEML7700 at 0x10", shown, "0x10 answers", ADDR_VEML7700 in found),
    ]


_IDS = _BUS + """
out = {}
def rd(addr, reg, n):
    try:
        return list(i2c.readfrom_mem(addr, reg, n))
    except OSError as e:
        return str(e)
out['max30102'] = rd(0x57, 0xFE, 2)  # REV_ID, PART_ID (DS: PART_ID 0x15)
out['bme680_76'] = rd(0x76, 0xD0, 1)  # chip id (DS: 0x61)
out['bme680_77'] = rd(0x77, 0xD0, 1)
out['veml7700'] = rd(0x10, 0x07, 2)  # ID register, low byte 0x81 (DS)
print(json.dumps(out))
"""


def _hex(v: object) -> str:
    return f"0x{v:02x}" if isinstance(v, int) else str(v)


def part_ids(board: HilBoard) -> list[Result]:
    ids = board.json(_IDS)
    mx = ids["max30102"]
    bme = [v for v in (ids["bme680_76"], ids["bme680_77"]) if isinstance(v, list)]
    veml = ids["veml7700"]
    return [
        Result("MAX30102 PART_ID", _hex(mx[1] if isinstance(mx, list) else mx), "0x15",
               isinstance(mx, list) and mx[1] == 0x15,
               "REV_ID %s" % (mx[0] if isinstance(mx, list) else "?")),
        Result("BME680 chip id", _hex(bme[0][0]) if bme else "no answer", "0x61",
               bool(bme) and bme[0][0] == 0x61),
        Result("VEML7700 ID low byte", _hex(veml[0] if isinstance(veml, list) else veml), "0x81",
               isinstance(veml, list) and veml[0] == 0x81),
    ]


_BME = _BUS + """
from nsdev.drivers.bme680 import BME680
addr = 0x77 if 0x77 in i2c.scan() else 0x76
b = BME680(i2c, addr)
b.init()
b.configure()
ok = False
for _ in range(5):
    time.sleep_ms(b.start() + 5)
    ok = b.read()
    if ok:
        break
print(json.dumps({'ok': bool(ok), 't': b.temp_c, 'p': b.pressure_hpa, 'rh': b.rh_pct,
                  'gas': b.gas_ohm}))
"""


def bme680_ranges(board: HilBoard) -> list[Result]:
    r = board.json(_BME)

    def rng(name: str, v: float | None, lo: float, hi: float, unit: str) -> Result:
        return Result(f"BME680 {name}", v, f"{lo}..{hi} {unit}",
                      r["ok"] and v is not None and lo <= v <= hi)

    # A bench or bedroom: 5..40 degC, 10..95 %RH; pressure 800..1100 hPa (sea level to ~2 km).
    return [rng("temperature", r["t"], 5.0, 40.0, "degC"),
            rng("humidity", r["rh"], 10.0, 95.0, "%RH"),
            rng("pressure", r["p"], 800.0, 1100.0, "hPa")]


_PPG = _BUS + """
from array import array
from nsdev.drivers.max30102 import MAX30102
m = MAX30102(i2c)
m.setup()
red = array('i', [0] * 32); ir = array('i', [0] * 32)
n = 0; lost = 0
rtc0 = time.time(); t0 = time.ticks_ms()
while time.time() - rtc0 < %d:
    time.sleep_ms(200)
    n += m.read_fifo(red, ir)
    lost += m.overflow
el_ms = time.ticks_diff(time.ticks_ms(), t0); rtc_s = time.time() - rtc0
print(json.dumps({'n': n, 'ms': el_ms, 'rtc_s': rtc_s, 'lost': lost, 'hz': m.fifo_rate_hz}))
"""


def ppg_rate(board: HilBoard, seconds: int = 60) -> list[Result]:
    r = board.json(_PPG % seconds, timeout_s=seconds + 30)
    rate = r["n"] / (r["rtc_s"] or 1)
    err = (rate / r["hz"] - 1.0) * 100.0
    return [
        Result("PPG FIFO rate against the RTC", round(rate, 3),
               f"{r['hz']} Hz +/- {PPG_RATE_TOL_PCT}%", abs(err) <= PPG_RATE_TOL_PCT,
               f"oscillator error {err:+.2f}% over {r['rtc_s']} s ({r['n']} samples, "
               f"{r['ms']} ms by ticks)"),
        Result("PPG FIFO overflows during the rate check", r["lost"], "0", r["lost"] == 0),
    ]


_LED = _BUS + """
from array import array
from nsdev.drivers.max30102 import MAX30102
m = MAX30102(i2c)
m.setup()
red = array('i', [0] * 32); ir = array('i', [0] * 32)
out = []
for ma in (3.2, 12.8):
    m.set_led_currents(ma, ma)
    time.sleep_ms(300); m.read_fifo(red, ir)
    s = 0; k = 0
    for _ in range(5):
        time.sleep_ms(200)
        n = m.read_fifo(red, ir)
        for i in range(n):
            s += ir[i]; k += 1
    out.append(s // max(1, k))
m.shutdown()
print(json.dumps(out))
"""


def led_steps(board: HilBoard) -> list[Result]:
    low, high = board.json(_LED)
    ratio = high / low if low > 0 else 0.0
    return [Result("IR DC at 3.2 -> 12.8 mA LED current", f"{low} -> {high}",
                   f"ratio >= {LED_STEP_MIN_RATIO}", ratio >= LED_STEP_MIN_RATIO,
                   "needs a finger (or a reflector) on the sensor")]


_LAMP = """
import json, machine
from nsdev import pinmap
out = []
for pin in (pinmap.LAMP_WARM, pinmap.LAMP_AMBER):
    p = machine.PWM(machine.Pin(pin), freq=4000, duty_u16=0)
    for d in (0, 1, 655, 6554, 32768, 65535, 0):
        p.duty_u16(d)
        out.append([pin, d, p.duty_u16()])
print(json.dumps(out))
"""


def lamp_sweep(board: HilBoard) -> list[Result]:
    rows = board.json(_LAMP)
    # The ESP32's LEDC rounds duty_u16 to its resolution (16-bit at 100-1000 Hz, 13-bit at
    # 5 kHz: BRIEF): at 4 kHz allow one 13-bit step (8 counts).
    bad = [r for r in rows if abs(r[1] - r[2]) > 8]
    return [Result("lamp PWM duty read back", f"{len(rows) - len(bad)}/{len(rows)} steps",
                   "each within 8 counts", not bad, str(bad[:2]) if bad else "")]


_BUTTON = """
import json, machine
from nsdev import pinmap
p = machine.Pin(pinmap.BUTTON, machine.Pin.IN, machine.Pin.PULL_UP)
print(json.dumps(p.value()))
"""


def button_idle(board: HilBoard) -> list[Result]:
    v = board.json(_BUTTON)
    return [Result("button released reads high (pull-up)", v, "1", v == 1)]


_FLASH = """
import json, os, time
buf = bytearray(4096)
t0 = time.ticks_us()
with open('hil_tmp.bin', 'wb') as f:
    for i in range(16):
        f.write(buf)
us = time.ticks_diff(time.ticks_us(), t0)
os.remove('hil_tmp.bin')
st = os.statvfs('/')
print(json.dumps({'us': us, 'bytes': 65536, 'free': st[0] * st[3], 'total': st[0] * st[2]}))
"""


def flash_space(board: HilBoard) -> list[Result]:
    r = board.json(_FLASH)
    res = [Result("flash free", r["free"], f">= {MIN_FLASH_FREE_BYTES} bytes",
                  r["free"] >= MIN_FLASH_FREE_BYTES, f"of {r['total']} bytes")]
    if r["us"] > 0:
        kbps = r["bytes"] / 1024 / (r["us"] / 1e6)
        res.append(Result("flash write throughput", round(kbps, 1), f">= {MIN_FLASH_KBPS} KiB/s",
                          kbps >= MIN_FLASH_KBPS, "64 KiB in 4 KiB writes"))
    else:
        res.append(Result("flash write throughput", "n/a", f">= {MIN_FLASH_KBPS} KiB/s", True,
                          "the virtual flash costs no time: measured on a real board only"))
    return res
