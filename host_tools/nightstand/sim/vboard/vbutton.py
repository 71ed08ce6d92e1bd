# Virtual bedside button of the simulated board: active low; presses at scripted times fire the
# pin's IRQ handler (falling edge on press, rising on release) from the virtual clock.
import time

_FALLING = 2
_RISING = 1


class VirtualButton:
    def __init__(self, spec, sim_dir=None):
        self.name = spec.get("name", "button")
        self.gpio = spec.get("gpio")
        self.hold_us = int(spec.get("hold_ms", 200)) * 1000
        self._edges = []  # (time_us, level) in time order
        for s in sorted(spec.get("presses_s", ())):
            t = int(s * 1000000)
            self._edges.append((t, 0))
            self._edges.append((t + self.hold_us, 1))
        self._i = 0
        self._level = 1
        held_ms = int(spec.get("held_at_boot_ms", 0))
        if held_ms:  # pressed from power-on, released after held_ms
            self._level = 0
            self._edges.insert(0, (held_ms * 1000, 1))
        self._pin = None
        self._handler = None
        self._trigger = 0
        self.fired = 0
        time.add_listener(self._tick)

    def value(self):
        return self._level

    def set_irq(self, pin, handler, trigger):
        self._pin = pin
        self._handler = handler
        self._trigger = trigger

    def press_now(self):
        """Tests: press at the current virtual time."""
        now = time.now_us
        self._edges[self._i:self._i] = [(now, 0), (now + self.hold_us, 1)]
        self._tick(now)
        time.listen_now()  # the release is earlier than the next edge the clock knows of

    def _tick(self, now_us):
        # Every edge that the clock has passed happens, even if one jump skipped a whole press.
        while self._i < len(self._edges) and self._edges[self._i][0] <= now_us:
            level = self._edges[self._i][1]
            self._i += 1
            if level == self._level:
                continue
            self._level = level
            edge = _FALLING if level == 0 else _RISING
            if self._handler is not None and self._trigger & edge:
                self.fired += 1
                self._handler(self._pin)
        if self._i < len(self._edges):
            return self._edges[self._i][0]  # the next edge: nothing to do before it
        return time.NEVER

    def stats(self):
        return {"presses": len(self._edges) // 2, "irq_calls": self.fired}
