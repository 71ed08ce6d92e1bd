# Virtual idle wait of the simulated board: replaces MicroPython's `select` so that asyncio's
# "sleep until the next timer" advances the virtual clock instead of waiting in real time.
# Real streams (stdin, sockets, a pty) are still polled for real, without blocking.
import time

import uselect as _real

POLLIN = _real.POLLIN
POLLOUT = _real.POLLOUT
POLLERR = _real.POLLERR
POLLHUP = _real.POLLHUP
POLLPRI = getattr(_real, "POLLPRI", 2)

# While real streams are registered, how far (virtual ms) the clock may run ahead per idle
# wait, and how long (real ms) to block for host I/O. Set by the simulator's I/O mode.
io_slice_ms = 50
io_block_ms = 1
idle_hook = None  # called before the clock jumps over an idle wait (vgc.idle under honest time)


class poll:
    def __init__(self):
        self._p = _real.poll()
        self._n = 0

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        self._p.register(obj, eventmask)
        self._n += 1

    def modify(self, obj, eventmask):
        self._p.modify(obj, eventmask)

    def unregister(self, obj):
        self._p.unregister(obj)
        self._n -= 1

    def poll(self, timeout=-1):
        return list(self.ipoll(timeout))

    def ipoll(self, timeout=-1, flags=0):
        if self._n:
            ready = self._p.poll(0)
            if ready:
                return ready
            if timeout < 0 or timeout > io_slice_ms:
                timeout = io_slice_ms
            ready = self._p.poll(io_block_ms)
            if ready:
                return ready
        elif timeout < 0:
            # Nothing could ever wake the board: jump to the end of the scenario.
            timeout = 1 << 40
        if idle_hook is not None and timeout > 0:
            time.settle()
            idle_hook()
        time.advance_us(timeout * 1000)
        return ()


def select(rlist, wlist, xlist, timeout=None):
    raise OSError("select.select is not used by nightstand firmware; use select.poll")
