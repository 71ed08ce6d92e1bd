"""The sync protocol client: requests with retries, reconnects and re-authentication, resumable
verified night downloads. Framing and codes come from nsdev.core.proto (defined once)."""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nsdev.core import proto

from nightstand.sync.transport import Transport

MIN_CHUNK = 64
MAX_CONFIG_BYTES = 1024  # the device's SET_CONFIG limit (nsdev.sync.MAX_REQUEST)


class DeviceError(Exception):
    """The device answered with an ERROR frame."""

    def __init__(self, code: int, command: int, text: str) -> None:
        self.code = code
        self.command = command
        self.text = text
        name = proto.ERROR_NAMES.get(code, f"error-{code}")
        cmd = proto.COMMAND_NAMES.get(command, f"command-{command}")
        super().__init__(f"{cmd}: {name}: {text}")


class LinkError(Exception):
    """No valid reply after all retries and reconnects."""


class AuthFrameError(LinkError):
    """An authenticated reply failed its MAC or counter check: someone on the path altered,
    replayed or injected a frame. The connection is dropped (never trusted again)."""


class _Retry(Exception):
    pass


@dataclass
class Night:
    night_id: int
    size: int
    start_unix_s: int
    flags: int

    @property
    def acked(self) -> bool:
        return bool(self.flags & proto.NIGHT_ACKED)

    @property
    def open(self) -> bool:
        return bool(self.flags & proto.NIGHT_OPEN)


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0
    reconnects: int = 0
    naks: int = 0
    crc_errors: int = 0
    mac_failures: int = 0
    bytes_in: int = 0
    errors: list[str] = field(default_factory=list)


class Client:
    """One device, reached through `connect()` (a factory so it can reconnect).

    `secrets` returns the pairing secrets to try for TCP authentication (the device's own first);
    `timeout_s` is the reply timeout on top of the reply's transfer time at the link rate.
    """

    def __init__(
        self,
        connect: Callable[[], Transport],
        *,
        secrets: Callable[[], list[bytes]] | None = None,
        timeout_s: float = 1.0,
        retries: int = 12,
        backoff_s: float = 0.05,
        min_timeout_s: float = 0.05,
    ) -> None:
        self._connect_fn = connect
        self._secrets = secrets or (lambda: [])
        self.timeout_s = timeout_s
        self.min_timeout_s = min_timeout_s
        self.srtt_s = timeout_s / 4  # smoothed round trip, learnt from clean replies
        self.retries = retries
        self.backoff_s = backoff_s
        self.t: Transport | None = None
        self.parser = proto.FrameParser()
        self.seq = int.from_bytes(os.urandom(2), "little")
        self.stats = LinkStats()
        self.hello: dict | None = None
        self.secret: bytes | None = None  # the secret that authenticated, once known
        self.fauth: proto.FrameAuth | None = None  # per-frame MACs once TCP has authenticated
        self.chunk = proto.MAX_READ
        self._clean = 0

    # ---- connection -----------------------------------------------------------------------------

    def close(self) -> None:
        if self.t is not None:
            try:
                self._request(proto.CMD_BYE, b"", timeout_s=0.2)
            except Exception:  # best effort: the link may already be gone
                pass
            self._drop()

    def _drop(self) -> None:
        if self.t is not None:
            try:
                self.t.close()
            finally:
                self.t = None
        self.parser.reset()
        self.fauth = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> None:
        t = self._connect_fn()
        t.open()
        self.t = t
        self.parser.reset()
        self.fauth = None
        try:
            self._handshake()
        except BaseException:
            self._drop()
            raise

    def _retrying(self, cmd: int, payload: bytes = b"") -> bytes:
        """A request on the current link, resent on timeout/damage (no reconnect)."""
        last: Exception | None = None
        for _ in range(self.retries):
            try:
                return self._request(cmd, payload)
            except _Retry as e:
                last = e
                self.stats.retries += 1
        raise LinkError(f"no valid reply to {proto.COMMAND_NAMES.get(cmd)} ({last})")

    def _handshake(self) -> None:
        try:
            self.hello = proto.unpack_hello_reply(self._retrying(proto.CMD_HELLO))
        except DeviceError as e:
            if e.code != proto.ERR_AUTH_REQUIRED:
                raise
            self._authenticate()
            self.hello = proto.unpack_hello_reply(self._retrying(proto.CMD_HELLO))

    def _authenticate(self) -> None:
        candidates = ([self.secret] if self.secret else []) + [
            s for s in self._secrets() if s != self.secret
        ]
        if not candidates:
            raise DeviceError(proto.ERR_NOT_PAIRED, proto.CMD_AUTH, "no pairing key on this host")
        last: DeviceError | None = None
        for secret in candidates[:2]:  # the device closes the session after 3 failures
            for _attempt in range(self.retries):
                host_nonce = os.urandom(proto.NONCE_LEN)
                reply = self._retrying(proto.CMD_AUTH_CHALLENGE, host_nonce)
                if len(reply) != 2 + proto.NONCE_LEN:
                    raise LinkError("malformed challenge")
                dev_nonce = reply[2:]
                try:
                    # AUTH consumes the challenge: if its reply is lost, start over with a new
                    # challenge (a damaged AUTH never reaches the device; a correct one that
                    # arrived has already authenticated the session, so a repeat succeeds).
                    proof = self._request(
                        proto.CMD_AUTH, proto.host_proof(secret, dev_nonce, host_nonce)
                    )
                except _Retry:
                    self.stats.retries += 1
                    continue
                except DeviceError as e:
                    if e.code != proto.ERR_AUTH_FAILED:
                        raise
                    last = e
                    break
                if not proto.compare_digest(
                    proof, proto.device_proof(secret, dev_nonce, host_nonce)
                ):
                    raise DeviceError(proto.ERR_AUTH_FAILED, proto.CMD_AUTH,
                                      "the device did not prove it holds the key")
                self.secret = secret
                h2d, d2h = proto.session_keys(secret, dev_nonce, host_nonce)
                self.fauth = proto.FrameAuth(h2d, d2h)
                return
            else:
                raise LinkError("authentication replies lost")
        assert last is not None
        raise last

    # ---- requests -------------------------------------------------------------------------------

    def call(self, cmd: int, payload: bytes = b"", retries: int | None = None) -> bytes:
        """Send a request and return the reply payload, reconnecting and resending as needed.
        Raises DeviceError for an ERROR reply, LinkError when the device cannot be reached."""
        last: Exception | None = None
        for attempt in range(self.retries if retries is None else retries):
            try:
                if self.t is None:
                    self._open()
                return self._request(cmd, payload)
            except _Retry as e:
                last = e
                self.stats.retries += 1
            except DeviceError as e:
                if e.code == proto.ERR_AUTH_REQUIRED and self.secret is not None:
                    last = e  # the device started a new session: authenticate again
                    self._drop()
                    continue
                raise
            except (ConnectionError, OSError, LinkError) as e:
                last = e
                self.stats.reconnects += 1
                self.stats.errors.append(str(e))
                self._drop()
                time.sleep(min(self.backoff_s * (attempt + 1), 1.0))
        if isinstance(last, AuthFrameError):
            raise AuthFrameError("replies keep failing authentication: something on the network "
                                 "alters or injects frames; sync over USB")
        raise LinkError(f"device not answering ({last})")

    def _request(self, cmd: int, payload: bytes, timeout_s: float | None = None) -> bytes:
        assert self.t is not None
        self.seq = (self.seq + 1) & 0xFFFF or 1  # seq 0 is the device's (NAK, busy)
        seq = self.seq
        self.stats.requests += 1
        self.t.write(proto.encode_frame(cmd, seq, payload, self.fauth))
        expect = proto.MAX_FRAME if cmd == proto.CMD_READ_NIGHT else 512
        rate = self.t.link_bytes_per_s
        # Timeout: a multiple of the measured round trip (never above timeout_s) plus the
        # reply's transfer time at the link rate. A late reply only costs a resend.
        base = self.timeout_s if timeout_s is None else timeout_s
        base = min(base, max(self.min_timeout_s, 4 * self.srtt_s))
        t_send = time.monotonic()
        deadline = t_send + base + (expect / rate if rate else 0.0)
        p = self.parser
        crc0 = p.crc_errors
        pending = b""
        while True:
            if pending:
                took = p.feed(pending)
                pending = pending[took:]
            while True:
                f = p.next()
                if f is None:
                    break
                ftype, fseq, body = f
                if self.fauth is not None:
                    opened = self.fauth.open(ftype, fseq, body)
                    if opened is None:
                        self.stats.mac_failures += 1
                        self._drop()
                        raise AuthFrameError(
                            "a reply failed authentication (altered, replayed or injected on "
                            "the network): connection dropped")
                    body = opened
                if ftype == proto.NAK:
                    self.stats.naks += 1
                    raise _Retry("device reported a damaged request")
                if ftype == proto.ERROR and fseq == 0:
                    code, command, text = proto.unpack_error(body)
                    if code == proto.ERR_BUSY:  # refused at connect: every slot in use
                        self._drop()
                        raise DeviceError(code, command, text)
                if fseq != seq:
                    continue  # a late reply to an earlier attempt
                if ftype == proto.ERROR:
                    raise DeviceError(*proto.unpack_error(body))
                if ftype != cmd | proto.REPLY:
                    raise _Retry(f"unexpected reply type {ftype:#x}")
                if rate is None or len(body) < 256:
                    rtt = time.monotonic() - t_send
                    self.srtt_s += (rtt - self.srtt_s) / 8
                return bytes(body)
            if p.crc_errors != crc0:
                self.stats.crc_errors += p.crc_errors - crc0
                raise _Retry("damaged reply")
            if pending:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Retry("timeout")
            pending = self.t.read(4096, left)
            self.stats.bytes_in += len(pending)

    # ---- commands -------------------------------------------------------------------------------

    def connect(self) -> dict:
        """Open the link (authenticating over TCP) and return the HELLO information."""
        if self.t is None:
            last: Exception | None = None
            for attempt in range(max(1, self.retries // 3)):
                try:
                    self._open()
                    break
                except (ConnectionError, OSError, LinkError) as e:
                    last = e
                    time.sleep(min(self.backoff_s * (attempt + 1), 1.0))
            else:
                raise LinkError(str(last))
        assert self.hello is not None
        return self.hello

    def status(self) -> dict:
        return json.loads(self.call(proto.CMD_STATUS))

    def reboot_maintenance(self) -> None:
        """Ask the device (over USB) to reset into maintenance mode; the session ends with it."""
        self.call(proto.CMD_REBOOT_MAINT)
        self._drop()  # no BYE: the device is resetting

    def get_config(self) -> dict:
        return json.loads(self.call(proto.CMD_GET_CONFIG))

    def set_config(self, changes: dict) -> None:
        """Send settings; longer than one small frame, in parts (the ESP32's console input is a
        260-byte ring: a longer request would overflow it, see proto.MAX_REQUEST_FRAME)."""
        data = json.dumps(changes, separators=(",", ":")).encode()
        if len(data) > MAX_CONFIG_BYTES:
            raise ValueError(f"settings too long ({len(data)} > {MAX_CONFIG_BYTES} bytes)")
        if len(data) <= proto.CONFIG_PART_DATA + 4:
            self.call(proto.CMD_SET_CONFIG, data)
            return
        for attempt in range(2):  # a new session (reconnect) forgets the parts: start over
            try:
                for off in range(0, len(data), proto.CONFIG_PART_DATA):
                    part = data[off:off + proto.CONFIG_PART_DATA]
                    self.call(proto.CMD_SET_CONFIG_PART,
                              struct.pack("<HH", off, len(data)) + part)
                return
            except DeviceError as e:
                if e.code != proto.ERR_RANGE or attempt:
                    raise

    def set_time(self, unix_s: int | None = None, utc_offset_s: int | None = None) -> None:
        if unix_s is None:
            unix_s = int(time.time())
        if utc_offset_s is None:
            utc_offset_s = int(time.localtime(unix_s).tm_gmtoff)
        self.call(proto.CMD_SET_TIME, struct.pack("<Ii", unix_s, utc_offset_s))

    def pair(self, secret: bytes) -> None:
        if len(secret) != proto.SECRET_LEN:
            raise ValueError(f"secret must be {proto.SECRET_LEN} bytes")
        self.call(proto.CMD_PAIR, secret)

    def set_wifi(self, ssid: str, password: str) -> None:
        self.call(proto.CMD_SET_WIFI, proto.pack_str8(ssid) + proto.pack_str8(password))

    def list_nights(self) -> list[Night]:
        nights: list[Night] = []
        while True:
            total, page = proto.unpack_night_list(
                self.call(proto.CMD_LIST_NIGHTS, struct.pack("<H", len(nights)))
            )
            nights.extend(Night(*row) for row in page)
            if len(nights) >= total or not page:
                return nights

    def night_crc(self, night_id: int) -> tuple[int, int]:
        """(size, crc32) of the whole night as the device has it."""
        nid, size, crc = struct.unpack("<III", self.call(proto.CMD_NIGHT_CRC,
                                                           struct.pack("<I", night_id)))
        if nid != night_id:
            raise LinkError("night-crc reply for the wrong night")
        return size, crc

    def ack_night(self, night_id: int, size: int, crc: int) -> None:
        self.call(proto.CMD_ACK_NIGHT, struct.pack("<III", night_id, size, crc))

    def _max_read(self) -> int:
        """Night bytes one READ_NIGHT reply carries (less once frames carry a MAC)."""
        limit = proto.MAX_PAYLOAD if self.fauth is None else proto.MAX_AUTH_PAYLOAD
        return limit - proto.READ_HEADER_LEN

    def read_chunk(self, night_id: int, offset: int, length: int) -> tuple[int, bytes]:
        """(night size, data) at offset; data is shorter than length only at the end.
        The chunk size adapts to the link: it halves while replies arrive damaged or late
        and doubles again after clean runs."""
        last: Exception | None = None
        for _ in range(self.retries):
            length = min(length, self.chunk, self._max_read())
            trouble0 = self.stats.retries + self.stats.reconnects
            try:
                reply = self.call(proto.CMD_READ_NIGHT,
                                  struct.pack("<IIH", night_id, offset, length), retries=3)
            except LinkError as e:
                last = e
                self.chunk = max(MIN_CHUNK, self.chunk // 2)
                self._clean = 0
                continue
            if self.stats.retries + self.stats.reconnects != trouble0:
                self.chunk = max(MIN_CHUNK, self.chunk // 2)
                self._clean = 0
            else:
                self._clean += 1
                if self._clean >= 4 and self.chunk < proto.MAX_READ:
                    self.chunk = min(proto.MAX_READ, self.chunk * 2)
                    self._clean = 0
            if len(reply) < proto.READ_HEADER_LEN:
                raise LinkError("short read reply")
            nid, off, size = struct.unpack_from("<III", reply, 0)
            if nid != night_id or off != offset:
                raise LinkError("read reply for the wrong night or offset")
            return size, reply[proto.READ_HEADER_LEN:]
        raise LinkError(f"device not answering ({last})")

    def download(
        self,
        night_id: int,
        size: int,
        sink: Callable[[int, bytes], None],
        start: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Read night bytes [start, size) in chunks, handing each to sink(offset, data).
        Returns the number of bytes delivered. Resume by passing the bytes already held."""
        offset = start
        while offset < size:
            dev_size, data = self.read_chunk(night_id, offset, min(self.chunk, size - offset))
            if not data:
                raise LinkError(f"night {night_id} ended at {offset} of {size} bytes")
            sink(offset, data)
            offset += len(data)
            if progress:
                progress(len(data))
        return offset - start
