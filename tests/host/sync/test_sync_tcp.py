"""Sync end to end: the device server under MicroPython on 127.0.0.1, the host client and store."""

from __future__ import annotations

import json
import os
import stat
import struct
import zlib

import pytest
from nightstand.store import SCHEMA_VERSION, Store
from nightstand.sync.client import Client, DeviceError
from nightstand.sync.engine import sync_device
from nightstand.sync.transport import TCPTransport
from nsdev.core import proto
from synchelpers import make_real_night, random_nights, start_tcp_device

SECRET = bytes(range(32))


@pytest.fixture
def device(tmp_path):
    nights = random_nights(3, 6000, seed=3)
    nights[4] = make_real_night(tmp_path / "rec")
    nights[5] = b"still recording " * 64
    d = start_tcp_device(tmp_path / "dev", nights, open_ids=(5,), secret=SECRET)
    d.nights = nights  # type: ignore[attr-defined]
    yield d
    d.stop()


def _client(d, secret=SECRET, **kw) -> Client:
    return Client(lambda: TCPTransport("127.0.0.1", d.port), secrets=lambda: [secret],
                  timeout_s=1.0, **kw)


def test_sync_stores_every_night_once_and_acks_after_commit(device, tmp_path):
    store = Store(tmp_path / "db" / "n.sqlite3")
    with _client(device) as c:
        rep = sync_device(c, store, "test", set_time=True)
    assert sorted(rep.downloaded) == [1, 2, 3, 4]
    assert sorted(device.acks()) == [1, 2, 3, 4]
    rows = {r["night_id"]: r for r in store.nights()}
    assert 5 not in rows and rep.skipped_open == 1
    for nid, data in device.nights.items():
        if nid == 5:
            continue
        assert store.raw_bytes(rows[nid]["id"]) == data
        assert rows[nid]["crc32"] == zlib.crc32(data) and rows[nid]["acked"] == 1
    # The real night is decoded into the tables; random bytes are kept raw with nothing decoded.
    assert rows[4]["epochs"] == 20 and rows[4]["beats"] == 80 and rows[4]["events"] >= 1
    assert rows[1]["epochs"] == 0
    # The clock was set (UTC + local offset).
    unix_s, offset_s = json.loads((device.state_dir / "time.json").read_text())
    assert unix_s > 1767225600 and offset_s % 60 == 0
    # A second run downloads nothing and acks nothing new.
    with _client(device) as c:
        rep2 = sync_device(c, store, "test", set_time=False)
    assert rep2.downloaded == [] and rep2.already == 4 and rep2.reacked == []
    assert sorted(device.acks()) == [1, 2, 3, 4]
    store.close()


def test_store_is_private_and_versioned(tmp_path):
    store = Store(tmp_path / "db" / "n.sqlite3")
    assert stat.S_IMODE(os.stat(tmp_path / "db").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "db" / "n.sqlite3").st_mode) == 0o600
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()
    Store(tmp_path / "db" / "n.sqlite3").close()  # reopening migrates nothing, keeps data


def test_resume_from_partial_file_and_lost_ack(device, tmp_path):
    store = Store(tmp_path / "db" / "n.sqlite3")
    dev_id = "ns-test-0001"
    # A broken earlier transfer left 1000 bytes of night 2.
    store.partial_path(dev_id, 2).write_bytes(device.nights[2][:1000])
    # Night 1 was stored earlier but its ack never reached the device.
    part = store.partial_path(dev_id, 1)
    part.write_bytes(device.nights[1])
    store.commit_night(dev_id, 1, part, zlib.crc32(device.nights[1]))
    with _client(device) as c:
        rep = sync_device(c, store, "test", set_time=False)
    assert rep.reacked == [1] and sorted(rep.downloaded) == [2, 3, 4]
    assert rep.resumed_bytes == 1000
    assert rep.bytes == sum(len(device.nights[i]) for i in (2, 3, 4)) - 1000
    rows = {r["night_id"]: r for r in store.nights()}
    assert store.raw_bytes(rows[2]["id"]) == device.nights[2]
    assert sorted(device.acks()) == [1, 2, 3, 4]


def test_stale_partial_file_is_redownloaded(device, tmp_path):
    store = Store(tmp_path / "db" / "n.sqlite3")
    store.partial_path("ns-test-0001", 3).write_bytes(b"\x00" * 500)  # not the device's bytes
    with _client(device) as c:
        sync_device(c, store, "test", set_time=False)
    rows = {r["night_id"]: r for r in store.nights()}
    assert store.raw_bytes(rows[3]["id"]) == device.nights[3]


def test_config_time_status_and_errors(device):
    with _client(device) as c:
        hello = c.connect()
        assert hello["device_id"] == "ns-test-0001" and hello["auth_state"] == proto.AUTH_DONE
        assert not hello["caps"] & proto.CAP_PAIR  # not offered over TCP
        assert c.get_config()["bedtime"] == "23:00"
        c.set_config({"bedtime": "22:30"})
        assert c.get_config()["bedtime"] == "22:30"
        with pytest.raises(DeviceError) as e:
            c.set_config({"bedtime": "late"})
        assert e.value.code == proto.ERR_CONFIG_INVALID and "HH:MM" in e.value.text
        with pytest.raises(DeviceError) as e:
            c.call(proto.CMD_SET_CONFIG, b"[1,2")
        assert e.value.code == proto.ERR_BAD_REQUEST
        with pytest.raises(DeviceError) as e:
            c.set_time(1000, 0)
        assert e.value.code == proto.ERR_TIME_INVALID
        with pytest.raises(DeviceError) as e:
            c.set_time(1767225600, 15 * 3600)
        assert e.value.code == proto.ERR_TIME_INVALID
        st = c.status()
        assert st["uptime_s"] == 1234 and st["protocol_version"] == proto.PROTOCOL_VERSION
        nights = {n.night_id: n for n in c.list_nights()}
        assert nights[5].open and not nights[1].open
        with pytest.raises(DeviceError) as e:
            c.read_chunk(99, 0, 10)
        assert e.value.code == proto.ERR_NO_SUCH_NIGHT
        with pytest.raises(DeviceError) as e:
            c.read_chunk(1, 10**6, 10)
        assert e.value.code == proto.ERR_RANGE
        size, crc = c.night_crc(1)
        with pytest.raises(DeviceError) as e:
            c.ack_night(1, size, crc ^ 1)
        assert e.value.code == proto.ERR_MISMATCH
        s5, c5 = c.night_crc(5)
        with pytest.raises(DeviceError) as e:
            c.ack_night(5, s5, c5)  # still recording
        assert e.value.code == proto.ERR_MISMATCH
        with pytest.raises(DeviceError) as e:
            c.call(0x33)
        assert e.value.code == proto.ERR_UNKNOWN_COMMAND
        with pytest.raises(DeviceError) as e:
            c.call(proto.CMD_READ_NIGHT, struct.pack("<I", 1))  # truncated request
        assert e.value.code == proto.ERR_BAD_REQUEST
        # The session survives every error.
        assert c.status()["uptime_s"] == 1234
    assert device.acks() == []


def test_busy_while_another_session_syncs(device):
    with _client(device) as a, _client(device, retries=2) as b:
        a.connect()
        a.status()
        with pytest.raises(DeviceError) as e:
            b.connect()
        assert e.value.code == proto.ERR_BUSY
