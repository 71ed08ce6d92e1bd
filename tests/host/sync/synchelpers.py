"""Test/bench helpers for sync: the device server under MicroPython (TCP or a pseudo-terminal),
a fault-injecting relay (corrupt, drop, delay, cut, pace at a baud rate)."""

from __future__ import annotations

import os
import random
import select
import socket
import subprocess
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from nightstand import paths

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_nights(folder: Path, nights: dict[int, bytes], open_ids: tuple[int, ...] = ()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for nid, data in nights.items():
        name = f"{nid}.night" + (".open" if nid in open_ids else "")
        (folder / name).write_bytes(data)


def random_nights(count: int, size: int, seed: int = 1) -> dict[int, bytes]:
    rnd = random.Random(seed)
    return {i + 1: rnd.randbytes(size + rnd.randrange(size // 4 + 1)) for i in range(count)}


def _mp_env() -> dict[str, str]:
    return dict(os.environ, MICROPYPATH=f"{HERE}:{paths.FIRMWARE_DIR}:.frozen")


@dataclass
class DeviceProc:
    proc: subprocess.Popen
    nights_dir: Path
    state_dir: Path
    port: int = 0
    master_fd: int = -1

    def acks(self) -> list[int]:
        f = self.state_dir / "acks.log"
        return [int(x) for x in f.read_text().split()] if f.exists() else []

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        if self.master_fd >= 0:
            os.close(self.master_fd)
            self.master_fd = -1
        return (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")


def start_tcp_device(tmp: Path, nights: dict[int, bytes], open_ids=(), secret: bytes | None = None,
                     heapsize: str = "256K", extra: tuple[str, ...] = ()) -> DeviceProc:
    nd, sd = tmp / "nights", tmp / "state"
    write_nights(nd, nights, open_ids)
    sd.mkdir(parents=True, exist_ok=True)
    if secret is not None:
        (sd / "secret.bin").write_bytes(secret)
    port = free_port()
    proc = subprocess.Popen(
        [paths.micropython_bin(), "-X", f"heapsize={heapsize}", str(HERE / "mp_sync_server.py"),
         "tcp", str(port), str(nd), str(sd), *extra],
        env=_mp_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if b"READY" not in line:
        err = proc.communicate(timeout=5)[1]
        raise RuntimeError(f"device did not start: {line!r} {err!r}")
    return DeviceProc(proc, nd, sd, port=port)


def start_usb_device(tmp: Path, nights: dict[int, bytes], secret: bytes | None = None,
                     heapsize: str = "256K") -> DeviceProc:
    """Device on a pseudo-terminal: its stdin/stdout are the pty's slave (raw mode)."""
    nd, sd = tmp / "nights", tmp / "state"
    write_nights(nd, nights)
    sd.mkdir(parents=True, exist_ok=True)
    if secret is not None:
        (sd / "secret.bin").write_bytes(secret)
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    proc = subprocess.Popen(
        [paths.micropython_bin(), "-X", f"heapsize={heapsize}", str(HERE / "mp_sync_server.py"),
         "usb", str(nd), str(sd)],
        env=_mp_env(), stdin=slave, stdout=slave, stderr=subprocess.PIPE,
    )
    os.close(slave)
    return DeviceProc(proc, nd, sd, master_fd=master)


@dataclass
class Faults:
    corrupt_p: float = 0.0  # probability that a byte is altered
    drop_p: float = 0.0  # probability that a byte is lost
    delay_p: float = 0.0  # probability that a chunk is held back
    delay_s: float = 0.0
    cut_every_bytes: int = 0  # cut the connection after about this many bytes (TCP only)
    rate_bytes_per_s: float = 0.0  # pace both directions (serial emulation)
    seed: int = 7
    counts: dict = field(default_factory=lambda: {"corrupted": 0, "dropped": 0, "cuts": 0,
                                                  "bytes": 0})

    def mangle(self, rnd: random.Random, data: bytes) -> bytes:
        if not (self.corrupt_p or self.drop_p):
            return data
        out = bytearray()
        for b in data:
            r = rnd.random()
            if r < self.drop_p:
                self.counts["dropped"] += 1
                continue
            if r < self.drop_p + self.corrupt_p:
                self.counts["corrupted"] += 1
                b ^= rnd.randrange(1, 256)
            out.append(b)
        return bytes(out)


class _Pacer:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.t0 = time.monotonic()
        self.sent = 0

    def wait(self, n: int) -> None:
        if not self.rate:
            return
        self.sent += n
        due = self.t0 + self.sent / self.rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        elif now - due > 0.05:  # idle link: do not bank credit
            self.t0 = now - self.sent / self.rate


def _pump_pair(a_read, a_write, b_read, b_write, fds, faults: Faults, rnd: random.Random,
               stop: threading.Event, budget: list[int]) -> None:
    """Copy a->b and b->a through the fault model until EOF, a cut or stop."""
    pace = {fds[0]: _Pacer(faults.rate_bytes_per_s), fds[1]: _Pacer(faults.rate_bytes_per_s)}
    while not stop.is_set():
        ready, _, _ = select.select(fds, [], [], 0.05)
        for fd in ready:
            data = a_read() if fd == fds[0] else b_read()
            if not data:
                return
            faults.counts["bytes"] += len(data)
            if faults.cut_every_bytes:
                budget[0] -= len(data)
                if budget[0] <= 0:
                    faults.counts["cuts"] += 1
                    budget[0] = int(faults.cut_every_bytes * (0.5 + rnd.random()))
                    return
            if faults.delay_p and rnd.random() < faults.delay_p:
                time.sleep(faults.delay_s)
            data = faults.mangle(rnd, data)
            if faults.rate_bytes_per_s:
                # Pace in small pieces so the receiver sees bytes arrive at the line rate.
                for i in range(0, len(data), 64):
                    piece = data[i:i + 64]
                    pace[fd].wait(len(piece))
                    (b_write if fd == fds[0] else a_write)(piece)
            elif data:
                (b_write if fd == fds[0] else a_write)(data)


class LoopbackListener:
    """Listens on 127.0.0.1 (an ephemeral port) and hands each connection to `_serve` on its
    own thread; `close()` stops accepting."""

    def __init__(self) -> None:
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.srv.settimeout(0.1)
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop.set()
        self.srv.close()
        self.thread.join(timeout=2)


class TCPRelay(LoopbackListener):
    """Relays each connection to the device on 127.0.0.1:upstream_port through `faults`."""

    def __init__(self, upstream_port: int, faults: Faults) -> None:
        self.upstream = upstream_port
        self.faults = faults
        self.rnd = random.Random(faults.seed)
        self.budget = [int(faults.cut_every_bytes * (0.5 + self.rnd.random()))]
        super().__init__()

    def _serve(self, c: socket.socket) -> None:
        try:
            u = socket.create_connection(("127.0.0.1", self.upstream))
        except OSError:
            c.close()
            return
        for s in (c, u):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def rd(s: socket.socket):
            def f() -> bytes:
                try:
                    return s.recv(4096)
                except OSError:
                    return b""
            return f

        def wr(s: socket.socket):
            def f(d: bytes) -> None:
                try:
                    s.sendall(d)
                except OSError:
                    pass
            return f

        try:
            _pump_pair(rd(c), wr(c), rd(u), wr(u), [c.fileno(), u.fileno()], self.faults,
                       self.rnd, self.stop, self.budget)
        finally:
            for s in (c, u):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


class PtyBridge:
    """A second pty whose slave path the host opens with pyserial; bytes are relayed to the
    device's pty master through `faults` (corruption, drops, pacing at a baud rate)."""

    def __init__(self, device_master_fd: int, faults: Faults) -> None:
        self.dev = device_master_fd
        self.master, slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave  # keep open so the master never sees EIO between host opens
        self.faults = faults
        self.stop = threading.Event()
        rnd = random.Random(faults.seed)

        def rd(fd: int):
            def f() -> bytes:
                try:
                    return os.read(fd, 4096)
                except OSError:
                    return b""
            return f

        def wr(fd: int):
            def f(d: bytes) -> None:
                while d:
                    d = d[os.write(fd, d):]
            return f

        self.thread = threading.Thread(
            target=_pump_pair,
            args=(rd(self.master), wr(self.master), rd(self.dev), wr(self.dev),
                  [self.master, self.dev], faults, rnd, self.stop, [0]),
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        os.close(self.master)
        os.close(self._slave)


def make_real_night(folder: Path, n_epochs: int = 20) -> bytes:
    """A real night file written by the firmware's recorder (CPython), for decoding checks."""
    from array import array

    from nsdev.recorder import Recorder

    r = Recorder(root=str(folder), device_id="ns-test-0001", fw_version="0.1.0")
    t0 = 1767225600
    r.start_night(t0, 3600)
    for i in range(n_epochs):
        r.add_epoch(t0 + 30 * (i + 1), hr_bpm=55.0 + i % 3, rmssd_ms=40.0)
        r.add_beats(t0 + 30 * i + 1, 0, array("H", [1000, 1010, 990, 1005]),
                    array("f", [1.0, 1.1, 0.9, 1.0]), 4)
    r.add_event(t0 + 100, 1, (5,))
    r.flush()
    r.end_night(t0 + 30 * n_epochs + 60)
    r.flush()
    return (folder / "nights" / "00000001.ns").read_bytes()
