# Night file format: framed records with CRC32, encoders into caller buffers, a resyncing decoder.
# Pure (no file I/O): used by the recorder on the device and by the host tools (defined once).
# Specification: docs/night-format.md. Vocabulary (fields, units, flags, events): nsdev.core.vocab.
import binascii
import math

from nsdev.core import vocab

_MAX_PAYLOAD = vocab.MAX_PAYLOAD
_RICE_ESCAPE = 15  # unary prefix length that announces a raw value
_RICE_RAW_BITS = 20
_EXPG_MAX_ZEROS = 40  # longer zero runs are damage, not data
_MAX_IBI_MS = 65535
_MAX_BEATS = 1000  # per block
_LN2 = 0.6931471805599453
_EPOCH_S = vocab.EPOCH_S

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


def _put_text(buf, pos, text, limit):
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if len(raw) > limit:
        raw = raw[:limit]
    pos = put_uvarint(buf, pos, len(raw))
    end = pos + len(raw)
    if end > len(buf):
        raise IndexError("full")
    buf[pos:end] = raw
    return end


def _get_text(data, pos, end):
    n, pos = get_uvarint(data, pos, end)
    if pos + n > end:
        raise ValueError("text past end")
    return bytes(data[pos:pos + n]).decode("utf-8", "replace"), pos + n


# ---- bit stream (bit-packed payloads) ---------------------------------------------------------

class _BitWriter:
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


class _BitReader:
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


def _rice_cost(z, k):
    q = z >> k
    return q + 1 + k if q < _RICE_ESCAPE else _RICE_ESCAPE + _RICE_RAW_BITS


# ---- framing --------------------------------------------------------------------------------

def _finish(buf, start, end):
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


# ---- encoders: each writes one framed record into `buf` at `pos` and returns the end position,
# or -1 when the buffer has no room (the bytes after `pos` are then undefined). ----------------

def write_magic(buf, pos=0):
    buf[pos:pos + 4] = vocab.MAGIC
    return pos + 4


def encode_header(buf, pos, device_id, night_id, start_unix_s, utc_offset_s, fw_version,
                  epoch_s, sensor_config):
    try:
        buf[pos] = vocab.REC_HEADER
        p = put_uvarint(buf, pos + 3, vocab.FORMAT_VERSION)
        p = _put_text(buf, p, device_id, 64)
        p = put_uvarint(buf, p, night_id)
        p = put_svarint(buf, p, start_unix_s)
        p = put_svarint(buf, p, utc_offset_s)
        p = _put_text(buf, p, fw_version, 32)
        p = put_uvarint(buf, p, epoch_s)
        p = _put_text(buf, p, sensor_config, 200)
        return _finish(buf, pos, p)
    except IndexError:
        return -1


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


def _lamp_ok(levels, spec):
    if len(levels) > vocab.MAX_LAMP_CHANNELS:
        return False
    for level in levels:
        v = field_code(level, spec)
        if v is None or v < 0 or v > spec[2]:
            return False
    return True


def _fields_mask(table, values, lamp_index):
    """-> (presence mask, invalid): invalid says a given value was unusable (stored unknown)."""
    mask = 0
    invalid = False
    for i in range(len(table)):
        x = values[i] if i < len(values) else None
        if x is None:
            continue
        if i == lamp_index:
            ok = _lamp_ok(x, table[i])
        else:
            ok = field_code(x, table[i]) >= 0
        if ok:
            mask |= 1 << i
        else:
            invalid = True
    return mask, invalid


def _put_fields(bw, table, values, mask, lamp_index):
    for i in range(len(table)):
        if not mask & (1 << i):
            continue
        spec = table[i]
        if i == lamp_index:
            bw.put(len(values[i]), 4)
            for level in values[i]:
                v = field_code(level, spec)
                if v:
                    bw.put(1, 1)
                    bw.put(v, spec[1])
                else:
                    bw.put(0, 1)
        else:
            bw.put(field_code(values[i], spec), spec[1])


def epoch_time_code(t_off_s):
    """EPOCH time: w = 2 * index when t_off_s = 30 * index, else w = 2 * t_off_s + 1."""
    if t_off_s % _EPOCH_S == 0:
        return (t_off_s // _EPOCH_S) * 2
    return t_off_s * 2 + 1


def epoch_t_off_s(w):
    return (w >> 1) * _EPOCH_S if not w & 1 else w >> 1


def encode_epoch(buf, pos, t_off_s, values, flags=0, mark=None):
    """values: sequence in vocab.EPOCH_FIELDS order (None = unknown; lamp_level a sequence).
    mark: optional array of 3 ints that receives what append_beats needs to attach the beat
    stream to this record later (record start, bit position of the has-beats bit, payload end)."""
    mask, invalid = _fields_mask(vocab.EPOCH_FIELDS, values, vocab.EPOCH_LAMP_INDEX)
    if invalid:
        flags |= vocab.FLAG_INVALID_VALUE
    try:
        buf[pos] = vocab.REC_EPOCH
        p = put_svarint(buf, pos + 3, epoch_time_code(t_off_s))
        bw = _BitWriter(buf, p)
        bw.put(mask, len(vocab.EPOCH_FIELDS))
        bw.expg(flags, 0)
        _put_fields(bw, vocab.EPOCH_FIELDS, values, mask, vocab.EPOCH_LAMP_INDEX)
        if mark is not None:
            mark[0] = pos
            mark[1] = bw.pos * 8 + bw.nbits
        bw.put(0, 1)  # no beats (yet)
        end = bw.close()
        if mark is not None:
            mark[2] = end
        return _finish(buf, pos, end)
    except IndexError:
        return -1


def encode_env(buf, pos, t_off_ms, values):
    """values: sequence in vocab.ENV_FIELDS order (None = unknown)."""
    mask, invalid = _fields_mask(vocab.ENV_FIELDS, values, -1)
    try:
        buf[pos] = vocab.REC_ENV
        p = put_svarint(buf, pos + 3, t_off_ms)
        bw = _BitWriter(buf, p)
        bw.put(mask, len(vocab.ENV_FIELDS))
        bw.put(1 if invalid else 0, 1)
        _put_fields(bw, vocab.ENV_FIELDS, values, mask, -1)
        return _finish(buf, pos, bw.close())
    except IndexError:
        return -1


def encode_event(buf, pos, t_off_ms, kind, values=(), text=None):
    """values: integers (see vocab.EVENT_KINDS for their meaning); text: short str or None."""
    try:
        buf[pos] = vocab.REC_EVENT
        p = put_svarint(buf, pos + 3, t_off_ms)
        p = put_uvarint(buf, p, kind)
        p = put_uvarint(buf, p, len(values))
        for v in values:
            p = put_svarint(buf, p, int(v))
        p = _put_text(buf, p, text or "", vocab.MAX_EVENT_TEXT)
        return _finish(buf, pos, p)
    except IndexError:
        return -1


def encode_night_end(buf, pos, t_off_s, n_epochs, n_events, n_beats, n_beats_dropped, reason):
    try:
        buf[pos] = vocab.REC_NIGHT_END
        p = put_svarint(buf, pos + 3, t_off_s)
        p = put_uvarint(buf, p, n_epochs)
        p = put_uvarint(buf, p, n_events)
        p = put_uvarint(buf, p, n_beats)
        p = put_uvarint(buf, p, n_beats_dropped)
        p = put_uvarint(buf, p, reason)
        return _finish(buf, pos, p)
    except IndexError:
        return -1


# ---- the beat stream ---------------------------------------------------------------------------
# Beat i is at t_i = t0 + ibi_0 + ... + ibi_{i-1} ms. With resolution r ms, the stored beat times
# are T_i = round((t_i - base) / r) (so errors never accumulate) and the stored intervals are
# U_i = T_{i+1} - T_i. The section (bit stream) holds: n-1 expg4, T_0 zigzag expg10, r code u2,
# then if n >= 2: U_0 expg9, k_ibi u4, the n-2 Rice(zigzag(U_i - U_{i-1}), k_ibi); has_pwa u1 and,
# if set: step exponent e u5, q_0 expg3, and if n >= 2: k_pwa u3 and the n-1
# Rice(zigzag(q_i - q_{i-1})); amplitude_i = q_i * 2^e (q_i = 0: unknown).

def _check_beats(ibi_ms, n, res_ms):
    if n < 1 or n > _MAX_BEATS:
        raise ValueError("beats per block must be 1..1000")
    for i in range(n - 1):
        if not 0 < ibi_ms[i] <= _MAX_IBI_MS:
            raise ValueError("ibi_ms out of range")
    if res_ms not in (1, 2, 4, 8):
        raise ValueError("ibi resolution must be 1, 2, 4 or 8 ms")


def _pwa_q(v, e):
    # Amplitude v in steps of 2^e counts, rounded; at least 1 for a known amplitude.
    v = int(v)
    if v <= 0:
        return 0
    q = (v + ((1 << e) >> 1)) >> e
    return q if q > 0 else 1


def _pwa_exp(pwa, n, shift):
    """Step exponent e (step 2^e = the block's largest amplitude >> shift, rounded down to a
    power of two), or -1 for a block without amplitudes."""
    if pwa is None:
        return -1
    top = 0
    for i in range(n):
        if pwa[i] > top:
            top = pwa[i]
    top = int(top)
    if top <= 0:
        return -1
    e = -shift - 1
    while top:
        top >>= 1
        e += 1
    return e if e > 0 else 0


def _ibi_cost(ibi_ms, n, d0, res, k):
    # Exact bits of the IBI delta stream with Rice parameter k; k < 0: the sum of the zigzag
    # deltas (for the first guess of k). No allocation.
    half = res >> 1
    t = d0
    tq = (t + half) // res
    prev_u = -1
    cost = 0
    for i in range(n - 1):
        t += ibi_ms[i]
        nq = (t + half) // res
        u = nq - tq
        tq = nq
        if prev_u >= 0:
            z = zigzag(u - prev_u)
            cost += z if k < 0 else _rice_cost(z, k)
        prev_u = u
    return cost


def _pwa_cost(pwa, n, step, _unused, k):
    prev = _pwa_q(pwa[0], step)
    cost = 0
    for i in range(1, n):
        q = _pwa_q(pwa[i], step)
        z = zigzag(q - prev)
        cost += z if k < 0 else _rice_cost(z, k)
        prev = q
    return cost


def _best_k(cost_fn, a, b, c, d, count, kmax):
    """Rice parameter with the fewest bits: start near log2(mean * ln 2) (the optimum for a
    geometric distribution) and walk downhill (the cost is convex in k)."""
    mean = cost_fn(a, b, c, d, -1) // count if count else 0
    k = 0
    while k < kmax and (2 << k) <= mean:
        k += 1
    best = cost_fn(a, b, c, d, k)
    for step in (-1, 1):
        while 0 <= k + step <= kmax:
            cost = cost_fn(a, b, c, d, k + step)
            if cost >= best:
                break
            best = cost
            k += step
    return k


def _put_beats(bw, d0, ibi_ms, pwa, n, res, shift):
    """Beat section; d0 = beat 0 in ms after the record's base time."""
    half = res >> 1
    bw.expg(n - 1, 4)
    tq = (d0 + half) // res  # T_0 (floor division rounds half up for negative d0 too)
    bw.expg(zigzag(tq), 10)
    bw.put((1, 2, 4, 8).index(res), 2)
    if n >= 2:
        k_ibi = _best_k(_ibi_cost, ibi_ms, n, d0, res, n - 2, 15) if n >= 3 else 0
        t = d0
        prev_u = -1
        for i in range(n - 1):
            t += ibi_ms[i]
            nq = (t + half) // res
            u = nq - tq
            tq = nq
            if prev_u < 0:
                bw.expg(u, 9)
                bw.put(k_ibi, 4)
            else:
                bw.rice(zigzag(u - prev_u), k_ibi)
            prev_u = u
    step = _pwa_exp(pwa, n, shift)
    if step < 0:
        bw.put(0, 1)
        return
    bw.put(1, 1)
    bw.put(step, 5)
    prev = _pwa_q(pwa[0], step)
    bw.expg(prev, 3)
    if n >= 2:
        k_pwa = _best_k(_pwa_cost, pwa, n, step, 0, n - 1, 7)
        bw.put(k_pwa, 3)
        for i in range(1, n):
            q = _pwa_q(pwa[i], step)
            bw.rice(zigzag(q - prev), k_pwa)
            prev = q


def encode_beats(buf, pos, t0_off_ms, ibi_ms, pwa, n, res_ms=vocab.IBI_RES_MS,
                 pwa_shift=vocab.PWA_SHIFT):
    """A beat block not attached to an epoch. n beats: beat 0 at t0_off_ms (ms since night
    start), beat i+1 = beat i + ibi_ms[i] (1..65535 ms); pwa[i] = pulse-wave amplitude of beat i
    in ADC counts (<= 0: unknown), or pwa None. Times are stored to res_ms (1, 2, 4 or 8 ms),
    amplitudes to max(pwa) >> pwa_shift. ValueError on an impossible IBI, n or res_ms."""
    _check_beats(ibi_ms, n, res_ms)
    try:
        buf[pos] = vocab.REC_BEATS
        p = put_svarint(buf, pos + 3, t0_off_ms)
        bw = _BitWriter(buf, p)
        _put_beats(bw, 0, ibi_ms, pwa, n, res_ms, pwa_shift)
        return _finish(buf, pos, bw.close())
    except IndexError:
        return -1


def append_beats(buf, mark, t_off_s, t0_off_ms, ibi_ms, pwa, n, res_ms=vocab.IBI_RES_MS,
                 pwa_shift=vocab.PWA_SHIFT):
    """Attach a beat block to the EPOCH record that encode_epoch(..., mark) wrote (it must still
    be the last record in `buf`; t_off_s is its time). -> new end of the record, or -1 (buffer
    full or record too long: the EPOCH record is left as it was). ValueError as encode_beats."""
    _check_beats(ibi_ms, n, res_ms)
    pos = mark[0]
    bit = mark[1]
    byte = bit >> 3
    try:
        buf[byte] |= 0x80 >> (bit & 7)  # has beats
        bw = _BitWriter(buf, byte + ((bit & 7) + 1) // 8, ((bit & 7) + 1) & 7)
        _put_beats(bw, t0_off_ms - t_off_s * 1000, ibi_ms, pwa, n, res_ms, pwa_shift)
        return _finish(buf, pos, bw.close())
    except (IndexError, ValueError):
        buf[byte] &= (0xFF00 >> (bit & 7)) & 0xFF  # bits before the has-beats bit
        _finish(buf, pos, mark[2])
        return -1


# ---- decoder --------------------------------------------------------------------------------

def _get_fields(bits, table, lamp_index, mask, out):
    for i in range(len(table)):
        spec = table[i]
        if not mask & (1 << i):
            out[spec[0]] = None
        elif i == lamp_index:
            levels = []
            for _ in range(bits.get(4)):
                levels.append(bits.get(spec[1]) / spec[2] if bits.get(1) else 0.0)
            out[spec[0]] = levels
        else:
            out[spec[0]] = field_value(bits.get(spec[1]), spec)


def _get_beats(bits, base_ms, out):
    """Decode a beat section into out (n, t_off_ms, ibi_ms, t_ms, pwa); base_ms = the record's
    base time. With out None only n is read. -> n."""
    n = bits.expg(4) + 1
    if n > _MAX_BEATS:
        raise ValueError("too many beats")
    if out is None:
        return n
    tq = unzigzag(bits.expg(10))
    res = 1 << bits.get(2)
    t = base_ms + tq * res
    times = [t]
    ibis = []
    if n >= 2:
        u = bits.expg(9)
        k_ibi = bits.get(4)
        for i in range(n - 1):
            if i:
                u += unzigzag(bits.rice(k_ibi))
            t += u * res
            ibis.append(u * res)
            times.append(t)
    pwas = None
    if bits.get(1):
        step = 1 << bits.get(5)
        q = bits.expg(3)
        pwas = [q * step if q else None]
        if n >= 2:
            k_pwa = bits.get(3)
            for _ in range(n - 1):
                q += unzigzag(bits.rice(k_pwa))
                pwas.append(q * step if q > 0 else None)
    out["type"] = "beats"
    out["t_off_ms"] = times[0]
    out["n"] = n
    out["ibi_ms"] = ibis
    out["t_ms"] = times
    out["pwa"] = pwas
    return n


def decode_payload(rtype, data, p, end, beats=None):
    """Decode one payload (data[p:end]) into a dict; ValueError if it is malformed. An EPOCH
    record with a beat stream also fills the dict `beats` (if given) with the beats record."""
    if rtype == vocab.REC_HEADER:
        version, p = get_uvarint(data, p, end)
        if version != vocab.FORMAT_VERSION:
            raise ValueError("unsupported format version %d" % version)
        out = {"type": "header", "format_version": version}
        out["device_id"], p = _get_text(data, p, end)
        out["night_id"], p = get_uvarint(data, p, end)
        v, p = get_uvarint(data, p, end)
        out["start_unix_s"] = unzigzag(v)
        v, p = get_uvarint(data, p, end)
        out["utc_offset_s"] = unzigzag(v)
        out["fw_version"], p = _get_text(data, p, end)
        out["epoch_s"], p = get_uvarint(data, p, end)
        out["sensor_config"], p = _get_text(data, p, end)
    elif rtype == vocab.REC_EPOCH:
        v, p = get_uvarint(data, p, end)
        t = epoch_t_off_s(unzigzag(v))
        out = {"type": "epoch", "t_off_s": t}
        bits = _BitReader(data, p, end)
        mask = bits.get(len(vocab.EPOCH_FIELDS))
        out["flags"] = bits.expg(0)
        _get_fields(bits, vocab.EPOCH_FIELDS, vocab.EPOCH_LAMP_INDEX, mask, out)
        if bits.get(1):
            _get_beats(bits, t * 1000, beats if beats is not None else {})
        p = bits.pos  # the padding bits of the last byte are ignored
    elif rtype == vocab.REC_ENV:
        v, p = get_uvarint(data, p, end)
        out = {"type": "env", "t_off_ms": unzigzag(v)}
        bits = _BitReader(data, p, end)
        mask = bits.get(len(vocab.ENV_FIELDS))
        out["invalid"] = bits.get(1)
        _get_fields(bits, vocab.ENV_FIELDS, -1, mask, out)
        p = bits.pos
    elif rtype == vocab.REC_EVENT:
        v, p = get_uvarint(data, p, end)
        out = {"type": "event", "t_off_ms": unzigzag(v)}
        kind, p = get_uvarint(data, p, end)
        out["kind"] = kind
        spec = vocab.EVENT_KINDS.get(kind)
        out["kind_name"] = spec[0] if spec else "kind_%d" % kind
        cnt, p = get_uvarint(data, p, end)
        values = []
        for _ in range(cnt):
            v, p = get_uvarint(data, p, end)
            values.append(unzigzag(v))
        out["values"] = values
        out["text"], p = _get_text(data, p, end)
    elif rtype == vocab.REC_BEATS:
        v, p = get_uvarint(data, p, end)
        out = {}
        bits = _BitReader(data, p, end)
        _get_beats(bits, unzigzag(v), out)
        p = bits.pos
    elif rtype == vocab.REC_NIGHT_END:
        v, p = get_uvarint(data, p, end)
        out = {"type": "night_end", "t_off_s": unzigzag(v)}
        for name in ("n_epochs", "n_events", "n_beats", "n_beats_dropped", "reason"):
            out[name], p = get_uvarint(data, p, end)
    elif rtype in vocab.REC_V1:
        raise ValueError("format version 1 record type %d" % rtype)
    else:
        raise ValueError("unknown record type %d" % rtype)
    if p != end:
        raise ValueError("payload length mismatch")
    return out


def record_time_beats(rtype, data, p, end):
    """Cheap look at a record for the recorder's boot scan: -> (time in s since the night start
    or None, beats in the record). ValueError if malformed."""
    if rtype in (vocab.REC_HEADER,) or rtype not in vocab.RECORD_NAMES:
        return None, 0
    v, p = get_uvarint(data, p, end)
    v = unzigzag(v)
    if rtype == vocab.REC_NIGHT_END:
        return v, 0
    if rtype == vocab.REC_EPOCH:
        t = epoch_t_off_s(v)
        bits = _BitReader(data, p, end)
        mask = bits.get(len(vocab.EPOCH_FIELDS))
        bits.expg(0)
        table = vocab.EPOCH_FIELDS
        for i in range(len(table)):
            if mask & (1 << i):
                if i == vocab.EPOCH_LAMP_INDEX:
                    for _ in range(bits.get(4)):
                        if bits.get(1):
                            bits.get(table[i][1])
                else:
                    bits.get(table[i][1])
        return t, _get_beats(bits, 0, None) if bits.get(1) else 0
    if rtype == vocab.REC_BEATS:
        return v // 1000, _get_beats(_BitReader(data, p, end), 0, None)
    return v // 1000, 0


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


def decode(data):
    """Decode a whole night file (bytes-like). Returns a dict:
    header (dict or None), records (list of dicts, each with 'offset'; an EPOCH record that
    carries its beat stream gives an 'epoch' then a 'beats' dict with the same offset),
    skipped (list of (start, stop, reason) byte ranges that were not used)."""
    records = []
    skipped = []
    header = None
    pos = 0
    if bytes(data[:4]) == vocab.MAGIC:
        pos = 4
    elif len(data):
        skipped.append((0, 0, "bad magic"))
    for off, rtype, n in iter_frames(data, pos):
        if rtype < 0:
            skipped.append((off, n[0], n[1]))
            continue
        beats = {}
        try:
            rec = decode_payload(rtype, data, off + 3, off + 3 + n, beats)
        except (ValueError, IndexError) as e:
            skipped.append((off, off + 7 + n, "bad payload: %s" % e))
            continue
        rec["offset"] = off
        if rtype == vocab.REC_HEADER:
            if header is None:
                header = rec
            continue
        records.append(rec)
        if beats:
            beats["offset"] = off
            records.append(beats)
    if header is not None:
        start = header["start_unix_s"]
        for rec in records:
            if "t_off_s" in rec:
                rec["unix_s"] = start + rec["t_off_s"]
            if "t_off_ms" in rec:
                rec["unix_ms"] = start * 1000 + rec["t_off_ms"]
    return {"header": header, "records": records, "skipped": skipped}
