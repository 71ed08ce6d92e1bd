# Virtual lamp channel of the simulated board: the PWM sink of one LED string. Logs the
# time-weighted mean duty per second (run-length, binary), tracks the lowest non-zero output and
# the largest per-second step, and adds its light to the virtual ambient sensor.
import struct
import time

import world

_KAPPA = 903.3
_REC_BYTES = 12  # struct '<IQ'
_BUF_BYTES = 1200  # 100 records


def _lstar(y):
    if y <= 0.008856:
        return _KAPPA * y
    return 116.0 * y ** (1.0 / 3.0) - 16.0


class VirtualLampChannel:
    """Log record: '<IQ' = (second since start, mean duty_u16 * 2**16 over that second);
    written only when the mean differs from the previous second's (run-length)."""

    RECORD = "<IQ"

    def __init__(self, spec, sim_dir="."):
        self.name = spec.get("name", "lamp")
        self.gpio = spec.get("gpio")
        self.full_lux_at_eye = float(spec.get("full_lux_at_eye", 100.0))
        self.full_lux_at_sensor = float(spec.get("full_lux_at_sensor", 0.0))
        log = spec.get("log")
        self.log_path = (sim_dir + "/" + log) if log else None
        # Fixed log buffer: the virtual lamp lives in the firmware's heap, so it must not grow.
        self._buf = bytearray(_BUF_BYTES)
        self._n = 0
        self._duty = 0
        self._freq = 0
        self._t_us = 0  # time of the last change
        self._sec = 0  # the second being integrated
        self._acc = 0  # duty*us integrated in this second
        self._last_mean = -1
        self.seconds_on = 0
        self.min_nonzero_mean = None  # duty_u16 units (float)
        self.max_mean = 0.0
        self.max_step_lstar = 0.0
        self.max_step_at_s = -1
        self.changes = 0
        self.min_freq_on = None
        self.hourly_acc = {}  # hour -> sum of per-second means
        self._prev_mean = 0.0
        if not hasattr(world, "light_sources"):
            world.light_sources = []
        world.light_sources.append(self.lux_at_sensor)

    # --- called by the virtual PWM on every duty/freq change -------------------------------
    def set(self, now_us, duty_u16, freq_hz):
        self._advance(now_us)
        if duty_u16 != self._duty:
            self.changes += 1
        self._duty = duty_u16
        self._freq = freq_hz
        if duty_u16 and (self.min_freq_on is None or freq_hz < self.min_freq_on):
            self.min_freq_on = freq_hz

    def lux_at_sensor(self, now_us=None):
        """Lux this channel adds at the ambient light sensor right now."""
        return self._duty / 65535 * self.full_lux_at_sensor

    def lux_at_eye(self):
        return self._duty / 65535 * self.full_lux_at_eye

    def level(self):
        """Duty now, 0..1: the LED current (and heat) is proportional to it."""
        return self._duty / 65535

    def _advance(self, now_us):
        t = self._t_us
        while now_us > t:
            end = (self._sec + 1) * 1000000
            if now_us < end:
                self._acc += self._duty * (now_us - t)
                t = now_us
                break
            if self._acc == 0 and t == end - 1000000 and now_us >= end + 1000000:
                n = (now_us - t) // 1000000  # whole steady seconds at once
                self._close_steady(n)
                t += n * 1000000
                continue
            self._acc += self._duty * (end - t)
            t = end
            self._close_second()
        self._t_us = t

    def _close_second(self):
        acc = self._acc
        mean = acc / 1000000.0  # duty_u16 units
        if mean > 0:
            self.seconds_on += 1
            if self.min_nonzero_mean is None or mean < self.min_nonzero_mean:
                self.min_nonzero_mean = mean
            if mean > self.max_mean:
                self.max_mean = mean
            h = self._sec // 3600
            self.hourly_acc[h] = self.hourly_acc.get(h, 0.0) + mean
        step = abs(_lstar(mean / 65535) - _lstar(self._prev_mean / 65535))
        if step > self.max_step_lstar:
            self.max_step_lstar = step
            self.max_step_at_s = self._sec
        self._prev_mean = mean
        q = (acc << 16) // 1000000
        if q != self._last_mean:
            self._last_mean = q
            if self._n + _REC_BYTES > _BUF_BYTES:
                self._flush()
            struct.pack_into(self.RECORD, self._buf, self._n, self._sec, q)
            self._n += _REC_BYTES
        self._sec += 1
        self._acc = 0

    def _close_steady(self, n):
        self._acc = self._duty * 1000000
        sec0 = self._sec
        self._close_second()  # the first one carries the step and the log record
        n -= 1
        if n <= 0:
            return
        mean = float(self._duty)
        if mean > 0:
            self.seconds_on += n
            s = sec0 + 1
            end = s + n
            while s < end:
                h = s // 3600
                k = min(end, (h + 1) * 3600) - s
                self.hourly_acc[h] = self.hourly_acc.get(h, 0.0) + mean * k
                s += k
        self._sec += n

    def _flush(self):
        if self.log_path and self._n:
            with open(self.log_path, "ab") as f:
                f.write(memoryview(self._buf)[:self._n])
        self._n = 0

    def finish(self):
        # close whole seconds up to now (a partial last second is dropped)
        self._advance((time.now_us // 1000000) * 1000000)
        self._flush()

    def stats(self):
        hours = {}
        for h in self.hourly_acc:
            hours[str(h)] = round(self.hourly_acc[h] / 3600 / 65535 * self.full_lux_at_eye, 3)
        return {
            "seconds_on": self.seconds_on,
            "changes": self.changes,
            "min_nonzero_pct": (None if self.min_nonzero_mean is None
                                else self.min_nonzero_mean / 65535 * 100),
            "max_pct": self.max_mean / 65535 * 100,
            "max_lux_at_eye": self.max_mean / 65535 * self.full_lux_at_eye,
            "max_step_lstar_per_s": self.max_step_lstar,
            "max_step_at_s": self.max_step_at_s,
            "min_freq_on_hz": self.min_freq_on,
            "hourly_mean_lux_at_eye": hours,
            "log": self.log_path,
        }


def read_log(path):
    """[(second, mean duty_u16 as float)] from a channel log (host or MicroPython)."""
    out = []
    size = struct.calcsize(VirtualLampChannel.RECORD)
    with open(path, "rb") as f:
        data = f.read()
    for i in range(0, len(data) - size + 1, size):
        s, q = struct.unpack_from(VirtualLampChannel.RECORD, data, i)
        out.append((s, q / 65536))
    return out
