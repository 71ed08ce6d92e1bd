# Night file format, layer 1: integer, text and bit coding, field codes, and record framing
# (length + CRC32) shared by the encoders (nfencode) and the decoder (nfdecode). Pure, no I/O.
# Specification: docs/night-format.md. Vocabulary: nsdev.core.vocab.
import binascii
import math

from nsdev.core import vocab

_MAX_PAYLOAD = vocab.MAX_PAYLOAD
_RICE_ESCAPE = 15  # unary prefix length that announces a raw value
_RICE_RAW_BITS = 20
_EXPG_MAX_ZEROS = 40  # longer zero runs are damage, not data
_LN2 = 0.6931471805599453
_EPOCH_S = vocab.EPOCH_S
MAX_BEATS = 1000  # per beat block

# Frame check results (negative): why the bytes at a position are not a record.
BAD_TRUNCATED = -1
BAD_TYPE = -2
BAD_LENGTH = -3
BAD_CRC = -4
REASONS = {
    BAD_TRUNCATED: "truncated",
    BAD_TYPE: "bad type",
    BAD_LENGTH: "bad length",
    BAD_CRC: "crc mismatch",
}


# ---- integer coding -------------------------------------------------------------------------

def zigzag(v):
    return v * 2 if v >= 0 else -v * 2 - 1


def unzigzag(z):
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


def put_uvarint(buf, pos, v):
    """LEB128: 7 bits per byte, least significant group first, bit 7 = more bytes follow."""
    if v < 0:
        raise ValueError("uvarint < 0")
    while v > 0x7F:
        buf[pos] = (v & 0x7F) | 0x80
        v >>= 7
        pos += 1
    buf[pos] = v
    return pos + 1


def put_svarint(buf, pos, v):
    return put_uvarint(buf, pos, zigzag(v))


def get_uvarint(data, pos, end):
    """-> (value, next position); ValueError if it runs past `end` or is longer than 10 bytes."""
    v = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("bad varint")
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, pos
        shift += 7


def put_text(buf, pos, text, limit):
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if len(raw) > limit:
        raw = raw[:limit]
    pos = put_uvarint(buf, pos, len(raw))
    end = pos + len(raw)
    if end > len(buf):
        raise IndexError("full")
    buf[pos:end] = raw
    return end


def get_text(data, pos, end):
    n, pos = get_uvarint(data, pos, end)
    if pos + n > end:
        raise ValueError("text past end")
    return bytes(data[pos:pos + n]).decode("utf-8", "replace"), pos + n


# ---- bit stream (bit-packed payloads) ---------------------------------------------------------

class BitWriter:
    # Bits are packed most significant bit first. `used` > 0 continues a partly written byte.
    def __init__(self, buf, pos, used=0):
        self.buf = buf
        self.pos = pos
        self.nbits = used
        self.acc = buf[pos] >> (8 - used) if used else 0

    def put(self, value, nbits):
        if nbits > 16:  # keep the accumulator a small int
            self.put(value >> 16, nbits - 16)
            value &= 0xFFFF
            nbits = 16
        self.acc = (self.acc << nbits) | (value & ((1 << nbits) - 1))
        self.nbits += nbits
        while self.nbits >= 8:
            self.nbits -= 8
            self.buf[self.pos] = (self.acc >> self.nbits) & 0xFF
            self.pos += 1
        self.acc &= (1 << self.nbits) - 1

    def rice(self, z, k):
        q = z >> k
        if q < _RICE_ESCAPE:
            self.put((1 << (q + 1)) - 2, q + 1)  # q ones then a zero
            self.put(z, k)
        else:
            self.put((1 << _RICE_ESCAPE) - 1, _RICE_ESCAPE)
            self.put(z, _RICE_RAW_BITS)

    def expg(self, z, k):
        """Exp-Golomb of order k: w = z + 2^k has b bits; b-k-1 zero bits, then w."""
        w = z + (1 << k)
        b = k + 1
        while w >> b:
            b += 1
        self.put(0, b - k - 1)
        self.put(w, b)

    def close(self):
        if self.nbits:
            self.buf[self.pos] = (self.acc << (8 - self.nbits)) & 0xFF
            self.pos += 1
            self.acc = 0
            self.nbits = 0
        return self.pos


class BitReader:
    def __init__(self, data, pos, end):
        self.data = data
        self.pos = pos
        self.end = end
        self.acc = 0
        self.nbits = 0

    def get(self, nbits):
        if nbits > 16:
            hi = self.get(nbits - 16)
            return (hi << 16) | self.get(16)
        while self.nbits < nbits:
            if self.pos >= self.end:
                raise ValueError("bit stream overrun")
            self.acc = (self.acc << 8) | self.data[self.pos]
            self.pos += 1
            self.nbits += 8
        self.nbits -= nbits
        v = self.acc >> self.nbits
        self.acc &= (1 << self.nbits) - 1
        return v

    def rice(self, k):
        q = 0
        while q < _RICE_ESCAPE and self.get(1):
            q += 1
        if q == _RICE_ESCAPE:
            return self.get(_RICE_RAW_BITS)
        return (q << k) | self.get(k)

    def expg(self, k):
        m = 0
        while not self.get(1):
            m += 1
            if m > _EXPG_MAX_ZEROS:
                raise ValueError("bad exp-Golomb code")
        return ((1 << (m + k)) | self.get(m + k)) - (1 << k)


def rice_cost(z, k):
    q = z >> k
    return q + 1 + k if q < _RICE_ESCAPE else _RICE_ESCAPE + _RICE_RAW_BITS


def field_code(x, spec):
    """Stored code of value x for a field spec of vocab.EPOCH_FIELDS; None if x is unknown,
    -1 if it cannot be stored (NaN, infinite, negative, out of the field's range)."""
    if x is None:
        return None
    bits, scale, low, knee = spec[1], spec[2], spec[3], spec[4]
    if isinstance(x, int) and not knee:
        v = x * scale - low
    else:
        x = float(x)
        if x != x or x < -3e38 or x > 3e38:
            return -1
        if knee:
            if x < 0:
                return -1
            f = scale * math.log(1.0 + x / knee) / _LN2
        else:
            f = x * scale - low
        if f < -1 or f > (1 << bits):
            return -1
        v = int(f + 0.5) if f >= 0 else -int(-f + 0.5)
    if v < 0 or v >> bits:
        return -1
    return v


def field_value(code, spec):
    """Value of a stored code (inverse of field_code, to the field's resolution)."""
    scale, low, knee = spec[2], spec[3], spec[4]
    if knee:
        return knee * (2.0 ** (code / scale) - 1.0)
    return (code + low) / scale


def epoch_time_code(t_off_s):
    """EPOCH time: w = 2 * index when t_off_s = 30 * index, else w = 2 * t_off_s + 1."""
    if t_off_s % _EPOCH_S == 0:
        return (t_off_s // _EPOCH_S) * 2
    return t_off_s * 2 + 1


def epoch_t_off_s(w):
    return (w >> 1) * _EPOCH_S if not w & 1 else w >> 1


# ---- framing --------------------------------------------------------------------------------

def finish(buf, start, end):
    """Write the length and the CRC of the record begun at `start` with payload up to `end`."""
    n = end - start - 3
    if n > _MAX_PAYLOAD:
        raise ValueError("record too long")
    buf[start + 1] = n & 0xFF
    buf[start + 2] = n >> 8
    crc = binascii.crc32(memoryview(buf)[start:end])
    if end + 4 > len(buf):
        raise IndexError("full")
    buf[end] = crc & 0xFF
    buf[end + 1] = (crc >> 8) & 0xFF
    buf[end + 2] = (crc >> 16) & 0xFF
    buf[end + 3] = (crc >> 24) & 0xFF
    return end + 4


def check_frame(data, pos, end):
    """Length of the valid record's payload at `pos`, or a negative BAD_* code."""
    if pos + 7 > end:
        return BAD_TRUNCATED
    t = data[pos]
    if t == 0 or t > 127:
        return BAD_TYPE
    n = data[pos + 1] | (data[pos + 2] << 8)
    if n > _MAX_PAYLOAD:
        return BAD_LENGTH
    stop = pos + 3 + n
    if stop + 4 > end:
        return BAD_TRUNCATED
    crc = data[stop] | (data[stop + 1] << 8) | (data[stop + 2] << 16) | (data[stop + 3] << 24)
    if binascii.crc32(memoryview(data)[pos:stop]) != crc:
        return BAD_CRC
    return n


def iter_frames(data, pos=0, end=-1):
    """Walk the records of data[pos:end]: yields (offset, type, payload_length) for each valid
    record and (offset, -1, (stop, reason)) for each damaged range, resynchronising on the next
    position where a valid record starts."""
    if end < 0:
        end = len(data)
    while pos < end:
        n = check_frame(data, pos, end)
        if n >= 0:
            yield pos, data[pos], n
            pos += 7 + n
            continue
        q = pos + 1
        while q < end and check_frame(data, q, end) < 0:
            q += 1
        yield pos, -1, (q, REASONS[n])
        pos = q
