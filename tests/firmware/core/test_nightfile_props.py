"""Property tests of the night format (CPython/hypothesis): round trip, damage never crashes."""

from array import array

from hypothesis import given, settings
from hypothesis import strategies as st
from nsdev.core import nightfile as nf
from nsdev.core import vocab

opt = lambda s: st.none() | s  # noqa: E731
epoch = st.tuples(
    st.just("epoch"), st.integers(-10 ** 6, 10 ** 6),
    st.tuples(
        opt(st.integers(0, 300)), opt(st.integers(0, 500)), opt(st.integers(0, 500)),
        opt(st.integers(0, 300000)), opt(st.integers(0, 100)), opt(st.integers(0, 1)),
        opt(st.integers(0, 1)), opt(st.integers(-40, 85)), opt(st.integers(0, 100)),
        opt(st.integers(300, 1100)), opt(st.integers(0, 10 ** 7)), opt(st.integers(0, 10 ** 5)),
        opt(st.integers(0, 10 ** 5)), opt(st.lists(st.integers(0, 1), max_size=4)),
    ),
    st.integers(0, 0x7FFF).map(lambda f: f & ~vocab.FLAG_EPOCH_EXT),  # the format's own bit
    opt(st.integers(0, 511).map(lambda c: c / 10)),  # resp_per_min (extension field)
    opt(st.floats(-20.0, 107.9375)),  # clip_temp_c (extension field, format version 4)
)
beats = st.integers(1, 80).flatmap(lambda n: st.tuples(
    st.just("beats"), st.integers(-10 ** 6, 10 ** 8),
    st.lists(st.integers(1, 65535), min_size=n - 1, max_size=n - 1),
    opt(st.lists(st.integers(0, 300000), min_size=n, max_size=n)), st.just(n),
    st.sampled_from((1, 2, 4, 8)), st.booleans()))
event = st.tuples(st.just("event"), st.integers(-10 ** 8, 10 ** 8), st.integers(1, 200),
                  st.lists(st.integers(-(2 ** 40), 2 ** 40), max_size=4),
                  opt(st.text(max_size=20)))
env = st.tuples(st.just("env"), st.integers(-10 ** 8, 10 ** 8),
                st.tuples(opt(st.integers(-40, 85)), opt(st.integers(0, 100)),
                          opt(st.integers(300, 1100)), opt(st.integers(0, 10 ** 7)),
                          opt(st.integers(0, 10 ** 5)), opt(st.integers(0, 10 ** 5))))
records = st.lists(st.one_of(epoch, beats, event, env), max_size=12)


def _encode(recs):
    """Beats right after an epoch with attach=True go into that EPOCH record."""
    buf = bytearray(64 * 1024)
    mark = array("i", [0, 0, 0])
    p = nf.write_magic(buf)
    p = nf.encode_header(buf, p, "d", 1, 1767225600, 0, "v", 30, "")
    prev = None
    for r in recs:
        if r[0] == "epoch":
            p = nf.encode_epoch(buf, p, r[1], list(r[2]), r[3], mark, (r[4], r[5]))
        elif r[0] == "beats" and r[6] and prev is not None and prev[0] == "epoch":
            p = nf.append_beats(buf, mark, prev[1], r[1], r[2], r[3], r[4], r[5])
        elif r[0] == "beats":
            p = nf.encode_beats(buf, p, r[1], r[2], r[3], r[4], r[5])
        elif r[0] == "event":
            p = nf.encode_event(buf, p, r[1], r[2], r[3], r[4])
        else:
            p = nf.encode_env(buf, p, r[1], list(r[2]))
        assert p > 0
        prev = r
    return bytes(buf[:p])


def _same_value(name, got, want):
    if want is None:
        return got is None
    spec = [f for f in vocab.EPOCH_FIELDS + vocab.EPOCH_EXT_FIELDS if f[0] == name][0]
    if spec[4]:  # logarithmic: within half a step of 2.2 %
        return abs(got - want) <= 0.011 * want + spec[4] * 0.011
    return abs(got - want) <= 0.5 / spec[2] + 1e-9


@settings(max_examples=80, deadline=None)
@given(records)
def test_round_trip_any_sequence(recs):
    d = nf.decode(_encode(recs))
    assert d["skipped"] == [] and len(d["records"]) == len(recs)
    for want, got in zip(recs, d["records"], strict=True):
        if want[0] == "beats":
            assert got["t_off_ms"] == got["t_ms"][0]
        assert got["type"] == want[0]
        if want[0] == "epoch":
            assert got["t_off_s"] == want[1] and got["flags"] == want[3]
            for spec, v in zip(vocab.EPOCH_FIELDS, want[2], strict=True):
                name = spec[0]
                if name == "lamp_level":
                    assert got[name] == (None if v is None else [float(x) for x in v])
                else:
                    assert _same_value(name, got[name], v)
            assert _same_value("resp_per_min", got["resp_per_min"], want[4])
            assert _same_value("clip_temp_c", got["clip_temp_c"], want[5])
        elif want[0] == "beats":
            res = want[5]
            times = [want[1]]
            for ibi in want[2]:
                times.append(times[-1] + ibi)
            assert got["n"] == want[4] and len(got["t_ms"]) == want[4]
            for g, w in zip(got["t_ms"], times, strict=True):
                assert abs(g - w) <= res // 2  # no accumulated error
            steps = zip(got["t_ms"], got["t_ms"][1:], strict=False)
            assert got["ibi_ms"] == [b - a for a, b in steps]
            if res == 1:
                assert got["ibi_ms"] == want[2]
            if want[3] is None or not any(want[3]):
                assert got["pwa"] is None
            else:
                step = 1 << max(0, max(want[3]).bit_length() - 5)
                for g, w in zip(got["pwa"], want[3], strict=True):
                    assert (g is None) == (w == 0)
                    if w:
                        assert abs(g - w) <= step // 2 or (w < step and g == step)
        elif want[0] == "event":
            assert got["kind"] == want[2] and got["values"] == want[3]
            assert got["text"] == (want[4] or "").encode()[:64].decode("utf-8", "replace")
        else:
            for spec, v in zip(vocab.ENV_FIELDS, want[2], strict=True):
                assert _same_value(spec[0], got[spec[0]], v)


@settings(max_examples=120, deadline=None)
@given(records, st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 7)), max_size=8),
       st.integers(0, 10 ** 6), st.booleans())
def test_damage_never_crashes_nor_yields_bad_records(recs, flips, cut, truncate):
    clean = _encode(recs)
    data = bytearray(clean)
    for pos, bit in flips:
        if data:
            data[pos % len(data)] ^= 1 << bit
    if truncate and data:
        data = data[:cut % len(data)]
    d = nf.decode(bytes(data))
    for r in d["records"]:
        off = r["offset"]
        n = nf.check_frame(data, off, len(data))
        assert n >= 0  # every record returned has a valid CRC at its offset
    # Records untouched by the damage are all recovered.
    damaged = {pos % len(clean) for pos, _b in flips} if clean else set()
    end = len(data)
    for r in nf.decode(clean)["records"]:
        off = r["offset"]
        stop = off + 7 + nf.check_frame(clean, off, len(clean))
        if stop <= end and not any(off <= p < stop for p in damaged):
            assert off in {x["offset"] for x in d["records"]}


any_value = st.none() | st.floats(allow_nan=True, allow_infinity=True, width=32) | st.integers(
    -(2 ** 40), 2 ** 40)


@settings(max_examples=150, deadline=None)
@given(st.lists(any_value, min_size=13, max_size=13))
def test_values_never_made_up(vals):
    buf = bytearray(256)
    p = nf.encode_epoch(buf, 0, 0, vals + [None], 0)
    rec = nf.decode(b"NSNF" + bytes(buf[:p]))["records"][0]
    lost = False
    for spec, v in zip(vocab.EPOCH_FIELDS, vals, strict=False):
        got = rec[spec[0]]
        if got is None:
            lost = lost or v is not None
        else:
            assert v is not None and _same_value(spec[0], got, float(v))
    assert bool(rec["flags"] & vocab.FLAG_INVALID_VALUE) == lost
