"""Byte transports for the sync client: USB serial (pyserial) and TCP, behind one small base."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from nightstand.errors import UserError

# USB-serial bridges found on ESP32 boards (vendor id -> chip family).
LIKELY_USB_VIDS = {
    0x10C4: "Silicon Labs CP210x",
    0x1A86: "WCH CH340/CH9102",
    0x0403: "FTDI",
    0x303A: "Espressif native USB",
}


class Transport:
    """A byte stream to the device. read() returns b"" on timeout and raises ConnectionError when
    the link is gone; write() sends everything or raises ConnectionError."""

    name = "?"
    link_bytes_per_s: float | None = None  # known line rate (serial), None for TCP

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        raise NotImplementedError

    @property
    def is_tcp(self) -> bool:
        return False


class SerialTransport(Transport):
    def __init__(self, port: str, baudrate: int = 115200) -> None:
        self.port = port
        self.baudrate = baudrate
        self.name = port
        self.link_bytes_per_s = baudrate / 10  # 8N1: 10 bit times per byte
        self._ser = None

    def open(self) -> None:
        import serial

        try:
            self._ser = serial.Serial(self.port, self.baudrate, timeout=0.1, write_timeout=5)
        except (serial.SerialException, OSError, ValueError) as e:
            raise UserError(f"cannot open serial port {self.port}: {_short(e)}") from None

    def close(self) -> None:
        if self._ser is not None:
            try:
                self._ser.close()
            finally:
                self._ser = None

    def write(self, data: bytes) -> None:
        import serial

        if self._ser is None:
            raise ConnectionError("serial port closed")
        try:
            self._ser.write(data)
        except (serial.SerialException, OSError) as e:
            raise ConnectionError(f"serial write failed: {_short(e)}") from None

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        import serial

        if self._ser is None:
            raise ConnectionError("serial port closed")
        try:
            self._ser.timeout = max(0.0, timeout_s)
            first = self._ser.read(1)
            if not first:
                return b""
            more = min(self._ser.in_waiting, max_bytes - 1)
            return first + (self._ser.read(more) if more > 0 else b"")
        except (serial.SerialException, OSError) as e:
            raise ConnectionError(f"serial read failed: {_short(e)}") from None


class TCPTransport(Transport):
    def __init__(self, host: str, port: int, connect_timeout_s: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.name = f"{host}:{port}"
        self.connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None

    @property
    def is_tcp(self) -> bool:
        return True

    def open(self) -> None:
        try:
            self._sock = socket.create_connection(
                (self.host, self.port), timeout=self.connect_timeout_s
            )
        except OSError as e:
            raise ConnectionError(f"cannot connect to {self.name}: {_short(e)}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def write(self, data: bytes) -> None:
        if self._sock is None:
            raise ConnectionError("connection closed")
        try:
            self._sock.sendall(data)
        except OSError as e:
            raise ConnectionError(f"send failed: {_short(e)}") from None

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        if self._sock is None:
            raise ConnectionError("connection closed")
        self._sock.settimeout(max(0.001, timeout_s))
        try:
            data = self._sock.recv(max_bytes)
        except TimeoutError:
            return b""
        except OSError as e:
            raise ConnectionError(f"receive failed: {_short(e)}") from None
        if not data:
            raise ConnectionError("device closed the connection")
        return data


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    likely: bool


def list_serial_ports() -> list[PortInfo]:
    """Serial ports, likely ESP32 USB bridges first; ports without a USB id are left out."""
    from serial.tools import list_ports

    out = []
    for p in list_ports.comports():
        if p.vid is None:
            continue
        likely = p.vid in LIKELY_USB_VIDS
        desc = LIKELY_USB_VIDS.get(p.vid) or p.description or "USB serial"
        out.append(PortInfo(p.device, desc, likely))
    out.sort(key=lambda p: (not p.likely, p.device))
    return out


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
