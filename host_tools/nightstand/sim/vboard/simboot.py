# Boots the unchanged firmware on the simulated board under the MicroPython unix port.
# Usage: micropython simboot.py SIM_DIR   (MICROPYPATH = vboard : firmware : .frozen)
# SIM_DIR/sim.json describes the clock, the virtual devices and their stimulus files; the
# firmware's flash is SIM_DIR/flash. Messages for the host start with '@' on stderr.
import gc
import json
import os
import sys
import time

import vasyncio
import world

_FIRMWARE_MODULES = ("main", "nsdev")


def _say(*parts):
    sys.stderr.write("@" + " ".join(str(p) for p in parts) + "\n")


def _build(cfg, sim_dir):
    devices = []
    for spec in cfg.get("devices", ()):
        mod = __import__(spec["module"])
        dev = getattr(mod, spec["class"])(spec, sim_dir)
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


def _purge_firmware():
    for name in list(sys.modules):
        for prefix in _FIRMWARE_MODULES:
            if name == prefix or name.startswith(prefix + "."):
                del sys.modules[name]


def _reboot(devices, persistent):
    """Forget everything the firmware left behind, as a reset does: its modules, its tasks, its
    interrupt handlers and clock listeners. Virtual chips keep their state (they are hardware)."""
    time._listeners[:] = persistent
    for dev in devices:
        if hasattr(dev, "set_irq"):
            dev.set_irq(None, None, 0)
    _purge_firmware()
    import asyncio
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


def main():
    sim_dir = sys.argv[1]
    with open(sim_dir + "/sim.json") as f:
        cfg = json.load(f)
    world.config = cfg
    time.setup(cfg["start_unix_s"], cfg["duration_s"], cfg.get("ticks_start_ms", 0),
               cfg.get("rtc_valid", True))
    time.progress_every_us = int(cfg.get("progress_every_s", 60)) * 1000000
    vasyncio.install()
    devices = _build(cfg, sim_dir)
    if "--probe" in sys.argv:
        # Heap taken by the simulator and the firmware's loaded code (frozen into flash on the
        # device, so not part of its heap budget); the host adds the data budget on top.
        gc.collect()
        board_bytes = gc.mem_alloc()
        import nsdev.app  # noqa: F401

        gc.collect()
        _say("probe", gc.mem_alloc(), gc.mem_alloc() - board_bytes)
        return
    glitches = sorted(int(t * 1000000) for t in cfg.get("resets_at_s", ()))
    if glitches:
        def _glitch(now_us):
            # Power dips at scheduled times: RAM and the firmware are lost, the flash is kept.
            if glitches and now_us >= glitches[0]:
                glitches.pop(0)
                raise world.SimReset(1, "power glitch")

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
            _say("powercut", time.now_us // 1000000)
            e = None
            world.reset_cause = 1  # machine.PWRON_RESET
            ballast = None
            time.heap_reserved = 0
            _reboot(devices, persistent)
            import vflash

            _mount_littlefs(vflash, sim_dir, cfg, cuts)
    real_us = time.real_ticks_diff(time.real_ticks_us(), real0)
    stats = {
        "status": status,
        "sim_s": time.now_us / 1e6,
        "real_s": real_us / 1e6,
        "vhw_s": world.vhw_us / 1e6,
        "heap_peak": time.heap_live_peak,
        "heap_base": heap_base,
        "resets": resets,
        "power_cuts": power_cuts,
        "devices": {},
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
