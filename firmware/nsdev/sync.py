# Device side of the sync protocol (docs/sync-protocol.md): one asyncio session per byte stream.
#
# serve(reader, writer, device, transport) answers frames until the stream ends, the host says
# BYE, or (USB only) the REPL escape arrives. `device` is provided by the app (duck-typed):
#
#   device.device_id              str, <= 64 bytes (e.g. "ns-a1b2c3")
#   device.firmware_version       str
#   device.status()               -> dict, JSON-serialisable; suggested keys: uptime_s,
#                                    flash_free_bytes, heap_free_bytes, faults, unix_time_s,
#                                    utc_offset_s, clock_valid, recording
#   device.list_nights()          -> list of dicts {night_id:int, size:int, start_unix_s:int,
#                                    acked:bool, open:bool[, closed:bool]} (nsdev.recorder format)
#   device.night_size(night_id)   -> committed bytes, -1 if there is no such night
#   device.read_night(night_id, offset, length, buf) -> bytes read into buf (0 at end);
#                                    OSError if the night does not exist
#   device.ack_night(night_id)    -> True, or False if refused (unknown, open, not closed)
#   device.get_config()           -> dict (JSON-serialisable)
#   device.set_config(changes)    -> None if applied, else a short error text (validated there)
#   device.set_time(unix_s, utc_offset_s)   UTC seconds since 1970 and local offset in seconds
#   device.get_secret()           -> bytes (proto.SECRET_LEN) or None when not paired. Never
#                                    logged or sent.
#   device.set_secret(secret)     persist the pairing secret (USB only)
#   device.set_wifi(ssid, password) -> None if stored, else a short error text (USB only)
#
# Nothing here blocks: the session awaits between chunks, buffers are fixed per session.
import asyncio
import json
import struct

from nsdev import compat
from nsdev.compat import const
from nsdev.core import proto

MAX_REQUEST = const(1024)  # largest request payload the device accepts (SET_CONFIG JSON)
_RX_CHUNK = const(256)
_TCP_IDLE_MS = const(30000)  # an authenticated TCP session with no bytes for this long is closed
# From accept to authenticated, at most this long (however the client trickles its bytes):
# an unauthenticated connection cannot hold a session slot. A LAN handshake takes a few round
# trips (milliseconds); 5 s leaves room for a slow Wi-Fi link and a host retry.
UNAUTH_DEADLINE_MS = const(5000)
_CLAIM_IDLE_MS = const(10000)  # a session idle this long loses its claim on the night store
_MAX_AUTH_FAILURES = const(3)
_AUTH_FAIL_DELAY_MS = const(100)
_CRC_CHUNK = const(1024)
_MIN_UNIX_S = const(1577836800)  # 2020-01-01: anything earlier is a host clock fault
_MAX_OFFSET_S = const(14 * 3600)

if hasattr(asyncio, "sleep_ms"):
    _sleep_ms = asyncio.sleep_ms
    _wait_for_ms = asyncio.wait_for_ms
    # MicroPython's asyncio imports these on first use and then adds them to its module dict,
    # which grows (a reallocation): done here, with the other imports at boot, while the heap
    # is still in one piece, not when the USB server starts on a fragmented one.
    _StreamReader = asyncio.StreamReader
    _StreamWriter = asyncio.StreamWriter
else:  # CPython asyncio (host-side tests)

    def _sleep_ms(ms):
        return asyncio.sleep(ms / 1000)

    def _wait_for_ms(aw, ms):
        return asyncio.wait_for(aw, ms / 1000)

# Who may use the night store right now: [session, last activity ticks_ms].
_claim = [None, 0]

stats = {"sessions": 0, "frames": 0, "crc_errors": 0, "errors": 0, "auth_failures": 0,
         "mac_failures": 0}


def _random_bytes(n):
    """n bytes from the platform's cryptographic source (the ESP32's hardware RNG behind
    os.urandom), or None where there is none: a guessable nonce would let a recorded
    authentication be replayed, so the device then refuses to pair or authenticate."""
    try:
        import os

        return os.urandom(n)
    except (ImportError, AttributeError, OSError, NotImplementedError):
        return None


def _take_claim(session):
    owner = _claim[0]
    now = compat.ticks_ms()
    if owner is None or owner is session or compat.ticks_diff(now, _claim[1]) > _CLAIM_IDLE_MS:
        _claim[0] = session
        _claim[1] = now
        return True
    return False


def _release_claim(session):
    if _claim[0] is session:
        _claim[0] = None


class _End(Exception):
    pass


class _Session:
    def __init__(self, device, transport, writer):
        self.device = device
        self.usb = transport == "usb"
        self.writer = writer
        self.rx = bytearray(_RX_CHUNK)
        req = MAX_REQUEST + proto.AUTH_TRAILER_LEN
        self.parser = proto.FrameParser(req + proto.OVERHEAD + _RX_CHUNK, req)
        self.tx = bytearray(proto.MAX_FRAME)
        self.fresh()

    def fresh(self):
        """A new session on the same buffers (USB: after BYE or an error the console stays
        ours; allocating ~3.6 KB again could fail on the board's fragmented heap)."""
        self.parser.reset()
        self.host_nonce = None
        self.auth = proto.AUTH_NONE if self.usb else proto.AUTH_REQUIRED
        self.fauth = None  # proto.FrameAuth once a TCP session has authenticated
        self.max_reply = proto.MAX_PAYLOAD  # application bytes per reply frame
        self.nonce = None
        self.started_ms = compat.ticks_ms()
        self.failures = 0
        self.crc_cache = None  # (night_id, size, crc32)
        self.cfg_buf = None  # SET_CONFIG_PART assembly: bytearray(MAX_REQUEST) while in use
        self.cfg_total = 0
        self.cfg_got = 0

    # ---- output ----------------------------------------------------------------------------

    async def _send(self, n):
        self.writer.write(memoryview(self.tx)[:n])
        await self.writer.drain()

    def authenticated(self):
        """True once a TCP session has authenticated (USB sessions never need to)."""
        return self.fauth is not None

    def _finish(self, ftype, seq, n):
        return proto.finish_frame(self.tx, ftype, seq, n, self.fauth)

    async def reply(self, ftype, seq, payload=b""):
        n = len(payload)
        self.tx[proto.HEADER_LEN:proto.HEADER_LEN + n] = payload
        await self._send(self._finish(ftype, seq, n))

    async def error(self, seq, code, cmd, text):
        stats["errors"] += 1
        await self.reply(proto.ERROR, seq, proto.pack_error(code, cmd, text))

    # ---- main loop ---------------------------------------------------------------------------

    async def run(self, reader):
        p = self.parser
        mv = memoryview(self.rx)
        while True:
            if self.usb:
                n = await _read(reader, self.rx)
            else:
                wait_ms = _TCP_IDLE_MS
                if self.fauth is None:
                    wait_ms = UNAUTH_DEADLINE_MS - compat.ticks_diff(compat.ticks_ms(),
                                                                     self.started_ms)
                    if wait_ms <= 0:
                        return "auth-timeout"
                try:
                    n = await _wait_for_ms(_read(reader, self.rx), wait_ms)
                except asyncio.TimeoutError:
                    return "idle" if self.fauth is not None else "auth-timeout"
            if not n:
                return "closed"
            crc_before = p.crc_errors
            pos = 0
            while pos < n:
                pos += p.feed(mv[pos:n])
                while True:
                    f = p.next()
                    if f is None:
                        break
                    stats["frames"] += 1
                    payload = f[2]
                    if self.fauth is not None:
                        payload = self.fauth.open(f[0], f[1], payload)
                        if payload is None:  # forged, replayed, reordered or spliced
                            stats["mac_failures"] += 1
                            return "mac"
                    end = await self.handle(f[0], f[1], payload)
                    if end:
                        return end
            if p.crc_errors != crc_before:
                stats["crc_errors"] += p.crc_errors - crc_before
                await self.reply(proto.NAK, 0)
            if self.usb and p.escape_seen:
                return "repl"

    async def handle(self, cmd, seq, payload):
        if self.auth == proto.AUTH_REQUIRED and cmd not in proto.PRE_AUTH:
            await self.error(seq, proto.ERR_AUTH_REQUIRED, cmd, "authenticate first")
            return None
        if cmd in proto.USB_ONLY and not self.usb:
            await self.error(seq, proto.ERR_USB_ONLY, cmd, "only over USB")
            return None
        if cmd not in proto.PRE_AUTH and not _take_claim(self):
            await self.error(seq, proto.ERR_BUSY, cmd, "another session is syncing")
            return None
        h = _HANDLERS.get(cmd)
        if h is None:
            await self.error(seq, proto.ERR_UNKNOWN_COMMAND, cmd, "unknown command")
            return None
        try:
            return await h(self, seq, payload)
        except _End:
            return "auth"
        except (ValueError, KeyError, IndexError, TypeError) as e:
            await self.error(seq, proto.ERR_BAD_REQUEST, cmd, "bad request: %s" % (e,))
        except OSError as e:
            if cmd == proto.CMD_READ_NIGHT or cmd == proto.CMD_NIGHT_CRC:
                await self.error(seq, proto.ERR_NO_SUCH_NIGHT, cmd, "cannot read night")
            else:
                await self.error(seq, proto.ERR_INTERNAL, cmd, "device error %s" % (e,))
        return None

    # ---- commands ------------------------------------------------------------------------------

    async def c_hello(self, seq, payload):
        d = self.device
        caps = proto.CAP_NIGHTS | proto.CAP_CONFIG
        if self.usb:
            caps |= proto.CAP_WIFI | proto.CAP_PAIR
        await self.reply(proto.CMD_HELLO | proto.REPLY, seq, proto.pack_hello_reply(
            d.device_id, d.firmware_version, caps, self.auth,
            proto.TRANSPORT_USB if self.usb else proto.TRANSPORT_TCP))

    async def c_challenge(self, seq, payload):
        if len(payload) != proto.NONCE_LEN:
            raise ValueError("nonce must be %d bytes" % proto.NONCE_LEN)
        if self.fauth is not None:
            raise ValueError("session already authenticated")
        nonce = _random_bytes(proto.NONCE_LEN)
        if nonce is None:
            await self.error(seq, proto.ERR_NO_ENTROPY, proto.CMD_AUTH_CHALLENGE,
                             "no secure random source on this device: cannot authenticate")
            return
        self.host_nonce = bytes(payload)
        self.nonce = nonce
        await self.reply(proto.CMD_AUTH_CHALLENGE | proto.REPLY, seq,
                         struct.pack("<H", proto.PROTOCOL_VERSION) + self.nonce)

    async def c_auth(self, seq, payload):
        secret = self.device.get_secret()
        nonce = self.nonce
        self.nonce = None  # one attempt per challenge
        if not secret:
            await self.error(seq, proto.ERR_NOT_PAIRED, proto.CMD_AUTH, "device is not paired")
            return None
        ok = (nonce is not None and len(payload) == proto.MAC_LEN
              and proto.compare_digest(payload, proto.host_proof(secret, nonce, self.host_nonce)))
        if not ok:
            self.failures += 1
            stats["auth_failures"] += 1
            await _sleep_ms(_AUTH_FAIL_DELAY_MS)
            await self.error(seq, proto.ERR_AUTH_FAILED, proto.CMD_AUTH, "authentication failed")
            if self.failures >= _MAX_AUTH_FAILURES:
                raise _End()
            return None
        if self.auth == proto.AUTH_REQUIRED:
            self.auth = proto.AUTH_DONE
        await self.reply(proto.CMD_AUTH | proto.REPLY, seq,
                         proto.device_proof(secret, nonce, self.host_nonce))
        if not self.usb:  # from here on every frame, both ways, carries a counter and a MAC
            h2d, d2h = proto.session_keys(secret, nonce, self.host_nonce)
            self.fauth = proto.FrameAuth(d2h, h2d)
            self.max_reply = proto.MAX_AUTH_PAYLOAD

    async def c_pair(self, seq, payload):
        if len(payload) != proto.SECRET_LEN:
            raise ValueError("secret must be %d bytes" % proto.SECRET_LEN)
        if _random_bytes(1) is None:  # a key is useless if the device's nonces are guessable
            await self.error(seq, proto.ERR_NO_ENTROPY, proto.CMD_PAIR,
                             "no secure random source on this device: pairing refused")
            return
        self.device.set_secret(bytes(payload))
        await self.reply(proto.CMD_PAIR | proto.REPLY, seq)

    async def c_status(self, seq, payload):
        st = self.device.status()
        st["protocol_version"] = proto.PROTOCOL_VERSION
        log = st.get("log")
        if isinstance(log, list):
            # The log ring can outgrow one frame (long fault lines): oldest lines go first.
            log = list(log)
            st["log"] = log
            while log and len(json.dumps(st)) > self.max_reply:
                log.pop(0)
        await self.json_reply(proto.CMD_STATUS, seq, st)

    async def json_reply(self, cmd, seq, obj):
        data = json.dumps(obj).encode()
        if len(data) > self.max_reply:
            await self.error(seq, proto.ERR_INTERNAL, cmd, "reply too large")
            return
        await self.reply(cmd | proto.REPLY, seq, data)

    async def c_list(self, seq, payload):
        first = struct.unpack_from("<H", payload, 0)[0] if len(payload) >= 2 else 0
        nights = self.device.list_nights()
        total = len(nights)
        page = nights[first:first + proto.LIST_PAGE]  # LIST_PAGE fits an authenticated frame
        tx = self.tx
        base = proto.HEADER_LEN
        struct.pack_into("<HH", tx, base, total, len(page))
        pos = base + 4
        for row in page:
            flags = proto.NIGHT_ACKED if row.get("acked") else 0
            if row.get("open") or not row.get("closed", True):
                flags |= proto.NIGHT_OPEN
            proto.pack_night_entry(tx, pos, row["night_id"], max(0, row["size"]),
                                   row.get("start_unix_s") or 0, flags)
            pos += proto.NIGHT_ENTRY_LEN
        await self._send(self._finish(proto.CMD_LIST_NIGHTS | proto.REPLY, seq, pos - base))

    async def c_read(self, seq, payload):
        night_id, offset, length = struct.unpack_from("<IIH", payload, 0)
        size = self.device.night_size(night_id)
        if size < 0:
            await self.error(seq, proto.ERR_NO_SUCH_NIGHT, proto.CMD_READ_NIGHT, "no such night")
            return
        if offset > size:
            await self.error(seq, proto.ERR_RANGE, proto.CMD_READ_NIGHT, "offset past end")
            return
        length = min(length, self.max_reply - proto.READ_HEADER_LEN, size - offset)
        tx = self.tx
        base = proto.HEADER_LEN + proto.READ_HEADER_LEN
        got = 0
        if length:
            dst = memoryview(tx)[base:base + length]
            got = self.device.read_night(night_id, offset, length, dst)
        struct.pack_into("<III", tx, proto.HEADER_LEN, night_id, offset, size)
        await self._send(self._finish(proto.CMD_READ_NIGHT | proto.REPLY, seq,
                                      proto.READ_HEADER_LEN + got))

    async def night_crc(self, night_id):
        """(size, crc32) of a whole night, computed in chunks with a yield between them."""
        size = self.device.night_size(night_id)
        if size < 0:
            return -1, 0
        c = self.crc_cache
        if c is not None and c[0] == night_id and c[1] == size:
            return size, c[2]
        scratch = memoryview(self.tx)[proto.HEADER_LEN:proto.HEADER_LEN + _CRC_CHUNK]
        crc = 0
        offset = 0
        while offset < size:
            got = self.device.read_night(night_id, offset, min(_CRC_CHUNK, size - offset), scratch)
            if not got:
                break
            crc = proto.crc32(scratch[:got], crc)
            offset += got
            await _sleep_ms(0)
        self.crc_cache = (night_id, size, crc)
        return size, crc

    async def c_night_crc(self, seq, payload):
        night_id = struct.unpack_from("<I", payload, 0)[0]
        size, crc = await self.night_crc(night_id)
        if size < 0:
            await self.error(seq, proto.ERR_NO_SUCH_NIGHT, proto.CMD_NIGHT_CRC, "no such night")
            return
        await self.reply(proto.CMD_NIGHT_CRC | proto.REPLY, seq,
                         struct.pack("<III", night_id, size, crc))

    async def c_ack(self, seq, payload):
        night_id, size, crc = struct.unpack_from("<III", payload, 0)
        have_size, have_crc = await self.night_crc(night_id)
        if have_size < 0:
            await self.error(seq, proto.ERR_NO_SUCH_NIGHT, proto.CMD_ACK_NIGHT, "no such night")
            return
        if have_size != size or have_crc != crc:
            await self.error(seq, proto.ERR_MISMATCH, proto.CMD_ACK_NIGHT,
                             "night differs from the host's copy")
            return
        if not self.device.ack_night(night_id):
            await self.error(seq, proto.ERR_MISMATCH, proto.CMD_ACK_NIGHT,
                             "night cannot be acknowledged yet (still recording)")
            return
        await self.reply(proto.CMD_ACK_NIGHT | proto.REPLY, seq)

    async def c_set_time(self, seq, payload):
        unix_s, offset_s = struct.unpack_from("<Ii", payload, 0)
        if unix_s < _MIN_UNIX_S or offset_s < -_MAX_OFFSET_S or offset_s > _MAX_OFFSET_S \
                or offset_s % 60:
            await self.error(seq, proto.ERR_TIME_INVALID, proto.CMD_SET_TIME,
                             "time before 2020 or UTC offset not whole minutes within 14 h")
            return
        self.device.set_time(unix_s, offset_s)
        await self.reply(proto.CMD_SET_TIME | proto.REPLY, seq)

    async def c_get_config(self, seq, payload):
        await self.json_reply(proto.CMD_GET_CONFIG, seq, self.device.get_config())

    async def c_set_config(self, seq, payload, cmd=proto.CMD_SET_CONFIG):
        try:
            changes = json.loads(bytes(payload))
        except ValueError:
            changes = None
        if not isinstance(changes, dict):
            await self.error(seq, proto.ERR_BAD_REQUEST, cmd, "config must be a JSON object")
            return
        err = self.device.set_config(changes)
        if err:
            await self.error(seq, proto.ERR_CONFIG_INVALID, cmd, str(err)[:200])
            return
        await self.reply(cmd | proto.REPLY, seq)

    async def c_set_config_part(self, seq, payload):
        """One part of a SET_CONFIG: u16 offset, u16 total, data. Parts come in order; a part
        sent again (its reply was lost) is taken again; the last one applies the whole."""
        offset, total = struct.unpack_from("<HH", payload, 0)
        data = payload[4:]
        end = offset + len(data)
        if total > MAX_REQUEST or end > total or (offset and (
                self.cfg_buf is None or total != self.cfg_total or offset > self.cfg_got)):
            self.cfg_buf = None
            await self.error(seq, proto.ERR_RANGE, proto.CMD_SET_CONFIG_PART,
                             "config part out of order: send it again from offset 0")
            return
        if self.cfg_buf is None:
            self.cfg_buf = bytearray(MAX_REQUEST)
        self.cfg_total = total
        self.cfg_buf[offset:end] = data
        self.cfg_got = end
        if end < total:
            await self.reply(proto.CMD_SET_CONFIG_PART | proto.REPLY, seq)
            return
        whole = bytes(memoryview(self.cfg_buf)[:total])
        self.cfg_buf = None
        await self.c_set_config(seq, whole, proto.CMD_SET_CONFIG_PART)

    async def c_set_wifi(self, seq, payload):
        ssid, pos = proto.unpack_str8(payload, 0)
        password, pos = proto.unpack_str8(payload, pos)
        err = None
        if not 1 <= len(ssid.encode()) <= 32:
            err = "SSID must be 1-32 bytes"
        elif password and not 8 <= len(password.encode()) <= 63:
            err = "password must be 8-63 characters (or empty for an open network)"
        else:
            err = self.device.set_wifi(ssid, password)
        if err:
            await self.error(seq, proto.ERR_WIFI_INVALID, proto.CMD_SET_WIFI, str(err)[:200])
            return
        await self.reply(proto.CMD_SET_WIFI | proto.REPLY, seq)

    async def c_repl(self, seq, payload):
        await self.reply(proto.CMD_REPL | proto.REPLY, seq)
        return "repl"

    async def c_bye(self, seq, payload):
        await self.reply(proto.CMD_BYE | proto.REPLY, seq)
        return "bye"

    async def c_reboot_maint(self, seq, payload):
        await self.reply(proto.CMD_REBOOT_MAINT | proto.REPLY, seq)
        return "maint"


_HANDLERS = {
    proto.CMD_HELLO: _Session.c_hello,
    proto.CMD_AUTH_CHALLENGE: _Session.c_challenge,
    proto.CMD_AUTH: _Session.c_auth,
    proto.CMD_PAIR: _Session.c_pair,
    proto.CMD_STATUS: _Session.c_status,
    proto.CMD_LIST_NIGHTS: _Session.c_list,
    proto.CMD_READ_NIGHT: _Session.c_read,
    proto.CMD_NIGHT_CRC: _Session.c_night_crc,
    proto.CMD_ACK_NIGHT: _Session.c_ack,
    proto.CMD_SET_TIME: _Session.c_set_time,
    proto.CMD_GET_CONFIG: _Session.c_get_config,
    proto.CMD_SET_CONFIG: _Session.c_set_config,
    proto.CMD_SET_CONFIG_PART: _Session.c_set_config_part,
    proto.CMD_SET_WIFI: _Session.c_set_wifi,
    proto.CMD_REPL: _Session.c_repl,
    proto.CMD_BYE: _Session.c_bye,
    proto.CMD_REBOOT_MAINT: _Session.c_reboot_maint,
}


async def _read(reader, buf):
    if hasattr(reader, "readinto"):
        return await reader.readinto(buf)
    data = await reader.read(len(buf))  # CPython asyncio streams
    buf[:len(data)] = data
    return len(data)


def session(device, transport, writer):
    """A session object for serve() (netserve keeps it to see whether it authenticated)."""
    return _Session(device, transport, writer)


def usb_session(device):
    """A USB session's buffers (~3.6 KB), allocated now, for serve_usb(): the app makes it
    first thing at boot, before the rest of boot leaves the heap in pieces."""
    return _Session(device, "usb", None)


async def serve(reader, writer, device, transport="usb", s=None):
    """Serve one session on an asyncio stream pair; transport "usb" (trusted: physical access)
    or "tcp" (HMAC challenge first). -> why it ended: "closed" (stream ended), "bye", "idle"
    (authenticated TCP silent 30 s), "auth-timeout" (TCP not authenticated within
    UNAUTH_DEADLINE_MS of the start), "auth" (3 failed authentications), "mac" (a frame failed
    its MAC or counter check after authentication), "repl" (USB escape), "error"."""
    if s is None:
        s = _Session(device, transport, writer)
    stats["sessions"] += 1
    try:
        return await s.run(reader)
    except OSError:
        return "closed"  # connection reset / broken pipe
    except Exception as e:  # never let a session take the app down; count and log it
        stats["errors"] += 1
        # One line to the log ring, never a traceback: on USB the console is the protocol
        # stream, and the Wi-Fi side shares that console.
        compat.log("[sync] %s session failed: %s" % (transport, ("%s: %s" % (
            type(e).__name__, e))[:80]))
        return "error"
    finally:
        _release_claim(s)


# ---- USB console (board-specific bits kept small; the app/board calls them) --------------------

class ConsoleReader:
    """Async reads of whatever the console has ready. MicroPython's stdin readinto() blocks
    until the buffer is full, so: wait (asynchronously) for one byte, then take more only while
    poll says more is ready."""

    def __init__(self, stream, first=None):
        import select

        self.s = stream
        self.first = first  # a byte already taken from the stream (the app's wait for a host)
        self.areader = _StreamReader(stream)
        self.poll = select.poll()
        self.poll.register(stream, select.POLLIN)

    async def readinto(self, buf):
        mv = memoryview(buf)
        if self.first is not None:
            buf[0] = self.first
            self.first = None
            n = 1
        else:
            n = await self.areader.readinto(mv[:1])
        if not n:
            return 0
        while n < len(buf):
            ready = False
            for _ in self.poll.ipoll(0):
                ready = True
            if not ready:
                break
            got = self.s.readinto(mv[n:n + 1])
            if not got:
                break
            n += got
        return n


def usb_streams(first=None):
    """(reader, writer) on the USB console: sys.stdin.buffer / sys.stdout.buffer. first: a byte
    already read from it, delivered first."""
    import sys

    return ConsoleReader(sys.stdin.buffer, first), _StreamWriter(sys.stdout.buffer, {})


def usb_protocol_begin():
    """Binary-safe console: 0x03 bytes are data, not KeyboardInterrupt."""
    import micropython

    if hasattr(micropython, "kbd_intr"):
        micropython.kbd_intr(-1)


def usb_protocol_end():
    """Ctrl-C interrupts again (the REPL escape ends here)."""
    import micropython

    if hasattr(micropython, "kbd_intr"):
        micropython.kbd_intr(3)


async def serve_usb(device, streams=None, s=None):
    """Serve the protocol on the USB console until the REPL escape (REPL command, or five 0x03
    bytes between frames) or end of input. Returns the reason ("repl", "closed", ...). While it
    runs nothing else may print to stdout (the host skips such text as garbage, but it costs a
    retry). After "repl" Ctrl-C works again: the app can stop and drop to the REPL.
    s: a usb_session() to serve on (else one is made here)."""
    reader, writer = streams or usb_streams()
    if s is None:
        s = usb_session(device)
    s.writer = writer
    usb_protocol_begin()
    try:
        while True:
            why = await serve(reader, writer, device, "usb", s)
            if why in ("repl", "closed", "maint"):
                return why
            # "bye"/"error": the console stays ours; start a fresh session.
            s.fresh()
    finally:
        usb_protocol_end()
