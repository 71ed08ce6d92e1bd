# Tests-only: serve nsdev.sync with a FakeDevice under MicroPython.
#   micropython mp_sync_server.py tcp PORT NIGHTS STATE   -> prints READY once listening
#   micropython mp_sync_server.py usb NIGHTS STATE        -> protocol on stdin/stdout
# A last argument "nomac" (benchmarks only) replaces the per-frame MAC by a no-op, to measure
# what the MAC costs; the host side must do the same (proto.FrameAuth = NullAuth).
# ruff: noqa: UP031
import asyncio
import sys

from mp_fakedevice import FakeDevice
from nsdev import netserve, sync
from nsdev.core import proto
from nullauth import NullAuth

if sys.argv[-1] == "nomac":
    sys.argv.pop()
    proto.FrameAuth = NullAuth


async def main_tcp(port, dev):
    srv = netserve.TCPServer(dev, lambda: True, port=port, host="127.0.0.1", poll_ms=50)
    asyncio.create_task(srv.run())
    while not netserve.stats["listening"]:
        await asyncio.sleep_ms(5)
    print("READY")
    while True:
        await asyncio.sleep_ms(1000)


async def main_usb(dev):
    why = await sync.serve_usb(dev)
    sys.stderr.write("END %s\n" % why)


if sys.argv[1] == "tcp":
    asyncio.run(main_tcp(int(sys.argv[2]), FakeDevice(sys.argv[3], sys.argv[4])))
else:
    asyncio.run(main_usb(FakeDevice(sys.argv[2], sys.argv[3])))
