# Sync protocol framing, parser resync, payload helpers and HMAC (CPython and MicroPython).
from nsdev.core import proto

RUN_UNDER_MICROPYTHON = True


def _frames(parser, data):
    out = []
    pos = 0
    while True:
        pos += parser.feed(memoryview(data)[pos:])
        got = False
        while True:
            f = parser.next()
            if f is None:
                break
            got = True
            out.append((f[0], f[1], bytes(f[2])))
        if pos >= len(data) and not got:
            return out


def test_roundtrip_simple():
    f = proto.encode_frame(proto.CMD_HELLO, 513, b"abc")
    assert f[:2] == b"\xa5\x5a"
    assert f[2] == proto.CMD_HELLO and f[3] == 1 and f[4] == 2 and f[5] == 3 and f[6] == 0
    assert len(f) == 3 + proto.OVERHEAD
    p = proto.FrameParser()
    assert _frames(p, f) == [(proto.CMD_HELLO, 513, b"abc")]


def test_crc_known_value():
    # CRC-32/ISO-HDLC check value of "123456789" is 0xCBF43926.
    assert proto.crc32(b"123456789") == 0xCBF43926


def test_garbage_between_frames_and_split_feeds():
    a = proto.encode_frame(1, 1, b"x" * 100)
    b = proto.encode_frame(2, 2, b"")
    c = proto.encode_frame(3, 3, bytes(range(256)) * 8)
    stream = b"\x00\xa5garbage\xa5\x5a" + a + b"\xa5\x5a\xff\xff" + b + b"zz" + c
    p = proto.FrameParser()
    got = []
    for i in range(0, len(stream), 7):
        got += _frames(p, stream[i:i + 7])
    assert [g[0] for g in got] == [1, 2, 3]
    assert got[2][2] == bytes(range(256)) * 8


def test_corrupted_frame_skipped_next_found():
    a = bytearray(proto.encode_frame(5, 7, b"hello world"))
    a[10] ^= 0x40
    b = proto.encode_frame(6, 8, b"ok")
    p = proto.FrameParser()
    assert _frames(p, bytes(a) + b) == [(6, 8, b"ok")]
    assert p.crc_errors == 1


def test_frame_inside_bogus_length_is_found():
    # A damaged length makes the parser wait; the real frame inside is found once the CRC fails.
    bogus = b"\xa5\x5a\x01\x00\x00\x00\x04"  # claims 1024 bytes
    real = proto.encode_frame(9, 9, b"inside")
    tail = bytes(1100)
    p = proto.FrameParser()
    assert _frames(p, bogus + real + tail) == [(9, 9, b"inside")]


def test_max_payload_and_too_long():
    big = bytes(proto.MAX_PAYLOAD)
    p = proto.FrameParser()
    assert _frames(p, proto.encode_frame(1, 0, big))[0][2] == big
    try:
        proto.encode_frame(1, 0, big + b"x")
        raise AssertionError("expected ValueError")
    except ValueError:
        pass


def test_finish_frame_in_place():
    buf = bytearray(proto.MAX_FRAME)
    buf[proto.HEADER_LEN:proto.HEADER_LEN + 4] = b"data"
    n = proto.finish_frame(buf, 0x87, 65535, 4)
    assert bytes(buf[:n]) == proto.encode_frame(0x87, 65535, b"data")


def test_escape_detection():
    p = proto.FrameParser()
    _frames(p, b"\x03\x03\x03\x03")
    assert not p.escape_seen
    _frames(p, b"\x03")
    assert p.escape_seen


def test_escape_not_triggered_inside_frames():
    p = proto.FrameParser()
    _frames(p, proto.encode_frame(1, 0, b"\x03" * 40))
    assert not p.escape_seen


def test_many_frames_long_stream():
    p = proto.FrameParser()
    stream = b"".join(
        proto.encode_frame(i & 0x7F, i, bytes((i & 0xFF,)) * (i % 50)) for i in range(300)
    )
    got = _frames(p, stream)
    assert len(got) == 300
    assert got[299] == (299 & 0x7F, 299, bytes((299 & 0xFF,)) * (299 % 50))


def test_hello_roundtrip():
    p = proto.pack_hello_reply("ns-0001", "0.1.0", proto.CAP_NIGHTS, proto.AUTH_REQUIRED, 1)
    h = proto.unpack_hello_reply(p)
    assert h["device_id"] == "ns-0001" and h["firmware_version"] == "0.1.0"
    assert h["protocol_version"] == proto.PROTOCOL_VERSION and h["auth_state"] == 1


def test_error_roundtrip():
    code, cmd, text = proto.unpack_error(proto.pack_error(proto.ERR_RANGE, 7, "offset past end"))
    assert (code, cmd, text) == (proto.ERR_RANGE, 7, "offset past end")


def test_hmac_rfc4231_case1():
    key = b"\x0b" * 20
    mac = proto.hmac_sha256(key, b"Hi There")
    assert mac == bytes.fromhex(
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")


def test_hmac_rfc4231_case2_and_long_key():
    assert proto.hmac_sha256(b"Jefe", b"what do ya want for nothing?") == bytes.fromhex(
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    # Case 6: 131-byte key (longer than the block) is hashed first.
    msg = b"Test Using Larger Than Block-Size Key - Hash Key First"
    mac = proto.hmac_sha256(b"\xaa" * 131, msg)
    assert mac == bytes.fromhex(
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_compare_digest():
    assert proto.compare_digest(b"abc", b"abc")
    assert not proto.compare_digest(b"abc", b"abd")
    assert not proto.compare_digest(b"abc", b"ab")


def _lcg(seed):
    state = [seed & 0x7FFFFFFF]

    def rnd(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n

    return rnd


def check_stream_property(frames, garbage, corrupt_at, splits):
    """Encode frames with garbage between them, corrupt bytes, feed in pieces.

    The parser must return exactly the frames whose bytes were not touched, in order.
    """
    stream = bytearray()
    spans = []
    for i, (t, s, payload) in enumerate(frames):
        stream += garbage[i % len(garbage)] if garbage else b""
        start = len(stream)
        stream += proto.encode_frame(t, s, payload)
        spans.append((start, len(stream)))
    hit = set()
    for pos, xor in corrupt_at:
        if stream and pos % len(stream) not in hit:  # each byte damaged at most once
            hit.add(pos % len(stream))
            stream[pos % len(stream)] ^= xor or 1
    expect = [frames[i] for i, (a, b) in enumerate(spans)
              if not any(a <= h < b for h in hit)]
    stream += bytes(proto.MAX_FRAME)  # flush: zeros never start a frame
    p = proto.FrameParser()
    got = []
    pos = 0
    k = 0
    while pos < len(stream):
        step = splits[k % len(splits)] if splits else len(stream)
        k += 1
        piece = memoryview(stream)[pos:pos + max(1, step)]
        done = 0
        while done < len(piece):
            done += p.feed(piece[done:])
            while True:
                f = p.next()
                if f is None:
                    break
                got.append((f[0], f[1], bytes(f[2])))
        pos += len(piece)
    assert got == expect, (len(got), len(expect))


def test_seeded_fuzz_parser():
    rnd = _lcg(12345)
    for _case in range(60):
        frames = []
        for _ in range(rnd(8)):
            n = rnd(300) if rnd(10) else rnd(proto.MAX_PAYLOAD + 1)
            frames.append((rnd(256), rnd(65536), bytes(rnd(256) for _ in range(n))))
        garbage = [bytes((0xA5, 0x5A, 3)[rnd(3)] if rnd(2) else rnd(256) for _ in range(rnd(20)))
                   for _ in range(3)]
        corrupt = [(rnd(20000), rnd(256)) for _ in range(rnd(4))]
        splits = [1 + rnd(3000) for _ in range(5)]
        check_stream_property(frames, garbage, corrupt, splits)


# ---- per-frame authentication after AUTH (issue 15 item 3) ------------------------------------

_SECRET = bytes(range(1, 33))
_ND = bytes(range(16))
_NH = bytes(range(100, 116))


def _pair():
    """(host FrameAuth, device FrameAuth) of one session."""
    h2d, d2h = proto.session_keys(_SECRET, _ND, _NH)
    return proto.FrameAuth(h2d, d2h), proto.FrameAuth(d2h, h2d)


def _recv(auth, frame):
    f = _frames(proto.FrameParser(), frame)
    assert len(f) == 1
    out = auth.open(f[0][0], f[0][1], f[0][2])
    return None if out is None else bytes(out)


def test_session_keys_are_hmac_over_both_nonces_with_distinct_labels():
    h2d, d2h = proto.session_keys(_SECRET, _ND, _NH)
    assert h2d == proto.hmac_sha256(_SECRET, b"nightstand-session-v2 host->device" + _ND + _NH)
    assert d2h == proto.hmac_sha256(_SECRET, b"nightstand-session-v2 device->host" + _ND + _NH)
    assert h2d != d2h and h2d != proto.host_proof(_SECRET, _ND, _NH)


def test_authenticated_frames_round_trip_both_ways():
    host, dev = _pair()
    for i in range(5):
        data = bytes((i,)) * (i * 100)
        f = proto.encode_frame(proto.CMD_STATUS, i, data, host)
        assert len(f) == len(data) + proto.OVERHEAD + proto.AUTH_TRAILER_LEN
        assert _recv(dev, f) == data
        g = proto.encode_frame(proto.CMD_STATUS | proto.REPLY, i, data, dev)
        assert _recv(host, g) == data
    assert host.send_ctr == 5 and dev.recv_ctr == 5
    big = bytes(proto.MAX_AUTH_PAYLOAD)
    assert _recv(dev, proto.encode_frame(1, 0, big, host)) == big
    try:
        proto.encode_frame(1, 0, big + b"x", host)
        raise AssertionError("oversized authenticated payload accepted")
    except ValueError:
        pass


def test_altered_frame_with_a_fixed_crc_is_rejected():
    for pos in range(2, 7 + 10 + proto.AUTH_TRAILER_LEN):  # header, data, counter and tag
        host, dev = _pair()
        f = bytearray(proto.encode_frame(proto.CMD_ACK_NIGHT, 7, b"0123456789", host))
        f[pos] ^= 0x01
        end = len(f) - 4
        c = proto.crc32(memoryview(f)[2:end])
        f[end:] = bytes((c & 0xFF, (c >> 8) & 0xFF, (c >> 16) & 0xFF, c >> 24))
        got = _frames(proto.FrameParser(), bytes(f))
        if got:  # a length change makes it no frame at all; otherwise the MAC must fail
            assert dev.open(got[0][0], got[0][1], got[0][2]) is None, pos


def test_replayed_reordered_reflected_and_spliced_frames_are_rejected():
    host, dev = _pair()
    f1 = proto.encode_frame(proto.CMD_STATUS, 1, b"a", host)
    f2 = proto.encode_frame(proto.CMD_STATUS, 2, b"b", host)
    f3 = proto.encode_frame(proto.CMD_STATUS, 3, b"c", host)
    assert _recv(dev, f2) == b"b"
    assert _recv(dev, f1) is None  # reordered (older counter)
    assert _recv(dev, f2) is None  # replayed
    assert _recv(dev, f3) == b"c"  # a gap is allowed (TCP never loses; a relay dropping is
    # seen by the host as a lost reply)
    reply = proto.encode_frame(proto.CMD_STATUS | proto.REPLY, 3, b"c", dev)
    assert _recv(dev, reply) is None  # reflected back at its sender
    plain = proto.encode_frame(proto.CMD_ACK_NIGHT, 4, b"x" * 20)
    assert _recv(dev, plain) is None  # an unauthenticated frame injected after AUTH
    other_host, _ = _pair()
    h2d, d2h = proto.session_keys(_SECRET, _ND, bytes(16))  # another session's nonces
    other_dev = proto.FrameAuth(d2h, h2d)
    assert _recv(other_dev, proto.encode_frame(proto.CMD_STATUS, 1, b"a", other_host)) is None
