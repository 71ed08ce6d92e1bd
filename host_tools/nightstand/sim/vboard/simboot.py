# Boots the unchanged firmware on the simulated board under the MicroPython unix port.
# Usage: micropython simboot.py SIM_DIR   (MICROPYPATH = vboard : firmware : .frozen)
# SIM_DIR/sim.json describes the clock, the virtual devices and their stimulus files; the
# firmware's flash is SIM_DIR/flash. Messages for the host start with '@' on stderr.
import gc
import json
import os
import select
import sys
import time

gc.collect()
_m0 = gc.mem_alloc()
import asyncio  # noqa: E402, F401  (frozen Python on the board too: its objects are data there)

gc.collect()
ASYNCIO_BYTES = gc.mem_alloc() - _m0

import vasyncio  # noqa: E402
import world  # noqa: E402

_FIRMWARE_MODULES = ("main", "nsdev")


def _say(*parts):
    sys.stderr.write("@" + " ".join(str(p) for p in parts) + "\n")


def _build(cfg, sim_dir):
    devices = []
    for spec in cfg.get("devices", ()):
        mod = __import__(spec["module"])
        dev = getattr(mod, spec["class"])(spec, sim_dir)
        if "present" in spec:  # a chip missing from the board (bring-up tests)
            dev.present = bool(spec["present"])
        bus_id = spec.get("bus")
        if bus_id is not None:
            bus = world.buses.get(bus_id)
            if bus is None:
                bus = world.buses[bus_id] = world.VirtualI2CBus(bus_id)
            bus.attach(dev)
        gpio = spec.get("gpio")
        if gpio is not None:
            if hasattr(dev, "set"):
                world.pwm_sinks[gpio] = dev
            else:
                world.pin_inputs[gpio] = dev
        devices.append(dev)
    for bus_id in cfg.get("i2c_buses", (0,)):
        if bus_id not in world.buses:
            world.buses[bus_id] = world.VirtualI2CBus(bus_id)
    return devices


def _boot_firmware():
    """Import the firmware's main.py, as the board does after boot.py. In its own frame, so no
    reference to the old firmware survives in simboot's frame after a reset."""
    __import__("main")


def _is_firmware(name):
    for prefix in _FIRMWARE_MODULES:
        n = len(prefix)
        if name == prefix or (name.startswith(prefix) and name[n:n + 1] == "."):
            return True
    return False


def _purge_firmware():
    # One entry per pass, without a list of the names: at the end of a night on a full heap
    # (the twin at 56 KiB) even list(sys.modules) did not fit, and the run failed after the
    # firmware had finished cleanly. Slicing one character gives an interned string, no heap.
    while True:
        for name in sys.modules:
            if _is_firmware(name):
                break
        else:
            return
        del sys.modules[name]


def _reboot(devices, persistent):
    """Forget everything the firmware left behind, as a reset does: its modules, its tasks, its
    interrupt handlers and clock listeners. Virtual chips keep their state (they are hardware)."""
    time._listeners[:] = persistent
    time.listen_now()
    for dev in devices:
        if hasattr(dev, "set_irq"):
            dev.set_irq(None, None, 0)
    _purge_firmware()
    import asyncio.core

    asyncio.core.cur_task = None
    asyncio.core._stop_task = None
    ctx = asyncio.core._exc_context
    ctx["exception"] = ctx["future"] = None
    asyncio.new_event_loop()
    _scrub_stack(120)
    gc.collect()


def _scrub_stack(depth):
    # The GC scans the C stack conservatively: pointers left behind by the firmware's deep call
    # chain would keep its old code and objects alive. Fresh frames overwrite that region.
    if depth:
        _scrub_stack(depth - 1)


def _mount_littlefs(vflash, sim_dir, cfg, cuts):
    """Mount the flash image (the next power cut armed); a fresh image gets the seed files."""
    dev = vflash.mount_flash(sim_dir, int(cfg.get("flash_bytes", 2 * 1024 * 1024)),
                             cut_after_writes=cuts.pop(0) if cuts else None)
    if dev.formatted:
        seed = sim_dir + "/flash"
        try:
            names = os.listdir(seed)
        except OSError:
            names = ()
        for name in names:
            with open(seed + "/" + name, "rb") as src:
                data = src.read()
            with open(name, "wb") as dst:
                dst.write(data)
    return dev


def _honest_time(cfg):
    """Computation, flash and console cost virtual time (docs/simulation.md, "Honest time")."""
    ht = cfg.get("honest_time") or {}
    time.set_speed_factor(float(ht.get("speed_factor", 0) or 0))
    if time.speed_factor:
        import vgc

        vgc.install()
        select.idle_hook = vgc.idle
    timing = ht.get("flash_timing")
    if timing:
        import vflash

        if timing not in vflash.TIMINGS:
            raise ValueError("honest_time.flash_timing must be one of %s" % list(vflash.TIMINGS))
        vflash.timing = timing
    baud = int(ht.get("console_baud", 0) or 0)
    if baud > 0:
        import builtins

        real_print = builtins.print
        us_per_byte = 10 * 1000000 / baud  # 8N1: 10 bit times per byte

        def _print(*args, sep=" ", end="\n", file=None):
            # The UART blocks the interpreter while it sends (its FIFO is small next to a line).
            if file is None or file is sys.stdout:
                n = len(sep) * (len(args) - 1 if args else 0) + len(end)
                for a in args:
                    n += len(a) if isinstance(a, str) else len(str(a))
                world.console_bytes += n
                time.advance_us(int(n * us_per_byte))
            real_print(*args, sep=sep, end=end, file=file or sys.stdout)

        builtins.print = _print
    return ht


def _honest_stats(ht, devices):
    if not ht:  # honest time off: nothing to report (and the heap may be full at the end)
        return {}
    out = {
        "speed_factor": time.speed_factor,
        "flash_timing": ht.get("flash_timing"),
        "console_baud": ht.get("console_baud", 0),
        "cpu_s": time.cpu_charged_us / 1e6,
        "cpu_host_s": time.cpu_host_us / 1e6,
        "host_off_cpu_s": time.host_off_cpu_us / 1e6,
        "cpu_max_step_ms": time.cpu_max_step_us / 1000,
        "lateness_max_ms": world.lateness_max_ms,
        "lateness_max_at_s": world.lateness_max_at_us // 1000000,
        "lateness_max_task": world.lateness_max_task,
        "late_over_100ms": world.late_over_100ms,
        "wdt_timeout_ms": world.wdt_timeout_us // 1000,
        "wdt_max_gap_ms": world.wdt_max_gap_us // 1000,
        "wdt_margin_ms": (world.wdt_timeout_us - world.wdt_max_gap_us) // 1000
        if world.wdt_timeout_us else None,
        "console_bytes": world.console_bytes,
        "i2c_bus_hz": {str(b): world.buses[b].freq_hz for b in world.buses},
    }
    if time.speed_factor:
        import vgc

        out["gc_explicit"] = vgc.collections
        out["gc_idle"] = vgc.idle_collections
        out["gc_host_ms"] = vgc.host_gc_us / 1000
    # Only if the run loaded it: importing it now needs ~1.5 KiB of a heap that may be full at
    # the end (a folder-flash run with a very slow CPU died of that MemoryError here).
    vflash = sys.modules.get("vflash")
    if vflash is not None:
        out["flash_busy_s"] = vflash.flash_busy_us / 1e6
        out["flash_max_op_ms"] = vflash.flash_max_op_us / 1000
    out["late_by_task_ms"] = world.late_by_task_ms
    return out


def _mkdirs(path):
    # An absolute path stays absolute (a leading "/" is kept), so nothing is made under the cwd.
    cur = "/" if path.startswith("/") else ""
    for part in path.split("/"):
        if not part:
            continue
        cur = cur + part if cur in ("", "/") else cur + "/" + part
        try:
            os.mkdir(cur)
        except OSError:
            pass


# ---- serve mode: the board on a serial port (nightstand/sim/serve.py is the other half) --------
# The littlefs image is the board's root filesystem ("/", as on the ESP32; the host's files move
# to /host), the firmware runs from it, and when main.py returns the port's REPL takes the
# console. A reset ends this process with RESET_EXIT + cause; the host starts the next boot.
RESET_EXIT = 64
STATE_FILE = "serve_state.json"


def _serve_state(sim_dir):
    try:
        with open(sim_dir + "/" + STATE_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _save_serve_state(f, cause):
    import machine

    state = {
        "unix_s": time.unix_now_s(),
        "rtc_valid": time.rtc_valid,
        "rtc_memory": "".join("%02x" % b for b in machine.RTC().memory()),
        "reset_cause": cause,
    }
    f.write(json.dumps(state))
    f.close()


def _serve(cfg, sim_dir):
    import vflash
    import vfs

    state = _serve_state(sim_dir)
    if state:
        time.setup(state["unix_s"], -1, 0, state["rtc_valid"])
        world.rtc_memory = bytes(int(state["rtc_memory"][i:i + 2], 16)
                                 for i in range(0, len(state["rtc_memory"]), 2))
        world.reset_cause = state["reset_cause"]
    else:
        time.setup(cfg["start_unix_s"], -1, cfg.get("ticks_start_ms", 0),
                   cfg.get("rtc_valid", True))
    hold = sys.argv[sys.argv.index("--hold-ms") + 1] if "--hold-ms" in sys.argv else None
    for spec in cfg.get("devices", ()):
        if spec.get("module") == "vbutton" and hold:
            spec["held_at_boot_ms"] = int(hold)
    vasyncio.install()
    _build(cfg, sim_dir)
    import select

    speed = float(cfg.get("speed", 1.0))
    select.io_block_ms = max(1, int(select.io_slice_ms / speed)) if speed > 0 else 1
    dev = vflash.VFlash(sim_dir + "/" + vflash.IMAGE_NAME, int(cfg.get("flash_bytes", 2 << 20)))
    if dev.fresh:
        vfs.VfsLfs2.mkfs(dev)
    import machine  # noqa: F401  (the host's files are out of reach from here on)

    # Written when this boot ends; a boot that is killed (power lost) leaves it empty.
    state_f = open(sim_dir + "/" + STATE_FILE, "w")
    vfs.umount("/")
    vfs.mount(vfs.VfsLfs2(dev), "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]

    exit_cause = [5]  # machine.SOFT_RESET: Ctrl-D in the REPL ends the process

    def _reset(cause):
        exit_cause[0] = cause
        sys.exit(RESET_EXIT + cause)

    sys.atexit(lambda: _save_serve_state(state_f, exit_cause[0]))  # the clock runs on

    world.on_reset = _reset
    _say("serve", "raw" if "--raw" in sys.argv else "boot", world.reset_cause)
    if "--raw" not in sys.argv:  # after a soft reset in the raw REPL the board skips main.py
        try:
            _boot_firmware()
        except world.SimReset as r:
            _reset(r.cause)
        except Exception as e:  # as the board: the traceback on the console, then the REPL
            sys.print_exception(e)
        if world.wdt_armed:
            # The app left with its watchdog running: on the board it resets a few seconds later.
            _reset(3)  # machine.WDT_RESET
    os.putenv("MICROPYINSPECT", "1")  # the port's REPL takes the console now


def main():
    sim_dir = sys.argv[1]
    with open(sim_dir + "/sim.json") as f:
        cfg = json.load(f)
    world.config = cfg
    if "--serve" in sys.argv:
        _serve(cfg, sim_dir)
        return
    time.setup(cfg["start_unix_s"], cfg["duration_s"], cfg.get("ticks_start_ms", 0),
               cfg.get("rtc_valid", True), cfg.get("boot_clock_s", 0))
    # A DevKitC has no battery-backed RTC: a power loss can restart the clock at 2000-01-01.
    rtc_lost_on_power_loss = bool(cfg.get("rtc_lost_on_power_loss", False))
    world.reset_cause = int(cfg.get("boot_reset_cause", 1))
    time.progress_every_us = int(cfg.get("progress_every_s", 60)) * 1000000
    vasyncio.install()
    import machine  # noqa: F401  (C on the board: the board's cost here, imported up front)

    devices = _build(cfg, sim_dir)
    ht = _honest_time(cfg)
    if "--probe" in sys.argv:
        # Heap taken by the simulator and the firmware's loaded code (frozen into flash on the
        # device, so not part of its heap budget); the host adds the data budget on top.
        gc.collect()
        board_bytes = gc.mem_alloc()
        import nsdev.app  # noqa: F401
        import nsdev.syncdevice  # noqa: F401  (the app loads the sync protocol when a host speaks)

        gc.collect()
        _say("probe", gc.mem_alloc(), gc.mem_alloc() - board_bytes, ASYNCIO_BYTES)
        return
    glitches = sorted(int(t * 1000000) for t in cfg.get("resets_at_s", ()))
    if glitches:
        def _glitch(now_us):
            # Power dips at scheduled times: RAM and the firmware are lost, the flash is kept.
            if glitches and now_us >= glitches[0]:
                glitches.pop(0)
                if rtc_lost_on_power_loss:
                    time.lose_rtc()
                raise world.SimReset(1, "power glitch")
            return glitches[0] if glitches else time.NEVER

        time.add_listener(_glitch)
    persistent = list(time._listeners)
    # Heap held back for a reboot's re-import (see runner.py): ballast until the first reset, so
    # until then the firmware's data budget is exact.
    reserve = int(sys.argv[sys.argv.index("--reserve") + 1]) if "--reserve" in sys.argv else 0
    ballast = [bytearray(4096) for _ in range(reserve // 4096)]  # small pieces: no big hole
    time.heap_reserved = 4096 * len(ballast)
    flash_kind = cfg.get("flash", "folder")
    cuts = list(cfg.get("power_cut_writes", ()))  # block writes until each successive power cut
    power_cuts = []
    if flash_kind == "littlefs":
        import vflash

        _mount_littlefs(vflash, sim_dir, cfg, cuts)
    else:
        flash = sim_dir + "/flash"
        _mkdirs(flash)
        os.chdir(flash)
    gc.collect()
    heap_base = gc.mem_alloc()
    real0 = time.real_ticks_us()
    time.remark()
    resets = []
    status = "ok"
    while True:
        try:
            _boot_firmware()
            status = "firmware-exited"
            break
        except time.SimEnd:
            break
        except world.SimReset as r:
            resets.append([time.now_us // 1000000, r.cause, str(r)])
            _say("reset", time.now_us // 1000000, r.cause, r)
            world.reset_cause = r.cause
            r = None
            ballast = None
            time.heap_reserved = 0
            _reboot(devices, persistent)
            time.remark()
        except MemoryError as e:
            status = "memory-error"
            sys.print_exception(e, sys.stderr)
            break
        except Exception as e:  # a firmware bug: report it and fail the simulation
            status = "crash"
            sys.print_exception(e, sys.stderr)
            break
        except BaseException as e:
            if type(e).__name__ != "PowerCut":
                raise
            # Power lost: RAM and the firmware are gone; the flash keeps what littlefs committed.
            power_cuts.append(time.now_us // 1000000)
            if rtc_lost_on_power_loss:
                time.lose_rtc()
            _say("powercut", time.now_us // 1000000)
            e = None
            world.reset_cause = 1  # machine.PWRON_RESET
            ballast = None
            time.heap_reserved = 0
            _reboot(devices, persistent)
            import vflash

            _mount_littlefs(vflash, sim_dir, cfg, cuts)
            time.remark()
    real_us = time.real_ticks_diff(time.real_ticks_us(), real0)
    _purge_firmware()  # the report below needs heap: the finished firmware goes first
    gc.collect()
    stats = {
        "status": status,
        "sim_s": time.now_us / 1e6,
        "real_s": real_us / 1e6,
        "vhw_s": world.vhw_us / 1e6,
        "heap_peak": time.heap_live_peak,
        "gc_pause_max_us": time.gc_pause_max_us,
        "heap_base": heap_base,
        "resets": resets,
        "power_cuts": power_cuts,
        "rtc_valid": time.rtc_valid,
        "boot_clock_s": None if time.rtc_valid else (time.now_us - time.rtc_lost_at_us) // 1000000,
        "devices": {},
        "honest": _honest_stats(ht, devices),
    }
    for dev in devices:
        if hasattr(dev, "finish"):
            dev.finish()
        if hasattr(dev, "stats"):
            stats["devices"][dev.name] = dev.stats()
    os.chdir(sim_dir)
    with open("sim_stats.json", "w") as f:
        json.dump(stats, f)
    _say("done", status)
    sys.exit(0 if status == "ok" else 3)


if __name__ == "__main__":  # importable for tests
    main()
