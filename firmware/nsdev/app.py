# The application: wires board, drivers and the pure core together as asyncio tasks (sampling,
# environment, epochs, storage, lamp, watchdog) and keeps running when a part fails.
import asyncio
import gc
import sys
from array import array

from nsdev import VERSION, bootfiles, compat, health, pinmap
from nsdev.compat import const
from nsdev.core import hwcal, light, onset, tovocab, vocab
from nsdev.core.arousal import ArousalEstimator
from nsdev.core.ppg import PPGPipeline
from nsdev.core.ppgdefs import MOTION, NO_CONTACT
from nsdev.core.ppgled import LEDController
from nsdev.core.resp import PPGBreathing
from nsdev.drivers.bme680 import BME680
from nsdev.drivers.button import Button
from nsdev.drivers.lamp import Lamp
from nsdev.drivers.max30102 import MAX30102
from nsdev.drivers.veml7700 import VEML7700
from nsdev.recorder import Recorder

EPOCH_MS = vocab.EPOCH_S * 1000
_PPG_POLL_MS = 200  # FIFO: 32 samples = 640 ms at 50 Hz; read well before it fills
# Flash work (docs/simulation.md, "Honest time"): a W25Q32 sector erase takes up to tSE = 400 ms
# (45 ms typical) and blocks the interpreter. Each flash step (at most one erase) starts right
# after a FIFO read, and only when no other task is due within _GATE_MS, so none waits for the
# whole erase (worst lateness ~ erase + block copy + its CPU - _GATE_MS: 400 + ~150 - 300 ms).
# The lamp (frames every 10-250 ms, the button polled every 250 ms) is never that quiet by
# itself: it is asked for _LAMP_SLACK_MS without a frame (Lamp.update's slack: a centred frame, a
# dithering level at its nearest code; nothing visible) from a moment when the others stay
# quiet (it wakes for it), and the step runs right after it granted it. A fast fade grants it
# only when forced, once an epoch's work has waited _GATE_HOLD_MS (it then pauses for the
# hold); a lamp that never answers is no longer waited for after twice that.
_GATE_MS = 300
_GATE_HOLD_MS = 10000
# > _GATE_MS + a FIFO read and its processing (~40 ms); a press during a hold waits this long
_LAMP_SLACK_MS = 360
_PPG_QUIET_MS = 2000  # no FIFO read for this long: the epoch task runs the flash work itself
_LED_MS = 1000  # LED-current control once a second, by the clock
_LUX_EVERY_MS = 10000
_BUTTON_POLL_MS = 250  # a press lights the night light within a quarter second (or a hold)
_WDT_TIMEOUT_MS = 8000
_CHECKIN_SLACK_MS = 5000  # a task this late for its promised check-in stops the WDT feed
_CONTACT_HOLD_S = 600  # outside the schedule a night stays open this long after contact
_NIGHT_AFTER_WAKE_S = 900  # the scheduled night ends 15 min after wake
_RATE_MIN_MS = 30000  # the sample rate is first measured over 30 s (+-1 ms: 33 ppm)
_RATE_MAX_MS = 6 * 3600 * 1000  # then over up to 6 h before the window restarts
_MAX_BEATS_PER_EPOCH = 128  # 200 bpm * 30 s = 100
_CLIP_READ_TRIES = const(5)  # polls (1 s) for a die-temperature conversion (29 ms typ, DS)
_CLIP_GAVE_UP = const(-32768)  # this epoch's conversion never finished (below TINT's -128 degC)
_CLOCK_VALID_UNIX_S = light.MIN_VALID_UNIX_S
# asyncio loads gather() on first use into its module dict (a reallocation): at import, not on
# the fragmented heap of a running board (docs/twin-and-image.md).
_gather = asyncio.gather
# Modules needed only at boot or while a host syncs: the sync protocol's, loaded when a host
# speaks on the USB console, the settings' schema and the night-file decoder (recovery). Dropped
# after boot and after each session (~10 KiB with a session's buffers that the board does not
# hold all night), unless the Wi-Fi server (netserve) shares them (docs/twin-and-image.md,
# "Memory as on the ESP32").
_SYNC_MODULES = (("nsdev", "syncdevice"), ("nsdev", "sync"), ("nsdev.core", "proto"),
                 ("nsdev", "config"), ("nsdev.core", "nfdecode"))
# asyncio's stream module, loaded by a sync session (~0.9 KiB), and the names asyncio caches
# from it (extmod/asyncio/__init__.py of MicroPython 1.28: loaded again on the next use)
_STREAM_NAMES = ("StreamReader", "StreamWriter", "open_connection", "start_server", "stream")

_RESET_CODES = {
    "power-on": vocab.RESET_POWER_ON,
    "watchdog": vocab.RESET_WATCHDOG,
    "soft": vocab.RESET_SOFT,
    "hard": vocab.RESET_CRASH,
}


class App:
    def __init__(self, board):
        from nsdev import config  # dropped after boot (_drop_sync)

        self.board = board
        rejected = []
        self.cfg, cfg_ok = config.load(problems=rejected)
        if not cfg_ok:
            if bootfiles.read_json(config.CONFIG_FILE)[1] != "missing":
                bootfiles.repair("config.json invalid: using the default settings")
            else:
                compat.log("[config] no stored settings: using the defaults")
        for why in rejected:
            bootfiles.repair("config.json %s: default kept" % why)
        self._set_schedule(config)
        config = None
        bootfiles.check_secret(bootfiles.SECRET_FILE)  # noted in repairs: events once running
        # Boot's garbage (JSON parsing, the schema walk) and its modules go before the
        # long-lived buffers are placed, the largest first: the ESP32's first heap is 56 KiB,
        # and a hole-riddled one fails a 2-KB request with 14 KB free (docs/twin-and-image.md,
        # "Memory as on the ESP32").
        self._drop_sync()
        self.ppg_health = health.Subsystem("ppg", vocab.FLAG_SENSOR_FAULT)
        self.env_health = health.Subsystem("env", vocab.FLAG_SENSOR_FAULT)
        self.light_health = health.Subsystem("light", vocab.FLAG_SENSOR_FAULT)
        self.store_health = health.Subsystem("storage", 0)
        self.subsystems = (self.ppg_health, self.env_health, self.light_health,
                           self.store_health)
        self.pipe = PPGPipeline(self.cfg["ppg_rate_hz"], self.cfg["spo2_a"], self.cfg["spo2_b"])
        self.rec = Recorder("data", device_id=board.device_id(), fw_version=VERSION,
                            sensor_config="max30102 %dHz" % self.cfg["ppg_rate_hz"])
        gc.collect()  # the night index's JSON
        self.light = light.LightController(light.config_from_device(self.cfg))
        self.arousal = ArousalEstimator()
        self.resp = PPGBreathing()  # breathing rate per epoch (core/resp.py)
        self.onset = onset.SleepOnset(bootfiles.load_baseline(bootfiles.BASELINE_FILE))
        self.lamp = Lamp(board.pwm_warm, board.pwm_amber)
        # the lamp warms the enclosure: BME680 offset = base + k * lagged lamp power fraction
        self.lamp_heat = hwcal.LampHeat(self.cfg["temp_lamp_tau_min"] * 60)
        self._heat_ms = None
        self.button = Button(board.button_pin)
        # latest environment readings (None = unknown)
        self.temp_c = self.rh_pct = self.pressure_hpa = self.gas_ohm = None
        self._env_ms = None
        self._lux_sum = 0.0
        self._lux_n = 0
        self.room_lux = None
        self._env_lux = None  # lux of the last environment sample recorded
        # per-epoch accumulators
        self._beat = array("i", (0, 0, 0, 0))
        # The epoch's stored beats: the first one's time (ms since night start), the intervals
        # after it (ms, clipped to 65535 as the night format stores them) and the amplitudes.
        self._bt0 = 0
        self._blast = 0  # time of the latest stored beat
        self._bibi = array("H", bytes(2 * _MAX_BEATS_PER_EPOCH))
        self._bpwa = array("i", bytes(4 * _MAX_BEATS_PER_EPOCH))
        self._nb = 0
        self._pipe_t0_ms = 0  # unix ms of the pipeline's sample 0
        self._rate_k = 1.0  # nominal / measured MAX30102 sample rate
        # pipeline ms -> board ms is piecewise linear: k applies from (base_t, base_true) on, so a
        # new measurement window (or a rebased pipeline clock) never moves the times before it
        self._rate_base_t = 0
        self._rate_base_true = 0
        self._rate_t0 = None  # ticks of the rate measurement's first read
        self._rate_n = 0
        self._lamp_max = [0.0, 0.0]  # highest level per channel (warm, amber) this epoch
        # the closing epoch: pipeline epoch, clip, arousal score, beats, lux, env fresh, lamp,
        # flags (a generator's locals are heap: docs/twin-and-image.md)
        self._epv = [None, None, None, 0, None, False, None, 0]
        # clip temperature: one MAX30102 die-temperature conversion per epoch, in 1/16 degC
        # (a small int, nothing allocated); None = not measured yet this epoch (wanted)
        self._clip_x16 = None
        self._epoch_flags = 0
        self._last_contact_s = None
        self._last_hr = None
        self._last_rmssd = None
        self._due = {}  # task name -> ticks_ms by which it promised to check in again
        self._events = []  # (unix_s, kind, values, text) queued by tasks until the night is open
        # Epoch work for the sampling task to run after its FIFO reads, one step at a time:
        # (function, touches the flash); a function may return a generator (one step per next).
        # At most one epoch's work (3 entries) is queued: the epoch task waits for it.
        self._jobs = []
        self._job_gen = None  # the generator of the job being run, if it is one
        self._gen_flash = False  # its last yield said: the next step may erase (yield 1)
        self._wake = {}  # task name -> ticks_ms it sleeps until (the flash gate looks ahead)
        self._hold_ms = None  # ticks when a flash step began waiting for a quiet moment
        self._slack_req = 0  # asks the lamp for a hold: 1 if invisible, 2 forced (see _GATE_MS)
        self._slack_at = 0  # ticks_ms from which the hold is wanted (the lamp wakes for it)
        self._fifo_ms = None  # ticks of the last FIFO read
        self._late_reported = False
        self.uptime = health.Uptime()
        # Run-time health for the soak test (STATUS "perf"): FIFO samples lost, the worst task
        # lateness against its promised wake-up, the longest gc.collect() at epoch end, and
        # die-temperature conversions given up (the epoch's clip temperature is then unknown).
        self.perf = {"fifo_overflows": 0, "late_ms_max": 0, "gc_ms_max": 0, "clip_timeouts": 0}

    # --- time ----------------------------------------------------------------------------
    def clock_valid(self):
        return compat.unix_time() >= _CLOCK_VALID_UNIX_S

    def uptime_s(self):
        return self.uptime.seconds()

    def _checkin(self, name, next_ms):
        """A task reports progress and promises to report again within next_ms."""
        now = compat.ticks_ms()
        prev = self._due.get(name)
        if prev is not None:
            late = compat.ticks_diff(now, prev) + _CHECKIN_SLACK_MS
            if late > self.perf["late_ms_max"]:
                self.perf["late_ms_max"] = late
        self._due[name] = compat.ticks_add(now, next_ms + _CHECKIN_SLACK_MS)

    async def _sleep(self, name, ms):
        self._checkin(name, ms)
        self._wake[name] = compat.ticks_add(compat.ticks_ms(), ms)
        await asyncio.sleep_ms(ms)

    def _quiet_ms(self, skip=None):
        """ms until the next task other than the sampling task (and `skip`) is due to wake."""
        now = compat.ticks_ms()
        soon = _GATE_HOLD_MS
        wake = self._wake
        for name in wake:
            if name != "ppg" and name != skip:
                d = compat.ticks_diff(wake[name], now)
                if d < soon:
                    soon = d
        return soon

    # --- events --------------------------------------------------------------------------
    def event(self, kind, values=(), text=None, unix_s=None):
        if unix_s is None:
            unix_s = compat.unix_time()
        if self.rec.night_id is not None:
            self.rec.add_event(unix_s, kind, values, text)
        elif len(self._events) < 16:
            self._events.append((unix_s, kind, values, text))

    def _sensor_fault(self, sub, code, exc):
        backoff_ms = sub.fault(exc)
        self.board.i2c_fault(exc)  # a hung bus (timeout) is clocked free before the retry
        self.event(vocab.EV_SENSOR_FAULT, (code,), health.describe(exc))
        return backoff_ms

    # --- night lifecycle -----------------------------------------------------------------
    def _in_schedule(self, unix_s):
        if unix_s < _CLOCK_VALID_UNIX_S:
            return False
        local = (unix_s + self.cfg["utc_offset_s"]) % 86400
        start = (self._bed_min - self.cfg["winddown_min"]) * 60
        end = self._wake_min * 60 + _NIGHT_AFTER_WAKE_S
        return (local - start) % 86400 < (end - start) % 86400

    def _update_night(self, unix_s, contact):
        compat.run_steps(self._night_steps(unix_s, contact))

    def _night_steps(self, unix_s, contact):
        # a generator: yields 1 before each step that may erase a flash sector (Recorder)
        if contact:
            self._last_contact_s = unix_s
        recent = (self._last_contact_s is not None
                  and unix_s - self._last_contact_s < _CONTACT_HOLD_S)
        want = self._in_schedule(unix_s) or recent
        if want and self.rec.night_id is None:
            nid = yield from self.rec.start_night_steps(unix_s, self.cfg["utc_offset_s"])
            if nid is not None and not self.clock_valid():
                self.rec.set_boot_clock_nights(self.rec.boot_clock_nights() + [nid])
            self._nb = 0
            for ev in self._events:
                self.rec.add_event(max(ev[0], unix_s), ev[1], ev[2], ev[3])
            self._events = []
        elif not want and self.rec.night_id is not None:
            reason = vocab.END_SCHEDULE if self._in_schedule(unix_s - 60) else \
                vocab.END_CONTACT_LOST
            yield from self.rec.end_night_steps(unix_s, reason)
            yield 1
            self._end_of_night()

    # --- tasks ---------------------------------------------------------------------------
    async def ppg_task(self):
        red = array("i", [0] * 32)
        ir = array("i", [0] * 32)
        led = LEDController()
        drv = None
        led_due = 0  # ticks of the next LED-current control
        last_read_ms = None  # ticks of the last FIFO read
        due_milli = 0
        prev_full = False
        clip_polls = 0  # polls since the die-temperature conversion started (0: not started)
        while True:
            if drv is None:
                try:
                    drv = MAX30102(self.board.i2c, pinmap.ADDR_MAX30102,
                                   swap_red_ir=self.cfg["swap_red_ir"])
                    # 4x on-chip averaging: the FIFO delivers the configured rate.
                    drv.setup(sample_rate_hz=4 * self.cfg["ppg_rate_hz"], averaging=4)
                    drv.set_led_codes(led.red_code, led.ir_code)
                    led_due = compat.ticks_add(compat.ticks_ms(), _LED_MS)
                    self.pipe.reset()
                    last_read_ms = None
                    prev_full = False
                    clip_polls = 0  # the reset ended any conversion
                    self._pipe_t0_ms = None  # set at the first FIFO read
                    self._rate_t0 = None  # the rate is measured again (k is kept)
                    self._rate_base_t = self._rate_base_true = 0  # the pipeline's clock restarts
                    self.ppg_health.ok()
                except Exception as e:
                    drv = None
                    await self._sleep("ppg", self._sensor_fault(self.ppg_health,
                                                                vocab.SENSOR_PPG, e))
                    continue
            try:
                n = drv.read_fifo(red, ir)
            except Exception as e:
                drv = None
                await self._sleep("ppg", self._sensor_fault(self.ppg_health, vocab.SENSOR_PPG, e))
                continue
            # Sample accounting against the clock. Samples made between two pointer reads
            # were read or counted lost, except when the FIFO was full: OVF_COUNTER stops at
            # 31, and reading FIFO_DATA clears it, wiping the losses between the pointer read
            # and the data read (DS "FIFO Overflow Counter"). Those are estimated from the
            # clock (the fraction carries over), or every later beat time would slip early.
            t1 = drv.pointers_ms
            last_was_set = last_read_ms is not None
            lost = drv.overflow
            before = 0  # lost while the previous batch was being read: before this batch
            if last_read_ms is not None:
                due_milli += compat.ticks_diff(t1, last_read_ms) * self.cfg["ppg_rate_hz"]
                due_milli -= (n + lost) * 1000
                if (prev_full or drv.overflow_saturated) and due_milli >= 500:
                    extra = (due_milli + 500) // 1000  # rounded: no bias over many gaps
                    due_milli -= extra * 1000
                    if prev_full:
                        before = extra
                    else:
                        lost += extra
                elif not (prev_full or drv.overflow_saturated):
                    due_milli = 0  # an exact count: start the estimate afresh
            last_read_ms = t1
            self._fifo_ms = t1
            # Could the FIFO have filled before its data was read? (Then losses may follow.)
            prev_full = (n + compat.ticks_diff(compat.ticks_ms(), t1) * self.cfg["ppg_rate_hz"]
                         // 1000) >= 31
            if self._pipe_t0_ms is None:
                # The pipeline's sample 0 is the first sample read: n samples before t1.
                since_ms = compat.ticks_diff(compat.ticks_ms(), t1)
                self._pipe_t0_ms = (compat.unix_time_ms() - since_ms
                                    - n * 1000 // self.cfg["ppg_rate_hz"])
            self._measure_rate(t1, n + lost + before if last_was_set else 0)
            if before:
                self.pipe.gap(before)
            if n:
                self.pipe.feed(red, ir, n)
                self.resp.add_samples(self.pipe.time_ms(), ir, n)
            if lost:  # the counted losses came after this batch
                self.pipe.gap(lost)
            if lost or before:
                self.perf["fifo_overflows"] += lost + before
            while self.pipe.pop_beat(self._beat):
                self._on_beat()
            if drv.swap_red_ir != self.cfg["swap_red_ir"]:
                drv = None  # the calibration changed: set the chip up again with the new wiring
                await self._sleep("ppg", _PPG_POLL_MS)
                continue
            if compat.ticks_diff(t1, led_due) >= 0:
                # By the clock, not by polls: epoch work (a flash step may wait up to 20 s for
                # a quiet moment) must not pause it, or a drifting DC level clips the ADC.
                led_due = compat.ticks_add(t1, _LED_MS)
                codes = led.update(self.pipe.dc_red_counts(), self.pipe.dc_ir_counts())
                if codes is not None:
                    try:
                        drv.set_led_codes(codes[0], codes[1])
                        self.pipe.led_changed()
                    except Exception as e:
                        drv = None
                        self._sensor_fault(self.ppg_health, vocab.SENSOR_PPG, e)
                        await self._sleep("ppg", _PPG_POLL_MS)
                        continue
            if self._jobs:
                # Epoch work, one step right after each FIFO read: the FIFO is empty when a
                # slow erase starts (32 samples = 640 ms at 50 Hz), and read again at once after.
                if self._jobs[0][1] if self._job_gen is None else self._gen_flash:
                    # a flash step: not while another task is about to wake
                    now = compat.ticks_ms()
                    if self._hold_ms is None:
                        self._hold_ms = now
                    waited = compat.ticks_diff(now, self._hold_ms)
                    soon = self._quiet_ms("lamp")
                    near = self._quiet_ms() if waited < 2 * _GATE_HOLD_MS else soon
                    if near < soon and near < _GATE_MS:
                        # the lamp's next frame is near: ask it for a hold from that frame if the
                        # others stay quiet for a whole hold after it, else from just after the
                        # next of them wakes (the lamp then wakes for it: its frames are at a
                        # fixed phase to the others' 1-s periods and might never fit)
                        at = max(0, near)
                        if soon - at < _LAMP_SLACK_MS:
                            at = max(0, soon) + 1
                        self._slack_at = compat.ticks_add(now, at)
                        self._slack_req = 2 if waited >= _GATE_HOLD_MS else 1
                        # the lamp's answer, then read again (the FIFO is read every poll)
                        await self._sleep("ppg", min(at + 1, _PPG_POLL_MS))
                        continue
                    if soon < _GATE_MS:
                        # it runs, then read again
                        await self._sleep("ppg", min(max(0, soon) + 1, _PPG_POLL_MS))
                        continue
                    self._slack_req = 0
                self._run_job()
                if not self._jobs:
                    self._hold_ms = None  # the epoch's work is done: the next gets a new budget
                await self._sleep("ppg", 0)
                continue
            if self._clip_x16 is None:
                try:
                    clip_polls = self._clip_step(drv, clip_polls)
                except Exception as e:
                    drv = None
                    self._sensor_fault(self.ppg_health, vocab.SENSOR_PPG, e)
                    await self._sleep("ppg", _PPG_POLL_MS)
                    continue
            await self._sleep("ppg", _PPG_POLL_MS)

    def _clip_step(self, drv, polls):
        """One step of the epoch's die-temperature conversion, never waiting for it: start it
        on one poll, read it on a later one (29 ms typ, DS 19-7740; polls are 200 ms apart).
        -> the new poll count (0 when done). A conversion that never finishes costs this epoch's
        value (counted in perf, logged once), never the PPG: bus errors raise as usual."""
        if polls == 0:
            drv.start_temperature()
            return 1
        t16 = drv.read_temperature_x16()
        if t16 is None:
            if polls < _CLIP_READ_TRIES:
                return polls + 1
            if not self.perf["clip_timeouts"]:
                compat.log("[ppg] MAX30102 die temperature not ready after %d polls: clip "
                           "temperature unknown for such epochs" % polls)
            self.perf["clip_timeouts"] += 1
            t16 = _CLIP_GAVE_UP
        self._clip_x16 = t16
        return 0

    def _true_ms(self, t_ms):
        """Pipeline time (samples at the nominal rate) -> ms on the board's clock since the
        pipeline's sample 0."""
        d = t_ms - self._rate_base_t
        k = self._rate_k
        return self._rate_base_true + (d if k == 1.0 else d + int(d * (k - 1.0)))

    def _pipe_ms(self, true_ms):
        """The inverse of _true_ms: board ms since sample 0 -> pipeline time."""
        d = true_ms - self._rate_base_true
        k = self._rate_k
        return self._rate_base_t + (d if k == 1.0 else int(d / k))

    def _measure_rate(self, t1, samples):
        """The MAX30102's own oscillator sets its sample rate (a few % off nominal): count its
        samples against the board's clock, from the first read on (the longer, the better)."""
        if self._rate_t0 is None:
            self._rate_t0 = t1
            self._rate_n = 0
            return
        self._rate_n += samples
        elapsed_ms = compat.ticks_diff(t1, self._rate_t0)
        if elapsed_ms >= _RATE_MIN_MS and self._rate_n > 0:
            k = elapsed_ms * (self.cfg["ppg_rate_hz"] / 1000.0) / self._rate_n
            if 0.9 < k < 1.1:  # datasheet-plausible; else a counting fault, keep the old
                self._rate_k = k
        if elapsed_ms > _RATE_MAX_MS:  # keep ticks_diff far from its 2**29 ms limit
            self._rate_t0 = None
            # the next window's k applies from here on: what came before keeps its times
            now = self.pipe.time_ms()
            self._rate_base_true = self._true_ms(now)
            self._rate_base_t = now

    def _on_beat(self):
        b = self._beat
        self.resp.add_beat(b[0], b[1], b[2], b[3])
        ev = self.arousal.add_beat(b[0], b[1], b[2], b[3])
        if ev is not None:
            onset_ms = self._pipe_t0_ms + self._true_ms(ev.onset_ms)
            if self.rec.night_id is not None:
                self.rec.add_event(onset_ms // 1000, vocab.EV_AROUSAL,
                                   (ev.duration_ms, int(ev.strength * 1000)), None,
                                   onset_ms % 1000)
        if b[3] or self.rec.night_id is None or self._nb >= _MAX_BEATS_PER_EPOCH:
            return  # flagged beats (no contact, motion, clipping, overflow) are not stored
        t = self._pipe_t0_ms + self._true_ms(b[0]) - self.rec.start_unix_s * 1000
        if t < 0:
            return
        i = self._nb
        if i == 0:
            self._bt0 = t
        else:
            d = t - self._blast
            self._bibi[i - 1] = d if 0 < d < 65536 else 65535
        self._blast = t
        self._bpwa[i] = b[2]
        self._nb = i + 1

    async def env_task(self):
        drv = None
        while True:
            try:
                if drv is None:
                    drv = BME680(self.board.i2c, pinmap.ADDR_BME680,
                                 temp_offset_c=self.cfg["temp_offset_c"])
                drv.temp_offset_c = hwcal.temp_offset_c(
                    self.cfg["temp_offset_c"], self.cfg["temp_offset_lamp_c"],
                    self.lamp_heat.fraction)
                wait_ms = drv.start()
                await self._sleep("env", wait_ms)
                for _ in range(50):
                    if drv.ready():
                        break
                    await self._sleep("env", 10)
                if not drv.read():
                    raise OSError("BME680: measurement finished without new data")
                self.temp_c, self.rh_pct = drv.temp_c, drv.rh_pct
                self.pressure_hpa, self.gas_ohm = drv.pressure_hpa, drv.gas_ohm
                self._env_ms = compat.ticks_ms()
                self.env_health.ok()
                await self._sleep("env", EPOCH_MS - wait_ms)
            except Exception as e:
                drv = None
                await self._sleep("env", self._sensor_fault(self.env_health, vocab.SENSOR_ENV, e))

    async def lux_task(self):
        drv = None
        while True:
            try:
                if drv is None:
                    drv = VEML7700(self.board.i2c, pinmap.ADDR_VEML7700)
                t0 = compat.ticks_ms()
                lux = None
                for _ in range(8):  # auto-ranging converges in a few integrations
                    await self._sleep("lux", drv.start())
                    lux = drv.read()
                    if lux is not None:
                        break
                if lux is not None:
                    self.room_lux = lux  # at the sensor; the controller removes the lamp's part
                    self._lux_sum += lux
                    self._lux_n += 1
                    self._light_sample(lux)
                self.light_health.ok()
                spent = compat.ticks_diff(compat.ticks_ms(), t0)
                await self._sleep("lux", max(100, _LUX_EVERY_MS - spent))
            except Exception as e:
                drv = None
                await self._sleep("lux", self._sensor_fault(self.light_health,
                                                            vocab.SENSOR_LIGHT, e))

    def _light_sample(self, lux):
        """An environment sample when the light changes markedly (a light switched on or off):
        epochs carry 30-s means; this keeps the moment of the change at 10-s resolution."""
        last = self._env_lux
        if last is not None and max(lux, last) <= 2 * min(lux, last) + 0.5:  # under ~2x
            return
        self._env_lux = lux
        if self.rec.night_id is not None:
            mel = self.light.room_mel_edi_lx(lux, self.lamp.level(0), self.lamp.level(1))
            self.rec.add_env(compat.unix_time(), self.temp_c, self.rh_pct, self.pressure_hpa,
                             self.gas_ohm, lux, mel)

    async def lamp_task(self):
        last = compat.ticks_ms()
        next_ctrl = last
        while True:
            now = compat.ticks_ms()
            if compat.ticks_diff(now, next_ctrl) >= 0:
                next_ctrl = compat.ticks_add(next_ctrl, 1000)
                if compat.ticks_diff(now, next_ctrl) > 0:
                    next_ctrl = compat.ticks_add(now, 1000)
                unix_s = compat.unix_time()
                valid = unix_s >= _CLOCK_VALID_UNIX_S
                warm, amber, events = self.light.update(
                    unix_s if valid else None, self.cfg["utc_offset_s"] if valid else None,
                    room_lux=self.room_lux, pressed=self._take_press(),
                    hyperarousal=self.onset.score,
                    hr_bpm=self._last_hr, rmssd_ms=self._last_rmssd)
                self.lamp.set_target(warm, amber, 1000)
                self._heat_update(now)
                for kind, info in events:
                    self._light_event(unix_s, kind, info)
            req = self._slack_req
            poll = _BUTTON_POLL_MS
            if req:
                to_hold = compat.ticks_diff(self._slack_at, now)
                if to_hold > 0:  # the hold is wanted later: wake for it
                    req = 0
                    if to_hold < poll:
                        poll = to_hold
            due = self.lamp.update(compat.ticks_diff(now, last), _LAMP_SLACK_MS if req else 0,
                                   req == 2)
            last = now
            if req and due >= _LAMP_SLACK_MS:
                # granted: no frame, schedule update or button poll is due before it ends
                self._slack_req = 0
                poll = _LAMP_SLACK_MS
                if compat.ticks_diff(next_ctrl, now) < poll:
                    next_ctrl = compat.ticks_add(now, poll)
            peak = self._lamp_max
            for ch in (0, 1):
                lvl = self.lamp.level(ch)
                if lvl > peak[ch]:
                    peak[ch] = lvl
            wait = compat.ticks_diff(next_ctrl, compat.ticks_ms())
            await self._sleep("lamp", max(1, min(due, wait, poll)))
            if self.button.pending():
                next_ctrl = compat.ticks_ms()  # answer a press now, not at the next second

    def _heat_update(self, now_ms):
        """Integrate the lamp's heat over the time since the last call (about 1 s)."""
        last, self._heat_ms = self._heat_ms, now_ms
        if last is not None:
            p = hwcal.lamp_power_fraction(self.lamp.level(0), self.lamp.level(1))
            self.lamp_heat.update(p, compat.ticks_diff(now_ms, last) / 1000)

    def _take_press(self):
        """A debounced press since the last lamp update (the IRQ only sets a flag)."""
        if self.button.take():
            self.event(vocab.EV_BUTTON, (0, 0))
            return True
        return False

    def _light_event(self, unix_s, kind, info):
        """Record what the light schedule reports, in the night format's vocabulary."""
        ev_kind, values, text = tovocab.light_event(kind, info, self.light.cfg["breath_per_min"])
        self.event(ev_kind, values, text, unix_s)

    async def epoch_task(self):
        while True:
            now_ms = compat.unix_time_ms()
            await self._sleep("epoch", EPOCH_MS - now_ms % EPOCH_MS)
            start_s = compat.unix_time() // vocab.EPOCH_S * vocab.EPOCH_S - vocab.EPOCH_S
            await self._storage((lambda s=start_s: self._close_epoch(s), False),
                                (self._write_steps, True), (self._flush_commit, True))
            t0 = compat.ticks_ms()
            gc.collect()
            gc_ms = compat.ticks_diff(compat.ticks_ms(), t0)
            if gc_ms > self.perf["gc_ms_max"]:
                self.perf["gc_ms_max"] = gc_ms

    def _flush_commit(self):
        if self.rec.flush_commit():
            self.store_health.ok()

    def _write_steps(self):
        # one flash block's worth per step: at most one sector erase (Recorder.flush_write)
        while self.rec.flush_write():
            yield 1  # the next piece (or the commit after it) may erase too

    def _run_job(self):
        """One step of the first queued job."""
        try:
            gen = self._job_gen
            if gen is None:
                gen = self._jobs[0][0]()
                if gen is None or not hasattr(gen, "send"):
                    self._jobs.pop(0)  # a plain function: done in one step
                    return
                self._job_gen = gen
            self._gen_flash = next(gen) == 1
        except StopIteration:
            self._job_gen = None
            self._jobs.pop(0)
        except Exception as e:  # never lose the device over one epoch
            self._job_gen = None
            self._jobs.pop(0)
            self.store_health.fault(e)

    async def _storage(self, *jobs):
        """Run the epoch's work (close, write, commit) one step at a time, each right after a
        FIFO read by the sampling task (docs/simulation.md, honest time: a sector erase blocks
        the whole interpreter for up to 400 ms), and wait for it: the queue never holds more
        than one epoch's work, so a CPU too slow for the night skips epochs (their samples are
        counted lost and flagged) rather than piling up work. Without FIFO reads (no working
        sensor) the steps run here."""
        self._jobs.extend(jobs)
        self._hold_ms = None
        while self._jobs:
            fifo = self._fifo_ms
            if fifo is None or compat.ticks_diff(compat.ticks_ms(), fifo) > _PPG_QUIET_MS:
                self._run_job()
                await self._sleep("epoch", 0)
            else:
                await self._sleep("epoch", 1000)

    def _close_epoch(self, start_s):
        """Close the epoch: a generator, run one step after each FIFO read (the breathing
        estimate alone is ~0.6-0.9 s of ESP32 time, more than the FIFO holds). A generator's
        frame lives on the heap for its whole run, in one piece: this one keeps few locals
        (the epoch's values wait in self._epv) and leaves the work to plain methods, whose
        frames are gone when they return; with ~20 locals it was 244 B, which a fragmented
        56-KiB heap could not find every epoch (docs/twin-and-image.md)."""
        contact = self._epoch_open()
        yield from self._night_steps(start_s + vocab.EPOCH_S, contact)
        self._epoch_score(start_s)
        yield
        resp = None
        if contact and not self._epv[0].flags:  # motion, clipping, lost samples: unknown
            resp = yield from self.resp.estimate_steps(self.pipe.time_ms(), self._epv[0].hr_bpm)
        if self._epoch_summary(start_s, resp):
            yield
            self._epoch_store(start_s, resp)
        v = self._epv
        v[0] = v[6] = None

    def _epoch_open(self):
        # the pipeline's epoch, on the board's clock; the clip's temperature -> contact
        ep = self.pipe.close_epoch()
        k = self._rate_k  # the pipeline counts time at the nominal rate: rescale what depends
        if k != 1.0:
            if ep.hr_bpm is not None:
                ep.hr_bpm /= k
            if ep.rmssd_ms is not None:
                ep.rmssd_ms *= k
            if ep.sdnn_ms is not None:
                ep.sdnn_ms *= k
        clip = self._clip_x16
        if clip == _CLIP_GAVE_UP or ep.flags & NO_CONTACT:
            clip = None  # the clip's temperature is the finger's only while the finger is in it
        self._clip_x16 = None  # the next epoch's conversion
        v = self._epv
        v[0] = ep
        v[1] = clip
        return ep.hr_bpm is not None and not (ep.flags & NO_CONTACT)

    def _epoch_score(self, start_s):
        v = self._epv
        self._track_sleep_onset(start_s, v[0].hr_bpm)
        # the epoch's end on the beat clock: an arousal scores the epoch holding its onset
        v[2] = self.arousal.close_epoch(
            self._pipe_ms((start_s + vocab.EPOCH_S) * 1000 - self._pipe_t0_ms))
        v[3] = self._nb  # the epoch's beats (the next epoch's arrive during the steps below)

    def _epoch_summary(self, start_s, resp):
        """Everything after the breathing estimate but the flash. -> True to store the epoch."""
        v = self._epv
        ep = v[0]
        self.light.resp_per_min = resp
        unix_now = start_s + vocab.EPOCH_S
        dawn = self.light.smart_dawn_epoch(
            unix_now if self.clock_valid() else None, self.cfg["utc_offset_s"], ep.hr_bpm,
            v[2], vocab.FLAG_MOTION if ep.flags & MOTION else 0)
        if dawn is not None:
            self.event(vocab.EV_SMART_DAWN, (dawn[1], vocab.SMART_DAWN_REASONS.index(dawn[0])),
                       dawn[0], unix_now)
        d = self.pipe.rebase()  # beat times stay small ints for any uptime
        if d:
            self.arousal.rebase(d)
            self.resp.rebase(d)
            self._rate_base_t -= d  # pipeline times moved by d: the board times do not
        if ep.hr_bpm is not None:
            self._last_hr = ep.hr_bpm
        if ep.rmssd_ms is not None:
            self._last_rmssd = ep.rmssd_ms
        v[4] = self._lux_sum / self._lux_n if self._lux_n else None
        self._lux_sum = 0.0
        self._lux_n = 0
        v[5] = (self._env_ms is not None
                and compat.ticks_diff(compat.ticks_ms(), self._env_ms) < 2 * EPOCH_MS)
        lamp_level = self._lamp_max
        v[6] = lamp_level
        self._lamp_max = [self.lamp.level(0), self.lamp.level(1)]
        v[7] = tovocab.epoch_flags(ep.flags, health.flags(self.subsystems), self.clock_valid(),
                                   self.light.session_active(),
                                   lamp_level[0] > 0 or lamp_level[1] > 0)
        if self.rec.night_id is None:
            self._nb = 0
            return False
        return True

    def _epoch_store(self, start_s, resp):
        v = self._epv
        ep = v[0]
        clip = v[1]
        env_fresh = v[5]
        self.rec.add_epoch(
            start_s, hr_bpm=ep.hr_bpm, rmssd_ms=ep.rmssd_ms, sdnn_ms=ep.sdnn_ms,
            pwa_mean=ep.pwa_mean, spo2_pct=ep.spo2_pct, sqi=ep.sqi / 100,
            arousal_score=v[2],
            temp_c=self.temp_c if env_fresh else None, rh_pct=self.rh_pct if env_fresh else None,
            pressure_hpa=self.pressure_hpa if env_fresh else None,
            gas_ohm=self.gas_ohm if env_fresh else None, lux=v[4],
            mel_edi_lx=self.light.last_room_mel_lx, lamp_level=v[6],
            flags=v[7], resp_per_min=resp,
            clip_temp_c=None if clip is None else clip / 16)
        self._store_beats(v[3])

    def _track_sleep_onset(self, start_s, hr_bpm):
        """Lights-out and the pre-sleep hyperarousal summary (core/onset.py) into the night."""
        if self.rec.night_id is None:
            return
        on = self.onset
        found = on.epoch(start_s, hr_bpm, self.room_lux, self.light.phase)
        if found & onset.LIGHTS_OUT:
            self.event(vocab.EV_LIGHTS_OUT, (), None, on.lights_out_s)
        if found & onset.SUMMARY:
            kind, values, text = tovocab.presleep_event(on.summary())
            self.event(kind, values, text, start_s)

    def _end_of_night(self):
        baseline = self.onset.end_night()
        try:
            bootfiles.save_json(bootfiles.BASELINE_FILE, baseline)
        except OSError as e:
            self.store_health.fault(e)

    def _store_beats(self, n):
        """Store the epoch's first n beats; those found since (the next epoch's) move up."""
        ibi = self._bibi
        pwa = self._bpwa
        t0 = self._bt0
        if n > 0:
            self.rec.add_beats(self.rec.start_unix_s + t0 // 1000, t0 % 1000, ibi, pwa, n)
        more = self._nb - n
        if more > 0 and n > 0:
            for i in range(n):  # beat n's time (intervals within an epoch are < 65.5 s)
                t0 += ibi[i]
            self._bt0 = t0
            for i in range(more):
                pwa[i] = pwa[n + i]
                if i < more - 1:
                    ibi[i] = ibi[n + i]
        self._nb = more if more > 0 else 0

    async def watchdog_task(self):
        self.board.start_watchdog(_WDT_TIMEOUT_MS)
        while True:
            self.uptime.seconds()  # folds the ticks into seconds before they can wrap
            now = compat.ticks_ms()
            late = None
            for name in self._due:
                if compat.ticks_diff(now, self._due[name]) > 0:
                    late = name
            if late is None:
                self.board.feed_watchdog()
            elif not self._late_reported:
                self._late_reported = True
                compat.log("[watchdog] task %s missed its check-in: not feeding" % late)
            self._wake["wdt"] = compat.ticks_add(now, 1000)
            await asyncio.sleep_ms(1000)

    async def usb_task(self):
        """The sync protocol on the USB console; logs go to a ring while it listens. The
        protocol's code and a session's buffers are loaded when a host's first byte arrives
        and dropped when the session ends (docs/twin-and-image.md, "Memory as on the ESP32")."""
        compat.console_quiet = True
        _kbd_intr(-1)  # binary-safe console: 0x03 is data (the protocol has its REPL escape)
        try:
            why = await self._usb_serve()
        finally:
            _kbd_intr(3)
            compat.console_quiet = False
        compat.log("[usb] sync server ended: %s" % why)
        if why == "maint":
            self.rec.flush()  # the night resumes after the maintenance session
        if why in ("repl", "maint"):
            raise _ToREPL(why)

    async def _usb_serve(self):
        """Wait for a host, serve its session, unload; again until the console ends ("closed"),
        or the host asks for the REPL or maintenance. -> why it ended."""
        first = bytearray(1)
        while True:
            await _readable(sys.stdin.buffer)
            if not sys.stdin.buffer.readinto(first):
                return "closed"
            try:
                why = await self._usb_session(first[0])
            except MemoryError:  # no room for the session now: this host's try fails, it retries
                why = "error"
                compat.log("[usb] no memory for a sync session")
            self._drop_sync()
            if why in ("repl", "closed", "maint"):
                return why

    async def _usb_session(self, first):
        from nsdev import sync
        from nsdev.syncdevice import SyncDevice

        reader, writer = sync.usb_streams(first)
        return await sync.serve(reader, writer, SyncDevice(self), "usb")

    def _drop_sync(self):
        """Unload the modules needed only at boot or by a sync session (_SYNC_MODULES; not
        while the Wi-Fi server holds them)."""
        if "nsdev.netserve" not in sys.modules:
            for pkg, name in _SYNC_MODULES:
                _unload(pkg, name)
            if sys.modules.pop("asyncio.stream", None) is not None:
                for name in _STREAM_NAMES:
                    _unload("asyncio", name)
        gc.collect()

    async def run(self):
        unix_s = compat.unix_time()
        cause = self.board.reset_cause()
        if not self.clock_valid():
            # No battery-backed RTC: after a power loss the clock restarts at 2000-01-01. Until
            # it is set, nights are recorded on this boot clock (docs/night-format.md, "Wall
            # clock unknown") and re-anchored when the host sets the clock. A night begun on
            # another clock (the wall clock, or a boot clock before this power-on) cannot go on.
            if cause == "power-on":
                self.rec.set_boot_clock_nights([])
            open_id = self.rec.open_night_id()
            if open_id is not None and open_id not in self.rec.boot_clock_nights():
                self.rec.close_unresumable(vocab.END_CLOCK_LOST)
        resumed = self.rec.recover(unix_s, _RESET_CODES.get(cause, vocab.RESET_UNKNOWN))
        compat.log("nightstand %s: boot (%s reset), clock %s, night %s" % (
            VERSION, cause, "set" if self.clock_valid() else "NOT set",
            "resumed" if resumed is not None else "none"))
        self.uptime = health.Uptime()
        self._update_night(unix_s, False)  # inside the scheduled window: record from boot
        self._drop_sync()  # recovery's scans, decoder and index writes, before the tasks' buffers
        tasks = [self.ppg_task(), self.env_task(), self.lux_task(), self.lamp_task(),
                 self.epoch_task(), self.watchdog_task(), self.usb_task()]
        if self.cfg["wifi"]:
            wifi = bootfiles.load_wifi(bootfiles.WIFI_FILE)
            if wifi:
                try:
                    self.board.wifi_connect(wifi[0], wifi[1])
                except Exception as e:  # the radio must not stop the recording
                    compat.log("[wifi] cannot start: %s" % health.describe(e))
            tasks.append(self.ntp_task())
            from nsdev import netserve  # only with Wi-Fi: its module costs RAM (~0.7 KiB)
            from nsdev.syncdevice import SyncDevice

            tasks.append(netserve.serve_tcp(SyncDevice(self), self.board.wifi_connected,
                                            self.cfg["tcp_port"], self.board.tcp_host()))
        self._boot_repairs()
        # A task's unhandled exception is logged (the ring while USB sync runs), never printed
        # as a traceback on the console that carries the sync protocol.
        asyncio.get_event_loop().set_exception_handler(_task_exception)
        await _gather(*tasks)

    def _boot_repairs(self):
        """Say what was wrong with the stored state (and fixed) as events of the night."""
        note = bootfiles.take_reset_note()
        if note:
            compat.log("[boot] last reset: " + note)
        for text in self.rec.repairs + bootfiles.repairs:
            self.event(vocab.EV_SENSOR_FAULT, (vocab.SENSOR_FLASH, _EINVAL),
                       text[:vocab.MAX_EVENT_TEXT])
        self.boot_repairs = self.rec.repairs + bootfiles.repairs
        self.rec.repairs = []
        bootfiles.repairs = []

    def set_clock(self, unix_s):
        """Set the RTC (host at sync, or NTP). -> new clock minus old clock (s)."""
        delta = unix_s - compat.unix_time()
        was_valid = self.clock_valid()
        self.board.set_clock(unix_s)
        if not was_valid:
            # The boot clock's nights move onto the wall clock, and so does what counts on it.
            self.rec.reanchor(delta)
            if self._pipe_t0_ms is not None:
                self._pipe_t0_ms += delta * 1000
            if self._last_contact_s is not None:
                self._last_contact_s += delta
        return delta

    async def ntp_task(self):
        """With Wi-Fi configured: set an unset clock by NTP (once a minute until it works)."""
        while not self.clock_valid():
            await self._sleep("ntp", 60000)
            unix_s = self.board.ntp_time()
            if unix_s is not None and unix_s >= _CLOCK_VALID_UNIX_S:
                self.event(vocab.EV_CLOCK_SET, (self.set_clock(unix_s),), "ntp")
        self._due.pop("ntp", None)
        self._wake.pop("ntp", None)

    def _set_schedule(self, config):
        self._bed_min = config.hhmm_to_min(self.cfg["bedtime"])
        self._wake_min = config.hhmm_to_min(self.cfg["wake"])

    def apply_config(self, cfg):
        from nsdev import config  # loaded by the sync session that calls this

        self.cfg = cfg
        self._set_schedule(config)
        self.light = light.LightController(light.config_from_device(cfg))
        self.pipe.set_spo2_calibration(cfg["spo2_a"], cfg["spo2_b"])
        self.lamp_heat.tau_s = max(1.0, cfg["temp_lamp_tau_min"] * 60.0)


def _unload(pkg, name):
    sys.modules.pop(pkg + "." + name, None)
    mod = sys.modules.get(pkg)
    if mod is not None and name in mod.__dict__:
        delattr(mod, name)


def _readable(stream):
    # Wait until the stream has bytes, as asyncio's Stream.readinto does it (MicroPython 1.28,
    # extmod/asyncio/stream.py), without loading that module for the byte that announces a host.
    yield asyncio.core._io_queue.queue_read(stream)


def _kbd_intr(char):
    import micropython

    if hasattr(micropython, "kbd_intr"):
        micropython.kbd_intr(char)


_EINVAL = 22  # errno of a state file whose content was invalid (EV_SENSOR_FAULT on SENSOR_FLASH)


def _task_exception(loop, context):
    compat.log("[task] %s" % health.describe(context.get("exception")
                                             or context.get("message", "?")))


class _ToREPL(Exception):
    """The host asked for the REPL over USB: leave the application."""


def main(board=None):
    if board is None:
        from nsdev.board import Board

        board = Board()
    try:
        gc.collect()  # the imports' garbage
        asyncio.run(App(board).run())
    except _ToREPL as e:
        board.lamp_off()
        if e.args and e.args[0] == "maint":
            compat.log("nightstand: the host asked for maintenance mode: resetting into it")
            board.reboot_maintenance()
        compat.log("nightstand stopped for the REPL; machine.reset() restarts it")
    except Exception as e:  # the last line of defence: save why, then reset
        compat.print_exception(e)
        board.reset("crash: " + health.describe(e))
