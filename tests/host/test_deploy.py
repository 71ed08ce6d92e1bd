"""`nightstand deploy` on the virtual board: a running device is updated through maintenance mode,
every file is verified on the board, and the nights on its flash survive byte for byte. Also the
guard that keeps deploy away from the nights, and `nightstand flash`'s esptool arguments."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from nightstand import cli, deploy, flash, paths
from nightstand.errors import UserError
from nightstand.sim import serve
from nightstand.store import Store
from nsdev import VERSION
from nsdev.recorder import Recorder

NOON_UTC = 1767268800  # 2026-01-01 12:00 UTC: outside the default sleep schedule


class _Free:
    def __call__(self, root: str) -> int:
        return 10 ** 9


def _seed_nights(root: Path) -> None:
    """Two closed nights written by the firmware's own recorder (CPython), as on a used board."""
    root.mkdir(parents=True, exist_ok=True)
    rec = Recorder(str(root / "data"), device_id="vboard", free_fn=_Free())
    for n in range(2):
        t0 = NOON_UTC - 86400 * (2 - n) - 12 * 3600
        rec.start_night(t0, 0)
        for e in range(20):
            rec.add_epoch(t0 + 30 * e, hr_bpm=55.0 + e % 7, temp_c=20.5, lamp_level=(0.0,))
            rec.flush()
        rec.end_night(t0 + 600)


def _files(sim_dir: Path, dest: Path) -> dict[str, str]:
    root = serve.read_flash(sim_dir, dest)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("path", ["data/nights/00000001.ns", "/data/index.json", "data",
                                  "secret.bin", "wifi.json", "nsdev/../data/x", "boot.py", "",
                                  "baseline.json", "nsdev"])
def test_deploy_never_touches_anything_but_firmware(path: str) -> None:
    with pytest.raises(UserError):
        deploy.check_managed(path)


def test_deploy_manages_firmware_and_config() -> None:
    for path in ("main.py", "config.json", "nsdev/app.mpy", "/nsdev/core/ppg.mpy"):
        assert deploy.check_managed(path) == path.lstrip("/")


def test_bundle_is_xtensawin_mpy_with_source_main() -> None:
    bundle = deploy.build_bundle()
    assert bundle.march == "xtensawin"
    assert bundle.files["main.py"] == paths.firmware_main().read_bytes()
    # .mpy header: 'M', version 6, then the native architecture in bits 2..7 of byte 2 (0 for a
    # module without native code, 10 = MP_NATIVE_ARCH_XTENSAWIN: docs "MicroPython .mpy files").
    arches = {data[2] >> 2 for name, data in bundle.files.items() if name.endswith(".mpy")}
    assert all(data[:2] == b"M\x06" for n, data in bundle.files.items() if n.endswith(".mpy"))
    assert arches == {0, 10}
    names = {n for n, _ in paths.firmware_files()}
    assert {n.replace(".py", ".mpy") for n in names if n != "main.py"} | {"main.py"} == set(
        bundle.files)


def test_deploy_updates_a_running_virtual_board_and_keeps_its_nights(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    _seed_nights(seed)
    stale = seed / "nsdev" / "old_module.py"  # a leftover that would shadow the new code
    stale.parent.mkdir(parents=True)
    stale.write_text("print('stale')\n")
    sim = serve.create(tmp_path / "vb", serve.BoardSpec(seed_dir=seed, start_unix_s=NOON_UTC,
                                                        speed=20.0))
    before = _files(sim, tmp_path / "before")
    nights = {n: h for n, h in before.items() if n.startswith("data/nights/")}
    assert len(nights) == 2

    bundle = deploy.build_bundle(deploy.MPY_ARCHES[2])  # the virtual board runs x64 code
    bundle.files["main.py"] += b"# deployed by test_deploy\n"
    with serve.VirtualBoard(sim) as board:
        port = board.start()
        rep = deploy.deploy(port, bundle)
        assert board.error is None
        # The updated board syncs its old nights like a real one (`nightstand sync --port`).
        db = tmp_path / "store" / "nightstand.sqlite3"
        assert cli.main(["sync", "--port", port, "--db", str(db), "--no-set-time"]) == 0
        with Store(db) as store:
            assert len(store.nights()) == 2
    assert rep.was_running, "the app was running: deploy had to ask for maintenance mode"
    assert rep.written == ["main.py"]
    assert rep.removed == ["nsdev/old_module.py"]
    assert rep.verified == len(bundle.files)
    assert rep.booted_version == VERSION

    after = _files(sim, tmp_path / "after")
    for name, digest in nights.items():
        assert after.get(name) == digest, f"{name} changed"
    assert "nsdev/old_module.py" not in after
    for name, digest in bundle.sha256().items():
        assert after[name] == digest, name


def test_mpremote_lists_the_virtual_board(tmp_path: Path) -> None:
    sim = serve.create(tmp_path / "vb", serve.BoardSpec(start_unix_s=NOON_UTC))
    with serve.VirtualBoard(sim) as board:
        port = board.start(hold_button_ms=2000)  # the button held at power-on: maintenance
        mpremote = Path(paths.micropython_bin()).with_name("mpremote")
        out = subprocess.run([str(mpremote), "connect", port, "fs", "ls"], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "main.py" in out.stdout and "nsdev/" in out.stdout
        out = subprocess.run([str(mpremote), "connect", port, "exec",
                              "import nsdev; print('ver', nsdev.VERSION)"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"ver {VERSION}" in out.stdout
        assert [b["why"] for b in board.boots][:1] == ["power-on"]
        assert any(b["why"] == "soft" and b["raw"] for b in board.boots), board.boots


# ---- flash ------------------------------------------------------------------------------------

def test_flash_writes_at_the_bootloader_offset_and_never_erases(tmp_path: Path) -> None:
    img = tmp_path / "firmware.bin"
    img.write_bytes(bytes([flash.ESP_IMAGE_MAGIC]) + bytes(1_500_000))
    cmd = flash.flash(img, "/dev/ttyUSB0", dry_run=True)
    i = cmd.index("write-flash")
    assert cmd[i + 1:] == ["--flash-mode", "keep", "--flash-size", "keep", "-z", "0x1000",
                           str(img)]
    assert "--erase-all" not in cmd and "erase-flash" not in cmd and "-e" not in cmd
    app = flash.flash(img, "/dev/ttyUSB0", app_only=True, dry_run=True)
    assert app[-2] == "0x10000"


def test_flash_refuses_an_image_reaching_the_filesystem(tmp_path: Path) -> None:
    lay = flash.LAYOUTS["4MiBplus"]
    assert lay.fs_start == 0x200000
    fits = lay.fs_start - lay.bootloader
    assert flash.flash_args(Path("f.bin"), "p", image_size=fits)[-2] == "0x1000"
    with pytest.raises(UserError, match="filesystem"):
        flash.flash_args(Path("f.bin"), "p", image_size=fits + 1)
    with pytest.raises(UserError, match="filesystem"):
        flash.flash_args(Path("f.bin"), "p", image_size=0x170000, layout="2MiB")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(UserError, match="not an ESP32 image"):
        flash.check_image(bad)


def test_flash_offsets_match_the_pinned_port_partition_table() -> None:
    """The layout constants against ports/esp32/partitions-*.csv of the pinned MicroPython."""
    import tarfile

    here = Path(__file__).resolve().parents[2]
    found = [d / "shared" / "micropython" / "micropython-1.28.0.tar.gz" for d in here.parents]
    found = [t for t in found if t.exists()]
    if not found:
        pytest.skip("the pinned MicroPython source tarball (shared/micropython) is not found")
    tarball = found[0]
    with tarfile.open(tarball) as tar:
        for name, lay in flash.LAYOUTS.items():
            member = f"micropython-1.28.0/ports/esp32/partitions-{name}.csv"
            text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            rows = [[c.strip() for c in ln.split(",")] for ln in text.splitlines()
                    if ln.strip() and not ln.startswith("#")]
            app = next(r for r in rows if r[1] == "app")
            assert int(app[3], 16) == lay.app and int(app[4], 16) == lay.app_size
            end = max(int(r[3], 16) + int(r[4], 16) for r in rows)
            assert end == lay.fs_start


def _read_until(ser, marker: bytes, timeout_s: float = 30.0) -> bytes:
    import time

    data = b""
    deadline = time.monotonic() + timeout_s
    while marker not in data and time.monotonic() < deadline:
        data += ser.read(4096)
    assert marker in data, data[-500:]
    return data


def test_maintenance_mode_keeps_app_and_watchdog_off_across_soft_resets(tmp_path: Path) -> None:
    import serial

    sim = serve.create(tmp_path / "vb", serve.BoardSpec(start_unix_s=NOON_UTC))
    with serve.VirtualBoard(sim) as board:
        ser = serial.Serial(board.start(hold_button_ms=2000), 115200, timeout=0.2)
        out = _read_until(ser, b">>> ")
        assert b"MAINTENANCE MODE (button held at boot)" in out
        assert out.count(b"MAINTENANCE MODE") == 1
        ser.write(b"import sys, world\r")
        ser.write(b"print('app', 'nsdev.app' in sys.modules, world.wdt_armed)\r")
        assert b"app False False" in _read_until(ser, b"app False")
        ser.write(b"\x04")  # Ctrl-D: soft reset from the friendly REPL runs main.py again
        out = _read_until(ser, b">>> ")
        assert b"MPY: soft reboot" in out
        assert b"MAINTENANCE MODE (maintenance flag set)" in out
        ser.close()


def test_every_sync_command_has_its_own_code() -> None:
    """REBOOT_MAINT (added at the end of proto.py) must not shadow another command's handler."""
    from nsdev import sync
    from nsdev.core import proto

    codes = {name: getattr(proto, name) for name in dir(proto) if name.startswith("CMD_")}
    assert len(set(codes.values())) == len(codes), codes
    assert set(codes.values()) <= set(sync._HANDLERS)
    assert proto.CMD_REBOOT_MAINT in proto.USB_ONLY
