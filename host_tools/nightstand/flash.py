"""`nightstand flash`: write a built MicroPython image to an ESP32 with esptool, keeping the
filesystem partition (and so the recorded nights) intact.

Offsets are those of the pinned MicroPython v1.28.0 ESP32 port (ports/esp32, ESP32_GENERIC):
makeimg.py combines bootloader (0x1000), partition table (0x8000) and application (0x10000) into
firmware.bin, written at 0x1000; partitions-4MiBplus.csv (the default,
CONFIG_PARTITION_TABLE_CUSTOM_FILENAME in boards/sdkconfig.base) gives nvs 0x9000+0x6000,
phy_init 0xf000+0x1000, factory app 0x10000+0x1F0000; main.c then registers the "vfs" (littlefs)
partition from the end of the last partition, 0x200000, to the end of flash. An image that would
reach past 0x200000 is refused, and the flash is never erased as a whole.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nightstand.errors import UserError

ESP_IMAGE_MAGIC = 0xE9  # first byte of an ESP32 bootloader or application image


@dataclass(frozen=True)
class Layout:
    name: str
    bootloader: int
    partition_table: int
    app: int
    app_size: int

    @property
    def fs_start(self) -> int:
        """Where the littlefs ("vfs") partition begins: the end of the application partition."""
        return self.app + self.app_size


LAYOUTS = {
    "4MiBplus": Layout("4MiBplus", 0x1000, 0x8000, 0x10000, 0x1F0000),
    "2MiB": Layout("2MiB", 0x1000, 0x8000, 0x10000, 0x160000),
}
DEFAULT_LAYOUT = "4MiBplus"


def flash_args(image: Path, port: str, *, image_size: int, app_only: bool = False,
               layout: str = DEFAULT_LAYOUT, baud: int = 460800, chip: str = "esp32"
               ) -> list[str]:
    """esptool's arguments to write image (firmware.bin at the bootloader offset, or with
    app_only micropython.bin at the app offset) without touching the filesystem partition."""
    lay = LAYOUTS.get(layout)
    if lay is None:
        raise UserError(f"unknown partition layout {layout!r} (known: {', '.join(LAYOUTS)})")
    offset = lay.app if app_only else lay.bootloader
    end = offset + image_size
    limit = lay.fs_start if not app_only else lay.app + lay.app_size
    if image_size <= 0:
        raise UserError(f"{image}: empty image")
    if end > limit:
        raise UserError(f"{image}: {image_size} bytes at {offset:#x} would reach {end:#x}, past "
                        f"{limit:#x} where the filesystem with the nights begins; not flashing")
    return ["--chip", chip, "--port", port, "--baud", str(baud), "--before", "default-reset",
            "--after", "hard-reset", "write-flash", "--flash-mode", "keep", "--flash-size",
            "keep", "-z", f"{offset:#x}", str(image)]


def check_image(image: Path) -> int:
    """The image's size after a sanity check of its first byte."""
    try:
        data = image.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read image {image}: {e.strerror or e}") from None
    if not data or data[0] != ESP_IMAGE_MAGIC:
        raise UserError(f"{image}: not an ESP32 image (first byte is not {ESP_IMAGE_MAGIC:#x}); "
                        "give firmware.bin from the esp32 port's build")
    return len(data)


def flash(image: Path, port: str, *, app_only: bool = False, layout: str = DEFAULT_LAYOUT,
          baud: int = 460800, dry_run: bool = False) -> list[str]:
    size = check_image(image)
    args = flash_args(image, port, image_size=size, app_only=app_only, layout=layout, baud=baud)
    cmd = [sys.executable, "-m", "esptool", *args]
    if not dry_run:
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            raise UserError(f"esptool failed (exit {proc.returncode}); see its output above")
    return cmd
