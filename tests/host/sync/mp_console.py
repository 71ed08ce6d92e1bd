# Tests-only (MicroPython): the sync protocol on the console (stdin/stdout) while the Wi-Fi side
# fails: a TCP listener on a port already taken, and a TCP session whose device raises.
#   micropython mp_console.py NIGHTS STATE TCP_PORT [ring]
# stderr: "READY" once both TCP servers ran, "END <why>" and the log ring at the end.
# ring: the console delivers at most what the ESP32's 260-byte stdin ring holds per burst.
# ruff: noqa: UP031
import asyncio
import socket
import sys

from mp_fakedevice import FakeDevice
from nsdev import compat, netserve, sync

RING_BYTES = 259  # ports/esp32/mphalport.c (v1.28.0): stdin_ringbuf_array[260], one slot spare


class Broken(FakeDevice):
    def status(self):
        raise RuntimeError("sensor table corrupted")  # an unexpected error inside a session


class RingReader:
    """Console reads as through the ESP32's stdin ring: of each burst the host writes, the
    bytes beyond what the ring holds before the firmware drains it are lost (worst case: the
    firmware drains only after the burst; the UART ISR drops what does not fit)."""

    def __init__(self, inner):
        self.inner = inner
        self.big = bytearray(4096)
        self.dropped = 0

    async def readinto(self, buf):
        n = await self.inner.readinto(self.big)
        keep = min(n, RING_BYTES, len(buf))
        self.dropped += n - keep
        buf[:keep] = self.big[:keep]
        return keep


async def main(nights, state, port, ring):
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(socket.getaddrinfo("127.0.0.1", port + 1)[0][-1])
    blocker.listen(1)
    compat.console_quiet = True  # as the app's usb_task: logs go to the ring
    bad = netserve.TCPServer(Broken(nights, state), lambda: True, port=port + 1,
                             host="127.0.0.1", poll_ms=50)
    good = netserve.TCPServer(Broken(nights, state), lambda: True, port=port, host="127.0.0.1",
                              poll_ms=50)
    asyncio.create_task(bad.run())
    asyncio.create_task(good.run())
    while not (netserve.stats["listening"] and netserve.stats["listen_errors"]):
        await asyncio.sleep_ms(5)
    sys.stderr.write("READY\n")
    reader, writer = sync.usb_streams()
    if ring:
        reader = RingReader(reader)
    why = await sync.serve_usb(FakeDevice(nights, state), (reader, writer))
    sys.stderr.write("END %s dropped %d\n" % (why, getattr(reader, "dropped", 0)))
    for line in compat.log_ring:
        sys.stderr.write("LOG %s\n" % line)


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), "ring" in sys.argv[4:]))
