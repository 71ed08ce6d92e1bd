"""Night file format v3 (and v2 nights): round trip, CRC, unknown encoding, epoch + beat stream in
one record, resync after damage, typed events, the worked example of docs/night-format.md (dual
test)."""

from array import array

from nsdev.core import nightfile as nf
from nsdev.core import vocab

RUN_UNDER_MICROPYTHON = True

START = 1767225600
EPOCH = [60.2, 45.25, None, 1200, 97.5, 0.9, 0.12, -3.25, 45.0, 1013.2, 120000, 0.5, 0.2,
         (0.1, 0.0, 1.0)]
IBI = [1000, 980, 1020, 1500, 700, 65535, 1]
PWA = [1200, 0, 1300, 5, 100000, 1200, 1250, 1190]


def _night(res_ms=1):
    buf = bytearray(2048)
    mark = array("i", [0, 0, 0])
    p = nf.write_magic(buf)
    p = nf.encode_header(buf, p, "dev-1", 7, START, -18000, "0.1.0", 30, "ppg=max30102")
    p = nf.encode_epoch(buf, p, 30, EPOCH, vocab.FLAG_LAMP_ON, mark)
    p = nf.append_beats(buf, mark, 30, 30123, IBI, PWA, 8, res_ms)
    p = nf.encode_event(buf, p, 40000, vocab.EV_AROUSAL, (14000, -600), "onset")
    p = nf.encode_env(buf, p, 41000, [21.0, None, 1000.0, None, 1.5, None])
    p = nf.encode_beats(buf, p, 50000, IBI, None, 8, res_ms)
    p = nf.encode_night_end(buf, p, 28800, 1, 1, 16, 0, vocab.END_SCHEDULE)
    return bytes(buf[:p])


def _close(a, b, rel):
    return abs(a - b) <= rel * abs(b) + 1e-9


def test_varint_zigzag():
    buf = bytearray(12)
    for v in (0, 1, 127, 128, 300, 16383, 16384, 2 ** 35, -1, -64, -65, -(2 ** 33)):
        end = nf.put_svarint(buf, 0, v)
        z, p = nf.get_uvarint(buf, 0, end)
        assert p == end and nf.unzigzag(z) == v
    assert nf.put_uvarint(buf, 0, 300) == 2 and buf[0] == 0xAC and buf[1] == 0x02


def test_bit_codes_round_trip():
    buf = bytearray(64)
    bw = nf.BitWriter(buf, 0)
    vals = [(0, 0), (1, 0), (5, 0), (29, 4), (1000, 9), (2 ** 31, 3), (70000, 10)]
    for z, k in vals:
        bw.expg(z, k)
    bw.rice(7, 2)
    bw.rice(10 ** 6, 0)  # escape
    end = bw.close()
    br = nf.BitReader(buf, 0, end)
    for z, k in vals:
        assert br.expg(k) == z
    assert br.rice(2) == 7 and br.rice(0) == 10 ** 6


def test_epoch_time_code():
    for t in (0, 30, 28800, -30, 7, -7, 45, 10 ** 6 + 1):
        assert nf.epoch_t_off_s(nf.epoch_time_code(t)) == t
    assert nf.epoch_time_code(28800) == 1920  # index 960: a 2-byte svarint


def test_round_trip_all_types():
    d = nf.decode(_night())
    assert d["skipped"] == []
    h = d["header"]
    assert h["device_id"] == "dev-1" and h["night_id"] == 7 and h["utc_offset_s"] == -18000
    assert h["start_unix_s"] == START and h["epoch_s"] == 30 and h["format_version"] == 4
    ep, beats, ev, env, beats2, end = d["records"]
    assert ep["offset"] == beats["offset"]  # one record, two dicts
    assert ep["unix_s"] == START + 30 and ep["flags"] == vocab.FLAG_LAMP_ON
    assert ep["hr_bpm"] == 60.2 and ep["rmssd_ms"] == 45.25 and ep["sdnn_ms"] is None
    assert ep["temp_c"] == -3.25 and ep["pressure_hpa"] == 1013.2 and ep["spo2_pct"] == 97.5
    assert _close(ep["gas_ohm"], 120000, 0.011) and _close(ep["pwa_mean"], 1200, 0.011)
    assert _close(ep["lux"], 0.5, 0.011) and _close(ep["mel_edi_lx"], 0.2, 0.011)
    assert ep["lamp_level"] == [0.1, 0.0, 1.0]
    assert beats["type"] == "beats" and beats["ibi_ms"] == IBI and beats["n"] == 8
    assert beats["t_off_ms"] == 30123 and beats["unix_ms"] == START * 1000 + 30123
    assert beats["t_ms"][0] == 30123 and beats["t_ms"][-1] == 30123 + sum(IBI)
    assert beats["pwa"][1] is None  # 0 = unknown
    step = 1 << 12  # 100000 >> 4 = 6250, rounded down to a power of two
    for i, want in enumerate(PWA):
        got = beats["pwa"][i]
        if want:
            assert abs(got - want) <= step // 2 or (want < step and got == step)
    assert ev["kind_name"] == "arousal" and ev["values"] == [14000, -600] and ev["text"] == "onset"
    assert ev["unix_ms"] == START * 1000 + 40000
    assert env["temp_c"] == 21.0 and env["rh_pct"] is None and _close(env["lux"], 1.5, 0.011)
    assert env["pressure_hpa"] == 1000.0 and env["invalid"] == 0
    assert beats2["t_off_ms"] == 50000 and beats2["ibi_ms"] == IBI and beats2["pwa"] is None
    assert end["type"] == "night_end" and end["n_beats"] == 16


def test_coarser_beat_times_do_not_accumulate_error():
    d = nf.decode(_night(4))
    assert d["skipped"] == []
    beats = d["records"][1]
    t = 30123
    for i in range(8):
        assert abs(beats["t_ms"][i] - t) <= 2  # each beat time within res/2
        if i < 7:
            t += IBI[i]
    assert beats["t_ms"][1] - beats["t_ms"][0] == beats["ibi_ms"][0]


def test_invalid_values_become_unknown_and_flagged():
    buf = bytearray(200)
    vals = [float("nan"), -5.0, 5000.0, None, None, None, None, -41.0, None, 200.0, None, -1.0,
            None, (2.0,)]
    p = nf.encode_epoch(buf, 0, 0, vals, 0)
    rec = nf.decode(b"NSNF" + bytes(buf[:p]))["records"][0]
    for name in ("hr_bpm", "rmssd_ms", "sdnn_ms", "temp_c", "pressure_hpa", "lux", "lamp_level"):
        assert rec[name] is None
    assert rec["flags"] & vocab.FLAG_INVALID_VALUE
    p = nf.encode_env(buf, 0, 0, [float("inf"), 50.0, None, None, None, None])
    rec = nf.decode(b"NSNF" + bytes(buf[:p]))["records"][0]
    assert rec["temp_c"] is None and rec["rh_pct"] == 50.0 and rec["invalid"] == 1


def test_field_ranges_edges():
    spec = vocab.EPOCH_FIELDS[7]  # temp_c: -40..164.75 in 0.05
    assert nf.field_code(-40.0, spec) == 0 and nf.field_code(-40.1, spec) == -1
    assert nf.field_value(nf.field_code(164.75, spec), spec) == 164.75
    assert nf.field_code(165.0, spec) == -1 and nf.field_code(None, spec) is None
    lux = vocab.EPOCH_FIELDS[11]
    assert nf.field_code(0.0, lux) == 0 and nf.field_value(0, lux) == 0.0
    for x in (0.001, 0.05, 3.0, 500.0, 120000.0):
        assert _close(nf.field_value(nf.field_code(x, lux), lux), x, 0.011)


def test_append_beats_failure_keeps_the_epoch():
    buf = bytearray(60)
    mark = array("i", [0, 0, 0])
    p = nf.encode_epoch(buf, 0, 60, EPOCH, 0, mark)
    want = bytes(buf[:p])
    many = [1000 + 37 * (i % 5) for i in range(100)]
    assert nf.append_beats(buf, mark, 60, 60500, many, None, 100) == -1  # no room
    assert bytes(buf[:p]) == want
    try:
        nf.append_beats(buf, mark, 60, 60500, [0], None, 2)
        raise AssertionError("bad IBI accepted")
    except ValueError:
        pass
    assert bytes(buf[:p]) == want
    d = nf.decode(b"NSNF" + bytes(buf[:p]))
    assert [r["type"] for r in d["records"]] == ["epoch"] and d["skipped"] == []


def test_buffer_full_returns_minus_one():
    buf = bytearray(20)
    assert nf.encode_epoch(buf, 0, 0, EPOCH, 0) == -1
    assert nf.encode_beats(buf, 0, 0, IBI, PWA, 8) == -1


def test_record_time_beats():
    data = _night()
    seen = []
    for off, rtype, n in nf.iter_frames(data, 4):
        seen.append(nf.record_time_beats(rtype, data, off + 3, off + 3 + n))
    assert seen == [(None, 0), (30, 8), (40, 0), (41, 0), (50, 8), (28800, 0)]


def test_crc_detects_flip_and_resyncs():
    data = bytearray(_night())
    clean = nf.decode(data)["records"]
    off = clean[0]["offset"]  # flip a bit inside the epoch + beats record
    data[off + 5] ^= 0x10
    d = nf.decode(data)
    types = [r["type"] for r in d["records"]]
    assert types == ["event", "env", "beats", "night_end"]
    assert d["skipped"][0][0] == off and d["skipped"][0][2] == "crc mismatch"
    assert d["skipped"][0][1] == clean[2]["offset"]


def test_truncated_tail_reported():
    data = _night()
    d = nf.decode(data[:-3])
    assert [r["type"] for r in d["records"]] == ["epoch", "beats", "event", "env", "beats"]
    assert d["skipped"][-1][2] == "truncated" and d["skipped"][-1][1] == len(data) - 3


def test_garbage_between_records_and_missing_header():
    data = _night()
    recs = nf.decode(data)["records"]
    cut = recs[0]["offset"]
    damaged = data[:cut] + b"\x07\x05\x00garbage" + data[cut:]
    d = nf.decode(damaged)
    assert len(d["records"]) == 6 and d["skipped"][0][1] - d["skipped"][0][0] == 10
    d = nf.decode(b"\x00" * 9 + data[recs[0]["offset"]:])
    assert d["header"] is None and len(d["records"]) == 6 and "unix_s" not in d["records"][0]


def test_unknown_and_version_1_types_skipped_by_length():
    data = _night()
    extra = b""
    for t in (99, 2):
        buf = bytearray(64)
        buf[0] = t
        extra += bytes(buf[:nf.finish(buf, 0, 3 + 4)])
    d = nf.decode(data + extra)
    assert d["skipped"][-2][2] == "bad payload: unknown record type 99"
    assert d["skipped"][-1][2] == "bad payload: format version 1 record type 2"
    assert len(d["records"]) == 6


# docs/night-format.md, section 7 (the worked example): these exact bytes.
EXAMPLE_HEX = (
    "4e534e46"
    "011800" "04036e733105a081b7950da03805302e312e301e03707067" "f463ce1a"
    "071500" "04a20410933a5aa3e307d339f55f46d3949e045da0" "faf52c67"
    "030800" "90bf050702020000" "e74d6f53"
)


def _example():
    buf = bytearray(256)
    mark = array("i", [0, 0, 0])
    p = nf.write_magic(buf)
    p = nf.encode_header(buf, p, "ns1", 5, 1767301200, 3600, "0.1.0", 30, "ppg")
    vals = [61.5, None, None, None, None, None, None, 20.25, None, None, None, 0.5, None,
            (0.05,)]
    p = nf.encode_epoch(buf, p, 30, vals, vocab.FLAG_LAMP_ON, mark)
    p = nf.append_beats(buf, mark, 30, 30500, [1000, 1012, 988], [992, 960, 1000, 0], 4, 4)
    p = nf.encode_event(buf, p, 45000, vocab.EV_BUTTON, (1, 0))
    return bytes(buf[:p])


def test_worked_example():
    data = _example()
    assert data.hex() == EXAMPLE_HEX.replace(" ", "")
    d = nf.decode(data)
    ep, beats, ev = d["records"]
    assert ep["hr_bpm"] == 61.5 and ep["temp_c"] == 20.25 and ep["lamp_level"] == [0.05]
    assert beats["t_ms"] == [30500, 31500, 32512, 33500] and beats["ibi_ms"] == [1000, 1012, 988]
    assert beats["pwa"] == [992, 960, 992, None]
    assert ev["values"] == [1, 0]


def test_epoch_extension_fields():
    # resp_per_min rides in the extension section: with a beat stream attached after it, seen
    # by the boot scan, absent (None) in epochs without it, which stay byte-identical
    buf = bytearray(512)
    mark = array("i", [0, 0, 0])
    p = nf.encode_epoch(buf, 0, 30, EPOCH, vocab.FLAG_LAMP_ON, mark, (14.3,))
    p = nf.append_beats(buf, mark, 30, 30123, IBI, PWA, 8, 4)
    q = nf.encode_epoch(buf, p, 60, EPOCH, vocab.FLAG_LAMP_ON, None, (None,))
    r = nf.encode_epoch(buf, q, 90, EPOCH, vocab.FLAG_LAMP_ON)
    assert nf.record_time_beats(vocab.REC_EPOCH, buf, 3, p - 4) == (30, 8)
    d = nf.decode(b"NSNF" + bytes(buf[:r]))
    assert d["skipped"] == []
    recs = [x for x in d["records"] if x["type"] == "epoch"]
    assert abs(recs[0]["resp_per_min"] - 14.3) < 0.051
    assert recs[0]["flags"] == vocab.FLAG_LAMP_ON  # the format's own bit is not reported
    assert recs[1]["resp_per_min"] is None and recs[2]["resp_per_min"] is None
    assert bytes(buf[p + 3:q]) != b"" and q - p == r - q  # unknown: no extension bytes
    assert recs[0]["hr_bpm"] == recs[1]["hr_bpm"]
    assert [x["n"] for x in d["records"] if x["type"] == "beats"] == [8]


def test_epoch_extension_from_a_newer_writer_is_a_clear_error():
    buf = bytearray(256)
    p = nf.encode_epoch(buf, 0, 30, EPOCH, 0, None, (14.3,))
    # rewrite the extension count (4 bits after the fields) as one more than this reader knows
    d = nf.decode(b"NSNF" + bytes(buf[:p]))
    assert d["skipped"] == []
    n = len(vocab.EPOCH_EXT_FIELDS)
    saved = vocab.EPOCH_EXT_FIELDS
    try:
        vocab.EPOCH_EXT_FIELDS = saved[:n - 1]  # an older reader
        d = nf.decode(b"NSNF" + bytes(buf[:p]))
    finally:
        vocab.EPOCH_EXT_FIELDS = saved
    assert d["records"] == [] and "newer format" in d["skipped"][0][2]


# A night written by format version 2 firmware (before the typed events): its pre-sleep summary
# and lamp phase were text in LAMP_CHANGE events. It still decodes, record for record.
V2_NIGHT_HEX = (
    "4e534e46012b00020c6e732d76326669787475726507a0d5ca960da03805302e312e301e0d6d617833303130"
    "32203530487a71d5451207190000fffc1092302901a4d278b74784a670b7a71316c4692032004a79bb170311"
    "00c0bb0106000b7068617365206e69676874eeff8c18030b00c0b8020102e0da01c80600524603a707050004"
    "00064740f7bb3605080c00b0e4039c00b0238634138d007634d46603340090bf0506002e687970657261726f"
    "7573616c20302e342068722036352e3020626173652036302e30206465636c696e6520352e30251cf5fe0606"
    "007802030400005dbf71db"
)


def test_a_version_2_night_still_decodes():
    d = nf.decode(bytes.fromhex(V2_NIGHT_HEX))
    assert d["skipped"] == []
    h = d["header"]
    assert h["format_version"] == 2 and h["device_id"] == "ns-v2fixture" and h["night_id"] == 7
    types = [r["type"] for r in d["records"]]
    assert types == ["epoch", "event", "event", "epoch", "beats", "event", "night_end"]
    ep, ev1, ev2 = d["records"][0], d["records"][1], d["records"][2]
    assert ep["hr_bpm"] == 58.2 and ep["flags"] == vocab.FLAG_LAMP_ON
    assert ev1["kind"] == vocab.EV_LAMP_CHANGE and ev1["text"] == "phase night"
    assert ev2["kind_name"] == "arousal" and ev2["fields"] == {"duration_ms": 14000,
                                                               "strength_permille": 420}
    ibi = d["records"][4]["ibi_ms"]  # stored at 4 ms resolution
    want = (1030, 1050, 1010)
    assert len(ibi) == 3 and all(abs(ibi[i] - want[i]) <= 4 for i in range(3))
    assert d["records"][-1]["n_beats"] == 4


# A night written by format version 3 firmware (typed events, one epoch extension field:
# resp_per_min). It decodes unchanged; the version-4 field clip_temp_c is unknown in it.
V3_NIGHT_HEX = (
    "4e534e46012b00030c6e732d76336669787475726509a081b7950da03805302e312e301e0d6d617833303130"
    "32203530487ae76d9d3b07250004fffc000804247c0a50692a5e2da1e12d5bddeabb88f9aa48190344e73eac"
    "10e59ca4800094614ab7030d0090bf051004b8069a0ab2091d007bb037f7030800e0ce0511020604001208e5"
    "39070e000881fe47c0a50692a5e2da1e080062466c31060700b4010202040000d9fe5342"
)


def test_a_version_3_night_still_decodes():
    d = nf.decode(bytes.fromhex(V3_NIGHT_HEX))
    assert d["skipped"] == []
    h = d["header"]
    assert h["format_version"] == 3 and h["device_id"] == "ns-v3fixture" and h["night_id"] == 9
    types = [r["type"] for r in d["records"]]
    assert types == ["epoch", "beats", "event", "event", "epoch", "night_end"]
    ep, ev = d["records"][0], d["records"][2]
    assert ep["hr_bpm"] == 57.4 and ep["temp_c"] == 20.25 and ep["flags"] == vocab.FLAG_LAMP_ON
    assert abs(ep["resp_per_min"] - 13.7) < 0.051
    assert ep["clip_temp_c"] is None and d["records"][4]["clip_temp_c"] is None
    assert d["records"][4]["resp_per_min"] is None
    assert ev["fields"] == {"score": 0.412, "evening_hr_bpm": 65.3, "baseline_hr_bpm": 60.1,
                            "decline_bpm_30min": -1.5}
    assert d["records"][1]["ibi_ms"] == [1040, 1060, 1020]


def test_clip_temperature_is_stored_at_the_chips_resolution():
    # vocab: 1/16 degC = the MAX30102's TFRAC step, so a reading comes back exactly
    buf = bytearray(256)
    p = nf.write_magic(buf)
    temps = (-20.0, -0.0625, 0.0, 31.4375, 33.0625, 107.9375)
    for i, t in enumerate(temps):
        p = nf.encode_epoch(buf, p, 30 * i, EPOCH, 0, None, (None, t))
    p = nf.encode_epoch(buf, p, 300, EPOCH, 0, None, (None, 108.0))  # beyond the field
    d = nf.decode(bytes(buf[:p]))
    eps = [r for r in d["records"] if r["type"] == "epoch"]
    assert [e["clip_temp_c"] for e in eps[:-1]] == list(temps)
    assert [e["resp_per_min"] for e in eps] == [None] * 7
    assert eps[-1]["clip_temp_c"] is None and eps[-1]["flags"] & vocab.FLAG_INVALID_VALUE


def test_other_versions_are_refused():
    for version in (1, vocab.FORMAT_VERSION + 1):
        buf = bytearray(64)
        buf[0] = vocab.REC_HEADER
        p = nf.put_uvarint(buf, 3, version)
        try:
            nf.decode_payload(vocab.REC_HEADER, buf, 3, p)
        except ValueError as e:
            assert "unsupported format version %d" % version in str(e)
        else:
            raise AssertionError("version %d accepted" % version)


def test_typed_events_carry_named_scaled_fields():
    buf = bytearray(128)
    unk = vocab.EV_UNKNOWN
    p = nf.write_magic(buf)
    p = nf.encode_event(buf, p, 1000, vocab.EV_PRESLEEP, (412, 653, 601, -15))
    p = nf.encode_event(buf, p, 2000, vocab.EV_PRESLEEP, (unk, 653, unk, unk))
    p = nf.encode_event(buf, p, 3000, vocab.EV_LAMP_PHASE, (vocab.PHASE_NIGHT,
                                                           vocab.PHASE_WIND_DOWN))
    d = nf.decode(bytes(buf[:p]))
    assert d["skipped"] == []
    a, b, c = d["records"]
    assert a["kind_name"] == "presleep" and a["text"] == ""
    assert a["fields"] == {"score": 0.412, "evening_hr_bpm": 65.3, "baseline_hr_bpm": 60.1,
                           "decline_bpm_30min": -1.5}
    assert b["fields"] == {"score": None, "evening_hr_bpm": 65.3, "baseline_hr_bpm": None,
                           "decline_bpm_30min": None}
    assert c["kind_name"] == "lamp_phase"
    assert c["fields"] == {"phase": vocab.PHASE_NIGHT, "from_phase": vocab.PHASE_WIND_DOWN}
