# Sync protocol (pure, shared by device and host): framing, CRC32, incremental parser, codes, HMAC.
# The specification is docs/sync-protocol.md; this module is its reference implementation.
#
# Frame (all integers little-endian):
#   0  2  magic 0xA5 0x5A
#   2  1  type        (command code, reply = command | 0x80, ERROR, NAK)
#   3  2  seq         (u16; a reply echoes the request's seq)
#   5  2  length      (u16 payload bytes, <= MAX_PAYLOAD)
#   7  n  payload
#   7+n 4 CRC32       (binascii.crc32, IEEE 802.3 polynomial, over bytes 2 .. 7+n-1)
# After a TCP session authenticates, every frame in both directions ends its payload with a
# u32 counter and a 16-byte tag (FrameAuth below; docs/sync-protocol.md section 5).
import binascii
import hashlib
import struct

from nsdev.compat import const

PROTOCOL_VERSION = 2  # 2: every frame after AUTH carries a counter and a MAC

MAGIC0 = 0xA5
MAGIC1 = 0x5A
HEADER_LEN = 7
CRC_LEN = 4
OVERHEAD = HEADER_LEN + CRC_LEN
MAX_PAYLOAD = 2048
MAX_FRAME = MAX_PAYLOAD + OVERHEAD

# Commands (host -> device). Replies carry type | REPLY.
CMD_HELLO = 0x01
CMD_AUTH_CHALLENGE = 0x02
CMD_AUTH = 0x03
CMD_PAIR = 0x04
CMD_STATUS = 0x05
CMD_LIST_NIGHTS = 0x06
CMD_READ_NIGHT = 0x07
CMD_NIGHT_CRC = 0x08
CMD_ACK_NIGHT = 0x09
CMD_SET_TIME = 0x0A
CMD_GET_CONFIG = 0x0B
CMD_SET_CONFIG = 0x0C
CMD_SET_WIFI = 0x0D
CMD_REPL = 0x0E
CMD_BYE = 0x0F
CMD_SET_CONFIG_PART = 0x10  # SET_CONFIG in parts that fit the ESP32's console input ring
REPLY = 0x80
ERROR = 0x7F  # payload: u8 error code, u8 command, UTF-8 text
NAK = 0x7E  # device received a damaged frame (CRC failed): resend now. Empty payload, seq 0.

COMMAND_NAMES = {
    CMD_HELLO: "hello",
    CMD_AUTH_CHALLENGE: "auth-challenge",
    CMD_AUTH: "auth",
    CMD_PAIR: "pair",
    CMD_STATUS: "status",
    CMD_LIST_NIGHTS: "list-nights",
    CMD_READ_NIGHT: "read-night",
    CMD_NIGHT_CRC: "night-crc",
    CMD_ACK_NIGHT: "ack-night",
    CMD_SET_TIME: "set-time",
    CMD_GET_CONFIG: "get-config",
    CMD_SET_CONFIG: "set-config",
    CMD_SET_WIFI: "set-wifi",
    CMD_REPL: "repl",
    CMD_BYE: "bye",
    CMD_SET_CONFIG_PART: "set-config-part",
}

# Commands that only a USB (physical access) session may use.
USB_ONLY = (CMD_PAIR, CMD_SET_WIFI, CMD_REPL)
# Commands an unauthenticated TCP session may use (everything else gets ERR_AUTH_REQUIRED).
PRE_AUTH = (CMD_AUTH_CHALLENGE, CMD_AUTH, CMD_BYE)

# Error codes (ERROR payload byte 0).
ERR_UNKNOWN_COMMAND = 1
ERR_BAD_REQUEST = 2
ERR_AUTH_REQUIRED = 3
ERR_AUTH_FAILED = 4
ERR_NOT_PAIRED = 5
ERR_USB_ONLY = 6
ERR_NO_SUCH_NIGHT = 7
ERR_RANGE = 8
ERR_CONFIG_INVALID = 9
ERR_BUSY = 10
ERR_MISMATCH = 11
ERR_INTERNAL = 12
ERR_TIME_INVALID = 13
ERR_WIFI_INVALID = 14
ERR_NO_ENTROPY = 15  # the device has no cryptographic random source: it will not pair or auth

ERROR_NAMES = {
    ERR_UNKNOWN_COMMAND: "unknown-command",
    ERR_BAD_REQUEST: "bad-request",
    ERR_AUTH_REQUIRED: "auth-required",
    ERR_AUTH_FAILED: "auth-failed",
    ERR_NOT_PAIRED: "not-paired",
    ERR_USB_ONLY: "usb-only",
    ERR_NO_SUCH_NIGHT: "no-such-night",
    ERR_RANGE: "range",
    ERR_CONFIG_INVALID: "config-invalid",
    ERR_BUSY: "busy",
    ERR_MISMATCH: "mismatch",
    ERR_INTERNAL: "internal",
    ERR_TIME_INVALID: "time-invalid",
    ERR_WIFI_INVALID: "wifi-invalid",
    ERR_NO_ENTROPY: "no-entropy",
}

# HELLO capability bits.
CAP_NIGHTS = 0x01
CAP_CONFIG = 0x02
CAP_WIFI = 0x04
CAP_PAIR = 0x08

# Night list flags.
NIGHT_ACKED = 0x01  # the host acknowledged it (it may be deleted when space runs low)
NIGHT_OPEN = 0x02  # still being recorded: size grows, do not download yet

TRANSPORT_USB = 0
TRANSPORT_TCP = 1

AUTH_NONE = 0  # no authentication needed on this session (USB)
AUTH_REQUIRED = 1  # TCP, not yet authenticated
AUTH_DONE = 2  # TCP, authenticated

NONCE_LEN = 16
SECRET_LEN = 32
MAC_LEN = 32
AUTH_LABEL_HOST = b"nightstand-auth-v1 host"
AUTH_LABEL_DEVICE = b"nightstand-auth-v1 device"
KEY_LABEL_H2D = b"nightstand-session-v2 host->device"
KEY_LABEL_D2H = b"nightstand-session-v2 device->host"
CTR_LEN = 4  # u32 frame counter, per direction, strictly increasing from 1
TAG_LEN = 16  # HMAC-SHA256 truncated to 128 bits (as HMAC-SHA-256-128, RFC 4868)
AUTH_TRAILER_LEN = CTR_LEN + TAG_LEN
MAX_AUTH_PAYLOAD = MAX_PAYLOAD - AUTH_TRAILER_LEN  # application bytes per authenticated frame

# The ESP32 port's console input is a 260-byte ring filled by the UART/USB interrupt
# (ports/esp32/mphalport.c, stdin_ringbuf_array[260], v1.28.0; one slot stays free), and bytes
# that arrive while it is full are lost. Requests are answered one at a time, so a request frame
# of at most MAX_REQUEST_FRAME bytes always fits. Only SET_CONFIG can be longer: it goes in
# parts of CONFIG_PART_DATA bytes (u16 offset, u16 total, data; room left for the MAC trailer
# so the same parts work on TCP).
STDIN_RING_BYTES = 260
MAX_REQUEST_FRAME = 256
CONFIG_PART_DATA = MAX_REQUEST_FRAME - OVERHEAD - AUTH_TRAILER_LEN - 4  # 221

NIGHT_ENTRY_LEN = 13  # u32 id, u32 size, u32 start_unix_s, u8 flags
READ_HEADER_LEN = 12  # u32 id, u32 offset, u32 total size; then the data
MAX_READ = MAX_PAYLOAD - READ_HEADER_LEN
LIST_PAGE = (MAX_AUTH_PAYLOAD - 4) // NIGHT_ENTRY_LEN  # one page fits either kind of frame

TCP_PORT = 7853
ESCAPE_BYTE = 0x03  # five Ctrl-C (0x03) bytes in a row between frames: leave protocol for REPL
ESCAPE_COUNT = 5

def crc32(data, crc=0):
    """CRC-32 (IEEE 802.3, as zlib/binascii) of data, continuing from crc."""
    return binascii.crc32(data, crc) & 0xFFFFFFFF


def encode_frame(ftype, seq, payload=b"", auth=None):
    """A complete frame as bytes (allocates: for host use and small device replies); with
    `auth` (a FrameAuth) the counter and tag are added."""
    n = len(payload)
    limit = MAX_PAYLOAD if auth is None else MAX_AUTH_PAYLOAD
    if n > limit:
        raise ValueError("payload too long: %d > %d bytes" % (n, limit))
    buf = bytearray(n + OVERHEAD + (0 if auth is None else AUTH_TRAILER_LEN))
    buf[HEADER_LEN:HEADER_LEN + n] = payload
    return bytes(memoryview(buf)[:finish_frame(buf, ftype, seq, n, auth)])


def finish_frame(buf, ftype, seq, n, auth=None):
    """Write header and CRC around a payload already at buf[7:7+n]; return the frame length.
    With `auth` (a FrameAuth) the next send counter and the tag go after the payload first.

    Lets the device read night data straight into its transmit buffer (no copy, no allocation
    beyond a memoryview).
    """
    if auth is not None:
        if n > MAX_AUTH_PAYLOAD:
            raise ValueError("payload too long")
        n = auth.seal(buf, ftype, seq, n)
    if n > MAX_PAYLOAD:
        raise ValueError("payload too long")
    buf[0] = MAGIC0
    buf[1] = MAGIC1
    buf[2] = ftype
    buf[3] = seq & 0xFF
    buf[4] = (seq >> 8) & 0xFF
    buf[5] = n & 0xFF
    buf[6] = n >> 8
    end = HEADER_LEN + n
    c = crc32(memoryview(buf)[2:end])
    buf[end] = c & 0xFF
    buf[end + 1] = (c >> 8) & 0xFF
    buf[end + 2] = (c >> 16) & 0xFF
    buf[end + 3] = (c >> 24) & 0xFF
    return end + CRC_LEN


class FrameParser:
    """Incremental frame parser with a fixed buffer; resynchronises after garbage or damage.

    A frame announcing more than max_payload bytes is treated as damage (the device uses a
    smaller limit for requests than the host does for replies).

    feed(data) copies as many bytes as fit and returns how many it took; next() returns
    (type, seq, payload memoryview) or None. The payload view is valid until the next call to
    feed() or next(). Damaged candidates are skipped one byte at a time, so a real frame that
    starts inside a damaged one is still found. Counters: crc_errors, dropped_bytes,
    escape_seen (ESCAPE_COUNT x ESCAPE_BYTE received between frames).
    """

    def __init__(self, capacity=MAX_FRAME + 512, max_payload=MAX_PAYLOAD):
        if capacity < max_payload + OVERHEAD or max_payload > MAX_PAYLOAD:
            raise ValueError("parser capacity below one frame")
        self.max_payload = max_payload
        self.buf = bytearray(capacity)
        self.mv = memoryview(self.buf)
        self.start = 0
        self.end = 0
        self.crc_errors = 0
        self.dropped_bytes = 0
        self.frames = 0
        self.escape_seen = False
        self._escape_run = 0
        self._look = 0

    def reset(self):
        self.start = self.end = 0
        self._escape_run = 0
        self._look = 0
        self.escape_seen = False

    def pending(self):
        """Bytes held that are not yet a frame."""
        return self.end - self.start

    def feed(self, data):
        cap = len(self.buf)
        if self.end == cap and self.start:
            self._compact()
        n = min(len(data), cap - self.end)
        if n:
            self.mv[self.end:self.end + n] = memoryview(data)[:n] if n < len(data) else data
            self.end += n
        return n

    def _compact(self):
        k = self.end - self.start
        if self.start:
            if k:
                self.mv[0:k] = self.mv[self.start:self.end]
            self._look = max(0, self._look - self.start)
            self.start = 0
            self.end = k

    def _drop(self, n):
        self.dropped_bytes += n
        buf = self.buf
        for i in range(self.start, self.start + n):
            if buf[i] == ESCAPE_BYTE:
                self._escape_run += 1
                if self._escape_run >= ESCAPE_COUNT:
                    self.escape_seen = True
            else:
                self._escape_run = 0
        self.start += n

    def _check_at(self, i):
        """1: a complete frame with a good CRC starts at buf[i]; 0: incomplete; -1: not one."""
        buf = self.buf
        if self.end - i < HEADER_LEN:
            return 0
        n = buf[i + 5] | (buf[i + 6] << 8)
        if n > self.max_payload:
            return -1
        end = i + HEADER_LEN + n
        if end + CRC_LEN > self.end:
            return 0
        want = buf[end] | (buf[end + 1] << 8) | (buf[end + 2] << 16) | (buf[end + 3] << 24)
        return 1 if crc32(self.mv[i + 2:end]) == want else -1

    def next(self):
        buf = self.buf
        while True:
            s = self.start
            avail = self.end - s
            if avail == 0:
                self.start = self.end = 0
                return None
            if buf[s] != MAGIC0:
                # Skip to the next possible magic byte.
                i = s + 1
                e = self.end
                while i < e and buf[i] != MAGIC0:
                    i += 1
                self._drop(i - s)
                continue
            if avail < 2:
                break
            if buf[s + 1] != MAGIC1:
                self._drop(1)
                continue
            if avail < HEADER_LEN:
                break
            n = buf[s + 5] | (buf[s + 6] << 8)
            if n > self.max_payload:
                self._drop(1)
                continue
            total = n + OVERHEAD
            if avail < total:
                # A damaged length can make a short frame look long. Frames never overlap, so
                # a complete valid frame starting inside this candidate proves it damaged.
                i = self._look if self._look > s else s + 1
                e = self.end - 1
                found = False
                while i < e:
                    if buf[i] == MAGIC0 and buf[i + 1] == MAGIC1:
                        v = self._check_at(i)
                        if v > 0:
                            found = True
                            break
                        if v == 0:
                            break  # incomplete too: look again when more bytes arrive
                    i += 1
                self._look = i
                if not found:
                    break
                self.crc_errors += 1
                self._drop(i - s)
                continue
            if self._check_at(s) < 0:
                self.crc_errors += 1
                self._drop(1)
                continue
            end = s + HEADER_LEN + n
            self.start = s + total
            self._escape_run = 0
            self.frames += 1
            return buf[s + 2], buf[s + 3] | (buf[s + 4] << 8), self.mv[s + HEADER_LEN:end]
        # Incomplete frame: make room for the rest of it.
        if self.start and self.start + self.max_payload + OVERHEAD > len(buf):
            self._compact()
        return None


# ---- payload helpers ---------------------------------------------------------------------------

def pack_str8(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > 255:
        raise ValueError("string too long (max 255 bytes)")
    return bytes((len(b),)) + b


def unpack_str8(data, pos):
    """(str, new position) from a u8-length-prefixed UTF-8 string at data[pos]."""
    if pos >= len(data):
        raise ValueError("truncated string")
    n = data[pos]
    end = pos + 1 + n
    if end > len(data):
        raise ValueError("truncated string")
    return str(bytes(data[pos + 1:end]), "utf-8"), end


def pack_error(code, command, text):
    t = text.encode() if isinstance(text, str) else bytes(text)
    return bytes((code & 0xFF, command & 0xFF)) + t[:MAX_PAYLOAD - 2]


def unpack_error(payload):
    """(code, command, text) of an ERROR payload."""
    if len(payload) < 2:
        return ERR_INTERNAL, 0, "malformed error reply"
    try:
        text = str(bytes(payload[2:]), "utf-8")
    except UnicodeError:
        text = "(undecodable text)"
    return payload[0], payload[1], text


def pack_hello_reply(device_id, firmware_version, caps, auth_state, transport):
    return (struct.pack("<HHIBB", PROTOCOL_VERSION, MAX_PAYLOAD, caps, auth_state, transport)
            + pack_str8(device_id) + pack_str8(firmware_version))


def unpack_hello_reply(p):
    """dict: protocol_version, max_payload, caps, auth_state, transport, device_id, firmware."""
    if len(p) < 10:
        raise ValueError("short hello reply")
    ver, max_payload, caps, auth_state, transport = struct.unpack_from("<HHIBB", p, 0)
    device_id, pos = unpack_str8(p, 10)
    firmware, pos = unpack_str8(p, pos)
    return {
        "protocol_version": ver, "max_payload": max_payload, "caps": caps,
        "auth_state": auth_state, "transport": transport, "device_id": device_id,
        "firmware_version": firmware,
    }


def pack_night_entry(buf, pos, night_id, size, start_unix_s, flags):
    struct.pack_into("<IIIB", buf, pos, night_id, size, start_unix_s, flags)


def unpack_night_list(p):
    """(total nights on the device, [(night_id, size, start_unix_s, flags), ...]) of one page."""
    if len(p) < 4:
        raise ValueError("short night list")
    total, count = struct.unpack_from("<HH", p, 0)
    if len(p) != 4 + count * NIGHT_ENTRY_LEN:
        raise ValueError("night list length mismatch")
    out = []
    for i in range(count):
        out.append(struct.unpack_from("<IIIB", p, 4 + i * NIGHT_ENTRY_LEN))
    return total, out


# ---- HMAC-SHA256 (RFC 2104; MicroPython has hashlib.sha256 but no hmac) -------------------------

_BLOCK = const(64)


def hmac_sha256(key, msg):
    """HMAC-SHA256 per RFC 2104: H((K ^ opad) || H((K ^ ipad) || msg)), 64-byte block."""
    key = bytes(key)
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def compare_digest(a, b):
    """Constant-time equality of two byte strings (time depends only on the lengths)."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0


def host_proof(secret, device_nonce, host_nonce):
    """What the host sends in AUTH: proves it holds the secret for this device's challenge."""
    return hmac_sha256(secret, AUTH_LABEL_HOST + bytes(device_nonce) + bytes(host_nonce))


def device_proof(secret, device_nonce, host_nonce):
    """What the device answers AUTH with: proves to the host it talks to the paired device."""
    return hmac_sha256(secret, AUTH_LABEL_DEVICE + bytes(host_nonce) + bytes(device_nonce))


def session_keys(secret, device_nonce, host_nonce):
    """(host->device key, device->host key) of one authenticated session: HMAC-SHA256 of the
    pairing secret over a direction label and both nonces, so each session and each direction
    has its own key (a frame from another session or the other direction never verifies)."""
    tail = bytes(device_nonce) + bytes(host_nonce)
    return (hmac_sha256(secret, KEY_LABEL_H2D + tail), hmac_sha256(secret, KEY_LABEL_D2H + tail))


class _Mac:
    """HMAC-SHA256 with the padded keys computed once (RFC 2104), tag truncated to TAG_LEN."""

    def __init__(self, key):
        key = bytes(key)
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key + bytes(_BLOCK - len(key))
        self.ipad = bytes(b ^ 0x36 for b in key)
        self.opad = bytes(b ^ 0x5C for b in key)

    def tag(self, head, body):
        inner = hashlib.sha256(self.ipad)
        inner.update(head)
        inner.update(body)
        outer = hashlib.sha256(self.opad)
        outer.update(inner.digest())
        return outer.digest()[:TAG_LEN]


class FrameAuth:
    """Per-frame authentication of one session, after AUTH (docs/sync-protocol.md 5.3).

    An authenticated frame's payload is  data || u32 counter || tag,  where
    tag = HMAC-SHA256(direction key, type || seq || length || data || counter)[:16] and length
    is the frame's full payload length (data + 20). Each direction counts its frames from 1; a
    receiver accepts only a counter above the last one it accepted (no replay, no reordering)
    and a tag made with the other side's sending key (no splicing across sessions or
    directions). The CRC still covers the whole frame (damage is told apart from forgery)."""

    def __init__(self, send_key, recv_key):
        self._send = _Mac(send_key)
        self._recv = _Mac(recv_key)
        self.send_ctr = 0
        self.recv_ctr = 0
        self._head = bytearray(5)

    def seal(self, buf, ftype, seq, n):
        """Append counter and tag to the data at buf[7:7+n]; -> the new payload length."""
        if self.send_ctr >= 0xFFFFFFFF:
            raise ValueError("session counter exhausted")
        self.send_ctr += 1
        c = self.send_ctr
        end = HEADER_LEN + n
        buf[end] = c & 0xFF
        buf[end + 1] = (c >> 8) & 0xFF
        buf[end + 2] = (c >> 16) & 0xFF
        buf[end + 3] = (c >> 24) & 0xFF
        total = n + AUTH_TRAILER_LEN
        h = self._header(ftype, seq, total)
        mv = memoryview(buf)
        buf[end + CTR_LEN:end + AUTH_TRAILER_LEN] = self._send.tag(h, mv[HEADER_LEN:end + CTR_LEN])
        return total

    def _header(self, ftype, seq, total):
        """The frame header the tag covers (type, seq, length), in a buffer kept for reuse."""
        h = self._head
        h[0] = ftype
        h[1] = seq & 0xFF
        h[2] = (seq >> 8) & 0xFF
        h[3] = total & 0xFF
        h[4] = total >> 8
        return h

    def open(self, ftype, seq, payload):
        """The data of a received authenticated frame (a memoryview into payload), or None if
        its tag is wrong or its counter is not above the last one accepted."""
        total = len(payload)
        if total < AUTH_TRAILER_LEN:
            return None
        end = total - TAG_LEN
        h = self._header(ftype, seq, total)
        mv = memoryview(payload)
        if not compare_digest(mv[end:], self._recv.tag(h, mv[:end])):
            return None
        c = payload[end - 4] | (payload[end - 3] << 8) | (payload[end - 2] << 16) \
            | (payload[end - 1] << 24)
        if c <= self.recv_ctr:
            return None
        self.recv_ctr = c
        return mv[:end - CTR_LEN]


# ---- maintenance mode (docs/board.md) ----------------------------------------------------------
# REBOOT_MAINT (USB only): the device replies, saves its night, and resets into maintenance mode:
# neither the application nor the watchdog starts, and the console is the MicroPython REPL
# (for mpremote / `nightstand deploy`). Empty request and reply payloads.
CMD_REBOOT_MAINT = 0x11
COMMAND_NAMES[CMD_REBOOT_MAINT] = "reboot-maint"
USB_ONLY = USB_ONLY + (CMD_REBOOT_MAINT,)
