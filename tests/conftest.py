"""Shared test helpers: run code under the MicroPython unix port, on the virtual board or not."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from nightstand import paths

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

# The interpreters firmware tests run on: the 64-bit unix port ('unix') and the twin ('twin': the
# 32-bit, float32 build with the firmware frozen in; `make twin`, docs/twin-and-image.md).
VMS = paths.VMS
_TWIN_INPUTS = ("firmware",)


def twin_skip_reason() -> str | None:
    """Why the twin cannot run here (None: it can). Stale = older than the firmware it froze."""
    twin = paths.twin_path()
    if not twin.is_file():
        return ("twin VM not built: run `make twin` (needs gcc-multilib and MicroPython "
                "1.28.0 via MICROPY_DIR or ../shared/micropython; docs/twin-and-image.md)")
    built = twin.stat().st_mtime
    for folder in _TWIN_INPUTS:
        for f in (ROOT / folder).rglob("*"):
            if f.is_file() and f.suffix in (".py", ".h", ".mk") and f.stat().st_mtime > built:
                return f"twin VM older than {f.relative_to(ROOT)}: run `make twin`"
    return None


def require_vm(vm: str) -> None:
    if vm == "twin":
        reason = twin_skip_reason()
        if reason:
            pytest.skip(reason)


def pytest_configure(config):
    config.addinivalue_line("markers", "twin: runs only on the twin VM (`make twin`)")


def pytest_collection_modifyitems(config, items):
    """Without a usable twin, its test cases are deselected; the one skip line that says why
    and how to enable them comes from test_micropython_dual.py::test_twin_vm_available."""
    if twin_skip_reason() is None:
        return
    drop = [it for it in items
            if it.get_closest_marker("twin") is not None
            or (getattr(it, "callspec", None) is not None
                and it.callspec.params.get("vm") == "twin")]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [it for it in items if it not in drop]


@pytest.fixture(params=VMS)
def vm(request) -> str:
    """Parametrizes a test over both interpreters; the twin skips (one line) where unbuilt."""
    require_vm(request.param)
    return request.param


def run_micropython(
    args: list[str],
    *,
    path: str,
    heapsize: str = "1M",
    cwd: Path | None = None,
    timeout: float = 300,
    stdin: bytes | None = None,
    vm: str = "unix",
) -> subprocess.CompletedProcess:
    if vm == "twin":
        # The firmware frozen into the twin comes first, as on the board.
        path = ".frozen:" + path
    env = dict(os.environ, MICROPYPATH=path)
    return subprocess.run(
        [paths.vm_bin(vm), "-X", f"heapsize={heapsize}", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )


def mp_plain_path(*extra: Path) -> str:
    """MICROPYPATH for pure firmware code: firmware/ and the given folders, no virtual board."""
    return ":".join([*(str(p) for p in extra), str(paths.FIRMWARE_DIR), ".frozen"])


@pytest.fixture
def mp_board(tmp_path):
    """Run a MicroPython script on the virtual board (virtual `machine`, `time`, `select`).

    Returns a callable(script_text, heapsize='1M') -> CompletedProcess. The script runs with the
    virtual clock set up at 2026-01-01T00:00Z and `world`, `machine` importable.
    """

    def run(
        script: str, heapsize: str = "1M", timeout: float = 300, vm: str = "unix"
    ) -> subprocess.CompletedProcess:
        prelude = (
            "import time, world, vasyncio\n"
            "time.setup(1767225600, -1, (1 << 30) - 5000)\n"
            "vasyncio.install()\n"
        )
        f = tmp_path / "board_script.py"
        f.write_text(prelude + script)
        return run_micropython(
            [str(f)], path=paths.micropython_path(TESTS), heapsize=heapsize, cwd=tmp_path,
            timeout=timeout, vm=vm,
        )

    return run


def check(proc: subprocess.CompletedProcess) -> str:
    """Assert a MicroPython run succeeded; return its stdout (shows both streams on failure)."""
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, f"micropython exited {proc.returncode}\n{out}\n{err}"
    return out


def pytest_addoption(parser):
    # The hardware-in-the-loop suite (tests/hil/, docs/board.md): registered here so that
    # `pytest tests --board virtual` (make test) and `make hil PORT=...` both reach it.
    group = parser.getgroup("hil", "hardware-in-the-loop suite")
    group.addoption("--board", default=None, metavar="PORT",
                    help="run tests/hil on the board at this serial port, or `virtual`")
    group.addoption("--soak-min", type=float, default=10.0,
                    help="soak minutes (default 10; virtual time on the virtual board)")
    group.addoption("--hil-report", default=None, metavar="HTML",
                    help="write the one-page bring-up report here")
