"""Fault injection between client and device (corrupted, dropped and delayed bytes, connections
cut mid-transfer): every night arrives exactly once and bit-identical, nobody crashes."""

from __future__ import annotations

import pytest
from nightstand.store import Store
from nightstand.sync.client import Client
from nightstand.sync.engine import sync_device
from nightstand.sync.transport import TCPTransport
from synchelpers import Faults, TCPRelay, random_nights, start_tcp_device

SECRET = bytes(range(32, 64))


@pytest.mark.parametrize("seed", [1])
def test_sync_through_faulty_link(tmp_path, seed):
    # Milder than the benchmark (1% corrupted bytes, tests/bench/bench_sync.py) to stay fast.
    nights = random_nights(3, 5000, seed=seed)
    dev = start_tcp_device(tmp_path / "dev", nights, secret=SECRET)
    faults = Faults(corrupt_p=0.003, drop_p=0.0005, delay_p=0.02, delay_s=0.01,
                    cut_every_bytes=6000, seed=seed)
    relay = TCPRelay(dev.port, faults)
    store = Store(tmp_path / "db" / "n.sqlite3")
    try:
        client = Client(lambda: TCPTransport("127.0.0.1", relay.port), secrets=lambda: [SECRET],
                        timeout_s=0.5, retries=40, backoff_s=0.0, min_timeout_s=0.01)
        rep = None
        for _run in range(5):  # a run may give up on a very bad stretch; the next one resumes
            try:
                rep = sync_device(client, store, "relay", set_time=False)
                break
            except Exception:  # noqa: BLE001 - resumed by the next run, as a user would
                client._drop()
        assert rep is not None
        client.close()
    finally:
        relay.close()
        err = dev.stop()
    rows = store.nights()
    assert sorted(r["night_id"] for r in rows) == sorted(nights)  # exactly once
    for r in rows:
        assert store.raw_bytes(r["id"]) == nights[r["night_id"]]  # bit-identical
    assert set(dev.acks()) == set(nights)
    assert faults.counts["corrupted"] > 20 and faults.counts["cuts"] >= 2
    assert "Traceback" not in err
    store.close()
