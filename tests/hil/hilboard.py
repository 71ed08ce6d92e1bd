"""The board under test for the HIL suite: a real ESP32 on a serial port, or the virtual board
(`nightstand vboard`'s machinery) — the same REPL and sync protocol either way."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightstand import deploy
from nightstand.sim import serve
from nightstand.sync.client import Client
from nightstand.sync.transport import SerialTransport

VIRTUAL = "virtual"
NOON_UTC = 1767268800  # the virtual board's clock: 2026-01-01 12:00 UTC, outside the schedule


def finger_stim(seconds: int = 4 * 3600, red_na_per_ma: float = 60.0,
                ir_na_per_ma: float = 90.0) -> bytes:
    """A still finger on the virtual sensor: constant reflectance, 1 Hz sample-and-hold
    (vmax30102 stimulus: float32 red nA/mA, IR nA/mA, ambient nA)."""
    return struct.pack("<fff", red_na_per_ma, ir_na_per_ma, 5.0) * seconds


class BoardError(Exception):
    pass


@dataclass
class Result:
    """One measured bring-up figure, its limit and the verdict (for the report)."""

    check: str
    value: Any
    limit: str
    ok: bool
    note: str = ""


class HilBoard:
    def __init__(self, port: str, vboard: serve.VirtualBoard | None = None) -> None:
        self.port = port
        self.vboard = vboard
        self.in_maintenance = False  # known to be at the REPL (no need to ask the app)
        self._t: Any = None

    @property
    def virtual(self) -> bool:
        return self.vboard is not None

    @classmethod
    def open_virtual(cls, folder: Path, spec: serve.BoardSpec | None = None) -> HilBoard:
        spec = spec or serve.BoardSpec(start_unix_s=NOON_UTC, speed=200.0,
                                       ppg_stim=finger_stim(), ppg_stim_hz=1.0)
        vb = serve.VirtualBoard(serve.create(folder, spec))
        port = vb.start(hold_button_ms=2000)  # the button held at power-on: maintenance mode
        b = cls(port, vb)
        b.in_maintenance = True
        # the hand lets go of the button: whichever check runs first sees it released
        b.exec("import time\ntime.sleep_ms(2500)")
        return b

    # ---- REPL (maintenance mode) ------------------------------------------------------------

    def repl(self) -> Any:
        if self._t is None:
            if not self.in_maintenance:
                deploy.enter_maintenance(self.port)
            self.in_maintenance = False  # after an app boot, ask again
            self._t = deploy._open_repl(self.port, 115200, 30.0)
        return self._t

    def exec(self, code: str, timeout_s: float = 30.0) -> str:
        out, err = self.repl().exec_raw(code, timeout=timeout_s)
        if err:
            raise BoardError(err.decode(errors="replace").strip().splitlines()[-1])
        return out.decode(errors="replace")

    def json(self, code: str, timeout_s: float = 30.0) -> Any:
        """Run code that prints one JSON line last; -> that value."""
        return json.loads(self.exec(code, timeout_s).strip().splitlines()[-1])

    def put(self, path: str, data: bytes) -> None:
        self.repl().fs_writefile(path, data, chunk_size=1024)

    def mkdir(self, path: str) -> None:
        try:
            self.repl().fs_mkdir(path)
        except FileExistsError:
            pass

    def release_repl(self) -> None:
        if self._t is not None:
            self._t.close()
            self._t = None

    # ---- the application -------------------------------------------------------------------

    def boot_app(self) -> str:
        """Leave maintenance mode; -> the firmware version the app reports."""
        self.repl().exec_raw_no_follow("import nsdev.board\nnsdev.board.leave_maintenance()")
        self.release_repl()
        version = deploy._wait_for_app(self.port, 115200, 60.0)
        if version is None:
            raise BoardError("the application did not answer after leaving maintenance mode")
        return version

    def status(self) -> dict:
        with Client(lambda: SerialTransport(self.port), timeout_s=2.0) as c:
            c.connect()
            return c.status()

    def close(self) -> None:
        self.release_repl()
        if self.vboard is not None:
            self.vboard.stop()
