# Night file format: framed records with CRC32, encoders into caller buffers, a resyncing decoder.
# Pure (no file I/O): used by the recorder on the device and by the host tools (defined once).
# Specification: docs/night-format.md. Vocabulary (fields, units, flags, events): nsdev.core.vocab.
import binascii

from nsdev.core import vocab

_MAX_PAYLOAD = vocab.MAX_PAYLOAD
_RICE_ESCAPE = 15  # unary prefix length that announces a raw value
_RICE_RAW_BITS = 20
_MAX_IBI_MS = 65535

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


# ---- bit stream (Golomb-Rice codes for the beat block) --------------------------------------

class _BitWriter:
    # Bits are packed most significant bit first.
    def __init__(self, buf, pos):
        self.buf = buf
        self.pos = pos
        self.acc = 0
        self.nbits = 0

    def put(self, value, nbits):
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

def _fixed(x, scale, signed):
    """round(x * scale) as int, or None if x is unknown (None, NaN, inf) or out of range."""
    if x is None:
        return None
    if isinstance(x, int):
        v = x * scale
    else:
        if x != x or x in (float("inf"), float("-inf")):
            return None
        f = x * scale
        v = int(f + 0.5) if f >= 0 else -int(-f + 0.5)
    if v < 0 and not signed:
        return -1
    return v


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


def _encode_fields(buf, p, table, values, lamp_index):
    """Presence mask then the known values; returns (end, invalid) where invalid says a value was
    unusable and stored as unknown."""
    mask = 0
    invalid = False
    for i in range(len(table)):
        x = values[i] if i < len(values) else None
        if x is None:
            continue
        if i == lamp_index:
            ok = True
            for level in x:
                v = _fixed(level, table[i][1], False)
                if v is None or v < 0 or v > 10000:
                    ok = False
            if ok and len(x) < 16:
                mask |= 1 << i
            else:
                invalid = True
            continue
        v = _fixed(x, table[i][1], table[i][2])
        if v is None or (v < 0 and not table[i][2]):
            invalid = True  # NaN, inf or a negative value for an unsigned field
            continue
        mask |= 1 << i
    p = put_uvarint(buf, p, mask)
    return p, mask, invalid


def _encode_values(buf, p, table, values, mask, lamp_index):
    for i in range(len(table)):
        if not mask & (1 << i):
            continue
        name, scale, signed, _unit = table[i]
        if i == lamp_index:
            p = put_uvarint(buf, p, len(values[i]))
            for level in values[i]:
                p = put_uvarint(buf, p, _fixed(level, scale, False))
        elif signed:
            p = put_svarint(buf, p, _fixed(values[i], scale, True))
        else:
            p = put_uvarint(buf, p, _fixed(values[i], scale, False))
    return p


def encode_epoch(buf, pos, t_off_s, values, flags=0):
    """values: sequence in vocab.EPOCH_FIELDS order (None = unknown; lamp_level a sequence)."""
    try:
        buf[pos] = vocab.REC_EPOCH
        p = put_svarint(buf, pos + 3, t_off_s)
        # The mask goes before the flags; the flags may change if a value is invalid, so the
        # mask is computed first and the flags are written after it.
        p, mask, invalid = _encode_fields(buf, p, vocab.EPOCH_FIELDS, values,
                                          vocab.EPOCH_LAMP_INDEX)
        if invalid:
            flags |= vocab.FLAG_INVALID_VALUE
        p = put_uvarint(buf, p, flags)
        p = _encode_values(buf, p, vocab.EPOCH_FIELDS, values, mask, vocab.EPOCH_LAMP_INDEX)
        return _finish(buf, pos, p)
    except IndexError:
        return -1


def encode_env(buf, pos, t_off_ms, values):
    """values: sequence in vocab.ENV_FIELDS order (None = unknown)."""
    try:
        buf[pos] = vocab.REC_ENV
        p = put_svarint(buf, pos + 3, t_off_ms)
        p, mask, invalid = _encode_fields(buf, p, vocab.ENV_FIELDS, values, -1)
        p = put_uvarint(buf, p, 1 if invalid else 0)
        p = _encode_values(buf, p, vocab.ENV_FIELDS, values, mask, -1)
        return _finish(buf, pos, p)
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


def encode_beats(buf, pos, t0_off_ms, ibi_ms, pwa, n):
    """n beats: beat 0 at t0_off_ms (ms since night start), beat i+1 = beat i + ibi_ms[i]
    (1..65535 ms); pwa[i] = pulse-wave amplitude of beat i in ADC counts (<= 0: unknown), or
    pwa None for a block without amplitudes. ValueError on an impossible IBI or n."""
    if n < 1 or n > 1000:
        raise ValueError("beats per block must be 1..1000")
    for i in range(n - 1):
        if not 0 < ibi_ms[i] <= _MAX_IBI_MS:
            raise ValueError("ibi_ms out of range")
    step = 0
    if pwa is not None:
        top = 0
        for i in range(n):
            if pwa[i] > top:
                top = pwa[i]
        if top > 0:
            step = top >> 5 if top >= 64 else 1
            step = int(step)
    # Choose the Rice parameters with the smallest exact cost.
    k_ibi = 0
    k_pwa = 0
    best = -1
    for k in range(13):
        cost = 0
        for i in range(1, n - 1):
            cost += _rice_cost(zigzag(ibi_ms[i] - ibi_ms[i - 1]), k)
        if best < 0 or cost < best:
            best = cost
            k_ibi = k
    if step:
        best = -1
        for k in range(8):
            cost = 0
            prev = _pwa_q(pwa[0], step)
            for i in range(1, n):
                q = _pwa_q(pwa[i], step)
                cost += _rice_cost(zigzag(q - prev), k)
                prev = q
            if best < 0 or cost < best:
                best = cost
                k_pwa = k
    try:
        buf[pos] = vocab.REC_BEATS
        p = put_svarint(buf, pos + 3, t0_off_ms)
        p = put_uvarint(buf, p, n)
        if n >= 2:
            p = put_uvarint(buf, p, ibi_ms[0])
        buf[p] = k_ibi | (k_pwa << 4)
        p = put_uvarint(buf, p + 1, step)
        if step:
            p = put_uvarint(buf, p, _pwa_q(pwa[0], step))
        bits = _BitWriter(buf, p)
        for i in range(1, n - 1):
            bits.rice(zigzag(ibi_ms[i] - ibi_ms[i - 1]), k_ibi)
        if step:
            prev = _pwa_q(pwa[0], step)
            for i in range(1, n):
                q = _pwa_q(pwa[i], step)
                bits.rice(zigzag(q - prev), k_pwa)
                prev = q
        return _finish(buf, pos, bits.close())
    except IndexError:
        return -1


def _pwa_q(v, step):
    if v <= 0:
        return 0
    q = int((v + (step >> 1)) // step)
    return q if q > 0 else 1


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


# ---- decoder --------------------------------------------------------------------------------

def _decode_fields(data, p, end, table, lamp_index, mask, out):
    for i in range(len(table)):
        name, scale, signed, _unit = table[i]
        if not mask & (1 << i):
            out[name] = None
            continue
        if i == lamp_index:
            cnt, p = get_uvarint(data, p, end)
            levels = []
            for _ in range(cnt):
                v, p = get_uvarint(data, p, end)
                levels.append(v / scale)
            out[name] = levels
            continue
        v, p = get_uvarint(data, p, end)
        if signed:
            v = unzigzag(v)
        out[name] = v / scale if scale != 1 else v
    return p


def decode_payload(rtype, data, p, end):
    """Decode one payload (data[p:end]) into a dict; ValueError if it is malformed."""
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
        out = {"type": "epoch", "t_off_s": unzigzag(v)}
        mask, p = get_uvarint(data, p, end)
        out["flags"], p = get_uvarint(data, p, end)
        p = _decode_fields(data, p, end, vocab.EPOCH_FIELDS, vocab.EPOCH_LAMP_INDEX, mask, out)
    elif rtype == vocab.REC_ENV:
        v, p = get_uvarint(data, p, end)
        out = {"type": "env", "t_off_ms": unzigzag(v)}
        mask, p = get_uvarint(data, p, end)
        out["invalid"], p = get_uvarint(data, p, end)
        p = _decode_fields(data, p, end, vocab.ENV_FIELDS, -1, mask, out)
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
        t = unzigzag(v)
        out = {"type": "beats", "t_off_ms": t}
        n, p = get_uvarint(data, p, end)
        if n < 1:
            raise ValueError("empty beat block")
        ibis = []
        if n >= 2:
            v, p = get_uvarint(data, p, end)
            ibis.append(v)
        if p >= end:
            raise ValueError("beat block too short")
        k_ibi = data[p] & 15
        k_pwa = data[p] >> 4
        step, p = get_uvarint(data, p + 1, end)
        pwas = None
        if step:
            q, p = get_uvarint(data, p, end)
            pwas = [q * step if q else None]
        bits = _BitReader(data, p, end)
        for _ in range(n - 2):
            ibis.append(ibis[-1] + unzigzag(bits.rice(k_ibi)))
        if step:
            for _ in range(n - 1):
                q += unzigzag(bits.rice(k_pwa))
                pwas.append(q * step if q > 0 else None)
        times = [t]
        for d in ibis:
            t += d
            times.append(t)
        out["n"] = n
        out["ibi_ms"] = ibis
        out["t_ms"] = times
        out["pwa"] = pwas
        p = bits.pos  # the padding bits of the last byte are ignored
    elif rtype == vocab.REC_NIGHT_END:
        v, p = get_uvarint(data, p, end)
        out = {"type": "night_end", "t_off_s": unzigzag(v)}
        for name in ("n_epochs", "n_events", "n_beats", "n_beats_dropped", "reason"):
            out[name], p = get_uvarint(data, p, end)
    else:
        raise ValueError("unknown record type %d" % rtype)
    if p != end:
        raise ValueError("payload length mismatch")
    return out


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
    header (dict or None), records (list of dicts, each with 'offset'), skipped (list of
    (start, stop, reason) byte ranges that were not used)."""
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
        try:
            rec = decode_payload(rtype, data, off + 3, off + 3 + n)
        except (ValueError, IndexError) as e:
            skipped.append((off, off + 7 + n, "bad payload: %s" % e))
            continue
        rec["offset"] = off
        if rtype == vocab.REC_HEADER:
            if header is None:
                header = rec
            continue
        records.append(rec)
    if header is not None:
        start = header["start_unix_s"]
        for rec in records:
            if "t_off_s" in rec:
                rec["unix_s"] = start + rec["t_off_s"]
            if "t_off_ms" in rec:
                rec["unix_ms"] = start * 1000 + rec["t_off_ms"]
    return {"header": header, "records": records, "skipped": skipped}
