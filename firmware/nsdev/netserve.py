# TCP listener for the sync protocol: serves while Wi-Fi is up, closes when it drops.
# Wi-Fi status comes in as a callable (only board.py imports `network`); recording never waits
# for any of this.
import asyncio

from nsdev import compat, sync
from nsdev.compat import const
from nsdev.core import proto

_POLL_MS = const(2000)
# Connections served at once. An unauthenticated one has sync.UNAUTH_DEADLINE_MS to
# authenticate and is evicted (oldest first) to make room for a new one when all are taken;
# only authenticated sessions (the owner's hosts) are never evicted. A new connection finding
# every slot authenticated gets one ERROR(busy) frame and is closed. lwIP on the ESP32 has 10
# sockets by default (CONFIG_LWIP_MAX_SOCKETS, ESP-IDF): 4 sessions + the listener leave room
# for the rest of the firmware.
MAX_CONNECTIONS = const(4)
_BUSY_LINGER_MS = const(300)
_LOGGED_ERRORS = const(3)  # listen failures logged (then only counted: a retry every poll)

stats = {"listening": False, "sessions": 0, "refused": 0, "evicted": 0, "listen_errors": 0,
         "errors": 0}


class TCPServer:
    """serve_tcp's state; `run()` is the task body. `stop()` closes the listener."""

    def __init__(self, device, wifi_up, port=proto.TCP_PORT, host="0.0.0.0", poll_ms=_POLL_MS):
        self.device = device
        self.wifi_up = wifi_up
        self.port = port
        self.host = host
        self.poll_ms = poll_ms
        self.server = None
        self.conns = []  # [session, task] in accept order
        self.running = True

    @property
    def active(self):
        return len(self.conns)

    async def _client(self, reader, writer):
        try:
            await self._serve_client(reader, writer)
        except Exception as e:  # e.g. MemoryError: a detached task's traceback would reach
            stats["errors"] += 1  # the console (the USB protocol stream); log it instead
            compat.log("[tcp] connection failed: %s" % _describe(e))
            await _close(writer)

    async def _serve_client(self, reader, writer):
        if len(self.conns) >= MAX_CONNECTIONS:
            victim = None
            for c in self.conns:
                if not c[0].authenticated():
                    victim = c
                    break
            if victim is None:
                stats["refused"] += 1
                await _busy(reader, writer)
                await _close(writer)
                return
            stats["evicted"] += 1
            self.conns.remove(victim)
            victim[1].cancel()  # its task closes its socket as it unwinds
            # Drop the references now: this task lives on, and holding the evicted session
            # would keep every session it evicted in turn on the heap (a chain under a flood).
            victim = c = None
        s = sync.session(self.device, "tcp", writer)
        me = [s, asyncio.current_task()]
        self.conns.append(me)
        stats["sessions"] += 1
        try:
            await sync.serve(reader, writer, self.device, "tcp", s)
        finally:
            if me in self.conns:
                self.conns.remove(me)
            await _close(writer)

    async def _stop_server(self):
        if self.server is not None:
            self.server.close()
            try:
                await self.server.wait_closed()
            except Exception as e:  # closing a dead listener must not stop the task
                compat.log("[tcp] closing the listener: %s" % _describe(e))
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
                    if stats["listen_errors"] <= _LOGGED_ERRORS:
                        compat.log("[tcp] cannot listen on port %d: %s" % (self.port,
                                                                          _describe(e)))
            elif not up and self.server is not None:
                await self._stop_server()
            await asyncio.sleep_ms(self.poll_ms)
        await self._stop_server()

    def stop(self):
        self.running = False


def _describe(e):
    """One line, never a traceback: the USB console may be carrying the sync protocol."""
    return ("%s: %s" % (type(e).__name__, e))[:80]


async def _busy(reader, writer):
    """Tell a refused client why, in the protocol (the host says "device busy"), then wait
    briefly for its first request: closing a socket with unread bytes resets it, and a reset
    can discard the busy frame before the host reads it."""
    try:
        writer.write(proto.encode_frame(proto.ERROR, 0, proto.pack_error(
            proto.ERR_BUSY, 0, "device busy: every session slot is in use")))
        await writer.drain()
        await sync._wait_for_ms(reader.read(64), _BUSY_LINGER_MS)
    except Exception:  # timeout, reset: the client is gone or silent either way
        pass


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except OSError:
        pass


async def serve_tcp(device, wifi_up, port=proto.TCP_PORT, host="0.0.0.0", poll_ms=_POLL_MS):
    """Task body: listen on host:port whenever wifi_up() is true (checked every poll_ms)."""
    await TCPServer(device, wifi_up, port, host, poll_ms).run()
