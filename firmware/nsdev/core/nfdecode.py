# Night file format, layer 3: the decoder. Records into dicts, a whole file with resync past
# damaged ranges, and the cheap look the recorder takes at its records after a reboot. No I/O.
# Specification: docs/night-format.md. Vocabulary: nsdev.core.vocab.
from nsdev.core import vocab
from nsdev.core.nfcodec import (
    MAX_BEATS,
    BitReader,
    epoch_t_off_s,
    field_value,
    get_text,
    get_uvarint,
    iter_frames,
    unzigzag,
)

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
    if n > MAX_BEATS:
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


def _get_ext(bits, out):
    # Epoch extension fields (vocab.EPOCH_EXT_FIELDS); out None: skip them.
    n = bits.get(4)
    table = vocab.EPOCH_EXT_FIELDS
    if n > len(table):
        raise ValueError("epoch extension fields %d > %d known: a newer format" % (n, len(table)))
    table = table[:n]
    mask = bits.get(n)
    if out is None:
        for i in range(n):
            if mask & (1 << i):
                bits.get(table[i][1])
    else:
        _get_fields(bits, table, -1, mask, out)


def event_fields(kind, values):
    """An event's values by name (vocab.EVENT_KINDS), scaled (vocab.EVENT_SCALES); None for
    vocab.EV_UNKNOWN. Values beyond the known names are left out."""
    spec = vocab.EVENT_KINDS.get(kind)
    names = spec[1] if spec else ()
    scales = vocab.EVENT_SCALES.get(kind)
    out = {}
    for i in range(min(len(names), len(values))):
        v = values[i]
        if v == vocab.EV_UNKNOWN:
            v = None
        elif scales is not None:
            v = v / scales[i]
        out[names[i]] = v
    return out


def decode_payload(rtype, data, p, end, beats=None):
    """Decode one payload (data[p:end]) into a dict; ValueError if it is malformed. An EPOCH
    record with a beat stream also fills the dict `beats` (if given) with the beats record."""
    if rtype == vocab.REC_HEADER:
        version, p = get_uvarint(data, p, end)
        if version not in vocab.READ_VERSIONS:
            raise ValueError("unsupported format version %d" % version)
        out = {"type": "header", "format_version": version}
        out["device_id"], p = get_text(data, p, end)
        out["night_id"], p = get_uvarint(data, p, end)
        v, p = get_uvarint(data, p, end)
        out["start_unix_s"] = unzigzag(v)
        v, p = get_uvarint(data, p, end)
        out["utc_offset_s"] = unzigzag(v)
        out["fw_version"], p = get_text(data, p, end)
        out["epoch_s"], p = get_uvarint(data, p, end)
        out["sensor_config"], p = get_text(data, p, end)
    elif rtype == vocab.REC_EPOCH:
        v, p = get_uvarint(data, p, end)
        t = epoch_t_off_s(unzigzag(v))
        out = {"type": "epoch", "t_off_s": t}
        bits = BitReader(data, p, end)
        mask = bits.get(len(vocab.EPOCH_FIELDS))
        flags = bits.expg(0)
        out["flags"] = flags & ~vocab.FLAG_EPOCH_EXT
        _get_fields(bits, vocab.EPOCH_FIELDS, vocab.EPOCH_LAMP_INDEX, mask, out)
        for spec in vocab.EPOCH_EXT_FIELDS:
            out[spec[0]] = None
        if flags & vocab.FLAG_EPOCH_EXT:
            _get_ext(bits, out)
        if bits.get(1):
            _get_beats(bits, t * 1000, beats if beats is not None else {})
        p = bits.pos  # the padding bits of the last byte are ignored
    elif rtype == vocab.REC_ENV:
        v, p = get_uvarint(data, p, end)
        out = {"type": "env", "t_off_ms": unzigzag(v)}
        bits = BitReader(data, p, end)
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
        out["fields"] = event_fields(kind, values)
        out["text"], p = get_text(data, p, end)
    elif rtype == vocab.REC_BEATS:
        v, p = get_uvarint(data, p, end)
        out = {}
        bits = BitReader(data, p, end)
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
        bits = BitReader(data, p, end)
        mask = bits.get(len(vocab.EPOCH_FIELDS))
        flags = bits.expg(0)
        table = vocab.EPOCH_FIELDS
        for i in range(len(table)):
            if mask & (1 << i):
                if i == vocab.EPOCH_LAMP_INDEX:
                    for _ in range(bits.get(4)):
                        if bits.get(1):
                            bits.get(table[i][1])
                else:
                    bits.get(table[i][1])
        if flags & vocab.FLAG_EPOCH_EXT:
            _get_ext(bits, None)
        return t, _get_beats(bits, 0, None) if bits.get(1) else 0
    if rtype == vocab.REC_BEATS:
        return v // 1000, _get_beats(BitReader(data, p, end), 0, None)
    return v // 1000, 0


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
