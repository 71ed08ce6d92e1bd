# Night file format, layer 2: the encoders. Each writes one framed record into a caller's buffer
# (no allocation per record); the recorder on the device uses them. Pure, no I/O.
# Specification: docs/night-format.md. Vocabulary: nsdev.core.vocab.
from nsdev.core import vocab
from nsdev.core.nfcodec import (
    MAX_BEATS,
    BitWriter,
    epoch_time_code,
    field_code,
    finish,
    put_svarint,
    put_text,
    put_uvarint,
    rice_cost,
    zigzag,
)

_MAX_IBI_MS = 65535


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
        p = put_text(buf, p, device_id, 64)
        p = put_uvarint(buf, p, night_id)
        p = put_svarint(buf, p, start_unix_s)
        p = put_svarint(buf, p, utc_offset_s)
        p = put_text(buf, p, fw_version, 32)
        p = put_uvarint(buf, p, epoch_s)
        p = put_text(buf, p, sensor_config, 200)
        return finish(buf, pos, p)
    except IndexError:
        return -1


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


def encode_epoch(buf, pos, t_off_s, values, flags=0, mark=None, ext=()):
    """values: sequence in vocab.EPOCH_FIELDS order (None = unknown; lamp_level a sequence);
    ext: sequence in vocab.EPOCH_EXT_FIELDS order (None = unknown).
    mark: optional array of 3 ints that receives what append_beats needs to attach the beat
    stream to this record later (record start, bit position of the has-beats bit, payload end)."""
    mask, invalid = _fields_mask(vocab.EPOCH_FIELDS, values, vocab.EPOCH_LAMP_INDEX)
    xmask, xinvalid = _fields_mask(vocab.EPOCH_EXT_FIELDS, ext, -1)
    flags &= ~vocab.FLAG_EPOCH_EXT
    if xmask:
        flags |= vocab.FLAG_EPOCH_EXT
    if invalid or xinvalid:
        flags |= vocab.FLAG_INVALID_VALUE
    try:
        buf[pos] = vocab.REC_EPOCH
        p = put_svarint(buf, pos + 3, epoch_time_code(t_off_s))
        bw = BitWriter(buf, p)
        bw.put(mask, len(vocab.EPOCH_FIELDS))
        bw.expg(flags, 0)
        _put_fields(bw, vocab.EPOCH_FIELDS, values, mask, vocab.EPOCH_LAMP_INDEX)
        if xmask:
            n = len(vocab.EPOCH_EXT_FIELDS)
            bw.put(n, 4)
            bw.put(xmask, n)
            _put_fields(bw, vocab.EPOCH_EXT_FIELDS, ext, xmask, -1)
        if mark is not None:
            mark[0] = pos
            mark[1] = bw.pos * 8 + bw.nbits
        bw.put(0, 1)  # no beats (yet)
        end = bw.close()
        if mark is not None:
            mark[2] = end
        return finish(buf, pos, end)
    except IndexError:
        return -1


def encode_env(buf, pos, t_off_ms, values):
    """values: sequence in vocab.ENV_FIELDS order (None = unknown)."""
    mask, invalid = _fields_mask(vocab.ENV_FIELDS, values, -1)
    try:
        buf[pos] = vocab.REC_ENV
        p = put_svarint(buf, pos + 3, t_off_ms)
        bw = BitWriter(buf, p)
        bw.put(mask, len(vocab.ENV_FIELDS))
        bw.put(1 if invalid else 0, 1)
        _put_fields(bw, vocab.ENV_FIELDS, values, mask, -1)
        return finish(buf, pos, bw.close())
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
        p = put_text(buf, p, text or "", vocab.MAX_EVENT_TEXT)
        return finish(buf, pos, p)
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
        return finish(buf, pos, p)
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
    if n < 1 or n > MAX_BEATS:
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
            cost += z if k < 0 else rice_cost(z, k)
        prev_u = u
    return cost


def _pwa_cost(pwa, n, step, _unused, k):
    prev = _pwa_q(pwa[0], step)
    cost = 0
    for i in range(1, n):
        q = _pwa_q(pwa[i], step)
        z = zigzag(q - prev)
        cost += z if k < 0 else rice_cost(z, k)
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
        bw = BitWriter(buf, p)
        _put_beats(bw, 0, ibi_ms, pwa, n, res_ms, pwa_shift)
        return finish(buf, pos, bw.close())
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
        bw = BitWriter(buf, byte + ((bit & 7) + 1) // 8, ((bit & 7) + 1) & 7)
        _put_beats(bw, t0_off_ms - t_off_s * 1000, ibi_ms, pwa, n, res_ms, pwa_shift)
        return finish(buf, pos, bw.close())
    except (IndexError, ValueError):
        buf[byte] &= (0xFF00 >> (bit & 7)) & 0xFF  # bits before the has-beats bit
        finish(buf, pos, mark[2])
        return -1
