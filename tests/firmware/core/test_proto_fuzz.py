# Hypothesis fuzzing of the shared frame parser (host and device use the same nsdev.core.proto).
from hypothesis import given, settings
from hypothesis import strategies as st
from nsdev.core import proto
from test_proto import check_stream_property

frame_st = st.tuples(
    st.integers(0, 255), st.integers(0, 65535), st.binary(max_size=proto.MAX_PAYLOAD)
)


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(frame_st, max_size=6),
    garbage=st.lists(st.binary(max_size=40), max_size=3),
    corrupt=st.lists(st.tuples(st.integers(0, 20000), st.integers(1, 255)), max_size=4),
    splits=st.lists(st.integers(1, 5000), max_size=5),
)
def test_parser_recovers_every_intact_frame(frames, garbage, corrupt, splits):
    check_stream_property(frames, garbage, corrupt, splits)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=6000))
def test_parser_never_crashes_on_noise(noise):
    p = proto.FrameParser()
    pos = 0
    while pos < len(noise):
        pos += p.feed(noise[pos:])
        while p.next() is not None:
            pass
    assert p.pending() <= len(p.buf)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_hmac_matches_cpython(key, msg):
    import hashlib
    import hmac

    assert proto.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()
