"""What the App keeps on the heap all night (docs/twin-and-image.md, "Memory as on the ESP32"):
the sync protocol's modules, the settings' schema and the night-file decoder are not resident
after boot; a USB session loads them (and asyncio's stream module), and the app drops them again
afterwards, so the next session loads them afresh. On the twin too: frozen modules are dropped
the same way."""

from __future__ import annotations

import json

from conftest import check

SCRIPT = r"""
import json, sys, world, machine, asyncio
bus = world.buses[0] = world.VirtualI2CBus(0)
from nsdev.board import Board
from nsdev.app import App
LAZY = ("nsdev.sync", "nsdev.syncdevice", "nsdev.core.proto", "nsdev.config",
        "nsdev.core.nfdecode", "asyncio.stream")
app = App(Board())
out = {"boot": [m for m in LAZY if m in sys.modules]}
from nsdev import sync  # what App._usb_session loads when a host speaks
from nsdev.syncdevice import SyncDevice
reader, writer = sync.usb_streams(0x7e)
s = sync.usb_session(SyncDevice(app))
out["loaded"] = [m for m in LAZY if m in sys.modules]
sync = SyncDevice = reader = writer = s = None
app._drop_sync()
import nsdev
out["dropped"] = [m for m in LAZY if m in sys.modules]
out["names"] = [n for n in ("sync", "syncdevice", "config") if n in nsdev.__dict__]
out["stream_names"] = [n for n in ("StreamReader", "StreamWriter") if n in asyncio.__dict__]
from nsdev import sync  # the next session: everything loads again
out["again"] = sync.usb_session(None).tx is not None and asyncio.StreamReader is not None
print(json.dumps(out))
"""


def test_sync_and_boot_modules_are_not_resident(mp_board, vm) -> None:
    out = check(mp_board(SCRIPT, heapsize="2M", vm=vm))
    r = json.loads(out.strip().splitlines()[-1])
    assert r["boot"] == []
    assert {"nsdev.sync", "nsdev.syncdevice", "nsdev.core.proto", "nsdev.config",
            "asyncio.stream"} <= set(r["loaded"])
    assert r["dropped"] == [] and r["names"] == [] and r["stream_names"] == []
    assert r["again"] is True
