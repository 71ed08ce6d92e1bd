"""Property tests of the night format (CPython/hypothesis): round trip, damage never crashes."""

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
    st.integers(0, 0x7FFF),
)
beats = st.integers(1, 80).flatmap(lambda n: st.tuples(
    st.just("beats"), st.integers(-10 ** 6, 10 ** 8),
    st.lists(st.integers(1, 65535), min_size=n - 1, max_size=n - 1),
    opt(st.lists(st.integers(0, 300000), min_size=n, max_size=n)), st.just(n)))
event = st.tuples(st.just("event"), st.integers(-10 ** 8, 10 ** 8), st.integers(1, 200),
                  st.lists(st.integers(-(2 ** 40), 2 ** 40), max_size=4),
                  opt(st.text(max_size=20)))
env = st.tuples(st.just("env"), st.integers(-10 ** 8, 10 ** 8),
                st.tuples(*(opt(st.integers(0, 1000)) for _ in range(6))))
records = st.lists(st.one_of(epoch, beats, event, env), max_size=12)


def _encode(recs):
    buf = bytearray(64 * 1024)
    p = nf.write_magic(buf)
    p = nf.encode_header(buf, p, "d", 1, 1767225600, 0, "v", 30, "")
    for r in recs:
        if r[0] == "epoch":
            p = nf.encode_epoch(buf, p, r[1], list(r[2]), r[3])
        elif r[0] == "beats":
            p = nf.encode_beats(buf, p, r[1], r[2], r[3], r[4])
        elif r[0] == "event":
            p = nf.encode_event(buf, p, r[1], r[2], r[3], r[4])
        else:
            p = nf.encode_env(buf, p, r[1], list(r[2]))
        assert p > 0
    return bytes(buf[:p])


@settings(max_examples=80, deadline=None)
@given(records)
def test_round_trip_any_sequence(recs):
    d = nf.decode(_encode(recs))
    assert d["skipped"] == [] and len(d["records"]) == len(recs)
    for want, got in zip(recs, d["records"], strict=True):
        assert got["type"] == want[0]
        if want[0] == "epoch":
            assert got["t_off_s"] == want[1] and got["flags"] == want[3]
            for (name, _s, _sg, _u), v in zip(vocab.EPOCH_FIELDS, want[2], strict=True):
                if name == "lamp_level":
                    assert got[name] == (None if v is None else [float(x) for x in v])
                else:
                    assert got[name] == v
        elif want[0] == "beats":
            assert got["t_off_ms"] == want[1] and got["ibi_ms"] == want[2]
            if want[3] is None or not any(want[3]):
                assert got["pwa"] is None
            else:
                step = max(1, max(want[3]) >> 5)
                for g, w in zip(got["pwa"], want[3], strict=True):
                    assert (g is None) == (w == 0)
                    if w:
                        assert abs(g - w) <= step
        elif want[0] == "event":
            assert got["kind"] == want[2] and got["values"] == want[3]
            assert got["text"] == (want[4] or "").encode()[:64].decode("utf-8", "replace")
        else:
            assert [got[f[0]] for f in vocab.ENV_FIELDS] == list(want[2])


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
