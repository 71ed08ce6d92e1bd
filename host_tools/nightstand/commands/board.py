"""`nightstand deploy | flash | vboard`: firmware onto a board; the virtual board on a pty."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nightstand.commands.base import Command
from nightstand.errors import UserError

# ---- deploy -----------------------------------------------------------------------------------


def _deploy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", help="serial port of the board (real, or `nightstand vboard`)")
    p.add_argument("--baud", type=int, default=115200, help="serial baud rate (default 115200)")
    p.add_argument("--config", type=Path, help="device settings (JSON) to install as config.json")
    p.add_argument("--march", help="mpy-cross architecture (default: the board's own; "
                   "xtensawin for the ESP32 with --build)")
    p.add_argument("--build", type=Path, metavar="DIR",
                   help="only build the .mpy bundle into DIR and print its size")
    p.add_argument("--stay", action="store_true",
                   help="leave the board in maintenance mode afterwards (do not boot the app)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _board_march(port: str, baud: int) -> str | None:
    """The board's own architecture, asked over its REPL (after maintenance mode if needed)."""
    from nightstand import deploy

    deploy.enter_maintenance(port, baud)
    t = deploy._open_repl(port, baud, 20.0)
    try:
        mpy = int(t.eval("__import__('sys').implementation._mpy"))
    finally:
        t.close()
    return deploy.MPY_ARCHES.get((mpy >> 10) & 0x0F)


def _read_config(path: Path | None) -> dict | None:
    """Device settings from a JSON file (None: none given), or one line saying what is wrong."""
    if path is None:
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read config {path}: {e}") from None
    if not isinstance(config, dict):
        raise UserError(f"config {path} must be a JSON object of settings")
    return config


def _deploy_run(args: argparse.Namespace) -> int:
    from nightstand import deploy

    config = _read_config(args.config)
    if args.build:
        bundle = deploy.build_bundle(args.march or deploy.ESP32_MARCH, config)
        args.build.mkdir(parents=True, exist_ok=True)
        deploy.write_bundle(bundle, args.build)
        print(f"firmware {deploy.VERSION} for {bundle.march}: {len(bundle.files)} files, "
              f"{bundle.size} bytes in {args.build}")
        return 0
    if not args.port:
        raise UserError("give --port PORT (the board's serial port), or --build DIR")
    march = args.march or _board_march(args.port, args.baud) or deploy.ESP32_MARCH
    bundle = deploy.build_bundle(march, config)
    rep = deploy.deploy(args.port, bundle, baud=args.baud, leave_maintenance=not args.stay,
                        progress=None if args.json else print)
    if args.json:
        print(json.dumps(rep.__dict__))
        return 0
    print(f"{args.port}: firmware {rep.version} ({rep.march}): {len(rep.written)} file(s) "
          f"written ({rep.bytes_written} bytes), {len(rep.unchanged)} unchanged, "
          f"{len(rep.removed)} stale removed; {rep.verified} verified by SHA-256 on the board")
    if args.stay:
        print("the board stays in maintenance mode (REPL); leave with "
              "`import nsdev.board; nsdev.board.leave_maintenance()`")
    elif rep.booted_version is None:
        raise UserError(f"{args.port}: the new firmware did not answer after the reset; "
                        "check the console (mpremote connect PORT repl)")
    elif rep.booted_version != rep.version:
        raise UserError(f"{args.port}: the board boots firmware {rep.booted_version}, "
                        f"not {rep.version}")
    else:
        print(f"{args.port}: the board runs firmware {rep.booted_version}")
    return 0


# ---- flash ------------------------------------------------------------------------------------


def _flash_args(p: argparse.ArgumentParser) -> None:
    from nightstand import flash

    p.add_argument("image", type=Path, help="firmware.bin from the esp32 port's build")
    p.add_argument("--port", required=True, help="serial port of the board")
    p.add_argument("--baud", type=int, default=460800, help="flashing baud rate (default 460800)")
    p.add_argument("--app-only", action="store_true",
                   help="IMAGE is micropython.bin (the application only): write it at 0x10000")
    p.add_argument("--layout", default=flash.DEFAULT_LAYOUT, choices=sorted(flash.LAYOUTS),
                   help="the port's partition table (default %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the esptool command only")


def _flash_run(args: argparse.Namespace) -> int:
    from nightstand import flash

    cmd = flash.flash(args.image, args.port, app_only=args.app_only, layout=args.layout,
                      baud=args.baud, dry_run=args.dry_run)
    if args.dry_run:
        print(" ".join(cmd))
    else:
        print(f"{args.port}: {args.image} written; the filesystem (and the nights) untouched; "
              "now `nightstand deploy --port PORT`")
    return 0


# ---- vboard -----------------------------------------------------------------------------------


def _vboard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=Path("build/vboard"),
                   help="the virtual board's folder (flash image and state; default %(default)s)")
    p.add_argument("--new", action="store_true",
                   help="start from a fresh board (factory firmware, default settings)")
    p.add_argument("--config", type=Path, help="with --new: device settings (JSON)")
    p.add_argument("--hold-button", action="store_true",
                   help="hold the button at power-on: boot into maintenance mode")
    p.add_argument("--speed", type=float, default=1.0,
                   help="with --new: virtual seconds per real second while idle (default 1)")
    p.add_argument("--absent", action="append", default=[], metavar="CHIP",
                   help="with --new: leave a virtual chip off the board (max30102, bme680, ...)")


def _vboard_run(args: argparse.Namespace) -> int:
    from nightstand.sim import serve

    if args.dir.exists() and not args.dir.is_dir():
        raise UserError(f"--dir {args.dir} is a file: give a folder for the virtual board")
    is_board = (args.dir / "sim.json").exists()
    if not is_board and args.dir.is_dir() and any(args.dir.iterdir()):
        raise UserError(f"--dir {args.dir} holds other files and is not a virtual board: "
                        "give a new folder")
    if args.new or not is_board:
        config = _read_config(args.config)
        serve.create(args.dir, serve.BoardSpec(config=config, speed=args.speed,
                                               absent=args.absent))
    import signal

    def _unplug(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _unplug)  # `kill` unplugs cleanly too
    board = serve.VirtualBoard(args.dir)
    port = board.start(hold_button_ms=3000 if args.hold_button else 0)
    print(f"virtual board on {port} (folder {args.dir}); Ctrl-C unplugs it", flush=True)
    print(f"  try: nightstand status --port {port}   mpremote connect {port} fs ls", flush=True)
    try:
        while board.error is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
    if board.error:
        raise UserError(board.error)
    return 0


COMMANDS = [
    Command("deploy", "put the firmware (.mpy) and a config on a board over USB; nights kept",
            _deploy_args, _deploy_run),
    Command("flash", "write a MicroPython image with esptool, keeping the filesystem",
            _flash_args, _flash_run),
    Command("vboard", "the simulated device on a serial port (pty), for mpremote and sync",
            _vboard_args, _vboard_run),
]
