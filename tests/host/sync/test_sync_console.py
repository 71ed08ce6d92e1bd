"""The USB console carries the sync protocol: nothing from the Wi-Fi side may print on it, and a
SET_CONFIG longer than the ESP32's 260-byte console input ring still arrives (issue 10 item 6).
The device runs under MicroPython with its console on pipes."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time

import pytest
from nightstand import paths
from nightstand.sync.client import Client, LinkError
from nightstand.sync.transport import TCPTransport, Transport
from nsdev.core import proto
from synchelpers import HERE, _mp_env, random_nights, write_nights

SECRET = bytes(range(50, 82))


def _two_free_ports() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
            try:
                with socket.socket() as b:
                    b.bind(("127.0.0.1", p + 1))
                return p
            except OSError:
                continue
    raise RuntimeError("no two adjacent free ports")


class PipeTransport(Transport):
    """The host's side of a console on pipes (as a serial port would be)."""

    name = "console"
    link_bytes_per_s = None

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.seen = bytearray()  # every byte the device wrote on its console

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)  # one burst, as a host's serial write
        self.proc.stdin.flush()

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        if not select.select([fd], [], [], max(0.0, timeout_s))[0]:
            return b""
        data = os.read(fd, max_bytes)
        if not data:
            raise ConnectionError("console closed")
        self.seen += data
        return data


def _start(tmp_path, mode: str):
    nd, sd = tmp_path / "nights", tmp_path / "state"
    write_nights(nd, random_nights(1, 500))
    sd.mkdir()
    (sd / "secret.bin").write_bytes(SECRET)
    port = _two_free_ports()
    args = [paths.micropython_bin(), "-X", "heapsize=512K", str(HERE / "mp_console.py"),
            str(nd), str(sd), str(port)] + (["ring"] if mode == "ring" else [])
    proc = subprocess.Popen(args, env=_mp_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert b"READY" in line, line + proc.stderr.read()
    return proc, port, mode


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=5)


@pytest.fixture
def console(tmp_path):
    c = _start(tmp_path, "plain")
    yield c
    _stop(c[0])


@pytest.fixture(params=["plain", "ring"])
def console_modes(request, tmp_path):
    c = _start(tmp_path, request.param)
    yield c
    _stop(c[0])


def _finish(proc: subprocess.Popen, t: PipeTransport) -> str:
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.close()  # end of input: the console session ends
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if not t.read(4096, deadline - time.monotonic()):
                continue
        except ConnectionError:
            break
    err = proc.stderr.read().decode(errors="replace")
    proc.wait(timeout=10)
    return err


def test_console_stays_parseable_when_the_tcp_side_fails(console):
    proc, port, _mode = console
    t = PipeTransport(proc)
    tcp = Client(lambda: TCPTransport("127.0.0.1", port), secrets=lambda: [SECRET],
                 timeout_s=1.0, retries=2)
    with pytest.raises(LinkError):
        tcp.status()  # the session raises inside the device: it ends, the device stays up
    tcp.close()
    usb = Client(lambda: t, timeout_s=2.0)
    assert usb.connect()["device_id"] == "ns-test-0001"
    assert usb.status()["uptime_s"] == 1234  # the console still answers
    usb.close()
    err = _finish(proc, t)
    p = proto.FrameParser()
    p.feed(bytes(t.seen))
    frames = 0
    while p.next() is not None:
        frames += 1
    # Every byte on the console is a protocol frame: no traceback, no log line.
    assert frames >= 3 and p.dropped_bytes == 0 and p.crc_errors == 0 and p.pending() == 0, \
        bytes(t.seen)[:400]
    assert "Traceback" not in bytes(t.seen).decode(errors="replace")
    # The failures went to the log ring instead.
    assert "LOG [tcp] cannot listen" in err and "LOG [sync] tcp session failed" in err


def test_set_config_longer_than_the_console_ring(console_modes):
    proc, _port, mode = console_modes
    t = PipeTransport(proc)
    with Client(lambda: t, timeout_s=1.0, retries=4) as c:
        c.connect()
        label = "x" * 900  # ~950 bytes of JSON: 3.7 times the ring
        c.set_config({"bedtime": "22:45", "label": label})
        cfg = c.get_config()
        assert cfg["label"] == label and cfg["bedtime"] == "22:45"
        c.set_config({"label": "short"})  # one frame
        assert c.get_config()["label"] == "short"
    err = _finish(proc, t)
    if mode == "ring":
        assert "dropped 0" in err  # no request was ever cut by the ring
