"""Night file format: round trip, CRC, unknown encoding, resync after damage (dual test)."""

from nsdev.core import nightfile as nf
from nsdev.core import vocab

RUN_UNDER_MICROPYTHON = True

START = 1767225600
EPOCH = [60.2, 45.1, None, 1200, 97.5, 0.9, 0.12, -3.25, 45.0, 1013.2, 120000, 0.5, 0.2,
         (0.1, 0.0, 1.0)]
IBI = [1000, 980, 1020, 1500, 700, 65535, 1]
PWA = [1200, 0, 1300, 5, 100000, 1200, 1250, 1190]


def _night():
    buf = bytearray(2048)
    p = nf.write_magic(buf)
    p = nf.encode_header(buf, p, "dev-1", 7, START, -18000, "0.1.0", 30, "ppg=max30102")
    p = nf.encode_epoch(buf, p, 30, EPOCH, vocab.FLAG_LAMP_ON)
    p = nf.encode_beats(buf, p, 30123, IBI, PWA, 8)
    p = nf.encode_event(buf, p, 40000, vocab.EV_AROUSAL, (14000, -600), "onset")
    p = nf.encode_env(buf, p, 41000, [21.0, None, 1000.0, None, 1.5, None])
    p = nf.encode_night_end(buf, p, 28800, 1, 1, 8, 0, vocab.END_SCHEDULE)
    return bytes(buf[:p])


def test_varint_zigzag():
    buf = bytearray(12)
    for v in (0, 1, 127, 128, 300, 16383, 16384, 2 ** 35, -1, -64, -65, -(2 ** 33)):
        end = nf.put_svarint(buf, 0, v)
        z, p = nf.get_uvarint(buf, 0, end)
        assert p == end and nf.unzigzag(z) == v
    assert nf.put_uvarint(buf, 0, 300) == 2 and buf[0] == 0xAC and buf[1] == 0x02


def test_round_trip_all_types():
    d = nf.decode(_night())
    assert d["skipped"] == []
    h = d["header"]
    assert h["device_id"] == "dev-1" and h["night_id"] == 7 and h["utc_offset_s"] == -18000
    assert h["start_unix_s"] == START and h["epoch_s"] == 30
    ep, beats, ev, env, end = d["records"]
    assert ep["unix_s"] == START + 30 and ep["flags"] == vocab.FLAG_LAMP_ON
    assert ep["hr_bpm"] == 60.2 and ep["sdnn_ms"] is None and ep["temp_c"] == -3.25
    assert ep["gas_ohm"] == 120000 and ep["lamp_level"] == [0.1, 0.0, 1.0]
    assert beats["ibi_ms"] == IBI and beats["n"] == 8
    assert beats["t_ms"][0] == 30123 and beats["t_ms"][-1] == 30123 + sum(IBI)
    assert beats["pwa"][1] is None  # 0 = unknown
    step = 100000 >> 5
    for i, want in enumerate(PWA):
        got = beats["pwa"][i]
        if want:
            assert abs(got - want) <= step // 2 + 1 or (want < step and got == step)
    assert ev["kind_name"] == "arousal" and ev["values"] == [14000, -600] and ev["text"] == "onset"
    assert ev["unix_ms"] == START * 1000 + 40000
    assert env["temp_c"] == 21.0 and env["rh_pct"] is None and env["lux"] == 1.5
    assert end["type"] == "night_end" and end["n_beats"] == 8


def test_invalid_values_become_unknown_and_flagged():
    buf = bytearray(200)
    vals = [float("nan"), -5.0, None, None, None, None, None, None, None, None, None, None,
            None, (2.0,)]
    p = nf.encode_epoch(buf, 0, 0, vals, 0)
    rec = nf.decode(b"NSNF" + bytes(buf[:p]))["records"][0]
    assert rec["hr_bpm"] is None and rec["rmssd_ms"] is None and rec["lamp_level"] is None
    assert rec["flags"] & vocab.FLAG_INVALID_VALUE


def test_buffer_full_returns_minus_one():
    buf = bytearray(20)
    assert nf.encode_epoch(buf, 0, 0, EPOCH, 0) == -1
    assert nf.encode_beats(buf, 0, 0, IBI, PWA, 8) == -1


def test_crc_detects_flip_and_resyncs():
    data = bytearray(_night())
    clean = nf.decode(data)["records"]
    off = clean[1]["offset"]  # flip a bit inside the beats record
    data[off + 5] ^= 0x10
    d = nf.decode(data)
    types = [r["type"] for r in d["records"]]
    assert types == ["epoch", "event", "env", "night_end"]
    assert d["skipped"][0][0] == off and d["skipped"][0][2] == "crc mismatch"
    assert d["skipped"][0][1] == clean[2]["offset"]


def test_truncated_tail_reported():
    data = _night()
    d = nf.decode(data[:-3])
    assert [r["type"] for r in d["records"]] == ["epoch", "beats", "event", "env"]
    assert d["skipped"][-1][2] == "truncated" and d["skipped"][-1][1] == len(data) - 3


def test_garbage_between_records_and_missing_header():
    data = _night()
    recs = nf.decode(data)["records"]
    cut = recs[0]["offset"]
    damaged = data[:cut] + b"\x02\x05\x00garbage" + data[cut:]
    d = nf.decode(damaged)
    assert len(d["records"]) == 5 and d["skipped"][0][1] - d["skipped"][0][0] == 10
    d = nf.decode(b"\x00" * 9 + data[recs[0]["offset"]:])
    assert d["header"] is None and len(d["records"]) == 5 and "unix_s" not in d["records"][0]


def test_unknown_type_skipped_by_length():
    buf = bytearray(64)
    buf[0] = 99
    p = nf._finish(buf, 0, 3 + 4)
    data = _night()
    d = nf.decode(data + bytes(buf[:p]))
    assert d["skipped"][-1][2].startswith("bad payload")
    assert len(d["records"]) == 5
