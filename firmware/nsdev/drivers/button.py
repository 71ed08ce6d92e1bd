# Bedside push button (active low, to GND with pull-up): debounced press flag set from the pin IRQ,
# polled by a task (take()) or awaited (wait(), asyncio.ThreadSafeFlag when the port has it).
#
# Use:
#     button = Button(machine.Pin(gpio, machine.Pin.IN, machine.Pin.PULL_UP))
#     if button.take(): ...                     # polled: True once per press
#     await button.wait(); button.take()        # or awaited
from nsdev.compat import ticks_diff, ticks_ms


class Button:
    """The IRQ handler only records the press; nothing else runs in interrupt context."""

    def __init__(self, pin, debounce_ms=50):
        self._pin = pin
        self.debounce_ms = debounce_ms
        self._pending = False
        self._last_ms = ticks_ms()
        self.presses = 0
        # asyncio.ThreadSafeFlag, made by the first wait(): a polled button never loads
        # asyncio's event module (~0.5 KiB of the ESP32's heap, docs/twin-and-image.md)
        self._tsf = None
        pin.irq(handler=self._irq, trigger=pin.IRQ_FALLING)

    def _irq(self, pin):
        now = ticks_ms()
        if ticks_diff(now, self._last_ms) < self.debounce_ms:
            return  # contact bounce (or the start-up window): not a new press
        self._last_ms = now
        self._pending = True
        self.presses += 1
        tsf = self._tsf
        if tsf is not None:
            tsf.set()

    def take(self):
        """True once per debounced press since the last call."""
        if self._pending:
            self._pending = False
            return True
        return False

    def pending(self):
        """True if a press is waiting for take() (does not consume it)."""
        return self._pending

    def is_down(self):
        return self._pin.value() == 0

    async def wait(self):
        """Wait for the next press (needs asyncio.ThreadSafeFlag); then take() returns True."""
        if self._tsf is None:
            try:
                from asyncio import ThreadSafeFlag
            except ImportError:  # CPython, or a build without it: the polled flag still works
                raise OSError(
                    "asyncio.ThreadSafeFlag not available: poll take() instead") from None
            self._tsf = ThreadSafeFlag()
            if self._pending:  # a press waiting for take() ends the first wait at once
                self._tsf.set()
        await self._tsf.wait()

    def deinit(self):
        self._pin.irq(handler=None)
