"""The serial path: the device server under MicroPython on a pseudo-terminal (its console),
the host CLI through pyserial: pair, status, sync, nights; binary-safe console; REPL escape."""

from __future__ import annotations

import json
import os
import time

import pytest
from nightstand import cli
from nightstand.commands import sync as cmd_sync
from nightstand.errors import UserError
from nightstand.sync.client import Client
from nightstand.sync.transport import SerialTransport
from nsdev.core import proto
from synchelpers import Faults, PtyBridge, make_real_night, random_nights, start_usb_device


def _run(argv: list[str]) -> int:
    parser = cli.build_parser(cmd_sync.COMMANDS)
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


@pytest.fixture
def usb(tmp_path):
    nights = random_nights(2, 3000, seed=5)
    nights[3] = make_real_night(tmp_path / "rec")
    d = start_usb_device(tmp_path / "dev", nights)
    bridge = PtyBridge(d.master_fd, Faults())
    d.nights = nights  # type: ignore[attr-defined]
    d.bridge = bridge  # type: ignore[attr-defined]
    yield d
    bridge.close()
    d.stop()


def test_pair_status_sync_nights_over_serial(usb, tmp_path, capsys):
    db = str(tmp_path / "store" / "n.sqlite3")
    port = usb.bridge.path
    assert _run(["pair", "--port", port, "--db", db]) == 0
    secret = (usb.state_dir / "secret.bin").read_bytes()
    assert len(secret) == 32
    assert _run(["status", "--port", port, "--db", db, "--json"]) == 0
    st = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert st["device_id"] == "ns-test-0001" and st["nights_unsynced"] == 3
    assert _run(["sync", "--port", port, "--db", db, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(rep["downloaded"]) == [1, 2, 3]
    assert _run(["nights", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "ns-test-0001" in out and out.count("\n") == 4
    assert sorted(usb.acks()) == [1, 2, 3]
    # The host keeps the key it paired with (private store): Wi-Fi sync can authenticate.
    from nightstand.store import Store

    with Store(db) as store:
        assert store.secrets_for() == [secret]


def test_wifi_credentials_and_ctrl_c_bytes_are_data(usb):
    with Client(lambda: SerialTransport(usb.bridge.path), timeout_s=1.0) as c:
        hello = c.connect()
        assert hello["auth_state"] == proto.AUTH_NONE and hello["caps"] & proto.CAP_PAIR
        c.set_wifi("home\x03net", "pass\x03\x03\x03\x03\x03word")  # 0x03 inside frames
        assert c.status()["uptime_s"] == 1234
    assert json.loads((usb.state_dir / "wifi.json").read_text()) == [
        "home\x03net", "pass\x03\x03\x03\x03\x03word"]
    assert usb.proc.poll() is None


def test_repl_escape_ends_protocol(usb):
    with Client(lambda: SerialTransport(usb.bridge.path), timeout_s=1.0) as c:
        c.connect()
    fd = os.open(usb.bridge.path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, b"\x03" * 5)
        for _ in range(200):
            if usb.proc.poll() is not None:
                break
            time.sleep(0.01)
    finally:
        os.close(fd)
    assert "END repl" in usb.stop()


def test_no_device_and_wrong_port_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(cmd_sync, "list_serial_ports", lambda: [])
    with pytest.raises(UserError, match="no device found"):
        _run(["sync", "--db", str(tmp_path / "n.sqlite3")])
    with pytest.raises(UserError, match="cannot open serial port"):
        _run(["sync", "--port", str(tmp_path / "nope"), "--db", str(tmp_path / "n.sqlite3")])
    with pytest.raises(UserError, match="only over USB|no answer|cannot connect"):
        _run(["status", "--host", "127.0.0.1", "--tcp-port", "1", "--db",
              str(tmp_path / "n.sqlite3"), "--timeout", "0.2"])
