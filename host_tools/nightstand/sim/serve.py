"""The virtual board on a serial port (`nightstand vboard`).

The simulated device sits behind a pseudo-terminal that behaves like the real board's USB serial:
the application's sync protocol while it runs; in maintenance mode the MicroPython REPL, raw REPL
included, so the unmodified `mpremote` works; Ctrl-D soft-resets (and, in the raw REPL, comes
back to the raw REPL without running main.py, as the ESP32 port does); machine.reset(), the
watchdog and the sync protocol's REBOOT_MAINT reboot the board. The firmware runs from the
board's own flash (a littlefs image, `flash.img`), so what `nightstand deploy` or `mpremote`
put there is what boots next.

Each boot is one MicroPython process (`simboot.py --serve`); this module owns the "USB cable"
(the pty the host opens) and the power, copies bytes between the cable and the running boot, and
starts the next boot when one ends.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nightstand import paths
from nightstand.errors import UserError
from nightstand.sim import runner

RESET_EXIT = 64  # simboot: exit code RESET_EXIT + machine reset cause
STATE_FILE = "serve_state.json"
_RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
_SOFT_REBOOT = b"MPY: soft reboot\r\n"
_CRASH_LOOP = 5  # boots ending within a second of each other before the board is declared dead


@dataclass
class BoardSpec:
    """What goes on a fresh virtual board."""

    config: dict[str, Any] | None = None  # device settings (config.json); None: the defaults
    seed_dir: Path | None = None  # files put on the flash as they are (e.g. data/ with nights)
    firmware: bool = True  # factory-flash the firmware (compiled for this machine's arch)
    start_unix_s: int | None = None  # the RTC at power-on (default: this computer's clock)
    speed: float = 1.0  # virtual seconds per real second while the firmware idles
    absent: list[str] = field(default_factory=list)  # virtual chips left off the board
    chip_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> spec keys
    ppg_stim: bytes | None = None  # a finger on the sensor: float32 triples (see vmax30102)
    ppg_stim_hz: float = 50.0


def create(sim_dir: Path, spec: BoardSpec | None = None) -> Path:
    """Make a virtual board in sim_dir: sim.json and a littlefs flash with firmware and config."""
    from nsdev import config as device_config

    spec = spec or BoardSpec()
    sim_dir = sim_dir.resolve()
    sim_dir.mkdir(parents=True, exist_ok=True)
    stim = None
    if spec.ppg_stim is not None:
        (sim_dir / "stim").mkdir(exist_ok=True)
        (sim_dir / "stim" / "ppg.f32").write_bytes(spec.ppg_stim)
        stim = str(sim_dir / "stim" / "ppg.f32")
    devices = runner.board_devices(ppg_stim=stim, ppg_fs_hz=spec.ppg_stim_hz, env_stim=None)
    for dev in devices:
        dev.pop("log", None)  # no lamp log files: the flash is the board's only storage
        if dev["name"] in spec.absent:
            dev["present"] = False
        dev.update(spec.chip_overrides.get(dev["name"], {}))
    unknown = set(spec.absent) - {d["name"] for d in devices}
    if unknown:
        raise UserError(f"no virtual chip called {', '.join(sorted(unknown))} "
                        f"(chips: {', '.join(d['name'] for d in devices)})")
    runner.write_sim_config(sim_dir, {
        "start_unix_s": int(spec.start_unix_s or time.time()),
        "duration_s": -1,
        "ticks_start_ms": 0,
        "rtc_valid": True,
        "flash": "littlefs",
        "speed": spec.speed,
        "devices": devices,
    })
    (sim_dir / STATE_FILE).unlink(missing_ok=True)
    (sim_dir / "flash.img").unlink(missing_ok=True)
    load = sim_dir / "load"
    import shutil

    shutil.rmtree(load, ignore_errors=True)
    load.mkdir()
    if spec.seed_dir is not None:
        shutil.copytree(spec.seed_dir, load, dirs_exist_ok=True)
    if spec.firmware:
        runner.compile_files([f for f in paths.firmware_files() if f[0] != "main.py"], load)
        shutil.copy(paths.firmware_main(), load / "main.py")
    cfg, errors = device_config.merge(device_config.defaults(), spec.config or {})
    if errors:
        raise UserError("invalid device settings: " + "; ".join(errors))
    (load / device_config.CONFIG_FILE).write_text(json.dumps(cfg))
    load_flash(sim_dir, load)
    shutil.rmtree(load, ignore_errors=True)
    return sim_dir


def load_flash(sim_dir: Path, src: Path) -> None:
    """Copy a host folder's files onto the board's flash (the board must be off)."""
    env = dict(os.environ, MICROPYPATH=f"{paths.VBOARD_DIR}:.frozen")
    proc = subprocess.run(
        [paths.micropython_bin(), "-X", "heapsize=1M", str(paths.VBOARD_DIR / "flashdump.py"),
         str(sim_dir), str(src.resolve()), "--load"],
        env=env, capture_output=True, text=True, timeout=120, cwd=sim_dir,
    )
    if proc.returncode != 0:
        raise runner.SimulationError(f"cannot write the flash image {sim_dir / 'flash.img'}: "
                                     f"{(proc.stdout + proc.stderr).strip()[-300:]}")


class VirtualBoard:
    """A running virtual board; `port` is the serial device to open (a /dev/pts/N)."""

    def __init__(self, sim_dir: Path, *, heapsize: str = "2M") -> None:
        self.sim_dir = sim_dir.resolve()
        if not (self.sim_dir / "sim.json").exists():
            raise UserError(f"{sim_dir}: not a virtual board (create it with `nightstand vboard`)")
        self.heapsize = heapsize
        self.boots: list[dict[str, Any]] = []  # one per boot: why it started, how it ended
        self.error: str | None = None
        self._hold_ms = 0
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._code = self.sim_dir / "code"
        self.port = ""
        self._cable_m = self._cable_s = self._cpu_m = self._cpu_s = -1

    # ---- power ---------------------------------------------------------------------------------

    def start(self, *, hold_button_ms: int = 0) -> str:
        """Power on (the RTC flag and clock state of a previous power-on are lost)."""
        (self.sim_dir / STATE_FILE).unlink(missing_ok=True)
        import shutil

        shutil.rmtree(self._code, ignore_errors=True)
        runner.compile_tree(paths.VBOARD_DIR, self._code)
        (self._code / "simboot.mpy").unlink()
        self._cable_m, self._cable_s = os.openpty()
        tty.setraw(self._cable_s)
        os.set_blocking(self._cable_m, False)
        self.port = os.ttyname(self._cable_s)
        self._cpu_m, self._cpu_s = os.openpty()
        tty.setraw(self._cpu_s)
        os.set_blocking(self._cpu_m, False)
        self._hold_ms = hold_button_ms
        self._stop.clear()
        self._boot(raw=False, why="power-on")
        self._thread = threading.Thread(target=self._pump, name="vboard", daemon=True)
        self._thread.start()
        return self.port

    def hold_button_at_next_boot(self, ms: int = 3000) -> None:
        self._hold_ms = ms

    def stop(self) -> None:
        """Unplug: the board loses power; its flash keeps what was written."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._kill()
        for fd in (self._cable_m, self._cable_s, self._cpu_m, self._cpu_s):
            if fd >= 0:
                os.close(fd)
        self._cable_m = self._cable_s = self._cpu_m = self._cpu_s = -1

    def power_cycle(self, *, hold_button_ms: int = 0) -> None:
        self.stop()
        self.start(hold_button_ms=hold_button_ms)

    def __enter__(self) -> VirtualBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _kill(self) -> None:
        p = self._proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._proc = None

    def _boot(self, *, raw: bool, why: str) -> None:
        env = dict(os.environ, MICROPYPATH=f"{self._code}:.frozen")
        env.pop("MICROPYINSPECT", None)
        cmd = [paths.micropython_bin(), "-X", f"heapsize={self.heapsize}",
               str(paths.VBOARD_DIR / "simboot.py"), str(self.sim_dir), "--serve"]
        if raw:
            cmd.append("--raw")
        if self._hold_ms:
            cmd += ["--hold-ms", str(self._hold_ms)]
            self._hold_ms = 0
        with open(self.sim_dir / "sim.log", "ab") as log:
            self._proc = subprocess.Popen(cmd, env=env, stdin=self._cpu_s, stdout=self._cpu_s,
                                          stderr=log, cwd=self.sim_dir)
        self.boots.append({"why": why, "raw": raw, "t": time.monotonic(), "exit": None})
        self._raw = False
        self._swallow = raw  # hide the friendly banner until the raw REPL is back
        if raw:
            os.write(self._cpu_m, b"\x01")  # the REPL starts friendly: back to raw, as before
        self._tail = b""

    # ---- the cable ----------------------------------------------------------------------------

    def _from_cpu(self, data: bytes) -> None:
        tail = self._tail + data
        if self._swallow:
            i = tail.find(_RAW_BANNER)
            if i < 0:
                self._tail = tail[-len(_RAW_BANNER):]
                return
            data = tail[i:]
            self._swallow = False
            tail = data
        if _RAW_BANNER in tail:
            self._raw = True
        if self._raw and b"\r\n>>> " in tail[tail.rfind(_RAW_BANNER) + 1:]:
            self._raw = False  # Ctrl-B: back to the friendly REPL
        self._tail = tail[-64:]
        _write_all(self._cable_m, data, give_up_s=1.0)

    def _ended(self, code: int) -> None:
        self.boots[-1]["exit"] = code
        recent = [b for b in self.boots[-_CRASH_LOOP:] if b["exit"] not in (0,)]
        if (len(recent) == _CRASH_LOOP
                and time.monotonic() - recent[0]["t"] < _CRASH_LOOP * 1.0):
            self.error = (f"the board keeps resetting (last exit {code}); "
                          f"see {self.sim_dir}/sim.log")
            self._stop.set()
            return
        if code == 0:  # Ctrl-D in the REPL: soft reset
            _write_all(self._cable_m, _SOFT_REBOOT, give_up_s=1.0)
            self._boot(raw=self._raw, why="soft")
        elif code > RESET_EXIT:
            self._boot(raw=False, why={1: "power-on", 2: "hard", 3: "watchdog", 4: "deepsleep",
                                       5: "soft"}.get(code - RESET_EXIT, "reset"))
        else:  # the simulator itself failed: as a crash, the board starts again
            self._boot(raw=False, why=f"crash (exit {code})")

    def _pump(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._cable_m, self._cpu_m], [], [], 0.05)
            except (OSError, ValueError):
                return
            if self._cable_m in ready:
                try:
                    data = os.read(self._cable_m, 4096)
                except OSError:
                    data = b""
                if data:
                    _write_all(self._cpu_m, data)
            if self._cpu_m in ready:
                try:
                    data = os.read(self._cpu_m, 4096)
                except OSError:
                    data = b""
                if data:
                    self._from_cpu(data)
                    continue  # drain the boot's output before looking at its exit
            p = self._proc
            if p is not None and p.poll() is not None:
                self._ended(p.returncode)


def _write_all(fd: int, data: bytes, give_up_s: float | None = None) -> None:
    """Write everything; to the cable with give_up_s: like the board's USB serial with no host
    reading, output that finds no room within that time is lost."""
    view = memoryview(data)
    deadline = None if give_up_s is None else time.monotonic() + give_up_s
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            if deadline is not None and time.monotonic() > deadline:
                return
            select.select([], [fd], [], 0.05)
            continue
        view = view[n:]


def read_flash(sim_dir: Path, dest: Path) -> Path:
    """The files on a (stopped) virtual board's flash, copied to dest."""
    return runner.extract_littlefs(sim_dir, dest)
