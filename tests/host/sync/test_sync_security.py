"""Security of the TCP path: no command works without the HMAC handshake, nothing leaks, a
wrong key is refused, pairing and Wi-Fi setup are refused over TCP."""

from __future__ import annotations

import os
import socket
import struct

import pytest
from nightstand.sync.client import Client, DeviceError
from nightstand.sync.transport import TCPTransport
from nsdev.core import proto
from synchelpers import random_nights, start_tcp_device

SECRET = os.urandom(32)
NIGHTS = random_nights(2, 3000, seed=9)


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    d = start_tcp_device(tmp_path_factory.mktemp("sec"), NIGHTS, secret=SECRET)
    yield d
    d.stop()


class Raw:
    """A hand-written client: sends frames, collects every byte the device returns."""

    def __init__(self, port: int) -> None:
        self.s = socket.create_connection(("127.0.0.1", port), timeout=2)
        self.p = proto.FrameParser()
        self.received = bytearray()
        self.seq = 0

    def ask(self, cmd: int, payload: bytes = b"") -> tuple[int, bytes]:
        self.seq += 1
        self.s.sendall(proto.encode_frame(cmd, self.seq, payload))
        while True:
            f = self.p.next()
            if f is not None:
                assert f[1] == self.seq
                return f[0], bytes(f[2])
            data = self.s.recv(4096)
            if not data:
                raise ConnectionError("closed")
            self.received += data
            self.p.feed(data)

    def close(self) -> None:
        self.s.close()


PAYLOADS = {
    proto.CMD_HELLO: b"",
    proto.CMD_PAIR: bytes(32),
    proto.CMD_STATUS: b"",
    proto.CMD_LIST_NIGHTS: struct.pack("<H", 0),
    proto.CMD_READ_NIGHT: struct.pack("<IIH", 1, 0, 1000),
    proto.CMD_NIGHT_CRC: struct.pack("<I", 1),
    proto.CMD_ACK_NIGHT: struct.pack("<III", 1, 0, 0),
    proto.CMD_SET_TIME: struct.pack("<Ii", 1767225600, 0),
    proto.CMD_GET_CONFIG: b"",
    proto.CMD_SET_CONFIG: b'{"bedtime":"01:00"}',
    proto.CMD_SET_WIFI: proto.pack_str8("evil") + proto.pack_str8("password1"),
    proto.CMD_REPL: b"",
    0x30: b"",
}


def _no_leak(data: bytes) -> None:
    assert SECRET not in data
    assert b"ns-test-0001" not in data
    for night in NIGHTS.values():
        assert night[:16] not in data


def test_every_command_refused_without_auth(device):
    raw = Raw(device.port)
    for cmd, payload in PAYLOADS.items():
        ftype, body = raw.ask(cmd, payload)
        assert ftype == proto.ERROR, proto.COMMAND_NAMES.get(cmd)
        assert proto.unpack_error(body)[0] == proto.ERR_AUTH_REQUIRED
    raw.close()
    _no_leak(bytes(raw.received))
    assert device.acks() == [] and not (device.state_dir / "time.json").exists()
    assert not (device.state_dir / "wifi.json").exists()
    assert (device.state_dir / "secret.bin").read_bytes() == SECRET


def test_wrong_key_refused_then_disconnected(device):
    raw = Raw(device.port)
    for _ in range(3):
        ftype, body = raw.ask(proto.CMD_AUTH_CHALLENGE, os.urandom(16))
        assert ftype == proto.CMD_AUTH_CHALLENGE | proto.REPLY and len(body) == 18
        ftype, body = raw.ask(proto.CMD_AUTH, os.urandom(32))
        assert ftype == proto.ERROR and proto.unpack_error(body)[0] == proto.ERR_AUTH_FAILED
    with pytest.raises((ConnectionError, OSError)):
        raw.ask(proto.CMD_STATUS)  # three failures end the session
    raw.close()
    _no_leak(bytes(raw.received))


def test_auth_without_challenge_and_replayed_proof_fail(device):
    raw = Raw(device.port)
    ftype, body = raw.ask(proto.CMD_AUTH, bytes(32))
    assert proto.unpack_error(body)[0] == proto.ERR_AUTH_FAILED
    host_nonce = os.urandom(16)
    _t, ch = raw.ask(proto.CMD_AUTH_CHALLENGE, host_nonce)
    good = proto.host_proof(SECRET, ch[2:], host_nonce)
    ftype, _ = raw.ask(proto.CMD_AUTH, good)
    assert ftype == proto.CMD_AUTH | proto.REPLY
    raw.close()
    # The same proof on a new session (new device nonce) is refused.
    raw = Raw(device.port)
    raw.ask(proto.CMD_AUTH_CHALLENGE, host_nonce)
    ftype, body = raw.ask(proto.CMD_AUTH, good)
    assert ftype == proto.ERROR and proto.unpack_error(body)[0] == proto.ERR_AUTH_FAILED
    raw.close()


def test_client_with_wrong_key_gets_auth_failed(device):
    c = Client(lambda: TCPTransport("127.0.0.1", device.port), secrets=lambda: [os.urandom(32)],
               timeout_s=1.0)
    with pytest.raises(DeviceError) as e:
        c.connect()
    assert e.value.code == proto.ERR_AUTH_FAILED
    c.close()


def test_pairing_and_wifi_refused_over_tcp_even_when_authenticated(device):
    with Client(lambda: TCPTransport("127.0.0.1", device.port), secrets=lambda: [SECRET],
                timeout_s=1.0) as c:
        c.connect()
        for fn in (lambda: c.pair(os.urandom(32)), lambda: c.set_wifi("x", "password1"),
                   lambda: c.call(proto.CMD_REPL)):
            with pytest.raises(DeviceError) as e:
                fn()
            assert e.value.code == proto.ERR_USB_ONLY
    assert (device.state_dir / "secret.bin").read_bytes() == SECRET
    assert not (device.state_dir / "wifi.json").exists()


def _serve_frames(frames: bytes, transport: str) -> list[tuple[int, int, bytes]]:
    """Run one device session (CPython asyncio) on the given request bytes; -> reply frames."""
    import asyncio

    from mp_fakedevice import FakeDevice
    from nsdev import sync

    class Writer:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, b) -> None:
            self.data += bytes(b)

        async def drain(self) -> None:
            pass

    async def run(dev) -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(frames)
        reader.feed_eof()
        w = Writer()
        await sync.serve(reader, w, dev, transport)
        return bytes(w.data)

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        dev = FakeDevice(d, d)
        out = asyncio.run(run(dev))
        paired = dev.get_secret() is not None
    p = proto.FrameParser()
    p.feed(out)
    got = []
    while (f := p.next()) is not None:
        got.append((f[0], f[1], bytes(f[2])))
    return got + [(-1, 0, b"paired" if paired else b"")]


def test_no_secure_random_source_refuses_pairing_and_challenges(monkeypatch):
    """Issue 15 item 13: without os.urandom the device must not fall back to a guessable
    generator: PAIR and AUTH_CHALLENGE get ERR_NO_ENTROPY and no key is stored."""
    monkeypatch.delattr(os, "urandom")
    got = _serve_frames(proto.encode_frame(proto.CMD_PAIR, 1, bytes(range(32))), "usb")
    assert got[0][0] == proto.ERROR
    assert proto.unpack_error(got[0][2])[0] == proto.ERR_NO_ENTROPY
    assert got[-1][2] == b""  # not paired
    got = _serve_frames(proto.encode_frame(proto.CMD_AUTH_CHALLENGE, 2, bytes(16)), "tcp")
    code, cmd, text = proto.unpack_error(got[0][2])
    assert got[0][0] == proto.ERROR and code == proto.ERR_NO_ENTROPY and "random" in text


def test_set_config_parts_in_order_resent_or_out_of_order():
    import json
    import struct

    data = json.dumps({"label": "y" * 400, "bedtime": "21:15"}).encode()
    n = proto.CONFIG_PART_DATA
    parts = [struct.pack("<HH", o, len(data)) + data[o:o + n] for o in range(0, len(data), n)]
    assert len(parts) == 2

    def frame(i: int, payload: bytes) -> bytes:
        f = proto.encode_frame(proto.CMD_SET_CONFIG_PART, i, payload)
        assert len(f) <= proto.MAX_REQUEST_FRAME
        return f

    # In order, the first part sent twice (its reply lost): applied once, answered as SET_CONFIG.
    got = _serve_frames(frame(1, parts[0]) + frame(2, parts[0]) + frame(3, parts[1])
                        + proto.encode_frame(proto.CMD_GET_CONFIG, 4), "usb")
    assert [g[0] for g in got[:3]] == [proto.CMD_SET_CONFIG_PART | proto.REPLY] * 3
    cfg = json.loads(got[3][2])
    assert cfg["label"] == "y" * 400 and cfg["bedtime"] == "21:15"
    # The second part first (e.g. after a reconnect): ERR_RANGE, nothing applied.
    got = _serve_frames(frame(1, parts[1]), "usb")
    assert got[0][0] == proto.ERROR and proto.unpack_error(got[0][2])[0] == proto.ERR_RANGE
    # A total beyond the device's 1024-byte limit.
    got = _serve_frames(frame(1, struct.pack("<HH", 0, 2000) + b"{}"), "usb")
    assert proto.unpack_error(got[0][2])[0] == proto.ERR_RANGE


def test_status_with_a_full_log_ring_still_fits_one_frame(monkeypatch):
    import json

    from mp_fakedevice import FakeDevice

    lines = [f"[ppg] OSError: [Errno 19] ENODEV: MAX30102@0x57: I2C read failed (no ACK?) #{i:02d}"
             for i in range(40)]
    monkeypatch.setattr(FakeDevice, "status", lambda self: {"uptime_s": 5, "log": list(lines)})
    got = _serve_frames(proto.encode_frame(proto.CMD_STATUS, 1), "usb")
    assert got[0][0] == proto.CMD_STATUS | proto.REPLY
    st = json.loads(got[0][2])
    assert st["uptime_s"] == 5 and st["log"] and st["log"][-1] == lines[-1]  # newest kept
    assert len(st["log"]) < len(lines)
