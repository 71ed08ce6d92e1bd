"""Sync benchmark: fault tolerance, serial throughput, TCP speed with and without the per-frame
MAC (and its CPU cost per frame under MicroPython), refusal of unauthenticated clients. The
device side is the real nsdev.sync server under MicroPython with a test device.

    .venv/bin/python tests/bench/bench_sync.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "host" / "sync"))

from nightstand.store import Store  # noqa: E402
from nightstand.sync.client import Client, DeviceError  # noqa: E402
from nightstand.sync.engine import sync_device  # noqa: E402
from nightstand.sync.transport import SerialTransport, TCPTransport  # noqa: E402
from nsdev.core import proto  # noqa: E402
from synchelpers import (  # noqa: E402
    Faults,
    PtyBridge,
    TCPRelay,
    _mp_env,
    random_nights,
    start_tcp_device,
    start_usb_device,
)

SECRET = os.urandom(32)


def faults_bench(tmp: Path, n_nights: int, size: int) -> None:
    nights = random_nights(n_nights, size, seed=11)
    dev = start_tcp_device(tmp / "dev", nights, secret=SECRET)
    faults = Faults(corrupt_p=0.01, cut_every_bytes=20000, seed=11)
    relay = TCPRelay(dev.port, faults)
    store = Store(tmp / "store" / "n.sqlite3")
    client = Client(lambda: TCPTransport("127.0.0.1", relay.port), secrets=lambda: [SECRET],
                    timeout_s=0.5, retries=40, backoff_s=0.0, min_timeout_s=0.01)
    t0 = time.monotonic()
    host_crashes = runs = 0
    while runs < 20:  # a run that gives up is resumed by the next, as a user would
        runs += 1
        try:
            sync_device(client, store, "relay", set_time=False)
            break
        except Exception:  # noqa: BLE001 - counted: the next run resumes
            host_crashes += 1
            client._drop()
    elapsed = time.monotonic() - t0
    client.close()
    relay.close()
    err = dev.stop()
    rows = store.nights()
    ids = [r["night_id"] for r in rows]
    identical = sum(store.raw_bytes(r["id"]) == nights[r["night_id"]] for r in rows)
    print(f"faults: {n_nights} nights x ~{size // 1000} KB, 1% of bytes corrupted "
          f"({faults.counts['corrupted']} bytes), {faults.counts['cuts']} disconnects "
          f"(~every 20 KB of traffic)")
    print(f"  arrived {len(set(ids))}/{n_nights}, bit-identical {identical}, "
          f"duplicates {len(ids) - len(set(ids))}, acked {len(set(dev.acks()))}, "
          f"sync runs {runs} (gave up and resumed: {host_crashes}), "
          f"device crashes {int('Traceback' in err or dev.proc.returncode not in (None, -15))}, "
          f"{elapsed:.1f} s, retries {client.stats.retries}")
    store.close()


def serial_bench(tmp: Path, size: int) -> None:
    baud = 115200
    nights = {1: random_nights(1, size, seed=12)[1]}
    dev = start_usb_device(tmp / "usb", nights)
    bridge = PtyBridge(dev.master_fd, Faults(rate_bytes_per_s=baud / 10))
    try:
        with Client(lambda: SerialTransport(bridge.path, baud), timeout_s=1.0) as c:
            c.connect()
            (night,) = c.list_nights()
            buf = bytearray(night.size)
            t0 = time.monotonic()

            def sink(off: int, data: bytes) -> None:
                buf[off:off + len(data)] = data

            c.download(1, night.size, sink)
            elapsed = time.monotonic() - t0
        assert bytes(buf) == nights[1]
    finally:
        bridge.close()
        dev.stop()
    rate = night.size / elapsed
    print(f"serial @ {baud} baud (paced relay, 8N1 = {baud // 10} B/s): {night.size} bytes in "
          f"{elapsed:.2f} s = {rate:.0f} B/s = {100 * rate / (baud / 10):.1f}% of the link rate")


def tcp_bench(tmp: Path, n_nights: int, size: int) -> None:
    nights = random_nights(n_nights, size, seed=13)
    dev = start_tcp_device(tmp / "tcp", nights, secret=SECRET, heapsize="512K")
    store = Store(tmp / "tcp-store" / "tcp.sqlite3")
    try:
        t0 = time.monotonic()
        with Client(lambda: TCPTransport("127.0.0.1", dev.port), secrets=lambda: [SECRET]) as c:
            rep = sync_device(c, store, "tcp", set_time=False)
        elapsed = time.monotonic() - t0
    finally:
        dev.stop()
    ok = all(zlib.crc32(store.raw_bytes(r["id"])) == zlib.crc32(nights[r["night_id"]])
             for r in store.nights())
    total = sum(len(v) for v in nights.values())
    print(f"tcp loopback: {len(rep.downloaded)} nights, {total / 1e6:.2f} MB, verified={ok}, "
          f"stored and acked in {elapsed:.2f} s ({total / elapsed / 1e6:.2f} MB/s)")
    store.close()


def _download_all(port: int) -> tuple[int, float]:
    """Bytes and seconds to read every night over TCP (no store: the link and framing only)."""
    with Client(lambda: TCPTransport("127.0.0.1", port), secrets=lambda: [SECRET]) as c:
        c.connect()
        nights = c.list_nights()
        total = 0
        t0 = time.monotonic()
        for n in nights:
            total += c.download(n.night_id, n.size, lambda off, data: None)
        return total, time.monotonic() - t0


def mac_bench(tmp: Path, n_nights: int, size: int, rounds: int) -> None:
    """TCP loopback throughput with the per-frame MAC (protocol 2) and with it replaced by a
    no-op on both sides (what version 1 sent), best of `rounds` runs each."""
    from nullauth import NullAuth

    nights = random_nights(n_nights, size, seed=15)
    rates = {}
    real = proto.FrameAuth
    for mode in ("mac", "nomac"):
        dev = start_tcp_device(tmp / f"mac-{mode}", nights, secret=SECRET, heapsize="512K",
                               extra=("nomac",) if mode == "nomac" else ())
        proto.FrameAuth = NullAuth if mode == "nomac" else real  # type: ignore[misc]
        try:
            best = 0.0
            for _ in range(rounds):
                total, elapsed = _download_all(dev.port)
                best = max(best, total / elapsed / 1e6)
            rates[mode] = best
        finally:
            proto.FrameAuth = real  # type: ignore[misc]
            dev.stop()
    print(f"tcp loopback download, {n_nights} x ~{size // 1000} KB (best of {rounds}): "
          f"with per-frame MAC {rates['mac']:.2f} MB/s, without {rates['nomac']:.2f} MB/s "
          f"({100 * (1 - rates['mac'] / rates['nomac']):.0f}% slower); 20 bytes per frame "
          f"({100 * 20 / proto.MAX_PAYLOAD:.1f}% of a full frame)")
    script = tmp / "mac_cpu.py"
    script.write_text(MAC_CPU_SCRIPT)
    out = subprocess.run([_micropython(), str(script)], env=_mp_env(), capture_output=True,
                         text=True, timeout=120, check=True).stdout
    print("micropython (unix port, this machine) per frame: " + out.strip())


def _micropython() -> str:
    from nightstand import paths

    return paths.micropython_bin()


MAC_CPU_SCRIPT = """
import gc
import time
from nsdev.core import proto

h2d, d2h = proto.session_keys(bytes(32), bytes(16), bytes(16))
dev = proto.FrameAuth(d2h, h2d)
host = proto.FrameAuth(h2d, d2h)
buf = bytearray(proto.MAX_FRAME)


def per_frame(fn, k=200, batches=7):
    # The fastest batch: the machine is shared, slower batches measure the other load.
    fn()  # warm up
    best = None
    for _ in range(batches):
        gc.collect()
        t0 = time.ticks_us()
        for _ in range(k):
            fn()
        t = time.ticks_diff(time.ticks_us(), t0) / k
        best = t if best is None or t < best else best
    return best


out = []
for n in (16, proto.MAX_AUTH_PAYLOAD):
    plain = per_frame(lambda: proto.finish_frame(buf, 0x87, 1, n))
    sealed = per_frame(lambda: proto.finish_frame(buf, 0x87, 1, n, dev))
    m = proto.finish_frame(buf, 0x87, 1, n, dev)
    frame = bytes(buf[:m])

    def check():
        host.recv_ctr = 0
        assert host.open(frame[2], 1, memoryview(frame)[7:m - 4]) is not None

    opened = per_frame(check)
    out.append("%d B: CRC only %.0f us, CRC+MAC seal %.0f us, MAC verify %.0f us" % (
        n, plain, sealed, opened))
print("; ".join(out))
"""


def auth_bench(tmp: Path, clients: int) -> None:
    nights = random_nights(1, 2000, seed=14)
    dev = start_tcp_device(tmp / "auth", nights, secret=SECRET)
    refused = leaked = 0
    cmds = [c for c in proto.COMMAND_NAMES if c not in proto.PRE_AUTH]
    try:
        for i in range(clients):
            cmd = cmds[i % len(cmds)]
            with socket.create_connection(("127.0.0.1", dev.port), timeout=2) as s:
                if i % 2:  # half of them try a wrong key first
                    s.sendall(proto.encode_frame(proto.CMD_AUTH_CHALLENGE, 1, os.urandom(16)))
                    s.sendall(proto.encode_frame(proto.CMD_AUTH, 2, os.urandom(32)))
                s.sendall(proto.encode_frame(cmd, 3, b"\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff"))
                p = proto.FrameParser()
                got = bytearray()
                reply = None
                while reply is None:
                    data = s.recv(4096)
                    if not data:
                        break
                    got += data
                    p.feed(data)
                    while (f := p.next()) is not None:
                        if f[1] == 3:
                            reply = (f[0], bytes(f[2]))
            if reply and reply[0] == proto.ERROR and reply[1][0] == proto.ERR_AUTH_REQUIRED:
                refused += 1
            if SECRET in got or nights[1][:16] in got or b"ns-test" in got:
                leaked += 1
        # And a client with a wrong key through the real client code.
        c = Client(lambda: TCPTransport("127.0.0.1", dev.port), secrets=lambda: [os.urandom(32)])
        try:
            c.connect()
        except DeviceError as e:
            refused += e.code == proto.ERR_AUTH_FAILED
        clients += 1
    finally:
        dev.stop()
    print(f"unauthenticated/wrong-key TCP clients: {refused}/{clients} refused "
          f"({100 * refused / clients:.0f}%), {leaked} leaked anything")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller nights (smoke run)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        faults_bench(tmp, 3 if args.quick else 5, 15000 if args.quick else 40000)
        serial_bench(tmp, 8000 if args.quick else 40000)
        tcp_bench(tmp, 30, 20000 if args.quick else 150000)
        mac_bench(tmp, 10, 20000 if args.quick else 100000, 1 if args.quick else 3)
        auth_bench(tmp, 50 if args.quick else 200)


if __name__ == "__main__":
    main()
