"""Sync against the whole firmware on the simulated board: pair over the (virtual) USB cable,
sync over TCP on 127.0.0.1 with the pairing key, refuse an unauthenticated client, and store
the night byte-for-byte as the device wrote it."""

from __future__ import annotations

import json
import socket

import pytest
from nightstand import cli
from nightstand.sim import runner
from nightstand.sim.scenario import validate
from nightstand.sim.session import morning_usb_config, simulate, wait_until_closed
from nightstand.store import Store
from nightstand.sync.client import Client, DeviceError
from nightstand.sync.transport import TCPTransport
from nsdev.core import proto

SCENARIO = {
    "format": 1, "name": "test: short night", "seed": 5,
    "start": "2026-01-15T22:40:00", "utc_offset_s": 0, "duration_s": 3300,
    "bedtime": "22:45", "lights_out": "22:50", "wake": "23:30",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    out = tmp_path_factory.mktemp("board")
    simulate(validate(SCENARIO), out, quiet=True)
    port = _free_port()
    cfg_file = out / "flash" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.update(wifi=True, tcp_port=port)
    cfg_file.write_text(json.dumps(cfg))
    morning_usb_config(out)
    sim = json.loads((out / "sim.json").read_text())
    sim["start_unix_s"] += 1800  # plugged in half an hour after the end of the scenario
    runner.write_sim_config(out, sim)
    with runner.start_usb(out) as dev:
        yield out, dev, port


def test_pair_over_usb_then_sync_over_tcp(board, tmp_path):
    out, dev, port = board
    db = tmp_path / "store.sqlite3"
    assert cli.main(["pair", "--port", dev.port, "--db", str(db)]) == 0
    wait_until_closed(dev.port)
    assert cli.main(["sync", "--host", "127.0.0.1", "--tcp-port", str(port),
                     "--db", str(db)]) == 0
    with Store(db) as store:
        rows = store.nights()
        assert len(rows) == 1
        stored = store.raw_bytes(rows[0]["id"])
    (on_flash,) = sorted((out / "flash" / "data" / "nights").glob("*.ns"))
    assert stored == on_flash.read_bytes()  # acknowledged only after this copy was committed
    # A second sync over USB finds nothing new and duplicates nothing.
    assert cli.main(["sync", "--port", dev.port, "--db", str(db)]) == 0
    with Store(db) as store:
        assert len(store.nights()) == 1


def test_unauthenticated_tcp_client_gets_only_errors(board):
    _out, _dev, port = board
    with Client(lambda: TCPTransport("127.0.0.1", port), secrets=lambda: [],
                timeout_s=2.0) as client:
        with pytest.raises(DeviceError) as err:
            client.connect()
            client.list_nights()
    assert err.value.code in (proto.ERR_NOT_PAIRED, proto.ERR_AUTH_REQUIRED,
                              proto.ERR_AUTH_FAILED)
