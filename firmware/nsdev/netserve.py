# TCP listener for the sync protocol: serves while Wi-Fi is up, closes when it drops.
# Wi-Fi status comes in as a callable (only board.py imports `network`); recording never waits
# for any of this.
import asyncio

from micropython import const

from nsdev import compat, sync
from nsdev.core import proto

_POLL_MS = const(2000)
_MAX_SESSIONS = const(2)

stats = {"listening": False, "sessions": 0, "refused": 0, "listen_errors": 0}


class TCPServer:
    """serve_tcp's state; `run()` is the task body. `stop()` closes the listener."""

    def __init__(self, device, wifi_up, port=proto.TCP_PORT, host="0.0.0.0", poll_ms=_POLL_MS):
        self.device = device
        self.wifi_up = wifi_up
        self.port = port
        self.host = host
        self.poll_ms = poll_ms
        self.server = None
        self.active = 0
        self.running = True

    async def _client(self, reader, writer):
        if self.active >= _MAX_SESSIONS:
            stats["refused"] += 1
            await _close(writer)
            return
        self.active += 1
        stats["sessions"] += 1
        try:
            await sync.serve(reader, writer, self.device, "tcp")
        finally:
            self.active -= 1
            await _close(writer)

    async def _stop_server(self):
        if self.server is not None:
            self.server.close()
            try:
                await self.server.wait_closed()
            except Exception as e:  # closing a dead listener must not stop the task
                compat.print_exception(e)
            self.server = None
            stats["listening"] = False

    async def run(self):
        while self.running:
            try:
                up = bool(self.wifi_up())
            except Exception:  # a failing status probe counts as "down"
                up = False
            if up and self.server is None:
                try:
                    self.server = await asyncio.start_server(self._client, self.host, self.port)
                    stats["listening"] = True
                except OSError as e:
                    stats["listen_errors"] += 1
                    compat.print_exception(e)
            elif not up and self.server is not None:
                await self._stop_server()
            await asyncio.sleep_ms(self.poll_ms)
        await self._stop_server()

    def stop(self):
        self.running = False


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except OSError:
        pass


async def serve_tcp(device, wifi_up, port=proto.TCP_PORT, host="0.0.0.0", poll_ms=_POLL_MS):
    """Task body: listen on host:port whenever wifi_up() is true (checked every poll_ms)."""
    await TCPServer(device, wifi_up, port, host, poll_ms).run()
