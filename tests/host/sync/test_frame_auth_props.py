"""Per-frame authentication (proto.FrameAuth) as properties: any frame round-trips; any change to
a sealed frame that still parses (CRC recomputed) is refused; counters only move forward."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from nsdev.core import proto


def _pair(secret: bytes, nd: bytes, nh: bytes) -> tuple[proto.FrameAuth, proto.FrameAuth]:
    h2d, d2h = proto.session_keys(secret, nd, nh)
    return proto.FrameAuth(h2d, d2h), proto.FrameAuth(d2h, h2d)


def _parse(frame: bytes) -> list[tuple[int, int, bytes]]:
    p = proto.FrameParser()
    p.feed(frame)
    out = []
    while (f := p.next()) is not None:
        out.append((f[0], f[1], bytes(f[2])))
    return out


KEYS = st.tuples(st.binary(min_size=32, max_size=32), st.binary(min_size=16, max_size=16),
                 st.binary(min_size=16, max_size=16))


@settings(max_examples=150, deadline=None)
@given(KEYS, st.integers(0, 255), st.integers(0, 65535),
       st.binary(max_size=proto.MAX_AUTH_PAYLOAD), st.data())
def test_sealed_frames_open_and_any_change_is_refused(keys, ftype, seq, data, draw):
    host, dev = _pair(*keys)
    frame = proto.encode_frame(ftype, seq, data, host)
    (got,) = _parse(frame)
    opened = dev.open(got[0], got[1], got[2])
    assert opened is not None and bytes(opened) == data
    # Change 1-3 bytes after the magic, fix the CRC: parsed or not, never accepted.
    host2, dev2 = _pair(*keys)
    bad = bytearray(proto.encode_frame(ftype, seq, data, host2))
    for _ in range(draw.draw(st.integers(1, 3))):
        i = draw.draw(st.integers(2, len(bad) - 5))
        bad[i] ^= draw.draw(st.integers(1, 255))
    n = bad[5] | bad[6] << 8
    if 7 + n + 4 == len(bad):
        c = proto.crc32(memoryview(bad)[2:7 + n])
        bad[7 + n:] = c.to_bytes(4, "little")
    for f in _parse(bytes(bad)):
        if bytes(bad) != proto.encode_frame(ftype, seq, data, _pair(*keys)[0]):
            assert dev2.open(f[0], f[1], f[2]) is None


@settings(max_examples=50, deadline=None)
@given(KEYS, st.lists(st.integers(0, 9), min_size=1, max_size=12))
def test_only_frames_newer_than_the_last_accepted_open(keys, order):
    host, dev = _pair(*keys)
    frames = [_parse(proto.encode_frame(1, i, bytes([i]), host))[0] for i in range(10)]
    last = 0
    for i in order:
        ok = dev.open(*frames[i]) is not None
        assert ok == (i + 1 > last)
        if ok:
            last = i + 1
